"""Shared by the kernel tests: they need the compiled extension."""

import pytest

from lstmkit import kernels


@pytest.fixture(scope="module", autouse=True)
def need_kernels():
    if not kernels.available():
        pytest.skip("the fused C++ extension could not be built here")
