"""Extra memory of an MLP fit on a pandas DataFrame: fastgd against scikit-learn.

A DataFrame's ``to_numpy()`` is column-major (F order). fastgd's kernels gather the
mini-batch rows from it by a strided copy, so X is never copied; scikit-learn's MLP
indexes X per batch. Each contender runs in its own process; reported: the peak of
the allocations made during ``fit`` (tracemalloc, which sees numpy's buffers).

    python benchmarks/bench_memory_dataframe.py [--rows 1000000] [--cols 50]

The issue's figures (1,000,000 x 50 float32, X = 191 MiB): fastgd used 223 MiB extra
(a C-ordered copy of X plus the rest), scikit-learn 51 MiB. The target: under half
of X.
"""

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, tracemalloc, warnings
import numpy as np, pandas as pd
which, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
df = pd.DataFrame(rng.standard_normal((n, d), dtype=np.float32))
y = (df[0].to_numpy() > 0).astype(int)
if which == "fastgd":
    from fastgd import MLPClassifier
else:
    from sklearn.neural_network import MLPClassifier
clf = MLPClassifier(hidden_layer_sizes=(100,), max_iter=1, random_state=0)
tracemalloc.start()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    clf.fit(df, y)
peak = tracemalloc.get_traced_memory()[1] / 2**20
tracemalloc.stop()
print(json.dumps({"peak_mib": peak,
                  "x_mib": df.to_numpy().nbytes / 2**20,
                  "x_is_f_ordered": bool(df.to_numpy().flags.f_contiguous)}))
"""


def measure(which, rows, cols):
    out = subprocess.run([sys.executable, "-c", CHILD, which, str(rows), str(cols)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=50)
    args = parser.parse_args()
    for which in ("fastgd", "sklearn"):
        r = measure(which, args.rows, args.cols)
        print(f"{which:8s} X = {r['x_mib']:.0f} MiB (F order: {r['x_is_f_ordered']}); "
              f"extra during fit: tracemalloc peak {r['peak_mib']:.1f} MiB "
              f"({r['peak_mib'] / r['x_mib']:.2f} x X)")


if __name__ == "__main__":
    main()
