"""Full-batch solvers over the compiled loss and gradient (``Network.loss_gradient``).

* ``_Preconditioner``: an affine change of coordinates under which the problem looks
  standardised (features centred and scaled), without touching X;
* ``_Objective``: data loss + L2 penalty as a function of the preconditioned
  parameters, in float64;
* ``_lbfgs``: scipy's L-BFGS-B with a caller-chosen stopping criterion;
* ``_conjugate_gradient``: linear CG for the quadratic least-squares objective.
"""

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from sklearn.utils.sparsefuncs import mean_variance_axis

from fastgd._callbacks import NO_SUBTASKS
from fastgd._engine import Penalty
from fastgd._threads import holding_single_threaded_blas

# The status of a run a callback stopped before its tolerance.
STOPPED_BY_CALLBACK = 3


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
        # What the per-evaluation maps use: on small problems each numpy call
        # costs more than its arithmetic, so the column forms are made once and
        # the centring is skipped when there is none (mean 0: no intercept, or
        # centred data).
        self._scale_col = self.scale[:, None]
        self._mean_col = self.mean[:, None]
        self._centred = bool(self.mean.any())

    def split(self, x):
        d, k = self.n_features, self.n_outputs
        return x[: d * k].reshape(d, k), x[d * k :]

    def to_model(self, x):
        """(W, b) of the model from the optimiser's x = (V, c)."""
        V, c = self.split(x)
        W = V / self._scale_col
        return W, (c - self.mean @ W) if self._centred else c

    def from_model(self, W, b):
        V = np.asarray(W, dtype=np.float64) * self.scale[:, None]
        c = np.asarray(b, dtype=np.float64) + self.mean @ np.asarray(W, dtype=np.float64)
        return np.concatenate([V.ravel(), c])

    def gradient(self, gW, gb):
        """Gradient with respect to x from the gradient with respect to (W, b)."""
        gx = np.empty(gW.size + gb.size)
        gV = gx[: gW.size].reshape(gW.shape)
        if self._centred:
            np.subtract(gW, self._mean_col * gb, out=gV)
            np.divide(gV, self._scale_col, out=gV)
        else:
            np.divide(gW, self._scale_col, out=gV)
        gx[gW.size :] = gb
        return gx


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
        Wd = np.asarray(self.coefs, dtype=np.float64)  # no copy in float64
        return 0.5 * self.l2 * float(np.vdot(Wd, Wd))

    def __call__(self, x):
        self.set_model(x)
        self.n_evals += 1
        lf = self.loss_factor
        f_data = self.network.loss_gradient(self.data, self.loss, self.penalty)
        f_data *= lf * self.value_factor
        # one float64 copy of the engine's gradient (which the next call
        # overwrites), scaled by the loss factor; gW and gb are views of it
        grads = np.multiply(self.network.grads, lf, dtype=np.float64)
        d, k = self.coefs.shape
        gW = grads[: d * k].reshape(d, k)
        gb = grads[d * k :]
        if self.l2:
            gW += self.l2 * np.asarray(self.coefs, dtype=np.float64)
        self.f_data, self.gW, self.gb = f_data, gW, gb
        return f_data + self.penalty_value(), self.precond.gradient(gW, gb)


@holding_single_threaded_blas
def _lbfgs(objective, x0, *, max_iter, tol, criterion, verbose, positive=False,
           ftol=None, subtasks=NO_SUBTASKS):
    """Minimise ``objective`` by L-BFGS: fastgd's own (``fastgd._proximal._owlqn``
    without an L1 term), or scipy's L-BFGS-B for the bounds of ``positive``. On
    small problems scipy's wrapper cost several times the compiled loss_gradient
    per evaluation (breast_cancer: ~150 us against ~27 us).

    ``criterion(x, objective, gx)`` returns a number that stops the run once it is
    <= ``tol`` (checked after every iteration, at the accepted point). The
    network holds the returned point's parameters on return. Each iteration is a
    callback subtask of ``subtasks`` (fastgd._callbacks.Subtasks).

    Returns (n_iter, status): status 0 converged, 1 max_iter reached, 2 the line
    search could not improve any more (the limit of the working precision),
    STOPPED_BY_CALLBACK, or the scipy result for other failures.
    """
    if not positive:
        from fastgd._proximal import _owlqn  # (which imports this module)

        _, n_iter, status = _owlqn(
            objective, x0, np.zeros(x0.size), max_iter=max_iter, tol=tol,
            criterion=lambda x, g: criterion(x, objective, g), verbose=verbose,
            subtasks=subtasks, stall_converges=ftol != 0)
        return n_iter, status
    cache = {}
    stopped = []

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
        if subtasks.end(lambda: _model_params(objective, x)):
            stopped.append(True)
            raise StopIteration
        if "x" in cache and np.array_equal(cache["x"], x) and cache["value"] <= tol:
            raise StopIteration
        subtasks.begin(lambda: _model_params(objective, x))

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
    subtasks.begin(lambda: _model_params(objective, x0))
    res = scipy.optimize.minimize(fun, x0, method="L-BFGS-B", jac=True, bounds=bounds,
                                  options=options, callback=callback)
    subtasks.close()
    objective.set_model(res.x)  # the last evaluation may not be the returned point
    n_iter = int(min(res.nit, max_iter))
    if res.status in (0, 99) or cache.get("value", np.inf) <= tol:
        if stopped and not cache.get("value", np.inf) <= tol:
            return n_iter, STOPPED_BY_CALLBACK
        return n_iter, 0
    if res.status in (1, 2):
        return n_iter, res.status
    return n_iter, res


@holding_single_threaded_blas
def _conjugate_gradient(objective, hessp, x0, *, max_iter, tol, criterion, verbose,
                        curvature_floor=0.0, subtasks=NO_SUBTASKS):
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

    Each iteration is a callback subtask of ``subtasks``. Returns (n_iter, status)
    as ``_lbfgs``.
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
            subtasks.begin(lambda: _model_params(objective, x))
            Hp = hessp(p)
            pHp = float(p @ Hp)
            if not (pHp > curvature_floor * float(p @ p) and np.isfinite(pHp)):
                subtasks.close()
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
            converged = criterion(x, objective, g) <= tol or f <= f_noise
            if subtasks.end(objective.network.params) and not converged:
                objective.set_model(x)
                return n_iter, STOPPED_BY_CALLBACK
            if converged:
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


def _model_params(objective, x):
    """The network's flat parameters at the optimiser's point x."""
    objective.set_model(x)
    return objective.network.params


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
