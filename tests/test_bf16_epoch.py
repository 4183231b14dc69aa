"""matmul_precision="bfloat16": the mini-batch epoch's products on bfloat16 inputs.

Every path runs here: the CPU's own units (fastgd._build.matmul_path()), and on any
x86-64 CPU the test paths "plain" (the same arithmetic in plain C) and
"amx_emulated" (the AMX loops on tiles emulated in C), chosen by patching the
import-time choice (``_build._matmul_path``) as FASTGD_BF16_PATH would set it.
"""
import _thread
import os
import signal
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

import fastgd
from fastgd import _build, _engine, _threads
from fastgd._engine import KernelData, Network, Optimizer, model_spec

PATHS = [*_build.kernels.BF16_PATH_CODES, *_build.kernels.BF16_TEST_CODES]
ESTIMATORS = [fastgd.MLPClassifier, fastgd.MLPRegressor, fastgd.LogisticRegression,
              fastgd.LinearRegression]


@pytest.fixture(params=PATHS)
def path(request, monkeypatch):
    monkeypatch.setattr(_build, "_matmul_path", request.param)
    return request.param


def bf16(x):
    """float64 values of x rounded to bfloat16 (to nearest even; no NaN here)."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


def slices(monkeypatch, n_threads, n_slices=2):
    monkeypatch.setenv("FASTGD_NUM_THREADS", str(n_threads))
    monkeypatch.setenv("FASTGD_MAX_SLICES", str(n_slices))
    monkeypatch.setattr(_threads, "idle_cores", lambda: 2)
    monkeypatch.setattr(_threads, "_MIN_FLOPS_PER_SLICE", 1)   # small problems too
    monkeypatch.setattr(_threads, "_MIN_ROWS_PER_SLICE", 8)


def sgd_step(units, params, X, Y, hidden, precision, batch=None, loss="squared_error",
             output="identity"):
    """The parameters after one sgd epoch (learning rate 1, no momentum, no
    penalty) over X in order: for one batch, params - mean gradient."""
    net = Network(units, hidden, output, params.astype(np.float32))
    opt = Optimizer("sgd", params.size, np.float32, 1.0, momentum=0.0)
    net.train_epoch(KernelData(X, np.float32, Y), loss, 0.0, opt, np.arange(len(X)),
                    batch or len(X), matmul_precision=precision)
    return net.params.astype(np.float64)


def unpack(params, units):
    coefs, intercepts, pos = [], [], 0
    for a, b in zip(units[:-1], units[1:]):
        coefs.append(params[pos:pos + a * b].reshape(a, b))
        pos += a * b
    for b in units[1:]:
        intercepts.append(params[pos:pos + b])
        pos += b
    return coefs, intercepts


def reference_gradient(units, params, X, Y, rnd):
    """Mean gradient of 0.5 sum (out - Y)^2 / n through identity layers (float64),
    with every product input passed through ``rnd`` (bf16, or the identity)."""
    coefs, intercepts = unpack(params, units)
    acts = [X]
    for W, b in zip(coefs, intercepts):
        acts.append(rnd(acts[-1]) @ rnd(W) + b)
    delta = acts[-1] - Y
    grads = [None] * len(coefs)
    bgrads = [None] * len(coefs)
    for l in range(len(coefs) - 1, -1, -1):
        grads[l] = rnd(acts[l]).T @ rnd(delta)
        bgrads[l] = delta.sum(axis=0)
        if l:
            delta = rnd(delta) @ rnd(coefs[l]).T
    n = len(X)
    return np.concatenate([g.ravel() / n for g in grads] + [g / n for g in bgrads])


@pytest.mark.parametrize("n_threads", [1, 2])
def test_epoch_products_exact_on_integers(monkeypatch, path, n_threads):
    """Integer data: every product of two bfloat16 numbers and every float32 sum is
    exact, so the epoch must equal numpy's float64 products of the bfloat16-rounded
    inputs bit for bit - the forward, weight-gradient and input-gradient products,
    over two row slices. The values outgrow bfloat16's 8 bits (deltas up to ~400,
    input gradients ~1600), so the rounding shows: unrounded products differ."""
    slices(monkeypatch, n_threads)
    rng = np.random.RandomState(0)
    units = (16, 12, 4)
    X = rng.randint(-5, 6, size=(64, 16)).astype(np.float32)
    Y = rng.randint(-9, 10, size=(64, 4)).astype(np.float32)
    size = sum(a * b + b for a, b in zip(units[:-1], units[1:]))
    params = rng.randint(-3, 4, size=size).astype(np.float64)
    assert _threads.slices_for(units, 64) == 2
    got = sgd_step(units, params, X, Y, "identity", "bfloat16")
    want = params - reference_gradient(units, params, X.astype(np.float64), Y, bf16)
    # every float32 sum exact: its terms' magnitudes sum below 2^24
    bound = reference_gradient(units, np.abs(params), np.abs(X), -np.abs(Y), bf16)
    assert np.abs(bound).max() * 64 < 2**24
    np.testing.assert_array_equal(got, want)
    unrounded = params - reference_gradient(units, params, X, Y, lambda a: a)
    assert np.abs(unrounded - want).max() > 1   # the test sees the rounding
    np.testing.assert_array_equal(
        sgd_step(units, params, X, Y, "identity", "highest"), unrounded)


def test_epoch_products_bounded_on_real_data(path):
    """Real-valued data through identity layers: numpy's float64 products of the
    bfloat16-rounded inputs, against the epoch's float32 sums of the same products.
    The only differences are float32 rounding of the sums and of the intermediate
    activations (one bfloat16 step where they sit near a rounding boundary), so
    the gradient agrees to a small fraction of bfloat16's 2^-8, while the
    float32 products' gradient stands ~100x farther off."""
    rng = np.random.RandomState(1)
    units = (40, 24, 3)
    X = rng.normal(size=(96, 40)).astype(np.float32)
    Y = rng.normal(size=(96, 3)).astype(np.float32)
    size = sum(a * b + b for a, b in zip(units[:-1], units[1:]))
    params = (0.2 * rng.normal(size=size)).astype(np.float32).astype(np.float64)
    g_bf = params - sgd_step(units, params, X, Y, "identity", "bfloat16")
    g_f32 = params - sgd_step(units, params, X, Y, "identity", "highest")
    want = reference_gradient(units, params, X.astype(np.float64), Y, bf16)
    scale = np.abs(want).max()
    assert np.abs(g_bf - want).max() < 2e-4 * scale
    assert np.abs(g_f32 - want).max() > 2e-3 * scale


def mse(units, params, X, Y, hidden):
    """0.5 sum (out - Y)^2 / n in float64, the objective MLPRegressor's epochs
    descend."""
    coefs, intercepts = unpack(params, units)
    a = X
    for l, (W, b) in enumerate(zip(coefs, intercepts)):
        a = a @ W + b
        if l < len(coefs) - 1:
            a = np.tanh(a) if hidden == "tanh" else np.maximum(a, 0)
    return 0.5 * ((a - Y) ** 2).sum() / len(X)


@pytest.mark.parametrize("hidden", ["tanh", "relu"])
def test_gradient_against_finite_differences(path, hidden):
    """The gradient of a bfloat16 epoch (one batch, read off an sgd step) against
    float64 central differences of the loss: within bfloat16 tolerance (a few
    2^-8 of the gradient's size), for two hidden layers."""
    rng = np.random.RandomState(2)
    units = (30, 20, 16, 1)
    X = rng.normal(size=(128, 30)).astype(np.float32)
    Y = rng.normal(size=(128, 1)).astype(np.float32)
    size = sum(a * b + b for a, b in zip(units[:-1], units[1:]))
    params = (0.3 * rng.normal(size=size)).astype(np.float32).astype(np.float64)
    step = 1e-3   # the sgd step: small, so that float32 keeps the gradient's digits
    net = Network(units, hidden, "identity", params.astype(np.float32))
    opt = Optimizer("sgd", size, np.float32, step, momentum=0.0)
    net.train_epoch(KernelData(X, np.float32, Y), "squared_error", 0.0, opt,
                    np.arange(128), 128, matmul_precision="bfloat16")
    g = (params - net.params) / step
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    idx = rng.choice(size, 60, replace=False)
    fd = np.empty(idx.size)
    for i, j in enumerate(idx):
        e = np.zeros(size)
        e[j] = 1e-6
        fd[i] = (mse(units, params + e, X64, Y64, hidden)
                 - mse(units, params - e, X64, Y64, hidden)) / 2e-6
    scale = np.abs(fd).max()
    err = np.abs(g[idx] - fd)
    assert err.max() < 0.03 * scale, (err.max(), scale)
    assert err.max() > 1e-5 * scale   # not float32 products


def fit(est_cls, X, y, **kw):
    kw.setdefault("max_iter", 3)
    kw.setdefault("random_state", 0)
    if est_cls in (fastgd.LogisticRegression, fastgd.LinearRegression):
        kw.setdefault("solver", "adam")
    else:
        kw.setdefault("hidden_layer_sizes", (48, 32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastgd._minibatch.ConvergenceWarning)
        return est_cls(**kw).fit(X, y)


def problem(n=600, d=24, seed=0, classes=True):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = X[:, 0] + 0.5 * X[:, 1] + 0.1 * rng.normal(size=n)
    return X, (y > 0).astype(int) if classes else y.astype(np.float32)


def target_kind(est_cls):
    return est_cls in (fastgd.MLPClassifier, fastgd.LogisticRegression)


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_every_estimator_reruns_bit_identical_and_learns(path, est_cls):
    """All four estimators: the same bits on a rerun, close to the float32 fit
    (bfloat16 changes the trajectory, not where it goes), and not equal to it."""
    X, y = problem(classes=target_kind(est_cls))
    a = fit(est_cls, X, y, matmul_precision="bfloat16", batch_size=64)
    b = fit(est_cls, X, y, matmul_precision="bfloat16", batch_size=64)
    ref = fit(est_cls, X, y, batch_size=64)
    for u, v in zip(a.predict(X), b.predict(X)):
        np.testing.assert_array_equal(u, v)
    assert a.loss_ == b.loss_
    assert a.loss_ != ref.loss_
    assert abs(a.score(X, y) - ref.score(X, y)) < 0.05


@pytest.mark.parametrize("units,batch", [((64, 64, 8), 256), ((64, 48, 48, 8), 256),
                                         ((64, 96, 8), 48)])
def test_bit_identical_across_threads(monkeypatch, path, units, batch):
    """1 and 2 threads on the same 2 slices: the same bits (each row slice's
    products depend on its rows and on the weights packed once per batch).
    batch 48 would split the hidden units in float32; bfloat16 uses row slices."""
    rng = np.random.RandomState(0)
    n = 600
    X = rng.normal(size=(n, units[0])).astype(np.float32)
    Y = np.eye(units[-1], dtype=np.float32)[rng.randint(units[-1], size=n)]
    size = sum(a * b + b for a, b in zip(units[:-1], units[1:]))
    params = rng.uniform(-0.3, 0.3, size).astype(np.float32)
    order = rng.permutation(n)
    results = {}
    for n_threads in (1, 2):
        slices(monkeypatch, n_threads)
        net = Network(units, "tanh", "softmax", params.copy())
        opt = Optimizer("adam", size, np.float32, 0.01)
        data = KernelData(X, np.float32, Y)
        loss = net.train_epoch(data, "log_loss", 1e-3, opt, order, batch,
                               matmul_precision="bfloat16")
        results[n_threads] = (loss, net.params.copy(), opt.state_1.copy())
    for a, b in zip(results[1], results[2]):
        np.testing.assert_array_equal(a, b)


def test_paths_agree_to_accumulation_order(monkeypatch):
    """Every path gives the same epoch up to float32 summation order: close, and on
    integer data (exact sums) equal."""
    rng = np.random.RandomState(3)
    units = (40, 32, 5)
    X = rng.normal(size=(256, 40)).astype(np.float32)
    Y = rng.normal(size=(256, 5)).astype(np.float32)
    size = sum(a * b + b for a, b in zip(units[:-1], units[1:]))
    params = 0.2 * rng.normal(size=size)
    out = {}
    for name in PATHS:
        monkeypatch.setattr(_build, "_matmul_path", name)
        out[name] = sgd_step(units, params, X, Y, "relu", "bfloat16", batch=64)
    first = out[PATHS[0]]
    for name in PATHS[1:]:
        np.testing.assert_allclose(out[name], first, rtol=0, atol=1e-4)


def test_sparse_first_layer_stays_float32(path):
    """CSR X: the first layer's products are float32 (sparse), the later ones
    bfloat16: a sparse fit differs from the dense bfloat16 fit but learns as well."""
    X, y = problem()
    X[np.abs(X) < 0.8] = 0
    dense = fit(fastgd.MLPClassifier, X, y, matmul_precision="bfloat16")
    sparse = fit(fastgd.MLPClassifier, sp.csr_matrix(X), y, matmul_precision="bfloat16")
    ref = fit(fastgd.MLPClassifier, sp.csr_matrix(X), y)
    assert sparse.loss_ != dense.loss_ and sparse.loss_ != ref.loss_
    assert abs(sparse.score(X, y) - ref.score(X, y)) < 0.05


def test_highest_is_the_default_and_unchanged():
    """matmul_precision="highest" is the default and computes what fastgd computed
    before the option existed (the parity tests pin those bits to scikit-learn's)."""
    X, y = problem()
    for est_cls in ESTIMATORS:
        assert est_cls().matmul_precision == "highest"
    a = fit(fastgd.MLPClassifier, X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        b = fit(fastgd.MLPClassifier, X, y, matmul_precision="highest")
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_no_bfloat16_unit_falls_back_to_float32_with_one_warning(monkeypatch):
    """Path "float32" (a CPU with neither unit, or forced): the float32 products on
    unrounded inputs, bit for bit, and one RuntimeWarning per process."""
    monkeypatch.setattr(_build, "_matmul_path", "float32")
    monkeypatch.setattr(_engine, "_warned_no_bf16", False)
    X, y = problem()
    with pytest.warns(RuntimeWarning, match="neither AMX nor AVX512-BF16"):
        a = fit(fastgd.MLPClassifier, X, y, matmul_precision="bfloat16")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fit(fastgd.MLPClassifier, X, y, matmul_precision="bfloat16")
    b = fit(fastgd.MLPClassifier, X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


@pytest.mark.parametrize("est_cls", ESTIMATORS)
def test_bad_input(est_cls):
    X, y = problem(classes=target_kind(est_cls))
    with pytest.raises(InvalidParameterError, match="matmul_precision"):
        est_cls(matmul_precision="bf16").fit(X, y)
    linear = est_cls in (fastgd.LogisticRegression, fastgd.LinearRegression)
    est = est_cls(matmul_precision="bfloat16", max_iter=2,
                  **({"solver": "adam"} if linear else {}))
    with pytest.raises(ValueError, match="needs float32 X"):
        est.fit(X.astype(np.float64), y)
    # refused before any weights are drawn: cleanly unfitted, no random weights
    # that would look fitted
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    full_batch = "lbfgs" if est_cls.__name__.startswith("MLP") else "newton-cholesky"
    if est_cls is fastgd.LinearRegression:
        full_batch = "lstsq"
    with pytest.raises(ValueError, match="mini-batch epochs"):
        est_cls(matmul_precision="bfloat16", solver=full_batch).fit(X, y)


def test_kernels_refuse_what_they_cannot_do(path):
    X, y = problem()
    Y = np.eye(2, dtype=np.float32)[y]
    units = (24, 8, 2)
    size = sum(a * b + b for a, b in zip(units[:-1], units[1:]))
    net = Network(units, "relu", "softmax", np.zeros(size))
    opt = Optimizer("sgd", size, np.float64, 0.1)
    with pytest.raises(ValueError, match="needs float32 data"):
        net.train_epoch(KernelData(X, np.float64, Y), "log_loss", 0.0, opt,
                        np.arange(600), 32, matmul_precision="bfloat16")
    data = KernelData(X, np.float32, Y)
    spec = model_spec("relu", "softmax", "log_loss", 0.0, data, matmul_path=99)
    k = _build.kernels
    p32 = np.zeros(size, np.float32)
    with pytest.raises(ValueError, match="not one of"):
        k.train_epoch(p32, p32.copy(), p32.copy(), np.zeros(1, np.float32),
                      np.zeros(10**5, np.float32), net.units, spec,
                      Optimizer("sgd", size, np.float32, 0.1).kernel_spec(),
                      *data.x_args(), data.Y, data.sample_weight, np.arange(600),
                      32, 1, 1, np.zeros(1, np.int64))
    spec["matmul_path"] = 0
    with pytest.raises(ValueError, match="mini-batch epoch only"):
        k.forward(p32, np.zeros(10**5, np.float32), net.units, spec, *data.x_args(),
                  np.zeros((600, 2), np.float32), 64, 1)


@pytest.mark.parametrize("value,ok", [("amx", "amx" in _build.kernels.BF16_PATH_CODES),
                                      ("nonsense", False), ("plain", True)])
def test_forcing_a_path_by_environment(value, ok, tmp_path):
    """FASTGD_BF16_PATH picks the path at import; a unit the CPU lacks (AMX here)
    fails the import with a clear ImportError."""
    code = "from fastgd import _build; print(_build.matmul_path())"
    env = dict(os.environ, FASTGD_BF16_PATH=value)
    # cwd away from the repository, whose source folder would shadow the install
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, cwd=tmp_path)
    if ok:
        assert run.returncode == 0 and run.stdout.strip() == value
    else:
        assert run.returncode != 0
        assert f"FASTGD_BF16_PATH={value!r}" in run.stderr and "ImportError" in run.stderr


def test_ctrl_c_during_a_bfloat16_epoch_leaves_a_usable_model(monkeypatch, path):
    """Ctrl-C part way through a bfloat16 epoch on 2 slices: the weights and step
    are those of an uninterrupted run of the batches taken, and predict works."""
    slices(monkeypatch, 2)
    units = (50, 128, 2)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(512, 50)).astype(np.float32)
    Y = np.eye(2, dtype=np.float32)[rng.randint(2, size=512)]
    params = (0.1 * rng.normal(size=50 * 128 + 128 * 2 + 128 + 2)).astype(np.float32)
    data = KernelData(X, np.float32, Y)

    def fresh():
        return (Network(units, "relu", "softmax", params.copy()),
                Optimizer("adam", params.size, np.float32, 1e-3))

    order = np.tile(np.arange(512), 4000)   # 16,000 batches of 128: seconds of work
    net, opt = fresh()
    timer = threading.Timer(0.5, lambda: _thread.interrupt_main(signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        net.train_epoch(data, "log_loss", 1e-4, opt, order, 128,
                        matmul_precision="bfloat16")
    timer.cancel()
    taken = opt.step
    assert 0 < taken < order.size // 128
    ref_net, ref_opt = fresh()
    ref_net.train_epoch(data, "log_loss", 1e-4, ref_opt, order[: taken * 128], 128,
                        matmul_precision="bfloat16")
    np.testing.assert_array_equal(net.params, ref_net.params)
    np.testing.assert_array_equal(opt.state_1, ref_opt.state_1)
    assert np.isfinite(net.predict(data)).all()
