"""Helpers shared by the test modules (import them: ``from conftest import ...``)."""

import importlib
import os

import numpy as np
import pytest


def testing_kernels(build="baseline"):
    """fastgd._kernels_testing (or its AVX2 twin for ``build="avx2"``): the kernels
    plus their test-only entry points, built with FASTGD_TEST_KERNELS=1 only.

    Missing, the calling test is skipped - or fails where FASTGD_TEST_KERNELS=1 says
    they were built (.ci/run), so CI never skips these tests silently.
    """
    name = {"baseline": "fastgd._kernels_testing",
            "avx2": "fastgd._kernels_avx2_testing"}[build]
    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("FASTGD_TEST_KERNELS", "0") not in ("", "0"):
            raise
        pytest.skip(f"{name} is not built (build with FASTGD_TEST_KERNELS=1)")


def outputs(est, X):
    """What a fitted estimator says about X: predictions (and probabilities)."""
    out = [est.predict(X)]
    if hasattr(est, "predict_proba"):
        out.append(est.predict_proba(X))
    return out


# fastgd's additions to scikit-learn's parameters and option sets: the comparisons
# with scikit-learn look past them (their defaults keep scikit-learn's behaviour).
ADDED_OPTIONS = {"'cosine'", "'adamw'", "'rmsprop'", "'adagrad'", "'leaky_relu'",
                 "'gelu'", "'silu'"}
ADDED_FITTED_ATTRIBUTES = {"validation_loss_curve_", "best_validation_loss_"}


def sklearn_params(ours, ref):
    """ours.get_params() on ref's parameters, after checking that every other one
    is one of fastgd's additions, at its default."""
    import inspect

    ref_params = ref.get_params()
    defaults = {name: p.default
                for name, p in inspect.signature(type(ours).__init__).parameters.items()}
    params = ours.get_params()
    for name in set(params) - set(ref_params):
        assert params[name] == defaults[name], name
    return {name: value for name, value in params.items() if name in ref_params}


# The four estimators, for tests that run on each of them.
def _four():
    import fastgd

    return [fastgd.LogisticRegression, fastgd.LinearRegression, fastgd.MLPClassifier,
            fastgd.MLPRegressor]


FOUR_ESTIMATORS = _four()
FOUR_IDS = [cls.__name__ for cls in FOUR_ESTIMATORS]


def is_classifier_class(cls):
    return cls.__name__ in ("LogisticRegression", "MLPClassifier")


def small_problem(cls, n=120, d=4, seed=0, n_classes=2):
    """Standard-normal X and a target for ``cls``: labels 0..n_classes-1 driven by
    the first feature, or a noisy linear response."""
    import numpy as np

    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    if is_classifier_class(cls):
        return X, np.digitize(X[:, 0] + 0.5 * rng.normal(size=n),
                              np.linspace(-1, 1, n_classes - 1) if n_classes > 2
                              else [0.0])
    return X, X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)


def seeded(cls, hidden=(5,), **params):
    """``cls(**params)`` with random_state=0 and, for the MLPs, a small hidden layer."""
    params.setdefault("random_state", 0)
    if cls.__name__.startswith("MLP"):
        params.setdefault("hidden_layer_sizes", hidden)
    return cls(**params)


# ------------------------------------------------------------------ fastgd.dask
@pytest.fixture(scope="module")
def client():
    """A real two-worker LocalCluster (process workers, spawned), one per test module."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                       processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture
def local_scheduler(monkeypatch):
    """No distributed client: dask's local scheduler in this process (one shard for
    local SGD)."""
    fdask = pytest.importorskip("fastgd.dask")
    monkeypatch.setattr(fdask, "_current_client", lambda client: None)


def glorot(units, random_state):
    """scikit-learn's (and fastgd's) initial weights for a tanh network."""
    rs = np.random.RandomState(random_state)
    coefs, intercepts = [], []
    for fan_in, fan_out in zip(units[:-1], units[1:]):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        coefs.append(rs.uniform(-bound, bound, (fan_in, fan_out)))
        intercepts.append(rs.uniform(-bound, bound, fan_out))
    return coefs, intercepts
