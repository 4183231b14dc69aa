"""The epoch's float32/float64 products on packed weights (fastgd/_packed_gemm.h,
``packed_products``): the same epoch as OpenBLAS's products up to summation order,
and bitwise independent of the thread count."""

import numpy as np
import pytest
import scipy.sparse as sp

from fastgd._build import kernels
from fastgd._engine import KernelData, Network, Optimizer

# Products of 100-row slices that run packed: 300 -> 64 (forward, weight gradient),
# 64 -> 48 (the same plus the input gradient on the packed W^T); 48 -> 10 does not.
UNITS = (300, 64, 48, 10)


@pytest.fixture
def packed_switch():
    before = kernels.packed_products()
    yield kernels.packed_products
    kernels.packed_products(before)


def _epoch(monkeypatch, X, Y, params, dtype, solver, threads, packed, slices=2):
    kernels.packed_products(packed)
    monkeypatch.setattr("fastgd._threads.slices_for", lambda units, rows, **kw: slices)
    monkeypatch.setattr("fastgd._threads.idle_cores", lambda: 64)
    monkeypatch.setenv("FASTGD_NUM_THREADS", str(threads))
    net = Network(UNITS, "relu", "softmax", params.astype(dtype))
    opt = Optimizer(solver, params.size, dtype, 0.01)
    order = np.random.RandomState(1).permutation(X.shape[0])
    loss = net.train_epoch(KernelData(X, dtype, Y), "log_loss", 1e-3, opt, order, 200)
    return loss, net.params.copy(), opt.state_1.copy()


def _problem(dtype, n=1050, layout="C", sparse=False):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, UNITS[0]))
    if sparse:
        X = sp.csr_matrix(np.where(np.abs(X) > 1.0, X, 0).astype(dtype))
    else:
        X = np.asarray(X, dtype=dtype, order=layout)
    Y = np.eye(UNITS[-1], dtype=dtype)[rng.randint(UNITS[-1], size=n)]
    size = sum(a * b + b for a, b in zip(UNITS[:-1], UNITS[1:]))
    return X, Y, rng.uniform(-0.1, 0.1, size)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("layout", ["C", "F", "csr"])
def test_packed_epoch_bit_identical_across_threads(monkeypatch, packed_switch, dtype,
                                                   solver, layout):
    X, Y, params = _problem(dtype, layout="C" if layout == "csr" else layout,
                            sparse=layout == "csr")
    one = _epoch(monkeypatch, X, Y, params, dtype, solver, 1, True)
    two = _epoch(monkeypatch, X, Y, params, dtype, solver, 2, True)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_packed_epoch_matches_blas_epoch(monkeypatch, packed_switch, dtype, solver):
    """Only the summation order of the products differs (n = 1050: the last batch's
    slices are shorter)."""
    X, Y, params = _problem(dtype)
    packed = _epoch(monkeypatch, X, Y, params, dtype, solver, 2, True)
    blas = _epoch(monkeypatch, X, Y, params, dtype, solver, 2, False)
    rtol = 2e-4 if dtype == np.float32 else 1e-11
    assert packed[0] == pytest.approx(blas[0], rel=rtol)
    for a, b in zip(packed[1:], blas[1:]):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
    assert not np.array_equal(packed[1], blas[1])   # the packed products did run


def test_packed_products_switch(packed_switch):
    assert packed_switch(False) is False
    assert packed_switch(True) is True


def test_fastgd_gemm_blas_turns_them_off(tmp_path):
    """FASTGD_GEMM=blas, read at import, keeps OpenBLAS (run away from the source
    folder, which would shadow an installed package)."""
    import os
    import subprocess
    import sys

    code = "from fastgd._build import kernels; print(kernels.packed_products())"
    env = dict(os.environ, FASTGD_GEMM="blas")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
