"""The compiled kernels against a plain numpy float64 reference and finite differences."""

import numpy as np
import pytest
import scipy.sparse as sp

from fastgd import _build, _engine, _threads
from fastgd._engine import KernelData, Network, Optimizer, Penalty, model_spec, unpack
from conftest import testing_kernels

KERNEL_BUILDS = _build.available_kernel_builds()


@pytest.fixture(autouse=True, params=sorted(KERNEL_BUILDS))
def kernels(request, monkeypatch):
    """Every test here runs against each compiled build this CPU can run."""
    monkeypatch.setattr(_engine, "_kernels", KERNEL_BUILDS[request.param])
    return KERNEL_BUILDS[request.param]


@pytest.fixture
def testing(kernels):
    """The test-only entry points compiled as ``kernels`` is (see conftest)."""
    return testing_kernels("avx2" if kernels.built_for_avx2() else "baseline")

# (output activation, loss) pairs the estimators use.
OUTPUTS = [
    ("identity", "squared_error"),
    ("exp", "poisson"),
    ("logistic", "binary_log_loss"),
    ("softmax", "log_loss"),
]
HIDDEN = ["identity", "logistic", "tanh", "relu"]


def _act(name, z):
    if name == "identity":
        return z
    if name == "logistic":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "exp":
        return np.exp(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(name)


def reference_loss(params, units, X, Y, sw, hidden, output, loss, alpha, reported=True):
    """scikit-learn's MLP objective written directly in numpy float64.

    scikit-learn reports the squared error averaged over outputs but descends the
    gradient of its sum over outputs (delta = out - y); fastgd matches both. With
    ``reported=False`` this returns the objective whose gradient is followed.
    """
    coefs, intercepts = unpack(np.asarray(params, dtype=np.float64), units)
    a = np.asarray(X, dtype=np.float64)
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        a = _act(output if i == len(coefs) - 1 else hidden, a @ W + b)
    w = np.ones(len(a)) if sw is None else np.asarray(sw, dtype=np.float64)
    eps = np.finfo(np.float64).eps
    if loss == "squared_error":
        per_row = 0.5 * ((Y - a) ** 2).sum(axis=1)
        if reported:
            per_row /= Y.shape[1]
    elif loss == "poisson":
        from scipy.special import xlogy

        per_row = (xlogy(Y, Y / a) - Y + a).sum(axis=1)
    elif loss == "binary_log_loss":
        p = np.clip(a, eps, 1 - eps)
        per_row = -(Y * np.log(p) + (1 - Y) * np.log(1 - p)).sum(axis=1)
    else:
        p = np.clip(a, eps, 1 - eps)
        per_row = -(Y * np.log(p)).sum(axis=1)
    penalty = 0.5 * alpha * sum((W**2).sum() for W in coefs)
    return (w @ per_row + penalty) / w.sum()


def make_problem(units, output, dtype=np.float64, seed=0, n=13):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, units[0]))
    if output == "softmax":
        Y = np.eye(units[-1])[rng.randint(units[-1], size=n)]
    elif output == "logistic":
        Y = (rng.rand(n, units[-1]) > 0.5).astype(float)
    elif output == "exp":
        Y = rng.poisson(2.0, size=(n, units[-1])).astype(float)
    else:
        Y = rng.normal(size=(n, units[-1]))
    n_params = _engine._kernels.parameter_count(np.asarray(units, dtype=np.intp))
    params = rng.uniform(-0.5, 0.5, n_params)
    sw = rng.uniform(0.5, 2.0, n)
    return X.astype(dtype), Y.astype(dtype), params.astype(dtype), sw.astype(dtype)


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("output,loss", OUTPUTS)
@pytest.mark.parametrize("units", [(5, 3), (5, 4, 3), (4, 6, 5, 3)])
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_gradient_matches_reference_and_finite_differences(
    hidden, output, loss, units, weighted
):
    if output == "softmax" and units[-1] < 2:
        pytest.skip("softmax needs 2 outputs")
    X, Y, params, sw = make_problem(units, output)
    sw = sw if weighted else None
    alpha = 0.3
    net = Network(units, hidden, output, params.copy())
    data = KernelData(X, np.float64, Y, sw)
    value = net.loss_gradient(data, loss, alpha)
    expected = reference_loss(params, units, X, Y, sw, hidden, output, loss, alpha)
    assert value == pytest.approx(expected, rel=1e-12)

    # Central differences of the numpy reference, parameter by parameter.
    h = 1e-6
    numeric = np.empty_like(params)
    for k in range(params.size):
        up, down = params.copy(), params.copy()
        up[k] += h
        down[k] -= h
        numeric[k] = (
            reference_loss(up, units, X, Y, sw, hidden, output, loss, alpha, False)
            - reference_loss(down, units, X, Y, sw, hidden, output, loss, alpha, False)
        ) / (2 * h)
    if hidden == "relu":
        # A kink within h of a pre-activation would spoil the difference quotient.
        assert np.mean(np.isclose(net.grads, numeric, rtol=1e-5, atol=1e-7)) > 0.97
    else:
        np.testing.assert_allclose(net.grads, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("output,loss", OUTPUTS)
def test_float32_gradient_agrees_with_float64(hidden, output, loss):
    units = (6, 5, 3)
    X, Y, params, sw = make_problem(units, output, n=40)
    grads = {}
    values = {}
    for dtype in (np.float32, np.float64):
        net = Network(units, hidden, output, params.astype(dtype))
        data = KernelData(X.astype(dtype), dtype, Y.astype(dtype), sw.astype(dtype))
        values[dtype] = net.loss_gradient(data, loss, 0.1)
        assert net.grads.dtype == dtype
        grads[dtype] = net.grads.astype(np.float64)
    assert values[np.float32] == pytest.approx(values[np.float64], rel=1e-4)
    np.testing.assert_allclose(grads[np.float32], grads[np.float64], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_equals_dense(fmt):
    units = (8, 5, 3)
    X, Y, params, sw = make_problem(units, "softmax", n=30)
    X[np.abs(X) < 0.8] = 0
    dense_net = Network(units, "tanh", "softmax", params.copy())
    sparse_net = Network(units, "tanh", "softmax", params.copy())
    v_dense = dense_net.loss_gradient(KernelData(X, np.float64, Y, sw), "log_loss", 0.1)
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    v_sparse = sparse_net.loss_gradient(KernelData(Xs, np.float64, Y, sw), "log_loss", 0.1)
    assert v_sparse == pytest.approx(v_dense, rel=1e-13)
    np.testing.assert_allclose(sparse_net.grads, dense_net.grads, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        sparse_net.predict(KernelData(Xs, np.float64)),
        dense_net.predict(KernelData(X, np.float64)),
        rtol=1e-13,
    )


def test_forward_in_blocks_matches_reference(kernels):
    units = np.array([7, 9, 4], dtype=np.intp)
    X, _, params, _ = make_problem(units, "softmax", n=1000)
    coefs, intercepts = unpack(params, units)
    expected = _act("softmax", np.tanh(X @ coefs[0] + intercepts[0]) @ coefs[1] + intercepts[1])
    spec = model_spec("tanh", "softmax", "squared_error", 0.0, KernelData(X, np.float64))
    empty = np.empty(0, dtype=np.intp)
    for rows in (1, 7, 64, 1000):
        out = np.empty((1000, 4))
        work = np.empty(kernels.workspace_size(units, rows))
        kernels.forward(params, work, units, spec, X, np.empty(0), empty, empty, out, rows, 1)
        np.testing.assert_allclose(out, expected, rtol=1e-12)


def reference_epoch(params, units, X, Y, sw, hidden, output, loss, alpha, opt, order, batch):
    """Mini-batch steps with numpy gradients (central differences are too slow here,
    so the gradient comes from the kernel-independent analytic numpy backprop)."""
    params = params.astype(np.float64).copy()
    s1 = np.zeros_like(params)
    s2 = np.zeros_like(params)
    t = 0
    for start in range(0, len(order), batch):
        rows = order[start : start + batch]
        w = None if sw is None else sw[rows]
        g = reference_gradient(params, units, X[rows], Y[rows], w, hidden, output, alpha)
        if opt["solver"] == "adam":
            t += 1
            s1 = opt["beta_1"] * s1 + (1 - opt["beta_1"]) * g
            s2 = opt["beta_2"] * s2 + (1 - opt["beta_2"]) * g**2
            rate = opt["lr"] * np.sqrt(1 - opt["beta_2"] ** t) / (1 - opt["beta_1"] ** t)
            params += -rate * s1 / (np.sqrt(s2) + opt["epsilon"])
        else:
            s1 = opt["momentum"] * s1 - opt["lr"] * g
            if opt["nesterov"]:
                params += opt["momentum"] * s1 - opt["lr"] * g
            else:
                params += s1
    return params


def reference_gradient(params, units, X, Y, sw, hidden, output, alpha):
    """Analytic backprop in numpy float64 (checked against finite differences above
    through the kernel, and here against the kernel's own loss_gradient)."""
    coefs, intercepts = unpack(params, units)
    acts = [X]
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        acts.append(_act(output if i == len(coefs) - 1 else hidden, acts[-1] @ W + b))
    w = np.ones(len(X)) if sw is None else sw
    delta = (acts[-1] - Y) * w[:, None]
    grads_W, grads_b = [], []
    for i in range(len(coefs) - 1, -1, -1):
        grads_W.insert(0, (acts[i].T @ delta + alpha * coefs[i]) / w.sum())
        grads_b.insert(0, delta.sum(axis=0) / w.sum())
        if i > 0:
            delta = delta @ coefs[i].T
            z = acts[i]
            if hidden == "tanh":
                delta *= 1 - z**2
            elif hidden == "logistic":
                delta *= z * (1 - z)
            elif hidden == "relu":
                delta[z == 0] = 0
    return np.concatenate([g.ravel() for g in grads_W + grads_b])


@pytest.mark.parametrize("hidden", HIDDEN)
def test_reference_gradient_is_the_kernel_gradient(hidden):
    units = (5, 4, 3)
    X, Y, params, sw = make_problem(units, "softmax", n=20)
    net = Network(units, hidden, "softmax", params.copy())
    net.loss_gradient(KernelData(X, np.float64, Y, sw), "log_loss", 0.2)
    np.testing.assert_allclose(
        reference_gradient(params, units, X, Y, sw, hidden, "softmax", 0.2),
        net.grads, rtol=1e-12, atol=1e-15,
    )


OPTIMIZERS = [
    {"solver": "sgd", "lr": 0.1, "momentum": 0.0, "nesterov": False},
    {"solver": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": False},
    {"solver": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
    {"solver": "adam", "lr": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8},
]


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=lambda o: str(sorted(o.items())))
@pytest.mark.parametrize("batch", [1, 7, 50])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_train_epoch_matches_numpy_steps(opt, batch, weighted, dtype):
    units = (6, 5, 4)
    X, Y, params, sw = make_problem(units, "softmax", n=50)
    sw = sw if weighted else None
    order = np.random.RandomState(1).permutation(50)
    expected = reference_epoch(
        params, units, X, Y, sw, "tanh", "softmax", "log_loss", 0.01, opt, order, batch
    )
    net = Network(units, "tanh", "softmax", params.astype(dtype))
    optimizer = Optimizer(
        opt["solver"], params.size, dtype, opt["lr"],
        momentum=opt.get("momentum", 0.9), nesterov=opt.get("nesterov", True),
        beta_1=opt.get("beta_1", 0.9), beta_2=opt.get("beta_2", 0.999),
        epsilon=opt.get("epsilon", 1e-8),
    )
    data = KernelData(X, dtype, Y, sw)
    net.train_epoch(data, "log_loss", 0.01, optimizer, order, batch)
    rtol = 1e-10 if dtype == np.float64 else 2e-3
    np.testing.assert_allclose(net.params, expected, rtol=rtol, atol=rtol * 1e-2)
    if opt["solver"] == "adam":
        assert optimizer.step == -(-50 // batch)


def test_train_epoch_loss_sum_is_sklearn_accumulation():
    """The returned sum is sum over batches of (batch loss before its step) x rows."""
    units = (4, 3, 2)
    X, Y, params, _ = make_problem(units, "logistic", n=10)
    order = np.arange(10)
    net = Network(units, "relu", "logistic", params.copy())
    opt = Optimizer("sgd", params.size, np.float64, 0.05, momentum=0.0)
    loss_sum = net.train_epoch(KernelData(X, np.float64, Y), "binary_log_loss", 0.5,
                               opt, order, 4)
    p = params.copy()
    expected = 0.0
    for start in range(0, 10, 4):
        rows = order[start : start + 4]
        expected += len(rows) * reference_loss(
            p, units, X[rows], Y[rows], None, "relu", "logistic", "binary_log_loss", 0.5
        )
        p = p - 0.05 * reference_gradient(p, units, X[rows], Y[rows], None, "relu",
                                          "logistic", 0.5)
    assert loss_sum == pytest.approx(expected, rel=1e-12)


def test_network_rejects_mismatched_inputs():
    units = (4, 3, 2)
    X, Y, params, _ = make_problem(units, "softmax")
    net = Network(units, "relu", "softmax", params)
    opt = Optimizer("adam", params.size, np.float64, 0.01)
    with pytest.raises(ValueError, match="features"):
        net.predict(KernelData(X[:, :3], np.float64))
    with pytest.raises(TypeError, match="dtype"):
        net.predict(KernelData(X, np.float32))
    with pytest.raises(ValueError, match="out of range"):
        net.train_epoch(KernelData(X, np.float64, Y), "log_loss", 0.0, opt,
                        np.array([0, 99]), 2)
    with pytest.raises(ValueError, match="Y has shape"):
        net.train_epoch(KernelData(X, np.float64, Y[:, :1]), "log_loss", 0.0, opt,
                        np.arange(len(X)), 2)
    with pytest.raises(ValueError, match="parameter buffer"):
        Network(units, "relu", "softmax", params[:-1])


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_per_sample_penalty_with_l1_prox_matches_numpy(solver, fit_intercept):
    """Linear-model penalties: alpha and l1 added per sample (not divided by the
    batch weight), L1 by soft-thresholding with each coordinate's step."""
    units = (6, 2)
    X, Y, params, sw = make_problem(units, "identity", n=30)
    alpha, l1, lr, batch = 0.3, 0.5, 0.05, 8
    order = np.arange(30)
    p = params.copy()
    nc = 12
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, start in enumerate(range(0, 30, batch), start=1):
        rows = order[start : start + batch]
        g = reference_gradient(p, units, X[rows], Y[rows], sw[rows], "identity",
                               "identity", 0.0)
        g[:nc] += alpha * p[:nc]
        if not fit_intercept:
            g[nc:] = 0
        if solver == "sgd":
            p -= lr * g
            step = np.full(nc, lr)
        else:
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g**2
            rate = lr * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            p -= rate * m / (np.sqrt(v) + 1e-8)
            step = rate / (np.sqrt(v[:nc]) + 1e-8)
        p[:nc] = np.sign(p[:nc]) * np.maximum(np.abs(p[:nc]) - l1 * step, 0)
    net = Network(units, "identity", "identity", params.copy())
    opt = Optimizer(solver, params.size, np.float64, lr, momentum=0.0)
    penalty = Penalty(alpha=alpha, l1=l1, per_batch=False, fit_intercept=fit_intercept)
    net.train_epoch(KernelData(X, np.float64, Y, sw), "squared_error", penalty, opt,
                    order, batch)
    np.testing.assert_allclose(net.params, p, rtol=1e-10, atol=1e-12)
    assert np.any(net.params[:nc] == 0)  # the proximal step gives exact zeros
    if not fit_intercept:
        np.testing.assert_array_equal(net.params[nc:], params[nc:])


def test_full_batch_per_sample_penalty():
    units = (5, 3)
    X, Y, params, sw = make_problem(units, "softmax", n=20)
    net = Network(units, "identity", "softmax", params.copy())
    penalty = Penalty(alpha=0.7, per_batch=False, fit_intercept=False)
    value = net.loss_gradient(KernelData(X, np.float64, Y, sw), "log_loss", penalty)
    coefs = params[:15]
    expected = reference_loss(params, units, X, Y, sw, "identity", "softmax", "log_loss",
                              0.0) + 0.35 * (coefs**2).sum()
    assert value == pytest.approx(expected, rel=1e-12)
    g = reference_gradient(params, units, X, Y, sw, "identity", "softmax", 0.0)
    g[:15] += 0.7 * coefs
    g[15:] = 0
    np.testing.assert_allclose(net.grads, g, rtol=1e-11, atol=1e-14)
    with pytest.raises(ValueError, match="L1"):
        net.loss_gradient(KernelData(X, np.float64, Y, sw), "log_loss", Penalty(l1=0.1))


@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("sparse_input", [False, True])
def test_slices_are_bitwise_independent_of_threads(monkeypatch, n_threads, solver,
                                                    sparse_input):
    """Row slices give the same bits on 1 or several threads, and equal the
    unsliced epoch up to rounding, including batches with fewer rows than slices."""
    units = (7, 6, 5, 3)
    X, Y, params, sw = make_problem(units, "softmax", n=201)
    Xin = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0)) if sparse_input else X
    order = np.random.RandomState(3).permutation(201)
    monkeypatch.setattr("fastgd._engine._BLOCK_ELEMENTS", 1)  # 64-row blocks
    monkeypatch.setattr("fastgd._threads.idle_cores", lambda: 64)
    results = {}
    for slices, threads in ((1, 1), (3, 1), (3, n_threads)):
        monkeypatch.setattr("fastgd._threads.slices_for", lambda units, rows, **kw: slices)
        monkeypatch.setenv("FASTGD_NUM_THREADS", str(threads))
        net = Network(units, "tanh", "softmax", params.copy())
        opt = Optimizer(solver, params.size, np.float64, 0.01)
        data = KernelData(Xin, np.float64, Y, sw)
        loss = net.train_epoch(data, "log_loss", Penalty(alpha=0.1, l1=0.01), opt, order, 10)
        full = net.loss_gradient(data, "log_loss", 0.1)
        results[slices, threads] = (loss, net.params.copy(), full, net.grads.copy(),
                                    net.predict(data))
    for a, b, c in zip(results[1, 1], results[3, 1], results[3, n_threads]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(b, c)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("sparse_input", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("output,loss", [("softmax", "log_loss"),
                                         ("identity", "squared_error")])
def test_unit_split_matches_serial_epoch(monkeypatch, solver, sparse_input, weighted,
                                         output, loss):
    """One hidden layer split into 2 or 3 parts of units: the serial epoch up to
    rounding, the same bits on 1 or several threads, batches of any size."""
    units = (7, 11, 4)
    X, Y, params, sw = make_problem(units, output, n=201)
    sw = sw if weighted else None
    Xin = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0)) if sparse_input else X
    order = np.random.RandomState(3).permutation(201)
    monkeypatch.setattr("fastgd._threads.idle_cores", lambda: 64)
    results = {}
    for parts, threads in ((1, 1), (2, 1), (2, 2), (3, 1), (3, 3)):
        monkeypatch.setattr("fastgd._threads.slices_for", lambda units, rows, **kw: parts)
        monkeypatch.setenv("FASTGD_NUM_THREADS", str(threads))
        assert _threads.splits_units(units, 10, parts) == (parts > 1)
        net = Network(units, "tanh", output, params.copy())
        opt = Optimizer(solver, params.size, np.float64, 0.01)
        data = KernelData(Xin, np.float64, Y, sw)
        penalty = Penalty(alpha=0.1, l1=0.01)
        loss_sum = net.train_epoch(data, loss, penalty, opt, order, 10)
        loss_sum += net.train_epoch(data, loss, penalty, opt, order[:37], 8)
        results[parts, threads] = (loss_sum, net.params.copy(), opt.state_1.copy(),
                                   opt.state_2.copy(), opt.step)
    for parts in (2, 3):
        for a, b in zip(results[1, 1], results[parts, 1]):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)
        for a, b in zip(results[parts, 1], results[parts, parts]):
            np.testing.assert_array_equal(a, b)


def test_unit_split_reference_steps():
    """Through the split path against the numpy reference epoch (no L1)."""
    units = (6, 9, 4)
    X, Y, params, sw = make_problem(units, "softmax", n=60)
    order = np.random.RandomState(1).permutation(60)
    for opt in OPTIMIZERS:
        expected = reference_epoch(params, units, X, Y, sw, "tanh", "softmax",
                                   "log_loss", 0.01, opt, order, 20)
        net = Network(units, "tanh", "softmax", params.copy())
        optimizer = Optimizer(
            opt["solver"], params.size, np.float64, opt["lr"],
            momentum=opt.get("momentum", 0.9), nesterov=opt.get("nesterov", True),
            beta_1=opt.get("beta_1", 0.9), beta_2=opt.get("beta_2", 0.999),
            epsilon=opt.get("epsilon", 1e-8))
        work = np.empty(_engine._kernels.unit_split_workspace_size(
            np.array(units, dtype=np.intp), 20, 2))
        data = KernelData(X, np.float64, Y, sw)
        spec = _engine.model_spec("tanh", "softmax", "log_loss", 0.01, data)
        _engine._kernels.train_epoch(
            net.params, net.grads, optimizer.state_1, optimizer.state_2, work,
            np.array(units, dtype=np.intp), spec, optimizer.kernel_spec(),
            *data.x_args(), data.Y, data.sample_weight, order, 20, 2, 2,
            np.zeros(1, dtype=np.int64), split_units=True)
        np.testing.assert_allclose(net.params, expected, rtol=1e-10, atol=1e-12)


def test_unit_split_rejects_bad_calls():
    units = np.array([6, 9, 5, 4], dtype=np.intp)
    X, Y, params, _ = make_problem(tuple(units), "softmax", n=30)
    data = KernelData(X, np.float64, Y, None)
    spec = _engine.model_spec("tanh", "softmax", "log_loss", 0.01, data)
    opt = Optimizer("sgd", params.size, np.float64, 0.1)
    args = (params.copy(), np.empty_like(params), opt.state_1, opt.state_2,
            np.empty(100_000), units, spec, opt.kernel_spec(), *data.x_args(), data.Y,
            data.sample_weight, np.arange(30), 10, 2, 2, np.zeros(1, dtype=np.int64))
    with pytest.raises(ValueError, match="one hidden layer"):
        _engine._kernels.train_epoch(*args, split_units=True)
    small = list(args)
    small[4] = np.empty(10)
    with pytest.raises(ValueError, match="work is too small"):
        _engine._kernels.train_epoch(*small)
    wrong_state = list(args)
    wrong_state[2] = np.zeros(3)
    with pytest.raises(ValueError, match="optimizer state"):
        _engine._kernels.train_epoch(*wrong_state)


# The slice policy's properties (not its numbers): tests/test_threads.py.


# --- element-wise functions (fastgd/_vmath.h) -------------------------------------

def _ulp_errors(testing, dtype, activation, x):
    """Errors of the kernels' activation pass, in ulps of the exact result (long
    double numpy), over the finite normal results; and the result itself."""
    z = x.astype(dtype)[None, :].copy()
    testing.apply_activation(z, np.zeros(z.shape[1], dtype), activation)
    exact = _act(activation, x.astype(dtype).astype(np.longdouble))
    with np.errstate(over="ignore"):
        exact_in_dtype = exact.astype(dtype)
    normal = np.isfinite(exact_in_dtype) & (np.abs(exact) >= np.finfo(dtype).tiny)
    spacing = np.spacing(np.abs(exact_in_dtype[normal])).astype(np.longdouble)
    return np.abs(z[0][normal] - exact[normal]) / spacing, z[0], exact_in_dtype


def _grid(limit, dtype):
    # Dense near zero and the tanh branch point 0.55, plus the whole useful range.
    near_cut = np.nextafter(dtype(0.55), [dtype(0), dtype(1)]).astype(np.float64)
    return np.concatenate([np.linspace(-limit, limit, 400_001), np.linspace(-1, 1, 200_001),
                           np.geomspace(1e-30, 1, 2_001), -np.geomspace(1e-30, 1, 2_001),
                           [0.55, -0.55], near_cut, -near_cut])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation,limit", [("tanh", 30), ("logistic", 120),
                                              ("exp", 800)])
def test_elementwise_functions_are_within_a_few_ulps(testing, dtype, activation, limit):
    ulps, result, exact = _ulp_errors(testing, dtype, activation, _grid(limit, dtype))
    assert ulps.max() <= 3, ulps.max()
    # Overflow gives inf, underflow (to subnormals) gives 0 or a subnormal.
    assert np.array_equal(result[np.isinf(exact)], exact[np.isinf(exact)])
    tiny = np.isfinite(exact) & (np.abs(exact) < np.finfo(dtype).tiny)
    assert (np.abs(result[tiny]) < np.finfo(dtype).tiny).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["tanh", "logistic", "exp", "relu", "softmax"])
def test_elementwise_special_values(testing, dtype, activation):
    z = np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0]], dtype=dtype)
    testing.apply_activation(z, np.zeros(5, dtype), activation)
    with np.errstate(invalid="ignore", over="ignore"):
        expected = _act(activation, np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0]]))
    np.testing.assert_array_equal(z, expected.astype(dtype))


# --- small matrix products (fastgd/_small_gemm.h) -----------------------------------

def _product_operands(rng, m, n, k, trans_a, trans_b, dtype):
    """a and b, stored for op(a) (m x k) and op(b) (k x n), and op(a), op(b) in
    float64 (the reference product's operands)."""
    a = rng.normal(size=(m, k) if trans_a == "N" else (k, m)).astype(dtype)
    b = rng.normal(size=(k, n) if trans_b == "N" else (n, k)).astype(dtype)
    op_a = (a if trans_a == "N" else a.T).astype(np.float64)
    op_b = (b if trans_b == "N" else b.T).astype(np.float64)
    return a, b, op_a, op_b


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", ["N", "T"])
@pytest.mark.parametrize("trans_b", ["N", "T"])
@pytest.mark.parametrize("accumulate", [False, True])
def test_small_matmul_matches_numpy(testing, dtype, trans_a, trans_b, accumulate):
    rng = np.random.RandomState(0)
    # Every path: 4-row blocks and the row tail, two-vector, one-vector and padded
    # column tails, k = 1.
    for m, n, k in [(1, 1, 1), (4, 16, 3), (5, 17, 10), (16, 100, 10), (7, 3, 1),
                    (13, 8, 33), (33, 41, 7), (100, 10, 16)]:
        a, b, op_a, op_b = _product_operands(rng, m, n, k, trans_a, trans_b, dtype)
        c = rng.normal(size=(m, n)).astype(dtype)
        expected = op_a @ op_b
        if accumulate:
            expected += c
        testing.small_matmul(trans_a, trans_b, a, b, c, accumulate)
        tol = 1e-5 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(c, expected, rtol=tol, atol=tol * k)


def test_small_matmul_rejects_bad_shapes(testing):
    a, b, c = np.ones((3, 4)), np.ones((5, 2)), np.ones((3, 2))
    with pytest.raises(ValueError, match="shapes"):
        testing.small_matmul("N", "N", a, b, c, False)


# --- packed products (fastgd/_packed_gemm.h) ----------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", ["N", "T"])
@pytest.mark.parametrize("trans_b", ["N", "T"])
@pytest.mark.parametrize("accumulate", [False, True])
def test_packed_matmul_matches_numpy(testing, dtype, trans_a, trans_b, accumulate):
    rng = np.random.RandomState(1)
    # 6-row blocks and every row tail, two-vector panels, one-vector and wider column
    # tails, several k blocks (> 256) and their uneven split, k = 1, n = 1, m = 1,
    # empty products; C with a wider row stride than n.
    shapes = [(1, 1, 1), (6, 16, 1), (7, 17, 3), (5, 8, 10), (12, 9, 257), (13, 33, 600),
              (100, 100, 784), (784, 100, 100), (241, 40, 5), (3, 1, 50), (1, 50, 3),
              (37, 23, 513), (0, 5, 3), (4, 0, 3), (4, 5, 0)]
    for m, n, k in shapes:
        a, b, op_a, op_b = _product_operands(rng, m, n, k, trans_a, trans_b, dtype)
        wide = rng.normal(size=(m, n + 3)).astype(dtype)
        c = wide[:, :n]
        before = wide.copy()
        expected = op_a @ op_b + (c if accumulate else 0)
        bound = np.abs(op_a) @ np.abs(op_b) + (np.abs(c) if accumulate else 0)
        testing.packed_matmul(trans_a, trans_b, a, b, c, accumulate)
        # Each entry: k multiply-adds, a sum per k block, C: at most (k + 3) roundings.
        eps = np.finfo(dtype).eps
        assert (np.abs(c - expected) <= (k + 3) * eps * bound).all(), (m, n, k)
        np.testing.assert_array_equal(wide[:, n:], before[:, n:])   # stride kept


def test_packed_matmul_rows_do_not_depend_on_the_block(testing):
    """A row's result is the same whichever 6-row block or m it is computed in (the
    row slices of a batch must not change the arithmetic)."""
    rng = np.random.RandomState(2)
    for dtype in (np.float32, np.float64):
        a = rng.normal(size=(50, 300)).astype(dtype)
        b = rng.normal(size=(300, 40)).astype(dtype)
        whole = np.zeros((50, 40), dtype)
        testing.packed_matmul("N", "N", a, b, whole, False)
        for lo, hi in [(0, 1), (3, 10), (7, 50), (49, 50)]:
            part = np.zeros((hi - lo, 40), dtype)
            testing.packed_matmul("N", "N", np.ascontiguousarray(a[lo:hi]), b, part, False)
            np.testing.assert_array_equal(part, whole[lo:hi])


# --- the optimizer update and the penalty sums --------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 31, 1001])
@pytest.mark.parametrize("zero_weights", [False, True])
def test_adam_update_matches_float64(testing, dtype, n, zero_weights):
    """float32 takes 1 / (sqrt(s) + eps) from rsqrt/rcp estimates plus a Newton step
    each (_vmath.h): the step must stay within a few 1e-7 of the exact one for every
    size of s, zero and subnormal included."""
    rng = np.random.RandomState(n)
    w = np.zeros(n) if zero_weights else rng.normal(size=n)
    raw = rng.normal(size=n) * 10.0 ** rng.uniform(-6, 3, size=n)
    m = rng.normal(size=n) * 10.0 ** rng.uniform(-6, 1, size=n)
    s = 10.0 ** rng.uniform(-30, 4, size=n)
    s[::5] = 0.0
    s[1::7] = 1e-40  # subnormal in float32
    alpha, weight_sum, b1, b2, epsilon, rate = 0.3, 32.0, 0.9, 0.999, 1e-8, 1e-3
    w, raw, m, s = (a.astype(dtype) for a in (w, raw, m, s))
    w0, raw0, m0, s0 = (a.astype(np.float64) for a in (w, raw, m, s))
    testing.adam_update(w, raw, m, s, alpha, weight_sum, b1, b2, epsilon, rate)
    eps = np.finfo(dtype).eps
    # The moments: a few roundings of their terms (raw + alpha w and the m update
    # can cancel, so the bounds scale with the terms, not the results).
    g = (raw0 + alpha * w0) / weight_sum
    g_scale = (np.abs(raw0) + np.abs(alpha * w0)) / weight_sum
    tiny = np.finfo(dtype).tiny
    m_err = np.abs(m - (b1 * m0 + (1 - b1) * g))
    assert (m_err <= 4 * eps * (b1 * np.abs(m0) + (1 - b1) * g_scale) + tiny).all()
    s_err = np.abs(s - (b2 * s0 + (1 - b2) * g * g))
    assert (s_err <= 4 * eps * (b2 * s0 + (1 - b2) * g_scale**2) + tiny).all()
    # The step from the moments the kernel stored: rounding w costs half an ulp of
    # w, the estimates a few 1e-7 of the step.
    step = rate * m.astype(np.float64) / (np.sqrt(s.astype(np.float64)) + epsilon)
    step_tol = 2e-6 if dtype == np.float32 else 8 * eps
    limit = np.spacing(np.abs(w0 - step).astype(dtype)) + step_tol * np.abs(step)
    assert (np.abs(w - (w0 - step)) <= limit).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 15, 16, 17, 100, 11_010])
def test_square_and_abs_sums(testing, dtype, n):
    w = np.random.RandomState(n).normal(size=n).astype(dtype)
    sumsq, sumabs = testing.square_and_abs_sums(w)
    exact = w.astype(np.float64)
    # float weights: 32 float partial sums of n / 32 terms each (see _vmath.h).
    rel = (n / 32 + 2) * 2.0**-23 if dtype == np.float32 else 1e-13
    assert sumsq == pytest.approx(np.sum(exact * exact), rel=rel)
    assert sumabs == pytest.approx(np.sum(np.abs(exact)), rel=rel)
    assert testing.square_and_abs_sums(w[:0]) == (0.0, 0.0)


# --- the finiteness scan (fastgd/_vmath.h) -----------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_all_finite_finds_every_nan_and_inf(kernels, dtype, n_threads):
    rng = np.random.RandomState(0)
    for n in [0, 1, 31, 32, 33, 1000]:
        x = (rng.normal(size=n) * 1e30).astype(dtype)
        x[: n // 2] = np.finfo(dtype).max  # huge but finite
        assert kernels.all_finite(x, n_threads)
        for position in {0, n // 2, n - 1} if n else ():
            for bad in (np.nan, np.inf, -np.inf):
                y = x.copy()
                y[position] = bad
                assert not kernels.all_finite(y, n_threads)


@pytest.mark.parametrize("make", [
    lambda X: X, np.asfortranarray, lambda X: X[:, ::2], sp.csr_matrix,
    lambda X: X.astype(np.float32),
])
def test_check_finite_says_what_check_array_says(make):
    from sklearn.utils import check_array

    from fastgd import MLPClassifier

    X = np.random.RandomState(0).normal(size=(40, 6))
    _engine.check_finite(make(X), MLPClassifier())
    for bad in (np.nan, np.inf):
        Xb = X.copy()
        Xb[17, 4] = bad
        Xb = make(Xb)
        with pytest.raises(ValueError) as ours:
            _engine.check_finite(Xb, MLPClassifier())
        with pytest.raises(ValueError) as theirs:
            check_array(Xb, accept_sparse="csr", estimator=MLPClassifier(), input_name="X")
        assert str(ours.value) == str(theirs.value)


def test_loss_gradient_and_forward_check_their_buffers(kernels):
    """The kernels index without bounds checks: every buffer size is checked first."""
    units = np.array([4, 5, 3], dtype=np.intp)
    X, Y, params, _ = make_problem(tuple(units), "softmax", n=20)
    data = KernelData(X, np.float64, Y, None)
    spec = model_spec("tanh", "softmax", "log_loss", 0.1, data)
    empty = np.empty(0, dtype=np.intp)
    grads = np.empty_like(params)
    work = np.empty(kernels.workspace_size(units, 8, 2))

    def gradient(params=params, grads=grads, work=work, X=X, Y=Y, rows=8):
        return kernels.loss_gradient(params, grads, work, units, spec, X, np.empty(0),
                                     empty, empty, Y, np.empty(0), rows, 2, 1)

    def forward(params=params, work=work, X=X, out=None, rows=8):
        out = np.empty((len(X), 3)) if out is None else out
        kernels.forward(params, work, units, spec, X, np.empty(0), empty, empty, out,
                        rows, 2)
        return out

    assert np.isfinite(gradient())
    assert forward().shape == (20, 3)
    for bad, match in [(dict(work=work[:-1]), "work is too small"),
                       (dict(params=params[:-1]), "params"),
                       (dict(grads=grads[:-1]), "grads"),
                       (dict(X=X[:, :3].copy()), "X has shape"),
                       (dict(Y=Y[:, :2].copy()), "Y"),
                       (dict(Y=Y[:10].copy()), "X has shape"),
                       (dict(rows=0), "block_rows")]:
        with pytest.raises(ValueError, match=match):
            gradient(**bad)
    for bad, match in [(dict(work=work[: kernels.workspace_size(units, 8, 1) - 1]),
                         "work is too small"),
                       (dict(params=params[:-1]), "params"),
                       (dict(X=X[:, :3].copy()), "X has shape"),
                       (dict(out=np.empty((19, 3))), "X has shape"),
                       (dict(out=np.empty((20, 2))), "out"),
                       (dict(rows=0), "block_rows")]:
        with pytest.raises(ValueError, match=match):
            forward(**bad)


def test_registry_names_what_the_estimators_use(kernels):
    """The codes come from the kernels' enums, one per activation, loss and solver."""
    assert set(kernels.ACTIVATION_CODES) == {"identity", "logistic", "tanh", "relu",
                                             "softmax", "exp", "leaky_relu", "gelu",
                                             "silu"}
    assert set(kernels.LOSS_CODES) == {"squared_error", "log_loss", "binary_log_loss",
                                       "poisson"}
    assert set(kernels.SOLVER_CODES) == {"sgd", "adam", "adamw", "rmsprop", "adagrad"}
    for codes in (kernels.ACTIVATION_CODES, kernels.LOSS_CODES, kernels.SOLVER_CODES):
        assert sorted(codes.values()) == list(range(len(codes)))
    # test-only: fastgd._kernels_testing
    for name in ("small_matmul", "activation_derivative", "dropout_mask"):
        assert not hasattr(kernels, name), name


@pytest.mark.parametrize("units", [(10, 1), (4, 3), (30, 1), (16, 16), (30, 9)])
@pytest.mark.parametrize("output,loss", OUTPUTS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["C", "F", "csr"])
@pytest.mark.parametrize("threads", ["1", "2"])
def test_narrow_linear_rows_match_reference(units, output, loss, dtype, layout, threads,
                                            monkeypatch):
    """Linear models of at most NARROW_LINEAR_WEIGHTS weights run row loops, not GEMM
    calls ((30, 9) is past the limit, for comparison): loss, gradient and predictions
    against the numpy float64 reference and its finite differences, in every layout,
    on 1 and 2 threads over 2 parts (n = 1003 leaves tails after groups of 4 rows)."""
    if output == "softmax" and units[-1] < 2:
        pytest.skip("softmax needs 2 outputs")
    monkeypatch.setenv("FASTGD_NUM_THREADS", threads)
    monkeypatch.setenv("FASTGD_MAX_SLICES", "2")
    monkeypatch.setattr(_threads, "_MIN_FLOPS_PER_SLICE", 1)
    monkeypatch.setattr(_threads, "idle_cores", lambda: 2)
    X, Y, params, sw = make_problem(units, output, n=1003, seed=3)
    X[np.abs(X) < 0.5] = 0  # some structure for CSR
    X64 = X.astype(np.float64)
    if layout == "F":
        X = np.asfortranarray(X.astype(dtype))
    elif layout == "csr":
        X = sp.csr_matrix(X.astype(dtype))
    net = Network(units, "identity", output, params.astype(dtype))
    data = KernelData(X, dtype, Y.astype(dtype), sw.astype(dtype))
    value = net.loss_gradient(data, loss, 0.2)
    p64 = params.astype(np.float64)
    args = (units, X64, Y.astype(np.float64), sw.astype(np.float64), "identity", output,
            loss, 0.2)
    expected = reference_loss(p64, *args)
    h = 1e-6
    numeric = np.array([
        (reference_loss(p64 + h * e, *args, reported=False)
         - reference_loss(p64 - h * e, *args, reported=False)) / (2 * h)
        for e in np.eye(p64.size)])
    coefs, intercepts = unpack(p64, units)
    want_out = _act(output, X64 @ coefs[0] + intercepts[0])
    got_out = net.predict(KernelData(X, dtype))
    if dtype == np.float64:
        assert value == pytest.approx(expected, rel=1e-12)
        np.testing.assert_allclose(net.grads, numeric, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(got_out, want_out, rtol=1e-12, atol=1e-15)
    else:
        assert value == pytest.approx(expected, rel=1e-5)
        np.testing.assert_allclose(net.grads, numeric, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(got_out, want_out, rtol=1e-4, atol=1e-6)
