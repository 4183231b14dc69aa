"""Scaling with cores, measured on one core and modelled for 4-64 (issue 14, item 4).

A batch is cut into ``s`` row slices with private gradients (``fastgd/_threads.py``);
``s`` depends on the shape and the slice cap (the usable CPUs), never on the thread
count. So the work of ``s`` slices can be timed on ONE thread here, ``T1(s)``, for
any ``s`` a bigger machine would choose, and the time on ``p`` cores predicted::

    T(p) = T1(s) / min(p, s) + 2 * barrier(p) + reduce_excess(s, p)

* ``T1(s)`` includes every cost of slicing but the parallel ones: smaller GEMMs,
  the sum of the ``s`` private gradients, the update.
* ``barrier(p)``: two fork/joins per batch (assumed, see ``--barrier-us``:
  EPCC-syncbench-like figures for a socket, about 1 us at 2 threads growing to
  ~10 us at 64).
* ``reduce_excess``: summing ``s`` gradients reads ``s * P`` values per batch; on
  one thread those stay in cache when they fit, on ``p`` cores they cross between
  cores. Counted only when ``s * P * bytes`` exceeds the private caches
  (``--l2-mib`` per core), at ``--dram-gbs`` for the whole socket.
* Not modelled: memory bandwidth of the GEMMs themselves (all rows here are
  compute-bound per slice: their X rows and weights fit in L2), frequency drop
  with all cores busy, SMT, NUMA.

It also checks the model where it can be checked, on 2 cores: the measured epoch on
2 threads against the model's prediction from the 1-thread times.

    python benchmarks/scaling.py             # about 1-2 minutes on 2 cores
    python benchmarks/scaling.py --rounds 5 --caps 2 4 8 16 32 64

The policy side (which slice count each machine size gets) is exact: it is
``fastgd._threads.slices_for`` with ``cap`` = the simulated machine size. The
timing side is a model; the report says which rows scale and which do not.
"""

import argparse
import itertools
import os
import sys
import time

import numpy as np

ROWS = [
    # name, features, hidden, classes, batch
    ("MNIST-shaped 784->100->10, batch 200", 784, (100,), 10, 200),
    ("GEMM-bound 784->1024->10, batch 1024", 784, (1024,), 10, 1024),
    ("deep 100->(100,100,100)->10, batch 200", 100, (100, 100, 100), 10, 200),
    ("small batch 100->100->10, batch 32", 100, (100,), 10, 32),
]


def _n_params(units):
    return sum(a * b + b for a, b in itertools.pairwise(units))


def _epoch_per_batch(units, batch, dtype, n_batches, slices, threads, rounds):
    """Minimum over rounds of the time per batch of an epoch of ``n_batches`` batches,
    ``slices`` row slices forced, ``threads`` OpenMP threads."""
    from fastgd import _threads
    from fastgd._engine import KernelData, Network, Optimizer

    rng = np.random.RandomState(0)
    rows = batch * n_batches
    X = rng.normal(size=(rows, units[0])).astype(dtype)
    Y = np.eye(units[-1], dtype=dtype)[rng.randint(units[-1], size=rows)]
    n_params = _n_params(units)
    net = Network(list(units), "relu", "softmax",
                  rng.uniform(-0.1, 0.1, n_params).astype(dtype))
    opt = Optimizer("adam", n_params, dtype, 1e-3)
    data = KernelData(X, dtype, Y)
    original = _threads.slices_for
    _threads.slices_for = lambda *a, **k: slices
    os.environ["FASTGD_NUM_THREADS"] = str(threads)
    try:
        order = np.arange(rows)
        net.train_epoch(data, "log_loss", 1e-4, opt, order, batch)  # warm-up
        best = np.inf
        for _ in range(rounds):
            start = time.perf_counter()
            net.train_epoch(data, "log_loss", 1e-4, opt, order, batch)
            best = min(best, time.perf_counter() - start)
    finally:
        _threads.slices_for = original
        del os.environ["FASTGD_NUM_THREADS"]
    return best / n_batches


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caps", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=20, help="batches per timed epoch")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--barrier-us", type=float, nargs=2, default=[1.0, 10.0],
                        metavar=("AT2", "AT64"),
                        help="one fork/join at 2 and at 64 threads (log-interpolated)")
    parser.add_argument("--l2-mib", type=float, default=1.0, help="private cache per core")
    parser.add_argument("--dram-gbs", type=float, default=100.0, help="socket bandwidth")
    args = parser.parse_args()

    from fastgd import _threads

    dtype = np.dtype(args.dtype)
    at2, at64 = args.barrier_us

    def barrier_s(p):
        if p <= 1:
            return 0.0
        return 1e-6 * at2 * (at64 / at2) ** ((np.log2(p) - 1) / 5)

    print(f"{dtype.name}; T1(s): one thread, s slices, min of {args.rounds} epochs of "
          f"{args.batches} batches; model: T1(s)/min(p,s) + 2 barriers + reduction "
          f"beyond {args.l2_mib} MiB/core at {args.dram_gbs} GB/s\n")
    for name, d, hidden, k, batch in ROWS:
        units = (d, *hidden, k)
        n_params = _n_params(units)
        policy = {p: _threads.slices_for(units, batch, cap=p) for p in args.caps}
        needed = sorted(set(policy.values()))
        t1 = {s: _epoch_per_batch(units, batch, dtype, args.batches, s, 1, args.rounds)
              for s in needed}
        measured2 = (_epoch_per_batch(units, batch, dtype, args.batches, policy[2], 2,
                                      args.rounds) if 2 in policy else None)
        print(f"{name} ({n_params:,} parameters)")
        print(f"  {'cores':>5} {'slices':>6} {'split':>5} {'T1(s) us':>9} "
              f"{'model us':>9} {'speed-up':>8} {'efficiency':>10}")
        base = t1[policy[args.caps[0]]] if args.caps[0] == 1 else None
        for p in args.caps:
            s = policy[p]
            split = "units" if _threads.splits_units(units, batch, s) else "rows"
            # Unit-split batches have no private gradients to sum.
            reduce_bytes = 0 if split == "units" else (s - 1) * n_params * dtype.itemsize
            excess = max(0.0, reduce_bytes - p * args.l2_mib * 2**20)
            model = t1[s] / min(p, s) + 2 * barrier_s(min(p, s)) + excess / (args.dram_gbs * 1e9)
            speed = base / model if base else float("nan")
            print(f"  {p:>5} {s:>6} {split:>5} {t1[s] * 1e6:>9.0f} {model * 1e6:>9.0f} "
                  f"{speed:>8.2f} {speed / p:>10.0%}")
        if measured2 is not None:
            s = policy[2]
            predicted = t1[s] / min(2, s) + 2 * barrier_s(min(2, s))
            print(f"  check on this machine, 2 threads, {s} slices: measured "
                  f"{measured2 * 1e6:.0f} us per batch, model {predicted * 1e6:.0f} us "
                  f"({measured2 / predicted:.2f}x the model)")
        print()


if __name__ == "__main__":
    sys.exit(main())
