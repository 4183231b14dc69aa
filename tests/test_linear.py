"""fastgd.LogisticRegression and fastgd.LinearRegression against scikit-learn.

Optimum parity: scikit-learn run to a tight tolerance is the reference optimum -
'newton-cholesky' (Newton's method: the same objective as lbfgs, solved to
machine precision in a dozen iterations, where lbfgs needs minutes on raw digits
and stops ~1e-6 short on breast_cancer), checked against tight lbfgs on the
standardised sets; saga for L1; LinearRegression's lstsq. fastgd run to a tight
tolerance must land on it, and fastgd's default fit must be at least as close to
it as scikit-learn's default fit.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import linear_model as sk
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris
from sklearn.datasets import load_wine
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import fastgd


@pytest.fixture(autouse=True)
def _one_thread():
    """Small problems: BLAS / OpenMP threads only add contention (scikit-learn's
    lbfgs on digits takes 100x longer with 2 OpenBLAS threads on a busy machine)."""
    with threadpool_limits(limits=1):
        yield


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def params(est):
    """coef_ and intercept_ side by side, shape (n_outputs, n_features + 1)."""
    coef = np.atleast_2d(est.coef_)
    return np.c_[coef, np.broadcast_to(est.intercept_, (coef.shape[0],))]


_DATA = {}


def dataset(name):
    """Standardised breast_cancer, wine and iris, raw digits (cached per session)."""
    if name not in _DATA:
        loader = {"breast_cancer": load_breast_cancer, "wine": load_wine,
                  "digits": load_digits, "iris": load_iris}[name]
        X, y = loader(return_X_y=True)
        if name != "digits":
            X = StandardScaler().fit_transform(X)
        _DATA[name] = (X, y)
    return _DATA[name]


def case_kwargs(case, y):
    """(constructor kwargs, sample_weight) for a parity case."""
    if case == "plain":
        return {}, None
    if case == "class_weight":
        return {"class_weight": "balanced"}, None
    if case == "class_weight_dict":
        classes = np.unique(y)
        return {"class_weight": {c: 1.0 + i for i, c in enumerate(classes)}}, None
    if case == "sample_weight":
        return {}, np.random.RandomState(0).randint(1, 4, y.shape[0]).astype(float)
    raise ValueError(case)


_REFS = {}


def reference(name, case):
    """scikit-learn's tight optimum and its default fit (cached)."""
    key = (name, case)
    if key not in _REFS:
        X, y = dataset(name)
        kw, sw = case_kwargs(case, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            tight = sk.LogisticRegression(solver="newton-cholesky", tol=1e-12,
                                          max_iter=1000, **kw)
            tight.fit(X, y, sample_weight=sw)
            default = sk.LogisticRegression(**kw).fit(X, y, sample_weight=sw)
        _REFS[key] = params(tight), params(default)
    return _REFS[key]


CASES = ["plain", "class_weight", "class_weight_dict", "sample_weight"]


# ---------------------------------------------------------------------------
# LogisticRegression: optimum parity
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "digits", "iris"])
@pytest.mark.parametrize("case", CASES)
def test_logistic_default_at_least_as_close_as_sklearn(name, case):
    X, y = dataset(name)
    kw, sw = case_kwargs(case, y)
    optimum, sk_default = reference(name, case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = params(fastgd.LogisticRegression(**kw).fit(X, y, sample_weight=sw))
    err_sk, err_ours = rel(sk_default, optimum), rel(ours, optimum)
    assert err_ours <= err_sk, (err_ours, err_sk)
    if err_sk <= 1e-3:
        assert err_ours <= 1e-3


@pytest.mark.parametrize("name", ["breast_cancer", "iris"])
def test_logistic_lbfgs_float32_and_warm_start(name):
    # fastgd's own L-BFGS (fastgd._proximal._owlqn without L1): float32 stops at
    # its precision with no warning, at least as close as scikit-learn's default
    # (float64) up to float32 rounding; a warm start from the optimum stays there.
    X, y = dataset(name)
    optimum, sk_default = reference(name, "plain")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = fastgd.LogisticRegression().fit(X.astype(np.float32), y)
    assert est.coef_.dtype == np.float32
    assert rel(params(est), optimum) <= max(rel(sk_default, optimum), 1e-4)
    warm = fastgd.LogisticRegression(tol=1e-10, max_iter=5000, warm_start=True)
    warm.fit(X, y)
    first = params(warm)
    warm.fit(X, y)
    assert warm.n_iter_[0] <= 2
    assert rel(params(warm), first) < 1e-8


@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
@pytest.mark.parametrize("case", CASES)
def test_logistic_tight_optimum_parity(name, case):
    X, y = dataset(name)
    kw, sw = case_kwargs(case, y)
    optimum, _ = reference(name, case)
    ours = fastgd.LogisticRegression(tol=1e-10, max_iter=5000, **kw)
    ours.fit(X, y, sample_weight=sw)
    assert rel(params(ours), optimum) < 2e-6
    if case == "plain":
        # the reference is scikit-learn's lbfgs optimum too
        sk_lbfgs = sk.LogisticRegression(tol=1e-10, max_iter=10000).fit(X, y)
        assert rel(params(sk_lbfgs), optimum) < 1e-5


def test_logistic_tight_optimum_parity_digits():
    X, y = dataset("digits")
    optimum, _ = reference("digits", "plain")
    ours = fastgd.LogisticRegression(tol=1e-8, max_iter=5000).fit(X, y)
    assert rel(params(ours), optimum) < 1e-4


@pytest.mark.parametrize("C", [0.01, 100.0])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_logistic_parity_C_and_intercept(C, fit_intercept):
    X, y = dataset("wine")
    kw = dict(C=C, fit_intercept=fit_intercept)
    ref = sk.LogisticRegression(solver="newton-cholesky", tol=1e-12, max_iter=1000,
                                **kw).fit(X, y)
    ours = fastgd.LogisticRegression(tol=1e-10, max_iter=5000, **kw).fit(X, y)
    # weak penalties make the optimum flat: lbfgs' ftol stops a little earlier
    assert rel(params(ours), params(ref)) < (2e-6 if C < 1 else 2e-5)
    if not fit_intercept:
        assert np.all(ours.intercept_ == 0)


def test_logistic_unpenalized():
    X, y = make_classification(300, 5, n_informative=3, n_redundant=0, flip_y=0.3,
                               random_state=0)
    ref = sk.LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12,
                                max_iter=1000).fit(X, y)
    ours = fastgd.LogisticRegression(C=np.inf, tol=1e-10, max_iter=5000).fit(X, y)
    assert rel(params(ours), params(ref)) < 2e-6


# ---------------------------------------------------------------------------
# LogisticRegression: API
# ---------------------------------------------------------------------------


def test_logistic_shapes_and_methods():
    X, y = dataset("breast_cancer")
    est = fastgd.LogisticRegression().fit(X, y)
    assert est.coef_.shape == (1, X.shape[1]) and est.intercept_.shape == (1,)
    assert est.n_iter_.shape == (1,) and est.n_iter_.dtype == np.int32
    assert est.decision_function(X).shape == (X.shape[0],)
    proba = est.predict_proba(X)
    assert proba.shape == (X.shape[0], 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(proba))
    assert est.score(X, y) > 0.95
    X, y = dataset("wine")
    labels = np.array(["a", "b", "c"])[y]
    est = fastgd.LogisticRegression().fit(X, labels)
    assert est.coef_.shape == (3, X.shape[1]) and est.intercept_.shape == (3,)
    assert list(est.classes_) == ["a", "b", "c"]
    assert set(est.predict(X)) <= set(labels)
    np.testing.assert_allclose(est.predict_proba(X).sum(axis=1), 1)
    assert not hasattr(est, "partial_fit")  # lbfgs, as scikit-learn


def test_logistic_class_weight_equals_sample_weight():
    X, y = dataset("wine")
    cw = {0: 1.0, 1: 3.0, 2: 0.5}
    a = fastgd.LogisticRegression(class_weight=cw, tol=1e-10, max_iter=5000).fit(X, y)
    sw = np.array([cw[c] for c in y])
    b = fastgd.LogisticRegression(tol=1e-10, max_iter=5000).fit(X, y, sample_weight=sw)
    assert rel(params(a), params(b)) < 1e-8


@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
def test_logistic_weight_two_equals_duplicated_row(solver):
    X, y = dataset("wine")
    sw = np.ones(len(y))
    sw[::3] = 2
    X_dup = np.vstack([X, X[::3]])
    y_dup = np.r_[y, y[::3]]
    kw = dict(tol=1e-10, max_iter=5000)
    if solver == "sgd":
        # full-batch gradient descent: independent of the row order
        kw.update(solver="sgd", batch_size=10**6, learning_rate_init=0.1, tol=0,
                  n_iter_no_change=10**9, max_iter=300, shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = fastgd.LogisticRegression(**kw).fit(X, y, sample_weight=sw)
        b = fastgd.LogisticRegression(**kw).fit(X_dup, y_dup)
    assert rel(params(a), params(b)) < 1e-8


def test_logistic_float32_matches_float64():
    X, y = dataset("wine")
    a = fastgd.LogisticRegression(tol=1e-6).fit(X, y)
    b = fastgd.LogisticRegression(tol=1e-6).fit(X.astype(np.float32), y)
    assert b.coef_.dtype == np.float32 and b.intercept_.dtype == np.float32
    assert b.predict_proba(X.astype(np.float32)).dtype == np.float32
    assert rel(params(b), params(a)) < 1e-3


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_logistic_sparse_matches_dense(fmt):
    X, y = dataset("wine")
    X = np.where(np.abs(X) < 0.5, 0.0, X)  # some real zeros
    a = fastgd.LogisticRegression(tol=1e-10, max_iter=5000).fit(X, y)
    b = fastgd.LogisticRegression(tol=1e-10, max_iter=5000).fit(
        sp.csr_matrix(X).asformat(fmt), y)
    assert rel(params(b), params(a)) < 1e-8
    np.testing.assert_allclose(b.predict_proba(sp.csr_matrix(X)), a.predict_proba(X),
                               rtol=1e-7, atol=1e-12)


def test_logistic_warm_start():
    X, y = dataset("breast_cancer")
    est = fastgd.LogisticRegression(warm_start=True, tol=1e-8, max_iter=1000).fit(X, y)
    first = params(est)
    est.fit(X, y)
    assert est.n_iter_[0] <= 2
    assert rel(params(est), first) < 1e-6


# ---------------------------------------------------------------------------
# LogisticRegression: L1 / elastic net and the mini-batch solvers
# ---------------------------------------------------------------------------


def _l1_data(name):
    if name == "synthetic":
        return make_classification(400, 20, n_informative=5, n_redundant=0,
                                   random_state=0)
    return dataset(name)


@pytest.mark.parametrize("name", ["wine", "synthetic"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_logistic_l1_parity_with_saga_and_exact_zeros(name, l1_ratio):
    X, y = _l1_data(name)
    ref = sk.LogisticRegression(solver="saga", l1_ratio=l1_ratio, C=0.5, tol=1e-12,
                                max_iter=100000).fit(X, y)
    # Full-batch proximal gradient (sgd, one batch, Nesterov momentum): its fixed
    # point is the L1 / elastic-net optimum.
    ours = fastgd.LogisticRegression(
        l1_ratio=l1_ratio, C=0.5, solver="sgd", batch_size=len(y),
        learning_rate_init=0.05, momentum=0.9, max_iter=5000, tol=0,
        n_iter_no_change=10**9, shuffle=False,
    ).fit(X, y)
    assert rel(params(ours), params(ref)) < 1e-3
    zeros = ref.coef_ == 0
    assert zeros.any()
    np.testing.assert_array_equal(ours.coef_ == 0, zeros)  # exact zeros


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_logistic_minibatch_l1_gives_exact_zeros(solver):
    X, y = _l1_data("synthetic")
    est = fastgd.LogisticRegression(solver=solver, l1_ratio=1.0, C=0.05, max_iter=50,
                                    learning_rate_init=0.01, random_state=0).fit(X, y)
    assert (est.coef_ == 0).sum() >= 5
    assert est.score(X, y) > 0.8


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_logistic_minibatch_solvers_approach_optimum(solver):
    X, y = dataset("wine")
    optimum, _ = reference("wine", "plain")
    est = fastgd.LogisticRegression(solver=solver, max_iter=300, learning_rate_init=0.01,
                                    batch_size=32, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert rel(params(est), optimum) < 0.3  # mini-batch noise at a fixed rate
    assert est.score(X, y) > 0.97
    assert len(est.loss_curve_) == est.n_iter_[0]


def test_logistic_partial_fit_stream():
    X, y = dataset("digits")
    X = X / 16
    est = fastgd.LogisticRegression(solver="adam", learning_rate_init=0.01,
                                    random_state=0)
    classes = np.unique(y)
    for epoch in range(5):
        for chunk in np.array_split(np.arange(len(y)), 4):
            est.partial_fit(X[chunk], y[chunk], classes=classes if epoch == 0 else None)
    assert est.coef_.shape == (10, 64)
    assert est.score(X, y) > 0.9
    with pytest.raises(ValueError, match="classes not in"):
        est.partial_fit(X[:5], np.full(5, 42))
    with pytest.raises(ValueError, match="classes must be passed"):
        fastgd.LogisticRegression(solver="sgd").partial_fit(X, y)


def test_logistic_early_stopping():
    X, y = dataset("digits")
    est = fastgd.LogisticRegression(solver="adam", early_stopping=True, max_iter=200,
                                    learning_rate_init=0.01, n_iter_no_change=3,
                                    random_state=0).fit(X / 16, y)
    assert est.n_iter_[0] < 200
    assert len(est.validation_scores_) == est.n_iter_[0]
    assert est.best_validation_score_ == max(est.validation_scores_)


def test_logistic_solver_support_errors():
    X, y = dataset("wine")
    with pytest.raises(ValueError, match="solver='sgd' or solver='adam'"):
        fastgd.LogisticRegression(l1_ratio=1.0).fit(X, y)
    with pytest.raises(ValueError, match="liblinear"):
        fastgd.LogisticRegression(solver="liblinear").fit(X, y)
    with pytest.raises(ValueError, match="dual=False"):
        fastgd.LogisticRegression(dual=True).fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        fastgd.LogisticRegression().fit(X[:5], np.zeros(5))
    for solver in ["newton-cg", "newton-cholesky", "sag", "saga"]:
        est = fastgd.LogisticRegression(solver=solver).fit(X, y)
        assert est.score(X, y) > 0.95


def test_logistic_deprecated_parameters_warn_as_sklearn():
    X, y = dataset("wine")
    with pytest.warns(FutureWarning, match="'penalty' was deprecated"):
        a = fastgd.LogisticRegression(penalty="l2").fit(X, y)
    with pytest.warns(FutureWarning, match="n_jobs"):
        fastgd.LogisticRegression(n_jobs=2).fit(X, y)
    with pytest.warns(FutureWarning, match="'penalty' was deprecated"):
        b = fastgd.LogisticRegression(penalty=None).fit(X, y)
    assert rel(params(a), params(b)) > 1e-2  # None: no penalty at all
    sk_names = set(sk.LogisticRegression().get_params())
    assert sk_names <= set(fastgd.LogisticRegression().get_params())


# ---------------------------------------------------------------------------
# LinearRegression
# ---------------------------------------------------------------------------


def _regression_data(kind):
    if kind == "diabetes":
        return load_diabetes(return_X_y=True)
    if kind == "badly_scaled":
        X, y = make_regression(500, 30, n_informative=10, noise=1.0, random_state=0)
        return X * np.logspace(-2, 2, 30) + 50, y
    if kind == "multi_output":
        return make_regression(500, 20, n_informative=10, n_targets=3, noise=1.0,
                               random_state=1)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["diabetes", "badly_scaled", "multi_output"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_linear_regression_least_squares_parity(kind, weighted, fit_intercept):
    X, y = _regression_data(kind)
    sw = np.random.RandomState(0).randint(0, 4, len(X)).astype(float) if weighted else None
    ref = sk.LinearRegression(fit_intercept=fit_intercept).fit(X, y, sample_weight=sw)
    ours = fastgd.LinearRegression(fit_intercept=fit_intercept).fit(X, y,
                                                                    sample_weight=sw)
    assert np.shape(ours.coef_) == np.shape(ref.coef_)
    assert np.shape(ours.intercept_) == np.shape(ref.intercept_)
    assert rel(ours.coef_, ref.coef_) < 1e-4
    if fit_intercept:
        assert rel(ours.intercept_, ref.intercept_) < 1e-4
    else:
        assert np.all(np.asarray(ours.intercept_) == 0)
    ours32 = fastgd.LinearRegression(fit_intercept=fit_intercept).fit(
        X.astype(np.float32), y.astype(np.float32), sample_weight=sw)
    assert ours32.coef_.dtype == np.float32
    assert ours32.predict(X.astype(np.float32)).dtype == np.float32
    assert rel(ours32.coef_, ref.coef_) < 1e-3


@pytest.mark.parametrize("solver", ["cg", "lbfgs"])
def test_linear_regression_solvers_and_sparse(solver):
    X, y = _regression_data("multi_output")
    X = np.where(np.abs(X) < 0.7, 0.0, X)
    ref = sk.LinearRegression().fit(X, y)
    dense = fastgd.LinearRegression(solver=solver).fit(X, y)
    sparse = fastgd.LinearRegression(solver=solver).fit(sp.csr_matrix(X), y)
    assert rel(dense.coef_, ref.coef_) < 1e-4
    assert rel(sparse.coef_, dense.coef_) < 1e-8
    np.testing.assert_allclose(sparse.predict(sp.csr_matrix(X)), dense.predict(X),
                               rtol=1e-7, atol=1e-9)


def test_linear_regression_weight_two_equals_duplicated_row():
    X, y = _regression_data("diabetes")
    sw = np.ones(len(y))
    sw[::4] = 2
    a = fastgd.LinearRegression(tol=1e-10).fit(X, y, sample_weight=sw)
    b = fastgd.LinearRegression(tol=1e-10).fit(np.vstack([X, X[::4]]),
                                               np.r_[y, y[::4]])
    assert rel(a.coef_, b.coef_) < 1e-7


def test_linear_regression_positive():
    X, y = _regression_data("diabetes")
    ref = sk.LinearRegression(positive=True).fit(X, y)
    ours = fastgd.LinearRegression(positive=True).fit(X, y)
    assert np.all(ours.coef_ >= 0)
    np.testing.assert_array_equal(ours.coef_ == 0, ref.coef_ == 0)
    assert rel(ours.coef_, ref.coef_) < 1e-4
    with pytest.raises(ValueError, match="positive=True"):
        fastgd.LinearRegression(positive=True, solver="sgd").fit(X, y)


def test_linear_regression_ridge_by_gradient_descent():
    X, y = _regression_data("diabetes")
    alpha = 0.01
    ref = sk.Ridge(alpha=alpha * len(y)).fit(X, y)  # Ridge penalises the sum
    ours = fastgd.LinearRegression(alpha=alpha).fit(X, y)
    assert rel(ours.coef_, ref.coef_) < 1e-5


def test_linear_regression_lasso_by_proximal_sgd():
    X, y = _regression_data("badly_scaled")
    X = StandardScaler().fit_transform(X)
    ref = sk.Lasso(alpha=1.0, tol=1e-12, max_iter=100000).fit(X, y)
    ours = fastgd.LinearRegression(
        alpha=1.0, l1_ratio=1.0, solver="sgd", batch_size=len(y),
        learning_rate_init=0.05, max_iter=3000, tol=0, n_iter_no_change=10**9,
        shuffle=False,
    ).fit(X, y)
    assert rel(ours.coef_, ref.coef_) < 1e-6
    np.testing.assert_array_equal(ours.coef_ == 0, ref.coef_ == 0)
    assert (ours.coef_ == 0).sum() >= 10
    with pytest.raises(ValueError, match="solver='sgd' or"):
        fastgd.LinearRegression(alpha=1.0, l1_ratio=0.5).fit(X, y)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_linear_regression_minibatch_and_partial_fit(solver):
    X, y = make_regression(4000, 20, noise=1.0, random_state=0)
    ref = sk.LinearRegression().fit(X, y)
    lr = 0.001 if solver == "sgd" else 0.5
    est = fastgd.LinearRegression(solver=solver, max_iter=100, learning_rate_init=lr,
                                  random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert rel(est.coef_, ref.coef_) < 5e-2  # mini-batch noise at a fixed rate
    assert est.score(X, y) > ref.score(X, y) - 1e-4
    stream = fastgd.LinearRegression(solver=solver, learning_rate_init=lr, random_state=0)
    for _ in range(50):
        for chunk in np.array_split(np.arange(len(y)), 5):
            stream.partial_fit(X[chunk], y[chunk])
    assert stream.score(X, y) > ref.score(X, y) - 1e-3
    assert not hasattr(fastgd.LinearRegression(), "partial_fit")


def test_linear_regression_float32_sparse_in_float32_out():
    X, y = _regression_data("multi_output")
    X32 = sp.csr_matrix(X.astype(np.float32))
    est = fastgd.LinearRegression().fit(X32, y.astype(np.float32))
    assert est.coef_.dtype == np.float32 and est.coef_.shape == (3, 20)
    assert est.predict(X32).dtype == np.float32
    assert rel(est.coef_, sk.LinearRegression().fit(X, y).coef_) < 1e-3


def test_linear_regression_divergence_is_an_error():
    X, y = _regression_data("badly_scaled")
    est = fastgd.LinearRegression(solver="sgd", learning_rate_init=1.0, max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="diverged|non-finite"):
            est.fit(X, y)


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("fit_dtype", [np.float64, np.float32])
def test_logistic_predictions_equal_scikit_learn(n_classes, fit_dtype):
    """Multiclass predict_proba runs the compiled forward pass (softmax fused), the
    rest scikit-learn's numpy path: equal to scikit-learn's numpy expressions on the same coefficients, in its
    dtypes, for dense (C, F, float32, int) and CSR X; NaN and inf in X raise its
    error."""
    rng = np.random.RandomState(0)
    X = rng.randn(3001, 12)
    y = rng.randint(0, n_classes, X.shape[0])
    ours = fastgd.LogisticRegression().fit(X.astype(fit_dtype), y)
    ref = sk.LogisticRegression()
    for name in ("classes_", "coef_", "intercept_", "n_features_in_"):
        setattr(ref, name, getattr(ours, name))
    for Z in (X, np.asfortranarray(X), X.astype(np.float32), sp.csr_matrix(X),
              np.round(3 * X).astype(np.int64)):
        for method in ("decision_function", "predict_proba", "predict_log_proba"):
            got, want = getattr(ours, method)(Z), getattr(ref, method)(Z)
            assert got.dtype == want.dtype and got.shape == want.shape
            rtol = 1e-5 if got.dtype == np.float32 else 1e-12
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 1e-2)
        np.testing.assert_array_equal(ours.predict(Z), ref.predict(Z))
    for bad in (np.nan, np.inf, -np.inf):
        Xb = X.copy()
        Xb[7, 3] = bad
        with pytest.raises(ValueError, match="Input X contains"):
            ours.predict_proba(Xb)
        with pytest.raises(ValueError, match="Input X contains"):
            ours.decision_function(sp.csr_matrix(Xb))
