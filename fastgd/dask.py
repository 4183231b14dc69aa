"""fastgd on Dask: train where the partitions live, hand back a plain model.

The four estimators here take the parameters of the plain fastgd estimators, plus
``client`` (a ``distributed.Client``; default: the current client, or else dask's
local scheduler in this process). ``fit`` takes dask arrays or dask
DataFrames/Series partitioned by rows; ``to_local()`` returns the fitted plain
estimator, which pickles and predicts without dask.

How they train
--------------
* Exact full-batch solvers (``solver='lbfgs'`` for all four). Every row partition
  is loaded once and kept on its worker as the kernels' ``KernelData``. Each
  iteration sends only the flat parameters; every partition returns its compiled
  ``Network.loss_gradient`` times its row (or weight) sum; the client sums them in
  partition order, so the total is the full-batch objective, and steps scipy's
  L-BFGS exactly as the plain estimator does (same preconditioner for the linear
  models, same initial weights for the MLPs). The model is the single-machine
  model up to rounding, whatever the number of workers and partitions.
* LinearRegression (solver 'auto', 'cg' or 'lbfgs'): an exact direct solve. Each
  partition returns the R factor of its centred, weighted ``[X, y]``; the client
  stacks them, takes one more QR and solves the triangular least-squares problem
  (minimum-norm for rank-deficient X, as ``scipy.linalg.lstsq``). Two passes over
  the data, one message of (d + k)^2 values per partition.
* Mini-batch solvers ('sgd', 'adam'): local SGD with periodic averaging. The
  partitions of each worker are joined into one shard on that worker; every epoch
  (or every ``sync_every`` mini-batches) each shard trains from the current
  parameters and optimizer moments with the compiled kernel, and the client
  averages parameters, moments and step counts weighted by the rows each shard
  trained. This is an APPROXIMATION of single-machine training (each worker sees
  1/W of the data between averages); with one shard it is single-machine training
  (with ``shuffle=False``, exactly). ``benchmarks/dask.md`` measures it. The
  stopping rules are the plain estimators' (tol / n_iter_no_change on the training
  loss, or on a validation set of the user's with ``early_stopping=True``,
  ``max_time``, the learning-rate schedules, ``warmup_epochs``).

The dask faces' own parameters (keyword-only)
---------------------------------------------
``client``
    A ``distributed.Client``; None: the current client, or dask's local scheduler.
``sync_every`` : int or None, default None
    'sgd' / 'adam': average every ``sync_every`` mini-batches of each shard instead
    of once per epoch (more communication, closer to single-machine training).
``persist`` : {'auto', True, False}, default 'auto'
    Keep the prepared partitions in the workers' memory (True), or stream them -
    recompute every partition from its source (a .npy / zarr chunk) on every pass,
    holding only the partitions in flight (False). 'auto' estimates the prepared
    data (rows x (features + targets + 1) x itemsize; sparse input counts as
    fitting) against half the workers' summed memory limits and streams, with a
    warning giving the numbers, when it does not fit; True raises MemoryError with
    those numbers instead. Streamed, local SGD averages one shard per partition.

Parameters of the plain estimators
----------------------------------
All are honoured (sample_weight, class_weight - 'balanced' from one weighted count
of the classes -, warm_start, the optimizer and schedule parameters, max_time,
warmup_epochs, early_stopping with ``fit(..., X_val=, y_val=,
sample_weight_val=)``), except these, which raise an error naming them
(NotImplementedError; ValueError for multilabel targets): early_stopping without a
validation set of your own (the ``validation_fraction`` split of dask rows),
LogisticRegression's solver='liblinear', dual=True and an L1 / elastic-net penalty
with a full-batch solver (use 'sgd' / 'adam'), LinearRegression's positive=True,
multilabel MLPClassifier targets, and callbacks (``set_callbacks``). For
LinearRegression's exact solve, ``tol``, ``max_iter`` and ``warm_start`` have
nothing to do: it is a direct solve. float32 input trains and predicts in float32.
"""

import copy
import inspect
import warnings

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.optimize import _check_optimize_result

import dask
import dask.array as da
import dask.dataframe as dd

import fastgd
from fastgd import _internal as fi
from fastgd._docs import DocLinkMixin, section
from fastgd._engine import KernelData, Network, Penalty, check_finite

__all__ = ["LinearRegression", "LogisticRegression", "MLPClassifier", "MLPRegressor"]


# ---------------------------------------------------------------------------
# Input: row partitions of X, y, sample_weight
# ---------------------------------------------------------------------------


def _as_dask_array(a, name):
    if isinstance(a, (dd.DataFrame, dd.Series)):
        return a.to_dask_array(lengths=True)
    if isinstance(a, da.Array):
        if any(np.isnan(c) for c in a.chunks[0]):
            a = a.compute_chunk_sizes()  # unknown row counts: one pass to learn them
        return a
    if a is None:
        return None
    a = np.asarray(a) if not sp.issparse(a) else a
    return da.from_array(a, chunks=(a.shape[0],) + a.shape[1:])


def _row_partitions(X, y, sample_weight):
    """Delayed row blocks of X, y (and weights) with matching row chunks."""
    names = None
    if isinstance(X, dd.DataFrame):
        names = np.asarray(X.columns, dtype=object)
        if not all(isinstance(c, str) for c in names):
            names = None
    X = _as_dask_array(X, "X")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got {X.ndim} dimension(s)")
    if X.numblocks[1] != 1:
        raise ValueError(
            f"X is chunked along its columns ({X.numblocks[1]} column blocks); "
            "fastgd.dask needs row partitions that hold every feature: use "
            "X.rechunk({1: -1}).")
    rows = X.chunks[0]
    parts = []
    for arr in (y, sample_weight):
        if arr is None:
            parts.append([None] * len(rows))
            continue
        arr = _as_dask_array(arr, "y")
        if arr.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows, y / sample_weight has "
                             f"{arr.shape[0]}")
        arr = arr.rechunk({0: rows, **({1: -1} if arr.ndim == 2 else {})})
        parts.append(list(arr.to_delayed().ravel()))
    xs = list(X.to_delayed().ravel())
    keep = [i for i, n in enumerate(rows) if n > 0]
    sparse = sp.issparse(getattr(X, "_meta", None))
    return ([xs[i] for i in keep], [parts[0][i] for i in keep],
            [parts[1][i] for i in keep], X.shape[1], names, X.dtype,
            int(sum(rows)), sparse)


def _current_client(client):
    if client is not None:
        return client
    try:
        from distributed import get_client
        return get_client()
    except (ImportError, ValueError):
        return None


class _Runner:
    """Runs one function on every partition: on its worker (distributed) or, with
    dask's local scheduler, in this process. Results come back in partition order.

    Persisted (``stream=False``), the partitions are loaded once and kept where they
    were computed (futures, or objects in this process). Streamed (``stream=True``),
    they stay dask delayed objects: every pass computes each partition from its
    source (a .npy / zarr chunk, say), uses it and drops it, so memory holds only the
    partitions in flight."""

    def __init__(self, client):
        self.client = client
        self.stream = False
        self.workers = None  # the workers' addresses, sorted, at the first load

    def _workers_info(self):
        try:
            return self.client.scheduler_info(n_workers=-1)["workers"]
        except TypeError:  # distributed without the n_workers argument
            return self.client.scheduler_info()["workers"]

    def memory(self):
        """Bytes the data may use: the workers' memory limits summed (this process's
        available memory with dask's local scheduler); None if unknown."""
        if self.client is None:
            try:
                import psutil
            except ImportError:
                return None
            return int(psutil.virtual_memory().available)
        limits = [w.get("memory_limit") or 0 for w in self._workers_info().values()]
        if not limits or not all(limits):
            return None  # a worker without a limit
        return int(sum(limits))

    def load(self, fn, *lists, **kwargs):
        """Partitions fn(*blocks, **kwargs): kept in memory, or, streamed, the recipes."""
        tasks = [dask.delayed(fn)(*a, **kwargs) for a in zip(*lists)]
        if self.stream:
            return tasks
        if self.client is None:
            return list(dask.compute(*tasks))
        from distributed import wait
        # Partition i is computed on worker i mod W (sorted addresses), and shards()
        # joins the same partitions on the same worker: the shards of local SGD
        # depend on the number of workers only, not on the scheduler's placement,
        # so a rerun gives the same bits. allow_other_workers: a lost worker's
        # partitions are recomputed elsewhere (and moved back for the shard).
        self.workers = sorted(self._workers_info())
        futures = [self.client.compute(t, workers=[self._home(i)],
                                       allow_other_workers=True)
                   for i, t in enumerate(tasks)]
        wait(futures)  # in memory, so that who_has knows where each part lives
        return futures

    def _home(self, i):
        return self.workers[i % len(self.workers)]

    def _streamed(self, fn, parts, each):
        tasks = [dask.delayed(fn, pure=False)(p, **e) for p, e in zip(parts, each)]
        if self.client is None:
            return list(dask.compute(*tasks))
        return self.client.gather(self.client.compute(tasks))

    def map(self, fn, parts, **kwargs):
        """[fn(part, **kwargs) for part in parts], one task per worker (each runs its
        own partitions): fewer round trips per iteration than a task per part."""
        if self.stream:
            return self._streamed(fn, parts, [kwargs] * len(parts))
        if self.client is None:
            return [fn(p, **kwargs) for p in parts]
        who = self.client.who_has(parts)
        groups = {}
        for i, f in enumerate(parts):
            holders = sorted(who.get(f.key, ()))
            groups.setdefault(holders[0] if holders else None, []).append(i)
        tasks = [(idx, self.client.submit(
            _each, fn, *[parts[i] for i in idx], kwargs=kwargs, pure=False,
            **({} if w is None else {"workers": [w], "allow_other_workers": True})))
            for w, idx in groups.items()]
        out = [None] * len(parts)
        for idx, results in zip([t[0] for t in tasks],
                                self.client.gather([t[1] for t in tasks])):
            for i, r in zip(idx, results):
                out[i] = r
        return out

    def map_each(self, fn, parts, each, **kwargs):
        """fn(part, **each[i], **kwargs) for every part i."""
        if self.stream:
            return self._streamed(fn, parts, [{**e, **kwargs} for e in each])
        if self.client is None:
            return [fn(p, **e, **kwargs) for p, e in zip(parts, each)]
        return self.client.gather([self.client.submit(fn, p, **e, **kwargs, pure=False)
                                   for p, e in zip(parts, each)])

    def shards(self, parts):
        """One shard per worker: the concatenation of the partitions load() placed
        there (partitions j, j + W, ...). Streamed, every partition is a shard
        (joining them would hold them all)."""
        if self.stream:
            return list(parts)
        if self.client is None:
            return [_concat(*parts)] if len(parts) > 1 else list(parts)
        n_shards = min(len(self.workers), len(parts))
        return [self.client.submit(_concat, *parts[j::n_shards],
                                   workers=[self._home(j)], allow_other_workers=True,
                                   pure=False)
                for j in range(n_shards)]


# ---------------------------------------------------------------------------
# Worker-side functions (module level: workers import them)
# ---------------------------------------------------------------------------


def _each(fn, *parts, kwargs):
    return [fn(p, **kwargs) for p in parts]


def _prepare(X, y, w, *, est, dtype, encode, class_weight=None):
    """A partition as KernelData in ``dtype`` (validated, targets encoded, weights
    times ``class_weight`` = (classes, weight of each class) when given)."""
    X = check_array(X, accept_sparse="csr", dtype=[np.float64, np.float32],
                    order="C", ensure_all_finite=False)
    X = X.astype(dtype, copy=False)
    check_finite(X, est)
    y = np.asarray(y)
    if class_weight is not None:
        classes, weights = class_weight
        factor = weights[np.searchsorted(classes, y)]
        w = factor if w is None else np.asarray(w, dtype=np.float64) * factor
    if w is not None:
        w = np.asarray(w, dtype=dtype)
    return KernelData(X, dtype, encode(est, y), w)


def _encode_logistic(est, y):
    return fi.encode_classes(est, y)


def _encode_mlp_classes(est, y):
    return fi.mlp_indicator(est, y)


def _encode_numeric(est, y):
    y = np.asarray(y, dtype=np.float64)
    return y.reshape(-1, 1) if y.ndim == 1 else y


def _n_rows(data):
    return data.n_samples


def _class_counts(y, w):
    """(classes, their weighted counts) of one partition of y."""
    classes, idx = np.unique(np.asarray(y), return_inverse=True)
    w = None if w is None else np.asarray(w, dtype=np.float64)
    return classes, np.bincount(idx.ravel(), weights=w, minlength=len(classes))


def _weight_sum(data):
    return float(data.sample_weight.sum()) if data.has_weights else float(data.n_samples)


def _moments(data):
    """Weighted sums of x, x^2 and the weight, in float64 (the preconditioner)."""
    X = data.X if not data.sparse else sp.csr_matrix(
        (data.data, data.indices, data.indptr), shape=(data.n_samples, data.n_features))
    w = data.sample_weight.astype(np.float64) if data.has_weights else None
    if sp.issparse(X):
        Xw = X if w is None else sp.diags(w) @ X
        s1 = np.asarray(Xw.sum(axis=0)).ravel()
        s2 = np.asarray(Xw.multiply(X).sum(axis=0)).ravel()
    else:
        Xd = X.astype(np.float64)
        s1 = Xd.sum(axis=0) if w is None else w @ Xd
        s2 = np.einsum("ij,ij->j", Xd, Xd) if w is None else w @ (Xd * Xd)
    return s1, s2, _weight_sum(data)


def _loss_grad(data, *, units, hidden, output, loss, fit_intercept, params):
    """(loss x weight sum, gradient x weight sum) of one partition, no penalty."""
    net = Network(units, hidden, output, params.astype(data.dtype))
    f = net.loss_gradient(data, loss, Penalty(0.0, fit_intercept=fit_intercept))
    s = _weight_sum(data)
    return float(f) * s, net.grads.astype(np.float64) * s


def _targets_sums(data):
    Y = data.Y.astype(np.float64)
    w = data.sample_weight.astype(np.float64) if data.has_weights else None
    return Y.sum(axis=0) if w is None else w @ Y


def _qr_block(data, *, x_mean, y_mean):
    """R of sqrt(w) [X - x_mean, Y - y_mean] (dense, float64; one n x (d + k)
    buffer besides the QR's own, so that a streamed chunk costs little more)."""
    d = data.n_features
    A = np.empty((data.n_samples, d + data.Y.shape[1]))
    if data.sparse:
        A[:, :d] = sp.csr_matrix((data.data, data.indices, data.indptr),
                                 shape=(data.n_samples, d)).toarray()
    else:
        A[:, :d] = data.X
    A[:, :d] -= x_mean
    A[:, d:] = data.Y
    A[:, d:] -= y_mean
    if data.has_weights:
        A *= np.sqrt(data.sample_weight.astype(np.float64))[:, None]
    return np.linalg.qr(A, mode="r")


def _concat(*datas):
    if len(datas) == 1:
        return datas[0]
    d0 = datas[0]
    if d0.sparse:
        X = sp.vstack([sp.csr_matrix((d.data, d.indices, d.indptr),
                                     shape=(d.n_samples, d.n_features)) for d in datas])
    else:
        X = np.concatenate([d.X for d in datas])
    w = np.concatenate([d.sample_weight for d in datas]) if d0.has_weights else None
    return KernelData(X, d0.dtype, np.concatenate([d.Y for d in datas]), w)


def _train_shard(data, *, units, hidden, output, loss, penalty, optimizer, params,
                 batch_size, shuffle, seed, span, dropout=0.0,
                 matmul_precision="highest"):
    """Compiled mini-batches on a shard from the given parameters and optimizer
    state: the whole epoch, or (``span`` = (start, stop)) the rows start:stop of the
    epoch's order. ``seed`` draws the shuffle and keys the dropout masks (with the
    span's start: each span's rows get masks of their own). Returns the new state,
    the loss sum and the rows trained."""
    net = Network(units, hidden, output, params.astype(data.dtype), dropout=dropout)
    optimizer = copy.deepcopy(optimizer)  # the caller's stays the averaged one
    optimizer.as_dtype(data.dtype)
    order = np.arange(data.n_samples)
    if shuffle:
        np.random.RandomState(seed).shuffle(order)
    if span is not None:
        order = order[span[0]:span[1]]
    # seed < 2**31: distinct spans of one epoch get distinct keys (span 0: seed).
    dropout_seed = seed if span is None else (seed + (span[0] << 31)) % 2**64
    loss_sum = 0.0
    if order.size:
        loss_sum = net.train_epoch(data, loss, penalty, optimizer, order,
                                   min(batch_size, data.n_samples),
                                   dropout_seed=dropout_seed,
                                   matmul_precision=matmul_precision)
    return (net.params, optimizer.state_1, optimizer.state_2, optimizer.step,
            loss_sum, order.size)


# The dask faces take the plain estimators' parameters: their docstrings repeat the
# plain estimator's Parameters and Attributes sections (fastgd._docs.section).
_CLIENT_DOC = """    client : distributed.Client or None, default=None
        fastgd.dask's addition: the Dask client to train on. None: the current
        client (``distributed.get_client()``) if there is one, else dask's local
        scheduler in this process.
    sync_every : int or None, default=None
        fastgd.dask's addition, for 'sgd' / 'adam': average the shards every
        ``sync_every`` mini-batches instead of once per epoch (more communication,
        closer to single-machine training). An error with the other solvers.
    persist : {'auto', True, False}, default='auto'
        fastgd.dask's addition: keep the prepared partitions in the workers' memory
        (True) or stream them, recomputing each from its source on every pass
        (False). 'auto' persists when the data (rows x (features + targets + 1) x
        itemsize) fit in half the workers' summed memory limits, and otherwise
        streams with a warning; True raises MemoryError when they do not fit.
"""

_NOTES_DOC = """
    Notes
    -----
    ``fit`` takes dask arrays or dask DataFrames / Series partitioned by rows (a
    numpy array is one partition). Fitted attributes (``coef_``, ``classes_``,
    ``loss_curve_``, ...) are read from the plain model that :meth:`to_local`
    returns, which pickles and predicts without dask. The mini-batch solvers run
    local SGD with periodic averaging, an approximation of single-machine training.
    Not supported (an error names the option): ``early_stopping`` without a
    validation set of your own (pass ``X_val``, ``y_val`` to ``fit``),
    ``set_callbacks``, and the options listed in the module docstring;
    ``partial_fit`` does not exist here (dask-ml's ``Incremental`` can feed blocks
    to the plain estimator's).
"""


_FIT_DOC = """Fit on row partitions of X and y.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features)
            Training data, partitioned by rows.
{y}
        sample_weight : dask array or dask Series of shape (n_samples,), default=None
            Weights of the samples, partitioned as X{sample_weight_note}.
        X_val : array-like or dask collection of shape (n_val, n_features), default=None
            A validation set of your own for the early stopping of the mini-batch
            solvers (``early_stopping=True`` needs it here: the
            ``validation_fraction`` split of the dask rows is not supported). It is
            computed into the client process: keep it small.
        y_val : array-like or dask collection of shape {y_val_shape}, default=None
            The targets of ``X_val``.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of the validation samples.

        Returns
        -------
        self : object
            The fitted estimator; ``to_local()`` is the plain model.
        """


def _fit_doc(y, y_val_shape, sample_weight_note=""):
    """The docstring of a dask face's ``fit`` (_FIT_DOC), with its own ``y``."""
    def decorate(fit):
        fit.__doc__ = _FIT_DOC.format(y=y, y_val_shape=y_val_shape,
                                      sample_weight_note=sample_weight_note)
        return fit
    return decorate


def _dask_doc(plain, sklearn_name, about, examples):
    """The class docstring of the dask face of ``plain``: its summary, the plain
    estimator's Parameters and Attributes sections (fastgd._docs.section) plus the
    dask faces' own parameters, See Also, Notes, and ``examples``."""
    name = plain.__name__
    return (f"""fastgd.{name} trained on a Dask cluster.

    The parameters are those of :class:`fastgd.{name}`, plus ``client``,
    ``sync_every`` and ``persist``.

{about}

    Parameters
    ----------
""" + section(plain, "Parameters") + _CLIENT_DOC + """
    Attributes
    ----------
""" + section(plain, "Attributes") + f"""
    See Also
    --------
    fastgd.{name} : The plain estimator (one machine).
    {sklearn_name} : The scikit-learn estimator.
""" + _NOTES_DOC + """
    Examples
    --------
""" + examples + "    ")


# ---------------------------------------------------------------------------
# The estimators
# ---------------------------------------------------------------------------


# Share of the workers' summed memory limits that the persisted partitions may take:
# dask starts spilling a worker to disk at 60% of its limit, and the kernels need
# workspace on top of the data.
_PERSIST_SHARE = 0.5

# The dask faces' own parameters, next to those of the plain estimator.
_DASK_PARAMS = ("client", "sync_every", "persist")


class _DaskEstimator(DocLinkMixin, BaseEstimator):
    _local_class = None
    _encode = None

    def _local(self):
        """The plain estimator to fit: new, or (warm_start) a copy of the last model."""
        params = {k: v for k, v in self.get_params(deep=False).items()
                  if k not in _DASK_PARAMS}
        if self.warm_start and "_model" in vars(self):
            est = copy.deepcopy(self._model)  # a failed fit leaves the old one intact
            est.set_params(**params)
        else:
            est = self._local_class(**params)
        est._validate_params()
        stochastic = est.solver in fi.STOCHASTIC_SOLVERS
        if self.sync_every is not None:
            if isinstance(self.sync_every, bool) or not isinstance(
                    self.sync_every, (int, np.integer)) or self.sync_every < 1:
                raise ValueError("sync_every must be None or an int >= 1, got %r."
                                 % (self.sync_every,))
            if not stochastic:
                raise ValueError("sync_every=%r applies to the mini-batch solvers 'sgd' "
                                 "and 'adam' only; solver=%r is exact (full batch)."
                                 % (self.sync_every, est.solver))
        if self.persist not in ("auto", True, False):
            raise ValueError("persist must be 'auto', True or False, got %r."
                             % (self.persist,))
        return est

    def set_callbacks(self, *callbacks):
        """Not supported: scikit-learn's callbacks need the training loop in this
        process. Fit the plain estimator (``to_local()`` gives one) to use them.

        Returns
        -------
        self : object
            Never returns: ``*callbacks`` are refused.

        Raises
        ------
        NotImplementedError
            Always.
        """
        raise NotImplementedError(
            "callbacks (set_callbacks) are not supported by fastgd.dask: set them on "
            "a plain fastgd estimator instead.")

    def _load(self, est, X, y, sample_weight):
        """Row partitions of X, y, sample_weight; sets the input attributes of ``est``."""
        self._runner = _Runner(_current_client(self.client))
        xs, ys, ws, d, names, dtype, n, sparse = _row_partitions(X, y, sample_weight)
        self._input_shape = (n, d, sparse)
        if not xs:
            raise ValueError("Found array with 0 sample(s) while a minimum of 1 is "
                             "required.")
        dtype = np.dtype(dtype) if np.dtype(dtype) in (np.float32, np.float64) else (
            np.dtype(np.float64))
        if hasattr(est, "n_features_in_") and est.n_features_in_ != d:
            raise ValueError(f"X has {d} features, but the warm-started model was "
                             f"fitted with {est.n_features_in_} features.")
        est.n_features_in_ = d
        if names is not None:
            est.feature_names_in_ = names
        else:
            est.__dict__.pop("feature_names_in_", None)
        return xs, ys, ws, dtype

    def _persist(self, est, xs, ys, ws, dtype, n_targets, class_weight=None):
        """The prepared partitions: persisted if they fit the cluster (``persist``),
        otherwise recipes that are recomputed from their source on every pass."""
        n, d, sparse = self._input_shape
        # Sparse partitions: their size is unknown before they are computed.
        need = None if sparse else n * (d + n_targets + 1) * np.dtype(dtype).itemsize
        stream = self.persist is False
        if not stream and need is not None:
            limit = self._runner.memory()
            if limit is not None and need > _PERSIST_SHARE * limit:
                where = ("the workers' memory limits sum to" if self._runner.client
                         is not None else "this process has")
                msg = ("The training data take about %.3g GB once prepared (%d rows x "
                       "%d features + targets, %s); %s %.3g GB, of which fastgd.dask "
                       "persists at most %d%%" % (
                           need / 1e9, n, d, np.dtype(dtype).name, where, limit / 1e9,
                           100 * _PERSIST_SHARE))
                if self.persist is True:
                    raise MemoryError(msg + ". Add workers or memory, or pass "
                                      "persist=False (or 'auto') to stream the "
                                      "partitions from their source on every pass.")
                warnings.warn(msg + ": the partitions are streamed from their source "
                              "on every pass instead of being kept in memory.",
                              UserWarning)
                stream = True
        self._runner.stream = stream
        try:
            return self._runner.load(_prepare, xs, ys, ws, est=est, dtype=dtype,
                                     encode=type(self)._encode,
                                     class_weight=class_weight)
        except MemoryError as exc:
            raise MemoryError("The cluster cannot hold the training data in memory: "
                              "add workers or memory, or pass persist=False.") from exc

    def _totals(self, parts):
        return [float(s) for s in self._runner.map(_weight_sum, parts)]

    def _gradient(self, parts, net, loss, fit_intercept, total):
        """Full-batch mean loss and gradient, summed in partition order."""
        results = self._runner.map(
            _loss_grad, parts, units=list(net.units), hidden=net.hidden_activation,
            output=net.output_activation, loss=loss, fit_intercept=fit_intercept,
            params=net.params)
        f, g = 0.0, np.zeros(net.params.size)
        for fp, gp in results:
            f += fp
            g += gp
        return f / total, g / total

    def _validation_set(self, est, X_val, y_val, sample_weight_val, n_outputs):
        """The user's validation set (numpy or dask, computed here: it is meant to
        be small), checked and encoded by the plain estimator, as (X_val, y_val,
        Y_val encoded, sample_weight_val), or None."""
        stochastic = est.solver in fi.STOCHASTIC_SOLVERS
        if (X_val is None and y_val is None and sample_weight_val is None
                and est.early_stopping and stochastic):
            raise NotImplementedError(
                "early_stopping=True in fastgd.dask needs a validation set of your "
                "own: fit(X, y, X_val=..., y_val=...). The validation_fraction "
                "split of the dask rows is not supported.")
        X_val, y_val, sample_weight_val = [
            a.compute() if hasattr(a, "compute") else a
            for a in (X_val, y_val, sample_weight_val)]
        checked = fi.validation_set(est, X_val, y_val, sample_weight_val, n_outputs,
                                    stochastic)
        if checked is None:
            return None
        X_val, Y_val, sample_weight_val, _ = checked
        return X_val, np.asarray(y_val), Y_val, sample_weight_val

    def _local_sgd(self, est, parts, net, loss, penalty, adopt, validation_set, warm):
        """Local SGD: compiled epochs (or sync_every batches) per shard from the
        averaged state; the stopping rules of the plain estimators' driver."""
        shards = self._runner.shards(parts)
        rows = np.asarray(self._runner.map(_n_rows, shards), dtype=np.float64)
        n = float(rows.sum())
        optimizer = fi.make_optimizer(est, net.params.size, net.dtype)
        rules = fi.StoppingRules(est, fi.clip_batch_size(est.batch_size, int(rows.min())))
        window = None if self.sync_every is None else self.sync_every * rules.batch_size
        rounds = 1 if window is None else -(-int(rows.max()) // window)
        random_state = check_random_state(est.random_state)
        early = validation_set is not None
        progress = (fi.Progress.of(est, early) if warm else fi.Progress(early))
        validation = None
        if early:
            validation = _validation_function(est, net, loss, adopt, *validation_set)

        def epoch():
            seeds = random_state.randint(2**31 - 1, size=len(shards))
            loss_sum = 0.0
            for r in range(rounds):
                results = self._runner.map_each(
                    _train_shard, shards, [{"seed": int(s)} for s in seeds],
                    units=list(net.units), hidden=net.hidden_activation,
                    output=net.output_activation, loss=loss, penalty=penalty,
                    optimizer=optimizer, params=net.params,
                    batch_size=rules.batch_size, shuffle=rules.shuffle,
                    span=None if window is None else (r * window, (r + 1) * window),
                    dropout=net.dropout, matmul_precision=rules.matmul_precision)
                trained = np.asarray([res[5] for res in results], dtype=np.float64)
                share = trained / trained.sum()  # rows-weighted, in shard order
                net.params[...] = sum(a * res[0].astype(np.float64)
                                      for a, res in zip(share, results))
                optimizer.state_1[...] = sum(a * res[1].astype(np.float64)
                                             for a, res in zip(share, results))
                optimizer.state_2[...] = sum(a * res[2].astype(np.float64)
                                             for a, res in zip(share, results))
                optimizer.step = int(round(sum(a * res[3]
                                               for a, res in zip(share, results))))
                loss_sum += sum(res[4] for res in results)
            return loss_sum

        outcome = fi.run_epochs(net, epoch, optimizer, rules, n_samples=int(n),
                                progress=progress, incremental=False,
                                validation=validation)
        for attribute, value in progress.attributes().items():
            setattr(est, attribute, value)
        if outcome.loss is not None:
            est.loss_ = outcome.loss
        fi.report_divergence(outcome, early)
        # After divergence the optimizer (non-finite moments, the rate that
        # diverged) is not kept, as in the plain estimators.
        if outcome.stop != "diverged":
            est._optimizer = optimizer
        return outcome.n_iter

    # -- prediction and export ---------------------------------------------------

    def to_local(self):
        """The fitted plain fastgd estimator (no dask needed to use or unpickle it).

        Returns
        -------
        estimator : fastgd estimator
            The fitted fastgd.MLPClassifier, MLPRegressor, LogisticRegression or
            LinearRegression (not a copy).
        """
        if not hasattr(self, "_model"):
            from sklearn.exceptions import NotFittedError
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted "
                                 "yet. Call 'fit' first.")
        return self._model

    def __getattr__(self, name):
        # Fitted attributes (coef_, classes_, loss_curve_, ...) are the local model's.
        if name.endswith("_") and not name.startswith("__") and "_model" in vars(self):
            return getattr(vars(self)["_model"], name)
        raise AttributeError(name)

    def _lazy(self, method, X, out_columns):
        model = self.to_local()
        fn = getattr(model, method)
        if isinstance(X, dd.DataFrame):
            X = X.to_dask_array()  # keeps the row partitions; names checked by model
            names = getattr(model, "feature_names_in_", None)
            if names is not None:
                probe = _predict_frame(np.zeros((1, len(names)), dtype=X.dtype), fn,
                                       list(names))
                return X.map_blocks(_predict_frame, fn, list(names), dtype=probe.dtype,
                                    **_block_shape(out_columns, X))
        if not isinstance(X, da.Array):
            return fn(X)
        if X.numblocks[1] != 1:
            X = X.rechunk({1: -1})
        # the output dtype (float32 models predict float32) from one row
        probe = fn(np.zeros((1, X.shape[1]), dtype=X.dtype))
        return X.map_blocks(_predict_block, fn, dtype=probe.dtype,
                            **_block_shape(out_columns, X))

    def predict(self, X):
        """Predictions; lazy (a dask array) for dask input.

        Parameters
        ----------
        X : dask array, dask DataFrame or array-like of shape (n_samples, n_features)
            The data to predict; a dask DataFrame's columns are checked against
            the feature names seen in fit.

        Returns
        -------
        y : dask array of shape (n_samples,) or (n_samples, n_outputs)
            Predicted labels or values, one block per block of X (a numpy array
            for numpy input).
        """
        return self._lazy("predict", X, self._n_out_columns("predict"))

    def _n_out_columns(self, method):
        model = self.to_local()
        if method == "predict":
            if hasattr(model, "classes_"):
                return None  # class labels (multilabel targets are not supported)
            coef = getattr(model, "coef_", None)
            if coef is not None:
                return None if np.ndim(coef) == 1 else np.shape(coef)[0]
            return None if model.n_outputs_ == 1 else model.n_outputs_
        if method == "decision_function":
            k = np.shape(model.coef_)[0]
            return None if k == 1 else k
        return len(model.classes_)


def _validation_function(est, net, loss, adopt, X_val, y_val, Y_val, sample_weight_val):
    """The held-out (score, loss) of the network's current parameters: the score
    the plain estimator reports (accuracy, R^2) and scikit-learn's loss."""
    data = KernelData(X_val, net.dtype)
    loss_function = fi.LOSS_FUNCTIONS[loss]

    def validation():
        out = net.predict(data)
        if not np.isfinite(out).all():
            return np.nan, np.nan
        adopt(net)
        return (float(est.score(X_val, y_val, sample_weight=sample_weight_val)),
                float(loss_function(Y_val, out, sample_weight_val)))
    return validation


def _block_shape(columns, X):
    if columns is None:
        return {"drop_axis": 1}
    return {"chunks": (X.chunks[0], (columns,))}


def _predict_block(X, fn):
    return fn(X)


def _predict_frame(X, fn, names):
    import pandas as pd
    return fn(pd.DataFrame(X, columns=names))


def _dask_class(local_class, base, mixin):
    """A dask face of ``local_class``: its parameters plus ``client``, ``sync_every``
    and ``persist`` (keyword-only)."""
    sig = inspect.signature(local_class.__init__)
    params = list(sig.parameters.values()) + [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
        for name, default in (("client", None), ("sync_every", None),
                              ("persist", "auto"))]
    signature = sig.replace(parameters=params)

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = signature
    return __init__


class _Classifier(ClassifierMixin, _DaskEstimator):
    def predict_proba(self, X):
        """Class probabilities; lazy (a dask array) for dask input.

        Parameters
        ----------
        X : dask array, dask DataFrame or array-like of shape (n_samples, n_features)
            The data to predict.

        Returns
        -------
        proba : dask array of shape (n_samples, n_classes)
            The probability of each class, columns ordered as ``classes_`` (a
            numpy array for numpy input).
        """
        return self._lazy("predict_proba", X, self._n_out_columns("predict_proba"))

    def _classes(self, est, ys, ws):
        """The sorted classes and the class weights (None, or (classes, weight of
        each class) for _prepare), from one pass over y (and sample_weight)."""
        counts = dask.compute(*[dask.delayed(_class_counts)(y, w)
                                for y, w in zip(ys, ws)])
        classes = np.unique(np.concatenate([c for c, _ in counts]))
        check_classification_targets(classes)
        class_weight = getattr(est, "class_weight", None)
        if class_weight is None:
            return classes, None
        total = np.zeros(len(classes))
        for c, k in counts:
            total[np.searchsorted(classes, c)] += k
        # compute_class_weight over the classes, weighted by their counts, is its
        # result over the rows ('balanced': sum(w) / (n_classes x weighted count))
        weights = compute_class_weight(class_weight, classes=classes, y=classes,
                                       sample_weight=total)
        return classes, (classes, weights)


class LogisticRegression(_Classifier):
    __doc__ = _dask_doc(fastgd.LogisticRegression, "sklearn.linear_model.LogisticRegression", """\
    'lbfgs' (and scikit-learn's other L2 solver names) run the exact
    distributed full-batch solver: each worker computes the compiled loss and
    gradient of its partitions, the client sums them in partition order and
    steps the plain estimator's preconditioned L-BFGS, so the model is the plain
    estimator's on the concatenated data, to rounding. 'sgd' / 'adam' run local
    SGD with periodic averaging (an approximation, see the module notes).""", """\
    >>> import dask.array as da
    >>> from fastgd.dask import LogisticRegression
    >>> X = da.random.RandomState(0).random_sample((1000, 5), chunks=(250, 5))
    >>> y = (X[:, 0] > 0.5).astype(int)
    >>> clf = LogisticRegression().fit(X, y)
    >>> clf.predict(X[:4]).compute().shape
    (4,)
    >>> type(clf.to_local()).__name__
    'LogisticRegression'
""")

    _local_class = fastgd.LogisticRegression
    _encode = staticmethod(_encode_logistic)
    __init__ = _dask_class(fastgd.LogisticRegression, None, None)

    @_fit_doc(y="""\
        y : dask array or dask Series of shape (n_samples,)
            Class labels, partitioned as X.""",
              y_val_shape="(n_val,)",
              sample_weight_note=" (multiplied by the class weights)")
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None,
            sample_weight_val=None):
        est = self._local()
        C, l1_share = fi.linear_penalty(est)
        stochastic = est.solver in fi.STOCHASTIC_SOLVERS
        if not stochastic:
            for bad, why in ((est.solver == "liblinear", "solver='liblinear' (its "
                              "objective penalises the intercept)"),
                             (est.dual, "dual=True"),
                             (l1_share > 0, "an L1 penalty (penalty='l1' / "
                              "'elasticnet', l1_ratio > 0) with a full-batch solver "
                              "(OWL-QN)")):
                if bad:
                    raise NotImplementedError(
                        "%s is not supported by fastgd.dask.LogisticRegression; use "
                        "solver='lbfgs' with an L2 penalty, or solver='sgd' / 'adam' "
                        "(proximal L1)." % why)
        fi.warn_n_jobs(est)
        xs, ys, ws, dtype = self._load(est, X, y, sample_weight)
        est.classes_, class_weight = self._classes(est, ys, ws)
        fi.check_two_classes(est.classes_)
        n_out = 1 if len(est.classes_) == 2 else len(est.classes_)
        d = est.n_features_in_
        warm = hasattr(est, "coef_")
        coef, intercept = fi.start_coefficients(est, warm, n_out, d)
        validation_set = self._validation_set(est, X_val, y_val, sample_weight_val, n_out)
        parts = self._persist(est, xs, ys, ws, dtype, n_out, class_weight)
        output, loss = fi.classifier_output(est, n_out)
        net = fi.network_from(coef, intercept, dtype, output)
        total = sum(self._totals(parts))
        scale = 0.0 if C == np.inf else 1.0 / (C * total)
        l2, l1 = (1.0 - l1_share) * scale, l1_share * scale
        if stochastic:
            n_iter = self._local_sgd(est, parts, net, loss,
                                     fi.minibatch_penalty(est, l2, l1),
                                     lambda net: fi.adopt(est, net), validation_set,
                                     warm)
        else:
            n_iter = self._exact_lbfgs(parts, net, loss, l2, est.fit_intercept, total,
                                       est.max_iter, est.tol * fi.LBFGS_GTOL_FACTOR,
                                       est.verbose, n_out)
        fi.adopt(est, net)
        est.n_iter_ = np.asarray([n_iter], dtype=np.int32)
        self._model = est
        return self

    def _exact_lbfgs(self, parts, net, loss, l2, fit_intercept, total, max_iter, tol,
                     verbose, n_out, positive=False, criterion=None):
        """The plain estimator's preconditioned L-BFGS over the distributed gradient."""
        sums = self._runner.map(_moments, parts)
        s1 = sum(s[0] for s in sums)
        s2 = sum(s[1] for s in sums)
        mean = s1 / total
        var = np.maximum(s2 / total - mean * mean, 0.0)
        precond = fi.Preconditioner(mean, var, l2, fit_intercept, n_out)
        objective = _DistributedObjective(self, parts, net, loss, l2, fit_intercept,
                                          precond, total)

        def max_gradient(x, objective, gx):
            g = np.abs(objective.gW).max(initial=0.0)
            if fit_intercept:
                g = max(g, np.abs(objective.gb).max(initial=0.0))
            return g

        W, b = net.views()
        n_iter, status = fi.lbfgs(objective, precond.from_model(W[0], b[0]),
                                max_iter=max_iter, tol=tol,
                                  criterion=criterion or max_gradient,
                                  verbose=verbose, positive=positive)
        if status == 1:
            warnings.warn("lbfgs failed to converge after %d iteration(s) (status=1): "
                          "increase max_iter or scale the data." % n_iter,
                          ConvergenceWarning)
        return n_iter

    def decision_function(self, X):
        """Signed distances to the decision boundary; lazy for dask input.

        Parameters
        ----------
        X : dask array, dask DataFrame or array-like of shape (n_samples, n_features)
            The data to score.

        Returns
        -------
        scores : dask array of shape (n_samples,) or (n_samples, n_classes)
            ``X @ coef_.T + intercept_`` (a numpy array for numpy input).
        """
        return self._lazy("decision_function", X,
                          self._n_out_columns("decision_function"))


class _DistributedObjective(fi.Objective):
    """``_Objective`` whose loss and gradient are summed over the partitions."""

    def __init__(self, owner, parts, network, loss, l2, fit_intercept, precond, total):
        super().__init__(network, None, loss, l2, fit_intercept, precond)
        self.owner, self.parts, self.total = owner, parts, total

    def __call__(self, x):
        self.set_model(x)
        self.n_evals += 1
        f_data, grads = self.owner._gradient(self.parts, self.network, self.loss,
                                             self.fit_intercept, self.total)
        d, k = self.coefs.shape
        gW = grads[: d * k].reshape(d, k)
        gb = grads[d * k :]
        if self.l2:
            gW = gW + self.l2 * self.coefs.astype(np.float64)
        self.f_data, self.gW, self.gb = f_data, gW, gb
        return f_data + self.penalty_value(), self.precond.gradient(gW, gb)


class LinearRegression(RegressorMixin, _DaskEstimator):
    __doc__ = _dask_doc(fastgd.LinearRegression, "sklearn.linear_model.LinearRegression", """\
    Solvers 'auto', 'lstsq', 'cg' and 'lbfgs' solve the (ridge)
    least-squares problem exactly by a distributed QR reduction (each partition
    sends the R factor of its centred, weighted ``[X, y]``; scikit-learn's
    solution, minimum-norm when X is rank-deficient); 'sgd' / 'adam' run local
    SGD (an approximation, see the module notes). ``positive=True`` is not
    supported yet.""", """\
    >>> import dask.array as da
    >>> from fastgd.dask import LinearRegression
    >>> X = da.random.RandomState(0).random_sample((1000, 3), chunks=(250, 3))
    >>> y = X @ da.from_array([1.0, 2.0, 3.0]) + 4.0
    >>> reg = LinearRegression().fit(X, y)
    >>> [round(float(c), 6) for c in reg.coef_], round(float(reg.intercept_), 6)
    ([1.0, 2.0, 3.0], 4.0)
""")

    _local_class = fastgd.LinearRegression
    _encode = staticmethod(_encode_numeric)
    __init__ = _dask_class(fastgd.LinearRegression, None, None)

    @_fit_doc(y="""\
        y : dask array or dask Series of shape (n_samples,) or (n_samples, n_targets)
            Target values, partitioned as X.""",
              y_val_shape="(n_val,) or (n_val, n_outputs)")
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None,
            sample_weight_val=None):
        est = self._local()
        fi.check_linear_regression(est)
        if est.positive:
            raise NotImplementedError("positive=True is not supported by "
                                      "fastgd.dask.LinearRegression yet.")
        stochastic = est.solver in fi.STOCHASTIC_SOLVERS
        y_ndim = 2 if isinstance(y, dd.DataFrame) else len(getattr(y, "shape", (0,)))
        k = 1 if y_ndim == 1 else (len(y.columns) if isinstance(y, dd.DataFrame)
                                   else int(y.shape[1]))
        xs, ys, ws, dtype = self._load(est, X, y, sample_weight)
        validation_set = self._validation_set(est, X_val, y_val, sample_weight_val, k)
        parts = self._persist(est, xs, ys, ws, dtype, k)
        d = est.n_features_in_
        total = sum(self._totals(parts))
        l2, l1 = est.alpha * (1 - est.l1_ratio), est.alpha * est.l1_ratio
        warm = hasattr(est, "coef_") and np.size(est.coef_) == k * d
        coef, intercept = ((np.reshape(est.coef_, (k, d)),
                            np.broadcast_to(np.asarray(est.intercept_, float), (k,)))
                           if warm else (np.zeros((k, d)), np.zeros(k)))
        if not est.fit_intercept:
            intercept = np.zeros(k)
        net = fi.network_from(coef, intercept, dtype, "identity")
        if stochastic:
            n_iter = self._local_sgd(est, parts, net, "squared_error",
                                     fi.minibatch_penalty(est, l2, l1),
                                     lambda net: fi.adopt(est, net, y_ndim),
                                     validation_set, warm)
        else:
            # a direct solve: the optimum whatever the start (warm_start), tol and
            # max_iter
            self._exact_qr(parts, net, l2, est.fit_intercept, total, d, k)
            n_iter = 1
        fi.adopt(est, net, y_ndim)
        est.n_iter_ = n_iter
        self._model = est
        return self

    def _exact_qr(self, parts, net, l2, fit_intercept, total, d, k):
        """Least squares by a two-level (TSQR) reduction of sqrt(w) [X, Y]."""
        x_mean, y_mean = np.zeros(d), np.zeros(k)
        if fit_intercept:
            x_mean = sum(s[0] for s in self._runner.map(_moments, parts)) / total
            y_mean = sum(self._runner.map(_targets_sums, parts)) / total
        blocks = self._runner.map(_qr_block, parts, x_mean=x_mean, y_mean=y_mean)
        if l2:
            # alpha / 2 ||W||^2 next to 1 / (2 sum w) ||r||^2: rows sqrt(alpha sum w) I
            blocks.append(np.hstack([np.sqrt(l2 * total) * np.eye(d), np.zeros((d, k))]))
        R = np.linalg.qr(np.vstack(blocks), mode="r")
        R_X = np.zeros((d, d))
        QtY = np.zeros((d, k))
        rows = min(R.shape[0], d)
        R_X[:rows] = R[:rows, :d]
        QtY[:rows] = R[:rows, d:]
        W = scipy.linalg.lstsq(R_X, QtY)[0]
        Wv, bv = net.views()
        Wv[0][...] = W
        bv[0][...] = y_mean - x_mean @ W if fit_intercept else 0.0


class _MLP(_DaskEstimator):
    @_fit_doc(y="""\
        y : dask array or dask Series of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (MLPClassifier) or target values (MLPRegressor),
            partitioned as X.""",
              y_val_shape="(n_val,) or (n_val, n_outputs)",
              sample_weight_note=" (times the class weights of MLPClassifier)")
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None,
            sample_weight_val=None):
        est = self._local()
        sizes = est.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if np.any(np.array(sizes) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % sizes)
        warm = hasattr(est, "coefs_")
        xs, ys, ws, dtype = self._load(est, X, y, sample_weight)
        n_out, class_weight = self._targets(est, y, ys, ws, warm)
        layer_units = [est.n_features_in_] + sizes + [n_out]
        if warm:
            if [c.shape for c in est.coefs_] != list(zip(layer_units[:-1],
                                                         layer_units[1:])):
                raise ValueError("warm_start needs the layers of the previous fit: "
                                 "it had %s, these data and hidden_layer_sizes give %s."
                                 % ([est.coefs_[0].shape[0]] + [c.shape[1] for c in
                                                                est.coefs_], layer_units))
            dtype = est.coefs_[0].dtype  # the weights' dtype wins, as in the plain fit
        validation_set = self._validation_set(est, X_val, y_val, sample_weight_val, n_out)
        parts = self._persist(est, xs, ys, ws, dtype, n_out, class_weight)
        random_state = check_random_state(est.random_state)
        if not warm:
            fi.mlp_initialize(est, random_state, n_out, layer_units, dtype)
        net = fi.mlp_network(est, dtype)
        total = sum(self._totals(parts))
        loss = fi.mlp_loss(est)
        if est.solver in fi.STOCHASTIC_SOLVERS:
            est.n_iter_ = self._local_sgd(est, parts, net, loss, est.alpha,
                                          lambda net: fi.adopt(est, net),
                                          validation_set, warm)
        else:
            self._lbfgs(est, parts, net, loss, total)
        fi.adopt(est, net)
        if not np.isfinite(net.params).all():
            raise ValueError("Solver produced non-finite parameter weights: scale the "
                             "data, e.g. with sklearn.preprocessing.StandardScaler.")
        self._model = est
        return self

    def _lbfgs(self, est, parts, net, loss, total):
        """scikit-learn's MLP L-BFGS call over the distributed loss and gradient."""
        n_coef = sum(int(a * b) for a, b in zip(net.units[:-1], net.units[1:]))

        def loss_and_gradient(packed):
            net.params[:] = packed
            f, g = self._gradient(parts, net, loss, True, total)
            # the MLP penalty alpha / 2 ||W||^2 / sum w, once over all partitions
            w = net.params[:n_coef].astype(np.float64)
            f += 0.5 * est.alpha * float(w @ w) / total
            g[:n_coef] += est.alpha * w / total
            return f, g

        res = scipy.optimize.minimize(
            loss_and_gradient, net.params.astype(np.float64), method="L-BFGS-B",
            jac=True, options={"maxfun": est.max_fun, "maxiter": est.max_iter,
                               "gtol": est.tol})
        est.n_iter_ = _check_optimize_result("lbfgs", res, est.max_iter)
        est.loss_ = res.fun
        net.params[:] = res.x


class MLPClassifier(_Classifier, _MLP):
    __doc__ = _dask_doc(fastgd.MLPClassifier, "sklearn.neural_network.MLPClassifier", """\
    'lbfgs' is exact (the plain estimator's model on the concatenated data, from
    the same initial weights); 'sgd' / 'adam' run local SGD with periodic
    averaging (an approximation, see the module notes). Binary and multiclass
    targets (not multilabel).""", """\
    >>> import dask.array as da
    >>> from fastgd.dask import MLPClassifier
    >>> X = da.random.RandomState(0).random_sample((400, 4), chunks=(100, 4))
    >>> y = (X[:, 0] + X[:, 1] > 1).astype(int)
    >>> clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=50,
    ...                     random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:3]).compute().shape
    (3, 2)
""")

    _local_class = fastgd.MLPClassifier
    _encode = staticmethod(_encode_mlp_classes)
    __init__ = _dask_class(fastgd.MLPClassifier, None, None)

    def _targets(self, est, y, ys, ws, warm):
        if getattr(y, "ndim", 1) != 1:
            raise ValueError("fastgd.dask.MLPClassifier takes 1-D class labels "
                             "(multilabel y is not supported yet).")
        classes, class_weight = self._classes(est, ys, ws)
        if warm and set(classes) != set(est.classes_):
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as in the "
                f"previous call to fit. Previously got {est.classes_}, `y` has "
                f"{classes}")
        if not warm:
            fi.mlp_set_classes(est, classes)
        return (1 if len(classes) <= 2 else len(classes)), class_weight


class MLPRegressor(RegressorMixin, _MLP):
    __doc__ = _dask_doc(fastgd.MLPRegressor, "sklearn.neural_network.MLPRegressor", """\
    'lbfgs' is exact (the plain estimator's model on the concatenated data);
    'sgd' / 'adam' run local SGD (an approximation, see the module notes).""", """\
    >>> import dask.array as da
    >>> from fastgd.dask import MLPRegressor
    >>> X = da.random.RandomState(0).random_sample((400, 3), chunks=(100, 3))
    >>> y = X.sum(axis=1)
    >>> reg = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=50,
    ...                    random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).compute().shape
    (3,)
""")

    _local_class = fastgd.MLPRegressor
    _encode = staticmethod(_encode_numeric)
    __init__ = _dask_class(fastgd.MLPRegressor, None, None)

    def _targets(self, est, y, ys, ws, warm):
        return (1 if getattr(y, "ndim", 1) == 1 else int(y.shape[1])), None
