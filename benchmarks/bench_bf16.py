"""GFLOP/s of the bfloat16 product paths (fastgd._bf16) against numpy float32 sgemm and
torch bfloat16 matmul, one thread, on a dense layer's training-step shapes.

    python benchmarks/bench_bf16.py [--rounds 7] [--no-plain]

Contenders run interleaved (one call each per round, in turn) and the table gives
the median and the best of the rounds. "full" times a whole matmul call (round and
pack both operands, then multiply); "B packed" packs op(B) once outside the timing, as
the epoch will (A is still rounded and packed in the call). 2*m*n*k flops per product.
Every rate is checked against a plausible one-core peak, flops per cycle x the highest
clock (cpufreq's maximum, else 4.0 GHz): vdpbf16ps does 2 products per float32 lane,
one 512-bit instruction per cycle on Zen 4 (64 flops/cycle), two on Intel (128);
AMX tdpbf16ps 1024 flops/cycle; float32 FMA half of vdpbf16ps. (A peak derived from
the measured sgemm rate would move with the load of these shared machines.)
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from fastgd import _bf16

# (label, m, n, k, trans_a, trans_b): op(A) is m x k, op(B) k x n
SHAPES = [
    ("784->1024 b1024 fwd   X @ W", 1024, 1024, 784, False, False),
    ("784->1024 b1024 dW  X^T @ D", 784, 1024, 1024, True, False),
    ("1024->784 b1024 dX  D @ W^T", 1024, 784, 1024, False, True),
    ("784->512  b200  fwd   X @ W", 200, 512, 784, False, False),
    ("784->512  b200  dW  X^T @ D", 784, 512, 200, True, False),
    ("512->784  b200  dX  D @ W^T", 200, 784, 512, False, True),
    ("2048^3                A @ B", 2048, 2048, 2048, False, False),
]


def operands(m, n, k, ta, tb, rng):
    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    return a, b


def contenders(m, n, k, ta, tb, a, b, plain, torch):
    """name -> (zero-argument callable, result checker tolerance or None)."""
    oa = a.T if ta else a
    ob = b.T if tb else b
    runs = {"numpy f32": lambda: oa @ ob}
    if torch is not None:
        tA = torch.from_numpy(a).to(torch.bfloat16)
        tB = torch.from_numpy(b).to(torch.bfloat16)
        tA, tB = (tA.T if ta else tA), (tB.T if tb else tB)
        runs["torch bf16"] = lambda: torch.matmul(tA, tB)
    for path in _bf16.available_paths():
        if path == "float32" and not plain:
            continue
        runs[f"{path} full"] = lambda p=path: _bf16.matmul(a, b, ta, tb, path=p)
        pb = _bf16.pack_b(b, tb)
        out = np.empty((m, n), np.float32)
        runs[f"{path} B packed"] = lambda p=path, pb=pb, out=out: _bf16.matmul(
            a, pb, ta, path=p, out=out)
    return runs


def clock_and_vendor():
    """Highest clock in GHz (cpufreq, else 4.0) and the CPU vendor string."""
    ghz = 4.0
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as f:
            ghz = int(f.read()) / 1e6
    except (OSError, ValueError):
        pass
    vendor = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    vendor = line.split(":")[1].strip()
                    break
    except OSError:
        pass
    return ghz, vendor


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-plain", action="store_true",
                    help="skip the plain C path (slow: minutes on 2048^3)")
    args = ap.parse_args()
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    print(f"paths {_bf16.available_paths()}, default {_bf16.bf16_path()}, torch "
          f"{torch.__version__ if torch else 'absent'}, 1 thread, {args.rounds} rounds, "
          f"load average {os.getloadavg()[0]:.1f} (other processes share these cores)")
    rng = np.random.default_rng(0)
    rows = []
    with threadpool_limits(1):
        for label, m, n, k, ta, tb in SHAPES:
            a, b = operands(m, n, k, ta, tb, rng)
            plain = not args.no_plain and m * n * k <= 1024 ** 3
            runs = contenders(m, n, k, ta, tb, a, b, plain, torch)
            # correctness first: each fastgd path against numpy on the rounded inputs
            ra = _bf16.bf16_to_float32(_bf16.round_to_bf16(a))
            rb = _bf16.bf16_to_float32(_bf16.round_to_bf16(b))
            want = (ra.T if ta else ra) @ (rb.T if tb else rb)
            times = {name: [] for name in runs}
            for name, f in runs.items():
                c = f()   # also the warm-up call
                if name.endswith(("full", "packed")):
                    err = np.max(np.abs(c - want)) / np.max(np.abs(want))
                    assert err < 1e-4, (label, name, err)
            for _ in range(args.rounds):
                for name, f in runs.items():
                    t = time.perf_counter()
                    f()
                    times[name].append(time.perf_counter() - t)
            flops = 2.0 * m * n * k
            for name, ts in times.items():
                med, best = statistics.median(ts), min(ts)
                rows.append((label, name, med * 1e3, best * 1e3, flops / med * 1e-9,
                             flops / best * 1e-9))
    ghz, vendor = clock_and_vendor()
    bf16_cycle = 64 if vendor == "AuthenticAMD" else 128
    peak = {"avx512bf16": bf16_cycle * ghz, "amx": 1024 * ghz, "float32": bf16_cycle / 2 * ghz,
            "numpy f32": bf16_cycle / 2 * ghz}
    peak["torch bf16"] = peak["amx" if "amx" in _bf16.available_paths() else "avx512bf16"]
    print(f"\n{'shape':30s} {'contender':20s} {'median ms':>10s} {'best ms':>9s} "
          f"{'GFLOP/s med':>12s} {'GFLOP/s best':>13s}")
    bad = []
    for label, name, med, best, gmed, gbest in rows:
        print(f"{label:30s} {name:20s} {med:10.3f} {best:9.3f} {gmed:12.1f} {gbest:13.1f}")
        limit = peak[name.split(" ")[0]] if name.split(" ")[0] in peak else peak[name]
        if gbest > limit:
            bad.append((label, name, gbest, limit))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    print(f"plausible peaks (1 core, {vendor}, {ghz:.2f} GHz): "
          + ", ".join(f"{k} {v:.0f}" for k, v in peak.items()))
    if bad:
        print("RATES ABOVE THE PLAUSIBLE PEAK (timing or flop count wrong):", bad)
        sys.exit(1)


if __name__ == "__main__":
    main()
