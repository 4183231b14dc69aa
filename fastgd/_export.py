"""Models that leave fastgd: the genuine scikit-learn estimator, and ONNX.

``to_sklearn(est)`` builds the scikit-learn estimator a fitted fastgd model
replaces, with the same parameters and fitted attributes: it predicts the same, and
its pickle names no fastgd class, so a system with only scikit-learn installed can
load it. fastgd's training-only options (callbacks, ``class_weight`` of the MLPs,
``max_time``, ``warmup_epochs``, ``early_stopping_metric``, ``weight_decay``,
``max_grad_norm``, ``matmul_precision``, ``dropout``, the 'cosine' schedule, the 'adamw' / 'rmsprop' /
'adagrad' solvers and the linear models' 'sgd' / 'adam') shaped the training, not
the model: they are replaced by scikit-learn's defaults, with a warning naming each
one. (Dropout is off in predict, so a model trained with it exports as any other.)
The activations 'leaky_relu', 'gelu' and 'silu' change the model itself: such a
model is refused with a ValueError naming the activation.

When skl2onnx is installed, ``register_onnx_converters`` (armed on import of
fastgd, run when skl2onnx is imported) registers the four estimators with skl2onnx, reusing its converters for the
scikit-learn models through ``to_sklearn``, so ``skl2onnx.to_onnx(model, X[:1])``
works.
"""

import importlib.abc
import importlib.util
import sys
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn import linear_model as sk_linear
from sklearn import neural_network as sk_nn
from sklearn.utils.validation import check_is_fitted

# Fitted attributes copied as they are, when the fastgd model has them.
_MLP_ATTRIBUTES = ("n_outputs_", "n_layers_", "out_activation_", "n_iter_", "t_",
                   "loss_", "loss_curve_", "best_loss_", "validation_scores_",
                   "best_validation_score_", "n_features_in_", "feature_names_in_",
                   "classes_", "_label_binarizer", "_no_improvement_count")
_LINEAR_ATTRIBUTES = ("n_iter_", "n_features_in_", "feature_names_in_", "classes_",
                      "rank_", "singular_")


# Options scikit-learn does not have: the activations change what the model computes
# (no export), the solvers only how it was trained (replaced, with a warning).
_FASTGD_ACTIVATIONS = ("leaky_relu", "gelu", "silu")
_FASTGD_SOLVERS = ("adamw", "rmsprop", "adagrad")


def _plain(value):
    """numpy / Python values only (a pickle without fastgd's classes)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return np.array(value, copy=True)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _sklearn_params(est, target_cls, replace=None):
    """est's parameters that target_cls takes; a warning for each other one that is
    not at its default (``replace``: {name: (value fastgd has, scikit-learn's)})."""
    import inspect

    defaults = {name: p.default
                for name, p in inspect.signature(type(est).__init__).parameters.items()}
    target = target_cls().get_params()
    params, dropped = {}, []
    for name, value in est.get_params(deep=False).items():
        if name in target:
            params[name] = value
        elif value is not defaults.get(name) and value != defaults.get(name):
            dropped.append(f"{name}={value!r}")
    for name, (fastgd_values, sklearn_value) in (replace or {}).items():
        if params.get(name) in fastgd_values:
            dropped.append(f"{name}={params[name]!r}")
            params[name] = sklearn_value
    if dropped:
        warnings.warn(
            f"to_sklearn: {type(est).__name__}'s training-only options "
            f"{', '.join(dropped)} have no scikit-learn {target_cls.__name__} "
            "counterpart; the exported model has scikit-learn's defaults for them "
            "(the fitted model itself is unchanged).", UserWarning, stacklevel=3)
    return params


def _copy_attributes(src, dst, names):
    for name in names:
        if hasattr(src, name):
            setattr(dst, name, _plain(getattr(src, name)))


def to_sklearn(est):
    """The scikit-learn estimator that ``est`` replaces, with its fitted state.

    Parameters
    ----------
    est : fitted fastgd estimator
        MLPClassifier, MLPRegressor, LogisticRegression or LinearRegression.

    Returns
    -------
    sklearn_estimator : estimator
        ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor``,
        ``sklearn.linear_model.LogisticRegression``, and
        ``sklearn.linear_model.LinearRegression`` - or ``ElasticNet`` for a
        fastgd LinearRegression with ``alpha > 0`` (the same objective).
        Predictions equal ``est``'s to rounding.

    Examples
    --------
    >>> import pickle
    >>> from sklearn.datasets import load_iris
    >>> from fastgd import LogisticRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = LogisticRegression(max_iter=200).fit(X, y)
    >>> sk = clf.to_sklearn()
    >>> type(sk).__module__
    'sklearn.linear_model._logistic'
    >>> bool((sk.predict(X) == clf.predict(X)).all())
    True
    >>> b"fastgd" in pickle.dumps(sk)
    False
    """
    check_is_fitted(est)
    name = type(est).__name__
    if name in ("MLPClassifier", "MLPRegressor"):
        if est.activation in _FASTGD_ACTIVATIONS:
            raise ValueError(
                f"to_sklearn: activation={est.activation!r} is fastgd's own; "
                f"scikit-learn's {name} (and so ONNX export through it) supports "
                "only 'identity', 'logistic', 'tanh' and 'relu'.")
        target_cls = getattr(sk_nn, name)
        # The solver shaped the weights only: the exported model predicts the same.
        params = _sklearn_params(est, target_cls,
                                 replace={"learning_rate": (("cosine",), "constant"),
                                          "solver": (_FASTGD_SOLVERS, "adam")})
        out = target_cls(**params)
        out.coefs_ = [np.array(c, copy=True) for c in est.coefs_]
        out.intercepts_ = [np.array(b, copy=True) for b in est.intercepts_]
        _copy_attributes(est, out, _MLP_ATTRIBUTES)
        if hasattr(est, "_best_coefs") and est.early_stopping:
            out._best_coefs, out._best_intercepts = out.coefs_, out.intercepts_
        return out
    if name == "LogisticRegression":
        solver = "saga" if est.l1_ratio not in (0, 0.0, None) else "lbfgs"
        params = _sklearn_params(
            est, sk_linear.LogisticRegression,
            replace={"solver": (("sgd", "adam") + _FASTGD_SOLVERS, solver)})
        out = sk_linear.LogisticRegression(**params)
        coef = est.coef_.toarray() if sp.issparse(est.coef_) else est.coef_
        out.coef_ = np.array(coef, copy=True)
        out.intercept_ = np.array(est.intercept_, copy=True)
        _copy_attributes(est, out, _LINEAR_ATTRIBUTES)
        return out
    if name == "LinearRegression":
        if est.alpha > 0:
            params = _sklearn_params(est, sk_linear.ElasticNet)
            params.update(alpha=est.alpha, l1_ratio=est.l1_ratio)
            out = sk_linear.ElasticNet(**params)
        else:
            out = sk_linear.LinearRegression(**_sklearn_params(
                est, sk_linear.LinearRegression))
        coef = est.coef_.toarray() if sp.issparse(est.coef_) else est.coef_
        out.coef_ = np.array(coef, copy=True)
        out.intercept_ = _plain(np.asarray(est.intercept_)[()]
                                if np.ndim(est.intercept_) == 0 else est.intercept_)
        _copy_attributes(est, out, _LINEAR_ATTRIBUTES)
        return out
    raise TypeError(f"to_sklearn does not know {name}")


def _converting_as_sklearn(convert):
    def converter(scope, operator, container):
        # skl2onnx's converter reads the scikit-learn model's attributes
        operator.raw_operator = to_sklearn(operator.raw_operator)
        return convert(scope, operator, container)
    return converter


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs ``action`` once the module ``name`` has been imported (importing skl2onnx
    takes seconds: fastgd does not import it, it waits for the user to)."""

    def __init__(self, name, action):
        self.name, self.action = name, action

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module, action = spec.loader.exec_module, self.action

        def exec_then_act(module):
            exec_module(module)
            action()
        spec.loader.exec_module = exec_then_act
        return spec


def register_onnx_converters():
    """Register fastgd's estimators with skl2onnx: each converts as the
    scikit-learn model ``to_sklearn`` gives. Called on import of fastgd: at once if
    skl2onnx is already imported, else right after skl2onnx is. Returns True if
    registered now."""
    if "skl2onnx" not in sys.modules:
        if importlib.util.find_spec("skl2onnx") is not None and not any(
                isinstance(f, _AfterImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _AfterImport("skl2onnx", register_onnx_converters))
        return False
    from skl2onnx import update_registered_converter
    from skl2onnx._parse import _parse_sklearn_classifier
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import (
        _converter_pool,
        get_converter,
        get_shape_calculator,
    )

    import fastgd

    pairs = [(fastgd.MLPClassifier, sk_nn.MLPClassifier),
             (fastgd.MLPRegressor, sk_nn.MLPRegressor),
             (fastgd.LogisticRegression, sk_linear.LogisticRegression),
             (fastgd.LinearRegression, sk_linear.LinearRegression)]
    for ours, theirs in pairs:
        alias = sklearn_operator_name_map[theirs]
        converter = _converting_as_sklearn(get_converter(alias))
        classifier = ours in (fastgd.MLPClassifier, fastgd.LogisticRegression)
        update_registered_converter(
            ours, "Fastgd" + ours.__name__, get_shape_calculator(alias), converter,
            parser=_parse_sklearn_classifier if classifier else None,
            options=_converter_pool[alias].get_allowed_options(),
        )
    return True
