"""Time one compiled training epoch directly (no estimator around it).

For profiling the kernels: the numbers in benchmarks/NOTES.md come from this.

    python benchmarks/epoch_kernel.py --batch 200 --dtype float32 --threads 2
    perf record -e cpu-clock python benchmarks/epoch_kernel.py --epochs 20
"""

import argparse
import os
import time

import numpy as np


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
    parser.add_argument("--split", choices=["auto", "rows"], default="auto",
                        help="rows: never split hidden units (one-hidden-layer nets "
                             "split them by default; changes the rounding)")
    args = parser.parse_args()
    if args.threads is not None:
        os.environ["FASTGD_NUM_THREADS"] = str(args.threads)

    from fastgd import _engine
    from fastgd._engine import KernelData, Network, Optimizer

    if args.slices is not None:
        _engine.slices_for = lambda units, rows, **kw: args.slices
    if args.split == "rows":
        _engine._SPLIT_UNITS = False
    rng = np.random.RandomState(0)
    dtype = np.dtype(args.dtype)
    X = rng.normal(size=(args.rows, args.features)).astype(dtype)
    Y = np.eye(args.classes, dtype=dtype)[rng.randint(args.classes, size=args.rows)]
    units = [args.features, *args.hidden, args.classes]
    n_params = sum(a * b + b for a, b in zip(units[:-1], units[1:]))
    net = Network(units, args.activation, "softmax", rng.uniform(-0.1, 0.1, n_params).astype(dtype))
    opt = Optimizer("adam", n_params, dtype, 1e-3)
    data = KernelData(X, dtype, Y)
    flops = 6 * args.rows * sum(a * b for a, b in zip(units[:-1], units[1:]))
    times = []
    for _ in range(args.epochs):
        order = rng.permutation(args.rows)
        start = time.perf_counter()
        net.train_epoch(data, "log_loss", 1e-4, opt, order, args.batch)
        times.append(time.perf_counter() - start)
    best = min(times)
    slices = _engine.slices_for(units, args.batch)
    split = "units" if _engine.splits_units(units, args.batch, slices) else "rows"
    print(f"units={units} {args.activation} batch={args.batch} {dtype.name}: "
          f"min {best * 1e3:.1f} ms/epoch, median {np.median(times) * 1e3:.1f} ms, "
          f"{flops / best / 1e9:.1f} GFLOP/s "
          f"(slices {slices}, split {split}, threads now {_engine.threads_for(slices)})")


if __name__ == "__main__":
    main()
