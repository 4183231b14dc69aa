"""Training controls scikit-learn does not have: class_weight for the MLPs, the
validation loss and a validation set of one's own, a time budget, cosine and warm-up
schedules (against torch.optim where torch is installed)."""

import time
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network._base import LOSS_FUNCTIONS
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import fastgd
from conftest import (FOUR_ESTIMATORS, FOUR_IDS, is_classifier_class, seeded,
                      small_problem)

ESTIMATORS, IDS = FOUR_ESTIMATORS, FOUR_IDS
_is_classifier = is_classifier_class


def _data(cls, n=300, d=5, seed=0):
    return small_problem(cls, n=n, d=d, seed=seed, n_classes=3)


def _make(cls, **params):
    return seeded(cls, hidden=(8,), **params)


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn()


# -------------------------------------------------------------- class_weight
@pytest.mark.parametrize("class_weight", [{0: 1.0, 1: 3.0, 2: 0.5}, "balanced"])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_mlp_class_weight_is_the_matching_sample_weight(class_weight, solver):
    X, y = _data(fastgd.MLPClassifier)
    y[:200] = 0  # unbalanced, so "balanced" is not uniform
    sw = np.random.RandomState(1).uniform(0.5, 2, size=len(y))
    if class_weight == "balanced":
        counts = np.bincount(y, weights=sw)
        per_class = sw.sum() / (3 * counts)
    else:
        per_class = np.array([class_weight[k] for k in range(3)])
    by_weight = _make(fastgd.MLPClassifier, solver=solver, max_iter=5)
    by_class = _make(fastgd.MLPClassifier, solver=solver, max_iter=5,
                     class_weight=class_weight)
    _quiet(lambda: by_weight.fit(X, y, sample_weight=sw * per_class[y]))
    _quiet(lambda: by_class.fit(X, y, sample_weight=sw))
    for a, b in zip(by_weight.coefs_ + by_weight.intercepts_,
                    by_class.coefs_ + by_class.intercepts_):
        assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_mlp_class_weight_refusals():
    X, y = _data(fastgd.MLPClassifier)
    Y = np.stack([y == 0, y == 1], axis=1).astype(int)
    with pytest.raises(ValueError, match="multilabel"):
        _make(fastgd.MLPClassifier, class_weight="balanced").fit(X, Y)
    with pytest.raises(ValueError, match="'balanced' is not supported for partial_fit"):
        _make(fastgd.MLPClassifier, class_weight="balanced").partial_fit(
            X, y, classes=[0, 1, 2])
    est = _make(fastgd.MLPClassifier, class_weight={0: 2.0})  # missing classes: 1
    est.partial_fit(X, y, classes=[0, 1, 2])


# ------------------------------------------------------ validation loss and sets
def _validation_loss(est, X_val, y_val):
    """The held-out loss (no penalty) of a fitted estimator, from scikit-learn's
    loss functions."""
    if isinstance(est, fastgd.MLPClassifier):
        out = est.predict_proba(X_val)
        Y = est._label_binarizer.transform(y_val)
        if Y.shape[1] == 1:
            return LOSS_FUNCTIONS["binary_log_loss"](Y, out[:, 1:])
        return LOSS_FUNCTIONS["log_loss"](Y, out)
    if isinstance(est, fastgd.LogisticRegression):
        out = est.predict_proba(X_val)
        Y = (y_val[:, None] == est.classes_[None, :]).astype(float)
        if len(est.classes_) == 2:
            return LOSS_FUNCTIONS["binary_log_loss"](Y[:, 1:], out[:, 1:])
        return LOSS_FUNCTIONS["log_loss"](Y, out)
    return LOSS_FUNCTIONS["squared_error"](y_val.reshape(-1, 1),
                                           est.predict(X_val).reshape(-1, 1))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_early_stopping_on_the_validation_loss(cls):
    """metric="loss": the kept weights are those of the lowest validation loss,
    recorded in validation_loss_curve_ / best_validation_loss_."""
    X, y = _data(cls)
    X_val, y_val = _data(cls, n=100, seed=1)
    est = _make(cls, solver="adam", early_stopping=True, early_stopping_metric="loss",
                max_iter=40, n_iter_no_change=5, learning_rate_init=0.05)
    _quiet(lambda: est.fit(X, y, X_val=X_val, y_val=y_val))
    curve = est.validation_loss_curve_
    n_iter = int(np.ravel(est.n_iter_)[0])
    assert len(curve) == len(est.validation_scores_) == n_iter
    assert est.best_validation_loss_ == min(curve)
    assert_allclose(_validation_loss(est, X_val, y_val), est.best_validation_loss_,
                    rtol=1e-10)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_validation_loss_curve_with_the_default_metric(cls):
    X, y = _data(cls)
    est = _make(cls, solver="adam", early_stopping=True, max_iter=6)
    _quiet(lambda: est.fit(X, y))
    assert len(est.validation_loss_curve_) == len(est.validation_scores_)
    assert np.isfinite(est.validation_loss_curve_).all()
    # without a validation set there is no validation loss, as scikit-learn has no
    # validation_scores_ list
    plain = _quiet(lambda: _make(cls, solver="adam", max_iter=2).fit(X, y))
    assert not hasattr(plain, "validation_loss_curve_")


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_own_validation_set_replaces_the_split(cls):
    """With X_val / y_val every training row trains (nothing is held out) and the
    scores are those of the given set."""
    X, y = _data(cls)
    X_val, y_val = _data(cls, n=60, seed=2)
    est = _make(cls, solver="sgd", early_stopping=True, max_iter=4)
    _quiet(lambda: est.fit(X, y, X_val=X_val, y_val=y_val))
    # the scores are those of the given set, each epoch's model scored on it
    assert len(est.validation_scores_) == int(np.ravel(est.n_iter_)[0])
    # t_ counts every training row: nothing was held out
    assert est.t_ == X.shape[0] * int(np.ravel(est.n_iter_)[0])
    # the kept (best) weights score best_validation_score_ on the given set
    assert_allclose(est.score(X_val, y_val), est.best_validation_score_, rtol=1e-10)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_own_validation_set_errors(cls):
    X, y = _data(cls)
    with pytest.raises(ValueError, match="early_stopping"):
        _make(cls, solver="adam").fit(X, y, X_val=X, y_val=y)
    with pytest.raises(ValueError, match="together"):
        _make(cls, solver="adam", early_stopping=True).fit(X, y, X_val=X)
    with pytest.raises(ValueError, match="features"):
        _make(cls, solver="adam", early_stopping=True).fit(X, y, X_val=X[:, :2],
                                                             y_val=y)


def test_own_validation_set_in_a_pipeline():
    """transform_input=["X_val"] scales X_val with the scaler fitted on X."""
    import sklearn

    X, y = _data(fastgd.MLPClassifier)
    X_val, y_val = _data(fastgd.MLPClassifier, n=80, seed=3)
    with sklearn.config_context(enable_metadata_routing=True):
        clf = _make(fastgd.MLPClassifier, solver="adam", early_stopping=True,
                    max_iter=5).set_fit_request(X_val=True, y_val=True)
        pipe = Pipeline([("scale", StandardScaler()), ("mlp", clf)],
                        transform_input=["X_val"])
        _quiet(lambda: pipe.fit(X * 100, y, X_val=X_val * 100, y_val=y_val))
    # the kept (best) weights score best_validation_score_ on the scaled X_val
    scaled_val = pipe[0].transform(X_val * 100)
    assert_allclose(pipe[-1].best_validation_score_, pipe[-1].score(scaled_val, y_val))


# ----------------------------------------------------------------- max_time
@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_max_time_stops_after_the_epoch_that_ran_out(cls, monkeypatch):
    X, y = _data(cls)
    clock = iter(np.arange(0.0, 100.0, 1.0))  # every reading one second later
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    est = _make(cls, solver="adam", max_iter=50, max_time=2.5)
    with pytest.warns(ConvergenceWarning, match="max_time=2.5"):
        est.fit(X, y)
    assert int(np.ravel(est.n_iter_)[0]) == 3


# ------------------------------------------------------------- schedules
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("warmup", [0, 3])
def test_cosine_schedule_rates(solver, warmup):
    from fastgd._engine import Optimizer

    opt = Optimizer(solver, 4, np.float64, 0.1, schedule="cosine", max_iter=10,
                    warmup_epochs=warmup)
    rates = [opt.kernel_spec()["learning_rate"]]
    for epoch in range(1, 10):
        opt.iteration_ends(100 * epoch)
        rates.append(opt.kernel_spec()["learning_rate"])
    e = np.arange(10)
    expected = 0.1 * (1 + np.cos(np.pi * e / 10)) / 2
    if warmup:
        expected *= np.minimum(1.0, (e + 1) / warmup)
    assert_allclose(rates, expected, rtol=1e-15)


def test_cosine_sgd_follows_torch_step_for_step():
    """Full-batch sgd without momentum on least squares: fastgd's weights after each
    epoch equal torch.optim.SGD under CosineAnnealingLR(T_max=max_iter)."""
    torch = pytest.importorskip("torch")
    X, y = _data(fastgd.LinearRegression, n=64, d=3)
    max_iter, lr = 25, 0.2
    est = fastgd.LinearRegression(solver="sgd", momentum=0.0, batch_size=64,
                                  shuffle=False, learning_rate="cosine",
                                  learning_rate_init=lr, max_iter=max_iter, tol=0,
                                  n_iter_no_change=np.inf)
    ours = []
    for epoch in range(1, max_iter + 1):
        est.set_params(max_iter=max_iter)
        # one epoch at a time through partial_fit keeps the optimizer (and its epoch
        # count), so the schedule runs as in one fit
        est.partial_fit(X, y)
        ours.append(np.r_[est.coef_, est.intercept_])
    Xt, yt = torch.tensor(X), torch.tensor(y)
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w, b], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_iter)
    theirs = []
    for _ in range(max_iter):
        opt.zero_grad()
        loss = 0.5 * ((Xt @ w + b - yt) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
        theirs.append(np.r_[w.detach().numpy(), b.detach().numpy()])
    assert_allclose(np.array(ours), np.array(theirs), rtol=1e-10, atol=1e-12)
