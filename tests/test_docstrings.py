"""The public docstrings: their examples run (doctest), their parameters are the
signatures', every section a user looks for is there, and the HTML repr links each
estimator to its documentation page with a tooltip per parameter and fitted
attribute."""

import doctest
import importlib
import inspect
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.externals._numpydoc.docscrape import NumpyDocString

import fastgd
import fastgd._build
from fastgd._docs import DOC_LINK_TEMPLATE

DOCS = Path(__file__).resolve().parents[1] / "docs"

# Every Python module of the package (the compiled ones hold no examples);
# fastgd.dask needs the [dask] extra, __main__ is the command line.
DOCTEST_MODULES = sorted(
    f"fastgd.{path.stem}" for path in Path(fastgd.__file__).parent.glob("*.py")
    if path.stem not in ("__init__", "__main__"))
# ... and these must hold examples
WITH_EXAMPLES = {"fastgd._mlp", "fastgd._linear", "fastgd._build", "fastgd._export",
                 "fastgd.dask"}


def _public_classes():
    classes = [getattr(fastgd, name) for name in fastgd.__all__]
    try:
        dask_faces = importlib.import_module("fastgd.dask")
    except ImportError:
        return classes
    return classes + [getattr(dask_faces, name) for name in dask_faces.__all__]


PUBLIC_CLASSES = _public_classes()
PUBLIC_FUNCTIONS = [fastgd._build.kernel_build, fastgd._build.available_kernel_builds,
                    fastgd._build.matmul_path]


def _ids(objects):
    return [f"{o.__module__.split('._')[0]}.{o.__name__}" for o in objects]


def _own_methods(cls):
    """Public methods written in fastgd (scikit-learn's inherited ones are
    documented by scikit-learn)."""
    methods = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        owner = next((c for c in cls.__mro__ if name in vars(c)), None)
        value = vars(owner).get(name) if owner is not None else None
        if callable(value) and owner.__module__.startswith("fastgd") and (
                getattr(value, "__module__", "") or "").startswith("fastgd"):
            methods.append(getattr(cls, name))
    return methods


def _documented_names(doc, section="Parameters"):
    # numpydoc allows "a, b : type" for two parameters sharing a description
    return [name.strip() for item in doc[section] for name in item.name.split(",")]


def _signature_names(obj):
    return [name for name, p in inspect.signature(obj).parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


@pytest.mark.parametrize("module_name", DOCTEST_MODULES)
def test_doctests_pass(module_name, capsys):
    if module_name == "fastgd.dask":
        pytest.importorskip("dask")
        pytest.importorskip("distributed")
    module = importlib.import_module(module_name)
    with warnings.catch_warnings():
        # an example that warns (ConvergenceWarning, ...) is a bad example
        warnings.simplefilter("error")
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS
                                 | doctest.NORMALIZE_WHITESPACE)
    report = capsys.readouterr().out
    assert result.failed == 0, report
    if module_name in WITH_EXAMPLES:
        assert result.attempted > 0, f"{module_name} has no examples"


def test_doctests_cover_the_estimator_modules():
    assert WITH_EXAMPLES <= set(DOCTEST_MODULES)


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=_ids(PUBLIC_CLASSES))
def test_class_docstring_complete(cls):
    doc = NumpyDocString(inspect.getdoc(cls))
    assert _documented_names(doc) == _signature_names(cls), (
        "the Parameters section must list the constructor's parameters, in order")
    for item in doc["Parameters"]:
        assert item.type.strip(), f"{item.name}: no type"
        assert "default=" in item.type or item.name in _required(cls), (
            f"{item.name}: no default in its type line")
        assert " ".join(item.desc).strip(), f"{item.name}: no description"
    for section in ("Attributes", "See Also", "Notes", "Examples"):
        assert doc[section], f"{cls.__name__} has no {section} section"
    for item in doc["Attributes"]:
        assert item.type.strip() and " ".join(item.desc).strip(), item.name
    assert len(doc["Summary"]) == 1 and doc["Summary"][0].endswith(".")


def _required(cls):
    return {name for name, p in inspect.signature(cls).parameters.items()
            if p.default is inspect.Parameter.empty}


METHODS = [(cls, m) for cls in PUBLIC_CLASSES for m in _own_methods(cls)]


@pytest.mark.parametrize("cls, method", METHODS,
                         ids=[f"{i}.{m.__name__}" for i, (_, m) in
                              zip(_ids([c for c, _ in METHODS]), METHODS)])
def test_method_docstring_complete(cls, method):
    doc = NumpyDocString(inspect.getdoc(method))
    assert doc["Summary"], f"{method.__qualname__}: no summary"
    assert _documented_names(doc) == _signature_names(method)
    for item in doc["Parameters"]:
        assert item.type.strip() and " ".join(item.desc).strip(), item.name
    assert doc["Returns"], f"{method.__qualname__}: no Returns section"
    for item in doc["Returns"]:
        assert " ".join(item.desc).strip(), f"{method.__qualname__}: {item.name}"


@pytest.mark.parametrize("function", PUBLIC_FUNCTIONS, ids=lambda f: f.__name__)
def test_function_docstring_complete(function):
    doc = NumpyDocString(inspect.getdoc(function))
    assert _documented_names(doc) == _signature_names(function)
    assert doc["Returns"] and doc["Examples"]


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=_ids(PUBLIC_CLASSES))
def test_html_repr_links_to_the_estimator_page(cls):
    est = cls()
    module = cls.__module__.split("._")[0]
    url = DOC_LINK_TEMPLATE.format(estimator_module=module,
                                   estimator_name=cls.__name__)
    assert est._get_doc_link() == url
    html = est._repr_html_()
    assert f'href="{url}"' in html
    # the page the link points at is in the Sphinx site
    page = url.rsplit("/", 2)[-2:]
    assert (DOCS / page[0] / page[1].replace(".html", ".rst")).is_file(), page
    # one tooltip per parameter, linked to its entry on that page
    tooltips = re.findall(
        r'href="([^"]*)">\s*(\w+)\s*<span class="param-doc-description"', html)
    assert sorted(name for _, name in tooltips) == sorted(_signature_names(cls))
    assert all(link.startswith(url + "#:~:text=") for link, _ in tooltips)


def _small_problem(cls):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    if "Classifier" in cls.__name__ or "Logistic" in cls.__name__:
        return X, (X[:, 0] > 0).astype(int)
    return X, X @ np.array([1.0, -2.0, 0.5])


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
@pytest.mark.parametrize("cls", [getattr(fastgd, n) for n in fastgd.__all__],
                         ids=fastgd.__all__)
def test_fitted_attributes_have_tooltips(cls, solver):
    """Every fitted attribute shown in the HTML repr is in the Attributes section."""
    params = {"solver": solver, "max_iter": 5}
    if cls is fastgd.LinearRegression and solver == "lbfgs":
        params["solver"] = "auto"
    if "MLP" in cls.__name__:
        params["hidden_layer_sizes"] = (4,)
    if solver == "adam":
        params["early_stopping"] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = cls(**params).fit(*_small_problem(cls))
    shown = [name for name in est._get_fitted_attr_html()]
    documented = _documented_names(NumpyDocString(inspect.getdoc(cls)), "Attributes")
    assert shown and set(shown) <= set(documented), set(shown) - set(documented)
