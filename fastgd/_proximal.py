"""Full-batch L1 / elastic-net solvers over the compiled loss and gradient.

``_prox_newton`` (small dense problems, where a Hessian is cheap: proximal Newton
with coordinate descent on the local quadratic, as glmnet / newGLMNET) and
``_owlqn`` (everything else) minimise the same objective with the same stopping
rule.

``_owlqn`` minimises ``F(x) = f(x) + sum_j lam_j |x_j|`` where ``f`` is smooth
(data loss + L2 term, ``_solvers._Objective``) and ``lam_j >= 0`` is a weight per
coordinate (0 for unpenalised intercepts). It is OWL-QN (Andrew & Gao, 2007):
L-BFGS on the pseudo-gradient, with every step kept inside one orthant, so that
coordinates crossing zero land exactly on zero. It needs only ``f`` and its
gradient, i.e. one compiled ``loss_gradient`` pass per trial point, and never
touches X itself (sparse X stays sparse).

Preconditioning. The optimiser works on ``V = W * s`` (``_Preconditioner``). A
positive diagonal scaling keeps signs and zeros, so the orthants of V are those of
W; the penalty ``l1 |W_j| = (l1 / s_j) |V_j|`` becomes per-coordinate weights,
which is why ``lam`` is a vector. The centring of the intercept (``c = b + mu W``)
leaves the penalty on W alone, so it is kept, except when the intercept itself is
L1-penalised (liblinear), where ``b`` must be a coordinate of its own.
"""

import numpy as np
import scipy.linalg
from scipy.linalg.lapack import dtrtrs

from fastgd._callbacks import NO_SUBTASKS
from fastgd._solvers import STOPPED_BY_CALLBACK, _model_params
from fastgd._threads import holding_single_threaded_blas


def pseudo_gradient(x, g, lam):
    """Minimum-norm subgradient of f + sum lam |x| at x (g = grad f).

    Where x_j != 0 the function is differentiable: g_j + lam_j sign(x_j). Where
    x_j == 0 the subdifferential is [g_j - lam_j, g_j + lam_j]; its point nearest
    zero is the pseudo-gradient (0 when the interval holds 0: x_j stays at 0).
    """
    at_zero = np.sign(g) * np.maximum(np.abs(g) - lam, 0.0)  # soft threshold
    pg = np.where(x == 0, at_zero, g + lam * np.sign(x))
    return pg


def _lbfgs_direction(q, S, Y):
    """-H q for the L-BFGS inverse Hessian H of the pairs (rows of S and Y, newest
    last), from the pairs with positive curvature s . y.

    The compact form of Byrd, Nocedal & Schnabel (1994), with R the upper triangle
    of S Y^T (R_ij = s_i . y_j, i <= j), D its diagonal and gamma = s.y / y.y of the
    newest pair::

        H q = gamma r + S^T R^-T (D u - gamma Y r),  u = R^-1 S q,  r = q - Y^T u.

    The same H as the two-loop recursion, in a handful of small matrix products
    instead of 4 m vector operations: on small problems each numpy call, not the
    arithmetic, is the cost (OWL-QN on breast_cancer spent most of its time there).
    """
    if len(S) == 0:
        return -q
    SY = S @ Y.T
    sy = np.diag(SY)
    keep = sy > 0
    if not keep.all():
        S, Y, SY, sy = S[keep], Y[keep], SY[np.ix_(keep, keep)], sy[keep]
        if len(S) == 0:
            return -q
    gamma = sy[-1] / float(Y[-1] @ Y[-1])
    # LAPACK's triangular solve directly: scipy.linalg.solve_triangular's checks
    # cost more than the solve at these sizes (m <= memory). It reads only the
    # upper triangle of SY, which is R.
    u = dtrtrs(SY, S @ q)[0]
    r = q - Y.T @ u
    top = dtrtrs(SY, sy * u - gamma * (Y @ r), trans=1)[0]
    return -(gamma * r + S.T @ top)


@holding_single_threaded_blas
def _owlqn(fun, x0, lam, *, max_iter, tol, criterion, verbose=False, memory=10,
           subtasks=NO_SUBTASKS, stall_converges=True):
    """Minimise ``fun(x)[0] + sum(lam * |x|)`` by OWL-QN.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (f, grad f)`` of the smooth part, float64.
    x0 : ndarray
        Starting point.
    lam : ndarray
        L1 weight of every coordinate (>= 0).
    max_iter : int
        Iterations (accepted steps).
    tol : float
        Stop once ``criterion(x, pg) <= tol`` at an accepted point.
    criterion : callable
        ``criterion(x, pg)``, pg the pseudo-gradient at x; ``fun`` was last called
        at x when it runs (its state describes x).
    verbose : bool
        Print the objective and criterion every iteration.
    memory : int
        Number of L-BFGS pairs kept.
    subtasks : fastgd._callbacks.Subtasks
        Each iteration is a callback subtask; a callback asking to stop ends the
        run after that iteration.
    stall_converges : bool
        Without an L1 term (plain L-BFGS): an iteration that decreases F by no
        more than rounding ends the run as converged (status 0), as scipy's ftol
        rule does. False goes on until the line search fails (status 2).

    Returns
    -------
    x : ndarray
        The last accepted point (``fun`` was last evaluated there).
    n_iter : int
    status : int
        0 converged, 1 max_iter reached, 2 the line search could not decrease F
        (the limit of the working precision), STOPPED_BY_CALLBACK.
    """
    smooth = not lam.any()  # no L1 term: plain L-BFGS (no orthants)
    name = "lbfgs" if smooth else "owlqn"
    x, g, F, pg = _start(fun, x0, lam)
    if criterion(x, pg) <= tol:
        return x, 0, 0
    subtasks.begin(lambda: _model_params(fun, x))
    S, Y = [], []
    for it in range(1, max_iter + 1):
        # quasi-Newton step on the free coordinates only (those at zero with a
        # zero pseudo-gradient stay put): the pairs' other entries only add noise
        free = True if smooth else (x != 0) | (pg != 0)
        if not S:
            d = -pg
        elif smooth or free.all():
            d = _lbfgs_direction(pg, np.array(S), np.array(Y))
        else:
            d = np.zeros_like(pg)
            d[free] = _lbfgs_direction(pg[free], np.array(S)[:, free],
                                       np.array(Y)[:, free])
        if not smooth:
            d[d * pg >= 0] = 0.0  # keep only coordinates that descend along -pg
        slope = float(pg @ d)
        if not slope < 0:  # the quasi-Newton direction lost descent: restart
            S, Y = [], []
            d, slope = -pg, -float(pg @ pg)
        if smooth:
            def on_arc(step):
                return x + step * d
        else:
            # orthant of the step: x's signs, or the descent side for zeros
            orthant = np.where(x != 0, np.sign(x), np.sign(-pg))

            def on_arc(step):
                xn = x + step * d
                xn[xn * orthant <= 0] = 0.0  # crossing zero lands on zero
                return xn

        # Armijo on F along the projected arc
        found = _backtrack(fun, lam, x, on_arc,
                           lambda step, xn: F + 1e-4 * float(pg @ (xn - x)),
                           1.0 if S else min(1.0, 1.0 / np.sqrt(-slope)))
        if found is None:
            subtasks.close()
            return x, it - 1, 2
        xn, gn, Fn = found
        s, y = xn - x, gn - g
        sy = float(s @ y)
        if sy > 1e-12 * float(y @ y) and sy > 0:  # convex f: keep curvature pairs
            S.append(s)
            Y.append(y)
            if len(S) > memory:
                del S[0], Y[0]
        decrease = F - Fn
        x, g, F = xn, gn, Fn
        pg = g if smooth else pseudo_gradient(x, g, lam)
        # A smooth F that no longer decreases beyond rounding has converged as far
        # as the working precision goes (scipy's ftol rule, status 0, no warning);
        # OWL-QN calls it a stall only when it has no curvature pairs left.
        stalled = _stalled(decrease, F)
        status = _iteration_end(fun, x, F, pg, it, name, criterion, tol, verbose,
                                subtasks, stalled=stalled and not S,
                                converged=smooth and stall_converges and stalled)
        if status is not None:
            return x, it, status
    subtasks.close()
    return x, max_iter, 1


def _backtrack(fun, lam, x, trial, bound, step):
    """Either solver's backtracking: halve ``step`` until the point ``trial(step)``
    has a finite F = f + sum(lam |x|) at most ``bound(step, point)``. Returns
    (point, its gradient, its F), or None after 60 halvings (the objective's state
    is then set back to x, the point the solver returns)."""
    for _ in range(60):
        xn = trial(step)
        fn, gn = fun(xn)
        Fn = fn + float(lam @ np.abs(xn))
        if np.isfinite(Fn) and Fn <= bound(step, xn):
            return xn, gn, Fn
        step *= 0.5
    fun(x)
    return None


def _start(fun, x0, lam):
    """Either solver's starting point: x, its gradient, F and pseudo-gradient."""
    x = np.array(x0, dtype=np.float64)
    f, g = fun(x)
    return x, g, f + float(lam @ np.abs(x)), pseudo_gradient(x, g, lam)


def _stalled(decrease, F):
    """F decreased by no more than the working precision."""
    return decrease <= 64 * np.finfo(float).eps * max(abs(F), 1.0)


def _iteration_end(fun, x, F, pg, it, name, criterion, tol, verbose, subtasks,
                   stalled, converged=False):
    """The end of an accepted iteration of either solver: report it, end its
    callback subtask, and return the status to stop with (STOPPED_BY_CALLBACK, 0
    converged, 2 stalled), or None to go on (the next subtask begins)."""
    value = criterion(x, pg)
    if verbose:
        print(f"{name}: iteration {it}, objective = {F:.10g}, criterion = {value:.3g}")
    stop = subtasks.end(lambda: _model_params(fun, x))
    if stop:
        return STOPPED_BY_CALLBACK
    if value <= tol or converged:
        return 0
    if stalled:
        return 2
    subtasks.begin(lambda: _model_params(fun, x))
    return None


def _newton_step(g, H, movable):
    """-H^-1 g on the movable coordinates, by Cholesky with a ridge of 1e-8 of
    the mean curvature: softmax's Hessian is singular along shifts of all
    intercepts, where g is zero up to rounding, which a smaller ridge would blow up
    into a drift of the intercepts. Least squares if even that fails."""
    idx = np.flatnonzero(movable)
    delta = np.zeros_like(g)
    if idx.size == 0:
        return delta
    Hm = H[np.ix_(idx, idx)]
    Hm[np.diag_indices_from(Hm)] += 1e-8 * float(np.mean(np.diag(Hm)))
    try:
        delta[idx] = scipy.linalg.cho_solve(
            scipy.linalg.cho_factor(Hm, check_finite=False), -g[idx],
            check_finite=False)
    except np.linalg.LinAlgError:
        delta[idx] = np.linalg.lstsq(Hm, -g[idx], rcond=1e-12)[0]
    return delta


def _newton_subproblem(x, g, H, lam, max_sweeps=10):
    """Step ``delta`` minimising ``g.delta + delta.H.delta / 2 + sum lam |x + delta|``.

    Cyclic coordinate descent (soft-thresholding one coordinate at a time, as
    glmnet), over the coordinates that are nonzero or violate their optimality
    (|g_j| > lam_j), until a sweep (from the third on) leaves the support as
    it was, or changes nothing by more than 1e-10 of the step, or ``max_sweeps``
    sweeps. Then a polish: on the support found, with its signs, the
    model is a smooth quadratic, solved exactly; kept if the signs hold (on
    correlated features coordinate descent alone converges slowly). Coordinates
    with H_jj <= 0 (parameters the model does not use) stay put.
    """
    n = x.size
    diag = H.diagonal()
    movable = diag > 0
    if not lam.any():  # no L1 term: the plain Newton step
        return _newton_step(g, H, movable)
    candidates = np.flatnonzero(movable & ((x != 0) | (np.abs(g) > lam)))
    delta = np.zeros(n)
    Hd = np.zeros(n)
    xs, gs, ls, ds = x.tolist(), g.tolist(), lam.tolist(), diag.tolist()
    dl = delta.tolist()
    for sweep in range(max_sweeps):
        biggest = 0.0
        flipped = False  # did a coordinate enter or leave the support?
        for j in candidates.tolist():
            a = ds[j]
            z = xs[j] + dl[j]
            u = z - (gs[j] + Hd[j]) / a
            t = ls[j] / a
            new = u - t if u > t else (u + t if u < -t else 0.0)
            change = new - z
            if change != 0.0:
                dl[j] += change
                Hd += change * H[j]
                flipped = flipped or new == 0.0 or z == 0.0
                if abs(change) > biggest:
                    biggest = abs(change)
        # A sweep that keeps the support leaves the rest to the exact polish.
        if (sweep >= 2 and not flipped) or biggest <= 1e-10 * max(1.0,
                                                                 max(map(abs, dl))):
            break
    delta = np.array(dl)
    z = x + delta
    support = np.flatnonzero(movable & (z != 0))
    if support.size:
        sign = np.sign(z[support])
        rest = delta.copy()
        rest[support] = 0.0
        rhs = -(g[support] + lam[support] * sign + H[support] @ rest)
        step = np.linalg.lstsq(H[np.ix_(support, support)], rhs, rcond=1e-12)[0]
        if np.all(np.sign(x[support] + step) == sign):
            delta[support] = step
    return delta


@holding_single_threaded_blas
def _prox_newton(fun, x0, lam, hessian, *, max_iter, tol, criterion, verbose=False,
                 subtasks=NO_SUBTASKS):
    """Minimise ``fun(x)[0] + sum(lam * |x|)`` by proximal Newton.

    Each iteration minimises the quadratic model of ``fun`` (exact gradient, the
    Hessian from ``hessian(x)``) plus the L1 term (``_newton_subproblem``), then
    backtracks along the step until F decreases by a share of the model's
    predicted decrease (Tseng & Yun's rule). Quadratic convergence near the
    optimum where OWL-QN, identifying zeros one at a time, crawls (breast_cancer
    L1: ~10 iterations against ~90). For small dense problems, where the Hessian
    (n x p^2 flops) is cheap. Same stopping rule, returns and statuses as
    ``_owlqn``.
    """
    x, g, F, pg = _start(fun, x0, lam)
    if criterion(x, pg) <= tol:
        return x, 0, 0
    subtasks.begin(lambda: _model_params(fun, x))
    for it in range(1, max_iter + 1):
        delta = _newton_subproblem(x, g, hessian(x), lam)
        predicted = float(g @ delta + lam @ (np.abs(x + delta) - np.abs(x)))
        if not predicted < 0:  # no model decrease left: the working precision
            subtasks.close()
            return x, it - 1, 2
        found = _backtrack(fun, lam, x, lambda step: x + step * delta,
                           lambda step, xn: F + 1e-4 * step * predicted, 1.0)
        if found is None:
            subtasks.close()
            return x, it - 1, 2
        xn, gn, Fn = found
        decrease = F - Fn
        x, g, F = xn, gn, Fn
        pg = pseudo_gradient(x, g, lam)
        status = _iteration_end(fun, x, F, pg, it, "prox-newton", criterion, tol,
                                verbose, subtasks, stalled=_stalled(decrease, F))
        if status is not None:
            return x, it, status
    subtasks.close()
    return x, max_iter, 1


class _InterceptPenalty:
    """``objective`` plus liblinear's L2 term on the intercept, l2b / 2 ||b||^2.

    liblinear appends a constant feature ``intercept_scaling`` to X whose
    coefficient w_b is penalised like the others; the model's intercept is
    b = intercept_scaling * w_b, so the term is l2 / 2 (b / intercept_scaling)^2.
    The gradient is added in model coordinates and mapped through the
    preconditioner, and kept in ``gb`` for the stopping rules.
    """

    def __init__(self, objective, l2b):
        self.objective = objective
        self.l2b = l2b

    def __getattr__(self, name):
        return getattr(self.objective, name)

    def penalty_value(self):
        b = self.objective.intercepts.astype(np.float64)
        return self.objective.penalty_value() + 0.5 * self.l2b * float(b @ b)

    def __call__(self, x):
        obj = self.objective
        f, gx = obj(x)
        b = obj.intercepts.astype(np.float64)
        gb = self.l2b * b
        obj.gb = obj.gb + gb
        f += 0.5 * self.l2b * float(b @ b)
        return f, gx + obj.precond.gradient(np.zeros_like(obj.gW), gb)
