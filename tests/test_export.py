"""Models that leave fastgd: to_sklearn() and ONNX (skl2onnx + onnxruntime)."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import linear_model as sk_linear
from sklearn import neural_network as sk_nn
from sklearn.exceptions import ConvergenceWarning

import fastgd

CASES = [
    (fastgd.MLPClassifier, dict(solver="adam", hidden_layer_sizes=(7,)), sk_nn.MLPClassifier),
    (fastgd.MLPClassifier, dict(solver="lbfgs", hidden_layer_sizes=(5, 4)),
     sk_nn.MLPClassifier),
    (fastgd.MLPRegressor, dict(solver="sgd", hidden_layer_sizes=(6,)), sk_nn.MLPRegressor),
    (fastgd.LogisticRegression, dict(), sk_linear.LogisticRegression),
    (fastgd.LogisticRegression, dict(solver="adam"), sk_linear.LogisticRegression),
    (fastgd.LinearRegression, dict(), sk_linear.LinearRegression),
    (fastgd.LinearRegression, dict(solver="sgd", alpha=0.01, l1_ratio=0.5),
     sk_linear.ElasticNet),
]
IDS = [f"{c.__name__}-{p.get('solver', 'default')}" for c, p, _ in CASES]


def _data(cls, dtype=np.float64, n_classes=3, n=120, d=5):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n, d)).astype(dtype)
    if cls in (fastgd.MLPClassifier, fastgd.LogisticRegression):
        return X, rng.randint(n_classes, size=n)
    return X, X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)


def _fit(cls, params, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cls(random_state=0, max_iter=20, **params).fit(X, y)


def _assert_same_predictions(ours, theirs, X, rtol):
    if hasattr(ours, "predict_proba"):
        assert_array_equal(ours.predict(X), theirs.predict(X))
        assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=rtol,
                        atol=rtol)
    else:
        assert_allclose(ours.predict(X), theirs.predict(X), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls, params, sk_cls", CASES, ids=IDS)
def test_to_sklearn_predicts_the_same(cls, params, sk_cls, dtype):
    X, y = _data(cls, dtype)
    ours = _fit(cls, params, X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sgd/adam: training-only
        theirs = ours.to_sklearn()
    assert type(theirs) is sk_cls
    _assert_same_predictions(ours, theirs, X, 1e-12 if dtype == np.float64 else 1e-5)
    # its parameters are the ones fastgd shares with scikit-learn
    for name, value in theirs.get_params().items():
        if name in ours.get_params() and name != "solver":
            assert ours.get_params()[name] == value, name


def test_to_sklearn_binary_and_sparse_and_dataframe():
    import pandas as pd

    X, y = _data(fastgd.LogisticRegression, n_classes=2)
    df = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    ours = fastgd.LogisticRegression().fit(df, y)
    theirs = ours.to_sklearn()
    assert_array_equal(theirs.feature_names_in_, ours.feature_names_in_)
    _assert_same_predictions(ours, theirs, df, 1e-12)
    Xs = sp.csr_matrix(np.where(np.abs(X) > 1, X, 0))
    ours = fastgd.MLPClassifier(max_iter=5, random_state=0, hidden_layer_sizes=(4,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(Xs, y)
    _assert_same_predictions(ours, ours.to_sklearn(), Xs, 1e-12)


@pytest.mark.parametrize("cls, params, sk_cls", CASES[:1] + CASES[3:4] + CASES[5:6],
                         ids=IDS[:1] + IDS[3:4] + IDS[5:6])
def test_exported_pickle_loads_without_fastgd(cls, params, sk_cls, tmp_path):
    X, y = _data(cls)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # max_iter: a solver setting
        theirs = _fit(cls, params, X, y).to_sklearn()
    blob = pickle.dumps(theirs)
    assert b"fastgd" not in blob
    path = tmp_path / "model.pkl"
    path.write_bytes(blob)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "expected.npy", np.asarray(theirs.predict(X), dtype=float))
    # a Python in which fastgd cannot be imported at all
    code = (
        "import sys, pickle, numpy as np; sys.modules['fastgd'] = None; "
        f"m = pickle.load(open({str(path)!r}, 'rb')); "
        f"X = np.load({str(tmp_path / 'X.npy')!r}); "
        f"e = np.load({str(tmp_path / 'expected.npy')!r}); "
        "assert np.allclose(np.asarray(m.predict(X), dtype=float), e), 'differs'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


def test_training_only_options_are_named_in_a_warning():
    X, y = _data(fastgd.MLPClassifier)
    ours = _fit(fastgd.MLPClassifier, dict(class_weight="balanced", warmup_epochs=2,
                                           learning_rate="cosine", solver="sgd"), X, y)
    with pytest.warns(UserWarning, match="class_weight='balanced'.*warmup_epochs=2"):
        theirs = ours.to_sklearn()
    assert theirs.learning_rate == "constant"
    _assert_same_predictions(ours, theirs, X, 1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _fit(fastgd.MLPClassifier, {}, X, y).to_sklearn()  # defaults: no warning


def test_unfitted_model_cannot_be_exported():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        fastgd.MLPRegressor().to_sklearn()


_ONNX_CASES = [pytest.param(cls, params, zipmap, id=f"{name}-zipmap={zipmap}")
               for (cls, params, _), name in zip(CASES, IDS)
               for zipmap in ((False, True) if hasattr(cls, "predict_proba")
                              else (None,))]


@pytest.mark.parametrize("cls, params, zipmap", _ONNX_CASES)
def test_onnx_export_matches(cls, params, zipmap):
    pytest.importorskip("skl2onnx")
    rt = pytest.importorskip("onnxruntime")
    from skl2onnx import to_onnx

    X, y = _data(cls, np.float32)
    ours = _fit(cls, params, X, y)
    classifier = zipmap is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        onx = to_onnx(ours, X[:1], options={"zipmap": zipmap} if classifier else None)
    sess = rt.InferenceSession(onx.SerializeToString(),
                               providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: X})
    if classifier:
        assert_array_equal(out[0], ours.predict(X))
        proba = (np.array([[row[c] for c in ours.classes_] for row in out[1]])
                 if zipmap else out[1])
        assert_allclose(proba, ours.predict_proba(X), rtol=1e-5, atol=1e-6)
    else:
        pred = ours.predict(X)
        assert_allclose(out[0].reshape(pred.shape), pred, rtol=1e-5,
                        atol=1e-5 * np.abs(pred).max())
