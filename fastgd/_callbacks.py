"""scikit-learn's callback protocol (``sklearn.callback``, experimental in 1.9) for
every estimator and solver.

A fit is the root task "fit"; each epoch of a mini-batch solver (task "epoch") or
iteration of a full-batch one ("lbfgs-iter", "cg-iter") is a subtask. Every subtask
hands the callbacks ``reconstruction_attributes``: the fitted attributes from which
scikit-learn builds a ``fitted_estimator`` that predicts as if training had stopped
there. A hook returning True at the end of a subtask stops training after it - for
L-BFGS too, which scikit-learn cannot yet do.

The root context lives on the estimator as ``_callback_fit_ctx`` (scikit-learn's
name) from ``begin_fit`` until ``_fit_context`` tears it down, so solvers reach it
through the estimator without extra arguments.
"""

import numpy as np


def begin_fit(est, X, y, sample_weight, max_subtasks):
    """Start the root task of a fit (call once, after validating X and y)."""
    ctx = est._init_callback_context(max_subtasks=max_subtasks)
    ctx.call_on_fit_task_begin(estimator=est, X=X, y=y,
                               metadata=_metadata(sample_weight))


def end_fit(est, X, y, sample_weight):
    """End the root task (the estimator is fitted: nothing to reconstruct)."""
    ctx = getattr(est, "_callback_fit_ctx", None)
    if ctx is not None:
        ctx.call_on_fit_task_end(estimator=est, X=X, y=y,
                                 metadata=_metadata(sample_weight),
                                 reconstruction_attributes={})


def _metadata(sample_weight):
    return None if sample_weight is None else {"sample_weight": sample_weight}


class Subtasks:
    """The epochs or iterations of one solver run, as subtasks of the fit.

    ``params`` (an array, or a callable returning one) are the network's flat
    parameters at the start or end of the subtask; ``reconstruction(params)`` maps
    a flat parameter vector (the network's layout) to
    the fitted attributes of a model holding it. Without callbacks (or outside a fit,
    e.g. partial_fit) every method is a no-op, so the solvers call them
    unconditionally at no cost.

    Parameters
    ----------
    est : estimator
    X, y, sample_weight
        The training data, as the hooks receive it.
    task_name : str
        "epoch", "lbfgs-iter" or "cg-iter".
    reconstruction : callable
        params -> dict of fitted attributes.
    """

    def __init__(self, est, X, y, sample_weight, task_name, reconstruction):
        ctx = getattr(est, "_callback_fit_ctx", None)
        self.active = ctx is not None and bool(getattr(est, "_skl_callbacks", None))
        self._ctx, self._est = ctx, est
        self._data = dict(X=X, y=y, metadata=_metadata(sample_weight))
        self._task_name = task_name
        self._reconstruction = reconstruction
        self._open = None

    def _attributes(self, params):
        # ``params`` may be a callable giving them (solvers whose point must first
        # be mapped to the network's layout); copied, as the buffer moves on.
        params = np.array(params() if callable(params) else params, copy=True)
        return lambda: self._reconstruction(params)

    def begin(self, params):
        """A subtask starts from ``params``."""
        if not self.active:
            return
        self._open = self._ctx.subcontext(task_name=self._task_name)
        self._open.call_on_fit_task_begin(
            estimator=self._est, **self._data,
            reconstruction_attributes=self._attributes(params))

    def end(self, params):
        """The open subtask ended at ``params``; True if a callback asks to stop."""
        if not self.active or self._open is None:
            return False
        ctx, self._open = self._open, None
        return bool(ctx.call_on_fit_task_end(
            estimator=self._est, **self._data,
            reconstruction_attributes=self._attributes(params)))

    def close(self):
        """End a subtask that began but never ran (scipy's last callback starts one
        that its loop does not run): an empty task, as scikit-learn does."""
        if self.active and self._open is not None:
            self._open.call_on_fit_task_end(estimator=self._est)
            self._open = None


class _NoSubtasks:
    """Subtasks of a run without callbacks."""

    active = False

    def begin(self, params):
        pass

    def end(self, params):
        return False

    def close(self):
        pass


NO_SUBTASKS = _NoSubtasks()
