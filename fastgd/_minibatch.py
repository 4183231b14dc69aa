"""The mini-batch layer shared by all four estimators.

* ``train_epochs``: the epoch driver. It follows scikit-learn 1.9's
  ``BaseMultilayerPerceptron._fit_stochastic`` (a shuffle per epoch, one compiled
  epoch per ``Network.train_epoch`` call, ``tol`` / ``n_iter_no_change`` on the
  training loss or a held-out score, the learning-rate schedule, the
  ConvergenceWarning, Ctrl-C), undoes a divergent epoch, and returns an ``Outcome``
  instead of writing the estimator's attributes. Python runs here once per epoch,
  never per mini-batch.
* ``Progress``: the record (loss curve, samples seen, best loss / score) carried
  between calls; ``optimizer_for``: when an optimizer is new and when it is reused;
  ``validation_split``: the early-stopping split; the shared parameter constraints
  and docs.

The estimators (``_mlp.py``, ``_linear.py``) are the only places that set fitted
attributes: from an Outcome, after every run - a divergent one included, so the
model always holds finite weights that predict.
"""

import functools
import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, Options, StrOptions

from sklearn.utils.validation import _check_sample_weight, validate_data

from fastgd._callbacks import NO_SUBTASKS, Subtasks, begin_fit
from fastgd._docs import DocLinkMixin
from fastgd._export import to_sklearn
from fastgd._engine import KernelData, Optimizer, Penalty, check_finite
from fastgd._threads import holding_single_threaded_blas

_STOCHASTIC_SOLVERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
# Their names, for messages.
_STOCHASTIC_NAMES = ", ".join(map(repr, _STOCHASTIC_SOLVERS))

# scikit-learn's words, kept as the start of ours so that code matching them still works.
NON_FINITE_MESSAGE = (
    "Solver produced non-finite parameter weights. The input data may contain large"
    " values and need to be preprocessed."
)


# The mini-batch parameters every estimator shares, named and bounded as in
# scikit-learn's MLPs.
MINIBATCH_CONSTRAINTS = {
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate": [StrOptions({"constant", "invscaling", "adaptive", "cosine"})],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "power_t": [Interval(Real, 0, None, closed="left")],
    "shuffle": ["boolean"],
    "momentum": [Interval(Real, 0, 1, closed="both")],
    "nesterovs_momentum": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "beta_1": [Interval(Real, 0, 1, closed="left")],
    "beta_2": [Interval(Real, 0, 1, closed="left")],
    "epsilon": [Interval(Real, 0, None, closed="neither")],
    "n_iter_no_change": [
        Interval(Integral, 1, None, closed="left"),
        Options(Real, {np.inf}),
    ],
    # fastgd's additions (EXTRA_PARAMETERS)
    "early_stopping_metric": [StrOptions({"score", "loss"})],
    "max_time": [Interval(Real, 0, None, closed="neither"), None],
    "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
    "matmul_precision": [StrOptions({"highest", "bfloat16"})],
    "lazy_sparse_updates": ["boolean"],
}

# Training controls scikit-learn does not have, keyword-only after its parameters in
# every estimator; their defaults keep scikit-learn's behaviour and numbers.
EXTRA_PARAMETERS = {"early_stopping_metric": "score", "max_time": None,
                    "warmup_epochs": 0, "weight_decay": 0.0, "max_grad_norm": None,
                    "matmul_precision": "highest",
                    "lazy_sparse_updates": False}

EXTRA_PARAMETERS_DOC = """
    early_stopping_metric : {'score', 'loss'}, default='score'
        What early stopping watches on the validation set: its score (scikit-learn's
        rule) or its loss (the training loss without the penalty, lower is better;
        ``best_validation_loss_``). ``validation_loss_curve_`` is recorded in both
        cases.
    max_time : float or None, default=None
        Time budget in seconds ('sgd' / 'adam'): training stops after the epoch in
        which it runs out, with a ConvergenceWarning.
    warmup_epochs : int, default=0
        Linear warm-up (every mini-batch solver): epoch e (from 0) uses the
        schedule's rate times min(1, (e + 1) / warmup_epochs).
    weight_decay : float, default=0.0
        Decoupled weight decay of solver='adamw' (torch's AdamW): before each step
        the coefficients, not the intercepts, are multiplied by
        ``1 - rate * weight_decay``. Independent of the L2 penalty, which enters
        the gradient as in scikit-learn.
    max_grad_norm : float or None, default=None
        Every mini-batch solver: before each update the whole gradient (all
        coefficients and intercepts, the L2 term included) is scaled by
        ``min(1, max_grad_norm / (norm + 1e-6))``, its global L2 norm clipped as
        ``torch.nn.utils.clip_grad_norm_`` does. None: no clipping.
    matmul_precision : {'highest', 'bfloat16'}, default='highest'
        The matrix products of the mini-batch epochs. 'highest': in the data's
        dtype. 'bfloat16' (float32 X only, else a ValueError; mini-batch solvers
        only): the forward, input-gradient and weight-gradient products take
        inputs rounded to bfloat16 (to nearest even) and sum in float32, as
        ``torch.autocast("cpu", dtype=torch.bfloat16)`` does; the weights, the
        optimizer state, the element-wise work and the loss stay float32. It
        runs on AMX tiles or AVX512-BF16 (``fastgd._build.matmul_path()`` says
        which); on a CPU with neither the products stay float32, with a
        warning. A sparse X's first layer, ``predict`` and the loss of early
        stopping's validation set compute in float32.
    lazy_sparse_updates : bool, default=False
        Sparse X with a mini-batch solver: each step updates only the first
        layer's weight rows (and their optimizer state) of the features stored in
        the batch, as ``torch.optim.SparseAdam`` does, so a step costs the batch's
        nonzeros instead of every feature. This is an approximation, opt-in: the
        exact (default) step also moves the other rows, by their L2 term and their
        moments. Rows of absent features keep their weights and state until a
        batch holds them; their L2 term applies only then. Dense X: no effect.
        Not with ``max_grad_norm``.
"""


def clip_batch_size(batch_size, n_samples):
    """scikit-learn's rule: "auto" is min(200, n); larger sizes warn and are clipped."""
    if batch_size == "auto":
        return min(200, n_samples)
    if batch_size > n_samples:
        warnings.warn(
            "Got `batch_size` less than 1 or larger than "
            "sample size. It is going to be clipped"
        )
    return int(np.clip(batch_size, 1, n_samples))


class Progress:
    """The training record scikit-learn's MLPs keep between calls.

    ``loss_curve``, ``t`` (samples seen), ``best_loss``, ``validation_scores``,
    ``best_validation_score`` and ``no_improvement_count`` carry over to the next
    partial_fit or warm-started fit; ``fresh`` starts them as scikit-learn's
    ``_initialize`` does, ``of`` reads them from a fitted (or hand-built) estimator.
    """

    _ATTRIBUTES = {"loss_curve": "loss_curve_", "t": "t_", "best_loss": "best_loss_",
                   "validation_scores": "validation_scores_",
                   "best_validation_score": "best_validation_score_",
                   "no_improvement_count": "_no_improvement_count",
                   # fastgd's additions, present only with a validation set
                   "validation_loss_curve": "validation_loss_curve_",
                   "best_validation_loss": "best_validation_loss_"}
    _VALIDATION_ONLY = ("validation_loss_curve", "best_validation_loss")

    def __init__(self, early_stopping):
        self.loss_curve = []
        self.t = 0
        self.no_improvement_count = 0
        if early_stopping:
            self.validation_scores = []
            self.best_validation_score = -np.inf
            self.best_loss = None
            self.validation_loss_curve = []
            self.best_validation_loss = np.inf
        else:
            self.validation_scores = None
            self.best_validation_score = None
            self.best_loss = np.inf
            self.validation_loss_curve = None
            self.best_validation_loss = None

    @classmethod
    def of(cls, est, early_stopping):
        """The estimator's record; what it lacks (a model whose weights were set by
        hand, or one fitted by lbfgs) starts fresh, as scikit-learn would need it."""
        progress = cls(early_stopping)
        for name, attribute in cls._ATTRIBUTES.items():
            value = getattr(est, attribute, None)
            if value is not None:
                setattr(progress, name, list(value) if isinstance(value, list) else value)
        if early_stopping:
            if progress.best_validation_score is None:
                progress.best_validation_score = -np.inf
                progress.validation_scores = progress.validation_scores or []
            if progress.best_validation_loss is None:
                progress.best_validation_loss = np.inf
                progress.validation_loss_curve = progress.validation_loss_curve or []
        if not early_stopping and progress.best_loss is None:
            progress.best_loss = np.inf
        return progress

    def attributes(self):
        """{fitted attribute name: value} for the estimator to set."""
        return {attribute: getattr(self, name)
                for name, attribute in self._ATTRIBUTES.items()
                if not (name in self._VALIDATION_ONLY and getattr(self, name) is None)}


class Outcome:
    """What a run of epochs did.

    Attributes
    ----------
    n_iter : int
        Epochs completed (a diverged or interrupted epoch does not count).
    loss : float or None
        The loss of the last completed epoch.
    progress : Progress
        The updated record.
    stop : str
        "converged" (tol / n_iter_no_change), "max_iter", "incremental" (the one
        epoch of partial_fit), "interrupted" (Ctrl-C) or "diverged".
    restored_best : bool
        The parameters are those of the best held-out score, not of the last epoch.
    message : str or None
        For "diverged": what happened and what to do.
    """

    def __init__(self, progress):
        self.n_iter = 0
        self.loss = None
        self.progress = progress
        self.stop = "max_iter"
        self.restored_best = False
        self.message = None


class StoppingRules:
    """The estimator's parameters that run and stop the epochs (see train_epochs)."""

    def __init__(self, est, batch_size):
        self.batch_size = batch_size
        self.max_iter = est.max_iter
        self.shuffle = est.shuffle
        self.tol = est.tol
        self.n_iter_no_change = est.n_iter_no_change
        self.verbose = est.verbose
        self.max_time = getattr(est, "max_time", None)
        self.metric = getattr(est, "early_stopping_metric", "score")
        self.matmul_precision = est.matmul_precision


@holding_single_threaded_blas
def train_epochs(network, data, loss, penalty, optimizer, rules, *, random_state,
                 progress, incremental, validation=None, best=None, watch_loss=True,
                 subtasks=None):
    """Train epochs of compiled mini-batches until a stopping rule fires; return an
    Outcome (see run_epochs).

    scikit-learn 1.9's ``_fit_stochastic`` epoch: a shuffle from ``random_state``,
    then ``network.train_epoch`` over the shuffled rows.

    Parameters
    ----------
    network : fastgd._engine.Network
        Trained in place; on return it holds the parameters to keep.
    data : fastgd._engine.KernelData
        Training rows, targets and weights.
    loss : str
        Loss name for the kernels.
    penalty : float or fastgd._engine.Penalty
        The MLP's alpha, or a linear model's per-sample penalty.
    optimizer : fastgd._engine.Optimizer
        Its state carries over between calls (partial_fit).
    rules : StoppingRules
        batch_size (already clipped), max_iter, shuffle, tol, n_iter_no_change,
        verbose, max_time (seconds or None: stop after the epoch in which it runs
        out) and metric ("score" or "loss": what early stopping watches).
    random_state : numpy.random.RandomState
        Draws the shuffles.
    progress, incremental, validation, best, watch_loss, subtasks
        As for run_epochs.
    """
    sample_idx = np.arange(data.n_samples, dtype=int)

    def epoch():
        if rules.shuffle:
            # sklearn.utils.shuffle's draws (it shuffles an arange and indexes
            # with it: the same swaps), without its ~1 ms of input checks
            random_state.shuffle(sample_idx)
        # Dropout's masks: a fresh key per epoch from the same stream (drawn only
        # with dropout, so the shuffles stay scikit-learn's otherwise).
        seed = (int(random_state.randint(np.iinfo(np.int64).max, dtype=np.int64))
                if network.dropout > 0 else 0)
        return network.train_epoch(data, loss, penalty, optimizer, sample_idx,
                                   rules.batch_size, dropout_seed=seed,
                                   matmul_precision=rules.matmul_precision)

    return run_epochs(network, epoch, optimizer, rules, n_samples=data.n_samples,
                      progress=progress, incremental=incremental, validation=validation,
                      best=best, watch_loss=watch_loss, subtasks=subtasks)


def run_epochs(network, epoch, optimizer, rules, *, n_samples, progress, incremental,
               validation=None, best=None, watch_loss=True, subtasks=None):
    """Run ``epoch()`` until a stopping rule fires; return an Outcome.

    scikit-learn 1.9's ``_fit_stochastic`` loop: the loss curve, ``tol`` /
    ``n_iter_no_change`` on the training loss or the held-out score, the
    learning-rate schedule, the ConvergenceWarning at max_iter and Ctrl-C. It
    writes nothing but ``network``, ``optimizer`` and ``progress``: the estimator
    sets its fitted attributes from the Outcome. The epoch of the plain estimators
    (train_epochs) and fastgd.dask's local SGD epoch share it.

    Parameters
    ----------
    network : object with ``params`` (ndarray) and ``dropout``
        Trained in place by ``epoch``; on return it holds the parameters to keep.
    epoch : callable
        Trains one epoch in place and returns its loss summed over the rows.
    optimizer : fastgd._engine.Optimizer
        Its state carries over between calls (partial_fit).
    rules : StoppingRules
        The stopping rules (batch_size and shuffle are the epoch's).
    n_samples : int
        Rows per epoch: the loss curve is ``epoch() / n_samples``.
    progress : Progress
        The record to continue (updated in place).
    incremental : bool
        partial_fit: one epoch, no ConvergenceWarning.
    validation : callable or None
        Early stopping: returns the held-out (score, loss) of the network's
        parameters.
    best : ndarray or None
        Early stopping: the parameters to restore if no epoch beats the record's
        best validation score (or loss); None means the last ones.
    watch_loss : bool
        Treat a non-finite epoch loss as divergence (False where the loss is
        undefined by design, e.g. a Poisson loss with negative targets).
    subtasks : fastgd._callbacks.Subtasks or None
        Each epoch is a callback subtask; a callback returning True at its end
        stops training there (stop="callback", with a ConvergenceWarning).

    Notes
    -----
    A divergent epoch (non-finite parameters or loss) is undone - the parameters go
    back to where the epoch started; the optimizer's state is left as it is (its
    moments may be non-finite: the caller drops it) - and training stops with
    ``stop="diverged"``. With early stopping it then counts as a NaN validation score
    (scikit-learn's fix for its issue 29504), and the best parameters are restored.
    """
    outcome = Outcome(progress)
    before = np.empty_like(network.params)
    tol, patience, verbose = rules.tol, rules.n_iter_no_change, rules.verbose
    if subtasks is None:
        subtasks = NO_SUBTASKS
    start = time.perf_counter()
    try:
        for _ in range(rules.max_iter):
            np.copyto(before, network.params)
            subtasks.begin(network.params)
            loss_sum = epoch()
            if not np.isfinite(network.params).all() or (
                watch_loss and not np.isfinite(loss_sum)
            ):
                network.params[:] = before
                subtasks.close()
                outcome.stop = "diverged"
                outcome.message = (
                    NON_FINITE_MESSAGE + " Training diverged in epoch %d (loss = %s), "
                    "so it stopped there and kept the weights from before that "
                    "epoch. Scale the data (e.g. with "
                    "sklearn.preprocessing.StandardScaler) or lower "
                    "learning_rate_init (now %g)."
                    % (outcome.n_iter + 1, loss_sum / n_samples,
                       optimizer.learning_rate_init)
                )
                if validation is not None:
                    progress.validation_scores.append(np.nan)
                    progress.validation_loss_curve.append(np.nan)
                break
            outcome.n_iter += 1
            outcome.loss = loss_sum / n_samples
            progress.t += n_samples
            progress.loss_curve.append(outcome.loss)
            if verbose:
                print("Iteration %d, loss = %.8f" % (outcome.n_iter, outcome.loss))

            if validation is not None:
                if _count_validation(progress, validation, rules):
                    best = network.params.copy()
            stop_requested = subtasks.end(network.params)
            if validation is None:
                if progress.loss_curve[-1] > progress.best_loss - tol:
                    progress.no_improvement_count += 1
                else:
                    progress.no_improvement_count = 0
                progress.best_loss = min(progress.best_loss, progress.loss_curve[-1])
            optimizer.iteration_ends(progress.t, outcome.n_iter)

            if progress.no_improvement_count > patience:
                if validation is not None:
                    msg = ("Validation %s did not improve more than tol=%f for %d "
                           "consecutive epochs." % (rules.metric, tol, patience))
                else:
                    msg = ("Training loss did not improve more than tol=%f for %d "
                           "consecutive epochs." % (tol, patience))
                if optimizer.trigger_stopping(msg, verbose):
                    outcome.stop = "converged"
                    if validation is None:
                        _warn_if_rising(progress.loss_curve, optimizer)
                    break
                progress.no_improvement_count = 0

            if stop_requested and outcome.n_iter < rules.max_iter:
                outcome.stop = "callback"
                if not incremental:
                    warnings.warn(
                        "Stochastic Optimizer: a callback stopped training after %d "
                        "epoch(s); the optimization hasn't converged yet."
                        % outcome.n_iter, ConvergenceWarning)
                break
            if incremental:
                outcome.stop = "incremental"
                break
            if rules.max_time is not None and (
                    time.perf_counter() - start >= rules.max_time
                    and outcome.n_iter < rules.max_iter):
                outcome.stop = "max_time"
                warnings.warn(
                    "Stochastic Optimizer: max_time=%g s ran out after %d epoch(s); "
                    "the optimization hasn't converged yet."
                    % (rules.max_time, outcome.n_iter), ConvergenceWarning)
                break
            if outcome.n_iter == rules.max_iter:
                warnings.warn(
                    "Stochastic Optimizer: Maximum iterations (%d) "
                    "reached and the optimization hasn't converged yet."
                    % rules.max_iter,
                    ConvergenceWarning,
                )
    except KeyboardInterrupt:
        subtasks.close()
        warnings.warn("Training interrupted by user.")
        outcome.stop = "interrupted"
    if validation is not None and best is not None:
        network.params[:] = best
        outcome.restored_best = True
    return outcome


def _warn_if_rising(loss_curve, optimizer):
    """A stop for want of improvement after the training loss rose from the first
    epoch to the last is divergence, not convergence (scikit-learn stops silently)."""
    if len(loss_curve) > 1 and loss_curve[-1] > loss_curve[0]:
        warnings.warn(
            "Stochastic Optimizer: training stopped because the loss did not improve, "
            "but it rose from %g after epoch 1 to %g after epoch %d: the optimization "
            "diverged rather than converged. Lower learning_rate_init (now %g) or "
            "scale the data." % (loss_curve[0], loss_curve[-1], len(loss_curve),
                                 optimizer.learning_rate_init),
            ConvergenceWarning)


def _count_validation(progress, validation, rules):
    """Record the held-out score and loss; count epochs without improvement of the
    watched one (scikit-learn's _update_no_improvement_count for the score). True
    when the watched one reached a new best."""
    score, loss = validation()
    progress.validation_scores.append(score)
    progress.validation_loss_curve.append(loss)
    if rules.verbose:
        print("Validation score: %f" % score)
    if rules.metric == "score":
        stalled = score < progress.best_validation_score + rules.tol
        improved = score > progress.best_validation_score
    else:
        stalled = loss > progress.best_validation_loss - rules.tol
        improved = loss < progress.best_validation_loss
    progress.no_improvement_count = progress.no_improvement_count + 1 if stalled else 0
    progress.best_validation_score = max(progress.best_validation_score, score)
    progress.best_validation_loss = min(progress.best_validation_loss, loss)
    return improved


def validation_split(X, Y, sample_weight, *, validation_fraction, random_state,
                     stratify=None, extra=()):
    """scikit-learn's early-stopping split (same call, same draws).

    Returns (train, validation): tuples (X, Y, sample_weight, *extra).
    """
    arrays = (X, Y) + tuple(extra) + (() if sample_weight is None else (sample_weight,))
    split = train_test_split(*arrays, random_state=random_state,
                             test_size=validation_fraction, stratify=stratify)
    train, val = tuple(split[0::2]), tuple(split[1::2])
    if sample_weight is None:
        train, val = train + (None,), val + (None,)
    train = (train[0], train[1], train[-1], *train[2:-1])
    val = (val[0], val[1], val[-1], *val[2:-1])
    if val[0].shape[0] < 2:
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction' "
            "or the size of your dataset."
        )
    return train, val


def report_divergence(outcome, early_stopping):
    """After the estimator has recorded a diverged run: raise ValueError, or with
    early stopping warn (the best weights were kept, as scikit-learn does)."""
    if outcome.stop != "diverged":
        return
    if not early_stopping:
        raise ValueError(outcome.message)
    warnings.warn(
        outcome.message.replace("kept the weights from before that epoch",
                                "kept the weights of the best validation score"),
        ConvergenceWarning,
    )


def check_training_options(est):
    """Refuse the combinations of training options that a solver would ignore or
    could not honour. Part of parameter validation, so it runs before a fit touches
    the model (a refused fit leaves an unfitted model unfitted)."""
    solver = est.solver
    mini_batch = solver in _STOCHASTIC_SOLVERS
    if est.weight_decay > 0 and solver != "adamw":
        raise ValueError(
            f"weight_decay={est.weight_decay!r} is the decoupled decay of "
            f"solver='adamw'; solver={solver!r} does not use it (the L2 "
            "penalty is alpha).")
    if est.max_grad_norm is not None and not mini_batch:
        raise ValueError(
            f"max_grad_norm={est.max_grad_norm!r} clips the gradient of each "
            f"mini-batch; solver={solver!r} has none: use one of "
            f"{_STOCHASTIC_NAMES}.")
    if est.matmul_precision != "highest" and not mini_batch:
        raise ValueError(
            f"matmul_precision={est.matmul_precision!r} applies to the mini-batch "
            f"epochs; solver={solver!r} has none: use one of {_STOCHASTIC_NAMES}.")
    if est.lazy_sparse_updates and not mini_batch:
        raise ValueError(
            f"lazy_sparse_updates=True changes the mini-batch step; solver={solver!r} "
            f"has none: use one of {_STOCHASTIC_NAMES}.")
    if est.lazy_sparse_updates and est.max_grad_norm is not None:
        raise ValueError(
            "lazy_sparse_updates=True steps only the rows a batch holds, while "
            "max_grad_norm clips the whole gradient: use one of them.")
    if getattr(est, "dropout", 0.0) > 0 and not mini_batch:
        raise ValueError(
            f"dropout > 0 needs a mini-batch solver ({_STOCHASTIC_NAMES}): with "
            f"solver={solver!r} the masks would change the objective between "
            "iterations.")


def make_optimizer(est, n_params, dtype):
    """A fresh Optimizer from the estimator's parameters."""
    return Optimizer(
        est.solver, n_params, dtype, est.learning_rate_init,
        schedule=est.learning_rate, momentum=est.momentum,
        nesterov=est.nesterovs_momentum, power_t=est.power_t,
        beta_1=est.beta_1, beta_2=est.beta_2, epsilon=est.epsilon,
        max_iter=est.max_iter, warmup_epochs=est.warmup_epochs,
        weight_decay=est.weight_decay, max_grad_norm=est.max_grad_norm,
        lazy_sparse=est.lazy_sparse_updates,
    )


def optimizer_for(est, n_params, dtype, incremental):
    """scikit-learn's rule for both families: every fit starts a new optimizer (so
    set_params(learning_rate_init=...) then a warm fit takes effect); partial_fit
    continues the existing one, unless there is none or it belongs to other
    parameters (a hand-built model, a changed network)."""
    optimizer = getattr(est, "_optimizer", None)
    if (not incremental or optimizer is None or optimizer.state_1.size != n_params
            or optimizer.solver != est.solver):
        optimizer = make_optimizer(est, n_params, dtype)
    optimizer.as_dtype(dtype)
    return optimizer


def check_early_stopping_increment(est, incremental):
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")


def minibatch_penalty(est, l2, l1):
    """The per-sample Penalty of the linear models' mini-batch solvers."""
    return Penalty(alpha=l2, l1=l1, per_batch=False, fit_intercept=est.fit_intercept)


_MINIBATCH_CONSTRAINTS = {
    **MINIBATCH_CONSTRAINTS,
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
}

_MINIBATCH_DOC = """
    batch_size : int or 'auto', default='auto'
        fastgd's addition (with the next parameters, up to ``n_iter_no_change``):
        the mini-batch size of 'sgd' / 'adam'; 'auto' is ``min(200, n_samples)``.
        Larger than n_samples: a warning, and n_samples is used.
    learning_rate : {'constant', 'invscaling', 'adaptive', 'cosine'}, \
default='constant'
        Learning-rate schedule of 'sgd' / 'adam', as in MLPClassifier: 'constant';
        'invscaling' (``learning_rate_init / pow(t + 1, power_t)``, t the samples
        seen; 'sgd' only); 'adaptive' (divided by 5 after ``n_iter_no_change``
        epochs without improvement; 'sgd' only); 'cosine' (epoch e trains at
        ``learning_rate_init * (1 + cos(pi * e / max_iter)) / 2``).
    learning_rate_init : float, default=0.001
        Initial learning rate of 'sgd' / 'adam'.
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    shuffle : bool, default=True
        Shuffle the samples every epoch ('sgd', 'adam').
    momentum : float, default=0.9
        Momentum of 'sgd', between 0 and 1.
    nesterovs_momentum : bool, default=True
        Whether 'sgd' uses Nesterov's momentum (with momentum > 0).
    early_stopping : bool, default=False
        'sgd' / 'adam': hold out ``validation_fraction`` of the data (or score
        ``fit(X_val=..., y_val=...)``), stop when its score has not improved by
        ``tol`` for ``n_iter_no_change`` epochs, and keep the best coefficients.
    validation_fraction : float, default=0.1
        Share of the data held out for early stopping, between 0 and 1.
    beta_1 : float, default=0.9
        Adam's exponential decay rate of the first moment estimates, in [0, 1).
    beta_2 : float, default=0.999
        Adam's exponential decay rate of the second moment estimates, in [0, 1).
    epsilon : float, default=1e-8
        Adam's numerical stability constant.
    n_iter_no_change : int, default=10
        Epochs without improvement by ``tol`` before 'sgd' / 'adam' stop.
"""


def usable_or_unfitted(fit):
    """Decorator of fit / partial_fit: after any exception the estimator is usable
    (``est._holds_usable_weights()``: finite weights for its n_features_in_) or
    cleanly unfitted (every fitted attribute removed, so check_is_fitted raises
    NotFittedError) - never in between. The exception propagates unchanged."""
    @functools.wraps(fit)
    def guarded(self, *args, **kwargs):
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            if not self._holds_usable_weights():
                for name in list(vars(self)):
                    if name.endswith("_") and not name.startswith("__"):
                        delattr(self, name)
                for name in ("_optimizer", "_best_coefs", "_best_intercepts",
                             "_no_improvement_count", "_label_binarizer"):
                    self.__dict__.pop(name, None)
            raise

    return guarded


class MiniBatchMixin(DocLinkMixin):
    """The mini-batch side of every estimator: storage of the shared constructor
    parameters, the one training path (_run_minibatch), recording an Outcome, the
    user's validation set, callbacks' subtasks, export."""

    def _validate_params(self):
        super()._validate_params()
        check_training_options(self)

    def _check_matmul_dtype(self, dtype):
        """matmul_precision="bfloat16" takes float32 data only (before any weights
        are drawn, so that a refused fit leaves no coefficients behind)."""
        if self.matmul_precision == "bfloat16" and dtype != np.float32:
            raise ValueError(
                'matmul_precision="bfloat16" needs float32 X (bfloat16 products of '
                f"float32 values), got {np.dtype(dtype)}: pass X.astype(np.float32).")

    def _run_minibatch(self, network, X, Y, sample_weight, *, loss, penalty,
                       incremental, stratify=None, labels=None, make_validation=None,
                       validation_set=None, best=None, watch_loss=True,
                       before_run=None, subtasks=NO_SUBTASKS):
        """Train ``network`` by the estimator's mini-batch solver; return the Outcome.

        The one path of all four estimators: the optimizer (new, or partial_fit's
        own), the partial_fit guard, the early-stopping split (or the user's own
        ``validation_set`` = (X_val, Y_val, sample_weight_val, labels_val)), the
        record, the driver. ``make_validation(X_val, Y_val, sample_weight_val,
        labels_val)`` returns the held-out (score, loss) function; ``labels`` (one
        per row) are split along with the data. ``before_run()`` is called once
        everything is ready. Sets only ``_optimizer``; the caller records the
        Outcome.
        """
        dtype = network.dtype
        self._check_matmul_dtype(dtype)
        optimizer = optimizer_for(self, network.params.size, dtype, incremental)
        check_early_stopping_increment(self, incremental)
        validation = None
        if self.early_stopping:
            if validation_set is None:
                extra = () if labels is None else (labels,)
                train, val = validation_split(
                    X, Y, sample_weight, validation_fraction=self.validation_fraction,
                    random_state=self._random_state, stratify=stratify, extra=extra)
                X, Y, sample_weight = train[:3]
                validation_set = (*val[:3], val[3] if labels is not None else None)
            validation = make_validation(*validation_set)
        else:
            best = None
        data = KernelData(X, dtype, Y, sample_weight)
        self._optimizer = optimizer
        if before_run is not None:
            before_run()
        rules = StoppingRules(self, clip_batch_size(self.batch_size, data.n_samples))
        return train_epochs(
            network, data, loss, penalty, optimizer, rules,
            random_state=self._random_state,
            progress=Progress.of(self, self.early_stopping), incremental=incremental,
            validation=validation, best=best, watch_loss=watch_loss,
            subtasks=subtasks,
        )

    def _validation_set(self, X_val, y_val, sample_weight_val, n_outputs, epochs):
        """The user's own validation set, validated and encoded like the training
        data (HistGradientBoosting's convention): (X_val, Y_val, sample_weight_val,
        labels_val) for _run_minibatch, or None. ``epochs``: the solver has them."""
        if X_val is None and y_val is None:
            if sample_weight_val is not None:
                raise ValueError("sample_weight_val is given without X_val and y_val.")
            return None
        if X_val is None or y_val is None:
            raise ValueError("X_val and y_val must be given together.")
        if not self.early_stopping or not epochs:
            raise ValueError(
                "X_val and y_val are passed to fit while early_stopping=False (or a "
                "solver without epochs): set early_stopping=True and solver='sgd' "
                "or 'adam' to use them."
            )
        X_val = validate_data(self, X_val, accept_sparse=["csr", "csc"], reset=False,
                              dtype=(np.float64, np.float32), ensure_all_finite=False)
        check_finite(X_val, self, input_name="X_val")
        Y_val, labels_val = self._encode_validation_targets(y_val)
        if Y_val.ndim == 1:
            Y_val = Y_val.reshape(-1, 1)
        if Y_val.shape != (X_val.shape[0], n_outputs):
            raise ValueError(
                f"y_val has shape {np.shape(y_val)}, X_val has {X_val.shape[0]} rows "
                f"and the model {n_outputs} output(s)."
            )
        if sample_weight_val is not None:
            sample_weight_val = _check_sample_weight(sample_weight_val, X_val)
        return X_val, Y_val, sample_weight_val, labels_val

    def to_sklearn(self):
        """The genuine scikit-learn estimator this model replaces, fitted.

        For a system that has only scikit-learn: the same parameters (fastgd's
        additions left out) and fitted attributes, so it predicts the same to
        rounding, and its pickle does not reference fastgd (see
        ``fastgd._export.to_sklearn``).

        Returns
        -------
        sklearn_estimator : estimator
            A fitted ``sklearn.neural_network.MLPClassifier`` /
            ``MLPRegressor``, ``sklearn.linear_model.LogisticRegression``, or
            ``sklearn.linear_model.LinearRegression`` (``ElasticNet`` for a
            LinearRegression with ``alpha > 0``, the same objective).
        """
        return to_sklearn(self)

    def _begin_fit(self, X, y, sample_weight, task_name=None, reconstruction=None):
        """Start the callbacks' root task; return the Subtasks of the solver's
        epochs ("epoch") or iterations (default "lbfgs-iter")."""
        stochastic = self.solver in _STOCHASTIC_SOLVERS
        # scipy's callback starts one subtask more than it runs (see Subtasks.close)
        begin_fit(self, X, y, sample_weight,
                  max_subtasks=self.max_iter + (0 if stochastic else 1))
        return Subtasks(self, X, y, sample_weight,
                        "epoch" if stochastic else task_name or "lbfgs-iter",
                        reconstruction or self._reconstruction)

    def _holds_usable_weights(self):
        """Finite fitted weights that match n_features_in_ (see usable_or_unfitted)."""
        if hasattr(self, "coefs_") and hasattr(self, "intercepts_"):
            weights = list(self.coefs_) + list(self.intercepts_)
            n_in = np.shape(self.coefs_[0])[0]
        elif hasattr(self, "coef_") and hasattr(self, "intercept_"):
            weights = [self.coef_, self.intercept_]
            n_in = np.shape(self.coef_)[-1]
        else:
            return False
        try:
            finite = all(np.isfinite(w.data if sp.issparse(w) else np.asarray(w)).all()
                         for w in weights)
        except TypeError:
            return False
        return finite and getattr(self, "n_features_in_", n_in) == n_in

    def _clear_progress(self):
        """Forget the record of earlier fits (a new, not warm-started fit)."""
        for attribute in Progress._ATTRIBUTES.values():
            self.__dict__.pop(attribute, None)

    def _record_progress(self, outcome):
        """Set the training record from ``outcome`` (n_iter_ is the face's: its
        type differs between the families). After divergence the optimizer is
        dropped - its moments may be non-finite and its rate is the one that
        diverged - so the next partial_fit starts a new one from the kept weights
        and the current parameters (set_params(learning_rate_init=...) applies)."""
        for attribute, value in outcome.progress.attributes().items():
            setattr(self, attribute, value)
        if outcome.loss is not None:
            self.loss_ = outcome.loss
        if outcome.stop == "diverged":
            self.__dict__.pop("_optimizer", None)

    def _set_minibatch_params(self, batch_size, learning_rate, learning_rate_init,
                              power_t, shuffle, momentum, nesterovs_momentum,
                              early_stopping, validation_fraction, beta_1, beta_2,
                              epsilon, n_iter_no_change, early_stopping_metric,
                              max_time, warmup_epochs, weight_decay=0.0,
                              max_grad_norm=None, matmul_precision="highest",
                              lazy_sparse_updates=False):
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.shuffle = shuffle
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping_metric = early_stopping_metric
        self.max_time = max_time
        self.warmup_epochs = warmup_epochs
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm
        self.matmul_precision = matmul_precision
        self.lazy_sparse_updates = lazy_sparse_updates

    def _check_partial_fit_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for the mini-batch solvers %s. %s is "
                "not one of them." % (_STOCHASTIC_NAMES, self.solver)
            )
        return True
