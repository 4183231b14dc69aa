"""Robustness: divergence, thread safety, pickling and resuming, reproducibility.

* Diverging training never hands back NaN/inf weights: fastgd stops at the first
  epoch whose loss or weights are not finite, puts back the weights from before it
  and raises scikit-learn's ValueError with advice appended.
* Python threads predicting with one model, or fitting separate models, at once get
  exactly what sequential runs get (and leave BLAS's thread limits as they were).
* pickle / joblib round trips keep predictions bit for bit; a model pickled in the
  middle of partial_fit resumes exactly as one that never left memory.
* The same random_state gives bit-identical models run to run, and across thread
  counts: the engine cuts each batch into row slices chosen from the problem's shape
  and the slice cap (``fastgd._threads.slices_for``), and threads only share them.

Estimators are listed once in ``ESTIMATORS``; a new one joins with one line.
"""

import copy
import pickle
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import linear_model as sk_lm
from sklearn import neural_network as sk_nn
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_info

import fastgd
from conftest import outputs
from fastgd import _engine, _threads

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")

_QUICK = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)

# (fastgd class, scikit-learn class, constructor kwargs for a quick seeded fit).
ESTIMATORS = [
    (fastgd.MLPClassifier, sk_nn.MLPClassifier, _QUICK),
    (fastgd.MLPRegressor, sk_nn.MLPRegressor, _QUICK),
    # (parameters the scikit-learn class does not have are dropped by _make)
    (fastgd.LogisticRegression, sk_lm.LogisticRegression,
     dict(max_iter=5, random_state=0)),
    (fastgd.LinearRegression, sk_lm.LinearRegression,
     dict(max_iter=5, random_state=0)),
]


def _accepts(cls, name, value):
    """Whether cls's parameter ``name`` may take the option ``value``."""
    constraints = getattr(cls, "_parameter_constraints", {}).get(name, [])
    return any(value in getattr(c, "options", ()) for c in constraints)


# Pairs whose both sides train by mini-batch sgd/adam (divergence is compared).
STOCHASTIC = [pair for pair in ESTIMATORS
              if all(_accepts(cls, "solver", "sgd") for cls in pair[:2])]
# fastgd estimators with partial_fit (pickling mid-training, threads).
INCREMENTAL = [pair for pair in ESTIMATORS if hasattr(pair[0], "partial_fit")]


def _ids(pairs):
    return [pair[0].__name__ for pair in pairs]


def _make(cls, **params):
    """cls(**params) without the parameters cls does not have (e.g. hidden layers)."""
    known = cls().get_params()
    return cls(**{k: v for k, v in params.items() if k in known})


def _data(classifier, n=120, d=6, seed=0, scale=1.0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    if classifier:
        y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    else:
        y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    return X * scale, y * (1.0 if classifier else scale)




def _assert_identical(a, b):
    """Bit-identical outputs or fitted parameters."""
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert_array_equal(u, v)
        assert np.asarray(u).dtype == np.asarray(v).dtype


def _params(est):
    """Fitted parameters, whatever the estimator keeps them in."""
    if hasattr(est, "coefs_"):
        return list(est.coefs_) + list(est.intercepts_)
    return [np.asarray(est.coef_), np.asarray(est.intercept_)]


def _classes_kw(est, y):
    return {"classes": np.unique(y)} if is_classifier(est) else {}


# ------------------------------------------------------------------ divergence
def _first_non_finite(curve):
    bad = [i for i, v in enumerate(curve) if not np.isfinite(v)]
    return bad[0] if bad else len(curve)


# (solver, learning_rate_init, data scale, dtype): absurd rates, unscaled data.
DIVERGING = [
    ("sgd", 10.0, 1e3, np.float64),
    ("sgd", 10.0, 1e3, np.float32),
    ("adam", 1e200, 1.0, np.float64),
    ("adam", 1e30, 1.0, np.float32),
]


@pytest.mark.parametrize("solver, lr, scale, dtype", DIVERGING)
@pytest.mark.parametrize("pair", STOCHASTIC, ids=_ids(STOCHASTIC))
def test_divergence_stops_keeps_finite_weights_and_advises(pair, solver, lr, scale,
                                                           dtype):
    ours_cls, ref_cls, kwargs = pair[:3]
    X, y = _data(is_classifier(ref_cls()), n=60, d=4, scale=scale)
    X = X.astype(dtype)
    params = {**kwargs, "solver": solver, "learning_rate_init": lr, "max_iter": 30,
              "batch_size": 16}
    ours, ref = _make(ours_cls, **params), _make(ref_cls, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError) as ref_err:
            ref.fit(X, y)
        with pytest.raises(ValueError) as ours_err:
            ours.fit(X, y)
    # scikit-learn's words first (code matching them keeps working), then advice
    message = str(ours_err.value)
    assert message.startswith(str(ref_err.value))
    assert "learning_rate_init" in message and "Scale the data" in message
    # scikit-learn hands back NaN/inf weights; fastgd the last finite ones
    assert not all(np.isfinite(p).all() for p in _params(ref))
    assert all(np.isfinite(p).all() for p in _params(ours))
    assert all(p.dtype == dtype for p in _params(ours))
    # ... from right before the first non-finite epoch, which ended training
    kept = len(ours.loss_curve_)
    assert ours.n_iter_ == kept and np.isfinite(ours.loss_curve_).all()
    assert ours.t_ == kept * X.shape[0]
    assert kept <= _first_non_finite(ref.loss_curve_)
    if dtype == np.float64:
        assert_allclose(ours.loss_curve_, ref.loss_curve_[:kept], rtol=1e-6)
    if kept:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fresh = _make(ours_cls, **{**params, "max_iter": kept}).fit(X, y)
        _assert_identical(_params(ours), _params(fresh))
    assert ours.predict(X).shape == ref.predict(X).shape


@pytest.mark.parametrize("pair", STOCHASTIC, ids=_ids(STOCHASTIC))
def test_partial_fit_after_divergence_can_carry_on(pair):
    """The error leaves a usable model: lower the rate and keep training."""
    ours_cls, _, kwargs = pair[:3]
    X, y = _data(is_classifier(ours_cls()), n=60, d=4)
    est = _make(ours_cls, **{**kwargs, "solver": "adam", "learning_rate_init": 1e200,
                             "batch_size": 16})
    with pytest.raises(ValueError, match="lower learning_rate_init"):
        est.partial_fit(X, y, **_classes_kw(est, y))
    kept = [p.copy() for p in _params(est)]
    assert all(np.isfinite(p).all() for p in kept)
    assert est.n_iter_ == est.t_ == 0 and est.loss_curve_ == []
    # the optimizer (its moments now NaN, its rate 1e200) was dropped, so the new
    # rate applies and training goes on from the kept weights
    est.set_params(learning_rate_init=1e-3)
    for _ in range(3):
        est.partial_fit(X, y)
    assert est.n_iter_ == 1 and len(est.loss_curve_) == 3
    assert np.isfinite(est.loss_curve_).all()
    assert all(np.isfinite(p).all() for p in _params(est))
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    assert not all(np.array_equal(a, b) for a, b in zip(kept, _params(est)))


def test_stop_on_a_rising_loss_warns_divergence_like_sklearn_otherwise():
    """A rate so large that the loss climbs epoch after epoch until n_iter_no_change
    stops it: scikit-learn stops silently; fastgd ends where scikit-learn does (same
    weights) but says it diverged. An ordinary convergent stop does not say so."""
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X[:600])
    y = y[:600]
    params = dict(learning_rate_init=1e3, random_state=0, max_iter=50)
    with pytest.warns(ConvergenceWarning, match="diverged rather than converged"):
        ours = fastgd.MLPClassifier(**params).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = sk_nn.MLPClassifier(**params).fit(X, y)
    assert ours.n_iter_ == ref.n_iter_ < 50
    assert ours.loss_curve_[-1] > ours.loss_curve_[0]
    assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-9)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calm = fastgd.MLPClassifier(hidden_layer_sizes=(20,), tol=1e-2,
                                    random_state=0).fit(X, y)
    assert calm.n_iter_ < calm.max_iter


def test_poisson_with_negative_targets_trains_on_like_sklearn():
    """A poisson loss is NaN when some y < 0 (outside its domain); scikit-learn trains
    on regardless, so does fastgd: only its weights are watched there."""
    X, y = _data(False, n=60, d=4)
    params = dict(loss="poisson", hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    ours = fastgd.MLPRegressor(**params).fit(X, y)
    ref = sk_nn.MLPRegressor(**params).fit(X, y)
    assert np.isnan(ours.loss_curve_).all() and np.isnan(ref.loss_curve_).all()
    assert ours.n_iter_ == ref.n_iter_ == 3
    assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-6)


@pytest.mark.parametrize("pair", ESTIMATORS, ids=_ids(ESTIMATORS))
def test_lbfgs_on_overflowing_data_like_sklearn(pair):
    """Full-batch lbfgs on overflowing data: the MLPs warn (scikit-learn's
    ConvergenceWarning, which says to scale the data) and keep finite weights."""
    ours_cls, ref_cls, kwargs = pair[:3]
    X, y = _data(is_classifier(ref_cls()), n=60, d=4, scale=1e200)
    outcomes = []
    for cls in (ours_cls, ref_cls):
        est = _make(cls, **{**kwargs, "solver": "lbfgs"})
        with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
            warnings.simplefilter("always")
            try:
                est.fit(X, y)
                error = None
            except ValueError as exc:
                error = exc
        scaling = any(issubclass(w.category, ConvergenceWarning)
                      and "scale the data" in str(w.message) for w in caught)
        outcomes.append((type(error), scaling))
        if cls is ours_cls and error is None:
            assert all(np.isfinite(p).all() for p in _params(est))
    assert outcomes[0] == outcomes[1]


# --------------------------------------------------------------- thread safety
def _big(classifier, n=2000, d=100, seed=0):
    return _data(classifier, n=n, d=d, seed=seed)


def _run_threads(fns, n_workers=4):
    barrier = threading.Barrier(min(n_workers, len(fns)))

    def call(fn):
        try:
            barrier.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass
        return fn()

    with ThreadPoolExecutor(n_workers) as pool:
        return list(pool.map(call, fns))


@pytest.fixture
def two_threads(monkeypatch):
    """Let the engine use 2 OpenMP threads whatever the load on the machine."""
    monkeypatch.setenv("FASTGD_NUM_THREADS", "2")
    monkeypatch.setattr(_threads, "idle_cores", lambda: 2)


def _blas_limits():
    return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info()
                  if i["user_api"] == "blas")


@pytest.mark.parametrize("pair", ESTIMATORS, ids=_ids(ESTIMATORS))
def test_threads_predicting_with_one_model(pair, two_threads):
    ours_cls, _, kwargs = pair[:3]
    X, y = _big(is_classifier(ours_cls()), n=1500, d=50)
    est = _make(ours_cls, **{**kwargs, "max_iter": 2, "hidden_layer_sizes": (64,)})
    est.fit(X, y)
    X_many = np.tile(X, (8, 1))  # several prediction blocks: OpenMP threads too
    chunks = [X_many, X[::3], sp.csr_matrix(X[:500]), X[:7]]
    expected = [outputs(est, c) for c in chunks]
    before = _blas_limits()
    got = _run_threads([lambda c=c: outputs(est, c) for c in chunks * 3], n_workers=6)
    for e, g in zip(expected * 3, got):
        _assert_identical(e, g)
    assert _blas_limits() == before


@pytest.mark.parametrize("pair", ESTIMATORS, ids=_ids(ESTIMATORS))
def test_threads_fitting_separate_models(pair, two_threads):
    ours_cls, _, kwargs = pair[:3]
    X, y = _big(is_classifier(ours_cls()), n=800, d=60)
    configs = [dict(random_state=s, max_iter=2, hidden_layer_sizes=(48,))
               for s in range(3)]
    if "solver" in ours_cls().get_params():
        configs.append(dict(random_state=0, max_iter=3, solver="lbfgs"))

    def fit(cfg):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return _make(ours_cls, **{**kwargs, **cfg}).fit(X, y)

    sequential = [fit(cfg) for cfg in configs]
    before = _blas_limits()
    concurrent = _run_threads([lambda cfg=cfg: fit(cfg) for cfg in configs])
    for s, c in zip(sequential, concurrent):
        _assert_identical(_params(s), _params(c))
        _assert_identical(outputs(s, X[:50]), outputs(c, X[:50]))
    # the BLAS limit the engine sets while its threads run was undone, even though
    # the fits overlapped (the last one out restores it)
    assert _blas_limits() == before


@pytest.mark.parametrize("pair", INCREMENTAL, ids=_ids(INCREMENTAL))
def test_threads_partial_fitting_separate_models(pair, two_threads):
    ours_cls, _, kwargs = pair[:3]
    X, y = _big(is_classifier(ours_cls()), n=600, d=60)

    def train(seed):
        est = _make(ours_cls, **{**kwargs, "random_state": seed, "solver": "adam"})
        for i in range(3):
            est.partial_fit(X[i::3], y[i::3], **_classes_kw(est, y))
        return est

    sequential = [train(s) for s in range(4)]
    concurrent = _run_threads([lambda s=s: train(s) for s in range(4)])
    for s, c in zip(sequential, concurrent):
        _assert_identical(_params(s), _params(c))


# --------------------------------------------------------------------- pickling
SOLVERS = ["adam", "sgd", "lbfgs"]


def _fit_for_pickle(pair, solver, dtype, sparse):
    ours_cls, _, kwargs = pair[:3]
    X, y = _data(is_classifier(ours_cls()))
    X = X.astype(dtype)
    if sparse:
        X = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0))
    return _make(ours_cls, **{**kwargs, "solver": solver}).fit(X, y), X


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("pair", ESTIMATORS, ids=_ids(ESTIMATORS))
def test_pickle_and_joblib_round_trips_keep_predictions(pair, solver, dtype, sparse,
                                                        tmp_path):
    est, X = _fit_for_pickle(pair, solver, dtype, sparse)
    expected = outputs(est, X)
    copies = [pickle.loads(pickle.dumps(est)), copy.deepcopy(est)]
    joblib.dump(est, tmp_path / "model.joblib")
    copies.append(joblib.load(tmp_path / "model.joblib"))
    copies.append(joblib.load(tmp_path / "model.joblib", mmap_mode="r"))
    for other in copies:
        _assert_identical(outputs(other, X), expected)
        _assert_identical(_params(other), _params(est))
    assert copies[-1].predict(X[:1]).shape == expected[0][:1].shape


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("pair", INCREMENTAL, ids=_ids(INCREMENTAL))
def test_unpickled_model_resumes_partial_fit_identically(pair, solver, dtype):
    ours_cls, _, kwargs = pair[:3]
    X, y = _data(is_classifier(ours_cls()), n=150)
    X = X.astype(dtype)
    params = {**kwargs, "solver": solver, "learning_rate": "invscaling",
              "learning_rate_init": 0.05}
    chunks = [slice(i, None, 5) for i in range(5)]

    stay = _make(ours_cls, **params)
    for c in chunks[:2]:
        stay.partial_fit(X[c], y[c], **_classes_kw(stay, y))
    travel = pickle.loads(pickle.dumps(stay))
    for c in chunks[2:]:
        stay.partial_fit(X[c], y[c])
        travel.partial_fit(X[c], y[c])
    _assert_identical(_params(stay), _params(travel))
    _assert_identical(outputs(stay, X), outputs(travel, X))
    assert getattr(stay, "loss_curve_", None) == getattr(travel, "loss_curve_", None)
    assert getattr(stay, "t_", None) == getattr(travel, "t_", None)


@pytest.mark.parametrize("pair", INCREMENTAL, ids=_ids(INCREMENTAL))
def test_unpickled_model_warm_starts_identically_after_early_stopping(pair):
    """After early stopping, scikit-learn's coefs_ ARE its best-weights arrays (fastgd
    matches that aliasing); a pickle round trip must keep it."""
    ours_cls, _, kwargs = pair[:3]
    X, y = _data(is_classifier(ours_cls()), n=150)
    stay = _make(ours_cls, **{**kwargs, "early_stopping": True, "warm_start": True,
                              "n_iter_no_change": 2, "max_iter": 6}).fit(X, y)
    travel = pickle.loads(pickle.dumps(stay))
    stay.fit(X, y)
    travel.fit(X, y)
    _assert_identical(_params(stay), _params(travel))
    assert (getattr(stay, "validation_scores_", None)
            == getattr(travel, "validation_scores_", None))


@pytest.mark.parametrize("pair", STOCHASTIC, ids=_ids(STOCHASTIC))
def test_joblib_mmap_loaded_model_partial_fit_like_sklearn(pair, tmp_path):
    """A model loaded with mmap_mode="r" predicts; continuing to train it fails in
    scikit-learn (its optimizer updates the read-only arrays in place), and fastgd
    fails the same way (its optimizer state is read-only too) - matched, not fixed."""
    ours_cls, ref_cls, kwargs = pair[:3]
    X, y = _data(is_classifier(ref_cls()))
    for cls in (ours_cls, ref_cls):
        est = _make(cls, **kwargs)
        est.partial_fit(X, y, **_classes_kw(est, y))
        joblib.dump(est, tmp_path / "m.joblib")
        loaded = joblib.load(tmp_path / "m.joblib", mmap_mode="r")
        _assert_identical(outputs(loaded, X), outputs(est, X))
        with pytest.raises(ValueError, match="read-only"):
            loaded.partial_fit(X, y)


# ------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("pair", ESTIMATORS, ids=_ids(ESTIMATORS))
def test_same_random_state_same_model(pair, solver):
    ours_cls, _, kwargs = pair[:3]
    X, y = _data(is_classifier(ours_cls()))
    a = _make(ours_cls, **{**kwargs, "solver": solver}).fit(X, y)
    b = clone(a).fit(X, y)
    c = clone(a).fit(sp.csr_matrix(X), y)
    _assert_identical(_params(a), _params(b))
    _assert_identical(outputs(a, X), outputs(b, X))
    # sparse input goes through other kernels' code: same model up to rounding
    for u, v in zip(_params(a), _params(c)):
        assert_allclose(u, v, rtol=1e-9, atol=1e-12)


def _fit_with_threads(cls, params, X, y, n_threads, monkeypatch):
    """Fit with FASTGD_NUM_THREADS=n_threads and at most 4 slices whatever the
    machine, recording the thread counts used and the slice counts of the epochs
    and full-batch gradients."""
    used, slices = [], []
    real = {name: getattr(_engine._kernels, name)
            for name in ("train_epoch", "loss_gradient", "forward")}

    def spy(name):
        def call(*args, **options):
            used.append(args[-1])  # every kernel takes n_threads last (positionally)
            if name != "forward":  # ... and the others n_slices before it
                slices.append(args[-2])
            return real[name](*args, **options)
        return call

    with monkeypatch.context() as m:
        m.setenv("FASTGD_NUM_THREADS", str(n_threads))
        m.setenv("FASTGD_MAX_SLICES", "4")
        m.setattr(_threads, "idle_cores", lambda: n_threads)
        for name in real:
            m.setattr(_engine._kernels, name, spy(name))
        est = _make(cls, **params).fit(X, y)
        out = outputs(est, X)
    return est, out, set(used), set(slices)


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("pair", ESTIMATORS, ids=_ids(ESTIMATORS))
def test_bit_identical_across_thread_counts(pair, solver, monkeypatch):
    ours_cls, _, kwargs = pair[:3]
    mlp = "hidden_layer_sizes" in ours_cls().get_params()
    # 2000 x 100, hidden 100, batch 200: several slices per batch.  The full-batch
    # gradient (lbfgs) and predict split into blocks first, so lbfgs gets more rows;
    # a linear model does ~100x less work per row, so its batches need more rows.
    X, y = _big(is_classifier(ours_cls()),
                n=8000 if solver == "lbfgs" or not mlp else 2000)
    params = {**kwargs, "hidden_layer_sizes": (100,), "batch_size": 200 if mlp else 2000,
              "max_iter": 2 if solver != "lbfgs" else 4, "solver": solver}
    one, out_one, used_one, slices_one = _fit_with_threads(ours_cls, params, X, y, 1,
                                                           monkeypatch)
    two, out_two, used_two, slices_two = _fit_with_threads(ours_cls, params, X, y, 2,
                                                           monkeypatch)
    # Several slices, so both threads had work; the same slices on 1 and 2 threads.
    assert max(slices_two) > 1 and slices_one == slices_two
    assert 2 in used_two
    assert used_one == {1}
    _assert_identical(_params(one), _params(two))
    _assert_identical(out_one, out_two)
    if hasattr(one, "loss_curve_"):
        assert one.loss_curve_ == two.loss_curve_
