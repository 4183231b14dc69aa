"""Time ``predict_proba`` and one ``partial_fit`` epoch: fastgd vs scikit-learn.

Run with::

    python -m pytest benchmarks/bench_mlp_predict.py --benchmark-only

Same data and model as ``bench_mlp_epoch.py`` (50,000 x 100, 10 classes, one
hidden layer of 100 ReLU units, adam, float32 and float64, 1 and 2 threads).

- ``test_predict_proba``: the class probabilities of all 50,000 rows from a
  model fitted for 2 epochs (the same weights for both libraries up to
  rounding: fastgd trains exactly as scikit-learn does).
- ``test_partial_fit_epoch``: one ``partial_fit`` call over all 50,000 rows
  (batch 200) on a model primed by a first ``partial_fit``; each round starts
  from a copy of that model, so every round does the same work.

Both libraries share a benchmark group per configuration, and ``conftest.py``
prints the medians and the ratio at the end (one call = one "epoch" there).
"""

import copy
import warnings

import numpy as np
import pytest
from bench_mlp_epoch import LIBRARIES, ROUNDS, _fit, fastgd_num_threads, make_data
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

CLASSES = np.arange(10)


@pytest.fixture(scope="module")
def data():
    return make_data()


def _time(benchmark, epoch_times, label, library, func, setup=None):
    benchmark.group = label
    if setup is None:
        benchmark.pedantic(func, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    else:
        benchmark.pedantic(func, setup=setup, rounds=ROUNDS, warmup_rounds=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        stats = benchmark.stats.stats
        epoch_times[label, library] = (stats.median, stats.min)


@pytest.mark.parametrize("threads", [1, 2], ids=lambda t: f"threads{t}")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_predict_proba(benchmark, data, epoch_times, library, dtype, threads):
    X, y = data[dtype]
    est = _fit(LIBRARIES[library], X, y, 200, 2, threads)

    def predict():
        with threadpool_limits(limits=threads), fastgd_num_threads(threads):
            return est.predict_proba(X)

    _time(benchmark, epoch_times, f"predict_proba {dtype} threads{threads}", library,
          predict)
    proba = predict()
    assert proba.shape == (len(X), 10) and proba.dtype == X.dtype
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-4)


@pytest.mark.parametrize("threads", [1, 2], ids=lambda t: f"threads{t}")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_partial_fit_epoch(benchmark, data, epoch_times, library, dtype, threads):
    X, y = data[dtype]
    primed = LIBRARIES[library](hidden_layer_sizes=(100,), solver="adam", batch_size=200,
                                random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        primed.partial_fit(X[:1000], y[:1000], classes=CLASSES)

    def setup():
        return (copy.deepcopy(primed),), {}

    def one_epoch(est):
        with threadpool_limits(limits=threads), fastgd_num_threads(threads):
            est.partial_fit(X, y)
        assert est.t_ == 1000 + len(X)  # samples seen: the primer's and one epoch

    _time(benchmark, epoch_times, f"partial_fit epoch {dtype} threads{threads}", library,
          one_epoch, setup)
