"""Helpers shared by the test modules (import them: ``from conftest import ...``)."""


def outputs(est, X):
    """What a fitted estimator says about X: predictions (and probabilities)."""
    out = [est.predict(X)]
    if hasattr(est, "predict_proba"):
        out.append(est.predict_proba(X))
    return out
