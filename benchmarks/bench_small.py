"""Small problems, where fixed per-call costs dominate: fastgd against scikit-learn.

Run as a script::

    python benchmarks/bench_small.py [--rounds 15] [--only SUBSTRING]

Every case builds both estimators from the same constructor arguments and times
``fit`` (or one prediction call on a fitted model) on the same data, the two
libraries interleaved round by round, with default threading on both sides (what
a user gets). The table shows min and median milliseconds and the ratio
scikit-learn / fastgd of the medians (above 1: fastgd faster), plus a quality
column (R2, accuracy, or the largest probability difference) so that a faster fit
is never a worse one.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn import linear_model as sk_linear
from sklearn import neural_network as sk_nn
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

import fastgd


def sine(n=100, seed=0):
    rng = np.random.RandomState(seed)
    x = np.sort(rng.uniform(0, 6, n))[:, None]
    return x, np.sin(x[:, 0]) + 0.1 * rng.randn(n)


def binary(n=15000, d=10, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    w = rng.randn(d)
    y = (X @ w + 0.5 * rng.randn(n) > 0).astype(int)
    return StandardScaler().fit_transform(X), y


def std(Xy):
    X, y = Xy
    return StandardScaler().fit_transform(X), y


def fit_case(name, make, X, y, score):
    """A case timing ``make(lib).fit(X, y)``; ``score(est)`` judges the result."""
    def run(lib):
        return make(lib).fit(X, y)
    return name, run, score


def predict_case(name, make, X, y, method):
    """A case timing ``getattr(est, method)(X)`` on models fitted once per library."""
    fitted = {}

    def run(lib):
        if lib not in fitted:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fitted[lib] = make(lib).fit(X, y)
        return getattr(fitted[lib], method)(X)

    return name, run, None


def cases():
    lin = {"fastgd": fastgd, "sklearn": sk_linear}
    nn = {"fastgd": fastgd, "sklearn": sk_nn}
    xs, ys = sine()
    diab = load_diabetes(return_X_y=True)
    iris, bc, digits = std(load_iris(return_X_y=True)), std(
        load_breast_cancer(return_X_y=True)), std(load_digits(return_X_y=True))
    Xb, yb = binary()
    rng = np.random.RandomState(0)
    Xp = rng.randn(50000, 100)
    yp = rng.randint(0, 10, 50000)

    def r2(X, y):
        return lambda est: f"R2 {est.score(X, y):.4f}"

    def acc(X, y):
        return lambda est: f"acc {est.score(X, y):.4f}"

    return [
        fit_case("LinearRegression poly6 sine 100",
                 lambda lib: make_pipeline(PolynomialFeatures(6), StandardScaler(),
                                           lin[lib].LinearRegression()),
                 xs, ys, r2(xs, ys)),
        fit_case("LinearRegression diabetes", lambda lib: lin[lib].LinearRegression(),
                 *diab, r2(*diab)),
        fit_case("LinearRegression diabetes poly3",
                 lambda lib: make_pipeline(PolynomialFeatures(3), StandardScaler(),
                                           lin[lib].LinearRegression()),
                 *diab, r2(*diab)),
        fit_case("LogisticRegression binary 15000x10",
                 lambda lib: lin[lib].LogisticRegression(), Xb, yb, acc(Xb, yb)),
        fit_case("LogisticRegression iris", lambda lib: lin[lib].LogisticRegression(),
                 *iris, acc(*iris)),
        fit_case("LogisticRegression breast_cancer",
                 lambda lib: lin[lib].LogisticRegression(), *bc, acc(*bc)),
        fit_case("LogisticRegression digits newton-cholesky",
                 lambda lib: lin[lib].LogisticRegression(solver="newton-cholesky"),
                 *digits, acc(*digits)),
        predict_case("LogisticRegression.predict_proba 50000x100",
                     lambda lib: lin[lib].LogisticRegression(max_iter=20), Xp, yp,
                     "predict_proba"),
        predict_case("LogisticRegression.decision_function 50000x100",
                     lambda lib: lin[lib].LogisticRegression(max_iter=20), Xp, yp,
                     "decision_function"),
        fit_case("MLPClassifier(max_iter=20) iris",
                 lambda lib: nn[lib].MLPClassifier(max_iter=20, random_state=0),
                 *iris, acc(*iris)),
        fit_case("MLPClassifier(max_iter=20) digits",
                 lambda lib: nn[lib].MLPClassifier(max_iter=20, random_state=0),
                 *digits, acc(*digits)),
        predict_case("MLPClassifier.predict_proba 50000x100 (100,)",
                     lambda lib: nn[lib].MLPClassifier(max_iter=2, random_state=0),
                     Xp, yp, "predict_proba"),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--only", default="", help="run the cases whose name holds this")
    args = ap.parse_args()
    print("| case | fastgd min / median ms | scikit-learn min / median ms | "
          "ratio sklearn/fastgd (median) | fastgd | scikit-learn |")
    print("|---|---|---|---|---|---|")
    for name, run, score in cases():
        if args.only not in name:
            continue
        times = {"fastgd": [], "sklearn": []}
        out = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for lib in times:  # warm-up (imports, first-call caches)
                run(lib)
            for i in range(args.rounds):
                order = list(times) if i % 2 == 0 else list(times)[::-1]
                for lib in order:  # interleaved, alternating who goes first
                    t = time.perf_counter()
                    out[lib] = run(lib)
                    times[lib].append(time.perf_counter() - t)
        if score is None:
            a, b = np.asarray(out["fastgd"]), np.asarray(out["sklearn"])
            quality = [f"max diff {np.max(np.abs(a - b)):.1e}", ""]
        else:
            quality = [score(out["fastgd"]), score(out["sklearn"])]
        f, s = (np.array(times[k]) * 1e3 for k in ("fastgd", "sklearn"))
        print(f"| {name} | {f.min():.2f} / {np.median(f):.2f} | "
              f"{s.min():.2f} / {np.median(s):.2f} | "
              f"{np.median(s) / np.median(f):.2f}x | {quality[0]} | {quality[1]} |",
              flush=True)


if __name__ == "__main__":
    main()
