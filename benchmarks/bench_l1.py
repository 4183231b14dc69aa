"""L1 / elastic-net LogisticRegression: fastgd (proximal Newton on small dense data,
else OWL-QN) against scikit-learn's saga.

Run as a script: ``python benchmarks/bench_l1.py [--rounds 3] [--skip-slow]``;
``--wide`` runs only the wide sparse case of issue 10 (10,000 x 100,000 CSR, 100
nonzeros per row; minutes, most of them in the tight saga reference).
For each case, the reference is scikit-learn's saga at tol=1e-10 (computed once,
timed once). fastgd (default tol) and saga (default tol) are timed interleaved
over the rounds; the table shows medians, the ratio saga / fastgd, the relative
coefficient distance to the reference, the objective gap and nonzero counts.
"""

import argparse
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn import linear_model as sk
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import fastgd


def text_like(n=5000, d=20000, nnz=50, seed=0):
    """A tf-idf-like binary problem: Zipf-distributed terms, unit-norm rows."""
    rng = np.random.RandomState(seed)
    rows = np.repeat(np.arange(n), nnz)
    cols = rng.permutation(d)[np.minimum(rng.zipf(1.3, n * nnz) - 1, d - 1)]
    X = sp.csr_matrix((rng.rand(n * nnz) + 0.5, (rows, cols)), shape=(n, d))
    X.sum_duplicates()
    X = sp.csr_matrix(X.multiply(1 / np.sqrt(X.multiply(X).sum(1))))
    w = np.zeros(d)
    w[rng.permutation(d)[:50]] = rng.randn(50) * 10  # (frequent terms are few)
    p = 1 / (1 + np.exp(-(X @ w)))
    return X, (rng.rand(n) < p).astype(int)


def wide_sparse(n=10000, d=100000, nnz=100, seed=0):
    """Issue 10's wide case: n x d CSR, nnz uniform columns per row, binary labels
    from a sparse true model."""
    rng = np.random.RandomState(seed)
    cols = rng.randint(0, d, n * nnz)
    X = sp.csr_matrix((rng.rand(n * nnz), (np.repeat(np.arange(n), nnz), cols)),
                      shape=(n, d))
    X.sum_duplicates()
    w = np.zeros(d)
    w[rng.permutation(d)[:200]] = rng.randn(200) * 3
    p = 1 / (1 + np.exp(-(X @ w)))
    return X, (rng.rand(n) < p).astype(int)


def narrow_sparse(n=20000, d=50, density=0.2, seed=0):
    """Narrow CSR data (the proximal Newton regime): density of nonzeros uniform,
    binary labels from a sparse true model."""
    rng = np.random.RandomState(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=rng,
                  data_rvs=rng.standard_normal)
    w = np.zeros(d)
    w[:10] = rng.randn(10) * 2
    p = 1 / (1 + np.exp(-(X @ w)))
    return X, (rng.rand(n) < p).astype(int)


def objective(est, X, y, C, l1_ratio):
    """scikit-learn's objective / (C n): mean log loss + penalties."""
    P = est.predict_proba(X)
    idx = np.searchsorted(est.classes_, y)
    loss = -np.mean(np.log(np.clip(P[np.arange(len(y)), idx], 1e-300, None)))
    W = est.coef_
    pen = l1_ratio * np.abs(W).sum() + 0.5 * (1 - l1_ratio) * (W * W).sum()
    return loss + pen / (C * len(y))


def cases(skip_slow, wide=False):
    bc = load_breast_cancer(return_X_y=True)
    wine = load_wine(return_X_y=True)
    std = StandardScaler().fit_transform
    out = [("breast_cancer l1", std(bc[0]), bc[1], 0.5, 1.0),
           ("breast_cancer en0.5", std(bc[0]), bc[1], 0.5, 0.5),
           ("wine (3 cl) l1", std(wine[0]), wine[1], 0.5, 1.0),
           ("narrow CSR 20000x50 (20% nonzero) l1", *narrow_sparse(), 0.1, 1.0)]
    if not skip_slow:
        out.append(("text 5000x20000 l1", *text_like(), 10.0, 1.0))
    if wide:
        out = [("wide CSR 10000x100000 (100 nnz/row) l1", *wide_sparse(), 1.0, 1.0)]
    return out


def timed(make, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t = time.perf_counter()
        est = make().fit(X, y)
        return time.perf_counter() - t, est


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-slow", action="store_true")
    ap.add_argument("--ref-max-iter", type=int, default=20000)
    ap.add_argument("--wide", action="store_true",
                    help="only the wide sparse case (10,000 x 100,000 CSR; slow)")
    args = ap.parse_args()
    rows = []
    with threadpool_limits(limits=1):
        for name, X, y, C, r in cases(args.skip_slow, args.wide):
            t_ref, ref = timed(lambda: sk.LogisticRegression(
                solver="saga", C=C, l1_ratio=r, tol=1e-10,
                max_iter=args.ref_max_iter), X, y)
            f_ref = objective(ref, X, y, C, r)
            norm = np.linalg.norm(np.c_[ref.coef_, ref.intercept_])
            makers = {
                "fastgd": lambda: fastgd.LogisticRegression(solver="saga", C=C,
                                                            l1_ratio=r),
                "saga": lambda: sk.LogisticRegression(solver="saga", C=C, l1_ratio=r),
            }
            times = {k: [] for k in makers}
            ests = {}
            for _ in range(args.rounds):
                for k, make in makers.items():  # interleaved
                    t, ests[k] = timed(make, X, y)
                    times[k].append(t)
            for k, est in list(ests.items()) + [("saga tol=1e-10", ref)]:
                t = np.median(times[k]) if k in times else t_ref
                dist = np.linalg.norm(np.c_[est.coef_, est.intercept_]
                                      - np.c_[ref.coef_, ref.intercept_]) / norm
                zeros_equal = np.array_equal(est.coef_ == 0, ref.coef_ == 0)
                rows.append((name, k, t, objective(est, X, y, C, r) - f_ref, dist,
                             int((est.coef_ != 0).sum()), zeros_equal,
                             int(np.max(est.n_iter_))))
            t_f = np.median(times["fastgd"])
            rows.append((name, "ratio saga/fastgd", np.median(times["saga"]) / t_f,
                         None, None, None, None, None))
            rows.append((name, "ratio tight saga/fastgd", t_ref / t_f,
                         None, None, None, None, None))
    print("| case | solver | median s (or ratio) | objective gap | rel. dist. to "
          "tight saga | nonzeros | same zeros | n_iter |")
    print("|---|---|---|---|---|---|---|---|")
    for name, k, t, gap, dist, nnz, same, it in rows:
        if gap is None:
            print(f"| {name} | {k} | {t:.1f}x | | | | | |")
        else:
            print(f"| {name} | {k} | {t:.4f} | {gap:.2e} | {dist:.2e} | {nnz} | "
                  f"{same} | {it} |")


if __name__ == "__main__":
    main()
