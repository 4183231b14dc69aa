"""The training engine: flat parameter buffers and the calls into the compiled kernels.

Everything that reaches the compiled kernels (the build ``fastgd._build`` chose)
passes through here, after these checks:
C-contiguous arrays of one working dtype (X may also be F-contiguous), CSR index arrays as ``np.intp``, targets
as a 2-D array of the working dtype, and workspaces sized for the block.
"""

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import _assert_all_finite

from fastgd._build import kernels as _kernels, matmul_path_code
from fastgd import _threads

ACTIVATION_CODES = _kernels.ACTIVATION_CODES
LOSS_CODES = _kernels.LOSS_CODES
SOLVER_CODES = _kernels.SOLVER_CODES

# Rows per block for prediction and full-batch gradients: enough for efficient GEMMs,
# small enough that the workspace stays a few MB whatever n_samples is.
_BLOCK_ELEMENTS = 1 << 20
# A first layer narrower than this does so little work per element of X that the pass
# is memory-bound: 16x smaller blocks keep a block of X in cache between the forward
# GEMM and the gradient GEMM that reads it again. MNIST logistic regression gradient
# (60,000 x 784 -> 10, float32): 37 ms per pass with the large blocks, 24 ms with the
# small ones; predicting through a hidden layer of 1024 is 45% slower with small ones.
_NARROW_FIRST_LAYER = 64
_SPARSE_BLOCK_ROWS = 1024


# Inputs of at least this many values are scanned for NaN and infinity on every idle
# core (check_finite); smaller ones on one thread.
_PARALLEL_SCAN_ELEMENTS = 1 << 20


def check_finite(X, estimator, input_name="X"):
    """Raise scikit-learn's error (check_array's words) if X holds NaN or infinity.

    X is an array or sparse matrix already validated with ``ensure_all_finite=False``.
    scikit-learn's own check is a single-threaded np.sum over X: 11 ms for MNIST's
    188 MB of float32, about a tenth of a training epoch. The kernels' scan takes 10 ms
    on one thread and 5 ms on two; anything else (and every failure, for the message)
    goes through scikit-learn's check.
    """
    values = X.data if sp.issparse(X) else X
    if (isinstance(values, np.ndarray) and values.dtype in (np.float32, np.float64)
            and (values.flags.c_contiguous or values.flags.f_contiguous)):
        flat = values.reshape(-1, order="A")  # a view, in memory order
        threads = 1
        if flat.size >= _PARALLEL_SCAN_ELEMENTS:
            threads = max(1, min(_threads.available_threads(), _threads.idle_cores()))
        if _kernels.all_finite(flat, threads):
            return
    _assert_all_finite(values, estimator_name=type(estimator).__name__,
                       input_name=input_name)


def layer_shapes(units):
    """(fan_in, fan_out) of every weight layer of the network ``units``."""
    return list(zip(units[:-1], units[1:]))


def pack(coefs, intercepts, dtype):
    """One flat buffer: every coefficient matrix, then every intercept vector."""
    return np.concatenate([np.ravel(a) for a in list(coefs) + list(intercepts)]).astype(
        dtype, copy=False
    )


def unpack(flat, units):
    """Views into ``flat``: (coefs, intercepts) lists shaped like scikit-learn's."""
    coefs, intercepts, pos = [], [], 0
    for fan_in, fan_out in layer_shapes(units):
        coefs.append(flat[pos : pos + fan_in * fan_out].reshape(fan_in, fan_out))
        pos += fan_in * fan_out
    for _, fan_out in layer_shapes(units):
        intercepts.append(flat[pos : pos + fan_out])
        pos += fan_out
    return coefs, intercepts


class KernelData:
    """X (dense or CSR), targets and sample weights in the kernels' layout.

    A dense X that is already C- or F-contiguous in ``dtype`` is used without a
    copy (the kernels gather the rows of a column-major X).
    Sparse X is used as CSR arrays (CSC is converted, one copy of the nonzeros),
    with duplicate entries summed: the kernels' sparse products then add each
    stored value once, as a dense X holding their sum would.
    """

    def __init__(self, X, dtype, Y=None, sample_weight=None):
        self.dtype = np.dtype(dtype)
        self.n_samples, self.n_features = X.shape
        if sp.issparse(X):
            X = X.tocsr()
            if not X.has_canonical_format:
                X = X.copy()
                X.sum_duplicates()
            self.sparse = True
            self.X = np.empty((0, self.n_features), dtype=dtype)
            self.data = np.ascontiguousarray(X.data, dtype=dtype)
            self.indices = np.ascontiguousarray(X.indices, dtype=np.intp)
            self.indptr = np.ascontiguousarray(X.indptr, dtype=np.intp)
            # The kernels index with these unchecked.
            nnz = self.indptr[-1] if self.indptr.size else 0
            if (self.indptr.shape != (self.n_samples + 1,) or self.indptr[0] != 0
                    or nnz > self.data.size or nnz > self.indices.size
                    or np.any(np.diff(self.indptr) < 0)):
                raise ValueError("X is not a valid CSR matrix (indptr)")
            if nnz and (self.indices[:nnz].min() < 0
                        or self.indices[:nnz].max() >= self.n_features):
                raise ValueError("X is not a valid CSR matrix (column indices out of "
                                 "range)")
            self.nnz_per_row = float(nnz) / max(1, self.n_samples)
        else:
            self.sparse = False
            X = np.asarray(X)
            if X.dtype == self.dtype and X.flags.f_contiguous and X.ndim == 2:
                # Column-major (pandas' to_numpy): the kernels gather its rows by a
                # strided copy, so no copy of X is made.
                self.X = X
            else:
                self.X = np.ascontiguousarray(X, dtype=dtype)
            self.data = np.empty(0, dtype=dtype)
            self.indices = self.indptr = np.empty(0, dtype=np.intp)
        if Y is not None:
            Y = np.asarray(Y)
            if Y.ndim == 1:
                Y = Y.reshape(-1, 1)
            self.Y = np.ascontiguousarray(Y, dtype=dtype)
        self.has_weights = sample_weight is not None
        if sample_weight is None:
            self.sample_weight = np.empty(0, dtype=dtype)
        else:
            self.sample_weight = np.ascontiguousarray(sample_weight, dtype=dtype)

    def x_args(self):
        return self.X, self.data, self.indices, self.indptr

    def slices_for(self, units, rows):
        """slices_for(units, rows), counting sparse work by the nonzeros."""
        if self.sparse:
            return _threads.slices_for(units, rows, nnz_per_row=self.nnz_per_row)
        return _threads.slices_for(units, rows)


class Penalty:
    """Regularisation of the coefficients (never the intercepts).

    Parameters
    ----------
    alpha : float
        L2 strength: alpha / 2 ||W||^2.
    l1 : float
        L1 strength: l1 ||W||_1, applied by a proximal (soft-threshold) step after
        each mini-batch update; not available to the full-batch gradient.
    per_batch : bool
        True: scikit-learn's MLP convention, the penalty is divided by each batch's
        summed sample weight. False: the caller has normalised it per sample, and it
        is added as is (linear models: 1 / (C x total weight)).
    fit_intercept : bool
        False freezes the intercepts at their current values (zero for linear models).
    """

    def __init__(self, alpha=0.0, l1=0.0, per_batch=True, fit_intercept=True):
        self.alpha = float(alpha)
        self.l1 = float(l1)
        self.per_batch = bool(per_batch)
        self.fit_intercept = bool(fit_intercept)


def model_spec(hidden_activation, output_activation, loss, penalty, data, dropout=0.0,
               dropout_seed=0, matmul_path=-1):
    """The dict the kernels convert to their ``Model`` struct (``matmul_path``: see
    bf16_code)."""
    if not isinstance(penalty, Penalty):
        penalty = Penalty(alpha=penalty)
    return {
        "hidden_activation": ACTIVATION_CODES[hidden_activation],
        "output_activation": ACTIVATION_CODES[output_activation],
        "loss": LOSS_CODES[loss],
        "alpha": penalty.alpha,
        "l1": penalty.l1,
        "penalty_per_batch": penalty.per_batch,
        "fit_intercept": penalty.fit_intercept,
        "sparse": data.sparse,
        "has_weights": data.has_weights,
        "dropout": float(dropout),
        "dropout_seed": int(dropout_seed),
        "matmul_path": int(matmul_path),
    }


_warned_no_bf16 = False


def bf16_code(matmul_precision):
    """Model.matmul_path for train_epoch: -1 for float32 products ("highest", or
    "bfloat16" on a CPU without a bfloat16 unit: then a warning, once per process),
    else the kernels' code of fastgd._build.matmul_path()."""
    global _warned_no_bf16
    if matmul_precision == "highest":
        return -1
    code = matmul_path_code()
    if code is None:
        if not _warned_no_bf16:
            _warned_no_bf16 = True
            warnings.warn(
                'matmul_precision="bfloat16": this CPU has neither AMX nor AVX512-BF16 '
                "(or FASTGD_BF16_PATH=float32 says so), so the products stay float32 "
                "on unrounded inputs.", RuntimeWarning, stacklevel=2)
        return -1
    return code


def block_rows(units, n_samples, sparse=False, gradient=True):
    """Rows per block so that one block's workspace holds ~_BLOCK_ELEMENTS values
    (16x fewer when the first layer is narrow and the block is read again for the
    gradient, see _NARROW_FIRST_LAYER; prediction reads it once: ``gradient=False``).

    Sparse X needs no room for its rows; its blocks hold at most
    _SPARSE_BLOCK_ROWS rows, so that narrow layers still give several blocks for
    the threads to share.
    """
    if sparse:
        per_row = 2 * sum(units[1:])
        return int(max(1, min(n_samples, _SPARSE_BLOCK_ROWS,
                              max(64, _BLOCK_ELEMENTS // per_row))))
    per_row = units[0] + 2 * sum(units[1:])
    narrow = gradient and units[1] < _NARROW_FIRST_LAYER
    elements = _BLOCK_ELEMENTS // 16 if narrow else _BLOCK_ELEMENTS
    return int(max(1, min(n_samples, max(64, elements // per_row))))


class Network:
    """A dense network's flat parameters, gradient buffer and kernel calls.

    Parameters
    ----------
    units : sequence of int
        Layer widths, input first and output last.
    hidden_activation, output_activation : str
        Names as in scikit-learn's ``ACTIVATIONS``.
    params : ndarray of shape (n_params,)
        Flat parameters (see ``pack``); owned and updated in place.
    dropout : float, default=0.0
        Inverted dropout rate of the hidden layers' outputs while training (never
        in ``predict``).
    """

    def __init__(self, units, hidden_activation, output_activation, params,
                 dropout=0.0):
        self.units = np.asarray(units, dtype=np.intp)
        self.hidden_activation = hidden_activation
        self.output_activation = output_activation
        self.dropout = float(dropout)
        self.params = params
        self.dtype = params.dtype
        if params.shape != (_kernels.parameter_count(self.units),):
            raise ValueError(
                f"parameter buffer has shape {params.shape}, the network "
                f"{list(units)} needs {_kernels.parameter_count(self.units)} values"
            )
        self._grads = None
        self._plan = None  # loss_gradient's, for the data it was last called on

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_plan"] = None  # it holds the data
        return state

    @property
    def grads(self):
        """The flat gradient buffer, allocated on first use (predicting needs none)."""
        if self._grads is None:
            self._grads = np.zeros_like(self.params)
        return self._grads

    def views(self):
        """(coefs, intercepts): views into the flat parameter buffer."""
        return unpack(self.params, self.units)

    def _check(self, data):
        if data.dtype != self.dtype:
            raise TypeError(f"data dtype {data.dtype} != parameter dtype {self.dtype}")
        if data.n_features != self.units[0]:
            raise ValueError(
                f"X has {data.n_features} features, the network expects {self.units[0]}"
            )

    def keeps_preactivations(self):
        """Whether training keeps the hidden layers' inputs (gelu, silu, dropout):
        the hidden-unit split of the epoch does not."""
        return self.dropout > 0 or self.hidden_activation in ("gelu", "silu")

    def train_epoch(self, data, loss, penalty, optimizer, order, batch_size,
                    dropout_seed=0, matmul_precision="highest"):
        """One epoch of mini-batch training over the rows in ``order``.

        ``penalty`` is a Penalty, or a float: scikit-learn's MLP alpha.
        ``dropout_seed`` keys this epoch's dropout masks (with ``dropout`` > 0).
        ``matmul_precision``: "highest" (float32 / float64 products) or "bfloat16"
        (float32 data only: bfloat16 inputs, float32 sums; see bf16_code).
        Returns the summed (batch loss x batch rows), as scikit-learn accumulates it.
        """
        self._check(data)
        if data.Y.shape != (data.n_samples, self.units[-1]):
            raise ValueError(f"Y has shape {data.Y.shape}, expected "
                             f"({data.n_samples}, {self.units[-1]})")
        order = np.ascontiguousarray(order, dtype=np.intp)
        if order.ndim != 1 or order.size == 0:
            raise ValueError("order must be a non-empty 1-D array of row indices")
        if order.min() < 0 or order.max() >= data.n_samples:
            raise ValueError("order holds row indices out of range")
        batch_size = int(min(max(1, batch_size), order.size))
        n_slices = data.slices_for(self.units, batch_size)
        n_threads = _threads.threads_for(n_slices)
        # The unit split updates each part as soon as its gradient is known: no
        # global norm to clip by, no room for pre-activations, no lazy rows.
        if matmul_precision == "bfloat16" and self.dtype != np.float32:
            raise ValueError('matmul_precision="bfloat16" needs float32 data, got '
                             f"{self.dtype}")
        matmul_path = bf16_code(matmul_precision)
        # The unit split has no bfloat16 products (row slices do them).
        split_units = (_threads.splits_units(self.units, batch_size, n_slices)
                       and not optimizer.max_grad_norm
                       and not (optimizer.lazy_sparse and data.sparse)
                       and not self.keeps_preactivations() and matmul_path == -1)
        if split_units:
            size = _kernels.unit_split_workspace_size(self.units, batch_size, n_slices,
                                                      data.sparse)
        else:
            size = _kernels.workspace_size(self.units, -(-batch_size // n_slices),
                                           n_slices, data.sparse)
        work = np.empty(size, dtype=self.dtype)
        spec = model_spec(self.hidden_activation, self.output_activation, loss, penalty,
                          data, self.dropout, dropout_seed, matmul_path)
        # The kernel reports the adaptive solvers' step count here even when Ctrl-C
        # stops the epoch part way (the parameters then hold the batches taken).
        step = np.array([optimizer.step], dtype=np.int64)
        try:
            with _threads.single_threaded_blas():
                return _kernels.train_epoch(
                    self.params, self.grads, optimizer.state_1, optimizer.state_2, work,
                    self.units, spec, optimizer.kernel_spec(), *data.x_args(),
                    data.Y, data.sample_weight, order, batch_size, n_slices, n_threads,
                    step_out=step, split_units=split_units,
                )
        finally:
            optimizer.step = int(step[0])

    def loss_gradient(self, data, loss, penalty, dropout_seed=None):
        """Full-batch loss; the gradient is left in ``self.grads``.

        ``penalty`` is a Penalty without L1, or a float: scikit-learn's MLP alpha.
        With ``dropout_seed`` (not None), the loss and gradient of the network with
        ``dropout`` and that seed's fixed masks (row i of data keyed as row i).
        """
        self._check(data)
        # The solvers call this tens of times per fit on the same data: the block
        # plan, workspace and spec are made once (20 us a call, a third of the
        # whole call on iris). The slice cap is in the key, so changing
        # FASTGD_MAX_SLICES between calls still takes effect.
        dropout = self.dropout if dropout_seed is not None else 0.0
        key = (data, loss, penalty, _threads.slice_cap(), dropout, dropout_seed or 0)
        plan = self._plan
        if plan is None or plan[0][0] is not data or plan[0][1:] != key[1:]:
            rows = block_rows(self.units, data.n_samples, data.sparse)
            # At least a block per part; parts fix the arithmetic, threads share them.
            n_parts = min(data.slices_for(self.units, data.n_samples),
                          -(-data.n_samples // rows))
            work = np.empty(_kernels.workspace_size(self.units, rows, n_parts,
                                                    data.sparse), dtype=self.dtype)
            spec = model_spec(self.hidden_activation, self.output_activation, loss,
                              penalty, data, dropout, dropout_seed or 0)
            plan = self._plan = (key, rows, n_parts, work, spec)
        _, rows, n_parts, work, spec = plan
        n_threads = _threads.threads_for(n_parts)
        with _threads.single_threaded_blas():
            return _kernels.loss_gradient(
                self.params, self.grads, work, self.units, spec, *data.x_args(),
                data.Y, data.sample_weight, rows, n_parts, n_threads,
            )

    def predict(self, data):
        """Output-layer activations for every row, computed in bounded blocks."""
        self._check(data)
        out = np.empty((data.n_samples, self.units[-1]), dtype=self.dtype)
        if data.n_samples == 0:
            return out
        rows = block_rows(self.units, data.n_samples, data.sparse, gradient=False)
        n_threads = _threads.threads_for(min(data.slices_for(self.units, data.n_samples),
                                             -(-data.n_samples // rows)))
        work = np.empty(_kernels.workspace_size(self.units, rows, n_threads,
                                                data.sparse),
                        dtype=self.dtype)
        spec = model_spec(self.hidden_activation, self.output_activation,
                          "squared_error", 0.0, data)
        with _threads.single_threaded_blas():
            _kernels.forward(self.params, work, self.units, spec, *data.x_args(), out,
                             rows, n_threads)
        return out


class Optimizer:
    """Optimizer state owned in Python (so it pickles); the kernel does the update.

    sgd: ``state_1`` is the velocity; the learning rate follows ``schedule``
    ("constant", "invscaling": ``lr_init / (t + 1) ** power_t`` after each epoch
    with t the samples seen, "adaptive": divided by 5 when training stalls).
    adam: ``state_1``/``state_2`` are the first/second moments and ``step`` the
    time step; the update uses ``lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)`` with
    ``lr = lr_init`` (scikit-learn's adam has no schedule) unless cosine or warm-up.
    adamw (torch's AdamW): adam's moments, with ``epsilon`` added as torch adds it
    (to the bias-corrected root) and the coefs multiplied by
    ``1 - lr * weight_decay`` before each step. rmsprop (torch's RMSprop, its
    ``alpha`` = beta_2) and adagrad (torch's Adagrad) keep their second moment /
    sum of squares in ``state_1``. Like adam they have no invscaling / adaptive
    schedule (scikit-learn's adam has none).
    ``max_grad_norm`` (None: off) clips each batch's whole gradient to that L2 norm,
    as ``torch.nn.utils.clip_grad_norm_``. ``lazy_sparse`` (sparse X only) steps
    just the first layer's rows of the features stored in each batch, as
    ``torch.optim.SparseAdam`` does (an approximation of the dense step whenever
    the L2 penalty or the state of the other rows would move them).
    All: "cosine" gives epoch e (from 0) ``lr_init * (1 + cos(pi e / max_iter)) / 2``
    (torch's CosineAnnealingLR(T_max=max_iter) stepped once per epoch), and
    ``warmup_epochs`` = W > 0 multiplies epoch e's rate by min(1, (e + 1) / W).
    ``epoch`` counts the epochs trained, across partial_fit calls.
    """

    # Defaults for optimizers pickled before these options existed.
    weight_decay = 0.0
    max_grad_norm = None
    lazy_sparse = False

    def __init__(self, solver, n_params, dtype, learning_rate_init, schedule="constant",
                 momentum=0.9, nesterov=True, power_t=0.5, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, max_iter=None, warmup_epochs=0, weight_decay=0.0,
                 max_grad_norm=None, lazy_sparse=False):
        self.solver = solver
        self.learning_rate_init = float(learning_rate_init)
        self.schedule = schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.max_iter = max_iter
        self.warmup_epochs = int(warmup_epochs)
        self.weight_decay = float(weight_decay)
        self.max_grad_norm = None if max_grad_norm is None else float(max_grad_norm)
        self.lazy_sparse = bool(lazy_sparse)
        self.epoch = 0
        self.step = 0
        self.learning_rate = self._scheduled_rate(0, self.learning_rate_init)
        self.state_1 = np.zeros(n_params, dtype=dtype)
        # adam's second moment; the others need no second buffer (a 1-element
        # stand-in).
        self.state_2 = np.zeros(n_params if solver in ("adam", "adamw") else 1,
                                dtype=dtype)

    def _scheduled_rate(self, epoch, base):
        """The rate of epoch ``epoch`` for the epoch-indexed schedules (cosine,
        warm-up); ``base`` for the others."""
        if self.schedule == "cosine":
            base = self.learning_rate_init * 0.5 * (
                1.0 + np.cos(np.pi * epoch / max(1, self.max_iter)))
        if self.warmup_epochs > 0:
            base *= min(1.0, (epoch + 1) / self.warmup_epochs)
        return float(base)

    def as_dtype(self, dtype):
        self.state_1 = self.state_1.astype(dtype, copy=False)
        self.state_2 = self.state_2.astype(dtype, copy=False)

    def kernel_spec(self):
        scheduled = self.schedule == "cosine" or self.warmup_epochs > 0
        return {
            "solver": SOLVER_CODES[self.solver],
            "learning_rate": (
                self.learning_rate_init if self.solver == "adam" and not scheduled
                else self.learning_rate
            ),
            "momentum": float(self.momentum),
            "nesterov": bool(self.nesterov),
            "beta_1": float(self.beta_1),
            "beta_2": float(self.beta_2),
            "epsilon": float(self.epsilon),
            "step": int(self.step),
            "weight_decay": self.weight_decay,
            "max_grad_norm": self.max_grad_norm or 0.0,
            "lazy_sparse": self.lazy_sparse,
        }

    def iteration_ends(self, time_step, *_):
        """Learning-rate schedule at the end of an epoch (``time_step`` = samples seen)."""
        self.epoch += 1
        rate = self.learning_rate
        if self.solver == "sgd" and self.schedule == "invscaling":
            rate = self.learning_rate_init / (time_step + 1) ** self.power_t
        elif self.warmup_epochs > 0 and self.epoch <= self.warmup_epochs and (
                self.schedule in ("constant", "adaptive")):
            rate = self.learning_rate_init  # the warm-up factor is applied below
        self.learning_rate = self._scheduled_rate(self.epoch, rate)

    def trigger_stopping(self, msg, verbose):
        """True when training should stop; the adaptive schedule divides the rate instead."""
        if self.solver != "sgd" or self.schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False
