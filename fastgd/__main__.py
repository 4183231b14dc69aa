"""``python -m fastgd``: train fastgd and scikit-learn side by side on built-in data.

Loads scikit-learn's digits data set (pixels scaled to [0, 1] by dividing by 16,
``train_test_split(..., random_state=0)``), fits ``fastgd.MLPClassifier`` and
``sklearn.neural_network.MLPClassifier`` with identical parameters and the same
``random_state`` and prints, for each library, the fit time, the test accuracy,
``n_iter_`` and the dtype of the fitted weights, followed by the speed ratio
(scikit-learn time / fastgd time) and the largest absolute difference between
the two loss curves. Both libraries start from the same weights and see the
same shuffles, so the loss curves should agree to rounding.

Example::

    python -m fastgd --dtype float32 --max-iter 100 --hidden 64 32
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

from fastgd import MLPClassifier as FastMLPClassifier


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fastgd",
        description="Train fastgd.MLPClassifier and scikit-learn's MLPClassifier "
        "with the same settings on the digits data and compare them.",
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
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(dtype)
    return train_test_split(X, y, random_state=0)


def fit_and_score(estimator, X_train, y_train, X_test, y_test):
    """Fit ``estimator``; return (fit time in seconds, test accuracy)."""
    start = time.perf_counter()
    estimator.fit(X_train, y_train)
    fit_time = time.perf_counter() - start
    return fit_time, estimator.score(X_test, y_test)


def main(argv=None):
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


if __name__ == "__main__":
    main()
