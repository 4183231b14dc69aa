"""Trajectory parity of fastgd's MLPs with scikit-learn's.

With the same ``random_state`` fastgd draws the same initial weights, shuffles and
early-stopping split as scikit-learn, so in float64 the whole training trajectory
(``loss_curve_``, ``coefs_``, ``intercepts_``, ``n_iter_``, ``t_``, ...) must equal
scikit-learn's up to rounding.  Every expected value below is computed by running
scikit-learn's own estimator on the same data with the same parameters.
"""

import warnings
from functools import lru_cache

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network as sk_nn
from sklearn.base import is_classifier
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning

import fastgd

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RTOL = 1e-6  # float64 trajectories: equal to rounding
ATOL = 1e-9
LBFGS_RTOL = 1e-4  # lbfgs: same solution, looser
LBFGS_ATOL = 1e-6
F32_RTOL = 1e-3  # float32 vs float64 loss curves


# --------------------------------------------------------------------------- data
@lru_cache(maxsize=None)
def _digits(n=500):
    X, y = load_digits(return_X_y=True)
    X = X[:n] / 16.0
    y = y[:n]
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


@lru_cache(maxsize=None)
def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = y / 100.0
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


def digits(n=500):
    X, y = _digits(n)
    return X.copy(), y.copy()


def diabetes():
    X, y = _diabetes()
    return X.copy(), y.copy()


def data_for(kind):
    return digits() if kind == "MLPClassifier" else diabetes()


def make_pair(kind, **params):
    """The same estimator from fastgd and from scikit-learn."""
    return getattr(fastgd, kind)(**params), getattr(sk_nn, kind)(**params)


# ---------------------------------------------------------------------- comparing
def _assert_close_or_none(a, b, rtol, atol, what):
    if b is None:
        assert a is None, f"{what}: expected None (as scikit-learn), got {a!r}"
    else:
        assert a is not None, f"{what}: got None, scikit-learn has {b!r}"
        assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                        rtol=rtol, atol=atol, err_msg=what)


def assert_same_fit(ours, ref, X, *, rtol=RTOL, atol=ATOL, check_predictions=True):
    """All fitted state of ``ours`` equals scikit-learn's ``ref``."""
    assert ours.n_iter_ == ref.n_iter_, "n_iter_"
    assert ours.t_ == ref.t_, "t_"
    assert ours.n_layers_ == ref.n_layers_, "n_layers_"
    assert ours.n_outputs_ == ref.n_outputs_, "n_outputs_"
    assert ours.out_activation_ == ref.out_activation_, "out_activation_"
    assert ours.n_features_in_ == ref.n_features_in_, "n_features_in_"
    if is_classifier(ref):
        assert_array_equal(ours.classes_, ref.classes_)

    assert hasattr(ours, "loss_curve_") == hasattr(ref, "loss_curve_")
    if hasattr(ref, "loss_curve_"):
        assert len(ours.loss_curve_) == len(ref.loss_curve_), "len(loss_curve_)"
        assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=rtol, atol=atol,
                        err_msg="loss_curve_")
        _assert_close_or_none(ours.best_loss_, ref.best_loss_, rtol, atol, "best_loss_")
        if ref.validation_scores_ is None:
            assert ours.validation_scores_ is None
        else:
            assert len(ours.validation_scores_) == len(ref.validation_scores_)
            _assert_close_or_none(ours.validation_scores_, ref.validation_scores_,
                                  rtol, atol, "validation_scores_")
        _assert_close_or_none(ours.best_validation_score_, ref.best_validation_score_,
                              rtol, atol, "best_validation_score_")
    assert_allclose(ours.loss_, ref.loss_, rtol=rtol, atol=atol, err_msg="loss_")

    assert len(ours.coefs_) == len(ref.coefs_)
    assert len(ours.intercepts_) == len(ref.intercepts_)
    for i, (a, b) in enumerate(zip(ours.coefs_, ref.coefs_)):
        assert a.shape == b.shape and a.dtype == b.dtype, f"coefs_[{i}] shape/dtype"
        assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"coefs_[{i}]")
    for i, (a, b) in enumerate(zip(ours.intercepts_, ref.intercepts_)):
        assert a.shape == b.shape and a.dtype == b.dtype, f"intercepts_[{i}] shape/dtype"
        assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"intercepts_[{i}]")

    if check_predictions:
        pred, ref_pred = ours.predict(X), ref.predict(X)
        assert pred.shape == ref_pred.shape and pred.dtype == ref_pred.dtype
        if is_classifier(ref):
            assert_array_equal(pred, ref_pred)
            proba, ref_proba = ours.predict_proba(X), ref.predict_proba(X)
            assert proba.shape == ref_proba.shape and proba.dtype == ref_proba.dtype
            assert_allclose(proba, ref_proba, rtol=rtol, atol=atol)
        else:
            assert_allclose(pred, ref_pred, rtol=rtol, atol=atol)


def fit_pair(kind, X, y, fit_kwargs=None, **params):
    """Fit fastgd and scikit-learn on identical inputs; also check fit does not
    modify its inputs."""
    fit_kwargs = fit_kwargs or {}
    ours, ref = make_pair(kind, **params)
    X_before = X.copy()
    y_before = y.copy()
    kw_before = {k: np.array(v, copy=True) for k, v in fit_kwargs.items()}
    ours.fit(X, y, **fit_kwargs)
    if sp.issparse(X):
        assert_array_equal(X.toarray(), X_before.toarray())
    else:
        assert_array_equal(X, X_before, err_msg="fit modified X")
    assert_array_equal(y, y_before, err_msg="fit modified y")
    for k, v in fit_kwargs.items():
        assert_array_equal(v, kw_before[k], err_msg=f"fit modified {k}")
    ref.fit(X_before, y_before, **fit_kwargs)
    return ours, ref


# ------------------------------------------------------------------ solver matrix
SOLVERS = {
    "sgd-constant-nomomentum": dict(solver="sgd", learning_rate="constant",
                                    momentum=0.0, learning_rate_init=0.1),
    "sgd-constant-momentum": dict(solver="sgd", learning_rate="constant", momentum=0.9,
                                  nesterovs_momentum=False, learning_rate_init=0.02),
    "sgd-constant-nesterov": dict(solver="sgd", learning_rate="constant", momentum=0.9,
                                  nesterovs_momentum=True, learning_rate_init=0.02),
    "sgd-invscaling": dict(solver="sgd", learning_rate="invscaling", momentum=0.5,
                           learning_rate_init=0.1, power_t=0.25),
    # large tol + n_iter_no_change=1 so that the learning rate is divided by 5
    # several times within max_iter
    "sgd-adaptive": dict(solver="sgd", learning_rate="adaptive", momentum=0.5,
                         learning_rate_init=0.1, tol=0.15, n_iter_no_change=1),
    "adam": dict(solver="adam", learning_rate_init=0.01),
    "lbfgs": dict(solver="lbfgs"),
}
ACTIVATIONS = ["relu", "tanh", "logistic", "identity"]
HIDDEN = [(15,), (10, 8)]
KINDS = ["MLPClassifier", "MLPRegressor"]


@pytest.mark.parametrize("hidden", HIDDEN, ids=lambda h: "h" + "x".join(map(str, h)))
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("kind", KINDS)
def test_trajectory_parity(kind, solver, activation, hidden):
    X, y = data_for(kind)
    params = dict(SOLVERS[solver], hidden_layer_sizes=hidden, activation=activation,
                  random_state=0, max_iter=12)
    ours, ref = fit_pair(kind, X, y, **params)
    if solver == "sgd-adaptive":
        # the test must exercise the learning-rate reduction
        assert ref._optimizer.learning_rate < params["learning_rate_init"]
    assert_same_fit(ours, ref, X)


@pytest.mark.parametrize("learning_rate", ["constant", "adaptive"])
@pytest.mark.parametrize("kind", KINDS)
def test_stops_on_training_loss_plateau(kind, learning_rate):
    # tol large: training stops before max_iter ("Training loss did not improve ...";
    # for 'adaptive' only once the learning rate has been divided down to <= 1e-6)
    X, y = data_for(kind)
    ours, ref = fit_pair(kind, X, y, solver="sgd", learning_rate=learning_rate,
                         learning_rate_init=0.01, tol=0.05, n_iter_no_change=1,
                         max_iter=60, random_state=1, hidden_layer_sizes=(15,))
    assert ref.n_iter_ < 60
    if learning_rate == "adaptive":
        assert ref._optimizer.learning_rate <= 1e-6
    assert_same_fit(ours, ref, X)


@pytest.mark.parametrize("kind", KINDS)
def test_lbfgs_converged_solution(kind):
    # a small, well-regularised problem on which lbfgs converges (stops before
    # max_iter) to a well-determined minimum: same solution
    X, y = digits(200) if kind == "MLPClassifier" else diabetes()
    params = dict(hidden_layer_sizes=(6,), activation="tanh", alpha=50.0)
    ours, ref = make_pair(kind, solver="lbfgs", max_iter=5000, tol=1e-10,
                          random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ref.fit(X, y)
    assert ref.n_iter_ < 5000
    ours.fit(X, y)
    assert_allclose(ours.loss_, ref.loss_, rtol=LBFGS_RTOL)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        assert_allclose(a, b, rtol=LBFGS_RTOL, atol=LBFGS_ATOL)
    if kind == "MLPClassifier":
        assert_allclose(ours.predict_proba(X), ref.predict_proba(X),
                        rtol=LBFGS_RTOL, atol=LBFGS_ATOL)
    else:
        assert_allclose(ours.predict(X), ref.predict(X), rtol=LBFGS_RTOL)


@pytest.mark.parametrize("kind", KINDS)
def test_lbfgs_max_fun(kind):
    # max_fun stops lbfgs before max_iter
    X, y = data_for(kind)
    ours, ref = fit_pair(kind, X, y, solver="lbfgs", max_fun=7, max_iter=200,
                         hidden_layer_sizes=(15,), random_state=3)
    assert_same_fit(ours, ref, X)


# ---------------------------------------------------------------- early stopping
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("kind", KINDS)
def test_early_stopping(kind, solver):
    X, y = data_for(kind)
    lr = 0.3 if solver == "sgd" else 0.05
    params = dict(solver=solver, early_stopping=True, validation_fraction=0.2,
                  learning_rate_init=lr, n_iter_no_change=3, tol=1e-3, max_iter=40,
                  hidden_layer_sizes=(15,), random_state=2)
    ours, ref = fit_pair(kind, X, y, **params)
    # the test must exercise the restore of the best (not the last) weights
    assert ref.n_iter_ < params["max_iter"]
    assert int(np.argmax(ref.validation_scores_)) != len(ref.validation_scores_) - 1
    assert ours.best_loss_ is None
    assert_same_fit(ours, ref, X)


@pytest.mark.parametrize("kind", KINDS)
def test_early_stopping_with_sample_weight(kind):
    X, y = data_for(kind)
    sw = np.random.RandomState(0).uniform(0.1, 3.0, X.shape[0])
    ours, ref = fit_pair(kind, X, y, fit_kwargs=dict(sample_weight=sw),
                         solver="adam", early_stopping=True, learning_rate_init=0.02,
                         max_iter=15, hidden_layer_sizes=(15,), random_state=4)
    assert_same_fit(ours, ref, X)


# ------------------------------------------------- batches, shuffling, weights
@pytest.mark.parametrize("batch_size", [32, 77, 200, 10_000])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("kind", KINDS)
def test_batch_size(kind, solver, batch_size):
    X, y = data_for(kind)
    ours, ref = make_pair(kind, solver=solver, batch_size=batch_size,
                          learning_rate_init=0.01, max_iter=8,
                          hidden_layer_sizes=(15,), random_state=0)
    if batch_size > X.shape[0]:
        # scikit-learn warns and clips
        with pytest.warns(UserWarning, match="batch_size"):
            ours.fit(X, y)
    else:
        ours.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref.fit(X, y)
    assert_same_fit(ours, ref, X)


@pytest.mark.parametrize("kind", KINDS)
def test_batch_size_one(kind):
    X, y = data_for(kind)
    X, y = X[:60], y[:60]
    ours, ref = fit_pair(kind, X, y, solver="sgd", batch_size=1,
                         learning_rate_init=0.01, max_iter=5,
                         hidden_layer_sizes=(10, 8), random_state=0)
    assert_same_fit(ours, ref, X)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("kind", KINDS)
def test_no_shuffle(kind, solver):
    X, y = data_for(kind)
    params = dict(solver=solver, batch_size=64, learning_rate_init=0.01, max_iter=10,
                  hidden_layer_sizes=(15,), random_state=0)
    ours, ref = fit_pair(kind, X, y, shuffle=False, **params)
    assert_same_fit(ours, ref, X)
    # and shuffling matters: it is not silently ignored
    shuffled = getattr(fastgd, kind)(shuffle=True, **params).fit(X, y)
    assert not np.allclose(shuffled.loss_curve_, ref.loss_curve_, rtol=1e-6)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("kind", KINDS)
def test_sample_weight(kind, solver):
    X, y = data_for(kind)
    sw = np.random.RandomState(1).uniform(0.05, 5.0, X.shape[0])
    params = dict(solver=solver, max_iter=10, hidden_layer_sizes=(10, 8),
                  activation="tanh", random_state=0)
    if solver != "lbfgs":
        params["learning_rate_init"] = 0.02
    ours, ref = fit_pair(kind, X, y, fit_kwargs=dict(sample_weight=sw), **params)
    assert_same_fit(ours, ref, X)
    # weights are not ignored
    unweighted = getattr(sk_nn, kind)(**params).fit(X, y)
    assert not np.allclose(ours.coefs_[0], unweighted.coefs_[0], rtol=1e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_unit_sample_weight_equals_none(kind):
    X, y = data_for(kind)
    params = dict(solver="adam", max_iter=6, hidden_layer_sizes=(15,), random_state=0,
                  learning_rate_init=0.01)
    a = getattr(fastgd, kind)(**params).fit(X, y, sample_weight=np.ones(X.shape[0]))
    b = getattr(fastgd, kind)(**params).fit(X, y)
    assert_allclose(a.loss_curve_, b.loss_curve_, rtol=RTOL)
    for c, d in zip(a.coefs_, b.coefs_):
        assert_allclose(c, d, rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------- target types
def _binary():
    X, y = digits()
    return X, (y % 2 == 1).astype(int)


def _multilabel():
    X, y = digits()
    Y = np.column_stack([y % 2 == 0, y >= 5, np.isin(y, [0, 3, 6, 9])]).astype(int)
    return X, Y


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("target", ["binary", "multilabel"])
def test_classification_targets(target, solver):
    X, y = _binary() if target == "binary" else _multilabel()
    params = dict(solver=solver, max_iter=10, hidden_layer_sizes=(15,),
                  activation="relu", random_state=0)
    if solver != "lbfgs":
        params["learning_rate_init"] = 0.05
    ours, ref = fit_pair("MLPClassifier", X, y, **params)
    assert ref.out_activation_ == "logistic"
    assert_same_fit(ours, ref, X)
    assert ours.predict_proba(X).shape == (X.shape[0], 2 if target == "binary" else 3)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_multioutput_regression(solver):
    X, y = diabetes()
    Y = np.column_stack([y, np.sqrt(y), X[:, 2] * 0.5 + y])
    params = dict(solver=solver, max_iter=10, hidden_layer_sizes=(10, 8),
                  activation="tanh", random_state=0)
    if solver != "lbfgs":
        params["learning_rate_init"] = 0.01
    ours, ref = fit_pair("MLPRegressor", X, Y, **params)
    assert ours.predict(X).shape == Y.shape
    assert_same_fit(ours, ref, X)


@pytest.mark.parametrize("target", ["positive", "counts_with_zeros"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_poisson_regression(solver, target):
    X, y = diabetes()
    if target == "counts_with_zeros":
        rng = np.random.RandomState(0)
        y = rng.poisson(np.exp(0.3 * X[:, 2] + 0.2 * X[:, 3])).astype(float)
        assert (y == 0).mean() > 0.2  # y log(y / mu) is 0 at y == 0
    assert (y >= 0).all()
    params = dict(loss="poisson", solver=solver, max_iter=10, hidden_layer_sizes=(15,),
                  activation="tanh", random_state=0)
    if solver != "lbfgs":
        params["learning_rate_init"] = 0.01
    ours, ref = fit_pair("MLPRegressor", X, y, **params)
    assert ref.out_activation_ == "exp"
    assert_same_fit(ours, ref, X)
    assert (ours.predict(X) > 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_integer_and_fortran_X(kind):
    # integer X is converted to float64; memory layout does not matter
    X, y = data_for(kind)
    Xi = np.round(X * 16).astype(np.int64)
    params = dict(solver="adam", max_iter=6, hidden_layer_sizes=(15,), random_state=0,
                  learning_rate_init=0.001)
    ours, ref = fit_pair(kind, Xi, y, **params)
    assert ours.coefs_[0].dtype == np.float64
    assert_same_fit(ours, ref, Xi)
    ours_f = getattr(fastgd, kind)(**params).fit(np.asfortranarray(Xi * 1.0), y)
    assert_same_fit(ours_f, ref, Xi)


# ------------------------------------------------------------------------ sparse
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("kind", KINDS)
def test_sparse_input(kind, solver, fmt):
    X, y = data_for(kind)
    if kind == "MLPRegressor":
        X = np.where(np.abs(X) < 0.7, 0.0, X)  # make diabetes sparse-ish
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    params = dict(solver=solver, max_iter=8, hidden_layer_sizes=(15,),
                  activation="relu", random_state=0)
    if solver != "lbfgs":
        params["learning_rate_init"] = 0.02
    ours_sparse, ref_sparse = fit_pair(kind, Xs, y, **params)
    assert_same_fit(ours_sparse, ref_sparse, Xs)
    ours_dense = getattr(fastgd, kind)(**params).fit(X, y)
    assert_same_fit(ours_sparse, ours_dense, X)
    # predicting on sparse == predicting on dense
    if kind == "MLPClassifier":
        assert_allclose(ours_sparse.predict_proba(Xs), ours_sparse.predict_proba(X),
                        rtol=RTOL, atol=ATOL)
    else:
        assert_allclose(ours_sparse.predict(Xs), ours_sparse.predict(X), rtol=RTOL)


@pytest.mark.parametrize("container", ["csr_array", "csc_array"])
def test_sparse_array_input(container):
    X, y = digits()
    Xs = getattr(sp, container)(X)
    ours, ref = fit_pair("MLPClassifier", Xs, y, solver="sgd", max_iter=5,
                         hidden_layer_sizes=(15,), random_state=0)
    assert_same_fit(ours, ref, Xs)


# ------------------------------------------------- warm start and partial_fit
@pytest.mark.parametrize("solver", ["sgd-invscaling", "sgd-constant-nesterov", "adam",
                                    "lbfgs"])
@pytest.mark.parametrize("kind", KINDS)
def test_warm_start(kind, solver):
    X, y = data_for(kind)
    params = dict(SOLVERS[solver], hidden_layer_sizes=(15,), random_state=0,
                  warm_start=True, max_iter=5)
    ours, ref = fit_pair(kind, X, y, **params)
    assert_same_fit(ours, ref, X)
    # second fit continues from the previous weights (and, for invscaling, from t_)
    ours.set_params(max_iter=7)
    ref.set_params(max_iter=7)
    ours.fit(X, y)
    ref.fit(X, y)
    assert_same_fit(ours, ref, X)
    if solver != "lbfgs":
        assert len(ref.loss_curve_) == 12 and ref.t_ == 12 * X.shape[0]


@pytest.mark.parametrize("kind", KINDS)
def test_refit_without_warm_start_resets(kind):
    X, y = data_for(kind)
    ours, ref = fit_pair(kind, X, y, solver="adam", max_iter=4, random_state=0,
                         hidden_layer_sizes=(15,))
    ours.fit(X, y)
    ref.fit(X, y)
    assert_same_fit(ours, ref, X)


@pytest.mark.parametrize("solver", ["sgd-invscaling", "sgd-constant-momentum", "adam"])
@pytest.mark.parametrize("kind", KINDS)
def test_partial_fit(kind, solver):
    X, y = data_for(kind)
    params = dict(SOLVERS[solver], hidden_layer_sizes=(10, 8), random_state=0,
                  activation="tanh")
    ours, ref = make_pair(kind, **params)
    chunks = np.array_split(np.arange(X.shape[0]), 4)
    for epoch in range(2):
        for i, idx in enumerate(chunks):
            kw = {}
            if kind == "MLPClassifier" and epoch == 0 and i == 0:
                kw["classes"] = np.unique(y)
            assert ours.partial_fit(X[idx], y[idx], **kw) is ours
            ref.partial_fit(X[idx], y[idx], **kw)
            assert_same_fit(ours, ref, X, check_predictions=(i == len(chunks) - 1))
    # each partial_fit is one pass: n_iter_ is 1, t_ counts every sample seen
    assert ref.n_iter_ == 1 and ref.t_ == 2 * X.shape[0]


@pytest.mark.parametrize("kind", KINDS)
def test_partial_fit_with_sample_weight(kind):
    X, y = data_for(kind)
    sw = np.random.RandomState(5).uniform(0.1, 2.0, X.shape[0])
    ours, ref = make_pair(kind, solver="sgd", learning_rate_init=0.05,
                          hidden_layer_sizes=(15,), random_state=0)
    for i, idx in enumerate(np.array_split(np.arange(X.shape[0]), 3)):
        kw = {"classes": np.unique(y)} if (kind == "MLPClassifier" and i == 0) else {}
        ours.partial_fit(X[idx], y[idx], sample_weight=sw[idx], **kw)
        ref.partial_fit(X[idx], y[idx], sample_weight=sw[idx], **kw)
    assert_same_fit(ours, ref, X)


def test_partial_fit_subset_of_classes():
    # a chunk need not contain every class
    X, y = digits()
    ours, ref = make_pair("MLPClassifier", solver="adam", hidden_layer_sizes=(15,),
                          random_state=0, learning_rate_init=0.01)
    classes = np.unique(y)
    lo, hi = y < 5, y >= 5
    for i, mask in enumerate([lo, hi, lo]):
        kw = {"classes": classes} if i == 0 else {}
        ours.partial_fit(X[mask], y[mask], **kw)
        ref.partial_fit(X[mask], y[mask], **kw)
    assert_same_fit(ours, ref, X)


@pytest.mark.parametrize("kind", KINDS)
def test_partial_fit_after_fit(kind):
    X, y = data_for(kind)
    ours, ref = fit_pair(kind, X, y, solver="sgd", max_iter=3, random_state=0,
                         hidden_layer_sizes=(15,))
    ours.partial_fit(X[:100], y[:100])
    ref.partial_fit(X[:100], y[:100])
    assert_same_fit(ours, ref, X)


# ----------------------------------------------------------------------- float32
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("kind", KINDS)
def test_float32(kind, solver):
    X, y = data_for(kind)
    X32 = X.astype(np.float32)
    params = dict(solver=solver, max_iter=8, hidden_layer_sizes=(10, 8),
                  activation="tanh", random_state=0)
    if solver != "lbfgs":
        params["learning_rate_init"] = 0.01
    ours32 = getattr(fastgd, kind)(**params).fit(X32, y)
    ours64 = getattr(fastgd, kind)(**params).fit(X, y)
    ref32 = getattr(sk_nn, kind)(**params).fit(X32, y)

    # float32 X gives float32 parameters, for every solver.  (scikit-learn agrees
    # for sgd and adam; its lbfgs hands back float64 parameters from scipy, which
    # fastgd deliberately does not copy.)
    for a in ours32.coefs_ + ours32.intercepts_:
        assert a.dtype == np.float32
    if solver != "lbfgs":
        for a, r in zip(ours32.coefs_ + ours32.intercepts_,
                        ref32.coefs_ + ref32.intercepts_):
            assert a.dtype == r.dtype
    assert ours64.coefs_[0].dtype == np.float64
    if solver != "lbfgs":
        assert_allclose(ours32.loss_curve_, ours64.loss_curve_, rtol=F32_RTOL)
        assert_allclose(ours32.loss_curve_, ref32.loss_curve_, rtol=F32_RTOL)
    assert_allclose(ours32.loss_, ours64.loss_, rtol=F32_RTOL)
    assert ours32.n_iter_ == ref32.n_iter_

    pred = ours32.predict(X32)
    if kind == "MLPClassifier":
        proba = ours32.predict_proba(X32)
        assert proba.dtype == np.float32
        assert ours32.predict_log_proba(X32).dtype == np.float32
        if solver != "lbfgs":
            assert proba.dtype == ref32.predict_proba(X32).dtype
        assert_allclose(proba, ours64.predict_proba(X), rtol=1e-2, atol=1e-3)
        assert np.mean(pred == ours64.predict(X)) > 0.97
    else:
        assert pred.dtype == np.float32
        if solver != "lbfgs":
            assert pred.dtype == ref32.predict(X32).dtype
        assert_allclose(pred, ours64.predict(X), rtol=1e-2, atol=1e-3)
    if solver != "lbfgs":
        # a float32 model fed float64 X at predict time: same dtype as scikit-learn
        assert ours32.predict(X).dtype == ref32.predict(X).dtype


@pytest.mark.parametrize("kind", KINDS)
def test_float32_sparse(kind):
    X, y = data_for(kind)
    Xs = sp.csr_matrix(X.astype(np.float32))
    params = dict(solver="adam", max_iter=5, hidden_layer_sizes=(15,), random_state=0)
    ours = getattr(fastgd, kind)(**params).fit(Xs, y)
    dense = getattr(fastgd, kind)(**params).fit(X.astype(np.float32), y)
    assert ours.coefs_[0].dtype == np.float32
    assert_allclose(ours.loss_curve_, dense.loss_curve_, rtol=F32_RTOL)


# ------------------------------------------------------------ further edge cases
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("kind", KINDS)
def test_default_network_full_data(kind, solver):
    # scikit-learn's default (100,) network on all of load_digits / load_diabetes:
    # larger batches and layers than the matrix above
    if kind == "MLPClassifier":
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
    else:
        X, y = diabetes()
    ours, ref = fit_pair(kind, X, y, solver=solver, max_iter=5, random_state=0)
    assert ref.coefs_[0].shape[1] == 100
    assert_same_fit(ours, ref, X)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("target", ["binary", "multiclass"])
def test_saturated_probabilities(target, solver):
    # unscaled inputs and a large step: probabilities hit 0/1 and the log-loss is
    # clipped at eps, as in scikit-learn
    X, y = load_digits(return_X_y=True)
    mask = y < (2 if target == "binary" else 10)
    X, y = X[mask][:300], y[mask][:300]
    lr = 0.01 if solver == "sgd" else 0.05
    ours, ref = fit_pair("MLPClassifier", X, y, solver=solver, learning_rate_init=lr,
                         max_iter=10, hidden_layer_sizes=(15,), random_state=0,
                         alpha=0.0, activation="identity")
    assert_same_fit(ours, ref, X)
    proba = ref.predict_proba(X)
    assert proba.max() == 1.0 and proba.min() < 1e-16


@pytest.mark.parametrize("target", ["binary", "multilabel", "multioutput", "poisson"])
def test_early_stopping_target_types(target):
    if target in ("binary", "multilabel"):
        X, y = _binary() if target == "binary" else _multilabel()
        kind, extra = "MLPClassifier", {}
    else:
        X, y = diabetes()
        kind = "MLPRegressor"
        if target == "multioutput":
            y, extra = np.column_stack([y, np.sqrt(y)]), {}
        else:
            extra = {"loss": "poisson"}
    ours, ref = fit_pair(kind, X, y, solver="adam", early_stopping=True,
                         learning_rate_init=0.02, max_iter=25, n_iter_no_change=3,
                         tol=1e-3, hidden_layer_sizes=(15,), random_state=6, **extra)
    assert_same_fit(ours, ref, X)


@pytest.mark.parametrize("kind", KINDS)
def test_warm_start_with_early_stopping(kind):
    # scikit-learn keeps extending validation_scores_ and keeps best_validation_score_
    X, y = data_for(kind)
    ours, ref = fit_pair(kind, X, y, solver="sgd", early_stopping=True, warm_start=True,
                         learning_rate_init=0.05, max_iter=6, hidden_layer_sizes=(15,),
                         random_state=0)
    ours.fit(X, y)
    ref.fit(X, y)
    assert len(ref.validation_scores_) == 12
    assert_same_fit(ours, ref, X)


def test_partial_fit_multilabel():
    X, Y = _multilabel()
    ours, ref = make_pair("MLPClassifier", solver="sgd", learning_rate_init=0.05,
                          hidden_layer_sizes=(15,), random_state=0)
    for i, idx in enumerate(np.array_split(np.arange(X.shape[0]), 3)):
        kw = {"classes": np.arange(Y.shape[1])} if i == 0 else {}
        ours.partial_fit(X[idx], Y[idx], **kw)
        ref.partial_fit(X[idx], Y[idx], **kw)
    assert_same_fit(ours, ref, X)


def test_regressor_partial_fit_with_lbfgs():
    # scikit-learn's MLPRegressor keeps partial_fit for lbfgs (its availability check
    # is always truthy) and runs a full lbfgs fit from the current weights
    X, y = diabetes()
    ours, ref = make_pair("MLPRegressor", solver="lbfgs", max_iter=10,
                          hidden_layer_sizes=(15,), random_state=0)
    for _ in range(2):
        ours.partial_fit(X, y)
        ref.partial_fit(X, y)
        assert_same_fit(ours, ref, X)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("kind", KINDS)
def test_sample_weight_with_zeros(kind, solver):
    X, y = data_for(kind)
    rng = np.random.RandomState(7)
    sw = rng.uniform(0.5, 2.0, X.shape[0])
    sw[rng.rand(X.shape[0]) < 0.3] = 0.0
    params = dict(solver=solver, max_iter=8, hidden_layer_sizes=(15,), random_state=0)
    if solver != "lbfgs":
        params["learning_rate_init"] = 0.02
    ours, ref = fit_pair(kind, X, y, fit_kwargs=dict(sample_weight=sw), **params)
    assert_same_fit(ours, ref, X)


def test_poisson_multioutput_with_sample_weight():
    X, y = diabetes()
    Y = np.column_stack([y, np.sqrt(y) + 0.1])
    sw = np.random.RandomState(8).uniform(0.2, 3.0, X.shape[0])
    ours, ref = fit_pair("MLPRegressor", X, Y, fit_kwargs=dict(sample_weight=sw),
                         loss="poisson", solver="sgd", learning_rate_init=0.01,
                         max_iter=8, hidden_layer_sizes=(10, 8), random_state=0)
    assert_same_fit(ours, ref, X)


@pytest.mark.parametrize("kind", KINDS)
def test_max_iter_one(kind):
    X, y = data_for(kind)
    for solver in ["sgd", "adam", "lbfgs"]:
        ours, ref = fit_pair(kind, X, y, solver=solver, max_iter=1, random_state=0,
                             hidden_layer_sizes=(15,))
        assert_same_fit(ours, ref, X)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_sample_weight_early_stopping(kind):
    X, y = data_for(kind)
    X32 = X.astype(np.float32)
    sw = np.random.RandomState(9).uniform(0.5, 2.0, X.shape[0])
    params = dict(solver="adam", early_stopping=True, learning_rate_init=0.01,
                  max_iter=8, hidden_layer_sizes=(15,), random_state=0)
    ours = getattr(fastgd, kind)(**params).fit(X32, y, sample_weight=sw)
    ref = getattr(sk_nn, kind)(**params).fit(X32, y, sample_weight=sw)
    assert ours.coefs_[0].dtype == ref.coefs_[0].dtype == np.float32
    assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=F32_RTOL)
    assert_allclose(ours.validation_scores_, ref.validation_scores_, rtol=1e-2,
                    atol=1e-2)


def _input_form(form):
    X, y = digits(300)
    if form == "noncontiguous_X":
        return X[:, ::2], y
    if form == "list_X_y":
        return X.tolist(), y.tolist()
    if form == "float_labels":
        return X, y.astype(float)
    if form == "bool_labels":
        return X, y > 4
    if form == "csr_int64_indices":
        Xs = sp.csr_matrix(X)
        Xs.indices = Xs.indices.astype(np.int64)
        Xs.indptr = Xs.indptr.astype(np.int64)
        return Xs, y
    if form == "csr_unsorted_indices":
        Xs = sp.csr_matrix(X)
        for i in range(Xs.shape[0]):
            a, b = Xs.indptr[i], Xs.indptr[i + 1]
            Xs.indices[a:b] = Xs.indices[a:b][::-1].copy()
            Xs.data[a:b] = Xs.data[a:b][::-1].copy()
        Xs.has_sorted_indices = False
        return Xs, y
    if form == "csr_explicit_zeros":
        Xs = sp.csr_matrix(X)
        Xs.data[::3] = 0.0
        return Xs, y
    if form == "coo":
        return sp.coo_matrix(X), y
    raise AssertionError(form)


@pytest.mark.parametrize("form", ["noncontiguous_X", "list_X_y", "float_labels",
                                  "bool_labels", "csr_int64_indices",
                                  "csr_unsorted_indices", "csr_explicit_zeros", "coo"])
def test_input_forms(form):
    X, y = _input_form(form)
    ours, ref = make_pair("MLPClassifier", solver="sgd", max_iter=5, random_state=0,
                          hidden_layer_sizes=(10,))
    ours.fit(X, y)
    ref.fit(X, y)
    assert_same_fit(ours, ref, X)


@pytest.mark.parametrize("hidden", [(), (8, 8, 8, 8, 8, 8)], ids=["no-hidden", "deep"])
@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
@pytest.mark.parametrize("kind", KINDS)
def test_network_depth(kind, solver, hidden):
    # hidden_layer_sizes=() is a network without hidden layer in scikit-learn
    X, y = data_for(kind)
    ours, ref = fit_pair(kind, X, y, solver=solver, max_iter=6, random_state=0,
                         hidden_layer_sizes=hidden, activation="tanh")
    assert_same_fit(ours, ref, X)


def _modify_then(est, X, y, how):
    """Users may overwrite coefs_/intercepts_ (in place or by assignment); scikit-
    learn's predict / warm-start fit / partial_fit then use the new values."""
    classes = {"classes": np.unique(y)} if is_classifier(est) else {}
    if how.endswith("partial_fit"):
        est.partial_fit(X, y, **classes)
    else:
        est.fit(X, y)
    if how.startswith("inplace"):
        est.coefs_[0] *= 0.5
        est.intercepts_[-1][:] = 0.1
    elif how.startswith("item"):
        est.coefs_[0] = est.coefs_[0] * 0.5
        est.intercepts_[0] = est.intercepts_[0] + 0.1
    else:
        est.coefs_ = [c * 0.5 for c in est.coefs_]
        est.intercepts_ = [b + 0.1 for b in est.intercepts_]
    if how.endswith("warm_fit"):
        est.fit(X, y)
    elif how.endswith("partial_fit"):
        est.partial_fit(X, y)


@pytest.mark.parametrize("modify", ["inplace", "item", "list"])
@pytest.mark.parametrize("solver, then", [("adam", "predict"), ("adam", "warm_fit"),
                                          ("adam", "partial_fit"),
                                          ("lbfgs", "predict"), ("lbfgs", "warm_fit")])
def test_user_modified_weights(solver, then, modify):
    X, y = digits(300)
    ours, ref = make_pair("MLPClassifier", solver=solver, max_iter=4, random_state=0,
                          warm_start=True, hidden_layer_sizes=(10,))
    _modify_then(ours, X, y, f"{modify}_{then}")
    _modify_then(ref, X, y, f"{modify}_{then}")
    assert_same_fit(ours, ref, X)


@pytest.mark.parametrize("sequence", ["warm_start_f64_then_f32",
                                      "warm_start_f32_then_f64",
                                      "partial_fit_f32_then_f64",
                                      "partial_fit_f64_then_f32"])
def test_dtype_change_between_calls(sequence):
    # scikit-learn keeps the parameters' dtype from the first call (it updates them
    # in place); the values then only differ by float32 rounding
    X, y = digits(300)
    first, second = ((np.float64, np.float32) if "f64_then" in sequence
                     else (np.float32, np.float64))
    ours, ref = make_pair("MLPClassifier", solver="adam", max_iter=3, random_state=0,
                          warm_start=True, hidden_layer_sizes=(10,))
    for est in (ours, ref):
        if sequence.startswith("partial_fit"):
            est.partial_fit(X.astype(first), y, classes=np.unique(y))
            est.partial_fit(X.astype(second), y)
        else:
            est.fit(X.astype(first), y)
            est.fit(X.astype(second), y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        assert a.dtype == b.dtype
        assert_allclose(a, b, rtol=F32_RTOL, atol=1e-5)
    for Xp in (X, X.astype(np.float32)):
        assert ours.predict_proba(Xp).dtype == ref.predict_proba(Xp).dtype


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("learning_rate", ["constant", "adaptive"])
def test_warm_start_after_stopping(learning_rate, early_stopping):
    # scikit-learn keeps the no-improvement counter, best_loss_ / best validation
    # score across warm-started fits (only _initialize resets them), so a second fit
    # after a tol-stop stops again almost at once; the optimizer (and so the
    # adaptive learning rate) is rebuilt.  With early_stopping, the first fit ends
    # with coefs_ = _best_coefs (the same arrays), and the second fit updates those
    # arrays in place: if no epoch of the second fit beats best_validation_score_,
    # scikit-learn's "restored" weights are the last epoch's weights.
    X, y = digits(300)
    ours, ref = make_pair("MLPClassifier", solver="sgd", learning_rate=learning_rate,
                          tol=0.05, n_iter_no_change=2, warm_start=True, max_iter=60,
                          random_state=0, early_stopping=early_stopping,
                          learning_rate_init=0.05, hidden_layer_sizes=(15,))
    for i in range(2):
        ours.fit(X, y)
        ref.fit(X, y)
        if i == 0:
            assert ref.n_iter_ < 60
        assert_same_fit(ours, ref, X)
    if not early_stopping:
        ours.partial_fit(X, y)
        ref.partial_fit(X, y)
        assert_same_fit(ours, ref, X)


@pytest.mark.parametrize("kind", ["MLPClassifier", "MLPRegressor"])
def test_deeper_than_64_layers_follows_sklearn(kind):
    """70 hidden layers (the kernels once stopped at 64): the same trajectory, and a
    forward pass that predicts what scikit-learn predicts."""
    X, y = data_for(kind)
    X, y = X[:120], y[:120]
    params = dict(hidden_layer_sizes=(6,) * 70, activation="tanh", max_iter=4,
                  batch_size=40, learning_rate_init=1e-2, random_state=0)
    ours, ref = make_pair(kind, **params)
    ours.fit(X, y)
    ref.fit(X, y)
    assert ours.n_layers_ == 72
    assert_same_fit(ours, ref, X)
