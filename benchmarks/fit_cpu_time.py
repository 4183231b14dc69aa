"""CPU time of default LogisticRegression fits on the small sets of bench_small.py
(30 fits each, min and median), and the iterations taken: a load-insensitive way to
compare two fastgd trees run one after the other when the machine is too busy for
bench_small.py's wall-clock ratios against scikit-learn.

    OMP_NUM_THREADS=1 PYTHONPATH=<tree> python benchmarks/fit_cpu_time.py
"""

import os
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_iris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_small import binary, std  # noqa: E402

import fastgd  # noqa: E402


def main():
    warnings.simplefilter("ignore")
    cases = {"binary 15000x10": binary(), "iris": std(load_iris(return_X_y=True)),
             "breast_cancer": std(load_breast_cancer(return_X_y=True))}
    for name, (X, y) in cases.items():
        est = fastgd.LogisticRegression().fit(X, y)
        ts = []
        for _ in range(30):
            t = time.process_time()
            fastgd.LogisticRegression().fit(X, y)
            ts.append(time.process_time() - t)
        ts = np.array(ts) * 1e3
        print(f"{name}: cpu min {ts.min():.2f} median {np.median(ts):.2f} ms, "
              f"n_iter {est.n_iter_[0]}")


if __name__ == "__main__":
    main()
