"""FLOP accounting and the GEMM peak, shared by every benchmark script.

One training epoch of a dense network over ``n`` rows does, per layer with
``fan_in x fan_out`` weights, three matrix products of ``2 * n * fan_in * fan_out``
flops each: forward (``A @ W``), weight gradient (``A^T @ delta``) and input
gradient (``delta @ W^T``). The first layer has no input gradient: nobody needs
dX (fastgd skips it, scikit-learn skips it, torch's X has no gradient). So::

    gemm flops per epoch = n * (4 * d * h1 + 6 * sum over later layers of fan_in * fan_out)

The element-wise work (bias, activation and its derivative, softmax/log loss,
optimizer update) is not in that count and is not reported: the GEMM rate is what
is compared with the GEMM peak.

A GEMM rate above the GEMM peak measured on the same machine in the same run
means the count is wrong: ``check_rates`` raises then.
"""

import itertools
import time

import numpy as np


def layers(units):
    """(fan_in, fan_out) of every layer of ``units`` (input and output included)."""
    return list(itertools.pairwise(units))


def epoch_gemm_flops(units, n_samples):
    """GEMM flops of one training epoch over ``n_samples`` rows (see the module notes)."""
    return n_samples * sum((4 if i == 0 else 6) * a * b for i, (a, b) in enumerate(layers(units)))


def batch_gemm_shapes(units, batch):
    """The (m, k, n) products of one mini-batch of ``batch`` rows, with their op.

    op is "nn" (A @ B), "tn" (A^T @ B, the weight gradient) or "nt" (A @ B^T,
    the input gradient, for every layer but the first).
    """
    shapes = []
    for i, (a, b) in enumerate(layers(units)):
        shapes.append(("nn", batch, a, b))  # forward: (batch, a) @ (a, b)
        shapes.append(("tn", a, batch, b))  # weight gradient: (batch, a)^T @ (batch, b)
        if i > 0:
            shapes.append(("nt", batch, b, a))  # input gradient: (batch, b) @ (a, b)^T
    return shapes


def _product(op, m, k, n, dtype, rng):
    """A zero-argument callable computing one product of the given shape into a buffer."""
    if op == "tn":
        a = rng.standard_normal((k, m)).astype(dtype)  # used as a.T: (m, k)
        b = rng.standard_normal((k, n)).astype(dtype)
        out = np.empty((m, n), dtype)
        return lambda: np.matmul(a.T, b, out=out)
    if op == "nt":
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((n, k)).astype(dtype)  # used as b.T: (k, n)
        out = np.empty((m, n), dtype)
        return lambda: np.matmul(a, b.T, out=out)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    out = np.empty((m, n), dtype)
    return lambda: np.matmul(a, b, out=out)


def numpy_gemm_rate(shapes, dtype, repeats=3, min_seconds=0.05):
    """Best GFLOP/s of numpy running ``shapes`` (a list of (op, m, k, n)) in sequence.

    The sequence is repeated until it has run ``min_seconds`` (small products take
    microseconds); the best of ``repeats`` such timings is kept. Threads: whatever
    the caller's ``threadpool_limits`` allows.
    """
    rng = np.random.default_rng(0)
    calls = [_product(*s, dtype, rng) for s in shapes]
    flops = sum(2 * m * k * n for _, m, k, n in shapes)

    def sequence():
        for call in calls:
            call()

    sequence()  # warm-up: thread start-up, page faults
    start = time.perf_counter()
    sequence()
    once = time.perf_counter() - start
    inner = max(1, int(min_seconds / max(once, 1e-9)))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            sequence()
        best = min(best, (time.perf_counter() - start) / inner)
    return flops / best / 1e9


def square_gemm_rate(size, dtype, repeats=3):
    """Best GFLOP/s of a numpy ``size``^3 product in ``dtype`` (the large-square peak)."""
    return numpy_gemm_rate([("nn", size, size, size)], dtype, repeats=repeats, min_seconds=0)


class RateAbovePeak(RuntimeError):
    """A measured GEMM rate above the measured GEMM peak: the FLOP count is wrong."""


def check_rates(rows, tolerance=0.0):
    """Raise ``RateAbovePeak`` if any row's GEMM rate exceeds its GEMM peak.

    ``rows``: iterable of (label, gflops, peak_gflops). The peak is the best GEMM
    rate measured in the same run, so a rate above it is not a fast kernel but a
    count of work that was not done.
    """
    bad = [(label, rate, peak) for label, rate, peak in rows
           if peak is not None and rate > peak * (1 + tolerance)]
    if bad:
        lines = "\n".join(f"  {label}: {rate:.1f} GFLOP/s > peak {peak:.1f} GFLOP/s"
                          for label, rate, peak in bad)
        raise RateAbovePeak(
            "measured GEMM rate above the GEMM peak measured in the same run - the FLOP "
            "count (benchmarks/flops.py) does not match the work done (or the peak was "
            "measured while other processes held the cores: see 'other load'):\n" + lines)
