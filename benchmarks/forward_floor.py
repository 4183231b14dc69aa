"""MLPClassifier.predict_proba on 50,000 x 100, hidden (100,), 10 classes: fastgd and
scikit-learn against the floor, numpy's own first-layer product X @ W1 (the GEMM
that dominates the pass), interleaved round by round, default threading.

    python benchmarks/forward_floor.py [--rounds 15]

If scikit-learn's time is mostly that product, no implementation can be many times
faster than it: the ratio sklearn / floor bounds the reachable speed-up.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLP

import fastgd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    rng = np.random.RandomState(0)
    X = rng.randn(50000, 100)
    y = rng.randint(0, 10, 50000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fg = fastgd.MLPClassifier(max_iter=2, random_state=0).fit(X, y)
        sk = SkMLP(max_iter=2, random_state=0).fit(X, y)
    W1, W2 = sk.coefs_

    def floor():
        return X @ W1

    def floor_both():
        H = X @ W1
        np.maximum(H, 0, out=H)
        return H @ W2

    runs = {"fastgd": lambda: fg.predict_proba(X), "sklearn": lambda: sk.predict_proba(X),
            "numpy X @ W1": floor, "numpy both products + relu": floor_both}
    times = {k: [] for k in runs}
    for f in runs.values():
        f()
    for i in range(args.rounds):
        order = list(runs) if i % 2 == 0 else list(runs)[::-1]
        for k in order:
            t = time.perf_counter()
            runs[k]()
            times[k].append(time.perf_counter() - t)
    ref = np.median(times["sklearn"])
    print("| | min ms | median ms | sklearn median / this |")
    print("|---|---|---|---|")
    for k, v in times.items():
        v = np.array(v) * 1e3
        print(f"| {k} | {v.min():.2f} | {np.median(v):.2f} | "
              f"{ref * 1e3 / np.median(v):.2f}x |")


if __name__ == "__main__":
    main()
