"""scikit-learn's common estimator checks on fastgd's LogisticRegression and
LinearRegression, run as scikit-learn's own test suite
(sklearn/tests/test_common.py::test_estimators) runs them on its linear models.

What scikit-learn 1.9 does for its own two (sklearn/utils/_test_common/
instance_generator.py):

* INIT_PARAMS: ``LogisticRegression: dict(max_iter=5)``; nothing for
  LinearRegression.
* PER_ESTIMATOR_CHECK_PARAMS (mirrored by hand below, as scikit-learn looks them up
  by type):
  - LogisticRegression, check_sample_weight_equivalence_on_dense_data: solvers
    lbfgs, liblinear, newton-cg, newton-cholesky, newton-cholesky + balanced
    class weights. fastgd accepts scikit-learn's solver names and solves the same
    objective with its L-BFGS. The 'liblinear' instance is left out: the check's
    data has 3 classes, which liblinear refuses by design (in scikit-learn too).
  - LinearRegression: check_estimator_sparse_tag and
    check_sample_weight_equivalence_on_dense_data with positive=False and True;
    check_sample_weight_equivalence_on_sparse_data with tol=1e-12.
* PER_ESTIMATOR_XFAIL_CHECKS: scikit-learn marks LogisticRegression's two sample
  weight equivalence checks as expected failures. fastgd has none: its L-BFGS
  sees the same objective for weights and repeated rows, so both pass here.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn_common_checks import run_check

import fastgd

ESTIMATORS = [
    fastgd.LogisticRegression(max_iter=5),  # as INIT_PARAMS[LogisticRegression]
    fastgd.LinearRegression(),
]

PER_CHECK_PARAMS = {
    "LogisticRegression": {
        "check_sample_weight_equivalence_on_dense_data": [
            dict(solver="lbfgs"),
            # dict(solver="liblinear"): multiclass data, refused by liblinear
            dict(solver="newton-cg"),
            dict(solver="newton-cholesky"),
            dict(solver="newton-cholesky", class_weight="balanced"),
        ],
    },
    "LinearRegression": {
        "check_estimator_sparse_tag": [dict(positive=False), dict(positive=True)],
        "check_sample_weight_equivalence_on_dense_data": [
            dict(positive=False),
            dict(positive=True),
        ],
        "check_sample_weight_equivalence_on_sparse_data": [dict(tol=1e-12)],
    },
}


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    run_check(estimator, check, PER_CHECK_PARAMS)


@pytest.mark.parametrize("kind", ["LogisticRegression", "LinearRegression"])
def test_mirrored_settings_match_sklearn(kind):
    """The settings above are scikit-learn's own for these estimators (read from
    its private test-instance generator; skipped if that moves)."""
    try:
        from sklearn.utils._test_common import instance_generator as ig
    except ImportError:  # pragma: no cover
        pytest.skip("scikit-learn's private instance generator not available")
    from sklearn import linear_model

    sk_cls = getattr(linear_model, kind)
    ours = next(e for e in ESTIMATORS if type(e).__name__ == kind)
    sk_params = sk_cls(**ig.INIT_PARAMS.get(sk_cls, {})).get_params()
    # Every scikit-learn parameter exists with the same value (ours add mini-batch
    # parameters on top).
    assert {k: ours.get_params()[k] for k in sk_params} == sk_params

    check_params = {
        name: [params] if isinstance(params, dict) else list(params)
        for name, params in ig.PER_ESTIMATOR_CHECK_PARAMS.get(sk_cls, {}).items()
    }
    mirrored = {name: list(p) for name, p in PER_CHECK_PARAMS[kind].items()}
    if kind == "LogisticRegression":
        mirrored["check_sample_weight_equivalence_on_dense_data"].insert(
            1, dict(solver="liblinear")
        )
    assert check_params == mirrored
