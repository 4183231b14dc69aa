"""fastgd: compiled mini-batch gradient descent behind drop-in scikit-learn estimators."""
from fastgd._linear import LinearRegression, LogisticRegression
from fastgd._mlp import MLPClassifier, MLPRegressor

__all__ = ["LinearRegression", "LogisticRegression", "MLPClassifier", "MLPRegressor"]
__version__ = "0.1.0"
