"""Direct least squares for LinearRegression: scikit-learn's lstsq solution, fast.

``lstsq(X, Y, ...)`` solves the (weighted, optionally ridge-penalised) linear
least-squares problem in row blocks of X, never copying X whole:

1. **means pass**: the weighted column means of X and Y, accumulated in float64;
2. **Gram pass**: ``G = A^T A`` for ``A = sqrt(w) * [X - mu_x, Y - mu_y]`` built
   block by block in one float64 buffer (BLAS ``syrk``), then an eigendecomposition
   of the small ``d x d`` block ``X_c^T X_c``. Forming ``G`` squares the
   condition number, so the Gram solution is only used where that is harmless:
   ``cond(X_c) <= 1e5`` and no singular value near scikit-learn's cutoff
   ``tol * s_max``. Above ``cond = 1e3`` it is polished by fixed-precision
   iterative refinement (one extra pass each: the gradient ``X_c^T W r`` from the
   true residual), which converges by a factor ``~eps cond^2`` per step and
   reaches the accuracy of a QR solve; it must visibly converge or the QR pass runs;
3. **QR pass** (ill-conditioned or rank-deficient designs, and small problems
   directly): a blocked ("TSQR") Householder QR of the same ``A``: each block is
   stacked under the previous ``R`` and refactored (LAPACK ``geqrf``), so memory
   is one block. ``R_xx`` has the singular values of ``X_c`` and ``R_xy = Q^T Y_c``;
   the small SVD ``R_xx = U S V^T`` gives scikit-learn's minimum-norm solution
   ``V S^+ U^T R_xy`` with singular values ``<= tol * s_max`` treated as zero -
   exactly what ``scipy.linalg.lstsq(X_c, Y_c, cond=tol)`` returns.

Every block is converted to float64, so float32 X is solved in float64 (products
of float32 numbers are exact in float64); scikit-learn solves float32 in float32.
Sparse X is read the same way, block rows densified into the buffer.
"""

from typing import NamedTuple

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.linalg import blas, lapack

from fastgd._threads import (BLAS_ONE_THREAD_ELEMENTS, BLAS_ONE_THREAD_MULADDS, idle_cores,
                             single_threaded_blas)

# A float64 block of about 8 MB: large enough for BLAS-3 speed and two threads,
# small against the data. (1e6 x 200: 4096 .. 32768 rows ran within 10%.)
_BLOCK_BYTES = 1 << 23
# Gram solution accepted as is below this condition number (error ~ eps cond^2
# ~ 2e-10), refined up to _GRAM_COND_MAX, QR beyond.
_GRAM_COND_PLAIN = 1e3
_GRAM_COND_MAX = 1e5
_MAX_REFINE = 3
# Below this many flops (n p^2) BLAS runs on one thread.
_THREADED_FLOPS = 1e9


class LstsqResult(NamedTuple):
    """Solution of ``lstsq``: all arrays float64.

    coef : (n_features, n_targets); intercept : (n_targets,);
    rank, singular : of the centred, sqrt(weight)-scaled X (scikit-learn's
    ``rank_`` / ``singular_``); n_passes : passes over X after the means pass;
    method : 'gram', 'gram+refine' or 'qr'.
    """

    coef: np.ndarray
    intercept: np.ndarray
    rank: int
    singular: np.ndarray
    n_passes: int
    method: str


def _power_of_two_scale(A):
    """A power of two bringing max |A| near 1 when A's squares would overflow."""
    data = A.data if sp.issparse(A) else A
    # (max and -min, not abs: no temporary the size of A)
    amax = max(float(np.max(data, initial=0.0)), -float(np.min(data, initial=0.0)))
    if not amax > 2.0**400:
        return 1.0
    return float(2.0 ** -np.ceil(np.log2(amax)))


class _Blocks:
    """Row blocks of ``A = sqrt(w) * [a (X - mu_x), c (Y - mu_y)]`` in one buffer.

    ``a``, ``c`` are powers of two (exact) against overflow of the squares.
    """

    def __init__(self, X, Y, sample_weight, a=1.0, c=1.0):
        if sp.issparse(X) and X.format != "csr":
            X = X.tocsr()  # row slices of CSC are slow; a copy of the nonzeros only
        self.X, self.Y, self.w = X, Y, sample_weight
        self.a, self.c = a, c
        self.n, self.d = X.shape
        self.k = Y.shape[1]
        self.p = self.d + self.k
        self.rows = int(max(64, min(self.n, _BLOCK_BYTES // (8 * self.p))))
        self.mu = np.zeros(self.p)

    def _fill(self, start, stop, out, shift):
        """out = [a X, c Y][start:stop] - shift, in float64: one pass over the block."""
        d = self.d
        Xb = self.X[start:stop]
        if sp.issparse(Xb):
            Xb = Xb.toarray()
        for part, A, f, mu in ((out[:, :d], Xb, self.a, shift[:d]),
                               (out[:, d:], self.Y[start:stop], self.c, shift[d:])):
            if f == 1.0:
                np.subtract(A, mu, out=part, casting="unsafe")
            else:
                np.multiply(A, f, out=part, casting="unsafe")
                part -= mu

    def weights(self, start, stop):
        return None if self.w is None else self.w[start:stop]

    def means(self, fit_intercept):
        """Weighted column means of [a X, c Y] (zero without an intercept).

        Accumulated in float64, block sums added in turn: the error is far below
        what matters - centring at mu + delta instead of the exact mean perturbs
        X_c^T X_c by n delta delta^T only (the centred columns sum to zero), a
        second-order change, and the intercept by delta.
        """
        self.total = float(self.n) if self.w is None else float(np.sum(self.w))
        self.centred = fit_intercept and self.total > 0
        if not self.centred:
            return self.mu
        s = np.zeros(self.p)
        zero = np.zeros(self.p)
        buf = np.empty((self.rows, self.p))
        for start in range(0, self.n, self.rows):
            stop = min(start + self.rows, self.n)
            wb = self.weights(start, stop)
            if wb is None and not sp.issparse(self.X) and self.a == self.c == 1.0:
                s[: self.d] += self.X[start:stop].sum(axis=0, dtype=np.float64)
                s[self.d :] += self.Y[start:stop].sum(axis=0, dtype=np.float64)
                continue
            B = buf[: stop - start]
            self._fill(start, stop, B, zero)
            s += B.sum(axis=0) if wb is None else wb @ B
        self.mu = s / self.total
        return self.mu

    def __iter__(self):
        """Yield (start, stop, A_block); the buffer is reused."""
        buf = np.empty((self.rows, self.p))
        for start in range(0, self.n, self.rows):
            stop = min(start + self.rows, self.n)
            B = buf[: stop - start]
            self._fill(start, stop, B, self.mu)
            if self.w is not None:
                B *= np.sqrt(self.weights(start, stop))[:, None]
            yield start, stop, B


def _gram(blocks):
    """G = A^T A, accumulated over the blocks by BLAS syrk."""
    p = blocks.p
    G = np.zeros((p, p), order="F")
    syrk = blas.dsyrk
    for _, _, B in blocks:
        # B is C-ordered (m x p), so B.T is F-ordered: syrk(B.T) = B^T B, no copy.
        G = syrk(1.0, B.T, beta=1.0, c=G, trans=0, lower=0, overwrite_c=1)
    return np.triu(G) + np.triu(G, 1).T


def _tsqr(blocks):
    """R (p x p, upper triangular) of the QR of A, one block at a time."""
    p, rows = blocks.p, blocks.rows
    # [R; block] in one Fortran-ordered buffer of fixed size (geqrf works in place);
    # zero rows (the first R, the end of the last block) change nothing.
    buf = np.zeros((p + rows, p), order="F")
    geqrf = lapack.dgeqrf
    lwork = int(geqrf(buf, lwork=-1)[2][0].real)
    for start, stop, B in blocks:
        m = stop - start
        buf[p : p + m] = B
        if m < rows:
            buf[p + m :] = 0.0
        buf, _, _, info = geqrf(buf, lwork=lwork, overwrite_a=1)
        if info != 0:
            raise np.linalg.LinAlgError("geqrf failed (info=%d)" % info)
        buf[:p] = np.triu(buf[:p])
        buf[p:] = 0.0  # (geqrf leaves its Householder vectors there)
    return buf[:p].copy()


def _refine(blocks, W, solve, ridge):
    """One refinement step: dW = solve(X_c^T W (Y_c - X_c W) - ridge W).

    The residual is the true one, from the data (not from the Gram), which is
    what makes the step converge to the accuracy of a QR solve.
    """
    d = blocks.d
    g = np.zeros_like(W)
    for _, _, B in blocks:
        Xb = B[:, :d]
        g += Xb.T @ (B[:, d:] - Xb @ W)  # rows scaled by sqrt(w): X^T W r
    return solve(g - ridge * W)


def lstsq(X, Y, sample_weight=None, *, fit_intercept=True, tol=1e-6, l2=0.0,
          method="auto"):
    """Weighted least squares by blocked Gram (refined) or blocked QR passes.

    Minimises ``sum_i w_i ||y_i - x_i W - b||^2 / (2 sum w) + l2 / 2 ||W||^2``;
    with ``l2 = 0`` the minimum-norm solution with scikit-learn's singular value
    cutoff ``tol * s_max`` (``scipy.linalg.lstsq(..., cond=tol)`` on the centred,
    sqrt(w)-scaled data).

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_samples, n_features)
        Read in row blocks, never copied whole.
    Y : ndarray of shape (n_samples, n_targets)
    sample_weight : ndarray of shape (n_samples,) or None
    fit_intercept : bool
        Centre X and Y by their weighted means.
    tol : float
        Relative singular value cutoff (scikit-learn's ``tol``).
    l2 : float
        Ridge penalty per unit weight (no cutoff when > 0).
    method : {'auto', 'gram', 'qr'}
        'auto': Gram when the problem spans several blocks and the Gram is safe
        (see the module notes), else QR. 'gram' still falls back to QR when unsafe.

    Returns
    -------
    LstsqResult
    """
    n, p = X.shape[0], X.shape[1] + Y.shape[1]
    if n * p * p < BLAS_ONE_THREAD_MULADDS and n * p < BLAS_ONE_THREAD_ELEMENTS:
        return _lstsq(X, Y, sample_weight, fit_intercept, tol, l2, method)
    if n * p * p < _THREADED_FLOPS or idle_cores() < 2:
        # Small problems gain nothing from BLAS threads, and on a busy machine a
        # second OpenBLAS thread waiting for its core stalls every call (seconds
        # for a 442 x 285 QR measured here, against 36 ms on one thread).
        with single_threaded_blas():
            return _lstsq(X, Y, sample_weight, fit_intercept, tol, l2, method)
    return _lstsq(X, Y, sample_weight, fit_intercept, tol, l2, method)


def _lstsq(X, Y, sample_weight, fit_intercept, tol, l2, method):
    Y = np.asarray(Y)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
    # Values whose squares overflow (|x| > 2^400; scikit-learn's lstsq copes):
    # solve for X' = a X, Y' = c Y (powers of two, exact), W = W' a / c. The
    # check reads X twice, so on many blocks it waits for a non-finite Gram.
    blocks = _Blocks(X, Y, sample_weight)
    gram = method == "gram" or (method == "auto" and blocks.n > blocks.rows)
    a = c = 1.0
    if not gram:
        a, c = _power_of_two_scale(X), _power_of_two_scale(Y)
        blocks = _Blocks(X, Y, sample_weight, a, c)
    d = blocks.d
    blocks.means(fit_intercept)
    n_passes = 0
    result = None
    if gram:
        G = _gram(blocks)
        n_passes += 1
        if not (np.isfinite(G).all() and np.isfinite(blocks.mu).all()):
            a, c = _power_of_two_scale(X), _power_of_two_scale(Y)
            blocks = _Blocks(X, Y, sample_weight, a, c)
            blocks.means(fit_intercept)
            G = _gram(blocks)
            n_passes += 1
    # (X'^T X' + ridge) W' = X'^T Y' for X' = a X, Y' = c Y and W = W' a / c.
    ridge = l2 * blocks.total * a * a if l2 else 0.0
    if gram:
        result = _solve_gram(blocks, G, tol, ridge)
        if result is not None:
            W, s, refines, how = result
            n_passes += refines
    if result is None:
        R = _tsqr(blocks)
        n_passes += 1
        W, s = _solve_r(R[:d, :d], R[:d, d:], tol, ridge)
        how = "qr"
    s = s[: min(blocks.n, d)]
    rank = int(np.sum(s > tol * s[0])) if s.size and s[0] > 0 else 0
    # Back to the units of X and Y (W' = a W / c solves the scaled problem).
    if blocks.centred:
        intercept = (blocks.mu[d:] - blocks.mu[:d] @ W) / c
    else:
        intercept = np.zeros(blocks.k)
    W = W * (a / c)
    return LstsqResult(W, intercept, rank, s / a, n_passes, how)


def _solve_gram(blocks, G, tol, ridge):
    """(W, s, refinement passes, method) from the Gram, or None when it is unsafe."""
    d = blocks.d
    lam, V = scipy.linalg.eigh(G[:d, :d], check_finite=False)
    lam, V = lam[::-1], V[:, ::-1]  # descending, as singular values
    top = lam[0] + ridge
    if not (lam[-1] > 0 and top > 0 and np.all(np.isfinite(lam))):
        return None  # rank-deficient (or empty): QR gives the minimum-norm solution
    cond = np.sqrt(top / (lam[-1] + ridge))
    if cond > _GRAM_COND_MAX:
        return None
    s = np.sqrt(lam)
    if not ridge and s[-1] <= 2.0 * tol * s[0]:
        return None  # a singular value near the cutoff: decide it on QR's values
    inv = 1.0 / (lam + ridge)

    def solve(rhs):
        return V @ (inv[:, None] * (V.T @ rhs))

    W = solve(G[:d, d:])
    if cond <= _GRAM_COND_PLAIN:
        return W, s, 0, "gram"
    size = np.linalg.norm(W)
    for step in range(1, _MAX_REFINE + 1):
        dW = _refine(blocks, W, solve, ridge)
        W = W + dW
        # Contraction ~ eps cond^2 <= 2e-6 per step: a correction below 1e-10
        # leaves an error far below it.
        if np.linalg.norm(dW) <= 1e-10 * max(size, np.finfo(float).tiny):
            return W, s, step, "gram+refine"
    return None


def _solve_r(Rxx, Rxy, tol, ridge):
    """Minimum-norm solution of R_xx W = R_xy with the cutoff tol * s_max (or ridge)."""
    U, s, Vt = scipy.linalg.svd(Rxx, full_matrices=False, check_finite=False)
    z = U.T @ Rxy
    if ridge:
        return Vt.T @ ((s / (s * s + ridge))[:, None] * z), s
    r = int(np.sum(s > tol * s[0])) if s.size and s[0] > 0 else 0
    return Vt[:r].T @ (z[:r] / s[:r, None]), s
