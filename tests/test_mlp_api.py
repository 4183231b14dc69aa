"""fastgd's MLPs behave as drop-in replacements of scikit-learn's: same parameters,
same fitted attributes, same errors, warnings and verbose output, and they work inside
scikit-learn's meta-estimators.  Expected behaviour is always taken from running
scikit-learn's own estimator."""

import copy
import inspect
import pickle
import re
import warnings
from functools import lru_cache

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import clone
from sklearn import neural_network as sk_nn
from sklearn.base import is_classifier, is_regressor
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

import fastgd
from conftest import ADDED_FITTED_ATTRIBUTES, ADDED_OPTIONS, sklearn_params

KINDS = ["MLPClassifier", "MLPRegressor"]
RTOL = 1e-6
ATOL = 1e-9


@lru_cache(maxsize=None)
def _digits(n):
    X, y = load_digits(return_X_y=True)
    return X[:n] / 16.0, y[:n]


@lru_cache(maxsize=None)
def _diabetes(n):
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X[:n], y[:n] / 100.0


def data_for(kind, n=300):
    X, y = _digits(n) if kind == "MLPClassifier" else _diabetes(n)
    return X.copy(), y.copy()


def make_pair(kind, **params):
    return getattr(fastgd, kind)(**params), getattr(sk_nn, kind)(**params)


def assert_same_predictions(ours, ref, X, rtol=RTOL, atol=ATOL):
    if is_classifier(ref):
        assert_array_equal(ours.predict(X), ref.predict(X))
        assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=rtol,
                        atol=atol)
    else:
        assert_allclose(ours.predict(X), ref.predict(X), rtol=rtol, atol=atol)


def assert_identical_predictions(a, b, X):
    """Bit-identical outputs (e.g. after a pickle round trip)."""
    assert_array_equal(a.predict(X), b.predict(X))
    if hasattr(b, "predict_proba"):
        assert_array_equal(a.predict_proba(X), b.predict_proba(X))


# ----------------------------------------------------------- parameters, cloning
@pytest.mark.parametrize("kind", KINDS)
def test_constructor_signature_matches_sklearn(kind):
    """scikit-learn's parameters, in its order, kinds and defaults; then fastgd's
    additions, keyword-only, with defaults that keep scikit-learn's behaviour."""
    from fastgd._minibatch import EXTRA_PARAMETERS

    ours = inspect.signature(getattr(fastgd, kind).__init__).parameters
    ref = inspect.signature(getattr(sk_nn, kind).__init__).parameters
    extra = dict(EXTRA_PARAMETERS, dropout=0.0, **({"class_weight": None}
                                      if kind == "MLPClassifier" else {}))
    assert list(ours) == list(ref) + list(extra)
    for name in ref:
        assert ours[name].kind == ref[name].kind, name
        assert ours[name].default == ref[name].default, name
    for name, default in extra.items():
        assert ours[name].kind == inspect.Parameter.KEYWORD_ONLY, name
        assert ours[name].default == default, name


@pytest.mark.parametrize("kind", KINDS)
def test_default_get_params_match_sklearn(kind):
    ours, ref = make_pair(kind)
    assert sklearn_params(ours, ref) == ref.get_params()
    assert repr(ours) == repr(ref)
    ours, ref = make_pair(kind, alpha=0.5, hidden_layer_sizes=(3, 2), solver="sgd")
    assert repr(ours) == repr(ref)


@pytest.mark.parametrize("kind", KINDS)
def test_estimator_type_and_tags(kind):
    ours, ref = make_pair(kind)
    assert is_classifier(ours) == is_classifier(ref)
    assert is_regressor(ours) == is_regressor(ref)
    assert get_tags(ours) == get_tags(ref)


@pytest.mark.parametrize("kind", KINDS)
def test_set_params_get_params_clone(kind):
    est = getattr(fastgd, kind)()
    assert est.set_params(alpha=0.3, hidden_layer_sizes=(7, 3), solver="sgd") is est
    params = est.get_params()
    assert params["alpha"] == 0.3 and params["hidden_layer_sizes"] == (7, 3)
    assert params["solver"] == "sgd"
    with pytest.raises(ValueError):
        est.set_params(not_a_parameter=1)

    X, y = data_for(kind, 100)
    est.set_params(max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    cloned = clone(est)
    assert type(cloned) is type(est)
    assert cloned.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(cloned)
    check_is_fitted(est)
    assert not hasattr(cloned, "coefs_")


@pytest.mark.parametrize("kind", KINDS)
def test_not_fitted(kind):
    est = getattr(fastgd, kind)()
    X, _ = data_for(kind, 10)
    with pytest.raises(NotFittedError):
        est.predict(X)
    if kind == "MLPClassifier":
        with pytest.raises(NotFittedError):
            est.predict_proba(X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("params", [dict(solver="sgd"), dict(solver="adam"),
                                    dict(solver="adam", early_stopping=True),
                                    dict(solver="lbfgs")],
                         ids=["sgd", "adam", "adam-early_stopping", "lbfgs"])
@pytest.mark.parametrize("kind", KINDS)
def test_fitted_attribute_names(kind, params):
    X, y = data_for(kind)
    ours, ref = make_pair(kind, max_iter=4, random_state=0, **params)
    ours.fit(X, y)
    ref.fit(X, y)

    def fitted(est):
        return {k for k in dir(est)
                if k.endswith("_") and not k.startswith("_") and hasattr(est, k)}

    assert fitted(ours) - ADDED_FITTED_ATTRIBUTES == fitted(ref)
    for name in ["n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_",
                 "n_features_in_"]:
        assert getattr(ours, name) == getattr(ref, name), name
        assert type(getattr(ours, name)) is type(getattr(ref, name)), name
    assert isinstance(ours.coefs_, list) and isinstance(ours.intercepts_, list)
    if hasattr(ref, "loss_curve_"):
        assert isinstance(ours.loss_curve_, list)
        assert len(ours.loss_curve_) == len(ref.loss_curve_)
    for attr in ["best_loss_", "validation_scores_", "best_validation_score_"]:
        if hasattr(ref, attr):
            assert (getattr(ours, attr) is None) == (getattr(ref, attr) is None), attr


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("hidden", [7, [7, 5], np.array([6, 4]), (3, 3, 3)],
                         ids=["int", "list", "ndarray", "three-layers"])
def test_hidden_layer_sizes_forms(hidden):
    X, y = data_for("MLPClassifier")
    ours, ref = make_pair("MLPClassifier", hidden_layer_sizes=hidden, max_iter=4,
                          random_state=0, solver="sgd")
    ours.fit(X, y)
    ref.fit(X, y)
    assert [c.shape for c in ours.coefs_] == [c.shape for c in ref.coefs_]
    assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=RTOL)
    assert_same_predictions(ours, ref, X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", KINDS)
def test_random_state_instance_and_inf_n_iter_no_change(kind):
    # a RandomState instance is consumed as in scikit-learn; n_iter_no_change=inf
    # is accepted
    X, y = data_for(kind)
    params = dict(solver="sgd", max_iter=6, tol=10.0, n_iter_no_change=np.inf,
                  early_stopping=False)
    ours = getattr(fastgd, kind)(random_state=np.random.RandomState(3), **params)
    ref = getattr(sk_nn, kind)(random_state=np.random.RandomState(3), **params)
    ours.fit(X, y)
    ref.fit(X, y)
    assert ours.n_iter_ == ref.n_iter_ == 6
    assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=RTOL)
    # a second fit draws fresh numbers from the same RandomState, as in sklearn
    ours.fit(X, y)
    ref.fit(X, y)
    assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=RTOL)
    assert_same_predictions(ours, ref, X)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam"])
def test_partial_fit_availability(kind, solver):
    # MLPClassifier hides partial_fit for lbfgs; scikit-learn's MLPRegressor does
    # not (its availability check is always truthy): mirror both.
    ours, ref = make_pair(kind, solver=solver)
    assert hasattr(ours, "partial_fit") == hasattr(ref, "partial_fit")


def test_partial_fit_lbfgs_classifier_raises_attribute_error():
    X, y = data_for("MLPClassifier", 50)
    ours, ref = make_pair("MLPClassifier", solver="lbfgs")
    with pytest.raises(AttributeError) as ref_info:
        ref.partial_fit(X, y, classes=np.unique(y))
    with pytest.raises(AttributeError) as info:
        ours.partial_fit(X, y, classes=np.unique(y))
    assert str(info.value) == str(ref_info.value)


# ---------------------------------------------------------- pickling, copying
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("how", ["pickle", "joblib", "deepcopy"])
def test_serialization_round_trip(how, kind, solver, tmp_path):
    X, y = data_for(kind)
    est = getattr(fastgd, kind)(solver=solver, max_iter=5, random_state=0,
                                hidden_layer_sizes=(10,))
    pickle.loads(pickle.dumps(est))  # unfitted works too
    est.fit(X, y)
    if how == "pickle":
        loaded = pickle.loads(pickle.dumps(est))
    elif how == "joblib":
        path = tmp_path / "model.joblib"
        joblib.dump(est, path)
        loaded = joblib.load(path)
    else:
        loaded = copy.deepcopy(est)
    assert type(loaded) is type(est)
    assert loaded.get_params() == est.get_params()
    assert_identical_predictions(loaded, est, X)
    assert loaded.score(X, y) == est.score(X, y)
    if solver != "lbfgs":
        # the optimizer state survives: further training is the same as without
        # the round trip (scikit-learn's test_mlp_loading_from_joblib_partial_fit)
        # (to rounding, in case the kernels' reductions are not bit-reproducible)
        loaded.partial_fit(X, y)
        est.partial_fit(X, y)
        assert_allclose(loaded.loss_curve_, est.loss_curve_, rtol=1e-10)
        assert_same_predictions(loaded, est, X, rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_pickled_model_continues_like_sklearn(tmp_path):
    X, y = data_for("MLPRegressor")
    ours, ref = make_pair("MLPRegressor", solver="sgd", max_iter=5, random_state=0,
                          learning_rate="invscaling", learning_rate_init=0.05)
    ours.fit(X, y)
    ref.fit(X, y)
    ours = pickle.loads(pickle.dumps(ours))
    for _ in range(3):
        ours.partial_fit(X, y)
        ref.partial_fit(X, y)
    assert ours.t_ == ref.t_
    assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=RTOL)
    assert_same_predictions(ours, ref, X)


# ---------------------------------------------------------- meta-estimators
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_pipeline():
    X, y = load_digits(return_X_y=True)
    X, y = X[:400], y[:400]
    params = dict(hidden_layer_sizes=(20,), max_iter=15, random_state=0)
    ours = Pipeline([("scale", StandardScaler()),
                     ("mlp", fastgd.MLPClassifier(**params))]).fit(X, y)
    ref = Pipeline([("scale", StandardScaler()),
                    ("mlp", sk_nn.MLPClassifier(**params))]).fit(X, y)
    assert_same_predictions(ours, ref, X)
    assert ours.score(X, y) == ref.score(X, y)
    assert_allclose(ours[-1].loss_curve_, ref[-1].loss_curve_, rtol=RTOL)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", KINDS)
def test_grid_search(kind):
    X, y = data_for(kind, 240)
    grid = {"alpha": [1e-4, 1.0], "hidden_layer_sizes": [(5,), (12,)]}
    params = dict(max_iter=20, random_state=0, learning_rate_init=0.01)
    ours = GridSearchCV(getattr(fastgd, kind)(**params), grid, cv=2,
                        n_jobs=2).fit(X, y)
    ref = GridSearchCV(getattr(sk_nn, kind)(**params), grid, cv=2).fit(X, y)
    assert_allclose(ours.cv_results_["mean_test_score"],
                    ref.cv_results_["mean_test_score"], rtol=RTOL, atol=ATOL)
    assert ours.best_params_ == ref.best_params_
    assert type(ours.best_estimator_) is getattr(fastgd, kind)
    assert_same_predictions(ours.best_estimator_, ref.best_estimator_, X)


# ---------------------------------------------------------------- verbose
_NUM = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def assert_same_verbose_output(out, ref_out):
    """Same lines; numbers equal up to rounding of their last printed digit."""
    lines, ref_lines = out.splitlines(), ref_out.splitlines()
    assert len(lines) == len(ref_lines), (out, ref_out)
    for line, ref_line in zip(lines, ref_lines):
        assert _NUM.sub("#", line) == _NUM.sub("#", ref_line), (line, ref_line)
        for a, b in zip(_NUM.findall(line), _NUM.findall(ref_line)):
            if "." not in b and "e" not in b.lower():
                assert a == b, (line, ref_line)
                continue
            decimals = len(b.split(".")[1].lower().split("e")[0]) if "." in b else 0
            decimals_a = len(a.split(".")[1].lower().split("e")[0]) if "." in a else 0
            assert decimals == decimals_a, (line, ref_line)
            assert abs(float(a) - float(b)) <= 1.01 * 10.0 ** -decimals + 1e-6 * abs(
                float(b)), (line, ref_line)


VERBOSE_CASES = {
    "sgd": dict(solver="sgd", max_iter=5),
    "adam-tol-stop": dict(solver="adam", tol=0.5, n_iter_no_change=2, max_iter=30),
    "sgd-adaptive": dict(solver="sgd", learning_rate="adaptive", tol=0.3,
                         n_iter_no_change=1, max_iter=30),
    "sgd-early_stopping": dict(solver="sgd", early_stopping=True, max_iter=30,
                               n_iter_no_change=2, tol=0.05, learning_rate_init=0.2),
    "lbfgs": dict(solver="lbfgs", max_iter=5),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("case", list(VERBOSE_CASES))
@pytest.mark.parametrize("kind", KINDS)
def test_verbose_output(kind, case, capfd):
    X, y = data_for(kind)
    ours, ref = make_pair(kind, verbose=True, random_state=0, hidden_layer_sizes=(10,),
                          **VERBOSE_CASES[case])
    capfd.readouterr()
    ref.fit(X, y)
    ref_out = capfd.readouterr().out
    ours.fit(X, y)
    out = capfd.readouterr().out
    if case != "lbfgs":
        assert ref_out.startswith("Iteration 1, loss = ")
    assert_same_verbose_output(out, ref_out)
    if case != "lbfgs" and not ref.early_stopping:
        # partial_fit prints too
        ref.partial_fit(X, y)
        ref_out = capfd.readouterr().out
        ours.partial_fit(X, y)
        assert_same_verbose_output(capfd.readouterr().out, ref_out)


def test_verbose_false_prints_nothing(capfd):
    X, y = data_for("MLPClassifier")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fastgd.MLPClassifier(max_iter=3, random_state=0).fit(X, y)
    captured = capfd.readouterr()
    assert captured.out == ""


# ---------------------------------------------------------------- warnings
def _convergence_messages(est, X, y):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        est.fit(X, y)
    return [str(w.message) for w in record if issubclass(w.category,
                                                          ConvergenceWarning)]


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("kind", KINDS)
def test_convergence_warning(kind, solver):
    X, y = data_for(kind)
    ours, ref = make_pair(kind, solver=solver, max_iter=3, random_state=0)
    ref_msgs = _convergence_messages(ref, X, y)
    assert len(ref_msgs) == 1
    with pytest.warns(ConvergenceWarning):
        ours.fit(X, y)
    assert _convergence_messages(ours, X, y) == ref_msgs


@pytest.mark.parametrize("kind", KINDS)
def test_no_convergence_warning_when_converged(kind):
    X, y = data_for(kind)
    ours, ref = make_pair(kind, solver="adam", max_iter=50, tol=0.5,
                          n_iter_no_change=1, random_state=0)
    assert _convergence_messages(ref, X, y) == []
    assert _convergence_messages(ours, X, y) == []
    assert ours.n_iter_ == ref.n_iter_ < 50


# ------------------------------------------------------------------ errors
def _outcome(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001
        return type(exc), str(exc)
    return None, None


def _normalise_message(msg):
    # parameter-validation messages list a set of options, e.g. {'sgd', 'adam',
    # 'lbfgs'}, in set-iteration order, which depends on how the set was built:
    # compare the options as a sorted list, without the options fastgd adds
    def sort_options(match):
        options = [o for o in match.group(1).split(", ") if o not in ADDED_OPTIONS]
        return "{" + ", ".join(sorted(options)) + "}"

    return re.sub(r"\{([^{}]*)\}", sort_options, msg)


def _assert_same_error(fn_ours, fn_ref, expected=ValueError):
    ref_type, ref_msg = _outcome(fn_ref)
    assert ref_type is not None and issubclass(ref_type, expected), ref_type
    ours_type, ours_msg = _outcome(fn_ours)
    assert ours_type is ref_type, (ours_type, ours_msg, ref_type, ref_msg)
    assert _normalise_message(ours_msg) == _normalise_message(ref_msg)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", ["wrong_n_features_predict", "wrong_n_features_score",
                                  "nan_X_fit", "inf_X_fit", "nan_X_predict",
                                  "nan_y_fit", "bad_sample_weight_length",
                                  "early_stopping_partial_fit", "too_few_val_samples",
                                  "zero_hidden_units", "sparse_coo_predict_bad_shape"])
def test_errors(kind, case):
    X, y = data_for(kind, 100)

    def scenario(module):
        Est = getattr(module, kind)
        fitted = Est(max_iter=2, random_state=0, hidden_layer_sizes=(5,)).fit(X, y)
        if case == "wrong_n_features_predict":
            return lambda: fitted.predict(X[:, :-1])
        if case == "wrong_n_features_score":
            return lambda: fitted.score(np.hstack([X, X]), y)
        if case == "nan_X_fit":
            Xn = X.copy()
            Xn[3, 2] = np.nan
            return lambda: Est(max_iter=2).fit(Xn, y)
        if case == "inf_X_fit":
            Xn = X.copy()
            Xn[5, 1] = np.inf
            return lambda: Est(max_iter=2).fit(Xn, y)
        if case == "nan_X_predict":
            Xn = X.copy()
            Xn[0, 0] = np.nan
            return lambda: fitted.predict(Xn)
        if case == "nan_y_fit":
            yn = y.astype(float)
            yn[4] = np.nan
            return lambda: Est(max_iter=2).fit(X, yn)
        if case == "bad_sample_weight_length":
            return lambda: Est(max_iter=2).fit(X, y, sample_weight=np.ones(len(y) - 1))
        if case == "early_stopping_partial_fit":
            est = Est(early_stopping=True)
            kw = {"classes": np.unique(y)} if kind == "MLPClassifier" else {}
            return lambda: est.partial_fit(X, y, **kw)
        if case == "too_few_val_samples":
            return lambda: Est(early_stopping=True, validation_fraction=0.01).fit(
                X[:60], y[:60])
        if case == "zero_hidden_units":
            return lambda: Est(hidden_layer_sizes=(5, 0)).fit(X, y)
        if case == "sparse_coo_predict_bad_shape":
            return lambda: fitted.predict(sp.coo_matrix(X[:, :-2]))
        raise AssertionError(case)

    _assert_same_error(scenario(fastgd), scenario(sk_nn))


@pytest.mark.parametrize("case", ["unseen_class", "no_classes_first_call",
                                  "warm_start_new_classes", "continuous_y"])
def test_classifier_label_errors(case):
    X, y = data_for("MLPClassifier", 200)

    def scenario(module):
        Est = module.MLPClassifier
        if case == "unseen_class":
            est = Est(solver="sgd").partial_fit(X[y < 3], y[y < 3],
                                                classes=[0, 1, 2])
            return lambda: est.partial_fit(X, y)
        if case == "no_classes_first_call":
            return lambda: Est(solver="sgd").partial_fit(X, y)
        if case == "warm_start_new_classes":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est = Est(warm_start=True, max_iter=2).fit(X[y < 3], y[y < 3])
            return lambda: est.fit(X, y)
        if case == "continuous_y":
            return lambda: Est().fit(X, y + 0.5)
        raise AssertionError(case)

    _assert_same_error(scenario(fastgd), scenario(sk_nn))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("param", [dict(solver="newton"), dict(activation="softmax"),
                                   dict(learning_rate_init=0.0), dict(momentum=1.5),
                                   dict(batch_size=0), dict(validation_fraction=1.0),
                                   dict(hidden_layer_sizes=0), dict(max_iter=0),
                                   dict(beta_2=1.0), dict(learning_rate="optimal")],
                         ids=lambda d: "-".join(f"{k}={v}" for k, v in d.items()))
def test_invalid_parameters(kind, param):
    X, y = data_for(kind, 50)
    ours, ref = make_pair(kind, **param)
    _assert_same_error(lambda: ours.fit(X, y), lambda: ref.fit(X, y))


def test_invalid_regressor_loss():
    X, y = data_for("MLPRegressor", 50)
    ours, ref = make_pair("MLPRegressor", loss="absolute_error")
    _assert_same_error(lambda: ours.fit(X, y), lambda: ref.fit(X, y))


def test_poisson_negative_target_matches_sklearn():
    # scikit-learn does not reject negative targets for loss="poisson" up front;
    # whatever it does (error or not), fastgd does the same kind of thing
    X, y = data_for("MLPRegressor", 100)
    y = y - 1.5
    ours, ref = make_pair("MLPRegressor", loss="poisson", max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_type, _ = _outcome(lambda: ref.fit(X, y))
        ours_type, _ = _outcome(lambda: ours.fit(X, y))
    assert ours_type is ref_type


def test_non_finite_weights_error():
    # as scikit-learn's test_nonfinite_params: huge inputs make sgd diverge
    rng = np.random.RandomState(0)
    X = rng.standard_normal((100, 2)) * 1e100
    y = rng.standard_normal(100)
    ours, ref = make_pair("MLPRegressor", solver="sgd", max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_type, ref_msg = _outcome(lambda: ref.fit(X, y))
        ours_type, ours_msg = _outcome(lambda: ours.fit(X, y))
    # the same error, scikit-learn's message first; fastgd adds advice after it
    assert ref_type is ValueError and ours_type is ref_type
    assert ours_msg.startswith(ref_msg) and "learning_rate_init" in ours_msg


# ------------------------------------------------------------ classifier outputs
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("target", ["multiclass", "binary", "multilabel"])
def test_predict_log_proba(target):
    X, y = data_for("MLPClassifier")
    if target == "binary":
        y = y % 2
    elif target == "multilabel":
        y = np.column_stack([y % 2, y > 4]).astype(int)
    ours, ref = make_pair("MLPClassifier", max_iter=10, random_state=0)
    ours.fit(X, y)
    ref.fit(X, y)
    proba = ours.predict_proba(X)
    assert_allclose(ours.predict_log_proba(X), np.log(proba), rtol=1e-12)
    assert_allclose(ours.predict_log_proba(X), ref.predict_log_proba(X), rtol=RTOL,
                    atol=1e-7)
    if target != "multilabel":
        assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert_array_equal(ours.predict(X), ref.predict(X))
    assert ours.score(X, y) == ref.score(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("early_stopping", [False, True])
def test_string_labels(early_stopping):
    X, y = data_for("MLPClassifier")
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"], dtype=object)
    ys = names[y]
    ours, ref = make_pair("MLPClassifier", max_iter=10, random_state=0,
                          early_stopping=early_stopping)
    ours.fit(X, ys)
    ref.fit(X, ys)
    assert_array_equal(ours.classes_, ref.classes_)
    pred = ours.predict(X)
    assert pred.dtype == ref.predict(X).dtype
    assert_array_equal(pred, ref.predict(X))
    assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=RTOL)
    if early_stopping:
        assert_allclose(ours.validation_scores_, ref.validation_scores_, rtol=RTOL)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_string_labels_partial_fit():
    X, y = data_for("MLPClassifier")
    names = np.array(list("abcdefghij"))
    ys = names[y]
    ours, ref = make_pair("MLPClassifier", random_state=0, solver="sgd")
    for i, idx in enumerate(np.array_split(np.arange(len(ys)), 3)):
        kw = {"classes": names} if i == 0 else {}
        ours.partial_fit(X[idx], ys[idx], **kw)
        ref.partial_fit(X[idx], ys[idx], **kw)
    assert_array_equal(ours.classes_, ref.classes_)
    assert_array_equal(ours.predict(X), ref.predict(X))
    assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=RTOL, atol=ATOL)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", KINDS)
def test_score_matches_sklearn(kind):
    X, y = data_for(kind)
    sw = np.random.RandomState(0).uniform(0.5, 2, len(y))
    ours, ref = make_pair(kind, max_iter=5, random_state=0)
    ours.fit(X, y)
    ref.fit(X, y)
    assert_allclose(ours.score(X, y), ref.score(X, y), rtol=RTOL)
    assert_allclose(ours.score(X, y, sample_weight=sw),
                    ref.score(X, y, sample_weight=sw), rtol=RTOL)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", KINDS)
def test_column_vector_y(kind):
    # y of shape (n, 1) is raveled with a DataConversionWarning, as in sklearn
    from sklearn.exceptions import DataConversionWarning

    X, y = data_for(kind)
    ours, ref = make_pair(kind, max_iter=3, random_state=0)
    with pytest.warns(DataConversionWarning):
        ref.fit(X, y.reshape(-1, 1))
    with pytest.warns(DataConversionWarning):
        ours.fit(X, y.reshape(-1, 1))
    assert ours.n_outputs_ == ref.n_outputs_
    assert ours.predict(X).shape == ref.predict(X).shape
    assert_same_predictions(ours, ref, X)


# ---------------------------------------------------------------- pandas
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", KINDS)
def test_feature_names_in_with_dataframe(kind):
    import pandas as pd  # in the [test] extras: never skipped
    X, y = data_for(kind)
    columns = [f"f{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=columns)
    ours, ref = make_pair(kind, max_iter=3, random_state=0)
    ours.fit(df, y)
    ref.fit(df, y)
    assert ours.n_features_in_ == X.shape[1]
    assert_array_equal(ours.feature_names_in_, ref.feature_names_in_)
    assert_same_predictions(ours, ref, df)
    # unnamed X after named fit: same warning as scikit-learn
    with pytest.warns(UserWarning, match="feature names"):
        ours.predict(X)
    # reordered columns: same error as scikit-learn
    shuffled = df[columns[::-1]]
    _assert_same_error(lambda: ours.predict(shuffled), lambda: ref.predict(shuffled))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", KINDS)
def test_no_feature_names_with_ndarray(kind):
    X, y = data_for(kind)
    est = getattr(fastgd, kind)(max_iter=2).fit(X, y)
    assert est.n_features_in_ == X.shape[1]
    assert not hasattr(est, "feature_names_in_")


@pytest.mark.parametrize("y", [
    np.array([3, 1, 2, 3, 1]), np.array(["b", "a", "b"]), np.array([1.0, 2.0, 1.0, 3.0]),
    np.array([True, False, True]), np.array([2, 2, 5]),
    np.array(["x", "y", "z", "x"], dtype=object), np.array([7, 7, 7]),
    np.array([[1, 0], [0, 1], [1, 1]]),
], ids=["int", "str", "float", "bool", "binary", "object", "one-class", "multilabel"])
def test_target_indicator_is_label_binarizer_transform(y):
    from sklearn.preprocessing import LabelBinarizer

    clf = fastgd.MLPClassifier()
    clf._label_binarizer = LabelBinarizer().fit(y)
    expected = clf._label_binarizer.transform(y).astype(bool)
    np.testing.assert_array_equal(clf._indicator(y), expected)
