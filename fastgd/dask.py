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
  each shard runs one compiled epoch (``Network.train_epoch``) from the current
  parameters and optimizer moments, and the client averages parameters, moments
  and step counts weighted by rows. This is an APPROXIMATION of single-machine
  training (each worker sees 1/W of the data between averages); with one worker
  it is plain single-machine training. ``benchmarks/dask.md`` measures
  it. ``early_stopping`` and ``class_weight`` are not supported here yet.
"""

import inspect
import warnings

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_array, check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.optimize import _check_optimize_result

import dask
import dask.array as da
import dask.dataframe as dd

import fastgd
from fastgd._engine import KernelData, Network, Penalty, check_finite
from fastgd._linear import _LBFGS_GTOL_FACTOR, _network_from
from fastgd._minibatch import _STOCHASTIC_SOLVERS, clip_batch_size, make_optimizer
from fastgd._minibatch import minibatch_penalty
from fastgd._solvers import _lbfgs, _Objective, _Preconditioner

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
    return ([xs[i] for i in keep], [parts[0][i] for i in keep],
            [parts[1][i] for i in keep], X.shape[1], names, X.dtype)


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
    dask's local scheduler, in this process. Results come back in partition order."""

    def __init__(self, client):
        self.client = client

    def load(self, fn, *lists, **kwargs):
        """Partitions (kept where they are computed) of fn(*blocks, **kwargs)."""
        if self.client is None:
            blocks = dask.compute(*[dask.delayed(fn)(*a, **kwargs) for a in zip(*lists)])
            return list(blocks)
        from distributed import wait
        futures = self.client.compute([dask.delayed(fn)(*a, **kwargs)
                                       for a in zip(*lists)])
        wait(futures)  # in memory, so that who_has knows where each part lives
        return futures

    def map(self, fn, parts, **kwargs):
        """[fn(part, **kwargs) for part in parts], one task per worker (each runs its
        own partitions): fewer round trips per iteration than a task per part."""
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
        if self.client is None:
            return [fn(p, **e, **kwargs) for p, e in zip(parts, each)]
        return self.client.gather([self.client.submit(fn, p, **e, **kwargs, pure=False)
                                   for p, e in zip(parts, each)])

    def shards(self, parts):
        """One shard per worker: the concatenation of the partitions it holds."""
        if self.client is None:
            return [_concat(*parts)] if len(parts) > 1 else list(parts)
        who = self.client.who_has(parts)
        by_worker = {}
        for f in parts:
            by_worker.setdefault(sorted(who[f.key])[0], []).append(f)
        return [self.client.submit(_concat, *fs, workers=[w], pure=False)
                for w, fs in sorted(by_worker.items())]


# ---------------------------------------------------------------------------
# Worker-side functions (module level: workers import them)
# ---------------------------------------------------------------------------


def _each(fn, *parts, kwargs):
    return [fn(p, **kwargs) for p in parts]


def _prepare(X, y, w, *, est, dtype, encode):
    """A partition as KernelData in ``dtype`` (validated, targets encoded)."""
    X = check_array(X, accept_sparse="csr", dtype=[np.float64, np.float32],
                    order="C", ensure_all_finite=False)
    X = X.astype(dtype, copy=False)
    check_finite(X, est)
    if w is not None:
        w = np.asarray(w, dtype=dtype)
    return KernelData(X, dtype, encode(est, np.asarray(y)), w)


def _encode_logistic(est, y):
    return est._encode(y, est.classes_)


def _encode_mlp_classes(est, y):
    return est._indicator(y)


def _encode_numeric(est, y):
    y = np.asarray(y, dtype=np.float64)
    return y.reshape(-1, 1) if y.ndim == 1 else y


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
    """R of sqrt(w) [X - x_mean, Y - y_mean] (dense, float64)."""
    X = data.X if not data.sparse else sp.csr_matrix(
        (data.data, data.indices, data.indptr),
        shape=(data.n_samples, data.n_features)).toarray()
    A = np.hstack([X.astype(np.float64) - x_mean, data.Y.astype(np.float64) - y_mean])
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
                 batch_size, shuffle, seed, dropout=0.0):
    """One compiled epoch on a shard from the given parameters and optimizer state
    (``seed`` draws the shuffle and keys the dropout masks)."""
    net = Network(units, hidden, output, params.astype(data.dtype), dropout=dropout)
    optimizer.as_dtype(data.dtype)
    order = np.arange(data.n_samples)
    if shuffle:
        np.random.RandomState(seed).shuffle(order)
    loss_sum = net.train_epoch(data, loss, penalty, optimizer, order,
                               min(batch_size, data.n_samples), dropout_seed=seed)
    return net.params, optimizer.state_1, optimizer.state_2, optimizer.step, loss_sum


# ---------------------------------------------------------------------------
# The estimators
# ---------------------------------------------------------------------------


class _DaskEstimator(BaseEstimator):
    _local_class = None
    _encode = None

    def _local(self):
        params = {k: v for k, v in self.get_params(deep=False).items() if k != "client"}
        est = self._local_class(**params)
        est._validate_params()
        if getattr(est, "early_stopping", False):
            raise NotImplementedError("early_stopping is not supported by fastgd.dask "
                                      "yet; fit without it or use to_local().")
        if getattr(est, "class_weight", None) is not None:
            raise NotImplementedError("class_weight is not supported by fastgd.dask "
                                      "yet: pass the weights as sample_weight.")
        return est

    def _load(self, est, X, y, sample_weight):
        """Prepare and keep the partitions; set the input attributes of ``est``."""
        self._runner = _Runner(_current_client(self.client))
        xs, ys, ws, d, names, dtype = _row_partitions(X, y, sample_weight)
        if not xs:
            raise ValueError("Found array with 0 sample(s) while a minimum of 1 is "
                             "required.")
        dtype = np.dtype(dtype) if np.dtype(dtype) in (np.float32, np.float64) else (
            np.dtype(np.float64))
        est.n_features_in_ = d
        if names is not None:
            est.feature_names_in_ = names
        self._ys = ys
        return xs, ys, ws, dtype

    def _persist(self, est, xs, ys, ws, dtype):
        try:
            return self._runner.load(_prepare, xs, ys, ws, est=est, dtype=dtype,
                                     encode=type(self)._encode)
        except MemoryError as exc:
            raise MemoryError("The cluster cannot hold the training data in memory: "
                              "add workers or memory, or use fewer features.") from exc

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

    def _local_sgd(self, est, parts, net, loss, penalty):
        """Local SGD: one compiled epoch per shard from the averaged state."""
        shards = self._runner.shards(parts)
        rows = np.asarray(self._runner.map(_weight_sum, shards))
        n = float(rows.sum())
        share = rows / n
        optimizer = make_optimizer(est, net.params.size, net.dtype)
        batch = clip_batch_size(est.batch_size, int(min(
            self._runner.map(lambda d: d.n_samples, shards))))
        seeds = check_random_state(est.random_state).randint(2**31 - 1,
                                                             size=(est.max_iter, len(shards)))
        curve, best, stall, t = [], np.inf, 0, 0
        for epoch in range(est.max_iter):
            results = self._runner.map_each(
                _train_shard, shards, [{"seed": int(sd)} for sd in seeds[epoch]],
                units=list(net.units), hidden=net.hidden_activation,
                output=net.output_activation, loss=loss, penalty=penalty,
                optimizer=optimizer, params=net.params, batch_size=batch,
                shuffle=est.shuffle, dropout=net.dropout)
            # Rows-weighted averages, in shard order.
            net.params[...] = sum(a * r[0].astype(np.float64) for a, r in zip(share, results))
            optimizer.state_1[...] = sum(a * r[1].astype(np.float64)
                                         for a, r in zip(share, results))
            optimizer.state_2[...] = sum(a * r[2].astype(np.float64)
                                         for a, r in zip(share, results))
            optimizer.step = int(round(sum(a * r[3] for a, r in zip(share, results))))
            loss_value = sum(r[4] for r in results) / n
            if not np.isfinite(loss_value) or not np.isfinite(net.params).all():
                raise ValueError("local SGD diverged (non-finite loss): scale your data "
                                 "or lower the learning rate.")
            t += int(n)
            curve.append(float(loss_value))
            optimizer.iteration_ends(t)
            if est.verbose:
                print("Iteration %d, loss = %.8f" % (epoch + 1, loss_value))
            # scikit-learn's rule on the training loss
            stall = stall + 1 if loss_value > best - est.tol else 0
            best = min(best, loss_value)
            if stall > est.n_iter_no_change:
                if optimizer.trigger_stopping("Training loss did not improve more than "
                                              "tol=%f for %d consecutive epochs."
                                              % (est.tol, est.n_iter_no_change),
                                              est.verbose):
                    break
                stall = 0
        else:
            warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and "
                          "the optimization hasn't converged yet." % est.max_iter,
                          ConvergenceWarning)
        est._optimizer = optimizer
        est.loss_curve_, est.loss_, est.best_loss_, est.t_ = curve, curve[-1], best, t
        return len(curve)

    # -- prediction and export ---------------------------------------------------

    def to_local(self):
        """The fitted plain fastgd estimator (no dask needed to use or unpickle it).

        Returns
        -------
        estimator : fastgd estimator
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
                return X.map_blocks(_predict_frame, fn, list(names), dtype=float,
                                    **_block_shape(out_columns, X))
        if not isinstance(X, da.Array):
            return fn(X)
        if X.numblocks[1] != 1:
            X = X.rechunk({1: -1})
        return X.map_blocks(_predict_block, fn, dtype=_out_dtype(model, method),
                            **_block_shape(out_columns, X))

    def predict(self, X):
        """Predictions; lazy (a dask array) for dask input.

        Parameters
        ----------
        X : dask array, dask DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        y : dask array of shape (n_samples,) or (n_samples, n_outputs)
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


def _block_shape(columns, X):
    if columns is None:
        return {"drop_axis": 1}
    return {"chunks": (X.chunks[0], (columns,))}


def _out_dtype(model, method):
    if method == "predict" and hasattr(model, "classes_"):
        return model.classes_.dtype
    return float


def _predict_block(X, fn):
    return fn(X)


def _predict_frame(X, fn, names):
    import pandas as pd
    return fn(pd.DataFrame(X, columns=names))


def _dask_class(local_class, base, mixin):
    """A dask face of ``local_class``: its parameters plus ``client``."""
    sig = inspect.signature(local_class.__init__)
    params = list(sig.parameters.values()) + [
        inspect.Parameter("client", inspect.Parameter.KEYWORD_ONLY, default=None)]
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

        Returns
        -------
        proba : dask array of shape (n_samples, n_classes)
        """
        return self._lazy("predict_proba", X, self._n_out_columns("predict_proba"))

    def _classes(self, ys):
        """The sorted classes, from one pass over y."""
        uniques = dask.compute(*[dask.delayed(np.unique)(y) for y in ys])
        classes = np.unique(np.concatenate(uniques))
        check_classification_targets(classes)
        return classes


class LogisticRegression(_Classifier):
    """fastgd.LogisticRegression trained on a Dask cluster.

    The parameters are those of :class:`fastgd.LogisticRegression`, plus
    ``client`` (a ``distributed.Client``; None: the current client, or dask's local
    scheduler). 'lbfgs' (and scikit-learn's other L2 solver names) run the exact
    distributed full-batch solver: the same model as the plain estimator on the
    concatenated data. 'sgd' / 'adam' run local SGD with periodic averaging (an
    approximation, see the module notes).

    Examples
    --------
    >>> import dask.array as da
    >>> from fastgd.dask import LogisticRegression
    >>> X = da.random.RandomState(0).random_sample((1000, 5), chunks=(250, 5))
    >>> y = (X[:, 0] > 0.5).astype(int)
    >>> clf = LogisticRegression().fit(X, y)
    >>> clf.predict(X[:4]).compute().shape
    (4,)
    >>> type(clf.to_local()).__name__
    'LogisticRegression'
    """

    _local_class = fastgd.LogisticRegression
    _encode = staticmethod(_encode_logistic)
    __init__ = _dask_class(fastgd.LogisticRegression, None, None)

    def fit(self, X, y, sample_weight=None):
        """Fit on row partitions of X and y.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features)
        y : dask array or dask Series of shape (n_samples,)
        sample_weight : dask array or dask Series of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        est = self._local()
        C, l1_share = est._resolve_penalty()
        xs, ys, ws, dtype = self._load(est, X, y, sample_weight)
        est.classes_ = self._classes(ys)
        if len(est.classes_) < 2:
            raise ValueError("This solver needs samples of at least 2 classes in the "
                             "data, but the data contains only one class: %r"
                             % est.classes_[0])
        parts = self._persist(est, xs, ys, ws, dtype)
        n_out = 1 if len(est.classes_) == 2 else len(est.classes_)
        d = est.n_features_in_
        net = _network_from(np.zeros((n_out, d)), np.zeros(n_out), dtype,
                            est._output_activation(n_out))
        total = sum(self._totals(parts))
        scale = 0.0 if C == np.inf else 1.0 / (C * total)
        l2, l1 = (1.0 - l1_share) * scale, l1_share * scale
        loss = est._loss_name(n_out)
        if est.solver in _STOCHASTIC_SOLVERS:
            n_iter = self._local_sgd(est, parts, net, loss,
                                     minibatch_penalty(est, l2, l1))
        else:
            n_iter = self._exact_lbfgs(parts, net, loss, l2, est.fit_intercept, total,
                                       est.max_iter, est.tol * _LBFGS_GTOL_FACTOR,
                                       est.verbose, n_out)
        est._adopt(net)
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
        precond = _Preconditioner(mean, var, l2, fit_intercept, n_out)
        objective = _DistributedObjective(self, parts, net, loss, l2, fit_intercept,
                                          precond, total)

        def max_gradient(x, objective, gx):
            g = np.abs(objective.gW).max(initial=0.0)
            if fit_intercept:
                g = max(g, np.abs(objective.gb).max(initial=0.0))
            return g

        W, b = net.views()
        n_iter, status = _lbfgs(objective, precond.from_model(W[0], b[0]),
                                max_iter=max_iter, tol=tol,
                                criterion=criterion or max_gradient, verbose=verbose,
                                positive=positive)
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

        Returns
        -------
        scores : dask array of shape (n_samples,) or (n_samples, n_classes)
        """
        return self._lazy("decision_function", X,
                          self._n_out_columns("decision_function"))


class _DistributedObjective(_Objective):
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
    """fastgd.LinearRegression trained on a Dask cluster.

    The parameters are those of :class:`fastgd.LinearRegression`, plus ``client``.
    Solvers 'auto', 'cg' and 'lbfgs' solve the (ridge) least-squares problem
    exactly by a distributed QR reduction (scikit-learn's solution, minimum-norm
    when X is rank-deficient); ``positive=True`` runs the exact distributed L-BFGS-B;
    'sgd' / 'adam' run local SGD (an approximation, see the module notes).

    Examples
    --------
    >>> import dask.array as da
    >>> from fastgd.dask import LinearRegression
    >>> X = da.random.RandomState(0).random_sample((1000, 3), chunks=(250, 3))
    >>> y = X @ da.from_array([1.0, 2.0, 3.0]) + 4.0
    >>> reg = LinearRegression().fit(X, y)
    >>> [round(float(c), 6) for c in reg.coef_], round(float(reg.intercept_), 6)
    ([1.0, 2.0, 3.0], 4.0)
    """

    _local_class = fastgd.LinearRegression
    _encode = staticmethod(_encode_numeric)
    __init__ = _dask_class(fastgd.LinearRegression, None, None)

    def fit(self, X, y, sample_weight=None):
        """Fit on row partitions of X and y.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features)
        y : dask array or dask Series of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : dask array or dask Series of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        est = self._local()
        est._check_solver_options()
        y_ndim = len(getattr(y, "shape", (0,))) if not isinstance(y, dd.DataFrame) else 2
        xs, ys, ws, dtype = self._load(est, X, y, sample_weight)
        parts = self._persist(est, xs, ys, ws, dtype)
        d = est.n_features_in_
        total = sum(self._totals(parts))
        k = int(self._runner.map(lambda p: p.Y.shape[1], parts[:1])[0])
        l2, l1 = est.alpha * (1 - est.l1_ratio), est.alpha * est.l1_ratio
        net = _network_from(np.zeros((k, d)), np.zeros(k), dtype, "identity")
        if est.solver in _STOCHASTIC_SOLVERS:
            n_iter = self._local_sgd(est, parts, net, "squared_error",
                                     minibatch_penalty(est, l2, l1))
        elif est.positive:
            raise NotImplementedError("positive=True is not supported by "
                                      "fastgd.dask.LinearRegression yet.")
        else:
            self._exact_qr(parts, net, l2, est.fit_intercept, total, d, k)
            n_iter = 1
        est._adopt(net, y_ndim)
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
    def fit(self, X, y, sample_weight=None):
        """Fit on row partitions of X and y.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features)
        y : dask array or dask Series of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : dask array or dask Series of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        est = self._local()
        sizes = est.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if np.any(np.array(sizes) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % sizes)
        xs, ys, ws, dtype = self._load(est, X, y, sample_weight)
        n_out = self._targets(est, y, ys)
        parts = self._persist(est, xs, ys, ws, dtype)
        est._random_state = check_random_state(est.random_state)
        est._initialize(np.empty((0, n_out)), [est.n_features_in_] + sizes + [n_out],
                        dtype)
        net = est._network(dtype)
        total = sum(self._totals(parts))
        loss = est._loss_name()
        if est.solver in _STOCHASTIC_SOLVERS:
            est.n_iter_ = self._local_sgd(est, parts, net, loss, est.alpha)
        elif est.dropout > 0:
            raise ValueError("dropout > 0 needs a mini-batch solver, not 'lbfgs'.")
        else:
            self._lbfgs(est, parts, net, loss, total)
        est._adopt(net)
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
    """fastgd.MLPClassifier trained on a Dask cluster.

    The parameters are those of :class:`fastgd.MLPClassifier`, plus ``client``.
    'lbfgs' is exact (the plain estimator's model on the concatenated data, same
    initial weights); 'sgd' / 'adam' run local SGD with periodic averaging (an
    approximation, see the module notes). Binary and multiclass targets.

    Examples
    --------
    >>> import dask.array as da
    >>> from fastgd.dask import MLPClassifier
    >>> X = da.random.RandomState(0).random_sample((400, 4), chunks=(100, 4))
    >>> y = (X[:, 0] + X[:, 1] > 1).astype(int)
    >>> clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=50,
    ...                     random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:3]).compute().shape
    (3, 2)
    """

    _local_class = fastgd.MLPClassifier
    _encode = staticmethod(_encode_mlp_classes)
    __init__ = _dask_class(fastgd.MLPClassifier, None, None)

    def _targets(self, est, y, ys):
        if getattr(y, "ndim", 1) != 1:
            raise ValueError("fastgd.dask.MLPClassifier takes 1-D class labels "
                             "(multilabel y is not supported yet).")
        classes = self._classes(ys)
        est._label_binarizer = LabelBinarizer().fit(classes)
        est.classes_ = est._label_binarizer.classes_
        return 1 if len(classes) <= 2 else len(classes)


class MLPRegressor(RegressorMixin, _MLP):
    """fastgd.MLPRegressor trained on a Dask cluster.

    The parameters are those of :class:`fastgd.MLPRegressor`, plus ``client``.
    'lbfgs' is exact; 'sgd' / 'adam' run local SGD (an approximation).

    Examples
    --------
    >>> import dask.array as da
    >>> from fastgd.dask import MLPRegressor
    >>> X = da.random.RandomState(0).random_sample((400, 3), chunks=(100, 3))
    >>> y = X.sum(axis=1)
    >>> reg = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=50,
    ...                    random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).compute().shape
    (3,)
    """

    _local_class = fastgd.MLPRegressor
    _encode = staticmethod(_encode_numeric)
    __init__ = _dask_class(fastgd.MLPRegressor, None, None)

    def _targets(self, est, y, ys):
        return 1 if getattr(y, "ndim", 1) == 1 else int(y.shape[1])
