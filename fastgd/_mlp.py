"""Drop-in MLPClassifier and MLPRegressor over the compiled engine.

The public behaviour (parameters, attributes, random draws, stopping rules,
messages) follows scikit-learn 1.9's ``sklearn.neural_network``; the numerical
work runs in ``fastgd._kernels`` through ``fastgd._engine``.
"""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    _fit_context,
    is_classifier,
)
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.callback import CallbackSupportMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.neural_network._base import LOSS_FUNCTIONS
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    type_of_target,
    unique_labels,
)
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from fastgd._callbacks import NO_SUBTASKS, end_fit
from fastgd._engine import KernelData, Network, check_finite, pack, unpack
from fastgd._minibatch import (
    _STOCHASTIC_SOLVERS,
    EXTRA_PARAMETERS_DOC,
    MINIBATCH_CONSTRAINTS,
    NON_FINITE_MESSAGE,
    MiniBatchMixin,
    Progress,
    report_divergence,
    usable_or_unfitted,
)
from fastgd._threads import holding_single_threaded_blas


class BaseMultilayerPerceptron(CallbackSupportMixin, MiniBatchMixin, BaseEstimator):
    """Shared fit/predict logic of the MLP estimators (not for direct use)."""

    _parameter_constraints: dict = {
        **MINIBATCH_CONSTRAINTS,
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu",
                                   "leaky_relu", "gelu", "silu"})],
        "solver": [StrOptions({"lbfgs", *_STOCHASTIC_SOLVERS})],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self, hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
        learning_rate_init, power_t, max_iter, loss, shuffle, random_state, tol,
        verbose, warm_start, momentum, nesterovs_momentum, early_stopping,
        validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun,
        early_stopping_metric="score", max_time=None, warmup_epochs=0,
        weight_decay=0.0, max_grad_norm=None, matmul_precision="highest",
        lazy_sparse_updates=False, dropout=0.0,
    ):
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.max_iter = max_iter
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.max_fun = max_fun
        self.dropout = dropout
        self._set_minibatch_params(
            batch_size, learning_rate, learning_rate_init, power_t, shuffle, momentum,
            nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2,
            epsilon, n_iter_no_change, early_stopping_metric, max_time, warmup_epochs,
            weight_decay, max_grad_norm, matmul_precision, lazy_sparse_updates,
        )

    # -- network plumbing --------------------------------------------------------

    def _loss_name(self):
        # A logistic output (binary / multilabel) pairs with the binary log loss.
        if self.loss == "log_loss" and self.out_activation_ == "logistic":
            return "binary_log_loss"
        return self.loss

    def _network(self, dtype):
        """A Network over a fresh flat copy of coefs_/intercepts_ in ``dtype``."""
        units = [self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]
        params = pack(self.coefs_, self.intercepts_, dtype)
        return Network(units, self.activation, self.out_activation_, params,
                       dropout=getattr(self, "dropout", 0.0))

    def _adopt(self, network):
        """Point coefs_/intercepts_ at the network's flat buffer (views, no copy)."""
        self.coefs_, self.intercepts_ = network.views()

    def _forward_pass_fast(self, X, check_input=True):
        """Output-layer activations (n_samples, n_outputs) for X."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                              ensure_all_finite=False)
            check_finite(X, self)
        # As numpy would: float32 stays float32 only if the weights are float32 too.
        dtype = np.result_type(X.dtype, self.coefs_[0].dtype)
        if dtype not in (np.float32, np.float64):
            dtype = np.float64
        network = self._network(dtype)
        return network.predict(KernelData(X, dtype))

    # -- fitting -----------------------------------------------------------------

    def _initialize(self, y, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"

        # Glorot uniform, drawn layer by layer (coefs then intercepts) from the same
        # RandomState stream as scikit-learn, so the initial weights are identical.
        factor = 2.0 if self.activation == "logistic" else 6.0
        coefs, intercepts = [], []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coefs.append(self._random_state.uniform(-bound, bound, (fan_in, fan_out)))
            intercepts.append(self._random_state.uniform(-bound, bound, fan_out))
        self.coefs_ = [c.astype(dtype, copy=False) for c in coefs]
        self.intercepts_ = [b.astype(dtype, copy=False) for b in intercepts]
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]

        if self.solver in _STOCHASTIC_SOLVERS:
            # scikit-learn's fresh record: loss_curve_, best_loss_, ...
            for attribute, value in Progress(self.early_stopping).attributes().items():
                setattr(self, attribute, value)

    def _fit(self, X, y, sample_weight=None, incremental=False, X_val=None, y_val=None,
             sample_weight_val=None):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError(
                "hidden_layer_sizes must be > 0, got %s." % hidden_layer_sizes
            )
        first_pass = not hasattr(self, "coefs_") or (
            not self.warm_start and not incremental
        )
        labels = y  # as the callbacks' hooks see them (scorers need labels)
        X, y, sample_weight = self._validate_input(X, y, sample_weight, incremental,
                                                   reset=first_pass)
        n_samples, n_features = X.shape
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        validation_set = self._validation_set(X_val, y_val, sample_weight_val,
                                              n_outputs=y.shape[1],
                                              epochs=self.solver in _STOCHASTIC_SOLVERS)
        self.n_outputs_ = y.shape[1]
        layer_units = [n_features] + hidden_layer_sizes + [self.n_outputs_]

        # Re-seeded on every call, partial_fit included, exactly as scikit-learn.
        self._random_state = check_random_state(self.random_state)
        self._check_matmul_dtype(X.dtype)
        if first_pass:
            self._initialize(y, layer_units, X.dtype)

        subtasks = NO_SUBTASKS
        if not incremental:
            subtasks = self._begin_fit(X, labels, sample_weight)
        if self.solver in _STOCHASTIC_SOLVERS:
            self._fit_stochastic(X, y, sample_weight, incremental, validation_set,
                                 subtasks=subtasks)
        elif self.solver == "lbfgs":
            self._fit_lbfgs(X, y, sample_weight, subtasks=subtasks)

        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError(NON_FINITE_MESSAGE + " Scale the data, e.g. with "
                             "sklearn.preprocessing.StandardScaler.")
        if not incremental:
            end_fit(self, X, labels, sample_weight)
        return self

    def _reconstruction(self, params):
        """The fitted attributes of a model holding the flat parameters ``params``
        (callbacks' fitted_estimator)."""
        units = [self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]
        coefs, intercepts = unpack(params.astype(self.coefs_[0].dtype, copy=False),
                                   units)
        return {"coefs_": coefs, "intercepts_": intercepts}

    @holding_single_threaded_blas
    def _fit_lbfgs(self, X, y, sample_weight, subtasks=NO_SUBTASKS):
        dtype = self.coefs_[0].dtype  # later calls keep the weights' dtype
        network = self._network(dtype)
        data = KernelData(X, dtype, y, sample_weight)
        loss_name = self._loss_name()

        def loss_and_gradient(packed):
            network.params[:] = packed
            loss = network.loss_gradient(data, loss_name, self.alpha)
            return loss, network.grads.astype(np.float64)

        iprint = 1 if (self.verbose is True or self.verbose >= 1) else -1
        options = {"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol}
        if tuple(int(v) for v in scipy.__version__.split(".")[:2]) < (1, 15):
            options["iprint"] = iprint
        stopped = []

        def callback(intermediate_result):
            # each iteration is a callback subtask; True from a hook stops here
            if subtasks.end(intermediate_result.x):
                stopped.append(True)
                raise StopIteration
            subtasks.begin(intermediate_result.x)

        x0 = network.params.astype(np.float64)
        subtasks.begin(x0)
        opt_res = scipy.optimize.minimize(
            loss_and_gradient,
            x0,
            method="L-BFGS-B",
            jac=True,
            options=options,
            callback=callback if subtasks.active else None,
        )
        subtasks.close()
        if stopped:
            self.n_iter_ = int(opt_res.nit)
            warnings.warn(
                "lbfgs: a callback stopped training after %d iteration(s); the "
                "optimization hasn't converged yet." % self.n_iter_, ConvergenceWarning)
        else:
            self.n_iter_ = _check_optimize_result("lbfgs", opt_res, self.max_iter)
        self.loss_ = opt_res.fun
        network.params[:] = opt_res.x
        self._adopt(network)

    def _fit_stochastic(self, X, y, sample_weight, incremental, validation_set=None,
                        subtasks=NO_SUBTASKS):
        # The weights' dtype wins over X's on later calls (warm_start, partial_fit),
        # as in scikit-learn, which updates its weight arrays in place.
        dtype = self.coefs_[0].dtype
        network = self._network(dtype)
        loss_function = LOSS_FUNCTIONS[self._loss_name()]

        def make_validation(X_val, Y_val, sample_weight_val, _):
            # scikit-learn scores self._score(X_val, labels); one forward pass gives
            # the same score and the loss (without the penalty) as well.
            score_function = accuracy_score if is_classifier(self) else r2_score
            y_true = (self._label_binarizer.inverse_transform(Y_val)
                      if is_classifier(self) else Y_val)

            def validation():
                out = self._forward_pass_fast(X_val, check_input=False)
                if not np.isfinite(out).all():
                    return np.nan, np.nan
                score = score_function(y_true, self._decode(out),
                                       sample_weight=sample_weight_val)
                return float(score), float(loss_function(Y_val, out, sample_weight_val))
            return validation

        # After early stopping, scikit-learn's coefs_ ARE its _best_coefs arrays, so
        # a warm-started fit trains the "best" weights in place and, if no epoch
        # beats the old best score, keeps the last weights (best=None). Matched on
        # purpose. A hand-built model may have no _best_coefs at all.
        best = None
        best_coefs = getattr(self, "_best_coefs", None)
        best_intercepts = getattr(self, "_best_intercepts", None)
        if best_coefs is not None and best_intercepts is not None and not all(
            a is b for a, b in zip(self.coefs_ + self.intercepts_,
                                   best_coefs + best_intercepts)
        ):
            best = pack(best_coefs, best_intercepts, dtype)
        # scikit-learn trains on through NaN and checks the weights at the end; the
        # driver stops at the first non-finite epoch and undoes it. A poisson loss is
        # NaN throughout when some y < 0 (outside its domain), and scikit-learn
        # trains on regardless: there only the weights are watched.
        outcome = self._run_minibatch(
            network, X, y, sample_weight, loss=self._loss_name(), penalty=self.alpha,
            incremental=incremental,
            # Same call, same RandomState, so the same split as scikit-learn.
            stratify=y if is_classifier(self) and self.n_outputs_ == 1 else None,
            make_validation=make_validation, validation_set=validation_set, best=best,
            watch_loss=not (self.loss == "poisson" and (y < 0).any()),
            before_run=lambda: self._adopt(network),  # the scorer reads coefs_
            subtasks=subtasks,
        )
        self._adopt(network)
        if self.early_stopping:
            self._best_coefs, self._best_intercepts = self.coefs_, self.intercepts_
        self.n_iter_ = outcome.n_iter
        self._record_progress(outcome)
        report_divergence(outcome, self.early_stopping)

    @_fit_context(prefer_skip_nested_validation=True)
    @usable_or_unfitted
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None,
            sample_weight_val=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data. float32 and float64 are kept (the model trains in
            that dtype), other dtypes become float64; CSR / CSC matrices are not
            densified. X is not copied when it is already C-contiguous in the
            working dtype.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in
            regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights: each sample's loss (and its share of the L2 penalty's
            normalisation) is weighted. None gives every sample weight one.
        X_val : {array-like, sparse matrix} of shape (n_val, n_features), \
default=None
            fastgd's addition: a validation set of your own for early stopping
            (needs ``early_stopping=True`` and 'sgd' / 'adam'), scored instead of
            the ``validation_fraction`` split (HistGradientBoosting's
            convention). In a Pipeline, ``transform_input=["X_val"]`` transforms
            it as X.
        y_val : array-like of shape (n_val,) or (n_val, n_outputs), default=None
            fastgd's addition: the targets of ``X_val`` (both or neither).
        sample_weight_val : array-like of shape (n_val,), default=None
            fastgd's addition: weights of the validation samples.

        Returns
        -------
        self : object
            The trained model.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False,
                         X_val=X_val, y_val=y_val, sample_weight_val=sample_weight_val)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                " optimizers. %s is not stochastic." % self.solver
            )
        return True

    def _score_with_function(self, X, y, sample_weight, score_function):
        """Score without input validation (keeps feature names out of the way)."""
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


_COMMON_DOC = """
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer; at least
        one hidden layer (a model without one is :class:`fastgd.LogisticRegression`
        or :class:`fastgd.LinearRegression`).
    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', 'gelu', \
'silu'}, default='relu'
        Activation function of the hidden layers:

        - 'identity': f(x) = x, a linear bottleneck;
        - 'logistic': the logistic sigmoid, f(x) = 1 / (1 + exp(-x));
        - 'tanh': the hyperbolic tangent, f(x) = tanh(x);
        - 'relu': the rectified linear unit, f(x) = max(0, x);
        - 'leaky_relu' (fastgd's addition): f(x) = x for x > 0, 0.01 x below
          (torch's default slope);
        - 'gelu' (fastgd's addition): the exact GELU, f(x) = x Phi(x) with Phi the
          standard normal CDF (torch's default);
        - 'silu' (fastgd's addition): f(x) = x / (1 + exp(-x)).

        The kernels fuse it with the bias addition (forward) and its derivative
        with the backward product. Models using fastgd's additions cannot be
        exported to scikit-learn or ONNX.
    solver : {'lbfgs', 'sgd', 'adam', 'adamw', 'rmsprop', 'adagrad'}, default='adam'
        The weight optimizer:

        - 'lbfgs': scipy's L-BFGS-B over the compiled full-batch loss and
          gradient; converges faster and better on small data sets. Unlike
          scikit-learn, float32 data keeps float32 weights.
        - 'sgd': mini-batch stochastic gradient descent, with ``momentum``,
          Nesterov's momentum and the ``learning_rate`` schedules.
        - 'adam': Kingma and Ba's adaptive moment estimation; works well on
          large data sets.
        - 'adamw', 'rmsprop', 'adagrad' (fastgd's additions): step for step as
          torch.optim's AdamW (decoupled ``weight_decay``), RMSprop (its alpha =
          ``beta_2``, no momentum) and Adagrad, all with ``epsilon``.

        All but 'lbfgs' run one whole compiled epoch per kernel call (batch
        gather, forward, backward, penalty and optimizer update without the GIL).
    alpha : float, default=0.0001
        Strength of the L2 penalty ``alpha / 2 * sum of squared weights`` (the
        intercepts are not penalised), divided by the (weighted) number of samples
        of the mini-batch for 'sgd' / 'adam' and of the whole data for 'lbfgs', as
        in scikit-learn.
    batch_size : int or 'auto', default='auto'
        Size of the mini-batches of 'sgd' / 'adam' ('lbfgs' uses the whole data);
        'auto' is ``min(200, n_samples)``. Larger than n_samples: a warning, and
        n_samples is used.
    learning_rate : {'constant', 'invscaling', 'adaptive', 'cosine'}, \
default='constant'
        Learning-rate schedule:

        - 'constant': ``learning_rate_init`` throughout;
        - 'invscaling': ``learning_rate_init / pow(t + 1, power_t)`` with t the
          number of samples seen, updated once per epoch ('sgd' only, as in
          scikit-learn);
        - 'adaptive': ``learning_rate_init`` while training improves; after
          ``n_iter_no_change`` epochs without an improvement of the training loss
          (or of the validation score with ``early_stopping``) by ``tol``, divided
          by 5, and training stops once it falls below 1e-6 ('sgd' only);
        - 'cosine' (fastgd's addition, every mini-batch solver): epoch e (from 0)
          trains at ``learning_rate_init * (1 + cos(pi * e / max_iter)) / 2``,
          PyTorch's ``CosineAnnealingLR(T_max=max_iter)`` stepped once per epoch.

        ``warmup_epochs`` multiplies any of them by a linear warm-up.
    learning_rate_init : float, default=0.001
        The initial learning rate of the mini-batch solvers (the step size of the
        weight updates).
    power_t : float, default=0.5
        The exponent of the 'invscaling' schedule ('sgd' only).
    max_iter : int, default=200
        Maximum number of iterations: epochs (passes over the data) for 'sgd' and
        'adam', which stop earlier by ``tol`` / ``n_iter_no_change``; L-BFGS
        iterations for 'lbfgs'. Stopping at max_iter without convergence warns
        (``ConvergenceWarning``).
    shuffle : bool, default=True
        Whether to shuffle the samples at every epoch ('sgd', 'adam').
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffles and the early-stopping split,
        drawn from the same ``RandomState`` stream as scikit-learn: with the same
        value both start from the same weights and see the same batches. Pass an
        int for reproducible results across calls; fastgd's models are then
        bit-identical run to run on a machine, whatever the number of threads.
    tol : float, default=1e-4
        Tolerance of the optimisation. 'sgd' / 'adam': when the training loss (or
        the validation score with ``early_stopping``) does not improve by at
        least tol for ``n_iter_no_change`` consecutive epochs, training has
        converged and stops (or, with 'adaptive', the learning rate drops).
        'lbfgs': scipy's ``gtol``, the limit on the projected gradient.
    verbose : bool, default=False
        Print the loss of each epoch (scikit-learn's messages) to stdout.
    warm_start : bool, default=False
        When True, ``fit`` starts from the weights of the previous call instead
        of new random weights (with a new optimizer, as scikit-learn).
    momentum : float, default=0.9
        Momentum of the 'sgd' updates, between 0 and 1.
    nesterovs_momentum : bool, default=True
        Whether 'sgd' uses Nesterov's momentum (with momentum > 0).
    early_stopping : bool, default=False
        Whether to stop 'sgd' / 'adam' when the validation score stops improving:
        ``validation_fraction`` of the training data is held out (stratified for
        single-output classification, the same split as scikit-learn), and
        training stops when the validation score has not improved by ``tol`` for
        ``n_iter_no_change`` consecutive epochs; the weights of the best epoch are
        restored. fastgd's additions: ``fit(X_val=..., y_val=...)`` scores a
        validation set of your own instead of the split, and
        ``early_stopping_metric='loss'`` watches the validation loss.
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping, between 0 and 1
        (used with ``early_stopping=True`` only, and not when X_val is given).
    beta_1 : float, default=0.9
        Adam's exponential decay rate of the first moment estimates, in [0, 1).
    beta_2 : float, default=0.999
        Adam's exponential decay rate of the second moment estimates, in [0, 1).
    epsilon : float, default=1e-8
        Adam's numerical stability constant, added to the square root of the
        second moment (scikit-learn's form, with the bias correction folded into
        the learning rate).
    n_iter_no_change : int, default=10
        Number of epochs without an improvement by ``tol`` before 'sgd' / 'adam'
        stop (or 'adaptive' lowers the rate).
    max_fun : int, default=15000
        Maximum number of loss function calls of 'lbfgs' (each call is one
        compiled full-batch loss and gradient); it may stop before max_iter.""" \
    + EXTRA_PARAMETERS_DOC + """    dropout : float, default=0.0
        Inverted dropout on the hidden layers while training (the mini-batch
        solvers): each hidden unit's output is zeroed with this probability in each
        row and batch, the others scaled by 1 / (1 - dropout). The masks are drawn
        from ``random_state`` (identical reruns); ``predict`` uses no dropout, so
        the fitted model exports as usual. Not with 'lbfgs'.
"""

_ATTRIBUTES_DOC = """
    loss_ : float
        The current loss computed with the loss function (the penalty included).
    best_loss_ : float or None
        The minimum training loss reached by 'sgd' / 'adam'; None with
        ``early_stopping=True`` (then ``best_validation_score_`` is the one
        watched).
    loss_curve_ : list of shape (`n_iter_`,)
        The training loss at the end of each epoch ('sgd' / 'adam').
    validation_scores_ : list of shape (`n_iter_`,) or None
        The score on the validation set after each epoch, with
        ``early_stopping=True`` (None otherwise).
    best_validation_score_ : float or None
        The best of ``validation_scores_`` (None without early stopping).
    validation_loss_curve_ : list of shape (`n_iter_`,)
        fastgd's addition, with ``early_stopping=True`` only: the validation loss
        (the training loss without the penalty) after each epoch.
    best_validation_loss_ : float
        fastgd's addition, with ``early_stopping=True`` only: the lowest of
        ``validation_loss_curve_``.
    t_ : int
        The number of training samples seen by the solver during fitting.
    coefs_ : list of shape (n_layers - 1,)
        ``coefs_[i]`` is the weight matrix of shape (fan_in, fan_out) between layer i
        and layer i + 1. The arrays are views into the one flat parameter buffer
        the kernels update; their dtype is the training data's (float32 stays
        float32).
    intercepts_ : list of shape (n_layers - 1,)
        ``intercepts_[i]`` is the bias vector of layer i + 1 (views, as ``coefs_``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during fit, defined only when X has feature
        names that are all strings.
    n_iter_ : int
        The number of iterations the solver ran: epochs for 'sgd' / 'adam',
        L-BFGS iterations for 'lbfgs'.
    n_layers_ : int
        Number of layers, the input and output layers included.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        Name of the output activation.
"""


_NOTES_DOC = """
    Notes
    -----
    One compiled engine trains all four fastgd estimators: each 'sgd' / 'adam'
    epoch is one call into the Cython kernels, which gather the batch rows, run the
    forward pass (BLAS products with the bias and activation fused), the loss and
    the backward pass, and update the one flat parameter buffer (``coefs_`` and
    ``intercepts_`` are views into it) without the GIL; Python runs once per
    epoch. 'lbfgs' runs scipy's L-BFGS-B over the compiled full-batch loss and
    gradient.

    - dtype: float32 input trains and predicts in float32 (lbfgs too, where
      scikit-learn hands back float64 weights); other dtypes become float64.
    - Sparse input (CSR / CSC) is multiplied as it is, never densified, and gives
      the dense fit's model to rounding.
    - Threads: each mini-batch is cut into row slices summed in a fixed order, so
      a given ``random_state`` gives bit-identical models run to run on one
      machine, whatever the number of threads (``FASTGD_NUM_THREADS`` or
      OpenMP's limit) or the load.
    - Where fastgd differs on purpose: diverging 'sgd' / 'adam' training
      (non-finite loss or weights) stops at that epoch, puts back the last finite
      weights and raises scikit-learn's ``ValueError`` with advice (scikit-learn
      trains on and raises at the end); Ctrl-C stops between mini-batches and
      leaves a usable model; after any exception the model is usable or cleanly
      unfitted.
    - Callbacks: scikit-learn 1.9's ``set_callbacks`` (``sklearn.callback``)
      sees every epoch, or every L-BFGS iteration, as a subtask.
    - Export: :meth:`to_sklearn` returns the genuine scikit-learn estimator
      with the same weights; with skl2onnx installed, ``skl2onnx.to_onnx(model,
      X[:1])`` converts the model.
"""

class MLPClassifier(ClassifierMixin, BaseMultilayerPerceptron):
    __doc__ = (
        """Multi-layer perceptron classifier: scikit-learn's, trained by compiled kernels.

    A drop-in for ``sklearn.neural_network.MLPClassifier`` (1.9): the same
    parameters, defaults, attributes, methods, warnings and errors and, for a
    given ``random_state``, the same numbers (in float64 the loss curve and the
    weights follow scikit-learn's to rounding). It minimises the log loss of a
    dense network with a logistic output for binary and multilabel targets and a
    softmax output for multiclass targets.

    Parameters
    ----------"""
        + _COMMON_DOC
        + """
    class_weight : dict, 'balanced' or None, default=None
        fastgd's addition (scikit-learn's MLPClassifier has none): weights of the
        classes, ``{class_label: weight}``, multiplied into ``sample_weight`` as in
        LogisticRegression. 'balanced' gives class c the weight ``n_samples /
        (n_classes * count of c)``, from the weighted counts. Not for multilabel
        targets; 'balanced' is refused by ``partial_fit`` (one batch's class
        frequencies are not the data's). None: every class has weight one.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels for each output."""
        + _ATTRIBUTES_DOC
        + """
    See Also
    --------
    sklearn.neural_network.MLPClassifier : The estimator this one replaces.
    MLPRegressor : The regressor on the same engine.
    LogisticRegression : The same engine without a hidden layer.
    fastgd.dask.MLPClassifier : Training on a Dask cluster.
"""
        + _NOTES_DOC
        + """
    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from fastgd import MLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X / 16, y,
    ...                                                     random_state=0)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01,
    ...                     random_state=0)
    >>> clf.fit(X_train, y_train)
    MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0)
    >>> clf.predict_proba(X_test[:2]).shape
    (2, 10)
    >>> bool(clf.score(X_test, y_test) > 0.9)
    True

    The same ``random_state`` gives scikit-learn's numbers:

    >>> import numpy as np
    >>> from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
    >>> ref = SklearnMLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01,
    ...                            random_state=0)
    >>> ref = ref.fit(X_train, y_train)
    >>> clf.n_iter_ == ref.n_iter_, bool(np.allclose(clf.loss_curve_, ref.loss_curve_))
    (True, True)

    A fitted copy for a system that has only scikit-learn:

    >>> type(clf.to_sklearn())
    <class 'sklearn.neural_network._multilayer_perceptron.MLPClassifier'>
    """
    )

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        early_stopping_metric="score",
        max_time=None,
        warmup_epochs=0,
        weight_decay=0.0,
        max_grad_norm=None,
        matmul_precision="highest",
        lazy_sparse_updates=False,
        dropout=0.0,
        class_weight=None,
    ):
        self.class_weight = class_weight
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation,
            solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, loss="log_loss", shuffle=shuffle,
            random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            early_stopping_metric=early_stopping_metric, max_time=max_time,
            warmup_epochs=warmup_epochs, weight_decay=weight_decay,
            max_grad_norm=max_grad_norm, matmul_precision=matmul_precision,
            dropout=dropout, lazy_sparse_updates=lazy_sparse_updates,
        )

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def _validate_input(self, X, y, sample_weight, incremental, reset):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
            dtype=(np.float64, np.float32), reset=reset, ensure_all_finite=False,
        )
        check_finite(X, self)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        sample_weight = self._class_weighted(X, y, sample_weight, incremental)
        # Indicator matrix; the engine converts it to the working float dtype.
        return X, self._indicator(y), sample_weight

    def _class_weighted(self, X, y, sample_weight, incremental):
        """sample_weight x class_weight[y] (LogisticRegression's meaning)."""
        if self.class_weight is None:
            return sample_weight
        if self._label_binarizer.y_type_.startswith("multilabel"):
            raise ValueError(
                "class_weight is not supported for multilabel targets: give each "
                "sample its weight with sample_weight instead."
            )
        if incremental and self.class_weight == "balanced":
            raise ValueError(
                "class_weight 'balanced' is not supported for partial_fit: the "
                "class frequencies of one batch are not those of the data. Compute "
                "the weights once with sklearn.utils.class_weight."
                "compute_class_weight and pass them as a dict."
            )
        cw = compute_class_weight(self.class_weight, classes=self.classes_, y=y,
                                  sample_weight=sample_weight)
        weights = cw[np.searchsorted(self.classes_, y)]
        return weights if sample_weight is None else sample_weight * weights

    def _encode_validation_targets(self, y_val):
        y_val = np.asarray(y_val)
        if y_val.ndim == 2 and y_val.shape[1] == 1:
            y_val = column_or_1d(y_val, warn=True)
        unknown = np.setdiff1d(unique_labels(y_val), self.classes_)
        if len(unknown):
            raise ValueError(f"y_val has classes not in the training data: {unknown}")
        return self._indicator(y_val), None

    def _indicator(self, y):
        """LabelBinarizer.transform(y) as bool, for labels already checked above.

        For 1-D binary/multiclass y the matrix is built from the label positions in
        ``classes_`` (every label is known here): a third of the validation time of a
        50,000-row fit went to ``transform``'s own re-validation of y.
        """
        binarizer = self._label_binarizer
        if y.ndim == 1 and binarizer.y_type_ in ("binary", "multiclass") and (
                len(binarizer.classes_) >= 2):
            codes = np.searchsorted(binarizer.classes_, y)
            if len(binarizer.classes_) == 2:
                return (codes == 1)[:, np.newaxis]
            indicator = np.zeros((len(y), len(binarizer.classes_)), dtype=bool)
            indicator[np.arange(len(y)), codes] = True
            return indicator
        return binarizer.transform(y).astype(bool)

    def predict(self, X):
        """Predict class labels.

        Prediction runs the compiled forward pass in bounded chunks of rows, in
        the dtype of the weights (float32 stays float32).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes (an indicator matrix for multilabel targets).
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        return self._decode(self._forward_pass_fast(X, check_input=check_input))

    def _decode(self, out):
        """Labels from the output layer's activations."""
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    def _score(self, X, y, sample_weight=None):
        return super()._score_with_function(
            X, y, sample_weight=sample_weight, score_function=accuracy_score
        )

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    @usable_or_unfitted
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch over the given data.

        Only for 'sgd' and 'adam' (the attribute does not exist for 'lbfgs'). The
        optimizer state carries over between calls; ``max_iter`` and the stopping
        rules do not apply, and ``early_stopping`` is not allowed.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            The target values: class labels, or a multilabel indicator matrix.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights. None gives every sample weight one.
        classes : array of shape (n_classes,), default=None
            All the classes that can appear across calls; required on the first
            call, ignored (and checked against ``classes_``) on later calls.

        Returns
        -------
        self : object
            The updated model.
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_log_proba(self, X):
        """Log of the class probabilities, ``log(predict_proba(X))``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            Log-probabilities, columns ordered as ``classes_``.
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            Probabilities, columns ordered as ``classes_``, in the dtype of the
            weights. For multilabel targets, each column is the probability of
            that label on its own.
        """
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMultilayerPerceptron):
    __doc__ = (
        """Multi-layer perceptron regressor: scikit-learn's, trained by compiled kernels.

    A drop-in for ``sklearn.neural_network.MLPRegressor`` (1.9): the same
    parameters, defaults, attributes, methods, warnings and errors and, for a
    given ``random_state``, the same numbers. It minimises the squared error (or
    the Poisson deviance) of a dense network with an identity (or exponential)
    output, one output per target.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        The loss: half the squared error with an identity output, or half the
        Poisson deviance with an exponential output (for non-negative targets
        such as counts). As in scikit-learn, the squared error is reported
        (``loss_``, ``loss_curve_``) averaged over the outputs but its gradient
        is that of their sum."""
        + _COMMON_DOC
        + """
    Attributes
    ----------"""
        + _ATTRIBUTES_DOC
        + """
    See Also
    --------
    sklearn.neural_network.MLPRegressor : The estimator this one replaces.
    MLPClassifier : The classifier on the same engine.
    LinearRegression : The same engine without a hidden layer.
    fastgd.dask.MLPRegressor : Training on a Dask cluster.
"""
        + _NOTES_DOC
        + """
    Examples
    --------
    >>> import numpy as np
    >>> from fastgd import MLPRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-1, 1, size=(500, 3))
    >>> y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2]
    >>> reg = MLPRegressor(hidden_layer_sizes=(64,), solver="lbfgs", random_state=0)
    >>> reg.fit(X, y)
    MLPRegressor(hidden_layer_sizes=(64,), random_state=0, solver='lbfgs')
    >>> reg.predict(X[:3]).shape
    (3,)
    >>> bool(reg.score(X, y) > 0.95)
    True

    float32 data trains and predicts in float32:

    >>> reg32 = MLPRegressor(hidden_layer_sizes=(64,), solver="lbfgs",
    ...                      random_state=0).fit(X.astype(np.float32), y)
    >>> reg32.coefs_[0].dtype, reg32.predict(X[:3].astype(np.float32)).dtype
    (dtype('float32'), dtype('float32'))
    """
    )

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        early_stopping_metric="score",
        max_time=None,
        warmup_epochs=0,
        weight_decay=0.0,
        max_grad_norm=None,
        matmul_precision="highest",
        lazy_sparse_updates=False,
        dropout=0.0,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation,
            solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, loss=loss, shuffle=shuffle,
            random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            early_stopping_metric=early_stopping_metric, max_time=max_time,
            warmup_epochs=warmup_epochs, weight_decay=weight_decay,
            max_grad_norm=max_grad_norm, matmul_precision=matmul_precision,
            dropout=dropout, lazy_sparse_updates=lazy_sparse_updates,
        )

    def predict(self, X):
        """Predict target values.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values, in the dtype of the weights.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        return self._decode(self._forward_pass_fast(X, check_input=check_input))

    def _decode(self, out):
        return out.ravel() if out.shape[1] == 1 else out

    def _score(self, X, y, sample_weight=None):
        return super()._score_with_function(
            X, y, sample_weight=sample_weight, score_function=r2_score
        )

    def _validate_input(self, X, y, sample_weight, incremental, reset):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
            y_numeric=True, dtype=(np.float64, np.float32), reset=reset,
            ensure_all_finite=False,
        )
        check_finite(X, self)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        # scikit-learn lets these through and fails later in numpy (a TypeError for
        # text, LinAlgError - a ValueError - for sparse y with several columns; text
        # that reads as numbers would even train here): same errors, said up front.
        if sp.issparse(y):
            raise ValueError(
                "Sparse data was passed for y, but dense data is required. Use "
                "'.toarray()' to convert to a dense numpy array."
            )
        if y.dtype.kind not in "biuf":
            raise TypeError(
                f"{type(self).__name__} needs numeric targets, got y of dtype {y.dtype}."
            )
        return X, y, sample_weight

    def _encode_validation_targets(self, y_val):
        y_val = np.asarray(y_val, dtype=np.float64)
        if y_val.ndim == 2 and y_val.shape[1] == 1:
            y_val = column_or_1d(y_val, warn=True)
        return y_val, None

    # scikit-learn 1.9 passes ``est._check_solver`` uncalled here, so its
    # MLPRegressor.partial_fit exists for every solver (lbfgs included, where it runs
    # a full lbfgs fit). We match that by default.
    @available_if(lambda est: est._check_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    @usable_or_unfitted
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over the given data.

        The optimizer state carries over between calls; ``max_iter`` and the
        stopping rules do not apply. As in scikit-learn 1.9, this method exists
        for 'lbfgs' too, where each call runs a full L-BFGS fit from the current
        weights (scikit-learn's ``available_if`` check is never called: matched
        on purpose).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights. None gives every sample weight one.

        Returns
        -------
        self : object
            The updated model.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)
