"""fastgd.dask: every parameter of the plain estimators works (against single-machine
fastgd) or is refused by name; float32; persisting vs streaming the partitions."""

import warnings

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import fastgd  # noqa: E402
import fastgd.dask as fdask  # noqa: E402


def classification(n=600, d=6, k=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * rng.uniform(0.5, 3, d) + rng.uniform(-1, 1, d)
    y = (X @ rng.randn(d, k) + rng.randn(n, k)).argmax(axis=1)
    return X, y


def regression(n=500, d=5, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    return X, X @ rng.randn(d) + 0.3 * rng.randn(n) + 2.0


def chunked(a, n_parts):
    return da.from_array(a, chunks=(-(-a.shape[0] // n_parts),) + a.shape[1:])


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


def weights_of(model):
    if hasattr(model, "coefs_"):
        return list(model.coefs_) + list(model.intercepts_)
    return [model.coef_, model.intercept_]


@pytest.mark.parametrize("class_weight", ["balanced", {0: 1.0, 1: 3.0, 2: 0.5}])
@pytest.mark.parametrize("Estimator,kw", [
    ("LogisticRegression", {}),
    ("MLPClassifier", dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=15,
                           random_state=0)),
])
def test_class_weight_equals_single_machine(client, Estimator, kw, class_weight):
    X, y = classification()
    w = np.random.RandomState(3).uniform(0.5, 2, len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = getattr(fastgd, Estimator)(class_weight=class_weight, **kw).fit(
            X, y, sample_weight=w)
        dist = getattr(fdask, Estimator)(class_weight=class_weight, **kw).fit(
            chunked(X, 3), chunked(y, 3), sample_weight=chunked(w, 3))
        unweighted = getattr(fastgd, Estimator)(**kw).fit(X, y, sample_weight=w)
    for a, b, c in zip(weights_of(dist), weights_of(plain), weights_of(unweighted)):
        assert rel(a, b) < 1e-6
    assert rel(weights_of(dist)[0], weights_of(unweighted)[0]) > 1e-3  # it did act


def test_warm_start_equals_single_machine(client):
    X, y = classification(k=2)
    X2, y2 = classification(k=2, seed=1)
    kw = dict(warm_start=True, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = fastgd.LogisticRegression(**kw).fit(X, y).fit(X2, y2)
        dist = fdask.LogisticRegression(**kw).fit(chunked(X, 2), chunked(y, 2))
        dist.fit(chunked(X2, 3), chunked(y2, 3))
        cold = fastgd.LogisticRegression(max_iter=3).fit(X2, y2)
    assert rel(dist.coef_, plain.coef_) < 1e-6
    assert rel(dist.coef_, cold.coef_) > 1e-4  # the second fit started warm
    mkw = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=5, random_state=0,
               warm_start=True)
    Xc, yc = classification()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = fastgd.MLPClassifier(**mkw).fit(Xc, yc).fit(Xc, yc)
        dist = fdask.MLPClassifier(**mkw).fit(chunked(Xc, 2), chunked(yc, 2))
        dist.fit(chunked(Xc, 2), chunked(yc, 2))
    for a, b in zip(weights_of(dist), weights_of(plain)):
        assert rel(a, b) < 1e-6
    with pytest.raises(ValueError, match="same classes"):
        dist.fit(chunked(Xc, 2), chunked(np.minimum(yc, 1), 2))


@pytest.mark.parametrize("sync_every", [None, 2])
@pytest.mark.parametrize("Estimator,kw", [
    ("MLPClassifier", dict(hidden_layer_sizes=(6,), random_state=0)),
    ("LogisticRegression", {}),
    ("LinearRegression", {}),
])
def test_one_shard_local_sgd_is_single_machine_training(local_scheduler, Estimator,
                                                        kw, sync_every):
    """One shard, no shuffle: local SGD (whatever sync_every) IS the plain training,
    early stopping on the user's validation set included."""
    X, y = regression() if Estimator == "LinearRegression" else classification()
    Xv, yv = X[:150], y[:150]
    kw = dict(kw, solver="adam", shuffle=False, max_iter=40, early_stopping=True,
              n_iter_no_change=3, learning_rate_init=0.02, batch_size=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = getattr(fastgd, Estimator)(**kw).fit(X[150:], y[150:], X_val=Xv,
                                                      y_val=yv)
        dist = getattr(fdask, Estimator)(sync_every=sync_every, **kw).fit(
            chunked(X[150:], 3), chunked(y[150:], 3), X_val=Xv, y_val=chunked(yv, 2))
    np.testing.assert_allclose(dist.loss_curve_, plain.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(dist.validation_scores_, plain.validation_scores_,
                               rtol=1e-9)
    assert dist.n_iter_ == plain.n_iter_ < 40  # it stopped early
    for a, b in zip(weights_of(dist), weights_of(plain)):
        assert rel(a, b) < 1e-9


def test_sync_every_on_two_workers(client):
    X, y = classification(n=1000)
    kw = dict(hidden_layer_sizes=(8,), solver="adam", max_iter=8, random_state=0,
              learning_rate_init=0.01, batch_size=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_epoch = fdask.MLPClassifier(**kw).fit(chunked(X, 4), chunked(y, 4))
        often = fdask.MLPClassifier(sync_every=3, **kw).fit(chunked(X, 4),
                                                            chunked(y, 4))
    assert often.n_iter_ == per_epoch.n_iter_ == 8
    assert rel(often.coefs_[0], per_epoch.coefs_[0]) > 1e-6  # other averaging points
    assert often.score(X, y) > 0.6


def test_refused_parameters_name_themselves(client):
    X, y = classification(k=2)
    dX, dy = chunked(X, 2), chunked(y, 2)
    cases = [
        (fdask.LogisticRegression(l1_ratio=0.5, solver="saga"), "L1 penalty"),
        (fdask.LogisticRegression(solver="liblinear"), "liblinear"),
        (fdask.LinearRegression(positive=True), "positive=True"),
        (fdask.MLPClassifier(solver="adam", early_stopping=True), "X_val"),
    ]
    for est, name in cases:
        with pytest.raises(NotImplementedError, match=name):
            est.fit(dX, dy)
        assert not hasattr(est, "coef_") and not hasattr(est, "coefs_")
    with pytest.raises(ValueError, match="sync_every"):
        fdask.LogisticRegression(sync_every=2).fit(dX, dy)
    with pytest.raises(ValueError, match="early_stopping=False"):
        fdask.LogisticRegression(solver="adam").fit(dX, dy, X_val=X, y_val=y)
    with pytest.raises(NotImplementedError, match="set_callbacks"):
        fdask.LogisticRegression().set_callbacks(object())
    with pytest.warns(FutureWarning, match="n_jobs"):
        fdask.LogisticRegression(n_jobs=2).fit(dX, dy)


def test_max_time_stops_local_sgd(client):
    X, y = classification()
    est = fdask.MLPClassifier(hidden_layer_sizes=(4,), solver="sgd", max_iter=500,
                              max_time=1e-9, random_state=0)
    with pytest.warns(Warning, match="max_time"):
        est.fit(chunked(X, 2), chunked(y, 2))
    assert est.n_iter_ == 1


def test_float32_trains_and_predicts_in_float32(client):
    X, y = classification(k=3)
    X32 = X.astype(np.float32)
    plain = fastgd.LogisticRegression().fit(X32, y)
    dist = fdask.LogisticRegression().fit(chunked(X32, 3), chunked(y, 3))
    assert dist.coef_.dtype == np.float32
    assert rel(dist.coef_, plain.coef_) < 1e-3
    proba = dist.predict_proba(chunked(X32, 3))
    assert proba.dtype == np.float32
    assert proba.compute().dtype == np.float32
    mlp = fdask.MLPRegressor(hidden_layer_sizes=(4,), solver="adam", max_iter=3,
                             random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(chunked(X32, 2), chunked(X32[:, 0] - X32[:, 1], 2))
    assert mlp.coefs_[0].dtype == np.float32
    pred = mlp.predict(chunked(X32, 2))
    assert pred.dtype == np.float32 and pred.compute().dtype == np.float32


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_streamed_partitions_give_the_persisted_model(client, monkeypatch):
    """persist=False (or too little memory) recomputes the partitions every pass:
    the same exact model; persist=True refuses data larger than the cluster."""
    X, y = classification()
    ref = fdask.LogisticRegression(max_iter=6).fit(chunked(X, 4), chunked(y, 4))
    streamed = fdask.LogisticRegression(max_iter=6, persist=False).fit(
        chunked(X, 4), chunked(y, 4))
    assert streamed._runner.stream and not ref._runner.stream
    assert rel(streamed.coef_, ref.coef_) < 1e-12
    Xr, yr = regression()
    lin = fdask.LinearRegression(persist=False).fit(chunked(Xr, 3), chunked(yr, 3))
    assert rel(lin.coef_, fastgd.LinearRegression().fit(Xr, yr).coef_) < 1e-6
    sgd = fdask.MLPClassifier(hidden_layer_sizes=(4,), solver="adam", max_iter=1,
                              persist=False, random_state=0)
    sgd.fit(chunked(X, 3), chunked(y, 3))
    assert np.isfinite(sgd.coefs_[0]).all()
    monkeypatch.setattr(fdask, "_PERSIST_SHARE", 1e-9)  # "the cluster is tiny"
    with pytest.warns(UserWarning, match="streamed from their source"):
        auto = fdask.LogisticRegression(max_iter=6).fit(chunked(X, 4), chunked(y, 4))
    assert auto._runner.stream and rel(auto.coef_, ref.coef_) < 1e-12
    with pytest.raises(MemoryError, match=r"GB once prepared \(600 rows x 6"):
        fdask.LogisticRegression(persist=True).fit(chunked(X, 4), chunked(y, 4))


def test_early_stopping_on_validation_loss_and_weights(local_scheduler):
    """early_stopping_metric='loss' and sample_weight_val, as the plain estimator."""
    X, y = classification()
    sw = np.random.RandomState(4).uniform(0.5, 2, 150)
    kw = dict(hidden_layer_sizes=(6,), random_state=0, solver="sgd", shuffle=False,
              max_iter=30, early_stopping=True, early_stopping_metric="loss",
              n_iter_no_change=2, learning_rate_init=0.05, batch_size=40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = fastgd.MLPClassifier(**kw).fit(X[150:], y[150:], X_val=X[:150],
                                               y_val=y[:150], sample_weight_val=sw)
        dist = fdask.MLPClassifier(**kw).fit(chunked(X[150:], 2), chunked(y[150:], 2),
                                             X_val=X[:150], y_val=y[:150],
                                             sample_weight_val=sw)
    np.testing.assert_allclose(dist.validation_loss_curve_,
                               plain.validation_loss_curve_, rtol=1e-9)
    assert dist.n_iter_ == plain.n_iter_
    for a, b in zip(weights_of(dist), weights_of(plain)):
        assert rel(a, b) < 1e-9
