"""A/B of the epoch's float products: packed kernels (fastgd/_packed_gemm.h) against
OpenBLAS (``packed_products(False)``, as ``FASTGD_GEMM=blas``), interleaved in one
process, with the GEMM peak measured in the same run.

    python benchmarks/gemm_ab.py --threads 2 --rounds 5

Each round times one epoch of each path, alternating, per shape and dtype; the
report is the minimum (and median) per path, the same-run ratio, and GEMM GFLOP/s
(benchmarks/flops.py's count) as a share of numpy's 2048^3 GEMM at the same thread
count, and the ratio of the minimum CPU times (steadier than wall time on a busy
machine, for 1 thread). ``--threads`` forces that many threads whatever the load (fastgd otherwise
starts only as many as there are idle cores).
"""

import argparse
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flops  # noqa: E402

SHAPES = {
    "mnist": dict(rows=60_000, features=784, hidden=[100], batch=200),
    "gemm": dict(rows=20_000, features=784, hidden=[1024], batch=1024),
    "b32": dict(rows=50_000, features=100, hidden=[100], batch=32),
    "b200": dict(rows=50_000, features=100, hidden=[100], batch=200),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shapes", nargs="+", default=["mnist", "gemm"], choices=SHAPES)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    args = parser.parse_args()
    os.environ["FASTGD_NUM_THREADS"] = str(args.threads)
    from fastgd import _threads
    from fastgd._build import kernels
    from fastgd._engine import KernelData, Network, Optimizer

    _threads.idle_cores = lambda: args.threads
    with threadpool_limits(limits=args.threads):
        peaks = {dt: flops.square_gemm_rate(2048, np.dtype(dt)) for dt in args.dtypes}
    for name in args.shapes:
        shape = SHAPES[name]
        for dt in args.dtypes:
            dtype = np.dtype(dt)
            rng = np.random.RandomState(0)
            X = rng.normal(size=(shape["rows"], shape["features"])).astype(dtype)
            Y = np.eye(10, dtype=dtype)[rng.randint(10, size=shape["rows"])]
            units = [shape["features"], *shape["hidden"], 10]
            n_params = sum(a * b + b for a, b in zip(units[:-1], units[1:]))
            w0 = rng.uniform(-0.1, 0.1, n_params).astype(dtype)
            data = KernelData(X, dtype, Y)
            times = {True: [], False: []}
            cpu_times = {True: [], False: []}
            for _ in range(args.rounds):
                order = rng.permutation(shape["rows"])
                for packed in (True, False):
                    kernels.packed_products(packed)
                    net = Network(units, "relu", "softmax", w0.copy())
                    opt = Optimizer("adam", n_params, dtype, 1e-3)
                    start, cpu = time.perf_counter(), time.process_time()
                    net.train_epoch(data, "log_loss", 1e-4, opt, order, shape["batch"])
                    times[packed].append(time.perf_counter() - start)
                    cpu_times[packed].append(time.process_time() - cpu)
            kernels.packed_products(True)
            work = flops.epoch_gemm_flops(units, shape["rows"])
            best = {p: min(t) for p, t in times.items()}
            rate = {p: work / best[p] / 1e9 for p in best}
            print(f"{name} {units} batch {shape['batch']} {dt} {args.threads} thr: "
                  f"packed {best[True] * 1e3:.1f} ms (median {np.median(times[True]) * 1e3:.1f}), "
                  f"blas {best[False] * 1e3:.1f} ms (median {np.median(times[False]) * 1e3:.1f}), "
                  f"blas/packed {best[False] / best[True]:.2f}x; "
                  f"{rate[True]:.1f} vs {rate[False]:.1f} GEMM GFLOP/s = "
                  f"{100 * rate[True] / peaks[dt]:.0f}% vs {100 * rate[False] / peaks[dt]:.0f}% "
                  f"of numpy 2048^3 {peaks[dt]:.1f}; CPU time blas/packed "
                  f"{min(cpu_times[False]) / min(cpu_times[True]):.2f}x", flush=True)


if __name__ == "__main__":
    main()
