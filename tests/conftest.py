"""Helpers shared by the test modules (import them: ``from conftest import ...``)."""


def outputs(est, X):
    """What a fitted estimator says about X: predictions (and probabilities)."""
    out = [est.predict(X)]
    if hasattr(est, "predict_proba"):
        out.append(est.predict_proba(X))
    return out


# fastgd's additions to scikit-learn's parameters and option sets: the comparisons
# with scikit-learn look past them (their defaults keep scikit-learn's behaviour).
ADDED_OPTIONS = {"'cosine'"}
ADDED_FITTED_ATTRIBUTES = {"validation_loss_curve_", "best_validation_loss_"}


def sklearn_params(ours, ref):
    """ours.get_params() on ref's parameters, after checking that every other one
    is one of fastgd's additions, at its default."""
    import inspect

    ref_params = ref.get_params()
    defaults = {name: p.default
                for name, p in inspect.signature(type(ours).__init__).parameters.items()}
    params = ours.get_params()
    for name in set(params) - set(ref_params):
        assert params[name] == defaults[name], name
    return {name: value for name, value in params.items() if name in ref_params}
