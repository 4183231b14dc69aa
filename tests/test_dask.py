"""fastgd.dask on a real two-worker LocalCluster (process workers, spawned)."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")

import fastgd  # noqa: E402
import fastgd.dask as fdask  # noqa: E402
import sklearn.linear_model as sklm  # noqa: E402


def classification(n=600, d=6, k=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * rng.uniform(0.5, 3, d) + rng.uniform(-1, 1, d)
    W = rng.randn(d, k)
    y = (X @ W + rng.randn(n, k)).argmax(axis=1)
    return X, y


def regression(n=500, d=5, k=1, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * rng.uniform(0.5, 3, d) + 1.0
    Y = X @ rng.randn(d, k) + 0.3 * rng.randn(n, k) + 2.0
    return X, (Y.ravel() if k == 1 else Y)


def chunked(a, n_parts):
    rows = -(-a.shape[0] // n_parts)
    return da.from_array(a, chunks=(rows,) + a.shape[1:])


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


@pytest.mark.parametrize("n_parts", [1, 3, 7])
@pytest.mark.parametrize("k", [2, 3])
def test_logistic_lbfgs_equals_single_machine(client, n_parts, k):
    X, y = classification(k=k)
    w = np.random.RandomState(1).uniform(0.5, 2, len(y))
    plain = fastgd.LogisticRegression(C=0.5).fit(X, y, sample_weight=w)
    dist = fdask.LogisticRegression(C=0.5).fit(chunked(X, n_parts), chunked(y, n_parts),
                                               sample_weight=chunked(w, n_parts))
    assert rel(dist.coef_, plain.coef_) < 1e-6
    assert rel(dist.intercept_, plain.intercept_) < 1e-6
    np.testing.assert_array_equal(dist.classes_, plain.classes_)


def test_logistic_local_scheduler(local_scheduler):
    X, y = classification(k=2)
    plain = fastgd.LogisticRegression().fit(X, y)
    dist = fdask.LogisticRegression().fit(chunked(X, 4), chunked(y, 4))
    assert dist._runner.client is None
    assert rel(dist.coef_, plain.coef_) < 1e-6


@pytest.mark.parametrize("n_parts", [1, 4])
@pytest.mark.parametrize("k", [1, 2])
def test_linear_regression_qr_equals_sklearn(client, n_parts, k):
    X, y = regression(k=k)
    w = np.random.RandomState(2).uniform(0.5, 2, len(X))
    ref = sklm.LinearRegression().fit(X, y, sample_weight=w)
    dist = fdask.LinearRegression().fit(chunked(X, n_parts), chunked(y, n_parts),
                                        sample_weight=chunked(w, n_parts))
    assert np.shape(dist.coef_) == np.shape(ref.coef_)
    assert rel(dist.coef_, ref.coef_) < 1e-6
    assert rel(dist.intercept_, ref.intercept_) < 1e-6
    ref0 = sklm.LinearRegression(fit_intercept=False).fit(X, y)
    dist0 = fdask.LinearRegression(fit_intercept=False).fit(chunked(X, n_parts),
                                                            chunked(y, n_parts))
    assert rel(dist0.coef_, ref0.coef_) < 1e-6


def test_linear_regression_ridge_and_rank_deficient(client):
    X, y = regression()
    n = len(X)
    ridge = sklm.Ridge(alpha=0.7 * n).fit(X, y)  # fastgd's alpha is per sample
    dist = fdask.LinearRegression(alpha=0.7).fit(chunked(X, 3), chunked(y, 3))
    assert rel(dist.coef_, ridge.coef_) < 1e-6
    Xd = np.hstack([X, X[:, :2]])  # duplicated columns: minimum-norm solution
    ref = sklm.LinearRegression().fit(Xd, y)
    dist = fdask.LinearRegression().fit(chunked(Xd, 3), chunked(y, 3))
    assert rel(dist.coef_, ref.coef_) < 1e-6


@pytest.mark.parametrize("n_parts", [1, 5])
def test_mlp_lbfgs_equals_single_machine(client, n_parts):
    X, y = classification(n=300, k=3)
    kw = dict(hidden_layer_sizes=(7,), solver="lbfgs", max_iter=15, random_state=0,
              alpha=1e-3)
    plain = fastgd.MLPClassifier(**kw).fit(X, y)
    dist = fdask.MLPClassifier(**kw).fit(chunked(X, n_parts), chunked(y, n_parts))
    for a, b in zip(dist.coefs_ + dist.intercepts_, plain.coefs_ + plain.intercepts_):
        assert rel(a, b) < 1e-6
    assert dist.n_iter_ == plain.n_iter_
    Xr, yr = regression(n=300)
    plain = fastgd.MLPRegressor(**kw).fit(Xr, yr)
    dist = fdask.MLPRegressor(**kw).fit(chunked(Xr, n_parts), chunked(yr, n_parts))
    for a, b in zip(dist.coefs_ + dist.intercepts_, plain.coefs_ + plain.intercepts_):
        assert rel(a, b) < 1e-6


def test_dataframe_input_and_lazy_prediction(client):
    pd = pytest.importorskip("pandas")
    X, y = classification(k=3)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    dX = dd.from_pandas(frame, npartitions=3)
    dy = dd.from_pandas(pd.Series(y), npartitions=3)
    est = fdask.LogisticRegression().fit(dX, dy)
    np.testing.assert_array_equal(est.feature_names_in_, frame.columns)
    plain = fastgd.LogisticRegression().fit(frame, y)
    assert rel(est.coef_, plain.coef_) < 1e-6
    pred = est.predict(dX)
    assert isinstance(pred, da.Array)
    np.testing.assert_array_equal(pred.compute(), plain.predict(frame))
    Xa = chunked(X, 3)
    est2 = fdask.LogisticRegression().fit(Xa, chunked(y, 3))
    for method in ("predict", "predict_proba", "decision_function"):
        lazy = getattr(est2, method)(Xa)
        assert isinstance(lazy, da.Array)
        np.testing.assert_allclose(lazy.compute(), getattr(est2.to_local(), method)(X))


def test_input_errors_and_unknown_chunks(client):
    X, y = classification(k=2)
    with pytest.raises(ValueError, match="chunked along its columns"):
        fdask.LogisticRegression().fit(da.from_array(X, chunks=(100, 3)), chunked(y, 2))
    dX = chunked(X, 3)
    mask = dX[:, 0] > -10  # all rows, unknown chunk sizes
    est = fdask.LogisticRegression().fit(dX[mask], chunked(y, 3)[mask])
    plain = fastgd.LogisticRegression().fit(X, y)
    assert rel(est.coef_, plain.coef_) < 1e-6
    bad = X.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fdask.LogisticRegression().fit(chunked(bad, 2), chunked(y, 2))


def test_to_local_pickles_without_dask(client, tmp_path):
    X, y = classification(k=3)
    est = fdask.MLPClassifier(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=20,
                              random_state=0).fit(chunked(X, 2), chunked(y, 2))
    local = est.to_local()
    assert type(local) is fastgd.MLPClassifier
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(local))
    np.save(tmp_path / "X.npy", X[:10])
    code = (
        "import sys, pickle, numpy as np\n"
        "sys.modules['dask'] = None; sys.modules['distributed'] = None\n"
        f"m = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        f"print(m.predict(np.load({str(tmp_path / 'X.npy')!r})).tolist())\n"
    )
    # cwd away from the repository, whose source folder would shadow the install
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert out.stdout.strip() == str(local.predict(X[:10]).tolist())


def test_local_sgd_close_to_single_machine(client):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0)
    kw = dict(hidden_layer_sizes=(32,), solver="adam", max_iter=30, random_state=0,
              learning_rate_init=3e-3)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = fastgd.MLPClassifier(**kw).fit(Xtr, ytr).score(Xte, yte)
        dist = fdask.MLPClassifier(**kw).fit(chunked(Xtr, 4), chunked(ytr, 4))
    acc = float((dist.predict(Xte) == yte).mean())
    assert acc > plain - 0.03, (acc, plain)
    assert len(dist.loss_curve_) == dist.n_iter_


def test_linear_sgd_runs(client):
    X, y = regression()
    est = fdask.LinearRegression(solver="adam", max_iter=5, learning_rate_init=0.05,
                                 random_state=0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(chunked(X, 4), chunked(y, 4))
    assert np.isfinite(est.coef_).all() and est.n_iter_ == 5


def test_matmul_precision_reaches_the_workers(client):
    """matmul_precision="bfloat16" is passed to the shards' epochs: float64 data is
    refused there as on one machine; float32 data trains."""
    X, y = classification(k=3)
    kw = dict(hidden_layer_sizes=(16,), solver="adam", max_iter=2, random_state=0,
              matmul_precision="bfloat16")
    with pytest.raises(ValueError, match="needs float32"):
        fdask.MLPClassifier(**kw).fit(chunked(X.astype(np.float64), 2), chunked(y, 2))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = fdask.MLPClassifier(**kw).fit(chunked(X.astype(np.float32), 2),
                                            chunked(y, 2))
    assert np.isfinite(est.coefs_[0]).all()


def test_incremental_style_partial_fit(client):
    """dask_ml's Incremental feeds blocks to partial_fit in order: a loop does it."""
    X, y = classification(k=3)
    dX, dy = chunked(X, 4), chunked(y, 4)
    est = fastgd.MLPClassifier(hidden_layer_sizes=(8,), solver="adam", random_state=0,
                               learning_rate_init=0.01)
    for _ in range(5):
        for xb, yb in zip(dX.to_delayed().ravel(), dy.to_delayed().ravel()):
            xb, yb = client.compute([xb, yb], sync=True)
            est.partial_fit(xb, yb, classes=np.unique(y))
    assert est.score(X, y) > 0.6


def test_sparse_partitions(client):
    sp = pytest.importorskip("scipy.sparse")
    X, y = classification(k=3)
    X[np.abs(X) < 1.0] = 0.0
    Xs = sp.csr_matrix(X)
    dX = da.from_array(X, chunks=(200, -1)).map_blocks(sp.csr_matrix, dtype=X.dtype,
                                                      meta=sp.csr_matrix((0, 0)))
    plain = fastgd.LogisticRegression().fit(Xs, y)
    dist = fdask.LogisticRegression().fit(dX, chunked(y, 3))
    assert rel(dist.coef_, plain.coef_) < 1e-6


def test_killed_worker_same_model(client):
    """A worker killed mid-fit: its partitions are recomputed, the model is exact.

    A convex problem solved to a tight tolerance, so that the sums' regrouping after
    the recomputation (a rounding difference) cannot move the optimum; the kill is
    retried earlier until it lands inside the fit."""
    import os
    import signal
    import threading

    X, y = classification(n=3000, d=20, k=3)
    kw = dict(tol=1e-12, max_iter=1000)
    plain = fastgd.LogisticRegression(**kw).fit(X, y)
    for delay in (0.3, 0.1, 0.03, 0.0):
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        timer = threading.Timer(delay, os.kill, (victim, signal.SIGKILL))
        timer.start()
        try:
            dist = fdask.LogisticRegression(**kw).fit(chunked(X, 4), chunked(y, 4))
        finally:
            timer.cancel()
            timer.join()
        client.wait_for_workers(2, timeout=60)
        if victim not in client.run(os.getpid).values():
            break  # it died during the fit
    else:
        pytest.fail("no kill landed inside a fit")
    assert rel(dist.coef_, plain.coef_) < 1e-6
    assert rel(dist.intercept_, plain.intercept_) < 1e-6


def _failing_shard_training(monkeypatch, on_call, failure):
    """Make local SGD's shard training fail on its ``on_call``-th call (1-based):
    ``failure`` is "interrupt" (Ctrl-C) or "nan" (non-finite trained weights)."""
    real, calls = fdask._train_shard, []

    def train(*args, **kwargs):
        calls.append(1)
        if len(calls) == on_call and failure == "interrupt":
            raise KeyboardInterrupt
        out = real(*args, **kwargs)
        if len(calls) == on_call:
            out = (np.full_like(out[0], np.nan),) + out[1:]
        return out

    monkeypatch.setattr(fdask, "_train_shard", train)


def test_local_sgd_interrupted_keeps_a_usable_model(local_scheduler, monkeypatch):
    """Ctrl-C in the third epoch (one shard here): a warning, the two epochs done."""
    X, y = classification()
    _failing_shard_training(monkeypatch, 3, "interrupt")
    est = fdask.MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=0)
    with pytest.warns(UserWarning, match="interrupted by user"):
        est.fit(chunked(X, 2), chunked(y, 2))
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    assert np.isfinite(est.to_local().coefs_[0]).all()
    assert est.predict(X).shape == y.shape


def test_local_sgd_divergence_like_the_plain_estimators(local_scheduler, monkeypatch):
    """A diverged epoch: without early stopping an error that advises, the estimator
    left unfitted; with it a ConvergenceWarning and the best validation weights."""
    from sklearn.exceptions import ConvergenceWarning, NotFittedError
    X, y = regression()
    kw = dict(hidden_layer_sizes=(8,), max_iter=10, random_state=0, tol=0.0)
    _failing_shard_training(monkeypatch, 3, "nan")
    est = fdask.MLPRegressor(**kw)
    with pytest.raises(ValueError, match="lower learning_rate_init"):
        est.fit(chunked(X, 2), chunked(y, 2))
    with pytest.raises(NotFittedError):
        est.to_local()

    _failing_shard_training(monkeypatch, 3, "nan")
    est = fdask.MLPRegressor(early_stopping=True, **kw)
    with pytest.warns(ConvergenceWarning, match="weights of the best validation"):
        est.fit(chunked(X, 2), chunked(y, 2), X_val=X[:100], y_val=y[:100])
    assert est.n_iter_ == 2 and len(est.validation_scores_) == 3
    assert np.isnan(est.validation_scores_[-1])
    assert np.isfinite(est.predict(X[:100])).all()
    assert est.score(X[:100], y[:100]) == max(est.validation_scores_[:2])


def test_local_sgd_dropout(client):
    """Dropout on the shards: masks keyed by the epoch's per-shard seed and the span,
    and shards made of the same partitions whatever the scheduler's placement, so a
    rerun gives the same bits; sync_every spans get masks of their own;
    predictions (no dropout) are deterministic."""
    X, y = classification()
    kw = dict(hidden_layer_sizes=(16,), max_iter=4, random_state=0, dropout=0.3,
              learning_rate_init=0.01)

    def fit(**extra):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fdask.MLPClassifier(**{**kw, **extra}).fit(chunked(X, 2),
                                                           chunked(y, 2))

    a, b = fit(), fit()
    assert np.array_equal(a.to_local().coefs_[0], b.to_local().coefs_[0])
    assert a.loss_curve_ == b.loss_curve_
    without = fit(dropout=0.0)
    assert np.array_equal(without.to_local().coefs_[0],
                          fit(dropout=0.0).to_local().coefs_[0])
    assert not np.allclose(a.to_local().coefs_[0], without.to_local().coefs_[0])
    synced = fit(sync_every=1)  # two rounds of 200 rows per 300-row shard
    assert np.isfinite(synced.to_local().coefs_[0]).all()
    assert not np.allclose(a.to_local().coefs_[0], synced.to_local().coefs_[0])
    assert np.array_equal(a.predict_proba(X), a.predict_proba(X))
    assert a.score(X, y) > without.score(X, y) - 0.1
