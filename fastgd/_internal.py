"""The internal interface that drivers outside the estimators use (``fastgd.dask``).

A driver that trains a plain estimator's model somewhere else (on Dask workers) needs
the estimator's pieces - how it encodes y, which network and loss it trains, its
penalty, how it adopts the trained network as fitted attributes - and the shared
training machinery. It reaches them here, and only here: this module names each
piece once, so that the estimators' private names can change behind it (update
this file, not the drivers). Nothing here holds logic of its own.

Estimator pieces (``est`` is a plain fastgd estimator)
------------------------------------------------------
``linear_penalty(est)``            LogisticRegression: (C, l1 share) after the
                                   penalty / l1_ratio / C rules.
``check_linear_regression(est)``   LinearRegression: solver / penalty / positive checks.
``encode_classes(est, y)``         LogisticRegression targets for the kernels.
``classifier_output(est, n_out)``  LogisticRegression: (output activation, loss name).
``network_from(coef, intercept, dtype, output)``  A linear model's Network.
``warn_n_jobs(est)``, ``check_two_classes(classes)``, ``start_coefficients(est,
warm, n_out, n_features)``  LogisticRegression's n_jobs FutureWarning, its
                                   one-class error, its starting (coef, intercept).
``adopt(est, network, *args)``     Set the fitted weights from a trained Network
                                   (LinearRegression also takes y.ndim).
``mlp_set_classes(est, classes)``  MLPClassifier's label encoding for these classes.
``mlp_initialize(est, random_state, n_out, layer_units, dtype)``  The MLP's initial
                                   weights (scikit-learn's draws from random_state)
                                   and output activation.
``mlp_network(est, dtype)``, ``mlp_loss(est)``, ``mlp_indicator(est, y)``
                                   The MLP's Network, kernel loss and encoded classes.
``validation_set(est, X_val, y_val, sample_weight_val, n_outputs, epochs)``
                                   The plain estimator's check and encoding of a
                                   validation set of the user's.

Shared machinery
----------------
``STOCHASTIC_SOLVERS``, ``clip_batch_size``, ``make_optimizer``,
``minibatch_penalty``, ``Progress``, ``StoppingRules``, ``run_epochs`` (the
epoch loop and its stopping rules), ``report_divergence`` (``fastgd._minibatch``); ``lbfgs``, ``Objective``, ``Preconditioner``
(``fastgd._solvers``); ``LBFGS_GTOL_FACTOR`` (the linear models' gradient tolerance
for a given ``tol``); ``LOSS_FUNCTIONS`` (scikit-learn's loss of outputs vs targets).
"""

import numpy as np
from sklearn.neural_network._base import LOSS_FUNCTIONS
from sklearn.preprocessing import LabelBinarizer

from fastgd._linear import _LBFGS_GTOL_FACTOR as LBFGS_GTOL_FACTOR
from fastgd._linear import _check_two_classes as check_two_classes
from fastgd._linear import _network_from as network_from
from fastgd._linear import _start_coefficients as start_coefficients
from fastgd._linear import _warn_n_jobs as warn_n_jobs
from fastgd._minibatch import _STOCHASTIC_SOLVERS as STOCHASTIC_SOLVERS
from fastgd._minibatch import Progress, StoppingRules, clip_batch_size, make_optimizer
from fastgd._minibatch import report_divergence, run_epochs
from fastgd._minibatch import minibatch_penalty
from fastgd._solvers import _lbfgs as lbfgs
from fastgd._solvers import _Objective as Objective
from fastgd._solvers import _Preconditioner as Preconditioner

__all__ = [
    "LBFGS_GTOL_FACTOR", "LOSS_FUNCTIONS", "STOCHASTIC_SOLVERS", "Objective",
    "Preconditioner", "Progress", "StoppingRules", "adopt", "check_linear_regression",
    "check_two_classes", "classifier_output", "clip_batch_size", "encode_classes",
    "lbfgs", "linear_penalty", "make_optimizer", "minibatch_penalty",
    "mlp_indicator", "mlp_initialize", "mlp_set_classes", "mlp_loss", "mlp_network",
    "network_from", "report_divergence", "run_epochs", "start_coefficients",
    "validation_set", "warn_n_jobs",
]


def linear_penalty(est):
    return est._resolve_penalty()


def check_linear_regression(est):
    est._check_solver_options()


def encode_classes(est, y):
    return est._encode(y, est.classes_)


def classifier_output(est, n_out):
    return est._output_activation(n_out), est._loss_name(n_out)


def adopt(est, network, *args):
    est._adopt(network, *args)


def mlp_set_classes(est, classes):
    """The MLP classifier's label encoding for these (sorted) classes."""
    est._label_binarizer = LabelBinarizer().fit(classes)
    est.classes_ = est._label_binarizer.classes_


def mlp_initialize(est, random_state, n_out, layer_units, dtype):
    est._random_state = random_state
    est._initialize(np.empty((0, n_out)), layer_units, dtype)


def mlp_network(est, dtype):
    return est._network(dtype)


def mlp_loss(est):
    return est._loss_name()


def mlp_indicator(est, y):
    return est._indicator(y)


def validation_set(est, X_val, y_val, sample_weight_val, n_outputs, epochs):
    """The plain estimator's check and encoding of a user's validation set:
    (X_val, Y_val, sample_weight_val, labels_val), or None."""
    return est._validation_set(X_val, y_val, sample_weight_val, n_outputs, epochs)
