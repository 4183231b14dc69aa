"""Sparse (CSR/CSC) input: the sparse kernels against a numpy float64 reference,
finite differences and the dense kernels, and every estimator's sparse fit against
its dense fit of the same data."""

import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from fastgd import LinearRegression, LogisticRegression, MLPClassifier, MLPRegressor
from fastgd import _build, _engine, _threads
from fastgd._engine import KernelData, Network, Optimizer, Penalty, unpack

KERNEL_BUILDS = _build.available_kernel_builds()


@pytest.fixture(params=sorted(KERNEL_BUILDS))
def kernels(request, monkeypatch):
    """The kernel tests run against each compiled build this CPU can run."""
    monkeypatch.setattr(_engine, "_kernels", KERNEL_BUILDS[request.param])
    return KERNEL_BUILDS[request.param]


def _act(name, z):
    if name == "identity":
        return z
    if name == "logistic":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    e = np.exp(z - z.max(axis=1, keepdims=True))  # softmax
    return e / e.sum(axis=1, keepdims=True)


def reference_forward(params, units, X, hidden, output):
    coefs, intercepts = unpack(np.asarray(params, dtype=np.float64), units)
    a = np.asarray(X, dtype=np.float64)
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        a = _act(output if i == len(coefs) - 1 else hidden, a @ W + b)
    return a


def reference_loss(params, units, X, Y, sw, hidden, output, alpha):
    """The objective whose gradient the kernels return (softmax + log loss or
    identity + summed squared error), in numpy float64."""
    a = reference_forward(params, units, X, hidden, output)
    w = np.ones(len(a)) if sw is None else sw
    if output == "softmax":
        per_row = -(Y * np.log(np.clip(a, 1e-300, 1))).sum(axis=1)
    else:
        per_row = 0.5 * ((Y - a) ** 2).sum(axis=1)
    coefs, _ = unpack(np.asarray(params, dtype=np.float64), units)
    return (w @ per_row + 0.5 * alpha * sum((W**2).sum() for W in coefs)) / w.sum()


def sparse_problem(units, output, n=40, density=0.3, seed=0, dtype=np.float64):
    """(dense X with zeros and some empty rows, its CSR, Y, params, sample weights)."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, units[0])) * (rng.rand(n, units[0]) < density)
    X[::7] = 0.0  # empty rows
    if output == "softmax":
        Y = np.eye(units[-1])[rng.randint(units[-1], size=n)]
    else:
        Y = rng.normal(size=(n, units[-1]))
    n_params = _engine._kernels.parameter_count(np.asarray(units, dtype=np.intp))
    params = rng.uniform(-0.5, 0.5, n_params)
    sw = rng.uniform(0.5, 2.0, n)
    X, Y, params, sw = (a.astype(dtype) for a in (X, Y, params, sw))
    return X, sp.csr_matrix(X), Y, params, sw


@pytest.mark.parametrize("hidden", ["tanh", "relu"])
@pytest.mark.parametrize("output", ["softmax", "identity"])
@pytest.mark.parametrize("units", [(9, 3), (9, 5, 3), (9, 4, 6, 2)])
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_loss_gradient_matches_reference(kernels, monkeypatch, hidden, output,
                                                units, weighted):
    """Full-batch loss and gradient of CSR input: the numpy reference, its central
    differences, and the dense kernels; several blocks and parts."""
    loss = "log_loss" if output == "softmax" else "squared_error"
    X, Xs, Y, params, sw = sparse_problem(units, output)
    sw = sw if weighted else None
    alpha = 0.3
    monkeypatch.setattr(_engine, "_SPARSE_BLOCK_ROWS", 7)
    monkeypatch.setattr(_threads, "slices_for", lambda units, rows, **kw: 3)
    net = Network(units, hidden, output, params.copy())
    value = net.loss_gradient(KernelData(Xs, np.float64, Y, sw), loss, alpha)
    grads = net.grads.copy()
    expected = reference_loss(params, units, X, Y, sw, hidden, output, alpha)
    if output == "identity":
        expected_reported = expected  # reported loss is averaged over outputs
        a = reference_forward(params, units, X, hidden, output)
        w = np.ones(len(a)) if sw is None else sw
        coefs, _ = unpack(params, units)
        expected_reported = (w @ (0.5 * ((Y - a) ** 2).mean(axis=1))
                             + 0.5 * alpha * sum((W**2).sum() for W in coefs)) / w.sum()
        assert value == pytest.approx(expected_reported, rel=1e-12)
    else:
        assert value == pytest.approx(expected, rel=1e-12)
    h = 1e-6
    numeric = np.empty_like(params)
    for k in range(params.size):
        up, down = params.copy(), params.copy()
        up[k] += h
        down[k] -= h
        numeric[k] = (reference_loss(up, units, X, Y, sw, hidden, output, alpha)
                      - reference_loss(down, units, X, Y, sw, hidden, output, alpha)
                      ) / (2 * h)
    np.testing.assert_allclose(grads, numeric, rtol=1e-5, atol=1e-7)
    dense = Network(units, hidden, output, params.copy())
    assert dense.loss_gradient(KernelData(X, np.float64, Y, sw), loss, alpha) == (
        pytest.approx(value, rel=1e-13))
    np.testing.assert_allclose(grads, dense.grads, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("units", [(9, 3), (9, 5, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sparse_predict_matches_reference(kernels, monkeypatch, units, dtype):
    X, Xs, Y, params, _ = sparse_problem(units, "softmax", n=50, dtype=dtype)
    monkeypatch.setattr(_engine, "_SPARSE_BLOCK_ROWS", 8)
    net = Network(units, "tanh", "softmax", params.copy())
    out = net.predict(KernelData(Xs, dtype))
    assert out.dtype == dtype
    expected = reference_forward(params, units, X, "tanh", "softmax")
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-14)


def _epochs(data, units, params, solver, batch, order, dtype=np.float64):
    net = Network(units, "tanh", "softmax", params.copy())
    opt = Optimizer(solver, params.size, dtype, 0.01)
    penalty = Penalty(alpha=0.1, l1=0.01)
    loss = net.train_epoch(data, "log_loss", penalty, opt, order, batch)
    loss += net.train_epoch(data, "log_loss", penalty, opt, order[:37], batch - 2)
    return loss, net.params.copy(), opt.state_1.copy(), opt.state_2.copy()


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("units", [(9, 4), (9, 11, 4), (9, 6, 5, 4)])
@pytest.mark.parametrize("batch", [10, 80])
def test_sparse_epochs_match_dense_and_threads(kernels, monkeypatch, solver, units,
                                               batch):
    """Mini-batch epochs on CSR: the dense epoch up to rounding, for 1, 2 and 3 row
    slices or unit parts; the same bits on 1 or several threads."""
    X, Xs, Y, params, sw = sparse_problem(units, "softmax", n=201)
    order = np.random.RandomState(3).permutation(201)
    monkeypatch.setattr(_threads, "idle_cores", lambda: 64)
    dense = _epochs(KernelData(X, np.float64, Y, sw), units, params, solver, batch,
                    order)
    for slices in (1, 2, 3):
        monkeypatch.setattr(_threads, "slices_for", lambda units, rows, **kw: slices)
        runs = []
        for threads in (1, slices):
            monkeypatch.setenv("FASTGD_NUM_THREADS", str(threads))
            runs.append(_epochs(KernelData(Xs, np.float64, Y, sw), units, params,
                                solver, batch, order))
        for a, b, c in zip(dense, *runs):
            np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-13)
            np.testing.assert_array_equal(b, c)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("units", [(3000, 2), (3000, 3, 2)])
def test_wide_sparse_epochs_clear_by_rows(kernels, monkeypatch, solver, units):
    """Few nonzeros in a wide first layer: the W1 gradient is summed and cleared
    row by row (not densely); still the dense epoch, on any thread count."""
    X, Xs, Y, params, sw = sparse_problem(units, "softmax", n=201, density=0.002)
    order = np.random.RandomState(3).permutation(201)
    monkeypatch.setattr(_threads, "idle_cores", lambda: 64)
    dense = _epochs(KernelData(X, np.float64, Y, sw), units, params, solver, 20,
                    order)
    for slices in (1, 2, 3):
        monkeypatch.setattr(_threads, "slices_for", lambda units, rows, **kw: slices)
        runs = []
        for threads in (1, slices):
            monkeypatch.setenv("FASTGD_NUM_THREADS", str(threads))
            runs.append(_epochs(KernelData(Xs, np.float64, Y, sw), units, params,
                                solver, 20, order))
        for a, b, c in zip(dense, *runs):
            np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-13)
            np.testing.assert_array_equal(b, c)


def test_sparse_float32_epochs_match_dense(kernels):
    units = (9, 11, 4)
    X, Xs, Y, params, sw = sparse_problem(units, "softmax", n=120, dtype=np.float32)
    order = np.arange(120)
    for solver in ("sgd", "adam"):
        a = _epochs(KernelData(X, np.float32, Y, sw), units, params, solver, 20, order,
                    np.float32)
        b = _epochs(KernelData(Xs, np.float32, Y, sw), units, params, solver, 20,
                    order, np.float32)
        for u, v in zip(a, b):
            np.testing.assert_allclose(v, u, rtol=1e-5, atol=1e-6)


def test_duplicate_and_unsorted_indices_are_summed(kernels):
    """scipy allows repeated and unsorted column indices in CSR: they mean the sum."""
    units = (6, 5, 3)
    rng = np.random.RandomState(0)
    n = 30
    rows = np.repeat(np.arange(n), 8)
    cols = rng.randint(0, 6, rows.size)  # repeats within rows
    vals = rng.normal(size=rows.size)
    perm = rng.permutation(8)
    indices = cols.reshape(n, 8)[:, perm].ravel()  # unsorted
    data = vals.reshape(n, 8)[:, perm].ravel()
    Xs = sp.csr_matrix((data, indices, np.arange(n + 1) * 8), shape=(n, 6))
    assert not Xs.has_canonical_format
    before = Xs.indices.copy()
    X = np.zeros((n, 6))
    np.add.at(X, (rows, cols), vals)
    Y = np.eye(3)[rng.randint(3, size=n)]
    params = rng.uniform(-0.5, 0.5, _engine._kernels.parameter_count(
        np.asarray(units, dtype=np.intp)))
    a, b = Network(units, "relu", "softmax", params.copy()), Network(
        units, "relu", "softmax", params.copy())
    la = a.loss_gradient(KernelData(X, np.float64, Y), "log_loss", 0.1)
    lb = b.loss_gradient(KernelData(Xs, np.float64, Y), "log_loss", 0.1)
    assert lb == pytest.approx(la, rel=1e-13)
    np.testing.assert_allclose(b.grads, a.grads, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(b.predict(KernelData(Xs, np.float64)),
                               a.predict(KernelData(X, np.float64)), rtol=1e-13)
    np.testing.assert_array_equal(Xs.indices, before)  # the caller's matrix is intact


def test_invalid_csr_is_refused():
    X = sp.csr_matrix(np.eye(4))
    X.indices[2] = 7  # out of range, unchecked by scipy's constructor
    with pytest.raises(ValueError, match="column indices"):
        KernelData(X, np.float64, np.zeros((4, 1)))


def test_sparse_work_counts_nonzeros():
    """Slices count the sparse first layer by its nonzeros, never as dense."""
    units = (100_000, 1)
    assert _threads.slices_for(units, 200, cap=2) == 2  # dense: 200 x 100,000 x 6 flops
    assert _threads.slices_for((1000, 1), 200, nnz_per_row=5, cap=2) == 1
    assert _threads.slices_for(units, 200, nnz_per_row=100, cap=2) == 2  # the update's work
    k = _engine._kernels
    u = np.asarray((100_000, 100, 3), dtype=np.intp)
    assert k.workspace_size(u, 200, 1, True) == 200 * (3 + 2 * 100)
    assert k.workspace_size(u, 200, 1) == 200 * (100_000 + 3 + 2 * 100)
    assert k.unit_split_workspace_size(u, 32, 2, True) == (
        2 * 32 * (2 * 50 + 3) + 2 * 2 * 32 * 3)


def test_wide_sparse_fit_allocates_no_dense_rows():
    """Memory is O(nnz + batch x widest layer + parameters): a dense block of the
    batch's rows (200 x 200,000 float64 = 320 MB) is never allocated."""
    rng = np.random.RandomState(0)
    n, d, k = 2000, 200_000, 20
    X = sp.csr_matrix((rng.rand(n * k), rng.randint(0, d, n * k),
                       np.arange(n + 1) * k), shape=(n, d))
    y = rng.randint(0, 2, n)
    for est in (LogisticRegression(solver="adam", max_iter=2, random_state=0),
                LogisticRegression(max_iter=5),
                MLPClassifier((8,), max_iter=2, random_state=0)):
        tracemalloc.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
            est.predict_proba(X)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        n_params = d * (8 if isinstance(est, MLPClassifier) else 1)
        # Copies of the parameters (scipy's L-BFGS keeps ~25) and of the nonzeros;
        # a dense block of 64 rows (full batch) or 200 (mini-batch) would not fit.
        assert peak < 60 * 8 * n_params + 40 * n * k, (est, peak)


# ---------------------------------------------------------------------------
# Estimators: sparse fit == dense fit
# ---------------------------------------------------------------------------

ESTIMATORS = [
    (LogisticRegression, dict()),
    (LogisticRegression, dict(solver="sgd", max_iter=5, random_state=0)),
    (LogisticRegression, dict(solver="adam", max_iter=5, random_state=0)),
    (LinearRegression, dict()),
    (LinearRegression, dict(solver="cg")),
    (LinearRegression, dict(solver="lbfgs")),
    (LinearRegression, dict(solver="sgd", max_iter=5, random_state=0)),
    (LinearRegression, dict(solver="adam", max_iter=5, random_state=0)),
    (MLPClassifier, dict(hidden_layer_sizes=(7,), max_iter=8, random_state=0)),
    (MLPClassifier, dict(hidden_layer_sizes=(7,), max_iter=8, random_state=0,
                         batch_size=32)),  # split units on 2 slices
    (MLPClassifier, dict(hidden_layer_sizes=(7, 5), solver="sgd", max_iter=8,
                         random_state=0)),
    (MLPClassifier, dict(hidden_layer_sizes=(7,), solver="lbfgs", max_iter=15,
                         random_state=0)),
    (MLPRegressor, dict(hidden_layer_sizes=(7,), max_iter=8, random_state=0)),
    (MLPRegressor, dict(hidden_layer_sizes=(7,), solver="sgd", max_iter=8,
                        random_state=0, learning_rate_init=1e-3)),
    (MLPRegressor, dict(hidden_layer_sizes=(7,), solver="lbfgs", max_iter=15,
                        random_state=0)),
]


def _data(dtype, classify):
    rng = np.random.RandomState(1)
    n, d = 300, 40
    X = rng.normal(size=(n, d)) * (rng.rand(n, d) < 0.15)
    X[::11] = 0.0  # empty rows
    w = rng.normal(size=d)
    y = X @ w + 0.1 * rng.normal(size=n)
    if classify:
        y = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    return X.astype(dtype), y


def _fitted_numbers(est):
    if hasattr(est, "coefs_"):
        return list(est.coefs_) + list(est.intercepts_)
    return [np.asarray(est.coef_), np.asarray(est.intercept_)]


@pytest.mark.parametrize("Estimator,params", ESTIMATORS,
                         ids=[f"{E.__name__}-{p.get('solver', 'default')}-{i}"
                              for i, (E, p) in enumerate(ESTIMATORS)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("threads", ["1", "2"])
def test_sparse_fit_equals_dense_fit(monkeypatch, Estimator, params, dtype, fmt,
                                     threads):
    monkeypatch.setenv("FASTGD_NUM_THREADS", threads)
    monkeypatch.setattr(_threads, "idle_cores", lambda: 64)
    classify = Estimator in (LogisticRegression, MLPClassifier)
    X, y = _data(dtype, classify)
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dense = Estimator(**params).fit(X, y)
        sparse = Estimator(**params).fit(Xs, y)
    # float64: rounding (~1e-12), grown a little along an iterative solver's path.
    rtol, atol = (1e-5, 1e-5) if dtype == np.float32 else (1e-9, 1e-11)
    default = "lbfgs" if Estimator is LogisticRegression else "auto"
    if dtype == np.float32 and params.get("solver", default) == "lbfgs":
        # L-BFGS on float32 gradients stops where their rounding noise (~1e-7 of the
        # sums, in another order for sparse) takes over: both fits are that close
        # to the optimum, not to each other's rounding.
        rtol, atol = 1e-3, 1e-3
    for a, b in zip(_fitted_numbers(dense), _fitted_numbers(sparse)):
        assert b.dtype == a.dtype
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)
    method = "predict_proba" if classify else "predict"
    pa, pb = getattr(dense, method)(X), getattr(sparse, method)(Xs)
    assert pb.dtype == pa.dtype
    np.testing.assert_allclose(pb, pa, rtol=rtol, atol=atol)


@pytest.mark.parametrize("Estimator,params", [
    (LogisticRegression, dict(solver="adam", max_iter=3, random_state=0)),
    (MLPClassifier, dict(hidden_layer_sizes=(7,), max_iter=3, random_state=0)),
    (MLPClassifier, dict(hidden_layer_sizes=(7,), max_iter=3, random_state=0,
                         batch_size=32)),
    (LogisticRegression, dict()),
])
def test_sparse_fit_is_bitwise_independent_of_threads(monkeypatch, Estimator, params):
    X, y = _data(np.float64, True)
    Xs = sp.csr_matrix(X)
    monkeypatch.setattr(_threads, "idle_cores", lambda: 64)
    monkeypatch.setattr(_threads, "_MIN_FLOPS_PER_SLICE", 1)  # 2 slices, even small
    fits = []
    for threads in ("1", "2"):
        monkeypatch.setenv("FASTGD_NUM_THREADS", threads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(_fitted_numbers(Estimator(**params).fit(Xs, y)))
    for a, b in zip(*fits):
        np.testing.assert_array_equal(a, b)


def test_logistic_lbfgs_on_used_columns_only():
    """Sparse X with mostly empty columns (hashed text): the fit on the used columns
    is the fit on all of them, empty columns keep exact zeros; warm starts from
    nonzero coefs of empty columns take the full problem."""
    rng = np.random.RandomState(0)
    n, d = 200, 300
    X = np.zeros((n, d))
    cols = rng.choice(d, 25, replace=False)
    X[:, cols] = rng.normal(size=(n, 25)) * (rng.rand(n, 25) < 0.4)
    y = rng.randint(0, 3, n)
    dense = LogisticRegression().fit(X, y)
    sparse = LogisticRegression().fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(sparse.intercept_, dense.intercept_, rtol=1e-9,
                               atol=1e-11)
    empty = np.setdiff1d(np.arange(d), cols)
    assert not sparse.coef_[:, empty].any()
    assert sparse.n_iter_ == dense.n_iter_
    warm = LogisticRegression(warm_start=True, C=0.5).fit(sp.csc_matrix(X), y)
    warm.coef_[:, empty] = 0.1
    warm.fit(sp.csc_matrix(X), y)
    assert np.abs(warm.coef_[:, empty]).max() < 1e-3  # L2 pulls them to 0
