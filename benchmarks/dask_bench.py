"""fastgd.dask against single-machine fastgd and scikit-learn on the same data.

Run:  python benchmarks/dask_bench.py  (needs the [dask] extra; ~3-5 minutes on 2 cores)

Prints markdown tables: exactness of the exact solvers (max relative difference of
the coefficients to single-machine fastgd / scikit-learn) with times on 1 and 2
workers, local-SGD test accuracy and time per epoch (per-epoch averaging and
sync_every=20 batches), and the scaling efficiency from 1 to 2 workers
(t1 / (2 t2) per epoch). Times are the minimum of ``ROUNDS`` fits.
"""

import time
import warnings

import numpy as np
import sklearn.linear_model as sklm
from distributed import Client, LocalCluster
from sklearn.model_selection import train_test_split

import dask.array as da
import fastgd
import fastgd.dask as fdask


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.abs(a - b).max() / np.abs(b).max())


ROUNDS = 2


def timed(fn, rounds=ROUNDS):
    """(result, min time over rounds)."""
    best = np.inf
    for _ in range(rounds):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def problem(n, d, k, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    y = (X @ rng.randn(d, k) + 2 * rng.randn(n, k)).argmax(axis=1)
    return X, y


def main():
    warnings.simplefilter("ignore")
    X, y = problem(50_000, 50, 10)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0)
    rng = np.random.RandomState(1)
    yreg = X @ rng.randn(50) + rng.randn(len(X))
    single = {}
    single["logistic"], t_log = timed(lambda: fastgd.LogisticRegression().fit(Xtr, ytr))
    _, t_sk_log = timed(lambda: sklm.LogisticRegression().fit(Xtr, ytr))
    sk_lin, t_sk_lin = timed(lambda: sklm.LinearRegression().fit(X, yreg))
    mlp_kw = dict(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=50, random_state=0)
    single["mlp"], t_mlp = timed(lambda: fastgd.MLPClassifier(**mlp_kw).fit(Xtr, ytr))
    sgd_kw = dict(hidden_layer_sizes=(64,), solver="adam", max_iter=10, random_state=0,
                  n_iter_no_change=100)
    plain_sgd, t_sgd = timed(lambda: fastgd.MLPClassifier(**sgd_kw).fit(Xtr, ytr))
    rows = {"exact": [], "sgd": []}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None) as cluster, \
                Client(cluster):
            for parts in (2, 8):
                dX = da.from_array(Xtr, chunks=(-(-len(Xtr) // parts), 50)).persist()
                dy = da.from_array(ytr, chunks=(-(-len(ytr) // parts),)).persist()
                est, t = timed(lambda: fdask.LogisticRegression().fit(dX, dy))
                rows["exact"].append(("LogisticRegression lbfgs", workers, parts,
                                      rel(est.coef_, single["logistic"].coef_), t, t_log,
                                      t_sk_log))
                est, t = timed(lambda: fdask.MLPClassifier(**mlp_kw).fit(dX, dy))
                rows["exact"].append(("MLPClassifier(32) lbfgs, 50 it", workers, parts,
                                      rel(est.coefs_[0], single["mlp"].coefs_[0]), t,
                                      t_mlp, float("nan")))
                dXa = da.from_array(X, chunks=(-(-len(X) // parts), 50)).persist()
                dya = da.from_array(yreg, chunks=(-(-len(X) // parts),)).persist()
                est, t = timed(lambda: fdask.LinearRegression().fit(dXa, dya))
                rows["exact"].append(("LinearRegression (TSQR) vs sklearn", workers,
                                      parts, rel(est.coef_, sk_lin.coef_), t,
                                      float("nan"), t_sk_lin))
            dX = da.from_array(Xtr, chunks=(-(-len(Xtr) // workers), 50)).persist()
            dy = da.from_array(ytr, chunks=(-(-len(ytr) // workers),)).persist()
            for sync in (None, 20):
                est, t = timed(lambda: fdask.MLPClassifier(sync_every=sync,
                                                           **sgd_kw).fit(dX, dy))
                rows["sgd"].append((workers, "epoch" if sync is None else
                                    "%d batches" % sync,
                                    float((est.predict(Xte) == yte).mean()),
                                    t / est.n_iter_))
    print("| model | workers | partitions | max rel. diff | dask time (s) | "
          "fastgd time (s) | sklearn time (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows["exact"]:
        print("| %s | %d | %d | %.1e | %.2f | %.2f | %.2f |" % r)
    print()
    print("single-machine adam: test accuracy %.4f, %.3f s/epoch"
          % (plain_sgd.score(Xte, yte), t_sgd / plain_sgd.n_iter_))
    print("| workers | averaging every | local-SGD test accuracy | s/epoch |")
    print("|---|---|---|---|")
    for r in rows["sgd"]:
        print("| %d | %s | %.4f | %.3f |" % r)
    print()
    per_epoch = {(r[0], r[1]): r[3] for r in rows["sgd"]}
    for sync in ("epoch", "20 batches"):
        print("scaling efficiency 1 -> 2 workers (averaging every %s): %.0f%%"
              % (sync, 100 * per_epoch[1, sync] / (2 * per_epoch[2, sync])))


if __name__ == "__main__":
    main()
