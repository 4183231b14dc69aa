"""Time one compiled training epoch directly (no estimator around it).

For profiling the kernels: the numbers in benchmarks/NOTES.md come from this.

    python benchmarks/epoch_kernel.py --batch 200 --dtype float32 --threads 2
    perf record -e cpu-clock python benchmarks/epoch_kernel.py --epochs 20

GFLOP/s counts the GEMM work only, ``benchmarks/flops.py``: n * (4 * d * h1 + 6 *
sum of later fan_in * fan_out) per epoch (the first layer has no input gradient).
After the epochs it measures numpy's GEMM rate (a square and the batch's own
shapes) at the thread count allowed, prints the epoch's share of it, and fails if
the epoch's rate is above it (the count would be wrong).
"""

import argparse
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flops  # noqa: E402  (benchmarks/flops.py: the FLOP count and GEMM rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--hidden", type=int, nargs="+", default=[100])
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--activation", default="relu",
                        choices=["relu", "tanh", "logistic", "identity"])
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=None,
                        help="FASTGD_NUM_THREADS (default: fastgd's own choice)")
    parser.add_argument("--slices", type=int, default=None,
                        help="override the row slices per batch (changes the rounding)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--gemm-size", type=int, default=2048,
                        help="square numpy GEMM measured after the epochs for the peak")
    parser.add_argument("--split", choices=["auto", "rows"], default="auto",
                        help="rows: never split hidden units (one-hidden-layer nets "
                             "split them by default; changes the rounding)")
    args = parser.parse_args()
    if args.threads is not None:
        os.environ["FASTGD_NUM_THREADS"] = str(args.threads)

    from fastgd import _threads
    from fastgd._engine import KernelData, Network, Optimizer

    if args.slices is not None:
        _threads.slices_for = lambda units, rows, **kw: args.slices
    if args.split == "rows":
        _threads._SPLIT_UNITS = False
    rng = np.random.RandomState(0)
    dtype = np.dtype(args.dtype)
    X = rng.normal(size=(args.rows, args.features)).astype(dtype)
    Y = np.eye(args.classes, dtype=dtype)[rng.randint(args.classes, size=args.rows)]
    units = [args.features, *args.hidden, args.classes]
    n_params = sum(a * b + b for a, b in zip(units[:-1], units[1:]))
    net = Network(units, args.activation, "softmax", rng.uniform(-0.1, 0.1, n_params).astype(dtype))
    opt = Optimizer("adam", n_params, dtype, 1e-3)
    data = KernelData(X, dtype, Y)
    work = flops.epoch_gemm_flops(units, args.rows)
    times = []
    for _ in range(args.epochs):
        order = rng.permutation(args.rows)
        start = time.perf_counter()
        net.train_epoch(data, "log_loss", 1e-4, opt, order, args.batch)
        times.append(time.perf_counter() - start)
    best = min(times)
    slices = _threads.slices_for(units, args.batch)
    split = "units" if _threads.splits_units(units, args.batch, slices) else "rows"
    threads = _threads.threads_for(slices)
    # The GEMM peak at the thread count allowed, measured in this run (after the
    # epochs, so as not to disturb them): numpy on a square and on the batch's shapes.
    allowed = args.threads or len(os.sched_getaffinity(0))
    with threadpool_limits(limits=allowed):
        square = flops.square_gemm_rate(args.gemm_size, dtype)
        shapes = flops.numpy_gemm_rate(flops.batch_gemm_shapes(units, args.batch), dtype)
    peak = max(square, shapes)
    rate = work / best / 1e9
    print(f"units={units} {args.activation} batch={args.batch} {dtype.name}: "
          f"min {best * 1e3:.1f} ms/epoch, median {np.median(times) * 1e3:.1f} ms, "
          f"{rate:.1f} GEMM GFLOP/s ({work / 1e9:.2f} GFLOP per epoch), "
          f"{100 * rate / peak:.0f}% of the GEMM peak {peak:.1f} GFLOP/s on {allowed} "
          f"thread(s) (numpy {args.gemm_size}^3 {square:.1f}, batch shapes {shapes:.1f}) "
          f"(slices {slices}, split {split}, threads now {threads})")
    flops.check_rates([(f"units={units} batch={args.batch}", rate, peak)])


if __name__ == "__main__":
    main()
