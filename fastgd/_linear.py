"""Drop-in LogisticRegression and LinearRegression over the compiled engine.

A linear model is a network with no hidden layer: ``units = [n_features,
n_outputs]``, a logistic / softmax / identity output and the matching loss. Both
estimators train through ``fastgd._engine.Network`` and its kernels - there is no
second training loop, only two drivers around the same calls:

* ``solver="lbfgs"`` (LogisticRegression's default): scipy's L-BFGS-B on the
  compiled full-batch loss and gradient (``Network.loss_gradient``); for
  LinearRegression's quadratic objective, linear conjugate gradients on the same
  gradient (``solver="cg"``, its default). Both run in a diagonally preconditioned
  parametrisation (see ``_Preconditioner``): the coefficients are optimised as if
  the features were centred and scaled to unit variance, without touching X. The
  objective - and so the optimum - is unchanged; only the path gets shorter on
  badly scaled data. On standardised data the preconditioner is the identity and
  the iterates are scikit-learn's.
* ``solver="sgd"`` / ``"adam"``: one compiled epoch per ``Network.train_epoch``
  call, with per-sample penalties (``Penalty(per_batch=False)``) and the L1 term
  applied by the kernels' proximal (soft-threshold) step, which gives exact zeros.

Which solver supports what:

=================  ====================  ==========================  ===========
solver             penalty               extras                      partial_fit
=================  ====================  ==========================  ===========
'lbfgs'            L2 or none            LinearRegression positive   no
'cg' (Linear...)   L2 or none            exact steps (quadratic)     no
'sgd', 'adam'      L2, L1, elastic net   early_stopping              yes
=================  ====================  ==========================  ===========

LinearRegression's default solver 'auto' is 'cg' (or 'lbfgs' with positive=True).

LogisticRegression also accepts scikit-learn's other solver names so that code
written for scikit-learn runs unchanged: 'newton-cg', 'newton-cholesky', 'sag'
and 'saga' with an L2 penalty (or none) minimise the same objective, so they are
solved by the same preconditioned L-BFGS; 'liblinear' too (binary only, as in
scikit-learn, but with the intercept left unpenalised). An L1 or elastic-net
penalty needs 'sgd' or 'adam'; every other combination raises a ValueError that
says so.
"""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin, LinearModel, SparseCoefMixin
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.extmath import softmax
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.sparsefuncs import mean_variance_axis
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from fastgd._driver import MINIBATCH_CONSTRAINTS, clip_batch_size, run_epochs
from fastgd._engine import (
    KernelData,
    Network,
    Optimizer,
    Penalty,
    check_finite,
    holding_single_threaded_blas,
)

_STOCHASTIC_SOLVERS = ("sgd", "adam")
# scikit-learn's solvers for an L2 (or no) penalty: all minimise the same objective,
# which fastgd's full-batch L-BFGS solves.
_LBFGS_ALIASES = ("lbfgs", "newton-cg", "newton-cholesky", "sag", "saga", "liblinear")

# LogisticRegression's L-BFGS stops when max |gradient| <= tol x this factor:
# scikit-learn's rule with a 10x margin, so that the default fit lands at least as
# close to the optimum as scikit-learn's default does (a few more iterations).
_LBFGS_GTOL_FACTOR = 0.1

_LOGISTIC_SOLVER_CONVERGENCE_MSG = (
    "Please also refer to the documentation for alternative solver options:\n"
    "    https://scikit-learn.org/stable/modules/linear_model.html"
    "#logistic-regression"
)


# ---------------------------------------------------------------------------
# Shared pieces: moments, preconditioned L-BFGS, the epoch loop
# ---------------------------------------------------------------------------


def _feature_moments(X, sample_weight):
    """Weighted mean and variance of every column of X, in float64.

    Dense X is read in row blocks of a few MB (no copy of X); sparse X goes through
    scikit-learn's ``mean_variance_axis``. Only used to build the preconditioner,
    so E[x^2] - E[x]^2 is precise enough.
    """
    n, d = X.shape
    if sp.issparse(X):
        X = X.tocsr() if X.format not in ("csr", "csc") else X
        mean, var = mean_variance_axis(X, axis=0, weights=sample_weight)
        return np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64)
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    total = float(n) if w is None else float(w.sum())
    s1 = np.zeros(d)
    s2 = np.zeros(d)
    step = max(1, (1 << 18) // max(d, 1))
    for start in range(0, n, step):
        block = np.asarray(X[start : start + step], dtype=np.float64)
        if w is None:
            s1 += block.sum(axis=0)
            s2 += np.einsum("ij,ij->j", block, block)
        else:
            wb = w[start : start + step]
            s1 += wb @ block
            s2 += wb @ (block * block)
    if total <= 0:
        return np.zeros(d), np.zeros(d)
    mean = s1 / total
    var = np.maximum(s2 / total - mean * mean, 0.0)
    return mean, var


class _Preconditioner:
    """An affine change of coordinates that makes the problem look standardised.

    The optimiser works on ``V = W * s`` (per feature row) and ``c = b + mu @ W``,
    i.e. on the coefficients of the centred, scaled features ``(x - mu) / s``; the
    model, the objective and its optimum are those of (W, b). With
    ``fit_intercept=False`` the intercept is frozen at zero and only the scaling
    is used. Gradients map as ``dV = (dW - mu dB) / s`` and ``dc = dB``.
    """

    def __init__(self, mean, var, l2, fit_intercept, n_outputs, isotropic=False):
        # Constant (or numerically constant) columns keep scale 1; otherwise the
        # diagonal curvature of data term plus L2 term, up to the loss' own factor.
        const = var <= 1e-12 * (1.0 + mean * mean)
        self.scale = np.where(const, 1.0, np.sqrt(var + l2))
        if isotropic:
            # One scale for every feature: the iterates of a gradient method started
            # at 0 then stay in the row space of the (centred) X, so on an
            # underdetermined least-squares problem they converge to the
            # minimum-norm solution - scikit-learn's (lstsq). Per-feature scales
            # would pick another of the many exact fits.
            typical = float(np.mean(self.scale[~const])) if (~const).any() else 1.0
            self.scale = np.full_like(self.scale, typical)
        self.mean = mean if fit_intercept else np.zeros_like(mean)
        self.n_features = mean.shape[0]
        self.n_outputs = n_outputs

    def split(self, x):
        d, k = self.n_features, self.n_outputs
        return x[: d * k].reshape(d, k), x[d * k :]

    def to_model(self, x):
        """(W, b) of the model from the optimiser's x = (V, c)."""
        V, c = self.split(x)
        W = V / self.scale[:, None]
        return W, c - self.mean @ W

    def from_model(self, W, b):
        V = np.asarray(W, dtype=np.float64) * self.scale[:, None]
        c = np.asarray(b, dtype=np.float64) + self.mean @ np.asarray(W, dtype=np.float64)
        return np.concatenate([V.ravel(), c])

    def gradient(self, gW, gb):
        """Gradient with respect to x from the gradient with respect to (W, b)."""
        gV = (gW - self.mean[:, None] * gb[None, :]) / self.scale[:, None]
        return np.concatenate([gV.ravel(), gb])


class _Objective:
    """Data loss + l2 / 2 ||W||^2 over the engine, as a function of the optimiser's x.

    ``x`` holds the preconditioned parameters (see ``_Preconditioner``); a call
    writes the model parameters into the network, runs the compiled full-batch
    ``loss_gradient`` and returns (value, gradient with respect to x) in float64.
    ``loss_factor`` rescales the engine's loss and gradient; ``value_factor``
    rescales the value alone (the engine reports the squared error averaged over
    the outputs but returns the gradient of its sum, so n_outputs makes the two
    belong to one function). The data loss and the model gradients of the last
    call are kept for stopping rules.
    """

    def __init__(self, network, data, loss, l2, fit_intercept, precond, loss_factor=1.0,
                 value_factor=1.0):
        self.network = network
        self.data = data
        self.loss = loss
        self.l2 = l2
        self.fit_intercept = fit_intercept
        self.precond = precond
        self.loss_factor = loss_factor
        self.value_factor = value_factor
        self.penalty = Penalty(0.0, fit_intercept=fit_intercept)
        W, b = network.views()
        self.coefs, self.intercepts = W[0], b[0]
        self.n_evals = 0

    def set_model(self, x):
        Wf, bf = self.precond.to_model(x)
        self.coefs[...] = Wf
        if self.fit_intercept:
            self.intercepts[...] = bf

    def penalty_value(self):
        if not self.l2:
            return 0.0
        Wd = self.coefs.astype(np.float64)
        return 0.5 * self.l2 * float(np.vdot(Wd, Wd))

    def __call__(self, x):
        self.set_model(x)
        self.n_evals += 1
        lf = self.loss_factor
        f_data = self.network.loss_gradient(self.data, self.loss, self.penalty)
        f_data *= lf * self.value_factor
        grads = self.network.grads.astype(np.float64)
        d, k = self.coefs.shape
        gW = grads[: d * k].reshape(d, k) * lf
        gb = grads[d * k :] * lf
        if self.l2:
            gW += self.l2 * self.coefs.astype(np.float64)
        self.f_data, self.gW, self.gb = f_data, gW, gb
        return f_data + self.penalty_value(), self.precond.gradient(gW, gb)


@holding_single_threaded_blas
def _lbfgs(objective, x0, *, max_iter, tol, criterion, verbose, positive=False,
           ftol=None):
    """Minimise ``objective`` with scipy's L-BFGS-B.

    ``criterion(x, objective, gx)`` returns a number that stops the run once it is
    <= ``tol`` (checked after every iteration, at the accepted point). The
    network holds the returned point's parameters on return.

    Returns (n_iter, status): status 0 converged, 1 max_iter reached, 2 the line
    search could not improve any more (the limit of the working precision), or the
    scipy result for other failures.
    """
    cache = {}

    def fun(x):
        f, gx = objective(x)
        if not np.isfinite(f):
            return np.inf, gx  # the line search backs off, as for scipy's inf
        cache["x"] = x.copy()
        cache["value"] = criterion(x, objective, gx)
        return f, gx

    def callback(intermediate_result):
        if verbose:
            print("lbfgs: objective = %.10g, criterion = %.3g"
                  % (intermediate_result.fun, cache.get("value", np.nan)))
        x = intermediate_result.x
        if "x" in cache and np.array_equal(cache["x"], x) and cache["value"] <= tol:
            raise StopIteration

    bounds = None
    if positive:
        n_coef = objective.coefs.size
        bounds = [(0.0, None)] * n_coef + [(None, None)] * (x0.size - n_coef)
        x0 = x0.copy()
        x0[:n_coef] = np.maximum(x0[:n_coef], 0.0)
    if max_iter == 0:
        objective.set_model(x0)
        return 0, 1
    options = {
        "maxiter": max_iter,
        "maxls": 50,
        "gtol": 0.0,  # the stopping rule is ``criterion`` (see callback)
        "ftol": 64 * np.finfo(float).eps if ftol is None else ftol,
        "maxfun": max(15000, 2 * max_iter + 100),
    }
    res = scipy.optimize.minimize(fun, x0, method="L-BFGS-B", jac=True, bounds=bounds,
                                  options=options, callback=callback)
    objective.set_model(res.x)  # the last evaluation may not be the returned point
    n_iter = int(min(res.nit, max_iter))
    if res.status in (0, 99) or cache.get("value", np.inf) <= tol:
        return n_iter, 0
    if res.status in (1, 2):
        return n_iter, res.status
    return n_iter, res


@holding_single_threaded_blas
def _conjugate_gradient(objective, hessp, x0, *, max_iter, tol, criterion, verbose,
                        curvature_floor=0.0):
    """Linear conjugate gradients for a quadratic ``objective`` (least squares).

    ``hessp(p)`` is the Hessian-vector product: the same objective's gradient at
    ``p`` with the targets set to zero (the gradient of a quadratic without its
    constant term), one full-batch pass, computed without cancellation. CG takes
    the exact step along each direction, so one pass per iteration (L-BFGS's line
    search takes ~1.7). The objective and gradient at the iterates follow by
    linearity; when they satisfy ``criterion`` the point is confirmed with a true
    evaluation, and CG restarts from it if rounding had drifted the recurrences.
    A direction whose curvature p.H.p is below ``curvature_floor`` x p.p is a null
    direction up to rounding (a rank-deficient X): CG restarts from a true
    gradient instead of taking a huge step along it.

    Returns (n_iter, status) as ``_lbfgs``.
    """
    x = np.array(x0, dtype=np.float64)
    f, g = objective(x)
    true_value = criterion(x, objective, g)
    if true_value <= tol:
        return 0, 0
    if max_iter == 0:
        return 0, 1
    n_iter = 0
    while True:  # each round restarts from a true gradient
        p = -g
        gg = float(g @ g)
        # The tracked f carries an absolute error of ~eps x f at the restart: below
        # that it is noise, so confirm with a true evaluation (which sees an exact
        # fit as one) rather than iterate on rounding.
        f_noise = 64 * np.finfo(np.float64).eps * abs(f)
        for _ in range(len(x) + 1):
            if n_iter >= max_iter:
                objective.set_model(x)
                return n_iter, 1
            Hp = hessp(p)
            pHp = float(p @ Hp)
            if not (pHp > curvature_floor * float(p @ p) and np.isfinite(pHp)):
                break  # no curvature left along p: confirm / restart below
            alpha = gg / pHp
            # f(x + a p) = f + a g.p + a^2 / 2 p.H.p, tracked as the gradient is.
            f = f + alpha * float(g @ p) + 0.5 * alpha * alpha * pHp
            x = x + alpha * p
            g = g + alpha * Hp
            n_iter += 1
            objective.set_model(x)
            objective.f_data = f - objective.penalty_value()
            if verbose:
                print("cg: iteration %d, objective = %.10g" % (n_iter, f))
            if criterion(x, objective, g) <= tol or f <= f_noise:
                break
            gg_new = float(g @ g)
            p = -g + (gg_new / gg) * p
            gg = gg_new
        # Confirm with a true evaluation (rounding drifts the recurrences).
        objective.set_model(x)
        f, g = objective(x)
        value = criterion(x, objective, g)
        if value <= tol:
            return n_iter, 0
        if not value < 0.5 * true_value:  # (also when value is NaN)
            return n_iter, 2  # restarts no longer help: precision limit
        true_value = value


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


def _reject_text(X):
    """scikit-learn's dtype="numeric" check: arrays of text are refused."""
    if X is None or sp.issparse(X):
        return
    dtype = getattr(X, "dtype", None)
    if dtype is None or not isinstance(dtype, np.dtype):
        try:
            dtype = np.asarray(X).dtype
        except Exception:  # noqa: BLE001 - validate_data says what is wrong
            return
    if dtype.kind in "USV":
        raise ValueError(
            "dtype='numeric' is not compatible with arrays of bytes/strings."
            "Convert your data to numeric values explicitly instead."
        )


def _underdetermined(X, sample_weight):
    """No more distinct (weighted) samples than features: many exact fits.

    Then the least-squares solution is not unique and scikit-learn's lstsq returns
    the minimum-norm one; fastgd keeps to it with an isotropic preconditioner (see
    _Preconditioner). Repeated rows (or weights, which are the same thing) add no
    rank, so distinct rows are counted - on small problems only, where repeats can
    matter; a rank deficiency from collinear features is not detected.
    """
    n, d = X.shape
    rows = np.arange(n) if sample_weight is None else np.flatnonzero(sample_weight)
    if rows.size <= d:
        return True
    if rows.size > 10 * d or rows.size * d > 10**6:
        return False
    Xu = X[rows]
    Xu = Xu.toarray() if sp.issparse(Xu) else np.asarray(Xu)
    return np.unique(Xu, axis=0).shape[0] <= d


def _overflow_scale(A):
    """A power of two bringing max |A| near 1 when A's squares would overflow."""
    if A.dtype != np.float64:
        return 1.0
    data = A.data if sp.issparse(A) else A
    amax = float(np.max(np.abs(data), initial=0.0))
    if not amax > 2.0**400:  # squares, sums of squares and products stay finite
        return 1.0
    return float(2.0 ** -np.ceil(np.log2(amax)))


def _check_finite(network):
    if not np.isfinite(network.params).all():
        raise ValueError(
            "Solver produced non-finite parameter weights. The input data may "
            "contain large values and need to be preprocessed (scale your data), "
            "or the learning rate is too large."
        )


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


def _network_from(coef, intercept, dtype, output_activation):
    """A Network [n_features, n_outputs] whose flat buffer holds (coef.T, intercept)."""
    coef = np.atleast_2d(coef.toarray() if sp.issparse(coef) else np.asarray(coef))
    k, d = coef.shape
    params = np.empty(d * k + k, dtype=dtype)
    params[: d * k] = coef.T.ravel()
    params[d * k :] = np.broadcast_to(np.asarray(intercept, dtype=np.float64), (k,))
    return Network([d, k], "identity", output_activation, params)


def _fit_on_used_columns(fit, network, X, *args):
    """``fit(network, X, *args)`` (a full-batch fit), on the columns of a sparse X
    holding stored values only, when that drops most columns and their coefs are 0.

    An empty column's data gradient is exactly zero, so from 0 its coefficient
    stays 0 under L2 and the preconditioner: the fit on the used columns is the same
    fit, without the O(n_features) work per iteration (hashed text leaves most of
    2**20 columns empty; scipy's L-BFGS alone then took 0.2 s per iteration).
    """
    if not sp.issparse(X) or X.format not in ("csr", "csc"):
        return fit(network, X, *args)
    d = X.shape[1]
    if X.format == "csr":
        used = np.bincount(X.indices, minlength=d) > 0
    else:
        used = np.diff(X.indptr) > 0
    W, b = network.views()
    if not used.any() or used.sum() > d // 2 or W[0][~used].any():
        return fit(network, X, *args)
    cols = np.flatnonzero(used)
    small = Network([cols.size, W[0].shape[1]], network.hidden_activation,
                    network.output_activation,
                    np.concatenate([W[0][cols].ravel(), b[0]]).astype(network.dtype))
    result = fit(small, X[:, cols], *args)
    Ws, bs = small.views()
    W[0][cols] = Ws[0]
    b[0][:] = bs[0]
    return result


def _coef_intercept(network):
    W, b = network.views()
    return np.ascontiguousarray(W[0].T), b[0].copy()


# ---------------------------------------------------------------------------
# LogisticRegression
# ---------------------------------------------------------------------------


class LogisticRegression(LinearClassifierMixin, SparseCoefMixin, _MiniBatchParams,
                         BaseEstimator):
    __doc__ = (
        """Logistic regression (binary and multinomial) trained by fastgd's engine.

    A drop-in for ``sklearn.linear_model.LogisticRegression`` (1.9): the same
    parameters (deprecated ones included), attributes and objective,

        C * sum_i w_i loss_i + (1 - l1_ratio) / 2 ||W||_2^2 + l1_ratio ||W||_1,

    with one coefficient row and a logistic output for two classes and a softmax
    over all classes for three or more, so the optimum is scikit-learn's model.
    The intercepts are not penalised.

    Parameters
    ----------
    penalty : {'l1', 'l2', 'elasticnet', None}, default='deprecated'
        Deprecated in scikit-learn 1.8, accepted with the same warnings: use
        ``l1_ratio`` and ``C``.
    C : float, default=1.0
        Inverse regularisation strength; ``np.inf`` means no penalty.
    l1_ratio : float, default=0.0
        Elastic-net mixing: 0 is L2, 1 is L1. Values > 0 need solver 'sgd' or
        'adam' (proximal step, exact zeros).
    dual : bool, default=False
        Only False (the primal problem) is supported, as for scikit-learn's
        non-liblinear solvers.
    tol : float, default=1e-4
        'lbfgs': stop when max |gradient| of (objective / (C sum w)) <= tol, as
        scikit-learn. 'sgd' / 'adam': improvement threshold of the loss (or
        validation score) per epoch.
    fit_intercept : bool, default=True
        Fit intercepts (unpenalised); False keeps them at 0.
    intercept_scaling : float, default=1
        Accepted for compatibility; it only matters for scikit-learn's liblinear,
        whose intercept is penalised. Unused here.
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, multiplied into ``sample_weight``.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffles and the early-stopping split of 'sgd' / 'adam'.
    solver : {'lbfgs', 'sgd', 'adam', 'newton-cg', 'newton-cholesky', 'sag', \
'saga', 'liblinear'}, default='lbfgs'
        'lbfgs': full-batch L-BFGS on the compiled loss and gradient
        (preconditioned, see the module notes); scikit-learn's other names run it
        too (L2 or no penalty). 'sgd' / 'adam': compiled mini-batch epochs, with
        L1 / elastic net and ``partial_fit``.
    max_iter : int, default=100
        L-BFGS iterations, or epochs of 'sgd' / 'adam'.
    verbose : int, default=0
        Print progress.
    warm_start : bool, default=False
        Start from the previous coefficients.
    n_jobs : None, default=None
        Deprecated and without effect, as in scikit-learn 1.8+.
    """ + _MINIBATCH_DOC.replace(
        "learning_rate_init : float, default=0.001",
        "learning_rate_init : float, default=0.003\n"
        "        (0.003 rather than the MLPs' 0.001: a linear model's coefficients\n"
        "        travel further; adam on MNIST reaches lbfgs' accuracy in 5 epochs.)",
    ) + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    n_iter_ : ndarray of shape (1,)
        L-BFGS iterations or epochs run by the last fit.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    loss_, loss_curve_, best_loss_, validation_scores_, best_validation_score_, t_
        Progress of the mini-batch solvers (as in MLPClassifier).
    """
    )

    _parameter_constraints: dict = {
        "penalty": [
            StrOptions({"l1", "l2", "elasticnet"}),
            None,
            Hidden(StrOptions({"deprecated"})),
        ],
        "C": [Interval(Real, 0, None, closed="right")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both"), None],
        "dual": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "intercept_scaling": [Interval(Real, 0, None, closed="neither")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "random_state": ["random_state"],
        "solver": [StrOptions(set(_LBFGS_ALIASES) | set(_STOCHASTIC_SOLVERS))],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "n_jobs": [None, Integral],
        **_MINIBATCH_CONSTRAINTS,
    }

    def __init__(
        self,
        penalty="deprecated",
        *,
        C=1.0,
        l1_ratio=0.0,
        dual=False,
        tol=1e-4,
        fit_intercept=True,
        intercept_scaling=1,
        class_weight=None,
        random_state=None,
        solver="lbfgs",
        max_iter=100,
        verbose=0,
        warm_start=False,
        n_jobs=None,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.003,
        power_t=0.5,
        shuffle=True,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
    ):
        self.penalty = penalty
        self.C = C
        self.l1_ratio = l1_ratio
        self.dual = dual
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.class_weight = class_weight
        self.random_state = random_state
        self.solver = solver
        self.max_iter = max_iter
        self.verbose = verbose
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self._set_minibatch_params(
            batch_size, learning_rate, learning_rate_init, power_t, shuffle, momentum,
            nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2,
            epsilon, n_iter_no_change,
        )

    # -- parameters ----------------------------------------------------------------

    def _resolve_penalty(self):
        """(C, l1 share) after scikit-learn 1.9's penalty / l1_ratio / C rules."""
        if self.penalty == "deprecated":
            if self.l1_ratio == 0 or self.l1_ratio is None:
                penalty = "l2"
                if self.l1_ratio is None:
                    warnings.warn(
                        "'l1_ratio=None' was deprecated in version 1.8 and will "
                        "trigger an error in 1.10. Use 0<=l1_ratio<=1 instead.",
                        FutureWarning,
                    )
            elif self.l1_ratio == 1:
                penalty = "l1"
            else:
                penalty = "elasticnet"
            if self.C == np.inf:
                penalty = None
        else:
            penalty = self.penalty
            warnings.warn(
                "'penalty' was deprecated in version 1.8 and will be removed in"
                " 1.10. To avoid this warning, leave 'penalty' set to its default"
                " value and use 'l1_ratio' or 'C' instead."
                " Use l1_ratio=0 instead of penalty='l2',"
                " l1_ratio=1 instead of penalty='l1',"
                " l1_ratio set to a float between 0 and 1 instead of"
                " penalty='elasticnet', and C=np.inf instead of penalty=None.",
                FutureWarning,
            )
        if self.dual:
            raise ValueError(
                "Solver %s supports only dual=False, got dual=True" % self.solver
            )
        if penalty != "elasticnet" and (
            self.l1_ratio is not None and 0 < self.l1_ratio < 1
        ):
            warnings.warn(
                "l1_ratio parameter is only used when penalty is "
                "'elasticnet'. Got (penalty={})".format(penalty)
            )
        if (self.penalty == "l2" and self.l1_ratio != 0) or (
            self.penalty == "l1" and self.l1_ratio != 1
        ):
            warnings.warn(
                f"Inconsistent values: penalty={self.penalty} with "
                f"l1_ratio={self.l1_ratio}. penalty is deprecated. Please use "
                f"l1_ratio only."
            )
        if penalty == "elasticnet" and self.l1_ratio is None:
            raise ValueError("l1_ratio must be specified when penalty is elasticnet.")
        if self.penalty is None:
            if self.C != 1.0:
                warnings.warn(
                    "Setting penalty=None will ignore the C and l1_ratio parameters"
                )
            return np.inf, 0.0
        if penalty is None:
            return np.inf, 0.0
        l1_share = {"l2": 0.0, "l1": 1.0}.get(penalty, self.l1_ratio)
        if l1_share > 0 and self.solver not in _STOCHASTIC_SOLVERS:
            raise ValueError(
                "solver=%r supports only an L2 penalty or none (l1_ratio=0 or "
                "C=np.inf); got %s penalty. In fastgd, L1 and elastic-net penalties "
                "(l1_ratio > 0) need solver='sgd' or solver='adam', which apply them "
                "by a proximal step." % (self.solver, penalty)
            )
        return self.C, float(l1_share)

    # -- fitting ---------------------------------------------------------------------

    def _encode(self, y, classes):
        """Targets for the network: (n, 1) for two classes, one-hot otherwise."""
        idx = np.searchsorted(classes, y)
        if len(classes) == 2:
            return (idx == 1).reshape(-1, 1)
        Y = np.zeros((y.shape[0], len(classes)), dtype=bool)
        Y[np.arange(y.shape[0]), idx] = True
        return Y

    def _weights(self, X, y, sample_weight):
        """sample_weight x class weights (None when all weights are equal)."""
        if sample_weight is not None or self.class_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype,
                                                 copy=True)
        if self.class_weight is not None:
            cw = compute_class_weight(self.class_weight, classes=self.classes_, y=y,
                                      sample_weight=sample_weight)
            sample_weight *= cw[np.searchsorted(self.classes_, y)].astype(X.dtype)
        return sample_weight

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to the training data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (float32 stays float32).
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples (multiplied by the class weights).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        C, l1_share = self._resolve_penalty()
        if self.n_jobs is not None:
            warnings.warn(
                "'n_jobs' has no effect since 1.8 and will be removed in 1.10. "
                f"You provided 'n_jobs={self.n_jobs}', please leave it unspecified.",
                FutureWarning,
            )
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"],
                             dtype=[np.float64, np.float32], order="C",
                             ensure_all_finite=False)
        check_finite(X, self)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes"
                " in the data, but the data contains only one"
                " class: %r" % self.classes_[0]
            )
        if self.solver == "liblinear" and n_classes > 2:
            raise ValueError(
                "The 'liblinear' solver does not support multiclass classification"
                " (n_classes >= 3). Either use another solver or wrap the "
                "estimator in a OneVsRestClassifier to keep applying a "
                "one-versus-rest scheme."
            )
        sample_weight = self._weights(X, y, sample_weight)
        Y = self._encode(y, self.classes_)
        n_out = Y.shape[1]
        dtype = X.dtype
        warm = self.warm_start and hasattr(self, "coef_")
        if warm and np.shape(self.coef_) != (n_out, X.shape[1]):
            # scikit-learn refuses to warm start from coefficients of another shape
            # (new classes, say), in these words (its shapes count the intercept).
            fi = int(self.fit_intercept)
            raise ValueError(
                "Initialization coef is of shape (%d, %d), expected shape (%d, %d)"
                % (np.shape(self.coef_)[0], np.shape(self.coef_)[1] + fi, n_out,
                   X.shape[1] + fi)
            )
        if warm:
            coef, intercept = self.coef_, self.intercept_
        else:
            coef, intercept = np.zeros((n_out, X.shape[1])), np.zeros(n_out)
        if not self.fit_intercept:
            intercept = np.zeros(n_out)
        network = _network_from(coef, intercept, dtype, self._output_activation(n_out))
        sw_sum = X.shape[0] if sample_weight is None else float(sample_weight.sum())
        scale = 0.0 if C == np.inf else 1.0 / (C * sw_sum)
        l2, l1 = (1.0 - l1_share) * scale, l1_share * scale

        self._random_state = check_random_state(self.random_state)
        if self.solver in _STOCHASTIC_SOLVERS:
            optimizer = getattr(self, "_optimizer", None) if warm else None
            if optimizer is None or optimizer.state_1.size != network.params.size:
                self._optimizer = _make_optimizer(self, network.params.size, dtype)
                self._init_minibatch_state(self.early_stopping)
            self._fit_stochastic(network, X, y, Y, sample_weight, l2, l1,
                                 incremental=False)
        else:
            _fit_on_used_columns(self._fit_lbfgs, network, X, Y, sample_weight, l2)
        self._adopt(network)
        return self

    def _output_activation(self, n_out):
        return "logistic" if n_out == 1 else "softmax"

    def _loss_name(self, n_out):
        return "binary_log_loss" if n_out == 1 else "log_loss"

    def _adopt(self, network):
        _check_finite(network)
        self.coef_, self.intercept_ = _coef_intercept(network)

    def _fit_lbfgs(self, network, X, Y, sample_weight, l2):
        if sample_weight is not None and np.all(sample_weight == sample_weight[0]):
            # Equal weights cancel in sum w_i loss_i / sum w_i: skip them.
            sample_weight = None
        with np.errstate(over="ignore", invalid="ignore"):
            mean, var = _feature_moments(X, sample_weight)
        n_out = Y.shape[1]
        if not (np.isfinite(mean).all() and np.isfinite(var).all()):
            # Values whose squares overflow (|x| ~ 1e200). scikit-learn's lbfgs
            # fails its first line search there and hands back the starting point
            # with a ConvergenceWarning (status=2) that says to scale the data;
            # fastgd does the same rather than run the kernels on overflowing sums.
            # (The penalised logistic optimum is not scale-invariant, so the
            # rescaling LinearRegression does would change the answer.)
            self.n_iter_ = np.asarray([0], dtype=np.int32)
            warnings.warn(
                "lbfgs failed to converge after 0 iteration(s) (status=2):\n"
                "ABNORMAL: the squares of the input overflow float64.\n"
                "You might also want to scale the data as shown in:\n"
                "    https://scikit-learn.org/stable/modules/preprocessing.html\n%s"
                % _LOGISTIC_SOLVER_CONVERGENCE_MSG,
                ConvergenceWarning,
            )
            return
        precond = _Preconditioner(mean, var, l2, self.fit_intercept, n_out)
        data = KernelData(X, X.dtype, Y, sample_weight)

        def criterion(x, objective, gx):
            # scikit-learn's gtol: max |gradient| over coefs and intercepts.
            g = np.abs(objective.gW).max(initial=0.0)
            if self.fit_intercept:
                g = max(g, np.abs(objective.gb).max(initial=0.0))
            return g

        objective = _Objective(network, data, self._loss_name(n_out), l2,
                               self.fit_intercept, precond)
        W, b = network.views()
        n_iter, status = _lbfgs(
            objective, precond.from_model(W[0], b[0]), max_iter=self.max_iter,
            tol=self.tol * _LBFGS_GTOL_FACTOR, criterion=criterion,
            verbose=self.verbose,
        )
        self.n_iter_ = np.asarray([n_iter], dtype=np.int32)
        if status == 1:
            warnings.warn(
                "lbfgs failed to converge after %d iteration(s) (status=1):\n"
                "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT\n\n"
                "Increase the number of iterations to improve the convergence "
                "(max_iter=%d).\nYou might also want to scale the data as shown "
                "in:\n    https://scikit-learn.org/stable/modules/"
                "preprocessing.html\n%s"
                % (n_iter, self.max_iter, _LOGISTIC_SOLVER_CONVERGENCE_MSG),
                ConvergenceWarning,
            )
        elif status == 2 and X.dtype == np.float64:
            warnings.warn(
                "lbfgs failed to converge after %d iteration(s) (status=2):\n"
                "ABNORMAL: the line search could not reduce the loss further.\n"
                "You might also want to scale the data as shown in:\n"
                "    https://scikit-learn.org/stable/modules/preprocessing.html\n%s"
                % (n_iter, _LOGISTIC_SOLVER_CONVERGENCE_MSG),
                ConvergenceWarning,
            )
        elif not isinstance(status, int):
            scipy_msg = getattr(status, "message", "")
            warnings.warn(
                "lbfgs failed to converge after %d iteration(s): %s"
                % (n_iter, scipy_msg),
                ConvergenceWarning,
            )

    def _fit_stochastic(self, network, X, y, Y, sample_weight, l2, l1, incremental):
        dtype = X.dtype
        n_out = Y.shape[1]
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        optimizer = self._optimizer
        optimizer.as_dtype(dtype)
        validation = None
        if self.early_stopping:
            arrays = (X, Y, y) if sample_weight is None else (X, Y, y, sample_weight)
            split = train_test_split(
                *arrays, random_state=self._random_state,
                test_size=self.validation_fraction, stratify=y,
            )
            X, X_val, Y, _, y, y_val = split[:6]
            sample_weight, sw_val = (None, None) if sample_weight is None else split[6:]
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            val_data = KernelData(X_val, dtype)

            def validation():
                out = network.predict(val_data)
                if n_out == 1:
                    pred = self.classes_[(out[:, 0] > 0.5).astype(int)]
                else:
                    pred = self.classes_[out.argmax(axis=1)]
                return float(np.average(pred == y_val, weights=sw_val))
        data = KernelData(X, dtype, Y, sample_weight)
        penalty = _minibatch_penalty(self, l2, l1)
        n_iter = _train_epochs(
            self, network, data, self._loss_name(n_out), penalty, optimizer,
            clip_batch_size(self.batch_size, X.shape[0]), incremental=incremental,
            validation=validation,
        )
        self.n_iter_ = np.asarray([n_iter], dtype=np.int32)

    @available_if(lambda est: est._check_partial_fit_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch of the mini-batch solver ('sgd' / 'adam') over (X, y).

        The penalty of each call is scaled by that call's total sample weight
        (``C`` relative to the chunk), so a stream of equal chunks optimises the
        full objective's per-sample form.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            All classes of the stream; required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        first = not hasattr(self, "classes_") or not hasattr(self, "_optimizer")
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to "
                                 "partial_fit.")
            classes = np.unique(classes)
            if len(classes) < 2:
                raise ValueError("partial_fit needs at least 2 classes, got %r"
                                 % (classes,))
        elif classes is not None and not np.array_equal(np.unique(classes),
                                                        self.classes_):
            raise ValueError(
                "`classes=%r` is not the same as on last call to partial_fit, "
                "was: %r" % (classes, self.classes_)
            )
        C, l1_share = self._resolve_penalty()
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"],
                             dtype=[np.float64, np.float32], order="C", reset=first,
                             ensure_all_finite=False)
        check_finite(X, self)
        check_classification_targets(y)
        if first:
            self.classes_ = classes
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if len(unknown):
            raise ValueError(
                "`y` has classes not in `self.classes_`. `self.classes_` has %s. "
                "'y' has %s." % (self.classes_, np.unique(y))
            )
        sample_weight = self._weights(X, y, sample_weight)
        Y = self._encode(y, self.classes_)
        n_out = Y.shape[1]
        if first:
            coef, intercept = np.zeros((n_out, X.shape[1])), np.zeros(n_out)
        else:
            coef, intercept = self.coef_, self.intercept_
        network = _network_from(coef, intercept, X.dtype, self._output_activation(n_out))
        sw_sum = X.shape[0] if sample_weight is None else float(sample_weight.sum())
        scale = 0.0 if C == np.inf else 1.0 / (C * sw_sum)
        self._random_state = check_random_state(self.random_state)
        if first:
            self._optimizer = _make_optimizer(self, network.params.size, X.dtype)
            self._init_minibatch_state(False)
        self._fit_stochastic(network, X, y, Y, sample_weight, (1 - l1_share) * scale,
                             l1_share * scale, incremental=True)
        self._adopt(network)
        return self

    # -- prediction (decision_function / predict / score from LinearClassifierMixin)

    def predict_proba(self, X):
        """Class probabilities, columns ordered as ``classes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        if len(self.classes_) <= 2:
            return super()._predict_proba_lr(X)
        return softmax(self.decision_function(X), copy=False)

    def predict_log_proba(self, X):
        """Log of ``predict_proba(X)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        if self.solver == "liblinear":
            tags.classifier_tags.multi_class = False
        return tags


# ---------------------------------------------------------------------------
# LinearRegression
# ---------------------------------------------------------------------------


class LinearRegression(MultiOutputMixin, RegressorMixin, _MiniBatchParams, LinearModel):
    __doc__ = (
        """Least squares (optionally ridge / lasso / elastic net) by gradient descent.

    A drop-in for ``sklearn.linear_model.LinearRegression`` (1.9) trained by
    fastgd's engine instead of a closed-form solve: the default full-batch L-BFGS
    (preconditioned, see the module notes) reaches the least-squares solution;
    'sgd' / 'adam' train by compiled mini-batch epochs and support
    ``partial_fit``. The objective is

        1 / (2 sum w) sum_i w_i ||y_i - x_i W - b||^2
            + alpha (1 - l1_ratio) / 2 ||W||^2 + alpha l1_ratio ||W||_1

    (``alpha=0`` by default: ordinary least squares), the convention of
    ``ElasticNet`` / ``SGDRegressor``.

    Parameters
    ----------
    fit_intercept : bool, default=True
        Fit the intercept (unpenalised); False keeps it at 0.
    copy_X : bool, default=True
        Accepted for compatibility: X is never modified nor centred in memory,
        so no copy is made.
    tol : float, default=1e-6
        'lbfgs': stop when every feature's (and the intercept's) gradient, in
        standardised units, is below ``tol`` times the RMS residual - i.e. the
        residual is orthogonal to every feature to ``tol`` (scale-free, like
        lsqr's ``atol``). 'sgd' / 'adam': improvement threshold per epoch.
    n_jobs : int or None, default=None
        Accepted for compatibility; the kernels choose their own threads.
    positive : bool, default=False
        Constrain the coefficients to be >= 0 (L-BFGS-B bounds; 'lbfgs' only).
    solver : {'auto', 'cg', 'lbfgs', 'sgd', 'adam'}, default='auto'
        'cg': conjugate gradients on the compiled full-batch gradient (the
        objective is quadratic, so one pass per iteration and exact steps).
        'lbfgs': scipy's L-BFGS-B on the same gradient; the solver of
        ``positive=True``. 'auto' is 'lbfgs' when ``positive`` else 'cg'. Both are
        preconditioned (see the module notes). 'sgd' / 'adam': compiled mini-batch
        epochs, L1 / elastic net, ``partial_fit``.
    alpha : float, default=0.0
        Penalty strength (per sample, as ElasticNet / SGDRegressor).
    l1_ratio : float, default=0.0
        Share of L1 in the penalty; > 0 needs 'sgd' or 'adam' (exact zeros).
    max_iter : int, default=1000
        L-BFGS iterations, or epochs of 'sgd' / 'adam'.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffles and the early-stopping split of 'sgd' / 'adam'.
    verbose : int, default=0
        Print progress.
    warm_start : bool, default=False
        Start from the previous coefficients.
    """ + _MINIBATCH_DOC + """
    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
    intercept_ : float or ndarray of shape (n_targets,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    n_iter_ : int
        L-BFGS iterations or epochs run by the last fit.
    loss_, loss_curve_, best_loss_, validation_scores_, best_validation_score_, t_
        Progress of the mini-batch solvers (as in MLPRegressor).
    """
    )

    _parameter_constraints: dict = {
        "fit_intercept": ["boolean"],
        "copy_X": ["boolean"],
        "n_jobs": [None, Integral],
        "positive": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "solver": [StrOptions({"auto", "cg", "lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        **_MINIBATCH_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        fit_intercept=True,
        copy_X=True,
        tol=1e-6,
        n_jobs=None,
        positive=False,
        solver="auto",
        alpha=0.0,
        l1_ratio=0.0,
        max_iter=1000,
        random_state=None,
        verbose=0,
        warm_start=False,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        shuffle=True,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
    ):
        self.fit_intercept = fit_intercept
        self.copy_X = copy_X
        self.tol = tol
        self.n_jobs = n_jobs
        self.positive = positive
        self.solver = solver
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.max_iter = max_iter
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self._set_minibatch_params(
            batch_size, learning_rate, learning_rate_init, power_t, shuffle, momentum,
            nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2,
            epsilon, n_iter_no_change,
        )

    def _check_solver_options(self):
        if self.alpha * self.l1_ratio > 0 and self.solver not in _STOCHASTIC_SOLVERS:
            raise ValueError(
                "An L1 penalty (alpha * l1_ratio > 0) needs solver='sgd' or "
                "solver='adam' (proximal step); solver=%r supports only the L2 "
                "penalty (ridge)." % self.solver
            )
        if self.positive and self.solver not in ("auto", "lbfgs"):
            raise ValueError(
                "positive=True is only supported by solver='lbfgs' (bound "
                "constraints; 'auto' picks it); got solver=%r." % self.solver
            )

    def _validate(self, X, y, reset):
        # scikit-learn's LinearRegression validates with dtype="numeric": arrays of
        # text are refused (even numbers written as text), and sparse y is refused
        # with check_array's TypeError. fastgd converts to float itself, so both
        # checks are made here, before anything else, in scikit-learn's words.
        if sp.issparse(y):
            raise TypeError(
                "Sparse data was passed, but dense data is required. Use "
                "'.toarray()' to convert to a dense numpy array."
            )
        _reject_text(X)
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"],
                             dtype=[np.float64, np.float32], order="C",
                             y_numeric=True, multi_output=True, reset=reset,
                             ensure_all_finite=False)
        check_finite(X, self)
        return X, y

    def _start(self, X, Y, warm):
        k, d = Y.shape[1], X.shape[1]
        if warm and np.size(self.coef_) == k * d:
            coef = np.reshape(self.coef_, (k, d))
            intercept = np.broadcast_to(np.asarray(self.intercept_, dtype=float), (k,))
        else:
            coef, intercept = np.zeros((k, d)), np.zeros(k)
        if not self.fit_intercept:
            intercept = np.zeros(k)
        return _network_from(coef, intercept, X.dtype, "identity")

    def _adopt(self, network, y_ndim):
        _check_finite(network)
        coef, intercept = _coef_intercept(network)
        if y_ndim == 1:
            self.coef_ = coef.ravel()
            self.intercept_ = intercept[0] if self.fit_intercept else 0.0
        else:
            self.coef_ = coef
            self.intercept_ = intercept if self.fit_intercept else 0.0

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the linear model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (float32 stays float32).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_solver_options()
        in_dtype = getattr(X, "dtype", None)
        X, y = self._validate(X, y, reset=True)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype,
                                                 ensure_non_negative=True)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        warm = self.warm_start and hasattr(self, "coef_")
        network = self._start(X, Y, warm)
        l2 = self.alpha * (1.0 - self.l1_ratio)
        l1 = self.alpha * self.l1_ratio
        self._random_state = check_random_state(self.random_state)
        if self.solver in _STOCHASTIC_SOLVERS:
            optimizer = getattr(self, "_optimizer", None) if warm else None
            if optimizer is None or optimizer.state_1.size != network.params.size:
                self._optimizer = _make_optimizer(self, network.params.size, X.dtype)
                self._init_minibatch_state(self.early_stopping)
            self._fit_stochastic(network, X, y, Y, sample_weight, l2, l1,
                                 incremental=False)
        else:
            self._fit_full_batch(network, X, Y, sample_weight, l2)
        self._adopt(network, y.ndim)
        if in_dtype == np.float16 and not sp.issparse(X):
            # scikit-learn keeps float16 X as float16; its lstsq returns float32
            # coefficients, which its intercept step casts back to float16 when
            # fit_intercept=True (so its predictions are float16, or float32).
            # fastgd trains in float64 and hands back the same dtypes - matching a
            # quirk, not a choice.
            if self.fit_intercept:
                self.coef_ = np.asarray(self.coef_).astype(np.float16)
                self.intercept_ = np.asarray(self.intercept_).astype(np.float16)[()]
            else:
                self.coef_ = np.asarray(self.coef_).astype(np.float32)
        return self

    def _fit_full_batch(self, network, X, Y, sample_weight, l2):
        if sample_weight is not None and np.all(sample_weight == sample_weight[0]):
            sample_weight = None  # equal weights cancel in the weighted mean
        # Values whose squares overflow (|x| ~ 1e200, which scikit-learn's lstsq
        # handles): solve the same least-squares problem on X * a, Y * c (a, c
        # powers of two, exact) and map the solution back, W = W' a / c, b = b' / c.
        a, c = _overflow_scale(X), _overflow_scale(Y)
        if a != 1.0 or c != 1.0:
            W, b = network.views()
            W[0] *= c / a
            b[0] *= c
            Xs = X * a if a != 1.0 else X
            if sp.issparse(Xs):
                Xs = Xs.tocsr() if X.format == "csr" else Xs.tocsc()
            self._fit_full_batch(network, Xs, Y * c, sample_weight,
                                 l2 * (a / c) * (a / c) if l2 else 0.0)
            W[0] *= a / c
            b[0] /= c
            return
        n_out = Y.shape[1]
        mean, var = _feature_moments(X, sample_weight)
        precond = _Preconditioner(mean, var, l2, self.fit_intercept, n_out,
                                  isotropic=_underdetermined(X, sample_weight))
        data = KernelData(X, X.dtype, Y, sample_weight)
        # The engine reports the squared error averaged over the outputs but follows
        # the gradient of its sum: the value is multiplied by n_out so both belong
        # to one function (value_factor). Everything is divided by a reference of the
        # objective (the weighted variance of y, or its mean square without an
        # intercept), so the solvers see a problem of unit scale whatever the units
        # of y; the optimum does not move.
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        Yd = np.asarray(Y, dtype=np.float64)
        if self.fit_intercept:
            Yd = Yd - np.average(Yd, axis=0, weights=w)
        ref = 0.5 * float(np.average(np.einsum("ij,ij->i", Yd, Yd), weights=w))
        norm = 1.0 / ref if ref > 0 and np.isfinite(ref) else 1.0
        objective = _Objective(network, data, "squared_error", l2 * norm,
                               self.fit_intercept, precond,
                               loss_factor=norm, value_factor=float(n_out))

        # rms below is in units of sqrt(norm) x (targets' std): 1 at the start.
        # (an exact fit is also one whose residual is down to rounding: with a tiny
        # tol, CG would otherwise go on along rounding noise and leave the row
        # space of X, i.e. the minimum-norm solution of an underdetermined problem)
        tol_exact = max(self.tol**2, 64 * np.finfo(X.dtype).eps)

        def criterion(x, objective, gx):
            # |gradient in standardised units| / RMS residual: the cosine between
            # the residual and each (centred, scaled) feature. In the units of the
            # normalised objective the ratio carries a factor sqrt(norm), removed
            # here.
            rms = np.sqrt(max(2.0 * objective.f_data / n_out, 0.0))
            if rms <= tol_exact:
                # An exact fit (e.g. more features than samples): the residual has
                # vanished, to tol^2 of the targets' spread.
                return 0.0
            n_coef = objective.coefs.size
            gV = gx[:n_coef]
            if self.positive:
                # Projected gradient: a coefficient at its bound 0 and pushed
                # below it does not count.
                gV = gV[~((x[:n_coef] <= 0) & (gV > 0))]
            g = np.abs(gV).max(initial=0.0)
            if self.fit_intercept:
                g = max(g, np.abs(gx[n_coef:]).max(initial=0.0))
            if rms == 0.0:
                return 0.0 if g == 0.0 else np.inf
            return g / rms / np.sqrt(norm)

        W, b = network.views()
        x0 = precond.from_model(W[0], b[0])
        solver = self.solver
        if solver == "auto":
            solver = "lbfgs" if self.positive else "cg"
        if solver == "cg":
            # The Hessian-vector product: the gradient with zero targets (same X,
            # no copy; the network is shared, each call sets its own parameters).
            zero = KernelData(X, X.dtype, np.zeros(Y.shape, dtype=X.dtype),
                              sample_weight)
            curvature = _Objective(network, zero, "squared_error", l2 * norm,
                                   self.fit_intercept, precond,
                                   loss_factor=norm, value_factor=float(n_out))

            def hessp(p):
                return curvature(p)[1]

            # Standardised features give the Hessian a unit diagonal (times norm):
            # curvature below 64 eps of that is rounding noise.
            floor = 64 * np.finfo(X.dtype).eps * norm
            n_iter, status = _conjugate_gradient(
                objective, hessp, x0, max_iter=self.max_iter, tol=self.tol,
                criterion=criterion, verbose=self.verbose, curvature_floor=floor,
            )
        else:
            n_iter, status = _lbfgs(
                objective, x0, max_iter=self.max_iter, tol=self.tol,
                criterion=criterion, verbose=self.verbose, positive=self.positive,
                ftol=0.0,
            )
        self.n_iter_ = n_iter
        if status == 1:
            warnings.warn(
                "%s did not reach tol=%g in max_iter=%d iterations. Increase "
                "max_iter, or scale your data." % (solver, self.tol, self.max_iter),
                ConvergenceWarning,
            )
        elif not isinstance(status, int):
            warnings.warn("lbfgs failed: %s" % getattr(status, "message", ""),
                          ConvergenceWarning)

    def _fit_stochastic(self, network, X, y, Y, sample_weight, l2, l1, incremental):
        dtype = X.dtype
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        optimizer = self._optimizer
        optimizer.as_dtype(dtype)
        validation = None
        if self.early_stopping:
            arrays = (X, Y) if sample_weight is None else (X, Y, sample_weight)
            split = train_test_split(*arrays, random_state=self._random_state,
                                     test_size=self.validation_fraction)
            X, X_val, Y, Y_val = split[:4]
            sample_weight, sw_val = (None, None) if sample_weight is None else split[4:]
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            val_data = KernelData(X_val, dtype)

            def validation():
                return r2_score(Y_val, network.predict(val_data), sample_weight=sw_val)
        data = KernelData(X, dtype, Y, sample_weight)
        penalty = _minibatch_penalty(self, l2, l1)
        self.n_iter_ = _train_epochs(
            self, network, data, "squared_error", penalty, optimizer,
            clip_batch_size(self.batch_size, X.shape[0]), incremental=incremental,
            validation=validation,
        )

    @available_if(lambda est: est._check_partial_fit_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch of the mini-batch solver ('sgd' / 'adam') over (X, y).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        self._check_solver_options()
        first = not hasattr(self, "coef_") or not hasattr(self, "_optimizer")
        X, y = self._validate(X, y, reset=first)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype,
                                                 ensure_non_negative=True)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if not first and np.size(self.coef_) != Y.shape[1] * X.shape[1]:
            raise ValueError(
                "y has %d targets, the model was fitted with %d"
                % (Y.shape[1], np.size(self.coef_) // X.shape[1])
            )
        network = self._start(X, Y, warm=not first)
        self._random_state = check_random_state(self.random_state)
        if first:
            self._optimizer = _make_optimizer(self, network.params.size, X.dtype)
            self._init_minibatch_state(False)
        self._fit_stochastic(network, X, y, Y, sample_weight,
                             self.alpha * (1 - self.l1_ratio),
                             self.alpha * self.l1_ratio, incremental=True)
        self._adopt(network, y.ndim)
        return self

    def predict(self, X):
        """Predict with the linear model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        return self._decision_function(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

