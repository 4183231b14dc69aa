"""The shared mini-batch layer: one behaviour for all four estimators.

Each test pins a state scikit-learn reaches and fastgd once did not: divergence,
warm starts after set_params, early stopping through a divergence, hand-built
models, and the usable-or-unfitted contract after any exception.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

import fastgd
from conftest import (FOUR_ESTIMATORS, FOUR_IDS, is_classifier_class, seeded,
                      small_problem)
from fastgd._engine import Network

ESTIMATORS, IDS = FOUR_ESTIMATORS, FOUR_IDS
_is_classifier = is_classifier_class


def _data(cls, n=120, d=4, seed=0):
    return small_problem(cls, n=n, d=d, seed=seed, n_classes=2)


def _make(cls, **params):
    return seeded(cls, hidden=(5,), **params)


def _weights(est):
    if hasattr(est, "coefs_"):
        return [w.copy() for w in est.coefs_ + est.intercepts_]
    return [np.array(est.coef_, copy=True), np.array(est.intercept_, copy=True)]


def _partial_fit(est, X, y):
    kwargs = {"classes": np.unique(y)} if _is_classifier(type(est)) else {}
    return est.partial_fit(X, y, **kwargs)


def _diverging(cls):
    return _make(cls, solver="sgd", learning_rate_init=0.01, momentum=0.0, max_iter=5)


@pytest.fixture
def diverge_in_epoch_2(monkeypatch):
    """Epochs after the first end with a NaN weight, as a divergent epoch does
    (numerically real divergences also make the first epoch's weights huge)."""
    real = Network.train_epoch
    calls = []

    def train_epoch(self, *args, **kwargs):
        loss = real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) >= 2:
            self.params[0] = np.nan
        return loss

    monkeypatch.setattr(Network, "train_epoch", train_epoch)
    return calls


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_divergence_leaves_a_usable_model(cls, diverge_in_epoch_2):
    """The ValueError names the cause; coef_/coefs_ hold the weights of the last
    finite epoch and predict; n_iter_ and the record count completed epochs only."""
    X, y = _data(cls)
    est = _diverging(cls)
    with pytest.raises(ValueError, match="diverged in epoch 2"):
        est.fit(X, y)
    check_is_fitted(est)
    one_epoch = _diverging(cls).set_params(max_iter=1)
    diverge_in_epoch_2.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one_epoch.fit(X, y)
    for a, b in zip(_weights(one_epoch), _weights(est)):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(np.asarray(est.predict(X), dtype=float)).all()
    assert int(np.ravel(est.n_iter_)[0]) == 1 and est.t_ == X.shape[0]
    assert len(est.loss_curve_) == 1 and np.isfinite(est.loss_curve_).all()
    assert not hasattr(est, "_optimizer")


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_partial_fit_after_divergence_continues_from_the_kept_weights(
        cls, diverge_in_epoch_2, monkeypatch):
    X, y = _data(cls)
    est = _diverging(cls)
    with pytest.raises(ValueError, match="diverged"):
        est.fit(X, y)
    kept = _weights(est)
    assert any(np.abs(w).max() > 0 for w in kept)
    # The diverged optimizer is gone: the lowered rate applies, and training goes on
    # from the kept weights - not from zero, as if it were a first call.
    est.set_params(learning_rate_init=1e-12)
    monkeypatch.undo()
    _partial_fit(est, X, y)
    for a, b in zip(kept, _weights(est)):
        assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert len(est.loss_curve_) == 2 and est.t_ == 2 * X.shape[0]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_a_warm_fit_takes_the_new_learning_rate(cls):
    """Every fit starts a new optimizer, in both families (scikit-learn's rule), so
    set_params(learning_rate_init=...) before a warm fit is not ignored."""
    X, y = _data(cls)
    est = _make(cls, solver="adam", max_iter=5, learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        before = _weights(est)
        est.set_params(warm_start=True, learning_rate_init=1e-12, max_iter=3)
        est.fit(X, y)
    for a, b in zip(before, _weights(est)):
        assert_allclose(a, b, atol=1e-8)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_diverging_with_early_stopping_keeps_the_best_weights(cls, diverge_in_epoch_2):
    """scikit-learn's fix for its issue 29504: no error, a NaN validation score,
    the best weights restored; fastgd warns that it stopped there."""
    X, y = _data(cls, n=200)
    est = _make(cls, solver="sgd", learning_rate_init=0.01, momentum=0.0,
                early_stopping=True, max_iter=50, n_iter_no_change=100)
    with pytest.warns(ConvergenceWarning, match="best validation score"):
        est.fit(X, y)
    assert len(est.validation_scores_) == 2 and np.isnan(est.validation_scores_[-1])
    assert isinstance(est.validation_scores_[-1], float)
    assert all(np.isfinite(w).all() for w in _weights(est))
    est.predict(X)


def test_sklearn_diverging_loss_example():
    """scikit-learn's own test_mlp_diverging_loss, on fastgd."""
    X, y = load_iris(return_X_y=True)
    mlp = fastgd.MLPRegressor(
        hidden_layer_sizes=100, activation="identity", solver="sgd", alpha=0.0001,
        learning_rate="constant", learning_rate_init=1, shuffle=True, max_iter=20,
        early_stopping=True, n_iter_no_change=10, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, y)
    assert str(mlp.validation_scores_[-1]) == str(np.nan)
    assert isinstance(mlp.validation_scores_[-1], float)


def test_hand_built_mlp_trains_with_partial_fit():
    """scikit-learn's test_fit: weights and fitted attributes set by hand, then one
    partial_fit; the worked-out example gives 0.739."""
    X = np.array([[0.6, 0.8, 0.7]])
    y = np.array([0])
    mlp = fastgd.MLPClassifier(solver="sgd", learning_rate_init=0.1, alpha=0.1,
                               activation="logistic", random_state=1, max_iter=1,
                               hidden_layer_sizes=2, momentum=0)
    mlp.coefs_ = [np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0]]), np.array([[0.1], [0.2]])]
    mlp.intercepts_ = [np.array([0.1, 0.1]), np.array([1.0])]
    mlp.n_outputs_ = 1
    mlp.n_features_in_ = 3
    mlp.n_iter_ = 0
    mlp.n_layers_ = 3
    mlp.out_activation_ = "logistic"
    mlp.t_ = 0
    mlp.best_loss_ = np.inf
    mlp.loss_curve_ = []
    mlp._no_improvement_count = 0
    mlp.partial_fit(X, y, classes=[0, 1])
    assert_allclose(mlp.coefs_[0], [[0.098, 0.195756], [0.2956664, 0.096008],
                                    [0.4939998, -0.002244]], atol=1e-3)
    assert_allclose(mlp.predict_proba(X)[0, 1], 0.739, atol=1e-3)


def test_hand_built_mlp_without_progress_attributes():
    """Only the weights and the network's description: the record starts fresh."""
    X, y = _data(fastgd.MLPRegressor)
    ref = _make(fastgd.MLPRegressor, solver="sgd").partial_fit(X, y)
    mlp = _make(fastgd.MLPRegressor, solver="sgd")
    mlp.coefs_ = [c.copy() for c in ref.coefs_]
    mlp.intercepts_ = [b.copy() for b in ref.intercepts_]
    mlp.n_outputs_, mlp.n_layers_, mlp.out_activation_ = 1, 3, "identity"
    mlp.n_features_in_ = X.shape[1]
    mlp.partial_fit(X, y)
    assert mlp.t_ == X.shape[0] and len(mlp.loss_curve_) == 1


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_failure_in_a_first_fit_leaves_the_model_unfitted(cls, method, monkeypatch):
    """An exception before any weights exist: NotFittedError afterwards, not an
    AttributeError from a half-set model."""
    X, y = _data(cls)
    est = _make(cls, solver="sgd")
    if cls in (fastgd.MLPClassifier, fastgd.MLPRegressor):
        # The MLPs have (initial) weights before training starts: fail earlier.
        monkeypatch.setattr(type(est), "_initialize",
                            lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    else:
        monkeypatch.setattr(Network, "train_epoch",
                            lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        if method == "fit":
            est.fit(X, y)
        else:
            _partial_fit(est, X, y)
    with pytest.raises(NotFittedError):
        est.predict(X)
    assert not [name for name in vars(est) if name.endswith("_")]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_a_failed_refit_keeps_the_fitted_model(cls, monkeypatch):
    X, y = _data(cls)
    est = _make(cls, solver="sgd", max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    pred = est.predict(X)
    monkeypatch.setattr(Network, "train_epoch",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        _partial_fit(est, X, y)
    np.testing.assert_array_equal(est.predict(X), pred)


@pytest.mark.parametrize("cls", [fastgd.LogisticRegression, fastgd.LinearRegression],
                         ids=["LogisticRegression", "LinearRegression"])
def test_linear_early_stopping_restores_the_best_coefficients(cls):
    X, y = _data(cls, n=300)
    X = StandardScaler().fit_transform(X)
    est = _make(cls, solver="adam", early_stopping=True, max_iter=30,
                n_iter_no_change=3, learning_rate_init=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert len(est.validation_scores_) == est.n_iter_ if np.ndim(est.n_iter_) == 0 \
        else len(est.validation_scores_) == est.n_iter_[0]
    assert est.best_validation_score_ == max(est.validation_scores_)


@pytest.mark.parametrize("Estimator, params", [
    ("MLPClassifier", {"solver": "adam", "weight_decay": 0.1}),
    ("MLPClassifier", {"solver": "lbfgs", "dropout": 0.5}),
    ("MLPRegressor", {"solver": "lbfgs", "max_grad_norm": 1.0}),
    ("LinearRegression", {"weight_decay": 3.0}),
    ("LogisticRegression", {"max_grad_norm": 1e-3}),
])
def test_refused_option_combinations_leave_the_model_unfitted(Estimator, params):
    # Refused by parameter validation, before the fit draws initial weights: not a
    # model that looks fitted with its random start, nor an option silently ignored.
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    if Estimator in ("MLPClassifier", "LogisticRegression"):
        y = (y > np.median(y)).astype(int)
    est = getattr(fastgd, Estimator)(**params)
    with pytest.raises(ValueError, match=next(iter(set(params) - {"solver"}))):
        est.fit(X, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
