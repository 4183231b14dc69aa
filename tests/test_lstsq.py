"""fastgd.LinearRegression() gives scikit-learn's lstsq solution on any design.

Reference: ``sklearn.linear_model.LinearRegression`` (scipy.linalg.lstsq with
``cond=tol`` on the centred, sqrt(weight)-scaled data; minimum norm). fastgd's
direct solve (fastgd._lstsq) must agree to 1e-6 relative in float64.
"""

import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import linear_model as sk
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from threadpoolctl import threadpool_limits

import fastgd
from fastgd._lstsq import lstsq


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(limits=1):
        yield


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def poly_sine():
    rng = np.random.RandomState(0)
    x = np.sort(rng.uniform(0, 6, 100))
    y = np.sin(x) + 0.1 * rng.standard_normal(100)
    return make_pipeline(PolynomialFeatures(6), StandardScaler()).fit_transform(x[:, None]), y


def diabetes3():
    X, y = load_diabetes(return_X_y=True)
    return make_pipeline(PolynomialFeatures(3), StandardScaler()).fit_transform(X), y


def conditioned(n=3000, d=20, cond=1e12, seed=0):
    """Singular values logspace(0, -log10(cond), d) (none near the 1e-6 cutoff)."""
    rng = np.random.RandomState(seed)
    U, _ = np.linalg.qr(rng.standard_normal((n, d)))
    U -= U.mean(axis=0)
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    X = (U * np.logspace(0, -np.log10(cond), d)) @ V.T * 1e3 + 5.0
    return X, X @ rng.standard_normal(d) + 1e-3 * rng.standard_normal(n)


def rank_deficient(n=300, d=12, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, d))
    X[:, 3] = X[:, 1] + 2 * X[:, 2]  # collinear
    X[:, 4] = X[:, 0]  # duplicated
    X[:, 5] = 7.0  # constant
    return X, X @ rng.standard_normal(d) + rng.standard_normal(n)


def wide(seed=0):
    rng = np.random.RandomState(seed)
    return rng.standard_normal((15, 40)), rng.standard_normal(15)


CASES = {"poly6_sine": poly_sine, "diabetes_poly3": diabetes3,
         "cond_1e12": conditioned, "rank_deficient": rank_deficient, "n_lt_p": wide}


def assert_same(ours, ref, tol=1e-6, attrs=True):
    assert np.shape(ours.coef_) == np.shape(ref.coef_)
    assert rel(ours.coef_, ref.coef_) <= tol
    scale = np.abs(np.asarray(ref.intercept_)).max() + np.abs(ref.coef_).max()
    assert np.all(np.abs(np.asarray(ours.intercept_) - ref.intercept_) <= tol * scale)
    if attrs:
        assert ours.rank_ == ref.rank_ and isinstance(ours.rank_, int)
        assert ours.singular_.shape == ref.singular_.shape
        assert ours.singular_.dtype == ref.singular_.dtype
        np.testing.assert_allclose(ours.singular_, ref.singular_, rtol=1e-8,
                                   atol=1e-12 * ref.singular_[0])


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_sklearn_lstsq(case, fit_intercept, weighted):
    X, y = CASES[case]()
    sw = np.random.RandomState(1).uniform(0, 3, len(y)) if weighted else None
    ref = sk.LinearRegression(fit_intercept=fit_intercept).fit(X, y, sample_weight=sw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours = fastgd.LinearRegression(fit_intercept=fit_intercept).fit(
            X, y, sample_weight=sw)
    assert_same(ours, ref)


def test_issue_pipelines_reach_sklearn_r2():
    for data in (poly_sine, diabetes3):
        X, y = data()
        ref = sk.LinearRegression().fit(X, y)
        ours = fastgd.LinearRegression().fit(X, y)
        assert abs(ours.score(X, y) - ref.score(X, y)) < 1e-10


@pytest.mark.parametrize("method", ["gram", "qr"])
def test_many_blocks_gram_refine_and_qr(method):
    # Several row blocks: the Gram pass (with refinement at cond ~3e4), and the
    # QR fallback for cond 1e12 / rank deficiency.
    for X, y in (conditioned(60000, 20, 3e4), conditioned(60000, 20, 1e12),
                 rank_deficient(60000, 30)):
        ref = sk.LinearRegression().fit(X, y)
        r = lstsq(X, y[:, None], method=method)
        assert rel(r.coef[:, 0], ref.coef_) <= 1e-6
        assert r.rank == ref.rank_
    assert lstsq(*conditioned(60000, 20, 3e4)[:1], conditioned(60000, 20, 3e4)[1][:, None]
                 ).method == "gram+refine"
    assert lstsq(*rank_deficient(60000, 30)[:1], rank_deficient(60000, 30)[1][:, None]
                 ).method == "qr"


def test_multi_target_layouts_and_pandas():
    X, y = rank_deficient()
    Y = np.c_[y, -2 * y + 1, X[:, 0]]
    ref = sk.LinearRegression().fit(X, Y)
    assert_same(fastgd.LinearRegression().fit(X, Y), ref)
    assert_same(fastgd.LinearRegression().fit(np.asfortranarray(X), Y), ref)
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=["f%d" % i for i in range(X.shape[1])])
    ours = fastgd.LinearRegression().fit(df, Y)
    assert_same(ours, sk.LinearRegression().fit(df, Y))
    assert list(ours.feature_names_in_) == list(df.columns)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_exact_where_sklearn_uses_lsqr(fmt):
    X, y = rank_deficient()
    X = np.where(np.abs(X) < 0.5, 0.0, X)
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    dense_ref = sk.LinearRegression().fit(X, y)
    sparse_ref = sk.LinearRegression().fit(Xs, y)  # lsqr, atol = btol = 1e-6
    ours = fastgd.LinearRegression().fit(Xs, y)
    # fastgd solves the sparse problem exactly: scikit-learn's dense answer.
    assert_same(ours, dense_ref, attrs=False)
    assert rel(ours.coef_, sparse_ref.coef_) < 1e-3  # lsqr's own precision
    assert not hasattr(ours, "rank_") and not hasattr(sparse_ref, "rank_")


@pytest.mark.parametrize("case", ["poly6_sine", "rank_deficient", "n_lt_p"])
def test_float32(case):
    X, y = CASES[case]()
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    ref32 = sk.LinearRegression().fit(X32, y32)  # float32 lstsq (sgelsd)
    ref64 = sk.LinearRegression().fit(X32.astype(np.float64), y32.astype(np.float64))
    ours = fastgd.LinearRegression().fit(X32, y32)
    assert ours.coef_.dtype == ref32.coef_.dtype == np.float32
    assert np.asarray(ours.intercept_).dtype == np.asarray(ref32.intercept_).dtype
    assert ours.singular_.dtype == np.float32 and ours.rank_ == ref32.rank_
    # fastgd solves float32 data in float64: the float64 solution, rounded.
    assert rel(ours.coef_, ref64.coef_) < 1e-5
    assert rel(ours.coef_, ref32.coef_) < 1e-2  # float32 lstsq's own precision
    np.testing.assert_allclose(ours.singular_, ref32.singular_, rtol=1e-4,
                               atol=1e-5 * ref32.singular_[0])


def test_ridge_direct():
    X, y = diabetes3()
    alpha = 0.01
    ref = sk.Ridge(alpha=alpha * len(y), solver="svd").fit(X, y)
    ours = fastgd.LinearRegression(alpha=alpha).fit(X, y)
    assert rel(ours.coef_, ref.coef_) < 1e-8


def test_weights_equal_repeats():
    X, y = rank_deficient()
    sw = np.ones(len(y))
    sw[::3] = 2.0
    a = fastgd.LinearRegression().fit(X, y, sample_weight=sw)
    b = fastgd.LinearRegression().fit(np.vstack([X, X[::3]]), np.r_[y, y[::3]])
    assert rel(a.coef_, b.coef_) < 1e-10


def test_positive_keeps_lbfgs_and_matches_nnls():
    X, y = load_diabetes(return_X_y=True)
    ref = sk.LinearRegression(positive=True).fit(X, y)
    ours = fastgd.LinearRegression(positive=True).fit(X, y)
    assert rel(ours.coef_, ref.coef_) < 1e-4
    assert not hasattr(ours, "rank_")


@pytest.mark.parametrize("solver", ["cg", "lbfgs"])
def test_early_stop_warns(solver):
    X, y = poly_sine()
    with pytest.warns(ConvergenceWarning, match=solver):
        est = fastgd.LinearRegression(solver=solver, max_iter=2).fit(X, y)
    assert est.n_iter_ <= 2


def test_cg_precision_stop_warns():
    # The issue's case: CG stops at its precision limit (status 2) short of tol.
    X, y = poly_sine()
    X = PolynomialFeatures(4).fit_transform(X)[:, :60]  # cond far beyond 1e8
    with pytest.warns(ConvergenceWarning):
        fastgd.LinearRegression(solver="cg", tol=1e-12, max_iter=10000).fit(X, y)


def test_n_iter_counts_passes():
    X, y = poly_sine()
    assert fastgd.LinearRegression().fit(X, y).n_iter_ == 1  # one QR pass


def test_no_copy_of_large_X():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200_000, 50))  # 80 MB
    y = X @ rng.standard_normal(50)
    est = fastgd.LinearRegression()
    tracemalloc.start()
    try:
        est.fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 4, peak
    assert rel(est.coef_, sk.LinearRegression().fit(X, y).coef_) < 1e-10
