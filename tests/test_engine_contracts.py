"""The engine's contracts: no needless copies, GIL released, Ctrl-C, bounded blocks."""

import _thread
import signal
import threading
import time
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastgd import MLPClassifier, MLPRegressor, _engine, _threads
from fastgd._engine import KernelData, block_rows


def test_contiguous_input_is_not_copied():
    X = np.random.RandomState(0).normal(size=(50, 4)).astype(np.float32)
    assert np.shares_memory(KernelData(X, np.float32).X, X)
    F = np.asfortranarray(X)
    assert np.shares_memory(KernelData(F, np.float32).X, F)  # rows gathered in-kernel
    # Another dtype, or neither C nor F order, needs one copy, made once.
    assert KernelData(X, np.float64).X.dtype == np.float64
    assert not np.shares_memory(KernelData(X[:, ::2], np.float32).X, X)


@pytest.mark.parametrize("slices", [1, 2])
@pytest.mark.parametrize("units, batch", [((20, 3), 64), ((20, 30, 3), 64),
                                          ((20, 128, 3), 64), ((50, 128, 3), 32),
                                          ((20, 9, 7, 3), 64)])
def test_column_major_input_is_bit_identical(monkeypatch, units, batch, slices):
    """F-ordered X: the kernels gather its rows by a strided copy, so training (row
    slices and, for one wide hidden layer, unit parts), the full-batch gradient and
    prediction give exactly the C-ordered results."""
    # With 2 slices, (20, 128, 3) at batch 64 runs two row slices and (50, 128, 3)
    # at batch 32 two unit parts (see _threads.splits_units).
    monkeypatch.setenv("FASTGD_NUM_THREADS", str(slices))
    monkeypatch.setenv("FASTGD_MAX_SLICES", str(slices))
    monkeypatch.setattr(_threads, "idle_cores", lambda: 2)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, units[0]))
    Y = np.eye(units[-1])[rng.randint(units[-1], size=300)]
    sw = rng.uniform(0.5, 2.0, size=300)
    n_params = sum(a * b + b for a, b in zip(units[:-1], units[1:]))
    params = 0.1 * rng.normal(size=n_params)
    order = rng.permutation(300)
    results = []
    for x in (X, np.asfortranarray(X)):
        data = KernelData(x, np.float64, Y, sw)
        net = _engine.Network(units, "relu", "softmax", params.copy())
        opt = _engine.Optimizer("adam", n_params, np.float64, 1e-2)
        loss = net.train_epoch(data, "log_loss", 1e-3, opt, order, batch)
        full = net.loss_gradient(data, "log_loss", 1e-3)
        results.append((loss, full, net.params.copy(), net.grads.copy(),
                        net.predict(KernelData(x, np.float64))))
    for c_order, f_order in zip(*results):
        np.testing.assert_array_equal(c_order, f_order)


def test_dataframe_trains_without_a_copy_of_x():
    """pandas' to_numpy() is column-major: an MLP fit (and a mini-batch linear fit)
    on a DataFrame equals the fit on the C-ordered array, and needs far less extra
    memory than a copy of X (tracemalloc sees numpy's allocations)."""
    import tracemalloc

    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40_000, 20)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=len(X)) > 0).astype(int)
    df = pd.DataFrame(X)
    assert df.to_numpy().flags.f_contiguous
    for make in (lambda: MLPClassifier(hidden_layer_sizes=(16,), max_iter=2,
                                       random_state=0),
                 lambda: _linear_sgd()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ref = make().fit(X, y)
            tracemalloc.start()
            est = make().fit(df, y)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        for a, b in zip(_weights(ref), _weights(est)):
            np.testing.assert_array_equal(a, b)
        assert peak < 0.5 * X.nbytes, (peak, X.nbytes)


def _linear_sgd():
    from fastgd import LogisticRegression

    return LogisticRegression(solver="sgd", max_iter=2, random_state=0)


def _weights(est):
    return est.coefs_ if hasattr(est, "coefs_") else [est.coef_, est.intercept_]


def test_prediction_blocks_are_bounded():
    units = [784, 100, 10]
    rows = block_rows(units, 10**7)
    assert rows < 10**7
    assert rows * (units[0] + 2 * sum(units[1:])) <= 2 * _engine._BLOCK_ELEMENTS
    assert block_rows(units, 5) == 5


def _big_problem(n=20000, d=50):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + rng.normal(size=n) > 0).astype(int)
    return X, y


def test_gil_is_released_during_fit():
    """Another Python thread keeps running while a kernel trains: its tick rate
    during fits of at least half a second stays near its rate while idle (a
    GIL-bound fit would let it tick only between epochs: a few times in all)."""
    X, y = _big_problem()
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    time.sleep(0.2)
    idle_rate = len(ticks) / (ticks[-1] - ticks[0])
    clf = MLPClassifier(hidden_layer_sizes=(64,), batch_size=10, max_iter=3, tol=0,
                        random_state=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        while time.perf_counter() - start < 0.5:
            clf.fit(X, y)
    elapsed = time.perf_counter() - start
    done.set()
    counter.join()
    during = [t for t in ticks if start <= t <= start + elapsed]
    assert len(during) / elapsed > 0.3 * idle_rate, (len(during), elapsed, idle_rate)


def test_ctrl_c_stops_training_cleanly():
    """Ctrl-C inside a long epoch interrupts it; the model stays usable."""
    X, y = _big_problem(n=200000, d=20)
    clf = MLPClassifier(hidden_layer_sizes=(32,), batch_size=1, max_iter=50,
                        random_state=0)
    timer = threading.Timer(0.5, lambda: _thread.interrupt_main(signal.SIGINT))
    timer.start()
    start = time.perf_counter()
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        clf.fit(X, y)
    timer.cancel()
    # One epoch at batch 1 takes many seconds: the kernel itself noticed Ctrl-C.
    assert time.perf_counter() - start < 5
    assert clf.n_iter_ == 0
    assert all(np.isfinite(c).all() for c in clf.coefs_)
    assert clf.predict(X[:10]).shape == (10,)


def test_ctrl_c_in_a_unit_split_epoch(monkeypatch):
    """Ctrl-C inside a parallel unit-split epoch: every thread stops, the weights'
    layout (W1 in column blocks during the epoch) is restored, the error raised."""
    units = (50, 128, 2)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(1000, 50))
    Y = np.eye(2)[rng.randint(2, size=1000)]
    params = rng.normal(size=50 * 128 + 128 * 2 + 128 + 2)
    monkeypatch.setenv("FASTGD_NUM_THREADS", "2")
    monkeypatch.setenv("FASTGD_MAX_SLICES", "2")  # 2 parts on any machine
    monkeypatch.setattr(_threads, "idle_cores", lambda: 2)
    assert _threads.splits_units(units, 32, _threads.slices_for(units, 32))
    net = _engine.Network(units, "relu", "softmax", params.copy())
    # A zero learning rate leaves the weights where they were: any permutation
    # left behind would show.
    opt = _engine.Optimizer("sgd", params.size, np.float64, 0.0)
    order = np.tile(np.arange(1000), 20_000)  # 20 million rows: ~5 s of work
    timer = threading.Timer(0.3, lambda: _thread.interrupt_main(signal.SIGINT))
    timer.start()
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        net.train_epoch(KernelData(X, np.float64, Y), "log_loss", 1e-4, opt, order, 32)
    timer.cancel()
    assert time.perf_counter() - start < 2
    np.testing.assert_array_equal(net.params, params)


@pytest.mark.parametrize("unit_split", [False, True])
def test_adam_step_after_ctrl_c(monkeypatch, unit_split):
    """Ctrl-C part way through an epoch: the optimizer's step counts the batches
    the kernel took, so the weights, moments and step equal those of an
    uninterrupted run of that many batches, and resuming continues it exactly."""
    units = (50, 128, 2)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(512, 50))
    Y = np.eye(2)[rng.randint(2, size=512)]
    params = 0.1 * rng.normal(size=50 * 128 + 128 * 2 + 128 + 2)
    data = KernelData(X, np.float64, Y)
    slices = 2 if unit_split else 1
    monkeypatch.setenv("FASTGD_NUM_THREADS", str(slices))
    monkeypatch.setenv("FASTGD_MAX_SLICES", str(slices))
    monkeypatch.setattr(_threads, "idle_cores", lambda: 2)
    assert _threads.splits_units(units, 32, _threads.slices_for(units, 32)) == unit_split

    def fresh():
        return (_engine.Network(units, "relu", "softmax", params.copy()),
                _engine.Optimizer("adam", params.size, np.float64, 1e-3))

    order = np.tile(np.arange(512), 20_000)   # 320,000 batches of 32: seconds of work
    net, opt = fresh()
    timer = threading.Timer(0.3, lambda: _thread.interrupt_main(signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        net.train_epoch(data, "log_loss", 1e-4, opt, order, 32)
    timer.cancel()
    taken = opt.step
    assert 0 < taken < order.size // 32
    ref_net, ref_opt = fresh()
    ref_net.train_epoch(data, "log_loss", 1e-4, ref_opt, order[: taken * 32], 32)
    assert ref_opt.step == taken
    for got, want in [(net.params, ref_net.params), (opt.state_1, ref_opt.state_1),
                      (opt.state_2, ref_opt.state_2)]:
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # Resuming uses the bias correction of step taken + 1, ...
    rest = np.arange(512)
    net.train_epoch(data, "log_loss", 1e-4, opt, rest, 32)
    ref_net.train_epoch(data, "log_loss", 1e-4, ref_opt, rest, 32)
    assert opt.step == ref_opt.step == taken + 16
    np.testing.assert_allclose(net.params, ref_net.params, rtol=0, atol=1e-12)


def test_partial_fit_after_ctrl_c_keeps_adam_step():
    """An interrupted partial_fit leaves the estimator's optimizer at the step of
    the batches it took (before the fix: 0, a fresh bias correction next time)."""
    X, y = _big_problem(n=400000, d=20)
    clf = MLPClassifier(hidden_layer_sizes=(32,), batch_size=1, random_state=0)
    timer = threading.Timer(0.5, lambda: _thread.interrupt_main(signal.SIGINT))
    timer.start()
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        clf.partial_fit(X, y, classes=[0, 1])
    timer.cancel()
    assert 0 < clf._optimizer.step < X.shape[0]
    assert all(np.isfinite(c).all() for c in clf.coefs_)


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_float32_in_float32_out(Estimator):
    X, y = _big_problem(n=300, d=5)
    X = X.astype(np.float32)
    est = Estimator(hidden_layer_sizes=(7,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert all(c.dtype == np.float32 for c in est.coefs_ + est.intercepts_)
    out = est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)
    assert out.dtype == np.float32


def test_loss_gradient_plan_follows_the_data_loss_and_penalty():
    # Network.loss_gradient keeps its block plan for the data it was last called
    # with: other data, another loss or penalty must not reuse it.
    import pickle

    from fastgd._engine import KernelData, Network, Penalty

    rng = np.random.RandomState(0)
    X1, X2 = rng.randn(50, 3), rng.randn(70, 3)
    Y1, Y2 = (rng.rand(50, 1) > 0.5) * 1.0, (rng.rand(70, 1) > 0.5) * 1.0
    params = rng.randn(4)
    calls = [(KernelData(X1, np.float64, Y1), "binary_log_loss", Penalty(0.0)),
             (KernelData(X2, np.float64, Y2), "binary_log_loss", Penalty(0.0)),
             (KernelData(X2, np.float64, Y2), "squared_error", Penalty(0.0)),
             (KernelData(X2, np.float64, Y2), "squared_error", Penalty(0.3))]
    reused = Network([3, 1], "identity", "logistic", params.copy())
    for data, loss, penalty in calls + calls[::-1]:
        fresh = Network([3, 1], "identity", "logistic", params.copy())
        expected = fresh.loss_gradient(data, loss, penalty)
        assert reused.loss_gradient(data, loss, penalty) == expected
        np.testing.assert_array_equal(reused.grads, fresh.grads)
    assert pickle.loads(pickle.dumps(reused))._plan is None  # holds no data
