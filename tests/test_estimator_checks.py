"""scikit-learn's common estimator checks, run on fastgd's MLPs exactly as
scikit-learn's own test suite (sklearn/tests/test_common.py::test_estimators) runs
them on its MLPs.

What scikit-learn 1.9 does for its own MLPs
(sklearn/utils/_test_common/instance_generator.py):

* INIT_PARAMS: ``MLPClassifier: dict(max_iter=100)``, ``MLPRegressor:
  dict(max_iter=100)`` -- the instances under test.
* PER_ESTIMATOR_CHECK_PARAMS: ``check_sample_weight_equivalence_on_dense_data`` is run
  on ``MLPClassifier(solver="lbfgs")`` and on ``MLPRegressor(solver="sgd", tol=1e-2,
  random_state=42)`` instead of the default instances.  scikit-learn applies these
  only to its own classes (``_yield_instances_for_check`` looks them up by type), so
  they are mirrored here by hand.
* PER_ESTIMATOR_XFAIL_CHECKS: no entry for either MLP, so no
  ``expected_failed_checks`` is passed: every check must pass.
* test_estimators runs each check under
  ``ignore_warnings(category=(FutureWarning, ConvergenceWarning, UserWarning,
  LinAlgWarning))``.
"""


import pytest
from sklearn import neural_network as sk_nn
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn_common_checks import run_check

import fastgd
from conftest import sklearn_params

# Mirrors INIT_PARAMS[MLPClassifier] / INIT_PARAMS[MLPRegressor] = dict(max_iter=100)
ESTIMATORS = [
    fastgd.MLPClassifier(max_iter=100),  # as INIT_PARAMS[MLPClassifier]
    fastgd.MLPRegressor(max_iter=100),  # as INIT_PARAMS[MLPRegressor]
]

# Mirrors PER_ESTIMATOR_CHECK_PARAMS for the two MLPs.
PER_CHECK_PARAMS = {
    "MLPClassifier": {
        # PER_ESTIMATOR_CHECK_PARAMS[MLPClassifier]
        "check_sample_weight_equivalence_on_dense_data": [dict(solver="lbfgs")],
    },
    "MLPRegressor": {
        # PER_ESTIMATOR_CHECK_PARAMS[MLPRegressor]
        "check_sample_weight_equivalence_on_dense_data": [
            dict(solver="sgd", tol=1e-2, random_state=42),
        ],
    },
}


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    run_check(estimator, check, PER_CHECK_PARAMS)


@pytest.mark.parametrize("kind", ["MLPClassifier", "MLPRegressor"])
def test_mirrored_settings_match_sklearn(kind):
    """The settings above are the ones scikit-learn itself uses for its MLPs (read
    from its private test-instance generator; skipped if that moves)."""
    try:
        from sklearn.utils._test_common import instance_generator as ig
    except ImportError:  # pragma: no cover
        pytest.skip("scikit-learn's private instance generator not available")
    sk_cls = getattr(sk_nn, kind)
    our = next(e for e in ESTIMATORS if type(e).__name__ == kind)
    assert ig.INIT_PARAMS[sk_cls] == {"max_iter": 100}
    ref = sk_cls(**ig.INIT_PARAMS[sk_cls])
    assert ref.get_params() == sklearn_params(our, ref)

    check_params = {
        name: [params] if isinstance(params, dict) else list(params)
        for name, params in ig.PER_ESTIMATOR_CHECK_PARAMS.get(sk_cls, {}).items()
    }
    assert check_params == PER_CHECK_PARAMS[kind]
    assert ig._get_expected_failed_checks(sk_cls()) == {}
