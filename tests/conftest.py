"""Suite-wide test settings."""

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
