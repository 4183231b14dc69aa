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

=====================  ====================  ========================  ===========
solver                 penalty               extras                    partial_fit
=====================  ====================  ========================  ===========
'lstsq' (Linear...)    L2 or none            direct, rank_/singular_   no
'lbfgs'                L2 or none            LinearRegression positive no
'cg' (Linear...)       L2 or none            exact steps (quadratic)   no
'saga', 'liblinear'    L2, L1, elastic net   OWL-QN for L1 (Logistic)  no
'sgd', 'adam'          L2, L1, elastic net   early_stopping            yes
=====================  ====================  ========================  ===========

LinearRegression's default solver 'auto' is the direct solve 'lstsq' (see
``fastgd._lstsq``) up to 2000 features, 'cg' beyond (or 'lbfgs' with positive=True).

LogisticRegression accepts scikit-learn's solver names where scikit-learn accepts
the combination (its ``_check_solver`` rules, in its words): with L2 (or none)
'newton-cg', 'newton-cholesky', 'sag' and 'saga' minimise the same objective by the
preconditioned L-BFGS; L1 and elastic net ('saga', 'liblinear') are solved to the
optimum by OWL-QN on the same compiled gradient (``fastgd._proximal``: exact zeros);
'liblinear' solves liblinear's own objective (the intercept penalised through
``intercept_scaling``; ``dual=True`` accepted with L2, solved in the primal).
"""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import scipy.special
from sklearn.callback import CallbackSupportMixin
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin, LinearModel, SparseCoefMixin
from sklearn.metrics import r2_score
from sklearn.neural_network._base import LOSS_FUNCTIONS
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from fastgd._callbacks import NO_SUBTASKS, end_fit
from fastgd._engine import KernelData, Network, check_finite
from fastgd._minibatch import (
    _MINIBATCH_CONSTRAINTS,
    _MINIBATCH_DOC,
    _STOCHASTIC_SOLVERS,
    EXTRA_PARAMETERS_DOC,
    MiniBatchMixin,
    minibatch_penalty,
    report_divergence,
    usable_or_unfitted,
)
from fastgd._proximal import (_InterceptPenalty, _owlqn, _prox_newton)
from fastgd._solvers import (
    STOPPED_BY_CALLBACK,
    _conjugate_gradient,
    _feature_moments,
    _lbfgs,
    _Objective,
    _overflow_scale,
    _Preconditioner,
    _underdetermined,
)

# scikit-learn's solvers for an L2 (or no) penalty: all minimise the same objective,
# which fastgd's full-batch L-BFGS solves.
_LBFGS_ALIASES = ("lbfgs", "newton-cg", "newton-cholesky", "sag", "saga", "liblinear")

# LogisticRegression's L-BFGS stops when max |gradient| <= tol x this factor:
# scikit-learn's rule with a 10x margin, so that the default fit lands at least as
# close to the optimum as scikit-learn's default does (a few more iterations).
_LBFGS_GTOL_FACTOR = 0.1

# Per solver name: the factor of its stopping rule (max |gradient|, or the minimum-
# norm subgradient with L1, <= tol x factor), set so that each name ends at least as
# close to the optimum as scikit-learn's solver of that name at the same tol.
_TOL_FACTORS = {"lbfgs": _LBFGS_GTOL_FACTOR, "newton-cg": 1e-3,
                "newton-cholesky": 1e-3, "sag": 0.1, "saga": 0.1, "liblinear": 0.1}
# L1 / elastic net (OWL-QN, proximal Newton): the minimum-norm subgradient, in the
# solver's preconditioned coordinates, <= tol x this factor; at the default tol the
# coefficients land within 3e-4 of the optimum on every bench_l1.py case.
_L1_TOL_FACTOR = 0.01

_LOGISTIC_SOLVER_CONVERGENCE_MSG = (
    "Please also refer to the documentation for alternative solver options:\n"
    "    https://scikit-learn.org/stable/modules/linear_model.html"
    "#logistic-regression"
)


# ---------------------------------------------------------------------------
# Shared pieces: moments, preconditioned L-BFGS, the epoch loop
# ---------------------------------------------------------------------------


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


def _check_finite(network):
    if not np.isfinite(network.params).all():
        raise ValueError(
            "Solver produced non-finite parameter weights. The input data may "
            "contain large values and need to be preprocessed (scale your data), "
            "or the learning rate is too large."
        )


def warn_stopped_by_callback(solver, n_iter):
    warnings.warn("%s: a callback stopped training after %d iteration(s); the "
                  "optimization hasn't converged yet." % (solver, n_iter),
                  ConvergenceWarning)


def _check_classification_targets(y):
    """scikit-learn's ``check_classification_targets``, skipped for the targets it
    always accepts: a 1-D array of integers or booleans ('binary' or 'multiclass').
    Its type_of_target cost ~0.3-0.6 ms a call on iris, a tenth of the whole fit."""
    if isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype.kind in "biu":
        return
    check_classification_targets(y)


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


# L1 / elastic-net LogisticRegression on dense X with at most this many parameters
# ((features + 1) x outputs), and a Hessian of at most this many flops
# (rows x parameters^2), is solved by proximal Newton, else by OWL-QN: OWL-QN
# identifies the zeros one at a time and crawls there (breast_cancer: ~90 iterations
# of ~1 ms of numpy calls each, against ~10 Newton steps); a Hessian costs
# rows x parameters^2 flops and the subproblem a Python loop over the parameters.
_PROX_NEWTON_MAX_PARAMS = 256
_PROX_NEWTON_MAX_FLOPS = 2e8


# L2 LogisticRegression with solver='newton-cholesky' / 'newton-cg' takes Newton
# steps (a Cholesky solve, no coordinate descent) up to these sizes: as scikit-learn's
# newton-cholesky, a Hessian of rows x parameters^2 flops per step.
_NEWTON_SOLVERS = ("newton-cholesky", "newton-cg")
_NEWTON_MAX_PARAMS = 2000
_NEWTON_MAX_FLOPS = 4e9
# Their Newton steps stop at max |gradient| <= tol x this factor. 0.1 gave on digits
# scikit-learn's newton-cholesky's 7 steps and point, but on wine without intercept
# ended further than its newton-cg; 0.01 costs at most one more (quadratic) step.
_NEWTON_GTOL_FACTOR = 0.01


def _prox_newton_pays(X, n_params, max_params=None, max_flops=None):
    """Whether a Hessian for ``n_params`` parameters on X is cheap enough."""
    max_params = _PROX_NEWTON_MAX_PARAMS if max_params is None else max_params
    max_flops = _PROX_NEWTON_MAX_FLOPS if max_flops is None else max_flops
    return (not sp.issparse(X) and n_params <= max_params
            and X.shape[0] * n_params * n_params <= max_flops)


# _logistic_hessian builds A by blocks of rows of this many values (x k classes),
# so that its float64 temporaries (A, and for softmax B) stay near 8 MiB whatever
# n is: no centred float64 copy of X (2e6 x 9 float32: 539 MB, L-BFGS 18 MB).
_HESSIAN_BLOCK_VALUES = 1 << 20


def _logistic_hessian(X, sample_weight, precond, l2, l2b, fit_intercept):
    """``hessian(x)``: the Hessian of the logistic objective (weighted mean log loss
    + l2 / 2 ||W||^2 + l2b / 2 ||b||^2) in the optimiser's coordinates x = (V, c).

    There the logits are ``A [V; c]`` with ``A = [(X - mean) / scale, 1]``, so the
    Hessian is that of a plain logistic model on A: ``A^T diag(w p (1 - p)) A``
    (binary), or per pair of classes ``A^T diag(w (p_c delta_cc' - p_c p_c')) A``
    (softmax), with w the weights over their sum; index j * k + c, as x is laid out.
    The intercept entries are zero when there is no intercept (x's c is unused).
    """
    X = np.asarray(X)  # dense: see _prox_newton_pays
    n, d = X.shape
    D = d + 1
    k = precond.n_outputs
    w = (np.full(n, 1.0 / n) if sample_weight is None
         else np.asarray(sample_weight, dtype=np.float64) / np.sum(sample_weight))
    ridge = np.concatenate([np.repeat(l2 / precond.scale ** 2, k), np.full(k, l2b)])
    block = max(1, _HESSIAN_BLOCK_VALUES // (D * k))

    def hessian(x):
        V, c = precond.split(x)
        H = np.zeros((D * k, D * k))
        for start in range(0, n, block):
            rows = slice(start, min(start + block, n))
            # A transposed (D x rows, C order): the centring and scaling then run
            # over contiguous rows of the block, 4x faster than into A's narrow rows
            AT = np.empty((D, rows.stop - start))
            np.subtract(X[rows].T, precond.mean[:, None], out=AT[:d])
            AT[:d] /= precond.scale[:, None]
            AT[d] = 1.0
            A = AT.T
            wb = w[rows]
            Z = A[:, :d] @ V + c
            if k == 1:
                p = scipy.special.expit(Z[:, 0])
                # A^T diag(h) A as B^T B with B = sqrt(h) A in place: numpy takes it
                # as a symmetric product (syrk, half the flops), no temporary
                AT *= np.sqrt(wb * p * (1.0 - p))
                H += AT @ AT.T
            else:
                P = np.exp(Z - Z.max(axis=1, keepdims=True))
                P /= P.sum(axis=1, keepdims=True)
                B = (A[:, :, None] * (np.sqrt(wb)[:, None] * P)[:, None, :]).reshape(
                    len(wb), D * k)
                H -= B.T @ B  # numpy takes B^T B as a symmetric product (syrk)
                for cls in range(k):
                    H[cls::k, cls::k] += A.T @ ((wb * P[:, cls])[:, None] * A)
        H[np.diag_indices_from(H)] += ridge
        if not fit_intercept:
            H[-k:] = 0.0
            H[:, -k:] = 0.0
        return H

    return hessian


def _coef_intercept(network):
    W, b = network.views()
    return np.ascontiguousarray(W[0].T), b[0].copy()


# ---------------------------------------------------------------------------
# LogisticRegression
# ---------------------------------------------------------------------------


# The training record of the mini-batch solvers, as MLPClassifier's; the linear
# models have these attributes after an 'sgd' / 'adam' fit only.
_PROGRESS_ATTRIBUTES_DOC = """
    loss_ : float
        'sgd' / 'adam' only: the loss (penalty included) of the last epoch.
    loss_curve_ : list of shape (`n_iter_`,)
        'sgd' / 'adam' only: the training loss at the end of each epoch.
    best_loss_ : float or None
        'sgd' / 'adam' only: the lowest training loss (None with early stopping).
    validation_scores_ : list of shape (`n_iter_`,) or None
        'sgd' / 'adam' only: the validation score after each epoch with
        ``early_stopping=True`` (None otherwise).
    best_validation_score_ : float or None
        'sgd' / 'adam' only: the best validation score (None without early
        stopping).
    validation_loss_curve_ : list of shape (`n_iter_`,)
        'sgd' / 'adam' with ``early_stopping=True`` only: the validation loss
        (the training loss without the penalty) after each epoch.
    best_validation_loss_ : float
        'sgd' / 'adam' with ``early_stopping=True`` only: the lowest validation
        loss.
    t_ : int
        'sgd' / 'adam' only: the number of training samples seen."""



def _warn_n_jobs(est):
    """scikit-learn 1.8's FutureWarning for LogisticRegression's unused n_jobs."""
    if est.n_jobs is not None:
        warnings.warn(
            "'n_jobs' has no effect since 1.8 and will be removed in 1.10. "
            f"You provided 'n_jobs={est.n_jobs}', please leave it unspecified.",
            FutureWarning,
        )


def _check_two_classes(classes):
    if len(classes) < 2:
        raise ValueError(
            "This solver needs samples of at least 2 classes in the data, but the "
            "data contains only one class: %r" % classes[0]
        )


def _start_coefficients(est, warm, n_out, n_features):
    """(coef, intercept) to start a linear classifier from: the fitted ones when
    warm, else zeros; the intercept stays zero without fit_intercept."""
    if warm and np.shape(est.coef_) != (n_out, n_features):
        # scikit-learn refuses to warm start from coefficients of another shape
        # (new classes, say), in these words (its shapes count the intercept).
        fi = int(est.fit_intercept)
        raise ValueError(
            "Initialization coef is of shape (%d, %d), expected shape (%d, %d)"
            % (np.shape(est.coef_)[0], np.shape(est.coef_)[1] + fi, n_out,
               n_features + fi)
        )
    if warm:
        coef, intercept = est.coef_, est.intercept_
    else:
        coef, intercept = np.zeros((n_out, n_features)), np.zeros(n_out)
    if not est.fit_intercept:
        intercept = np.zeros(n_out)
    return coef, intercept

class LogisticRegression(CallbackSupportMixin, LinearClassifierMixin, SparseCoefMixin,
                         MiniBatchMixin,
                         BaseEstimator):
    __doc__ = (
        """Logistic regression (binary and multinomial) trained by fastgd's engine.

    A drop-in for ``sklearn.linear_model.LogisticRegression`` (1.9): the same
    parameters (deprecated ones included, with the same warnings), defaults,
    attributes, methods and objective,

        C * sum_i w_i loss_i + (1 - l1_ratio) / 2 ||W||_2^2 + l1_ratio ||W||_1,

    with one coefficient row and a logistic output for two classes and a softmax
    over all classes for three or more, so the optimum is scikit-learn's model.
    The intercepts are not penalised. fastgd adds mini-batch solvers ('sgd',
    'adam') with ``partial_fit`` and the mini-batch parameters below.

    Parameters
    ----------
    penalty : {'l1', 'l2', 'elasticnet', None}, default='deprecated'
        Deprecated in scikit-learn 1.8 and accepted with the same warnings: use
        ``l1_ratio`` (0: 'l2', 1: 'l1', in between: 'elasticnet') and ``C``
        (``np.inf``: None) instead.
    C : float, default=1.0
        Inverse of the regularisation strength, a positive float; smaller values
        regularise more. ``np.inf`` means no penalty.
    l1_ratio : float, default=0.0
        The elastic-net mixing parameter, 0 <= l1_ratio <= 1: 0 is an L2
        penalty, 1 is L1, in between a combination. Values > 0 need the solvers
        scikit-learn allows for them ('saga'; 'liblinear' for l1_ratio=1),
        which fastgd solves to the optimum by OWL-QN (exact zeros), or 'sgd' /
        'adam' (a proximal step, exact zeros too).
    dual : bool, default=False
        True only with 'liblinear' and an L2 penalty, as in scikit-learn. fastgd
        then solves the primal problem, which has the same solution.
    tol : float, default=1e-4
        Tolerance of the stopping rule. Full-batch solvers: stop when the largest
        absolute gradient of (objective / (C * sum of the weights)) is below
        ``tol`` times a factor - 0.1 for 'lbfgs', so that fastgd's default fit
        lands closer to the optimum than scikit-learn's (a deliberate
        difference: a few more iterations); L1 / elastic net: the same rule on
        the minimum-norm subgradient, with factor 0.01. 'sgd' / 'adam': the
        improvement of the loss (or validation score) per epoch below which an
        epoch counts as no improvement.
    fit_intercept : bool, default=True
        Whether to fit intercepts (not penalised); False keeps them at 0.
    intercept_scaling : float, default=1
        Used by 'liblinear' only, as in scikit-learn: liblinear penalises the
        intercept as a feature of constant value intercept_scaling, and fastgd's
        'liblinear' solves that same objective. The other solvers ignore it.
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, ``{class_label: weight}``, multiplied into
        ``sample_weight``; 'balanced' gives class c the weight ``n_samples /
        (n_classes * count of c)``. None: every class has weight one.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffles and the early-stopping split of the mini-batch solvers;
        the full-batch solvers are deterministic and do not use it.
    solver : {'lbfgs', 'sgd', 'adam', 'adamw', 'rmsprop', 'adagrad', 'newton-cg', \
'newton-cholesky', 'sag', 'saga', 'liblinear'}, default='lbfgs'
        The optimiser, all over the same compiled loss and gradient:

        - 'lbfgs': full-batch L-BFGS, preconditioned as if the features were
          standardised (the optimum does not move, the path gets shorter on
          badly scaled data);
        - 'newton-cg', 'newton-cholesky', 'sag', 'saga', 'liblinear':
          scikit-learn's names, accepted where scikit-learn accepts the
          combination; with L2 or no penalty they run the same L-BFGS (each with
          its own tolerance factor), with L1 / elastic net ('saga', 'liblinear')
          OWL-QN; 'liblinear' solves liblinear's objective (penalised
          intercept). fastgd does not implement those algorithms themselves;
        - 'sgd', 'adam', 'adamw', 'rmsprop', 'adagrad' (fastgd's additions):
          compiled mini-batch epochs, any penalty (L1 by a proximal step),
          ``partial_fit``, ``early_stopping``; the last three step as
          torch.optim's AdamW, RMSprop and Adagrad (see MLPClassifier).
    max_iter : int, default=100
        Maximum number of L-BFGS / OWL-QN iterations, or of epochs of 'sgd' /
        'adam'. Stopping there short of ``tol`` warns (ConvergenceWarning).
    verbose : int, default=0
        Print progress (the loss of each iteration or epoch) when > 0.
    warm_start : bool, default=False
        When True, ``fit`` starts from the coefficients of the previous call.
    n_jobs : None, default=None
        Deprecated and without effect, as in scikit-learn 1.8+; fastgd's kernels
        choose their threads themselves (see the user guide).
    """ + (_MINIBATCH_DOC + EXTRA_PARAMETERS_DOC).replace(
        "learning_rate_init : float, default=0.001",
        "learning_rate_init : float, default=0.003\n"
        "        (0.003 rather than the MLPs' 0.001: a linear model's coefficients\n"
        "        travel further; adam on MNIST reaches lbfgs' accuracy in 5 epochs.)",
    ) + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels known to the classifier.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Coefficients of the features in the decision function: one row for two
        classes (the second class's logit), one per class otherwise. In the
        training data's dtype (float32 stays float32).
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts of the decision function (zeros when
        ``fit_intercept=False``).
    n_iter_ : ndarray of shape (1,)
        The number of L-BFGS / OWL-QN iterations, or epochs of 'sgd' / 'adam',
        run by the last fit.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during fit, defined only when X has feature
        names that are all strings."""
    + _PROGRESS_ATTRIBUTES_DOC + """

    See Also
    --------
    sklearn.linear_model.LogisticRegression : The estimator this one replaces.
    sklearn.linear_model.SGDClassifier : scikit-learn's per-sample SGD, which
        'sgd' / 'adam' replace with mini-batches.
    MLPClassifier : The same engine with hidden layers.
    fastgd.dask.LogisticRegression : Training on a Dask cluster.

    Notes
    -----
    A linear model is a network without a hidden layer: LogisticRegression
    trains through the same compiled kernels as the MLPs (``fastgd._engine``).
    The full-batch solvers evaluate the compiled loss and gradient over all rows
    once per iteration; float32 data trains in float32, sparse CSR / CSC data is
    never densified (a hashed text matrix with most columns empty is fitted on
    its used columns only).

    Deliberate differences from scikit-learn: the L-BFGS stopping rule is 10x
    tighter (see ``tol``); scikit-learn's solver names other than 'lbfgs' run
    fastgd's L-BFGS or OWL-QN, which reach the same optimum but not along the
    same path, so ``n_iter_`` differs; diverging 'sgd' / 'adam' training stops
    at that epoch, puts back the last finite coefficients and raises a
    ``ValueError`` with advice. :meth:`to_sklearn` returns the genuine
    scikit-learn estimator with the same coefficients.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from fastgd import LogisticRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = LogisticRegression(max_iter=1000).fit(X, y)
    >>> clf.coef_.shape, clf.intercept_.shape
    ((3, 4), (3,))
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    >>> bool(clf.score(X, y) > 0.95)
    True

    The optimum is scikit-learn's:

    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression
    >>> ref = SklearnLogisticRegression(max_iter=1000, tol=1e-8).fit(X, y)
    >>> bool(np.allclose(clf.coef_, ref.coef_, atol=1e-3))
    True

    Mini-batch training, one epoch per ``partial_fit`` call:

    >>> sgd = LogisticRegression(solver="adam", batch_size=10, learning_rate_init=0.01,
    ...                          random_state=0)
    >>> for epoch in range(20):
    ...     sgd = sgd.partial_fit(X, y, classes=[0, 1, 2])
    >>> bool(sgd.score(X, y) > 0.9)
    True
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
        early_stopping_metric="score",
        max_time=None,
        warmup_epochs=0,
        weight_decay=0.0,
        max_grad_norm=None,
        matmul_precision="highest",
        lazy_sparse_updates=False,
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
            epsilon, n_iter_no_change, early_stopping_metric, max_time, warmup_epochs,
            weight_decay, max_grad_norm, matmul_precision, lazy_sparse_updates,
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
        self._check_solver(penalty)
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
        return self.C, float(l1_share)

    def _check_solver(self, penalty):
        """scikit-learn 1.9's solver / penalty / dual rules, in its words."""
        solver = self.solver
        if solver in _STOCHASTIC_SOLVERS:  # fastgd's own: any penalty, primal only
            if self.dual:
                raise ValueError(
                    "Solver %s supports only dual=False, got dual=True" % solver)
            return
        if solver not in ("liblinear", "saga") and penalty not in ("l2", None):
            raise ValueError(
                f"Solver {solver} supports only 'l2' or None penalties, got {penalty} "
                "penalty. (In fastgd, L1 also works with solver='liblinear', and L1 "
                "or elastic net with solver='saga', or the mini-batch "
                "solver='sgd' or solver='adam'.)"
            )
        if solver != "liblinear" and self.dual:
            raise ValueError(
                f"Solver {solver} supports only dual=False, got dual={self.dual}")
        if penalty == "elasticnet" and solver != "saga":
            raise ValueError(
                f"Only 'saga' solver supports elasticnet penalty, got solver={solver}.")
        if solver == "liblinear" and penalty is None:
            raise ValueError(
                "C=np.inf as well as penalty=None is not supported for the liblinear "
                "solver"
            )

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
    @usable_or_unfitted
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None,
            sample_weight_val=None):
        """Fit the model to the training data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. float32 and float64 are kept (the model trains in that
            dtype), other dtypes become float64; CSR / CSC matrices are not
            densified.
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples, multiplied by the class weights. None gives
            every sample weight one.
        X_val : {array-like, sparse matrix} of shape (n_val, n_features), \
default=None
            fastgd's addition: a validation set of your own for the early stopping
            of 'sgd' / 'adam' (needs ``early_stopping=True``), scored instead of
            the ``validation_fraction`` split; in a Pipeline,
            ``transform_input=["X_val"]`` transforms it as X.
        y_val : array-like of shape (n_val,), default=None
            fastgd's addition: the targets of ``X_val`` (both or neither).
        sample_weight_val : array-like of shape (n_val,), default=None
            fastgd's addition: weights of the validation samples.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        C, l1_share = self._resolve_penalty()
        _warn_n_jobs(self)
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"],
                             dtype=[np.float64, np.float32],
                             ensure_all_finite=False)
        check_finite(X, self)
        _check_classification_targets(y)
        self.classes_ = np.unique(y)
        n_classes = len(self.classes_)
        _check_two_classes(self.classes_)
        if self.solver == "liblinear" and n_classes > 2:
            raise ValueError(
                "The 'liblinear' solver does not support multiclass classification"
                " (n_classes >= 3). Either use another solver or wrap the "
                "estimator in a OneVsRestClassifier to keep applying a "
                "one-versus-rest scheme."
            )
        if self.solver == "liblinear" and l1_share > 0 and self.dual:
            # (after the multiclass check, as in scikit-learn)
            raise ValueError(
                "Unsupported set of arguments: The combination of penalty='l1' and "
                "loss='logistic_regression' are not supported when dual=True, "
                "Parameters: penalty='l1', loss='logistic_regression', dual=True"
            )
        if self.solver == "liblinear" and (X.data if sp.issparse(X) else X).size and (
                (X.data if sp.issparse(X) else X).max() > 1e30):
            raise ValueError(
                "Using the 'liblinear' solver while X contains a maximum "
                "value > 1e30 results in a frozen fit. Please choose another "
                "solver or rescale the input X."
            )
        sample_weight = self._weights(X, y, sample_weight)
        Y = self._encode(y, self.classes_)
        n_out = Y.shape[1]
        validation_set = self._validation_set(
            X_val, y_val, sample_weight_val, n_outputs=n_out,
            epochs=self.solver in _STOCHASTIC_SOLVERS)
        dtype = X.dtype
        warm = self.warm_start and hasattr(self, "coef_")
        coef, intercept = _start_coefficients(self, warm, n_out, X.shape[1])
        network = _network_from(coef, intercept, dtype, self._output_activation(n_out))
        sw_sum = X.shape[0] if sample_weight is None else float(sample_weight.sum())
        scale = 0.0 if C == np.inf else 1.0 / (C * sw_sum)
        l2, l1 = (1.0 - l1_share) * scale, l1_share * scale

        self._random_state = check_random_state(self.random_state)
        subtasks = self._begin_fit(X, y, sample_weight)
        if self.solver in _STOCHASTIC_SOLVERS:
            if not warm:
                self._clear_progress()
            self._fit_stochastic(network, X, y, Y, sample_weight, l2, l1,
                                 incremental=False, validation_set=validation_set,
                                 subtasks=subtasks)
        else:
            if subtasks.active:  # the callbacks' snapshots need every column
                self._fit_lbfgs(network, X, Y, sample_weight, l2, l1, subtasks=subtasks)
            else:
                _fit_on_used_columns(self._fit_lbfgs, network, X, Y, sample_weight, l2,
                                     l1)
            self._adopt(network)
        end_fit(self, X, y, sample_weight)
        return self

    def _output_activation(self, n_out):
        return "logistic" if n_out == 1 else "softmax"

    def _loss_name(self, n_out):
        return "binary_log_loss" if n_out == 1 else "log_loss"

    def _adopt(self, network):
        _check_finite(network)
        self.coef_, self.intercept_ = _coef_intercept(network)

    def _reconstruction(self, params):
        """Fitted attributes of the model holding the flat parameters ``params``."""
        d, k = self.n_features_in_, params.size // (self.n_features_in_ + 1)
        coef = np.ascontiguousarray(params[: d * k].reshape(d, k).T)
        return {"coef_": coef, "intercept_": params[d * k :].copy()}

    def _fit_lbfgs(self, network, X, Y, sample_weight, l2, l1=0.0, subtasks=NO_SUBTASKS):
        """Full-batch fit of every solver name but 'sgd' / 'adam'.

        L2 or no penalty: preconditioned L-BFGS. L1 / elastic net (``l1 > 0``):
        OWL-QN (``fastgd._proximal``) on the same compiled loss and gradient.
        'liblinear' solves liblinear's objective: the intercept is the weight of
        an extra constant feature ``intercept_scaling``, penalised like the others.
        """
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
        liblinear = self.solver == "liblinear" and self.fit_intercept
        # liblinear: b = intercept_scaling * w_b, and w_b is penalised.
        l2b = l2 / self.intercept_scaling**2 if liblinear else 0.0
        l1b = l1 / self.intercept_scaling if liblinear else 0.0
        if l1b:
            # |b| must be a coordinate of its own: scale the features, do not centre
            # them (the scale then follows the uncentred second moment).
            var, mean = var + mean * mean, np.zeros_like(mean)
        precond = _Preconditioner(mean, var, l2, self.fit_intercept, n_out)
        data = KernelData(X, X.dtype, Y, sample_weight)
        objective = _Objective(network, data, self._loss_name(n_out), l2,
                               self.fit_intercept, precond)
        if l2b:
            objective = _InterceptPenalty(objective, l2b)
        W, b = network.views()
        x0 = precond.from_model(W[0], b[0])
        tol = self.tol * _TOL_FACTORS.get(self.solver, _LBFGS_GTOL_FACTOR)
        if l1:
            tol = self.tol * _L1_TOL_FACTOR
            d = X.shape[1]
            lam = np.concatenate([np.repeat(l1 / precond.scale, n_out),
                                  np.full(x0.size - d * n_out, l1b)])

            def kkt(x, pg):
                # the minimum-norm subgradient in the solver's coordinates (the
                # features scaled to unit curvature), where a subgradient of a given
                # size means about the same distance to the optimum in every
                # coordinate: in model coordinates, rare (low-variance) features
                # of wide sparse data stopped 7e-3 from the optimum, 31 zeros wrong
                return np.abs(pg).max(initial=0.0)

            if self.max_iter == 0:
                objective.set_model(x0)
                n_iter, status = 0, 1
            elif _prox_newton_pays(X, x0.size):
                hessian = _logistic_hessian(X, sample_weight, precond, l2, l2b,
                                            self.fit_intercept)
                _, n_iter, status = _prox_newton(objective, x0, lam, hessian,
                                                 max_iter=self.max_iter, tol=tol,
                                                 criterion=kkt, verbose=self.verbose,
                                                 subtasks=subtasks)
            else:
                _, n_iter, status = _owlqn(objective, x0, lam, max_iter=self.max_iter,
                                           tol=tol, criterion=kkt,
                                           verbose=self.verbose, subtasks=subtasks)
            if n_out > 1 and self.fit_intercept and not liblinear:
                # softmax: shifting every intercept by one constant changes
                # nothing; report the zero-sum intercepts (scikit-learn's saga).
                b[0][...] -= b[0].mean()
            name = self.solver
        else:
            def criterion(x, objective, gx):
                # scikit-learn's gtol: max |gradient| over coefs and intercepts.
                g = np.abs(objective.gW).max(initial=0.0)
                if self.fit_intercept:
                    g = max(g, np.abs(objective.gb).max(initial=0.0))
                return g

            if (self.solver in _NEWTON_SOLVERS
                    and _prox_newton_pays(X, x0.size, _NEWTON_MAX_PARAMS,
                                          _NEWTON_MAX_FLOPS)):
                # scikit-learn's Newton names take few, costly steps, and their
                # max_iter counts those: L-BFGS ran out of its 100 iterations on
                # digits (newton-cholesky: 7 steps), so take Newton steps too.
                hessian = _logistic_hessian(X, sample_weight, precond, l2, l2b,
                                            self.fit_intercept)
                _, n_iter, status = _prox_newton(
                    objective, x0, np.zeros(x0.size), hessian, max_iter=self.max_iter,
                    tol=self.tol * _NEWTON_GTOL_FACTOR,
                    criterion=lambda x, pg: criterion(x, objective, pg),
                    verbose=self.verbose, subtasks=subtasks)
                if n_out > 1 and self.fit_intercept:
                    # rounding moves all softmax intercepts along their null
                    # direction a little: report them zero-sum, as scikit-learn
                    b[0][...] -= b[0].mean()
                name = self.solver
            else:
                n_iter, status = _lbfgs(objective, x0, max_iter=self.max_iter, tol=tol,
                                        criterion=criterion, verbose=self.verbose,
                                        subtasks=subtasks)
                name = "lbfgs"
        self.n_iter_ = np.asarray([n_iter], dtype=np.int32)
        if status == STOPPED_BY_CALLBACK:
            warn_stopped_by_callback(name, n_iter)
        elif status != 0 and self.solver == "liblinear":
            warnings.warn(
                "Liblinear failed to converge, increase the number of iterations.",
                ConvergenceWarning,
            )
        elif status == 1:
            warnings.warn(
                "%s failed to converge after %d iteration(s) (status=1):\n"
                "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT\n\n"
                "Increase the number of iterations to improve the convergence "
                "(max_iter=%d).\nYou might also want to scale the data as shown "
                "in:\n    https://scikit-learn.org/stable/modules/"
                "preprocessing.html\n%s"
                % (name, n_iter, self.max_iter, _LOGISTIC_SOLVER_CONVERGENCE_MSG),
                ConvergenceWarning,
            )
        elif status == 2:
            # whatever the dtype: a stop short of the tolerance always warns
            warnings.warn(
                "%s failed to converge after %d iteration(s) (status=2):\n"
                "ABNORMAL: the line search could not reduce the loss further.\n"
                "You might also want to scale the data as shown in:\n"
                "    https://scikit-learn.org/stable/modules/preprocessing.html\n%s"
                % (name, n_iter, _LOGISTIC_SOLVER_CONVERGENCE_MSG),
                ConvergenceWarning,
            )
        elif not isinstance(status, int):
            scipy_msg = getattr(status, "message", "")
            warnings.warn(
                "lbfgs failed to converge after %d iteration(s): %s"
                % (n_iter, scipy_msg),
                ConvergenceWarning,
            )

    def _encode_validation_targets(self, y_val):
        y_val = column_or_1d(y_val, warn=True)
        check_classification_targets(y_val)
        unknown = np.setdiff1d(np.unique(y_val), self.classes_)
        if len(unknown):
            raise ValueError(f"y_val has classes not in the training data: {unknown}")
        return self._encode(y_val, self.classes_), y_val

    def _fit_stochastic(self, network, X, y, Y, sample_weight, l2, l1, incremental,
                        validation_set=None, subtasks=NO_SUBTASKS):
        n_out = Y.shape[1]
        loss_function = LOSS_FUNCTIONS[self._loss_name(n_out)]

        def make_validation(X_val, Y_val, sample_weight_val, y_val):
            val_data = KernelData(X_val, network.dtype)

            def accuracy_and_loss():
                out = network.predict(val_data)
                if not np.isfinite(out).all():
                    return np.nan, np.nan
                if n_out == 1:
                    pred = self.classes_[(out[:, 0] > 0.5).astype(int)]
                else:
                    pred = self.classes_[out.argmax(axis=1)]
                return (float(np.average(pred == y_val, weights=sample_weight_val)),
                        float(loss_function(Y_val, out, sample_weight_val)))
            return accuracy_and_loss

        outcome = self._run_minibatch(
            network, X, Y, sample_weight, loss=self._loss_name(n_out),
            penalty=minibatch_penalty(self, l2, l1), incremental=incremental,
            stratify=y, labels=y, make_validation=make_validation,
            validation_set=validation_set, subtasks=subtasks,
        )
        self._adopt(network)
        self.n_iter_ = np.asarray([outcome.n_iter], dtype=np.int32)
        self._record_progress(outcome)
        report_divergence(outcome, self.early_stopping)

    @available_if(lambda est: est._check_partial_fit_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    @usable_or_unfitted
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch of the mini-batch solver ('sgd' / 'adam') over (X, y).

        The penalty of each call is scaled by that call's total sample weight
        (``C`` relative to the chunk), so a stream of equal chunks optimises the
        full objective's per-sample form.

        Only for ``solver='sgd'`` / ``'adam'``; ``early_stopping`` is not
        allowed. The optimizer state carries over between calls.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training data.
        y : array-like of shape (n_samples,)
            The class labels of the chunk.
        classes : array-like of shape (n_classes,), default=None
            All classes of the stream; required on the first call, checked
            against ``classes_`` on later calls.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples of the chunk. None gives every sample weight
            one.

        Returns
        -------
        self : object
            The updated estimator.
        """
        # The first call is the one without coefficients (a diverged fit keeps its
        # last finite ones, so partial_fit continues from them).
        first = not hasattr(self, "classes_") or not hasattr(self, "coef_")
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
                             dtype=[np.float64, np.float32], reset=first,
                             ensure_all_finite=False)
        check_finite(X, self)
        _check_classification_targets(y)
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
            self._clear_progress()
        self._fit_stochastic(network, X, y, Y, sample_weight, (1 - l1_share) * scale,
                             l1_share * scale, incremental=True)
        return self

    # -- prediction (decision_function / predict / score from LinearClassifierMixin)

    def predict_proba(self, X):
        """Class probabilities, columns ordered as ``classes_``.

        Two classes: the logistic function of the decision function; more: its
        softmax over the classes (the multinomial model, as scikit-learn 1.9).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The data to predict.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            The probability of each class for each sample.
        """
        check_is_fitted(self)
        if len(self.classes_) <= 2:
            # scikit-learn's own numpy path: one product with a column of coef_ is
            # memory-bound, and numpy's is as fast as ours (bench_small.py)
            return super()._predict_proba_lr(X)
        return self._softmax_scores(X)

    def _softmax_scores(self, X):
        """softmax(X @ coef_.T + intercept_) by the compiled forward pass, the softmax
        fused into it: threads, and no temporary of the logits' size. X is checked
        for NaN and infinity by the kernels' scan (check_finite), as in fit.
        (decision_function stays scikit-learn's X @ coef_.T: as fast, measured.)
        """
        X = validate_data(self, X, accept_sparse="csr", reset=False,
                          ensure_all_finite=False)
        # scikit-learn's X @ coef_.T: float32 only when both are float32.
        dtype = np.result_type(X.dtype, self.coef_.dtype, np.float32)
        dtype = np.float32 if dtype == np.float32 else np.float64
        network = _network_from(self.coef_, self.intercept_, dtype, "softmax")
        check_finite(X, self)
        return network.predict(KernelData(X, dtype))

    def predict_log_proba(self, X):
        """Log of ``predict_proba(X)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The data to predict.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            The log-probability of each class for each sample, columns ordered
            as ``classes_``.
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


# LinearRegression(solver='auto') solves directly (fastgd._lstsq) up to this many
# features, and sparse X when its densified row blocks cost under this many flops.
_LSTSQ_MAX_FEATURES = 2000
_LSTSQ_SPARSE_FLOPS = 1e10


class LinearRegression(CallbackSupportMixin, MultiOutputMixin, RegressorMixin,
                       MiniBatchMixin, LinearModel):
    __doc__ = (
        """Ordinary least squares (and ridge / lasso / elastic net) on fastgd's engine.

    A drop-in for ``sklearn.linear_model.LinearRegression`` (1.9): the same
    parameters, defaults, attributes and solution. The default
    solver solves directly (``fastgd._lstsq``: blocked Gram or QR passes over X,
    no copy of X) and returns scikit-learn's lstsq solution - minimum norm,
    singular values below ``tol * s_max`` cut - on any design, with its
    ``rank_`` and ``singular_``; 'cg' / 'lbfgs' iterate on the compiled
    full-batch gradient; 'sgd' / 'adam' train by compiled mini-batch epochs and
    support ``partial_fit``. The objective is

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
        'lstsq' (and 'auto' when it solves directly): scikit-learn's ``cond`` of
        lstsq - singular values of the centred X below ``tol`` times the largest
        are treated as zero (on sparse X too, where scikit-learn's lsqr uses it
        as its stopping tolerance instead). 'cg' / 'lbfgs': stop when every
        feature's (and the intercept's) gradient, in standardised units, is
        below ``tol`` times the RMS residual - i.e. the
        residual is orthogonal to every feature to ``tol`` (scale-free, like
        lsqr's ``atol``). 'sgd' / 'adam': improvement threshold per epoch.
    n_jobs : int or None, default=None
        Accepted for compatibility and unused: fastgd's kernels choose their
        threads themselves (``FASTGD_NUM_THREADS`` or OpenMP's limit).
    positive : bool, default=False
        When True, constrain the coefficients to be >= 0, by L-BFGS-B bounds
        ('auto' then means 'lbfgs'; not with the other solvers).
    solver : {'auto', 'lstsq', 'cg', 'lbfgs', 'sgd', 'adam', 'adamw', 'rmsprop', \
'adagrad'}, default='auto'
        'lstsq': the direct solve (ridge too when ``alpha > 0``): a Gram pass,
        iteratively refined where the conditioning calls for it, or a blocked
        QR pass and a small SVD when the design is ill-conditioned or
        rank-deficient; float32 X is solved in float64.
        'cg': conjugate gradients on the compiled full-batch gradient (the
        objective is quadratic, so one pass per iteration and exact steps).
        'lbfgs': scipy's L-BFGS-B on the same gradient; the solver of
        ``positive=True``. 'auto' is 'lbfgs' when ``positive``, else 'lstsq' up
        to 2000 features (sparse X: when ``n_samples * n_features**2 <= 1e10``),
        else 'cg'. 'cg' and 'lbfgs' are preconditioned (as if the features were
        standardised; the optimum does not move) and warn (ConvergenceWarning)
        whenever they stop short of ``tol``. 'sgd' / 'adam': compiled mini-batch
        epochs, L1 / elastic net, ``partial_fit``. scikit-learn's
        LinearRegression has no solver parameter: this one and the following
        ones, up to ``warmup_epochs``, are fastgd's additions whose defaults
        give scikit-learn's model.
    alpha : float, default=0.0
        Penalty strength, per sample (the convention of ElasticNet and
        SGDRegressor, not Ridge's); 0 is ordinary least squares.
    l1_ratio : float, default=0.0
        Share of L1 in the penalty, 0 <= l1_ratio <= 1; > 0 needs 'sgd' or
        'adam' (a proximal step, exact zeros).
    max_iter : int, default=1000
        Maximum number of 'cg' / 'lbfgs' iterations, or epochs of 'sgd' /
        'adam' (the direct solve ignores it).
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffles and the early-stopping split of 'sgd' / 'adam'; the
        other solvers are deterministic.
    verbose : int, default=0
        Print progress (the solver's iterations or epochs) when > 0.
    warm_start : bool, default=False
        When True, the iterative solvers start from the coefficients of the
        previous call.
    """ + _MINIBATCH_DOC + EXTRA_PARAMETERS_DOC + """
    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        Estimated coefficients: a 1-D array for a 1-D y, one row per target
        otherwise; in X's dtype (float32 stays float32).
    intercept_ : float or ndarray of shape (n_targets,)
        Independent term of the model; 0.0 when ``fit_intercept=False``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during fit, defined only when X has feature
        names that are all strings.
    n_iter_ : int
        'cg' / 'lbfgs' iterations or 'sgd' / 'adam' epochs run by the last fit;
        for the direct solve, its passes over X after the one that computes the
        means: 1 (Gram or QR), plus one per refinement step, plus one when the
        Gram falls back to QR. (scikit-learn's LinearRegression has no ``n_iter_``.)
    rank_ : int
        Rank of the centred, sqrt(sample_weight)-scaled X at the cutoff ``tol``,
        as scikit-learn's. Set by the direct solve on dense X only (scikit-learn
        sets it for dense X only).
    singular_ : ndarray of shape (min(n_samples, n_features),)
        Singular values of that matrix, in X's dtype (same conditions)."""
    + _PROGRESS_ATTRIBUTES_DOC + """

    See Also
    --------
    sklearn.linear_model.LinearRegression : The estimator this one replaces.
    sklearn.linear_model.SGDRegressor : scikit-learn's per-sample SGD, which
        'sgd' / 'adam' replace with mini-batches.
    sklearn.linear_model.ElasticNet : The same penalised objective, by
        coordinate descent.
    MLPRegressor : The same engine with hidden layers.
    fastgd.dask.LinearRegression : Training on a Dask cluster.

    Notes
    -----
    A linear model is a network without a hidden layer: the iterative solvers
    run the same compiled kernels as the MLPs. The direct solve (``fastgd._lstsq``)
    makes blocked passes over X (a Gram matrix, refined where the conditioning
    calls for it, or a QR factorisation when the design is ill-conditioned or
    rank-deficient), so X is never copied nor centred in memory;
    sparse CSR / CSC data is never densified. The solution is scikit-learn's to
    rounding on any design, rank-deficient ones included (the minimum-norm
    solution). :meth:`to_sklearn` returns the genuine scikit-learn estimator
    with the same coefficients.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd import LinearRegression
    >>> X = np.array([[1, 1], [1, 2], [2, 2], [2, 3]])
    >>> y = np.dot(X, np.array([1, 2])) + 3
    >>> reg = LinearRegression().fit(X, y)
    >>> bool(reg.score(X, y) > 0.999999)
    True
    >>> np.round(reg.coef_, 6), round(float(reg.intercept_), 6)
    (array([1., 2.]), 3.0)
    >>> np.round(reg.predict(np.array([[3, 5]])), 6)
    array([16.])

    Conjugate gradients on the compiled gradient reach the same solution:

    >>> cg = LinearRegression(solver="cg").fit(X, y)
    >>> bool(np.allclose(cg.coef_, reg.coef_))
    True

    The lasso by gradient steps with a proximal (soft-threshold) step, which
    gives exact zeros - scikit-learn's ``Lasso`` solution:

    >>> from sklearn.linear_model import Lasso
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 5))
    >>> y = X[:, 0] - 2 * X[:, 1] + 0.01 * rng.normal(size=200)
    >>> lasso = LinearRegression(solver="sgd", alpha=0.1, l1_ratio=1.0,
    ...                          learning_rate_init=0.01, tol=1e-7,
    ...                          n_iter_no_change=50, random_state=0).fit(X, y)
    >>> int(np.sum(lasso.coef_ == 0))
    3
    >>> bool(np.allclose(lasso.coef_, Lasso(alpha=0.1).fit(X, y).coef_, atol=1e-3))
    True
    """
    )

    _parameter_constraints: dict = {
        "fit_intercept": ["boolean"],
        "copy_X": ["boolean"],
        "n_jobs": [None, Integral],
        "positive": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "solver": [StrOptions({"auto", "lstsq", "cg", "lbfgs",
                               *_STOCHASTIC_SOLVERS})],
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
        early_stopping_metric="score",
        max_time=None,
        warmup_epochs=0,
        weight_decay=0.0,
        max_grad_norm=None,
        matmul_precision="highest",
        lazy_sparse_updates=False,
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
            epsilon, n_iter_no_change, early_stopping_metric, max_time, warmup_epochs,
            weight_decay, max_grad_norm, matmul_precision, lazy_sparse_updates,
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
                             dtype=[np.float64, np.float32],
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
    @usable_or_unfitted
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None,
            sample_weight_val=None):
        """Fit the linear model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. float32 and float64 are kept (the coefficients come
            back in that dtype), other dtypes become float64; CSR / CSC matrices
            are not densified. X is never modified.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values; several targets are fitted at once.
        sample_weight : array-like of shape (n_samples,), default=None
            Individual weights of the samples (non-negative). None gives every
            sample weight one.
        X_val : {array-like, sparse matrix} of shape (n_val, n_features), \
default=None
            fastgd's addition: a validation set of your own for the early stopping
            of 'sgd' / 'adam' (needs ``early_stopping=True``), scored instead of
            the ``validation_fraction`` split; in a Pipeline,
            ``transform_input=["X_val"]`` transforms it as X.
        y_val : array-like of shape (n_val,) or (n_val, n_targets), default=None
            fastgd's addition: the targets of ``X_val`` (both or neither).
        sample_weight_val : array-like of shape (n_val,), default=None
            fastgd's addition: weights of the validation samples.

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
        validation_set = self._validation_set(
            X_val, y_val, sample_weight_val, n_outputs=Y.shape[1],
            epochs=self.solver in _STOCHASTIC_SOLVERS)
        warm = self.warm_start and hasattr(self, "coef_")
        network = self._start(X, Y, warm)
        l2 = self.alpha * (1.0 - self.l1_ratio)
        l1 = self.alpha * self.l1_ratio
        self._random_state = check_random_state(self.random_state)
        full_batch = self._full_batch_solver(X)
        y_ndim = y.ndim
        subtasks = self._begin_fit(
            X, y, sample_weight,
            task_name={"cg": "cg-iter", "lstsq": "lstsq"}.get(full_batch, "lbfgs-iter"),
            reconstruction=lambda params: self._reconstruction(params, y_ndim))
        if self.solver in _STOCHASTIC_SOLVERS:
            if not warm:
                self._clear_progress()
            self._fit_stochastic(network, X, y, Y, sample_weight, l2, l1,
                                 incremental=False, validation_set=validation_set,
                                 subtasks=subtasks)
        else:
            self._fit_full_batch(network, X, Y, sample_weight, l2, subtasks=subtasks)
            self._adopt(network, y.ndim)
        end_fit(self, X, y, sample_weight)
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

    def _reconstruction(self, params, y_ndim):
        d = self.n_features_in_
        k = params.size // (d + 1)
        network = Network([d, k], "identity", "identity", params.copy())
        coef, intercept = _coef_intercept(network)
        if y_ndim == 1:
            return {"coef_": coef.ravel(),
                    "intercept_": intercept[0] if self.fit_intercept else 0.0}
        return {"coef_": coef, "intercept_": intercept if self.fit_intercept else 0.0}

    def _full_batch_solver(self, X):
        """The solver 'auto' stands for, by measurement (benchmarks/bench_lstsq.py).

        The direct solve costs ~n d^2 flops (one BLAS-3 pass) plus O(d^3), CG
        ~4 n d (or 4 nnz) per iteration, up to d iterations on ill-conditioned
        data - and only the direct solve reproduces lstsq's cutoff and
        minimum-norm semantics. So: direct up to d = 2000 features (dense), or
        sparse X whose densified blocks cost under ~1e10 flops; CG beyond.
        """
        if self.solver != "auto":
            return self.solver
        if self.positive:
            return "lbfgs"
        n, d = X.shape
        if d <= _LSTSQ_MAX_FEATURES and (not sp.issparse(X)
                                         or n * d * d <= _LSTSQ_SPARSE_FLOPS):
            return "lstsq"
        return "cg"

    def _fit_lstsq(self, network, X, Y, sample_weight, l2):
        from fastgd._lstsq import lstsq

        # y in X's dtype, as scikit-learn's _preprocess_data casts it.
        result = lstsq(X, np.asarray(Y, dtype=X.dtype), sample_weight, fit_intercept=self.fit_intercept,
                       tol=self.tol, l2=l2)
        W, b = network.views()
        W[0][...] = result.coef
        b[0][...] = result.intercept
        self.n_iter_ = result.n_passes
        if sp.issparse(X):
            # scikit-learn's sparse fit (lsqr) sets neither.
            for name in ("rank_", "singular_"):
                self.__dict__.pop(name, None)
        else:
            self.rank_ = result.rank
            self.singular_ = result.singular.astype(X.dtype)
        if self.verbose:
            print("lstsq: %s, %d pass(es) over X, rank %d"
                  % (result.method, result.n_passes, result.rank))

    def _fit_full_batch(self, network, X, Y, sample_weight, l2, subtasks=NO_SUBTASKS):
        solver = self._full_batch_solver(X)
        if solver == "lstsq":
            subtasks.begin(network.params)  # one pass: one subtask
            self._fit_lstsq(network, X, Y, sample_weight, l2)
            subtasks.end(network.params)
            return
        for name in ("rank_", "singular_"):
            self.__dict__.pop(name, None)
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
                                 l2 * (a / c) * (a / c) if l2 else 0.0, subtasks)
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
        solver = self._full_batch_solver(X)
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
                subtasks=subtasks,
            )
        else:
            n_iter, status = _lbfgs(
                objective, x0, max_iter=self.max_iter, tol=self.tol,
                criterion=criterion, verbose=self.verbose, positive=self.positive,
                ftol=0.0, subtasks=subtasks,
            )
        self.n_iter_ = n_iter
        # Every stop short of tol warns, whatever the status code.
        if status == STOPPED_BY_CALLBACK:
            warn_stopped_by_callback(solver, n_iter)
        elif status == 1:
            warnings.warn(
                "%s did not reach tol=%g in max_iter=%d iterations. Increase "
                "max_iter, or scale your data." % (solver, self.tol, self.max_iter),
                ConvergenceWarning,
            )
        elif status == 2:
            warnings.warn(
                "%s stopped after %d iterations short of tol=%g: further "
                "iterations no longer reduced the gradient (the limit of the "
                "working precision on this ill-conditioned problem). The "
                "coefficients may be inaccurate; solver='lstsq' (the default "
                "'auto' for up to %d features) solves directly."
                % (solver, n_iter, self.tol, _LSTSQ_MAX_FEATURES),
                ConvergenceWarning,
            )
        elif status != 0:
            warnings.warn(
                "%s stopped after %d iterations short of tol=%g: %s"
                % (solver, n_iter, self.tol, getattr(status, "message", status)),
                ConvergenceWarning,
            )

    def _encode_validation_targets(self, y_val):
        y_val = np.asarray(y_val, dtype=np.float64)
        return (y_val.reshape(-1, 1) if y_val.ndim == 1 else y_val), None

    def _fit_stochastic(self, network, X, y, Y, sample_weight, l2, l1, incremental,
                        validation_set=None, subtasks=NO_SUBTASKS):
        def make_validation(X_val, Y_val, sample_weight_val, _):
            val_data = KernelData(X_val, network.dtype)

            def r2_and_loss():
                out = network.predict(val_data)
                if not np.isfinite(out).all():
                    return np.nan, np.nan
                return (float(r2_score(Y_val, out, sample_weight=sample_weight_val)),
                        float(LOSS_FUNCTIONS["squared_error"](Y_val, out,
                                                              sample_weight_val)))
            return r2_and_loss

        outcome = self._run_minibatch(
            network, X, Y, sample_weight, loss="squared_error",
            penalty=minibatch_penalty(self, l2, l1), incremental=incremental,
            make_validation=make_validation, validation_set=validation_set,
            subtasks=subtasks,
        )
        self._adopt(network, y.ndim)
        self.n_iter_ = outcome.n_iter
        self._record_progress(outcome)
        report_divergence(outcome, self.early_stopping)

    @available_if(lambda est: est._check_partial_fit_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    @usable_or_unfitted
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch of the mini-batch solver ('sgd' / 'adam') over (X, y).

        Only for ``solver='sgd'`` / ``'adam'``; ``early_stopping`` is not
        allowed. The optimizer state carries over between calls.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training data.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            The targets of the chunk (as many as in the first call).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples of the chunk. None gives every sample weight
            one.

        Returns
        -------
        self : object
            The updated estimator.
        """
        self._check_solver_options()
        first = not hasattr(self, "coef_")
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
            self._clear_progress()
        self._fit_stochastic(network, X, y, Y, sample_weight,
                             self.alpha * (1 - self.l1_ratio),
                             self.alpha * self.l1_ratio, incremental=True)
        return self

    def predict(self, X):
        """Predict with the linear model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The data to predict.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
            ``X @ coef_.T + intercept_``, in the coefficients' dtype.
        """
        return self._decision_function(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

