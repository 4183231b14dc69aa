"""scikit-learn's callback protocol on every estimator and solver: the task tree,
fitted_estimator snapshots, stopping from a hook, ProgressBar and ScoringMonitor
(directly, in a Pipeline, in GridSearchCV)."""

import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.callback import ProgressBar, ScoringMonitor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fastgd

# (estimator class, solver, subtask name)
CASES = [
    (fastgd.MLPClassifier, "adam", "epoch"),
    (fastgd.MLPClassifier, "lbfgs", "lbfgs-iter"),
    (fastgd.MLPRegressor, "sgd", "epoch"),
    (fastgd.MLPRegressor, "lbfgs", "lbfgs-iter"),
    (fastgd.LogisticRegression, "lbfgs", "lbfgs-iter"),
    (fastgd.LogisticRegression, "adam", "epoch"),
    (fastgd.LogisticRegression, "saga", "lbfgs-iter"),  # L1: proximal Newton
    (fastgd.LogisticRegression, "newton-cholesky", "lbfgs-iter"),
    (fastgd.LinearRegression, "cg", "cg-iter"),
    (fastgd.LinearRegression, "lbfgs", "lbfgs-iter"),
    (fastgd.LinearRegression, "sgd", "epoch"),
]
IDS = [f"{cls.__name__}-{solver}" for cls, solver, _ in CASES]


def _is_classifier(cls):
    return cls in (fastgd.LogisticRegression, fastgd.MLPClassifier)


def _data(cls, n=200, d=6, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d)
    if _is_classifier(cls):
        return X, (X[:, 0] + X[:, 1] + rng.normal(size=n) > 0).astype(int)
    return X, X @ rng.normal(size=d) + 0.3 * rng.normal(size=n)


def _make(cls, solver, **params):
    params.setdefault("random_state", 0)
    if solver == "saga":
        params.setdefault("l1_ratio", 1.0)
        params.setdefault("C", 0.05)
    if cls in (fastgd.MLPClassifier, fastgd.MLPRegressor):
        params.setdefault("hidden_layer_sizes", (6,))
    if cls is fastgd.LinearRegression:
        params.setdefault("tol", 1e-12)
    else:
        params.setdefault("tol", 0.0)
    return cls(solver=solver, **params)


class Recorder:
    """A FitCallback that records every hook call; stops after ``stop_after``
    subtasks when given."""

    def __init__(self, stop_after=None):
        self.stop_after = stop_after
        self.events = []
        self.snapshots = []

    def setup(self, estimator, context):
        self.events.append(("setup", context.task_name))

    def teardown(self, estimator, context):
        self.events.append(("teardown", context.task_name))

    def on_fit_task_begin(self, estimator, context, *, X=None, y=None, metadata=None,
                          fitted_estimator=None):
        self.events.append(("begin", context.task_name))

    def on_fit_task_end(self, estimator, context, *, X=None, y=None, metadata=None,
                        fitted_estimator=None):
        self.events.append(("end", context.task_name))
        if context.task_name != "fit" and fitted_estimator is not None:
            self.snapshots.append(fitted_estimator)
            return self.stop_after is not None and len(self.snapshots) >= self.stop_after
        return False


@pytest.mark.parametrize("cls, solver, task", CASES, ids=IDS)
def test_task_tree_and_snapshots(cls, solver, task):
    X, y = _data(cls)
    rec = Recorder()
    est = _make(cls, solver, max_iter=5).set_callbacks(rec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    names = [name for _, name in rec.events]
    assert rec.events[0] == ("setup", "fit") and rec.events[-1] == ("teardown", "fit")
    assert rec.events[1] == ("begin", "fit") and rec.events[-2] == ("end", "fit")
    assert set(names) <= {"fit", task}
    begins = [e for e in rec.events if e == ("begin", task)]
    ends = [e for e in rec.events if e == ("end", task)]
    assert len(begins) == len(ends)  # every subtask that begins ends
    n_iter = int(np.ravel(est.n_iter_)[0])
    assert len(rec.snapshots) == n_iter >= 1
    # the last snapshot is the fitted model
    np.testing.assert_allclose(rec.snapshots[-1].predict(X), est.predict(X),
                               rtol=1e-12, atol=1e-12)
    # snapshots are copies: they do not move with the training
    if n_iter > 1:
        assert not np.allclose(rec.snapshots[0].predict(X[:50]).astype(float),
                               est.predict(X[:50]).astype(float)) or _is_classifier(cls)


@pytest.mark.parametrize("cls, solver, task",
                         [c for c in CASES if c[2] == "epoch"],
                         ids=[i for i, c in zip(IDS, CASES) if c[2] == "epoch"])
def test_epoch_snapshot_predicts_as_if_training_stopped_there(cls, solver, task):
    X, y = _data(cls)
    rec = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _make(cls, solver, max_iter=6).set_callbacks(rec).fit(X, y)
        for k in (1, 3):
            shorter = _make(cls, solver, max_iter=k).fit(X, y)
            got = rec.snapshots[k - 1]
            if _is_classifier(cls):
                assert_allclose(got.predict_proba(X), shorter.predict_proba(X),
                                rtol=1e-12, atol=1e-14)
            else:
                assert_allclose(got.predict(X), shorter.predict(X), rtol=1e-12,
                                atol=1e-14)


@pytest.mark.parametrize("cls, solver, task", CASES, ids=IDS)
def test_a_hook_returning_true_stops_training(cls, solver, task):
    X, y = _data(cls)
    rec = Recorder(stop_after=2)
    est = _make(cls, solver, max_iter=50).set_callbacks(rec)
    with pytest.warns(ConvergenceWarning, match="callback stopped"):
        est.fit(X, y)
    assert int(np.ravel(est.n_iter_)[0]) == 2
    if solver in ("sgd", "adam"):
        assert len(est.loss_curve_) == 2
    np.testing.assert_allclose(rec.snapshots[-1].predict(X), est.predict(X),
                               rtol=1e-12, atol=1e-12)


def test_no_callbacks_no_context_left_behind():
    X, y = _data(fastgd.MLPClassifier)
    est = _make(fastgd.MLPClassifier, "adam", max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert not hasattr(est, "_callback_fit_ctx")
    est.set_callbacks(Recorder())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert not hasattr(est, "_callback_fit_ctx")
    # partial_fit is no fit task: it runs without the callbacks' tree
    est.partial_fit(X, y)


@pytest.mark.parametrize("where", ["direct", "pipeline", "grid_search"])
def test_progress_bar_on_a_fastgd_mlp(where, capsys):
    """ProgressBar is auto-propagated: set on a Pipeline or GridSearchCV it reaches
    the fastgd estimator inside, as it reaches scikit-learn's."""
    pytest.importorskip("rich")
    X, y = _data(fastgd.MLPClassifier)
    est = _make(fastgd.MLPClassifier, "adam", max_iter=4)
    bar = ProgressBar(max_propagation_depth=None)
    if where == "direct":
        top = est.set_callbacks(bar)
    elif where == "pipeline":
        top = make_pipeline(StandardScaler(), est).set_callbacks(bar)
    else:
        top = GridSearchCV(est, {"alpha": [1e-4, 1e-2]}, cv=2).set_callbacks(bar)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        top.fit(X, y)
    out = capsys.readouterr().out
    assert re.search(r"MLPClassifier - fit", out)
    assert re.search(r"100%", out)


@pytest.mark.parametrize("where", ["direct", "pipeline", "grid_search"])
def test_scoring_monitor(where):
    """ScoringMonitor is not auto-propagated: as with scikit-learn's own
    LogisticRegression it is set on the inner estimator of a meta-estimator."""
    X, y = _data(fastgd.LogisticRegression)
    monitor = ScoringMonitor(scoring="accuracy")
    clf = fastgd.LogisticRegression(max_iter=30).set_callbacks(monitor)
    if where == "direct":
        clf.fit(X, y)
    elif where == "pipeline":
        make_pipeline(StandardScaler(), clf).fit(X, y)
    else:
        GridSearchCV(clf, {"C": [0.1, 1.0]}, cv=2).fit(X, y)
    logs = monitor.get_logs(select="all")
    assert logs
    rows = [row for log in logs for row in log.data]
    scored = [row for row in rows if row["task_name"] == "lbfgs-iter"]
    assert scored and all(0.0 <= row["accuracy"] <= 1.0 for row in scored)


def test_owlqn_iterations_are_subtasks():
    # Sparse X takes OWL-QN (no Hessian): each iteration a subtask, and a hook
    # returning True stops it, as for the other full-batch solvers.
    import scipy.sparse as sp

    X, y = _data(fastgd.LogisticRegression)
    X = sp.csr_matrix(np.where(np.abs(X) > 1.0, X, 0.0))
    rec = Recorder(stop_after=2)
    est = fastgd.LogisticRegression(solver="saga", l1_ratio=1.0, C=0.05, tol=0.0,
                                    max_iter=50).set_callbacks(rec)
    with pytest.warns(ConvergenceWarning, match="callback stopped"):
        est.fit(X, y)
    assert int(est.n_iter_[0]) == len(rec.snapshots) == 2
    assert_allclose(rec.snapshots[-1].predict_proba(X), est.predict_proba(X),
                    rtol=1e-12, atol=1e-12)


def test_callbacks_do_not_change_the_solver():
    # newton-cholesky takes its Newton steps with or without callbacks.
    X, y = _data(fastgd.LogisticRegression)
    plain = fastgd.LogisticRegression(solver="newton-cholesky").fit(X, y)
    watched = fastgd.LogisticRegression(solver="newton-cholesky").set_callbacks(
        Recorder()).fit(X, y)
    assert watched.n_iter_[0] == plain.n_iter_[0]
    assert_allclose(watched.coef_, plain.coef_, rtol=1e-14, atol=1e-14)
