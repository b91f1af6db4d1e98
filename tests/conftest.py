"""Suite-wide test settings and shared fixtures."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """The tests run tiny matrices: one thread is fastest, and on a busy 2-core machine extra
    threads spin against each other (measured 100x slower). Benchmarks set their own threads."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(params=[torch.float64, torch.float32], ids=["float64", "float32"])
def dtype(request):
    """Both dtypes the engines are compared in."""
    return request.param


@pytest.fixture
def engine_tol():
    """Engine-against-reference tolerance per dtype: float64 is the exactness check; float32
    gradients are sums over T*B rows taken in another order (and layer norm cancels)."""
    return {torch.float64: dict(rtol=1e-9, atol=1e-10), torch.float32: dict(rtol=1e-3, atol=2e-4)}


@pytest.fixture
def need_kernels():
    """Skip a test of the compiled kernels' own behaviour where they cannot be built (CI's
    no-compiler run); what lstmkit does without them is tested by name elsewhere."""
    from lstmkit import kernels

    if not kernels.available():
        pytest.skip("the fused C++ extension could not be built here")
