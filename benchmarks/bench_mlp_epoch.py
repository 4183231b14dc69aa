"""Time a fixed number of MLP training epochs: fastgd vs scikit-learn.

Run with::

    python -m pytest benchmarks/bench_mlp_epoch.py --benchmark-only

Data: ``make_classification(n_samples=50_000, n_features=100, n_informative=50,
n_classes=10, random_state=0)``. Model: one hidden layer of 100 ReLU units,
solver adam, ``shuffle=True``, ``random_state=0``. Each timed call is one
``fit`` of ``EPOCHS[batch_size]`` epochs (``tol=0`` and a huge
``n_iter_no_change`` so every run does exactly that many epochs).

Parameters: library (fastgd / sklearn), dtype of X (float32 / float64),
batch_size (200 / 32) and threads (1 / 2). ``threads`` is applied around the
fit as ``threadpoolctl.threadpool_limits(limits=threads)`` (BLAS and OpenMP
pools; fastgd's kernels follow OpenMP's limit) and as
``FASTGD_NUM_THREADS=threads`` (fastgd's own cap, which it reads first), so the
limit holds whichever of the two a given fastgd version honours. fastgd may
still use fewer threads: small batches are not split, and it only starts
threads on idle cores. scikit-learn's only parallelism is BLAS.

Both libraries of one configuration share a benchmark group, so
pytest-benchmark's tables compare them directly; ``benchmarks/conftest.py``
prints the per-epoch medians and the fastgd / scikit-learn ratios at the end.
"""

import os
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from threadpoolctl import threadpool_limits

# Import the compiled kernels before any threadpool_limits call so that the
# OpenMP runtime they link (if any) is loaded and therefore limited too.
import fastgd
import fastgd._kernels  # noqa: F401

N_SAMPLES = 50_000
N_FEATURES = 100
N_CLASSES = 10
HIDDEN = (100,)
# Epochs per timed fit. scikit-learn at batch 32 takes ~0.4 s per epoch.
EPOCHS = {200: 3, 32: 3}
ROUNDS = 5

LIBRARIES = {"fastgd": fastgd.MLPClassifier, "sklearn": SkMLPClassifier}


def make_data():
    """{dtype name: (X, y)} of the benchmark data set."""
    X, y = make_classification(
        n_samples=N_SAMPLES,
        n_features=N_FEATURES,
        n_informative=50,
        n_classes=N_CLASSES,
        random_state=0,
    )
    return {
        "float32": (X.astype(np.float32), y),
        "float64": (X.astype(np.float64), y),
    }


@pytest.fixture(scope="module")
def data():
    return make_data()


def _fit(cls, X, y, batch_size, epochs, threads):
    est = cls(
        hidden_layer_sizes=HIDDEN,
        solver="adam",
        batch_size=batch_size,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=10**9,
        shuffle=True,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with threadpool_limits(limits=threads), fastgd_num_threads(threads):
            est.fit(X, y)
    return est


@contextmanager
def fastgd_num_threads(threads):
    """Set FASTGD_NUM_THREADS (fastgd's own OpenMP thread cap) for the block."""
    old = os.environ.get("FASTGD_NUM_THREADS")
    os.environ["FASTGD_NUM_THREADS"] = str(threads)
    try:
        yield
    finally:
        if old is None:
            del os.environ["FASTGD_NUM_THREADS"]
        else:
            os.environ["FASTGD_NUM_THREADS"] = old


@pytest.mark.parametrize("threads", [1, 2], ids=lambda t: f"threads{t}")
@pytest.mark.parametrize("batch_size", [200, 32], ids=lambda b: f"batch{b}")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("library", ["fastgd", "sklearn"])
def test_fit_epochs(benchmark, data, epoch_times, library, dtype, batch_size, threads):
    X, y = data[dtype]
    epochs = EPOCHS[batch_size]
    config = f"{dtype} batch={batch_size} threads={threads}"
    benchmark.group = f"{epochs} adam epochs, 50000x100, hidden 100: {config}"
    benchmark.extra_info.update(
        library=library, dtype=dtype, batch_size=batch_size, threads=threads, epochs=epochs
    )

    est = benchmark.pedantic(
        _fit,
        args=(LIBRARIES[library], X, y, batch_size, epochs, threads),
        rounds=ROUNDS,
        iterations=1,
        warmup_rounds=1,
    )

    # Every timed fit must have done exactly `epochs` epochs in the input dtype.
    assert est.n_iter_ == epochs
    assert est.coefs_[0].dtype == X.dtype
    assert np.all(np.isfinite(est.loss_curve_))
    benchmark.extra_info["final_loss"] = float(est.loss_curve_[-1])

    if benchmark.stats is not None:  # None under --benchmark-disable
        stats = benchmark.stats.stats
        epoch_times[config, library] = (stats.median / epochs, stats.min / epochs)
