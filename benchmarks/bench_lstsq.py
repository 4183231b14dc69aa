"""fastgd.LinearRegression() against scikit-learn's: time and coefficients.

Run as a script (not collected by pytest)::

    python benchmarks/bench_lstsq.py [--rounds 3] [--threads 2] [--n 1000000]

For every case, fastgd's and scikit-learn's fits are interleaved over the rounds
(fastgd, scikit-learn, fastgd, ...) and the medians reported, with their ratio
(scikit-learn time / fastgd time) and the largest relative coefficient
difference ``||ours - theirs|| / ||theirs||`` over the rounds. Times on these
shared 2-core machines are noisy: compare ratios from one run.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn import linear_model as sk
from sklearn.datasets import load_diabetes
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from threadpoolctl import threadpool_limits

import fastgd


def _big(n, d, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32 if dtype == np.float32 else float)
    X += 1.0  # nonzero means: the centring is exercised
    coef = rng.standard_normal(d)
    y = (X @ coef.astype(dtype) + rng.standard_normal(n).astype(dtype)).astype(dtype)
    return X.astype(dtype, copy=False), y


def _poly_sine():
    rng = np.random.RandomState(0)
    x = np.sort(rng.uniform(0, 6, 100))
    y = np.sin(x) + 0.1 * rng.standard_normal(100)
    X = make_pipeline(PolynomialFeatures(6), StandardScaler()).fit_transform(x[:, None])
    return X, y


def _diabetes3():
    X, y = load_diabetes(return_X_y=True)
    return make_pipeline(PolynomialFeatures(3), StandardScaler()).fit_transform(X), y


def _cond(n=20000, d=20, cond=1e12, seed=0):
    """Singular values logspace(0, -log10(cond)) around a centred orthonormal basis."""
    rng = np.random.RandomState(seed)
    U, _ = np.linalg.qr(rng.standard_normal((n, d)))
    U -= U.mean(axis=0)
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    X = (U * np.logspace(0, -np.log10(cond), d)) @ V.T * 1e3 + 5.0
    return X, X @ rng.standard_normal(d) + 1e-3 * rng.standard_normal(n)


def _rank_deficient(n=200000, d=50, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, d))
    X[:, 10:20] = X[:, :10] @ rng.standard_normal((10, 10))  # 10 collinear columns
    X[:, 20] = X[:, 0]  # a duplicate
    X[:, 21] = 3.0  # a constant
    return X, X @ rng.standard_normal(d) + rng.standard_normal(n)


def _rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _time(make, X, y):
    est = make()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    return time.perf_counter() - t0, est


def run(cases, rounds, threads):
    rows = []
    with threadpool_limits(limits=threads):
        for name, (X, y) in cases:
            t_ours, t_sk, diff = [], [], 0.0
            for _ in range(rounds):
                t, ours = _time(fastgd.LinearRegression, X, y)
                t_ours.append(t)
                t, ref = _time(sk.LinearRegression, X, y)
                t_sk.append(t)
                diff = max(diff, _rel(ours.coef_, ref.coef_))
            m_ours, m_sk = np.median(t_ours), np.median(t_sk)
            rows.append((name, m_ours, m_sk, m_sk / m_ours, diff,
                         getattr(ours, "n_iter_", -1)))
            print("%-28s fastgd %9.4f s  sklearn %9.4f s  ratio %7.1fx  "
                  "max rel coef diff %.1e  (n_iter_ %d)" % rows[-1], flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2,
                        help="BLAS threads for both (threadpoolctl)")
    parser.add_argument("--n", type=int, default=1_000_000,
                        help="rows of the large dense cases (d=200)")
    args = parser.parse_args()
    cases = [
        ("dense %dx200 float64" % args.n, _big(args.n, 200, np.float64)),
        ("dense %dx200 float32" % args.n, _big(args.n, 200, np.float32)),
        ("poly6 sine 100x6", _poly_sine()),
        ("diabetes poly3 442x285", _diabetes3()),
        ("cond=1e12 20000x20", _cond()),
        ("rank-deficient 200000x50", _rank_deficient()),
    ]
    print("rounds=%d threads=%d" % (args.rounds, args.threads))
    run(cases, args.rounds, args.threads)


if __name__ == "__main__":
    main()
