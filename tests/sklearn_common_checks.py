"""Run one scikit-learn common check the way sklearn/tests/test_common.py does.

Shared by the estimator-check modules. scikit-learn looks its per-check instance
settings (PER_ESTIMATOR_CHECK_PARAMS) up by its own classes, so each module mirrors
them by hand in a ``{class name: {check name: [params, ...]}}`` dict.
"""

from scipy.linalg import LinAlgWarning
from sklearn import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._testing import ignore_warnings


def _check_name(check):
    func = getattr(check, "func", check)
    return getattr(func, "__name__", str(func))


def _instances_for_check(check_name, estimator, per_check_params):
    """Like scikit-learn's private _yield_instances_for_check, for fastgd's types."""
    param_sets = per_check_params[type(estimator).__name__].get(check_name)
    if param_sets is None:
        yield estimator
        return
    for params in param_sets:
        yield clone(estimator).set_params(**params)


def run_check(estimator, check, per_check_params):
    """Run ``check`` on each mirrored instance, ignoring the warnings scikit-learn's
    test_estimators ignores."""
    for instance in _instances_for_check(_check_name(check), estimator, per_check_params):
        with ignore_warnings(
            category=(FutureWarning, ConvergenceWarning, UserWarning, LinAlgWarning)
        ):
            check(instance)
