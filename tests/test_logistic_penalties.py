"""L1 / elastic-net LogisticRegression (proximal Newton and OWL-QN), liblinear's
objective, and scikit-learn 1.9's solver / penalty acceptance, against scikit-learn
itself."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import linear_model as sk
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

import fastgd


def rel(a, b):
    return np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b)


def params(est):
    coef = np.atleast_2d(est.coef_)
    return np.c_[coef, np.broadcast_to(est.intercept_, (coef.shape[0],))]


_DATA = {}


def dataset(name):
    if name not in _DATA:
        loader = {"breast_cancer": load_breast_cancer, "wine": load_wine}[name]
        X, y = loader(return_X_y=True)
        _DATA[name] = StandardScaler().fit_transform(X), y
    return _DATA[name]


_REFS = {}


def saga_ref(name, l1_ratio, sw=False):
    key = (name, l1_ratio, sw)
    if key not in _REFS:
        X, y = dataset(name)
        w = np.random.RandomState(0).randint(1, 4, len(y)).astype(float) if sw else None
        ref = sk.LogisticRegression(solver="saga", C=0.5, l1_ratio=l1_ratio, tol=1e-9,
                                    max_iter=100000).fit(X, y, sample_weight=w)
        _REFS[key] = params(ref), ref.coef_ == 0, w
    return _REFS[key]


@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("sw", [False, True])
def test_l1_optimum_and_zeros_match_tight_saga(name, l1_ratio, sw):
    if name == "breast_cancer" and l1_ratio == 1.0:
        pytest.skip("tight saga needs ~15 s here; covered by the benchmark")
    X, y = dataset(name)
    ref, zeros, w = saga_ref(name, l1_ratio, sw)
    est = fastgd.LogisticRegression(solver="saga", C=0.5, l1_ratio=l1_ratio)
    est.fit(X, y, sample_weight=w)  # default tol
    assert rel(params(est), ref) <= 1e-3
    np.testing.assert_array_equal(est.coef_ == 0, zeros)
    tight = fastgd.LogisticRegression(solver="saga", C=0.5, l1_ratio=l1_ratio,
                                      tol=1e-6, max_iter=2000).fit(X, y, sample_weight=w)
    assert rel(params(tight), ref) <= 1e-5


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_l1_sparse_equals_dense(dtype):
    X, y = dataset("wine")
    X = np.where(np.abs(X) < 0.5, 0.0, X).astype(dtype)
    kw = dict(solver="saga", C=0.5, l1_ratio=1.0, tol=1e-6, max_iter=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # float32 precision
        a = fastgd.LogisticRegression(**kw).fit(X, y)
        b = fastgd.LogisticRegression(**kw).fit(sp.csr_matrix(X), y)
    assert a.coef_.dtype == dtype
    assert rel(params(a), params(b)) < (1e-6 if dtype == np.float64 else 1e-3)
    assert (a.coef_ == 0).sum() > 0


def test_liblinear_l1_is_accepted_and_binary():
    X, y = dataset("breast_cancer")
    with pytest.warns(FutureWarning):
        est = fastgd.LogisticRegression(penalty="l1", l1_ratio=1, solver="liblinear",
                                        C=0.5).fit(X, y)
    assert (est.coef_ == 0).any()


@pytest.mark.parametrize("penalty", ["l1", "l2"])
@pytest.mark.parametrize("intercept_scaling", [1.0, 5.0])
def test_liblinear_objective_matches_sklearn_liblinear(penalty, intercept_scaling):
    X, y = dataset("breast_cancer")
    X = X + 1.0  # a nonzero mean makes the intercept's penalty matter
    kw = dict(solver="liblinear", C=0.5, l1_ratio=1.0 if penalty == "l1" else 0.0,
              intercept_scaling=intercept_scaling)
    ref = sk.LogisticRegression(tol=1e-12, max_iter=100000, **kw).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = fastgd.LogisticRegression(tol=1e-9, max_iter=5000, **kw).fit(X, y)
    assert rel(params(ours), params(ref)) < 1e-4
    assert abs(ours.intercept_[0] - ref.intercept_[0]) < 1e-3 * abs(ref.intercept_[0])
    if penalty == "l1":
        np.testing.assert_array_equal(ours.coef_ == 0, ref.coef_ == 0)
    # and it is not the unpenalised-intercept optimum
    other = fastgd.LogisticRegression(solver="lbfgs", C=0.5, tol=1e-9, max_iter=5000)
    if penalty == "l2":
        assert rel(params(other.fit(X, y)), params(ref)) > 1e-3


def test_liblinear_dual_gives_the_primal_solution():
    X, y = dataset("breast_cancer")
    a = fastgd.LogisticRegression(solver="liblinear", dual=True, tol=1e-8).fit(X, y)
    b = fastgd.LogisticRegression(solver="liblinear", tol=1e-8).fit(X, y)
    ref = sk.LogisticRegression(solver="liblinear", dual=True, tol=1e-12,
                                max_iter=100000).fit(X, y)
    np.testing.assert_allclose(params(a), params(b))
    assert rel(params(a), params(ref)) < 1e-4


COMBOS = [
    dict(solver=s, l1_ratio=r, C=C, dual=d)
    for s in ["lbfgs", "newton-cg", "newton-cholesky", "sag", "saga", "liblinear"]
    for r in [0.0, 0.5, 1.0]
    for C in [1.0, np.inf]
    for d in [False, True]
] + [
    dict(solver=s, penalty=p) for s in ["lbfgs", "saga", "liblinear"]
    for p in ["l1", "l2", "elasticnet", None]
]


def _outcome(cls, kw, X, y):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        try:
            cls(max_iter=50, **kw).fit(X, y)
        except ValueError as e:
            return "error", str(e), []
    return "ok", "", sorted({str(w.category.__name__) for w in rec
                             if w.category is not ConvergenceWarning})


@pytest.mark.parametrize("kw", COMBOS, ids=str)
@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
def test_acceptance_and_refusal_match_sklearn(kw, name):
    X, y = dataset(name)
    ours, theirs = _outcome(fastgd.LogisticRegression, kw, X, y), _outcome(
        sk.LogisticRegression, kw, X, y)
    assert ours[0] == theirs[0], (ours, theirs)
    if theirs[0] == "error":
        assert ours[1].startswith(theirs[1].split(" (In fastgd")[0]), (ours, theirs)
    assert ours[2] == theirs[2]


def test_early_stop_warns_for_every_solver():
    X, y = dataset("breast_cancer")
    for kw in [dict(solver="saga", l1_ratio=1.0), dict(solver="liblinear", l1_ratio=1),
               dict(solver="lbfgs"), dict(solver="newton-cg"),
               dict(solver="liblinear")]:
        for dtype in [np.float64, np.float32]:
            with pytest.warns(ConvergenceWarning):
                fastgd.LogisticRegression(max_iter=2, **kw).fit(X.astype(dtype), y)


def _bfgs_inverse_hessian(S, Y):
    """Dense reference: the L-BFGS inverse Hessian built pair by pair (oldest first)
    by the BFGS update from gamma I, gamma = s.y / y.y of the newest pair."""
    n = S.shape[1]
    H = float(S[-1] @ Y[-1]) / float(Y[-1] @ Y[-1]) * np.eye(n)
    for s, y in zip(S, Y):
        rho = 1.0 / float(s @ y)
        V = np.eye(n) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    return H


@pytest.mark.parametrize("m", [1, 3, 10])
def test_lbfgs_direction_is_minus_the_bfgs_inverse_hessian_times_q(m):
    from fastgd._proximal import _lbfgs_direction

    rng = np.random.RandomState(m)
    n = 12
    A = rng.randn(n, n)
    A = A @ A.T + 0.1 * np.eye(n)  # a convex quadratic: y = A s
    S = rng.randn(m, n)
    Y = S @ A
    q = rng.randn(n)
    np.testing.assert_allclose(_lbfgs_direction(q, S, Y),
                               -_bfgs_inverse_hessian(S, Y) @ q, rtol=1e-9, atol=1e-12)
    # a pair without positive curvature (y = -A s) is left out
    Sb = np.vstack([S[:1], rng.randn(1, n), S[1:]])
    Yb = np.vstack([Y[:1], -Sb[1:2] @ A, Y[1:]])
    np.testing.assert_allclose(_lbfgs_direction(q, Sb, Yb),
                               -_bfgs_inverse_hessian(S, Y) @ q, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(_lbfgs_direction(q, S[:0], Y[:0]), -q)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_logistic_hessian_matches_finite_differences_of_the_gradient(k, fit_intercept,
                                                                     monkeypatch):
    # the Hessian proximal Newton uses, against the compiled objective's gradient
    from fastgd._engine import KernelData, Network
    from fastgd._linear import _logistic_hessian
    from fastgd._solvers import _Objective, _Preconditioner, _feature_moments

    rng = np.random.RandomState(k)
    n, d = 60, 4
    X = rng.randn(n, d) * [1.0, 3.0, 0.5, 2.0] + [0.0, 1.0, -2.0, 0.5]
    y = rng.randint(0, max(k, 2), n)
    Y = (y[:, None] == np.arange(k)).astype(float) if k > 1 else y[:, None] * 1.0
    w = rng.randint(1, 4, n).astype(float)
    l2 = 0.05
    mean, var = _feature_moments(X, w)
    if not fit_intercept:
        mean = np.zeros_like(mean)
    precond = _Preconditioner(mean, var, l2, fit_intercept, k)
    network = Network([d, k], "identity", "logistic" if k == 1 else "softmax",
                      np.zeros((d + 1) * k))
    objective = _Objective(network, KernelData(X, np.float64, Y, w),
                           "binary_log_loss" if k == 1 else "log_loss", l2,
                           fit_intercept, precond)
    x = rng.randn((d + 1) * k) * 0.3
    if not fit_intercept:
        x[-k:] = 0.0
    H = _logistic_hessian(X, w, precond, l2, 0.0, fit_intercept)(x)
    eps = 1e-6
    fd = np.empty_like(H)
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = eps
        fd[:, j] = (objective(x + e)[1] - objective(x - e)[1]) / (2 * eps)
    if not fit_intercept:  # the unused intercept coordinates are left out
        fd[-k:] = fd[:, -k:] = 0.0
    np.testing.assert_allclose(H, fd, rtol=1e-5, atol=1e-7)
    # built by blocks of rows: blocks of 7 rows (9 blocks, the last one short) give
    # the one-block Hessian to rounding
    import fastgd._linear as linear

    monkeypatch.setattr(linear, "_HESSIAN_BLOCK_VALUES", 7 * (d + 1) * k)
    H_blocks = _logistic_hessian(X, w, precond, l2, 0.0, fit_intercept)(x)
    np.testing.assert_allclose(H_blocks, H, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kw", [
    dict(solver="saga", l1_ratio=1.0),
    dict(solver="saga", l1_ratio=0.5),
    dict(solver="saga", l1_ratio=1.0, fit_intercept=False),
    dict(solver="liblinear", l1_ratio=1.0),
])
@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
def test_prox_newton_and_owlqn_reach_the_same_optimum(kw, name, monkeypatch):
    import fastgd._linear as linear

    X, y = dataset(name)
    if kw["solver"] == "liblinear":
        y = y == y[0]
    w = np.random.RandomState(1).randint(1, 4, len(y)).astype(float)
    fits = {}
    for limit in (linear._PROX_NEWTON_MAX_PARAMS, 0):  # 0: OWL-QN
        monkeypatch.setattr(linear, "_PROX_NEWTON_MAX_PARAMS", limit)
        assert linear._prox_newton_pays(X, 31 * 3) == bool(limit)
        est = fastgd.LogisticRegression(C=0.5, tol=1e-6, max_iter=1000, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            fits[limit] = est.fit(X, y, sample_weight=w)
    newton, owlqn = (params(e) for e in fits.values())
    assert rel(newton, owlqn) < 1e-4
    np.testing.assert_array_equal(newton[:, :-1] == 0, owlqn[:, :-1] == 0)
    assert (newton[:, :-1] == 0).any()


@pytest.mark.parametrize("solver", ["newton-cholesky", "newton-cg"])
@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_newton_names_take_newton_steps_to_the_lbfgs_optimum(solver, name,
                                                             fit_intercept):
    # small dense L2 fits under a Newton name take exact Newton steps: the same
    # optimum as tight L-BFGS, in about as many steps as scikit-learn's solver
    X, y = dataset(name)
    w = np.random.RandomState(2).randint(1, 4, len(y)).astype(float)
    kw = dict(C=0.5, fit_intercept=fit_intercept)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        newton = fastgd.LogisticRegression(solver=solver, **kw).fit(X, y, w)
        ref = fastgd.LogisticRegression(solver="lbfgs", tol=1e-10, max_iter=10000,
                                        **kw).fit(X, y, w)
        theirs = sk.LogisticRegression(solver=solver, **kw).fit(X, y, w)
    assert rel(params(newton), params(ref)) < 1e-4
    assert rel(params(newton), params(ref)) <= 2 * rel(params(theirs), params(ref))
    assert newton.n_iter_[0] <= theirs.n_iter_[0] + 2


def test_newton_cholesky_on_digits_converges_as_scikit_learn_does():
    # L-BFGS under this name ran out of its 100 iterations here (and warned)
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours = fastgd.LogisticRegression(solver="newton-cholesky").fit(X, y)
        theirs = sk.LogisticRegression(solver="newton-cholesky").fit(X, y)
    assert ours.n_iter_[0] <= theirs.n_iter_[0] + 1
    assert rel(params(ours), params(theirs)) < 1e-3
