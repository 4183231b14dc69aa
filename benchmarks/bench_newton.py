"""Newton solvers on tall, narrow data: fastgd against scikit-learn.

    python benchmarks/bench_newton.py [--rounds 3] [--rows 2000000]

``LogisticRegression(solver="newton-cholesky")`` (and the default lbfgs of both, for
reference) on n x 9 float32 standard-normal features with binary labels from a
logistic model (issue 10: tall data, where building the Hessian dominates). The two
libraries run interleaved, the order alternating between rounds; the table gives the
median seconds, the ratio scikit-learn / fastgd (> 1: fastgd faster), the iterations
and the final objective (mean log loss + penalty) of each, so that a faster fit is
never a worse one.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn import linear_model as sk
from sklearn.exceptions import ConvergenceWarning

import fastgd


def objective(est, X, y):
    z = X.astype(np.float64) @ est.coef_.ravel().astype(np.float64) + est.intercept_[0]
    loss = np.mean(np.logaddexp(0.0, z) - y * z)
    return loss + 0.5 / (est.C * X.shape[0]) * float(np.sum(est.coef_.astype(float) ** 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    rng = np.random.RandomState(0)
    X = rng.standard_normal((args.rows, 9)).astype(np.float32)
    y = (rng.rand(args.rows) < 1 / (1 + np.exp(-(X @ rng.randn(9))))).astype(int)
    print(f"{args.rows} x 9 float32, binary, {args.rounds} rounds interleaved")
    print("| solver | fastgd s | scikit-learn s | ratio | iterations (fastgd / sklearn) "
          "| objective fastgd - sklearn |")
    print("|---|---|---|---|---|---|")
    for solver in ("newton-cholesky", "lbfgs"):
        times = {"fastgd": [], "sklearn": []}
        fits = {}
        for r in range(args.rounds):
            order = [("fastgd", fastgd), ("sklearn", sk)]
            for name, lib in (order if r % 2 == 0 else order[::-1]):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    start = time.perf_counter()
                    fits[name] = lib.LogisticRegression(solver=solver).fit(X, y)
                    times[name].append(time.perf_counter() - start)
        ours, ref = np.median(times["fastgd"]), np.median(times["sklearn"])
        gap = objective(fits["fastgd"], X, y) - objective(fits["sklearn"], X, y)
        print(f"| {solver} | {ours:.3f} | {ref:.3f} | {ref / ours:.2f}x | "
              f"{int(fits['fastgd'].n_iter_[0])} / {int(fits['sklearn'].n_iter_[0])} "
              f"| {gap:.2e} |")


if __name__ == "__main__":
    main()
