"""The epoch driver shared by every estimator's mini-batch solvers.

It follows scikit-learn 1.9's ``BaseMultilayerPerceptron._fit_stochastic``: one
shuffle of the sample order per epoch from the estimator's RandomState, one compiled
epoch per ``Network.train_epoch`` call, the loss curve, ``tol`` /
``n_iter_no_change`` stopping on the training loss or a held-out score, the
learning-rate schedule, the ConvergenceWarning and Ctrl-C. Python runs here once per
epoch, never per mini-batch.
"""

import warnings

from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import shuffle
from sklearn.utils._param_validation import Interval, Options, StrOptions

from fastgd._engine import Optimizer, Penalty

_STOCHASTIC_SOLVERS = ("sgd", "adam")
from fastgd._threads import holding_single_threaded_blas

# scikit-learn's words, kept as the start of ours so that code matching them still works.
NON_FINITE_MESSAGE = (
    "Solver produced non-finite parameter weights. The input data may contain large"
    " values and need to be preprocessed."
)


# The mini-batch parameters every estimator shares, named and bounded as in
# scikit-learn's MLPs.
MINIBATCH_CONSTRAINTS = {
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
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
}


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


@holding_single_threaded_blas
def run_epochs(est, network, data, loss, penalty, optimizer, batch_size, *,
               incremental, validation=None, on_best=None, watch_loss=True):
    """Train epochs until a stopping rule fires; return the number of epochs run.

    Parameters
    ----------
    est : estimator
        Reads max_iter, shuffle, tol, n_iter_no_change, verbose, learning_rate_init
        and ``_random_state``; updates n_iter_, loss_, t_, loss_curve_, best_loss_,
        validation_scores_, best_validation_score_ and ``_no_improvement_count``
        exactly as scikit-learn's MLP does.
    network : fastgd._engine.Network
        Trained in place.
    data : fastgd._engine.KernelData
        Training rows, targets and weights.
    loss : str
        Loss name for the kernels.
    penalty : float or fastgd._engine.Penalty
        The MLP's alpha, or a linear model's per-sample penalty.
    optimizer : fastgd._engine.Optimizer
        Its state carries over between calls (partial_fit).
    batch_size : int
        Rows per mini-batch (already clipped to the data).
    incremental : bool
        partial_fit: one epoch, no ConvergenceWarning.
    validation : callable or None
        Early stopping: returns the held-out score of the current parameters.
    on_best : callable or None
        Called when the held-out score improves, to keep the best parameters.
    watch_loss : bool
        Treat a non-finite epoch loss as divergence (False where the loss is
        undefined by design, e.g. a Poisson loss with negative targets).

    Raises
    ------
    ValueError
        At the first epoch whose loss or parameters are not finite, after putting
        back the parameters from before that epoch (scikit-learn's message, plus
        advice). The optimizer state is dropped: its moments may be non-finite.
    """
    n_samples = data.n_samples
    sample_idx = np.arange(n_samples, dtype=int)
    last_finite = np.empty_like(network.params)
    est.n_iter_ = 0
    try:
        for _ in range(est.max_iter):
            if est.shuffle:
                sample_idx = shuffle(sample_idx, random_state=est._random_state)
            np.copyto(last_finite, network.params)
            loss_sum = network.train_epoch(data, loss, penalty, optimizer, sample_idx,
                                           batch_size)
            if not np.isfinite(network.params).all() or (
                watch_loss and not np.isfinite(loss_sum)
            ):
                network.params[:] = last_finite
                if hasattr(est, "_optimizer"):
                    del est._optimizer
                raise ValueError(
                    NON_FINITE_MESSAGE + " Training diverged in epoch %d (loss = %s), "
                    "so it stopped there and kept the weights from before that "
                    "epoch. Scale the data (e.g. with "
                    "sklearn.preprocessing.StandardScaler) or lower "
                    "learning_rate_init (now %g)."
                    % (est.n_iter_ + 1, loss_sum / n_samples, est.learning_rate_init)
                )
            est.n_iter_ += 1
            est.loss_ = loss_sum / n_samples
            est.t_ += n_samples
            est.loss_curve_.append(est.loss_)
            if est.verbose:
                print("Iteration %d, loss = %.8f" % (est.n_iter_, est.loss_))

            _count_no_improvement(est, validation, on_best)
            optimizer.iteration_ends(est.t_)

            if est._no_improvement_count > est.n_iter_no_change:
                if validation is not None:
                    msg = (
                        "Validation score did not improve more than "
                        "tol=%f for %d consecutive epochs."
                        % (est.tol, est.n_iter_no_change)
                    )
                else:
                    msg = (
                        "Training loss did not improve more than tol=%f"
                        " for %d consecutive epochs." % (est.tol, est.n_iter_no_change)
                    )
                if optimizer.trigger_stopping(msg, est.verbose):
                    break
                est._no_improvement_count = 0

            if incremental:
                break
            if est.n_iter_ == est.max_iter:
                warnings.warn(
                    "Stochastic Optimizer: Maximum iterations (%d) "
                    "reached and the optimization hasn't converged yet."
                    % est.max_iter,
                    ConvergenceWarning,
                )
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.")
    return est.n_iter_


def _count_no_improvement(est, validation, on_best):
    """scikit-learn's _update_no_improvement_count: held-out score or training loss."""
    if validation is not None:
        score = validation()
        est.validation_scores_.append(score)
        if est.verbose:
            print("Validation score: %f" % est.validation_scores_[-1])
        if score < est.best_validation_score_ + est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if score > est.best_validation_score_:
            est.best_validation_score_ = score
            if on_best is not None:
                on_best()
    else:
        if est.loss_curve_[-1] > est.best_loss_ - est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if est.loss_curve_[-1] < est.best_loss_:
            est.best_loss_ = est.loss_curve_[-1]


def _make_optimizer(est, n_params, dtype):
    return Optimizer(
        est.solver, n_params, dtype, est.learning_rate_init,
        schedule=est.learning_rate, momentum=est.momentum,
        nesterov=est.nesterovs_momentum, power_t=est.power_t,
        beta_1=est.beta_1, beta_2=est.beta_2, epsilon=est.epsilon,
    )


def _minibatch_penalty(est, l2, l1):
    """The per-sample Penalty of the mini-batch solvers (see fastgd._engine.Penalty)."""
    return Penalty(alpha=l2, l1=l1, per_batch=False, fit_intercept=est.fit_intercept)


def _train_epochs(est, network, data, loss, penalty, optimizer, batch_size, *,
                  incremental, validation=None):
    """The shared epoch driver, keeping the parameters of the best held-out score."""
    best = {}

    def on_best():
        best["params"] = network.params.copy()

    n_iter = run_epochs(est, network, data, loss, penalty, optimizer, batch_size,
                        incremental=incremental, validation=validation,
                        on_best=on_best if validation is not None else None)
    if "params" in best:
        network.params[:] = best["params"]
    return n_iter


_MINIBATCH_CONSTRAINTS = {
    **MINIBATCH_CONSTRAINTS,
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
}

_MINIBATCH_DOC = """
    batch_size : int or 'auto', default='auto'
        Mini-batch size of 'sgd' / 'adam'; 'auto' is min(200, n_samples).
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Schedule of the 'sgd' learning rate, as in MLPClassifier.
    learning_rate_init : float, default=0.001
        Initial learning rate of 'sgd' / 'adam'.
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    shuffle : bool, default=True
        Shuffle the samples every epoch ('sgd', 'adam').
    momentum : float, default=0.9
        Momentum of 'sgd'.
    nesterovs_momentum : bool, default=True
        Nesterov's momentum for 'sgd'.
    early_stopping : bool, default=False
        'sgd' / 'adam': hold out ``validation_fraction`` of the data, stop when its
        score stops improving by ``tol`` for ``n_iter_no_change`` epochs, and keep
        the best coefficients.
    validation_fraction : float, default=0.1
        Share of the data held out for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates.
    epsilon : float, default=1e-8
        Adam's numerical stability constant.
    n_iter_no_change : int, default=10
        Epochs without improvement by ``tol`` before 'sgd' / 'adam' stop.
"""


class _MiniBatchParams:
    """Constructor storage of the mini-batch parameters (names as in the MLPs)."""

    def _set_minibatch_params(self, batch_size, learning_rate, learning_rate_init,
                              power_t, shuffle, momentum, nesterovs_momentum,
                              early_stopping, validation_fraction, beta_1, beta_2,
                              epsilon, n_iter_no_change):
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

    def _init_minibatch_state(self, early_stopping):
        self.loss_curve_ = []
        self.t_ = 0
        self._no_improvement_count = 0
        if early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _check_partial_fit_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for the mini-batch solvers 'sgd' and "
                "'adam'. %s is not one of them." % self.solver
            )
        return True
