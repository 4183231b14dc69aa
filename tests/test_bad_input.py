"""Bad and awkward input: fastgd does what scikit-learn does.

Every case runs on fastgd's estimator AND on the scikit-learn estimator it replaces:

* where scikit-learn raises, fastgd raises an error of the same family (ValueError /
  TypeError / ...) whose message names the problem, and it does so before any
  compiled kernel runs (the kernels trust their inputs);
* where scikit-learn works, fastgd works too, with the same warnings and - the runs
  being seeded - the same predictions.

The estimators under test are listed once, in ``ESTIMATORS``; a new fastgd estimator
joins every applicable case with one line there.  Cases that need a capability
(classification, ``partial_fit``, a hyperparameter) are only generated for the
estimators that have it.
"""

import re
import tempfile
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import linear_model as sk_lm
from sklearn import neural_network as sk_nn
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError

import fastgd
from conftest import outputs
from fastgd import _engine

_QUICK = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=0)

# (fastgd class, scikit-learn class, constructor kwargs for a quick seeded fit
# [, options]).  Options: "rtol" for prediction comparisons where the solvers differ;
# "outcomes": {case: message regex, or None} where this estimator's scikit-learn
# counterpart rejects a case the MLPs take (or takes one they reject) - fastgd
# follows scikit-learn, so the case's expected outcome flips for that pair.  A
# hyperparameter case is named "name=value".
_LOGISTIC_OUTCOMES = {
    # scikit-learn's LogisticRegression refuses a single class (the MLPs train on
    # it) and multilabel y; one sample is one class
    "single_class": r"at least 2 classes",
    "single_sample_single_class": r"at least 2 classes",
    "one_sample": r"at least 2 classes",
    "multilabel_y": r"y should be a 1d array",
    # its warm start refuses coefficients of another shape, in its own words
    "warm_start_new_classes": r"Initialization coef is of shape",
    # max_iter=0 is allowed, with a ConvergenceWarning (see _LOGISTIC_PATH_ONLY)
    "max_iter=0": None,
}
# Cases where both work with the same warnings but the models cannot agree: the
# outcome is compared, the predictions are not.
_LOGISTIC_PATH_ONLY = {
    # scikit-learn's max_iter=0 is not its starting point: scipy's L-BFGS-B takes
    # its first line-search step before it counts an iteration, so the "0
    # iteration" model has moved along the raw gradient.  fastgd returns the
    # starting point (zeros); its first step, in the preconditioned coordinates,
    # would be another point anyway.  A gradient-path difference, not a bug.
    "max_iter=0",
}
_LINEAR_OUTCOMES = {
    # scikit-learn's LinearRegression validates X with dtype="numeric": any text
    # array is refused, even numbers written as text (the MLPs convert them) ...
    "numeric_text_X": r"not compatible with arrays of bytes/strings",
    "text_in_X": r"not compatible with arrays of bytes/strings",
    # ... while numeric text targets are converted (y_numeric), and work
    "text_y_for_regressor": None,
    # it refuses negative sample weights (ensure_non_negative=True)
    "sample_weight_negative": r"Negative values in data passed to `sample_weight`",
}
ESTIMATORS = [
    (fastgd.MLPClassifier, sk_nn.MLPClassifier, _QUICK),
    (fastgd.MLPRegressor, sk_nn.MLPRegressor, _QUICK),
    # The linear models are fitted to a tolerance by gradient methods (L-BFGS /
    # conjugate gradients) where scikit-learn uses lbfgs / a closed-form lstsq: the
    # predictions agree to the solvers' tolerance, not to rounding.
    # LogisticRegression: both fitted to a tight tol so that both are at the optimum
    # (at the default tol=1e-4 each stops at its own point, ~1e-3 apart).
    (fastgd.LogisticRegression, sk_lm.LogisticRegression,
     dict(random_state=0, tol=1e-8, max_iter=1000),
      # (trained in float32, both stop where float32 rounding lets them, ~1e-4
     # apart: also when such a model predicts in float64)
     {"rtol": {"float64": 1e-4, "float32": 3e-3},
      "case_rtol": {"float32_fit_float64_predict": 3e-3},
      "outcomes": _LOGISTIC_OUTCOMES, "path_only": _LOGISTIC_PATH_ONLY}),
    # (float16 X: scikit-learn's coefficients and predictions are float16, and so
    # are fastgd's; a coefficient rounded the other way moves a float16 dot
    # product by a few of its ulps - 3 significant digits)
    (fastgd.LinearRegression, sk_lm.LinearRegression, {},
     {"rtol": {"float64": 1e-4, "float16": 1e-2}, "outcomes": _LINEAR_OUTCOMES}),
]

N, D = 40, 4
RTOL = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-4}


def _pair_id(pair):
    return pair[0].__name__


def _options(pair):
    return pair[3] if len(pair) > 3 else {}


def _data(classifier, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(N, D))
    if classifier:
        y = np.arange(N) % 3
    else:
        y = X @ rng.normal(size=D) + 0.1 * rng.normal(size=N)
    return X, y


# ----------------------------------------------------------------------- running
class KernelCalled(AssertionError):
    pass


@contextmanager
def _kernels_forbidden(monkeypatch):
    """Every compiled entry point that does work raises KernelCalled."""

    def boom(*args, **kwargs):
        raise KernelCalled("a compiled kernel ran on input that should be rejected")

    with monkeypatch.context() as m:
        for name in ("train_epoch", "loss_gradient", "forward"):
            m.setattr(_engine._kernels, name, boom)
        yield


def _outcome(fn):
    """(result, exception, warning categories) of calling fn."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result, exc = fn(), None
        except KernelCalled:
            raise
        except Exception as e:  # noqa: BLE001
            result, exc = None, e
    # numpy's own overflow/invalid-value RuntimeWarnings come from scikit-learn's
    # numpy code only; fastgd computes in compiled code.
    categories = {w.category for w in caught
                  if not issubclass(w.category, RuntimeWarning)}
    return result, exc, categories


_FAMILIES = (NotFittedError, TypeError, ValueError, IndexError, AttributeError)


def _family(exc):
    return {f for f in _FAMILIES if isinstance(exc, f)}


def _superset_options(ours, ref):
    """fastgd may accept more options than scikit-learn (its extra solvers, say):
    where its list of options holds all of scikit-learn's, say it in scikit-learn's
    words."""
    o, r = re.search(r"\{([^{}]*)\}", ours), re.search(r"\{([^{}]*)\}", ref)
    if o and r and set(r.group(1).split(", ")) <= set(o.group(1).split(", ")):
        return ours[: o.start()] + r.group(0) + ours[o.end():]
    return ours


def _normalise(message):
    # validation messages list options from a set, in set-iteration order
    return re.sub(r"\{([^{}]*)\}",
                  lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}",
                  message)




def _assert_same_outputs(ours, ref, rtol):
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape
        if a.dtype.kind in "fc":
            assert a.dtype == b.dtype
            assert np.isfinite(a).all()
            if isinstance(rtol, dict):
                rtol = rtol.get(a.dtype.name)
            assert_allclose(a, b, rtol=rtol or RTOL[a.dtype], atol=1e-6)
        else:
            assert_array_equal(a, b)


def _run_both(pair, scenario, monkeypatch, error=None, before_kernels=True,
              rtol=None, compare_outputs=True):
    """Run ``scenario`` on fastgd and scikit-learn; compare the outcomes."""
    ours_cls, ref_cls, kwargs = pair[:3]
    classifier = is_classifier(ref_cls())
    outcomes = []
    for cls in (ours_cls, ref_cls):
        def make(cls=cls, **extra):
            return cls(**{**kwargs, **extra})
        X, y = _data(classifier)
        action = scenario(make, X, y)  # set-up (e.g. a first fit) may run kernels
        if cls is ours_cls and error is not None and before_kernels:
            with _kernels_forbidden(monkeypatch):
                outcomes.append(_outcome(action))
        else:
            outcomes.append(_outcome(action))
    (ours, ours_exc, ours_warn), (ref, ref_exc, ref_warn) = outcomes

    if error is not None:
        assert ref_exc is not None, "scikit-learn accepted this input"
        assert ours_exc is not None, f"fastgd accepted this input ({ref_exc!r})"
        assert _family(ours_exc) == _family(ref_exc), (ours_exc, ref_exc)
        assert _family(ours_exc) & {ValueError, TypeError}, ours_exc
        ours_msg, ref_msg = _normalise(str(ours_exc)), _normalise(str(ref_exc))
        ours_msg = _superset_options(ours_msg, ref_msg)
        # the message names the problem: in the words the case expects, or
        # scikit-learn's (for estimators added later, with other wordings)
        assert re.search(error, ours_msg) or ours_msg.startswith(ref_msg), ours_msg
        if type(ours_exc) is type(ref_exc):
            # the same error, in the same words (fastgd may add advice after them)
            assert ours_msg.startswith(ref_msg), (ours_msg, ref_msg)
        return ours_exc, ref_exc
    assert ref_exc is None, f"scikit-learn rejected this input: {ref_exc!r}"
    assert ours_exc is None, f"fastgd rejected this input: {ours_exc!r}"
    assert ours_warn == ref_warn
    if hasattr(ours, "fit") and hasattr(ref, "fit"):  # fitted estimators
        ours, ref = outputs(ours, X), outputs(ref, X)
    if compare_outputs and (ours is not None or ref is not None):
        _assert_same_outputs(ours, ref, rtol or _options(pair).get("rtol"))
    return ours, ref


# -------------------------------------------------------------------- the cases
# A case: scenario(make, X, y) -> action.  ``make(**params)`` builds the estimator
# under test; the action is what must fail (or work) the same way on both sides.
ERROR_CASES = {}  # name -> (scenario, message regex, requirement, before kernels)
VALID_CASES = {}  # name -> (scenario, requirement)


def error_case(message, needs=None, before_kernels=True):
    def register(scenario):
        ERROR_CASES[scenario.__name__] = (scenario, message, needs, before_kernels)
        return scenario
    return register


def valid_case(needs=None):
    def register(scenario):
        VALID_CASES[scenario.__name__] = (scenario, needs)
        return scenario
    return register


def _applies(pair, needs):
    """Whether the case ``needs`` (None, a requirement or a tuple of them; "param:X"
    is a hyperparameter both estimators take) applies to the pair. Cases are
    generated only where they apply: a case never skips itself at run time, so the
    counts in test_case_counts are the cases that ran."""
    ours_cls, ref_cls = pair[:2]
    if needs is None:
        return True
    if isinstance(needs, tuple):
        return all(_applies(pair, need) for need in needs)
    if needs.startswith("param:"):
        return _has_param(pair, needs[len("param:"):])
    if needs == "classifier":
        return is_classifier(ref_cls())
    if needs == "regressor":
        return not is_classifier(ref_cls())
    if needs == "partial_fit":
        return hasattr(ours_cls, "partial_fit") and hasattr(ref_cls, "partial_fit")
    if needs == "classifier_partial_fit":
        return _applies(pair, "classifier") and _applies(pair, "partial_fit")
    if needs == "linear":
        return ref_cls.__module__.startswith("sklearn.linear_model")
    if needs == "sgd_regressor":
        return _applies(pair, "regressor") and all(
            any("sgd" in getattr(c, "options", ())
                for c in cls._parameter_constraints.get("solver", []))
            for cls in (ours_cls, ref_cls))
    raise AssertionError(needs)


def _fitted(make, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make().fit(X, y)


def _partial_fitted(make, X, y):
    est = make()
    kw = {"classes": np.unique(y)} if is_classifier(est) else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.partial_fit(X, y, **kw)


def _with(X, i, j, value):
    X = X.astype(float)
    X[i, j] = value
    return X


# -- non-finite values
@error_case(r"Input X contains NaN")
def nan_in_X(make, X, y):
    return lambda: make().fit(_with(X, 3, 1, np.nan), y)


@error_case(r"Input X contains infinity")
def inf_in_X(make, X, y):
    return lambda: make().fit(_with(X, 5, 0, np.inf), y)


@error_case(r"Input X contains infinity")
def minus_inf_in_X(make, X, y):
    return lambda: make().fit(_with(X, 0, 3, -np.inf), y)


@error_case(r"Input X contains infinity")
def inf_in_float32_X(make, X, y):
    X = X.astype(np.float32)
    X[2, 2] = np.inf
    return lambda: make().fit(X, y)


@error_case(r"Input X contains NaN")
def nan_in_sparse_X(make, X, y):
    X = sp.csr_matrix(_with(X, 7, 2, np.nan))
    return lambda: make().fit(X, y)


@error_case(r"Input X contains NaN")
def none_in_object_X(make, X, y):
    X = X.astype(object)
    X[1, 1] = None
    return lambda: make().fit(X, y)


@error_case(r"Input y contains NaN")
def nan_in_y(make, X, y):
    y = y.astype(float)
    y[4] = np.nan
    return lambda: make().fit(X, y)


@error_case(r"Input y contains infinity")
def inf_in_y(make, X, y):
    y = y.astype(float)
    y[4] = np.inf
    return lambda: make().fit(X, y)


@error_case(r"Input X contains NaN")
def nan_in_X_predict(make, X, y):
    est = _fitted(make, X, y)
    return lambda: est.predict(_with(X, 0, 0, np.nan))


@error_case(r"Input X contains infinity")
def inf_in_X_predict(make, X, y):
    est = _fitted(make, X, y)
    return lambda: est.predict(_with(X, 1, 2, np.inf))


@error_case(r"Input X contains NaN", needs="partial_fit")
def nan_in_X_partial_fit(make, X, y):
    est = _partial_fitted(make, X, y)
    return lambda: est.partial_fit(_with(X, 3, 1, np.nan), y)


# -- shapes
@error_case(r"0 sample\(s\)")
def empty_X(make, X, y):
    return lambda: make().fit(X[:0], y[:0])


@error_case(r"0 feature\(s\)")
def no_features(make, X, y):
    return lambda: make().fit(X[:, :0], y)


@error_case(r"Expected 2D array, got 1D array")
def X_1d(make, X, y):
    return lambda: make().fit(X[:, 0], y)


@error_case(r"Expected 2D array, got scalar array")
def X_scalar(make, X, y):
    return lambda: make().fit(1.0, y[:1])


@error_case(r"dim 3")
def X_3d(make, X, y):
    return lambda: make().fit(X[:, :, None], y)


@error_case(r"inconsistent numbers of samples")
def X_y_length_mismatch(make, X, y):
    return lambda: make().fit(X, y[:-1])


@error_case(r"requires y to be passed")
def y_none(make, X, y):
    return lambda: make().fit(X, None)


@error_case(r"X has 3 features, but \w+ is expecting 4 features")
def wrong_n_features_predict(make, X, y):
    est = _fitted(make, X, y)
    return lambda: est.predict(X[:, :3])


@error_case(r"X has 5 features, but \w+ is expecting 4 features")
def wrong_n_features_predict_sparse(make, X, y):
    est = _fitted(make, X, y)
    return lambda: est.predict(sp.csr_matrix(np.hstack([X, X[:, :1]])))


@error_case(r"X has 8 features, but \w+ is expecting 4 features")
def wrong_n_features_score(make, X, y):
    est = _fitted(make, X, y)
    return lambda: est.score(np.hstack([X, X]), y)


@error_case(r"X has 3 features, but \w+ is expecting 4 features", needs="partial_fit")
def wrong_n_features_partial_fit(make, X, y):
    est = _partial_fitted(make, X, y)
    return lambda: est.partial_fit(X[:, :3], y)


@error_case(r"Expected 2D array, got 1D array")
def predict_1d(make, X, y):
    est = _fitted(make, X, y)
    return lambda: est.predict(X[0])


@error_case(r"0 sample\(s\)")
def predict_empty(make, X, y):
    est = _fitted(make, X, y)
    return lambda: est.predict(X[:0])


@error_case(r"not fitted yet")
def predict_before_fit(make, X, y):
    return lambda: make().predict(X)


# -- data types
@error_case(r"could not convert string to float")
def text_in_X(make, X, y):
    X = X.astype(str)
    X[0, 0] = "a"
    return lambda: make().fit(X, y)


@error_case(r"could not convert string to float")
def text_in_X_predict(make, X, y):
    est = _fitted(make, X, y)
    X = X.astype(object)
    X[2, 1] = "abc"
    return lambda: est.predict(X)


@error_case(r"Complex data not supported")
def complex_X(make, X, y):
    return lambda: make().fit(X + 1j, y)


@error_case(r"Unknown label type", needs="classifier")
def continuous_y_for_classifier(make, X, y):
    return lambda: make().fit(X, y + 0.5)


# scikit-learn lets text targets through to numpy arithmetic (a UFuncTypeError,
# which is a TypeError) and fails late; fastgd says so up front, same family.
@error_case(r"numeric targets", needs="regressor")
def text_y_for_regressor(make, X, y):
    return lambda: make().fit(X, y.astype(str))


# scikit-learn fails late on sparse y (numpy's LinAlgError, a ValueError, from a
# matrix power); fastgd says so up front, same family.
@error_case(r"Sparse data was passed for y", needs="regressor")
def sparse_2d_y_for_regressor(make, X, y):
    return lambda: make().fit(X, sp.csr_matrix(np.column_stack([y, y])))


@error_case(r"Sparse data was passed for y", needs="regressor")
def sparse_column_y_for_regressor(make, X, y):
    return lambda: make().fit(X, sp.csr_matrix(y.reshape(-1, 1)))


# -- sample weights
@error_case(r"sample_weight.shape == \(39,\), expected \(40,\)")
def sample_weight_too_short(make, X, y):
    return lambda: make().fit(X, y, sample_weight=np.ones(N - 1))


@error_case(r"Sample weights must be 1D")
def sample_weight_2d(make, X, y):
    return lambda: make().fit(X, y, sample_weight=np.ones((N, 2)))


@error_case(r"at least one non-zero")
def sample_weight_all_zero(make, X, y):
    return lambda: make().fit(X, y, sample_weight=np.zeros(N))


@error_case(r"sample_weight contains NaN")
def sample_weight_nan(make, X, y):
    return lambda: make().fit(X, y, sample_weight=np.r_[np.nan, np.ones(N - 1)])


@error_case(r"sample_weight contains infinity")
def sample_weight_inf(make, X, y):
    return lambda: make().fit(X, y, sample_weight=np.r_[np.inf, np.ones(N - 1)])


@error_case(r"could not convert string to float")
def sample_weight_text(make, X, y):
    return lambda: make().fit(X, y, sample_weight=np.array(["a"] * N))


# -- partial_fit and classes
@error_case(r"classes must be passed on the first call",
            needs="classifier_partial_fit")
def partial_fit_without_classes(make, X, y):
    return lambda: make().partial_fit(X, y)


@error_case(r"`y` has classes not in `self.classes_`", needs="classifier_partial_fit")
def partial_fit_unseen_class(make, X, y):
    est = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.partial_fit(X[y < 2], y[y < 2], classes=[0, 1])
    return lambda: est.partial_fit(X, y)


@error_case(r"is not the same as on last call", needs="classifier_partial_fit")
def partial_fit_changed_classes(make, X, y):
    est = _partial_fitted(make, X, y)
    return lambda: est.partial_fit(X, y, classes=[0, 1, 2, 3])


@error_case(r"warm_start can only be used where `y` has the same classes",
            needs=("classifier", "param:warm_start"))
def warm_start_new_classes(make, X, y):
    est = _fitted(lambda: make(warm_start=True), X[y < 2], y[y < 2])
    return lambda: est.fit(X, y)


# -- training that cannot produce a finite model
# Divergence is found by training, so here the kernels do run (test_robustness.py
# checks what fastgd keeps and says).
@error_case(r"non-finite parameter weights", needs="sgd_regressor",
            before_kernels=False)
def huge_values_diverge(make, X, y):
    return lambda: make(solver="sgd").fit(X * 1e200, y)


# ------------------------------------------------------------- valid, awkward
def _fit_outputs(make, X, y, X_test=None, **fit_kwargs):
    def action():
        est = make().fit(X, y, **fit_kwargs)
        X_new = X_test if X_test is not None else _data(is_classifier(est), seed=1)[0]
        return outputs(est, X_new)
    return action


@valid_case()
def fortran_X(make, X, y):
    return _fit_outputs(make, np.asfortranarray(X), y)


@valid_case()
def strided_rows(make, X, y):
    big = np.repeat(X, 2, axis=0)
    return _fit_outputs(make, big[::2], y)


@valid_case()
def strided_columns(make, X, y):
    big = np.repeat(X, 2, axis=1)
    return _fit_outputs(make, big[:, ::2], y)


@valid_case()
def reversed_rows(make, X, y):
    return _fit_outputs(make, X[::-1].copy()[::-1], y)


@valid_case()
def read_only_arrays(make, X, y):
    X, y, w = X.copy(), y.copy(), np.linspace(0.5, 2.0, N)
    for a in (X, y, w):
        a.flags.writeable = False
    return _fit_outputs(make, X, y, sample_weight=w)


@valid_case()
def read_only_float32(make, X, y):
    X = X.astype(np.float32)
    X.flags.writeable = False
    return _fit_outputs(make, X, y, X_test=X)


def _read_only_memmap(X, dtype=np.float64, order="C"):
    """X as a read-only np.memmap (the file is unlinked; the mapping stays)."""
    with tempfile.NamedTemporaryFile(suffix=".dat") as f:
        X.astype(dtype).tofile(f) if order == "C" else X.T.astype(dtype).tofile(f)
        f.flush()
        return np.memmap(f.name, dtype=dtype, mode="r", shape=X.shape, order=order)


@valid_case()
def memmap_X(make, X, y):
    mm = _read_only_memmap(X)
    return _fit_outputs(make, mm, y, X_test=mm)


@valid_case()
def memmap_float32_fortran(make, X, y):
    mm = _read_only_memmap(X, np.float32, order="F")
    return _fit_outputs(make, mm, y, X_test=mm)


@valid_case()
def float32_X(make, X, y):
    X = X.astype(np.float32)
    return _fit_outputs(make, X, y, X_test=X)


@valid_case()
def float16_X(make, X, y):
    X = X.astype(np.float16)
    return _fit_outputs(make, X, y, X_test=X)


@valid_case()
def int_X(make, X, y):
    X = np.round(3 * X).astype(np.int64)
    return _fit_outputs(make, X, y, X_test=X)


@valid_case()
def uint8_X(make, X, y):
    X = (np.abs(X) * 40).astype(np.uint8)
    return _fit_outputs(make, X, y, X_test=X / 40)


@valid_case()
def bool_X(make, X, y):
    return _fit_outputs(make, X > 0, y, X_test=X > 0.5)


@valid_case()
def object_numbers_X(make, X, y):
    return _fit_outputs(make, X.astype(object), y)


@valid_case()
def numeric_text_X(make, X, y):
    # numbers written as text are converted, as numpy's astype(float) does
    return _fit_outputs(make, X.astype(str), y)


@valid_case()
def lists(make, X, y):
    return _fit_outputs(make, X.tolist(), y.tolist(), X_test=X[:5].tolist())


@valid_case()
def csr_X(make, X, y):
    X = np.where(np.abs(X) > 0.7, X, 0.0)
    return _fit_outputs(make, sp.csr_matrix(X), y, X_test=X)


@valid_case()
def csc_X(make, X, y):
    X = np.where(np.abs(X) > 0.7, X, 0.0)
    return _fit_outputs(make, sp.csc_matrix(X), y, X_test=sp.csc_matrix(X))


@valid_case()
def coo_and_csr_array_X(make, X, y):
    X = np.where(np.abs(X) > 0.7, X, 0.0)
    return _fit_outputs(make, sp.coo_matrix(X), y, X_test=sp.csr_array(X))


@valid_case()
def sparse_float32_X(make, X, y):
    X = np.where(np.abs(X) > 0.7, X, 0.0).astype(np.float32)
    return _fit_outputs(make, sp.csr_matrix(X), y, X_test=X)


@valid_case()
def csr_with_unsorted_indices(make, X, y):
    X = sp.csr_matrix(np.where(np.abs(X) > 0.7, X, 0.0))
    X.indices = X.indices.copy()
    for i in range(X.shape[0]):  # reverse each row's (index, value) pairs
        s = slice(X.indptr[i], X.indptr[i + 1])
        X.indices[s] = X.indices[s][::-1]
        X.data[s] = X.data[s][::-1]
    X.has_sorted_indices = False
    return _fit_outputs(make, X, y, X_test=X.toarray())


@valid_case()
def sparse_int64_indices(make, X, y):
    X = sp.csr_matrix(np.where(np.abs(X) > 0.7, X, 0.0))
    X.indices = X.indices.astype(np.int64)
    X.indptr = X.indptr.astype(np.int64)
    return _fit_outputs(make, X, y)


@valid_case()
def dense_fit_sparse_predict(make, X, y):
    return _fit_outputs(make, X, y, X_test=sp.csr_matrix(_data(False, seed=2)[0]))


@valid_case()
def float64_fit_float32_predict(make, X, y):
    return _fit_outputs(make, X, y, X_test=X.astype(np.float32))


@valid_case()
def float32_fit_float64_predict(make, X, y):
    return _fit_outputs(make, X.astype(np.float32), y, X_test=X)


@valid_case()
def one_sample(make, X, y):
    return _fit_outputs(make, X[:1], y[:1])


@valid_case()
def two_samples(make, X, y):
    return _fit_outputs(make, X[:2], y[:2])


@valid_case()
def one_feature(make, X, y):
    return _fit_outputs(make, X[:, :1], y, X_test=X[:, 1:2])


@valid_case()
def predict_one_row(make, X, y):
    return _fit_outputs(make, X, y, X_test=X[3:4])


@valid_case()
def column_y(make, X, y):
    # a DataConversionWarning on both sides
    return _fit_outputs(make, X, y.reshape(-1, 1))


@valid_case(needs="param:batch_size")
def batch_larger_than_n(make, X, y):
    return _fit_outputs(lambda: make(batch_size=3 * N), X, y)


@valid_case(needs="param:batch_size")
def batch_not_dividing_n(make, X, y):
    return _fit_outputs(lambda: make(batch_size=7), X, y)


@valid_case()
def sample_weight_list_of_ints(make, X, y):
    return _fit_outputs(make, X, y, sample_weight=[1, 2, 3, 4] * (N // 4))


@valid_case()
def sample_weight_with_zeros(make, X, y):
    return _fit_outputs(make, X, y, sample_weight=np.r_[np.zeros(5), np.ones(N - 5)])


# scikit-learn's MLPs accept negative sample weights (its _check_sample_weight is
# called without ensure_non_negative); fastgd matches, it is not our call to reject.
@valid_case()
def sample_weight_negative(make, X, y):
    return _fit_outputs(make, X, y, sample_weight=np.r_[-np.ones(3), np.ones(N - 3)])


@valid_case()
def sample_weight_float32(make, X, y):
    return _fit_outputs(make, X.astype(np.float32), y,
                        sample_weight=np.linspace(1, 2, N).astype(np.float32),
                        X_test=X.astype(np.float32))


# scikit-learn's MLPClassifier trains on a single class (a constant logistic
# output) and predicts it; fastgd matches.
@valid_case(needs="classifier")
def single_class(make, X, y):
    return _fit_outputs(make, X, np.full(N, 7))


@valid_case(needs="classifier")
def single_sample_single_class(make, X, y):
    return _fit_outputs(make, X[:1], ["only"])


@valid_case(needs="classifier")
def string_labels(make, X, y):
    return _fit_outputs(make, X, np.array(["setosa", "versicolor", "virginica"])[y])


@valid_case(needs="classifier")
def object_labels(make, X, y):
    return _fit_outputs(make, X, np.array(["a", "b", "c"], dtype=object)[y])


@valid_case(needs="classifier")
def negative_int_labels(make, X, y):
    return _fit_outputs(make, X, y * 10 - 15)


@valid_case(needs="classifier")
def float_labels(make, X, y):
    return _fit_outputs(make, X, y.astype(float))


@valid_case(needs="classifier")
def bool_labels(make, X, y):
    return _fit_outputs(make, X, y == 1)


@valid_case(needs="classifier")
def multilabel_y(make, X, y):
    return _fit_outputs(make, X, np.column_stack([y == 0, y == 1, y != 1]).astype(int))


@valid_case(needs="regressor")
def multi_output_y(make, X, y):
    return _fit_outputs(make, X, np.column_stack([y, -y, 2 * y]))


@valid_case(needs="regressor")
def int_y(make, X, y):
    return _fit_outputs(make, X, np.round(y).astype(np.int32))


@valid_case(needs="regressor")
def float16_y(make, X, y):
    return _fit_outputs(make, X, y.astype(np.float16))


@valid_case(needs="regressor")
def object_numbers_y(make, X, y):
    return _fit_outputs(make, X, y.astype(object))


@valid_case(needs="regressor")
def huge_but_finite_targets(make, X, y):
    return _fit_outputs(make, X, y * 1e6)


# Values whose squares overflow float64: scikit-learn's lstsq solves the least
# squares problem regardless (fastgd's LinearRegression rescales internally), and
# its LogisticRegression's lbfgs gives up at the start with a ConvergenceWarning
# that says to scale the data (fastgd's does the same).
@valid_case(needs="linear")
def huge_X(make, X, y):
    return _fit_outputs(make, X * 1e200, y, X_test=X * 1e200)


@valid_case(needs=("linear", "regressor"))
def huge_X_and_y(make, X, y):
    return _fit_outputs(make, X * 1e200, y * 1e200, X_test=X * 1e200)


@valid_case(needs="partial_fit")
def partial_fit_one_sample_at_a_time(make, X, y):
    def action():
        est = make()
        kw = {"classes": np.unique(y)} if is_classifier(est) else {}
        for i in range(6):
            est.partial_fit(X[i : i + 1], y[i : i + 1], **kw)
        return outputs(est, X)
    return action


@valid_case(needs="partial_fit")
def partial_fit_mixed_layouts(make, X, y):
    def action():
        est = make()
        kw = {"classes": np.unique(y)} if is_classifier(est) else {}
        est.partial_fit(np.asfortranarray(X[:20]), y[:20], **kw)
        est.partial_fit(sp.csr_matrix(X[20:]), y[20:])
        est.partial_fit(X[::3].tolist(), y[::3].tolist())
        return outputs(est, X)
    return action


# ---------------------------------------------------------- hyperparameters
# (name, bad value, message regex).  Only generated for estimators that have the
# parameter, so these apply to any estimator with the same scikit-learn parameter.
BAD_PARAMS = [
    ("hidden_layer_sizes", (0,), r"hidden_layer_sizes must be > 0"),
    ("hidden_layer_sizes", (-3,), r"hidden_layer_sizes must be > 0"),
    ("hidden_layer_sizes", (5, 0), r"hidden_layer_sizes must be > 0"),
    ("hidden_layer_sizes", 0, r"'hidden_layer_sizes' parameter"),
    ("hidden_layer_sizes", -2, r"'hidden_layer_sizes' parameter"),
    ("hidden_layer_sizes", "ten", r"'hidden_layer_sizes' parameter"),
    ("hidden_layer_sizes", (2.5,), r"cannot be interpreted as an integer"),
    ("activation", "softmax", r"'activation' parameter"),
    ("activation", "swish", r"'activation' parameter"),
    ("solver", "newton", r"'solver' parameter"),
    ("batch_size", 0, r"'batch_size' parameter"),
    ("batch_size", -5, r"'batch_size' parameter"),
    ("batch_size", "big", r"'batch_size' parameter"),
    ("batch_size", 2.5, r"'batch_size' parameter"),
    ("alpha", -1.0, r"'alpha' parameter"),
    ("alpha", "strong", r"'alpha' parameter"),
    ("learning_rate", "optimal", r"'learning_rate' parameter"),
    ("learning_rate_init", 0.0, r"'learning_rate_init' parameter"),
    ("learning_rate_init", -0.1, r"'learning_rate_init' parameter"),
    ("power_t", -1.0, r"'power_t' parameter"),
    ("max_iter", 0, r"'max_iter' parameter"),
    ("max_iter", 2.5, r"'max_iter' parameter"),
    ("tol", -1e-3, r"'tol' parameter"),
    ("momentum", 1.5, r"'momentum' parameter"),
    ("momentum", -0.1, r"'momentum' parameter"),
    ("nesterovs_momentum", "yes", r"'nesterovs_momentum' parameter"),
    ("shuffle", 2, r"'shuffle' parameter"),
    ("warm_start", None, r"'warm_start' parameter"),
    ("early_stopping", "no", r"'early_stopping' parameter"),
    ("validation_fraction", 1.0, r"'validation_fraction' parameter"),
    ("validation_fraction", -0.1, r"'validation_fraction' parameter"),
    ("beta_1", 1.0, r"'beta_1' parameter"),
    ("beta_2", -0.5, r"'beta_2' parameter"),
    ("epsilon", 0.0, r"'epsilon' parameter"),
    ("n_iter_no_change", 0, r"'n_iter_no_change' parameter"),
    ("max_fun", 0, r"'max_fun' parameter"),
    ("random_state", "seed", r"'random_state' parameter"),
    ("verbose", "loud", r"'verbose' parameter"),
    ("loss", "absolute_error", r"'loss' parameter"),
]


def _has_param(pair, name):
    return name in pair[1]().get_params() and name in pair[0]().get_params()


# ----------------------------------------------------------------------- tests
_ERROR_PARAMS = [
    pytest.param(pair, name, id=f"{_pair_id(pair)}-{name}")
    for pair in ESTIMATORS
    for name, (_, _, needs, _) in ERROR_CASES.items()
    if _applies(pair, needs)
]
_VALID_PARAMS = [
    pytest.param(pair, name, id=f"{_pair_id(pair)}-{name}")
    for pair in ESTIMATORS
    for name, (_, needs) in VALID_CASES.items()
    if _applies(pair, needs)
]
_PARAM_PARAMS = [
    pytest.param(pair, name, value, message, id=f"{_pair_id(pair)}-{name}={value!r}")
    for pair in ESTIMATORS
    for name, value, message in BAD_PARAMS
    if _has_param(pair, name)
]


def _expected(pair, case, default):
    return _options(pair).get("outcomes", {}).get(case, default)


@pytest.mark.parametrize("pair, case", _ERROR_PARAMS)
def test_bad_input_is_rejected_like_sklearn(pair, case, monkeypatch):
    scenario, message, _, before_kernels = ERROR_CASES[case]
    _run_both(pair, scenario, monkeypatch, error=_expected(pair, case, message),
              before_kernels=before_kernels)


@pytest.mark.parametrize("pair, case", _VALID_PARAMS)
def test_awkward_valid_input_works_like_sklearn(pair, case, monkeypatch):
    scenario, _ = VALID_CASES[case]
    _run_both(pair, scenario, monkeypatch, error=_expected(pair, case, None),
              rtol=_options(pair).get("case_rtol", {}).get(case))


@pytest.mark.parametrize("pair, name, value, message", _PARAM_PARAMS)
def test_invalid_hyperparameter_is_rejected_like_sklearn(pair, name, value, message,
                                                          monkeypatch):
    def scenario(make, X, y):
        return lambda: make(**{name: value}).fit(X, y)

    key = f"{name}={value!r}"
    error = _expected(pair, key, message)
    ours_exc, ref_exc = _run_both(
        pair, scenario, monkeypatch, error=error,
        compare_outputs=key not in _options(pair).get("path_only", ()))
    if error is not None:
        assert type(ours_exc) is type(ref_exc)


def test_case_counts():
    """Keep the report honest: every case is generated for some estimator."""
    used_errors = {case for _, case in (p.values for p in _ERROR_PARAMS)}
    used_valid = {case for _, case in (p.values for p in _VALID_PARAMS)}
    assert used_errors == set(ERROR_CASES)
    assert used_valid == set(VALID_CASES)
    assert {name for name, _, _ in BAD_PARAMS} <= {
        p.values[1] for p in _PARAM_PARAMS
    }
