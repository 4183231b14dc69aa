"""Smoke test of an installed fastgd (a wheel in a fresh venv, cibuildwheel's
test-command): import, fit and predict each estimator on a small problem, float32
and float64, dense and sparse. Run it from outside the source tree, so that the
installed package is imported. Exits non-zero on any failure."""

import sys
import warnings

import numpy as np
import scipy.sparse as sp

import fastgd
from fastgd._build import available_kernel_builds, kernel_build


def main():
    warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter: not the point here
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 8))
    y_class = (X[:, 0] + X[:, 1] > 0).astype(int)
    y_reg = X @ rng.normal(size=8) + 0.1 * rng.normal(size=300)
    cases = [
        (fastgd.MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0),
         y_class, 0.9),
        (fastgd.MLPRegressor(hidden_layer_sizes=(16,), max_iter=500, random_state=0),
         y_reg, 0.9),
        (fastgd.LogisticRegression(), y_class, 0.9),
        (fastgd.LinearRegression(), y_reg, 0.99),
    ]
    for est, y, floor in cases:
        for dtype in (np.float32, np.float64):
            for data in (X.astype(dtype), sp.csr_matrix(X.astype(dtype))):
                score = est.fit(data, y).score(data, y)
                kind = "csr" if sp.issparse(data) else "dense"
                print(f"{type(est).__name__:<20} {np.dtype(dtype).name:<8} {kind:<6} "
                      f"score {score:.4f}")
                if not score >= floor:
                    print(f"FAILED: score below {floor}", file=sys.stderr)
                    return 1
                if np.asarray(est.predict(data[:5])).shape[0] != 5:
                    print("FAILED: predict shape", file=sys.stderr)
                    return 1
    print(f"fastgd {fastgd.__version__} from {fastgd.__file__}")
    print(f"kernels: {kernel_build()} (available: {', '.join(available_kernel_builds())})")
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
