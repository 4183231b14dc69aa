"""fastgd: compiled mini-batch gradient descent behind drop-in scikit-learn estimators."""
from fastgd._export import register_onnx_converters as _register_onnx_converters
from fastgd._linear import LinearRegression, LogisticRegression
from fastgd._mlp import MLPClassifier, MLPRegressor

__all__ = ["LinearRegression", "LogisticRegression", "MLPClassifier", "MLPRegressor"]
__version__ = "0.1.0"

# skl2onnx.to_onnx(model, X) works for fastgd models when skl2onnx is installed
_register_onnx_converters()
