"""``python -m fastgd``: the digits demo, a quick benchmark, and training from a CSV file.

Commands::

    python -m fastgd [--dtype float32] [--max-iter N] [--hidden N ...]
        The digits demo (the default): fastgd.MLPClassifier and scikit-learn's
        MLPClassifier with identical parameters and the same random_state on
        scikit-learn's digits data (pixels / 16, train_test_split(random_state=0));
        prints each library's fit time, test accuracy, n_iter_ and weight dtype,
        the speed ratio and the largest difference between the two loss curves
        (they start from the same weights and see the same shuffles, so the
        curves agree to rounding).

    python -m fastgd bench [--rounds R] [--epochs E] [--dtype D] [--png FILE]
        A quick side-by-side run of fastgd and scikit-learn on a few small rows of
        the benchmark grid: rounds interleaved (the order alternates), median time
        per epoch of each library, the ratio; a table on stdout and, when
        matplotlib is installed, a bar chart (PNG). Rounds x epochs: 3 x 2 by default.

    python -m fastgd train data.csv --target COL [--model M] [--out model.joblib]
        Reads a CSV file with a header row, fits a StandardScaler + fastgd
        estimator pipeline to predict column COL from all the other (numeric)
        columns, prints cross-validated scores (accuracy or R^2), refits on all
        rows and saves the pipeline with joblib.

Errors in the input (a missing file, an unknown column, a value that is not a
number, a missing value) are one line on stderr and exit status 2.
"""

import argparse
import csv
import os
import statistics
import sys
import time
import warnings

import numpy as np

PROG = "python -m fastgd"


# -- the digits demo ---------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train fastgd.MLPClassifier and scikit-learn's MLPClassifier "
        "with the same settings on the digits data and compare them. Other "
        "commands: 'bench' (a quick benchmark) and 'train' (fit a CSV file); "
        f"see '{PROG} bench --help' and '{PROG} train --help'.",
    )
    parser.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default="float64",
        help="dtype of X (float32 trains in float32); default: %(default)s",
    )
    parser.add_argument(
        "--max-iter",
        type=int,
        default=200,
        help="maximum number of epochs; default: %(default)s",
    )
    parser.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        default=[100],
        metavar="N",
        help="hidden layer sizes, e.g. --hidden 64 32; default: 100",
    )
    return parser.parse_args(argv)


def load_data(dtype):
    """Digits scaled to [0, 1], split into train and test with random_state=0."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(dtype)
    return train_test_split(X, y, random_state=0)


def fit_and_score(estimator, X_train, y_train, X_test, y_test):
    """Fit ``estimator``; return (fit time in seconds, test accuracy)."""
    start = time.perf_counter()
    estimator.fit(X_train, y_train)
    fit_time = time.perf_counter() - start
    return fit_time, estimator.score(X_test, y_test)


def digits_demo(argv=None):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    from fastgd import MLPClassifier as FastMLPClassifier

    args = parse_args(argv)
    X_train, X_test, y_train, y_test = load_data(args.dtype)
    params = dict(
        hidden_layer_sizes=tuple(args.hidden),
        max_iter=args.max_iter,
        random_state=0,
    )
    print(
        f"digits: {X_train.shape[0]} train / {X_test.shape[0]} test samples, "
        f"{X_train.shape[1]} features, X dtype {args.dtype}"
    )
    print(f"MLPClassifier({', '.join(f'{k}={v!r}' for k, v in params.items())}), solver adam")
    print()

    results = {}
    with warnings.catch_warnings():
        # Hitting max_iter is expected with small --max-iter values.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, cls in [("fastgd", FastMLPClassifier), ("scikit-learn", SkMLPClassifier)]:
            est = cls(**params)
            fit_time, accuracy = fit_and_score(est, X_train, y_train, X_test, y_test)
            results[name] = (est, fit_time, accuracy)

    header = f"{'library':<14}{'fit time (s)':>14}{'test accuracy':>15}{'n_iter_':>9}{'weights':>10}"
    print(header)
    print("-" * len(header))
    for name, (est, fit_time, accuracy) in results.items():
        print(
            f"{name:<14}{fit_time:>14.3f}{accuracy:>15.4f}{est.n_iter_:>9d}"
            f"{str(est.coefs_[0].dtype):>10}"
        )
    print()

    fast, fast_time, _ = results["fastgd"]
    sk, sk_time, _ = results["scikit-learn"]
    print(f"speed ratio (scikit-learn / fastgd fit time): {sk_time / fast_time:.1f}x")

    fast_curve = np.asarray(fast.loss_curve_, dtype=np.float64)
    sk_curve = np.asarray(sk.loss_curve_, dtype=np.float64)
    n = min(len(fast_curve), len(sk_curve))
    diff = np.max(np.abs(fast_curve[:n] - sk_curve[:n])) if n else float("nan")
    print(f"max |loss_curve_ difference| over the first {n} epochs: {diff:.3g}")
    if len(fast_curve) != len(sk_curve):
        print(
            f"warning: loss curves differ in length "
            f"(fastgd {len(fast_curve)}, scikit-learn {len(sk_curve)})"
        )
    return 0


# -- bench ---------------------------------------------------------------------------

# (label, rows, features, hidden layers, activation, solver, batch size).
# Small versions of rows of the README's grid; "digits" is the real data set.
BENCH_ROWS = [
    ("digits 1797x64, (100,), adam, batch 200", "digits", 0, (100,), "relu", "adam", 200),
    ("10k x 100, (100,), adam, batch 200", 10_000, 100, (100,), "relu", "adam", 200),
    ("10k x 100, (100,), adam, batch 32", 10_000, 100, (100,), "relu", "adam", 32),
    ("10k x 100, (100, 100) tanh, sgd + Nesterov", 10_000, 100, (100, 100), "tanh",
     "sgd", 200),
]


def bench_data(rows, features, dtype, seed=0):
    """The row's data: digits / 16, or a 10-class problem from make_classification."""
    from sklearn.datasets import load_digits, make_classification

    if rows == "digits":
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
    else:
        X, y = make_classification(n_samples=rows, n_features=features,
                                   n_informative=features // 2, n_classes=10,
                                   random_state=seed)
    return np.ascontiguousarray(X, dtype=dtype), y


def time_per_epoch(cls, params, X, y, epochs):
    """Fit ``epochs`` epochs (no early stop); return (seconds per epoch, last loss)."""
    from sklearn.exceptions import ConvergenceWarning

    est = cls(**params, max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1,
              random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        est.fit(X, y)
        elapsed = time.perf_counter() - start
    return elapsed / est.n_iter_, est.loss_curve_[-1]


def bench(argv=None):
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    import fastgd
    from fastgd._build import kernel_build

    parser = argparse.ArgumentParser(
        prog=f"{PROG} bench",
        description="fastgd vs scikit-learn MLPClassifier on a few small rows of the "
        "benchmark grid: same data, architecture, initial weights and batch size; "
        "rounds interleaved, median time per epoch of each library and the ratio.",
    )
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per row (median taken); default: %(default)s")
    parser.add_argument("--epochs", type=int, default=2,
                        help="epochs per timed fit; default: %(default)s")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                        help="dtype of X; default: %(default)s")
    parser.add_argument("--rows", type=int, nargs="+", metavar="I",
                        help="run only these rows of the grid (0-based indices)")
    parser.add_argument("--png", default="fastgd-bench.png",
                        help="bar chart written here when matplotlib is installed; "
                        "default: %(default)s")
    parser.add_argument("--no-png", action="store_true", help="do not write the chart")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.epochs < 1:
        return fail(f"{PROG} bench", "--rounds and --epochs must be at least 1")
    rows = BENCH_ROWS
    if args.rows:
        bad = [i for i in args.rows if not 0 <= i < len(BENCH_ROWS)]
        if bad:
            return fail(f"{PROG} bench",
                        f"--rows: no row {bad[0]} (there are {len(BENCH_ROWS)}: 0-"
                        f"{len(BENCH_ROWS) - 1})")
        rows = [BENCH_ROWS[i] for i in args.rows]

    print(f"fastgd {fastgd.__version__} ({kernel_build()} kernels) vs scikit-learn, "
          f"X {args.dtype}, {args.epochs} epochs per fit, median of {args.rounds} "
          f"interleaved rounds")
    libraries = [("fastgd", fastgd.MLPClassifier), ("scikit-learn", SkMLPClassifier)]
    results = []
    for label, n, d, hidden, activation, solver, batch in rows:
        X, y = bench_data(n, d, args.dtype)
        params = dict(hidden_layer_sizes=hidden, activation=activation, solver=solver,
                      batch_size=batch)
        times = {name: [] for name, _ in libraries}
        losses = {}
        for r in range(args.rounds):
            order = libraries if r % 2 == 0 else libraries[::-1]
            for name, cls in order:
                seconds, loss = time_per_epoch(cls, params, X, y, args.epochs)
                times[name].append(seconds)
                losses[name] = loss
        fast = statistics.median(times["fastgd"])
        sk = statistics.median(times["scikit-learn"])
        results.append((label, fast, sk, losses["fastgd"], losses["scikit-learn"]))

    header = (f"{'configuration':<44}{'fastgd':>11}{'sklearn':>11}{'ratio':>8}"
              f"{'loss fastgd':>13}{'loss sklearn':>14}")
    print(header)
    print("-" * len(header))
    for label, fast, sk, lf, ls in results:
        print(f"{label:<44}{fast * 1e3:>8.1f} ms{sk * 1e3:>8.1f} ms{sk / fast:>7.2f}x"
              f"{lf:>13.5f}{ls:>14.5f}")
    print("times: median time per epoch; ratio: scikit-learn / fastgd")
    if not args.no_png:
        written = bench_chart(results, args.png, args.dtype)
        print(f"chart: {args.png}" if written else
              "chart: not written (matplotlib is not installed: pip install "
              "'fastgd[plot]')")
    return 0


def bench_chart(results, path, dtype):
    """Horizontal bars of the time per epoch of both libraries; False without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r[0] for r in results]
    y = np.arange(len(results))
    fig, ax = plt.subplots(figsize=(8, 0.9 * len(results) + 1.2))
    ax.barh(y - 0.2, [r[1] * 1e3 for r in results], 0.4, label="fastgd")
    ax.barh(y + 0.2, [r[2] * 1e3 for r in results], 0.4, label="scikit-learn")
    for i, r in enumerate(results):
        ax.text(r[2] * 1e3, i + 0.2, f" {r[2] / r[1]:.1f}x", va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.margins(x=0.15)
    ax.set_xlabel("time per epoch (ms, log scale), median; labels: scikit-learn / fastgd")
    ax.set_title(f"fastgd vs scikit-learn MLPClassifier, X {dtype}")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# -- train ---------------------------------------------------------------------------

MODELS = ("mlp", "mlp-classifier", "mlp-regressor", "logistic", "linear")


class InputError(Exception):
    """A problem with the user's file or arguments: reported in one line."""


def fail(prog, message):
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


def read_csv(path, target, sep):
    """(X float64 array, y array, feature names) from a CSV file with a header row.

    Feature values must be numbers; the target may be numbers or class labels.
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter=sep))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    except csv.Error as exc:
        raise InputError(f"{path}: not a valid CSV file ({exc})") from None
    rows = [row for row in rows if row]  # blank lines
    if not rows:
        raise InputError(f"{path}: the file is empty")
    header = [name.strip() for name in rows[0]]
    if target not in header:
        raise InputError(f"{path}: no column {target!r} (columns: {', '.join(header)})")
    if len(header) < 2:
        raise InputError(f"{path}: no feature columns besides the target {target!r}")
    data = rows[1:]
    if not data:
        raise InputError(f"{path}: no data rows after the header")
    for i, row in enumerate(data):
        if len(row) != len(header):
            raise InputError(f"{path}: line {i + 2} has {len(row)} fields, the header "
                             f"has {len(header)}")
    t = header.index(target)
    features = [name for j, name in enumerate(header) if j != t]
    X = np.empty((len(data), len(features)))
    for i, row in enumerate(data):
        values = [v.strip() for j, v in enumerate(row) if j != t]
        for k, value in enumerate(values):
            X[i, k] = parse_number(value, path, i + 2, features[k])
    y = [row[t].strip() for row in data]
    for i, value in enumerate(y):
        if value == "":
            raise InputError(f"{path}: line {i + 2}: missing value in target "
                             f"column {target!r}")
    return X, np.array(y), features


def parse_number(value, path, line, column):
    if value == "":
        raise InputError(f"{path}: line {line}: missing value in column {column!r}")
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"{path}: line {line}: column {column!r} is not numeric "
                         f"({value!r}); encode it as numbers first") from None
    if not np.isfinite(number):
        raise InputError(f"{path}: line {line}: column {column!r} is not finite "
                         f"({value!r})")
    return number


def numeric_target(y, target):
    try:
        values = y.astype(np.float64)
    except ValueError:
        bad = next(str(v) for v in y if not _is_number(v))
        raise InputError(f"target column {target!r} is not numeric ({bad!r}): a "
                         f"regression needs numbers (or use a classifier: --model "
                         f"mlp-classifier or logistic)") from None
    if not np.all(np.isfinite(values)):
        raise InputError(f"target column {target!r} has non-finite values")
    return values


def _is_number(value):
    try:
        float(value)
    except ValueError:
        return False
    return True


def is_classification(y):
    """Class labels unless every value is a number and some are not integers."""
    if not all(_is_number(v) for v in y):
        return True
    values = y.astype(np.float64)
    return bool(np.all(values == np.round(values)) and len(np.unique(values)) <= 20)


def make_model(name, y, args):
    """(pipeline, task) for --model ``name`` and targets ``y``."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import fastgd

    if name == "mlp":
        name = "mlp-classifier" if is_classification(y) else "mlp-regressor"
    seed = args.random_state
    mlp = dict(hidden_layer_sizes=tuple(args.hidden), max_iter=args.max_iter,
               random_state=seed)
    if name == "mlp-classifier":
        est, task = fastgd.MLPClassifier(**mlp), "classification"
    elif name == "mlp-regressor":
        est, task = fastgd.MLPRegressor(**mlp), "regression"
    elif name == "logistic":
        est, task = fastgd.LogisticRegression(random_state=seed), "classification"
    else:
        est, task = fastgd.LinearRegression(), "regression"
    steps = [est] if args.no_scale else [StandardScaler(), est]
    return make_pipeline(*steps), task


def train(argv=None):
    prog = f"{PROG} train"
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Fit a fastgd model to a CSV file (header row; numeric feature "
        "columns), report cross-validated scores, refit on all rows and save the "
        "fitted pipeline (StandardScaler + estimator) with joblib.",
    )
    parser.add_argument("csv", help="the data: a CSV file with a header row")
    parser.add_argument("--target", required=True, metavar="COL",
                        help="the column to predict; all other columns are features")
    parser.add_argument("--model", choices=MODELS, default="mlp",
                        help="mlp (classifier or regressor, chosen from the target), "
                        "mlp-classifier, mlp-regressor, logistic or linear; "
                        "default: %(default)s")
    parser.add_argument("--out", default="model.joblib",
                        help="where to save the fitted pipeline; default: %(default)s")
    parser.add_argument("--cv", type=int, default=5,
                        help="cross-validation folds; default: %(default)s")
    parser.add_argument("--sep", default=",", help="field separator; default: ','")
    parser.add_argument("--hidden", type=int, nargs="+", default=[100], metavar="N",
                        help="hidden layer sizes of the MLPs; default: 100")
    parser.add_argument("--max-iter", type=int, default=200,
                        help="epochs of the MLPs; default: %(default)s")
    parser.add_argument("--random-state", type=int, default=0,
                        help="seed of the MLPs and of the folds; default: %(default)s")
    parser.add_argument("--no-scale", action="store_true",
                        help="no StandardScaler before the estimator")
    args = parser.parse_args(argv)

    import joblib
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    try:
        if args.cv < 2:
            raise InputError("--cv must be at least 2")
        if len(args.sep) != 1:
            raise InputError("--sep must be a single character")
        X, y, features = read_csv(args.csv, args.target, args.sep)
        model, task = make_model(args.model, y, args)
        if task == "regression":
            y = numeric_target(y, args.target)
            folds = KFold(args.cv, shuffle=True, random_state=args.random_state)
            metric = "R^2"
        else:
            counts = np.unique(y, return_counts=True)[1]
            if len(counts) < 2:
                raise InputError(f"target column {args.target!r} has a single class "
                                 f"({y[0]!r}): nothing to classify")
            if counts.min() < args.cv:
                raise InputError(f"target column {args.target!r}: the smallest class "
                                 f"has {counts.min()} rows, fewer than --cv "
                                 f"{args.cv} folds")
            folds = StratifiedKFold(args.cv, shuffle=True,
                                    random_state=args.random_state)
            metric = "accuracy"
        if len(y) < args.cv:
            raise InputError(f"{len(y)} rows are fewer than --cv {args.cv} folds")
        estimator = model.steps[-1][1]
        print(f"{args.csv}: {X.shape[0]} rows, {X.shape[1]} features; target "
              f"{args.target!r} ({task}); model {type(estimator).__name__}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            scores = cross_val_score(model, X, y, cv=folds, error_score="raise")
            cv_time = time.perf_counter() - start
            model.fit(X, y)
        print(f"{args.cv}-fold cross-validated {metric}: {scores.mean():.4f} "
              f"+/- {scores.std():.4f} (folds: "
              f"{', '.join(f'{s:.4f}' for s in scores)}; {cv_time:.1f} s)")
    except InputError as exc:
        return fail(prog, str(exc))
    except (ValueError, TypeError) as exc:  # refused by the estimator
        return fail(prog, f"cannot fit: {str(exc).splitlines()[0]}")
    try:
        joblib.dump(model, args.out)
    except OSError as exc:
        return fail(prog, f"cannot write {args.out}: {exc.strerror or exc}")
    print(f"saved the pipeline fitted on all rows to {args.out} "
          f"(joblib.load it; features in the order {', '.join(features)})")
    return 0


COMMANDS = {"bench": bench, "train": train}


def main(argv=None):
    """Run ``python -m fastgd [bench|train] ...``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    return digits_demo(argv)


if __name__ == "__main__":
    sys.exit(main())
