"""Sphinx configuration of fastgd's documentation: sphinx-build -W docs docs/_build/html"""

import os
import re
import warnings

import fastgd

project = "fastgd"
author = "the fastgd developers"
release = version = fastgd.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

# Off-line builds: no intersphinx, MathJax from its default address only when viewed.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
}

# The examples hit max_iter on purpose (short runs).
warnings.filterwarnings("ignore", category=UserWarning,
                        message="Matplotlib is currently using agg")
os.environ.setdefault("MPLBACKEND", "Agg")

exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json"]
html_theme = "alabaster"
html_theme_options = {"description": "Compiled gradient descent behind drop-in "
                      "scikit-learn estimators", "fixed_sidebar": True}
html_static_path = []


_ABS_BARS = re.compile(r"(?<![\\`|])\|([A-Za-z_][^|`\n]*?)\|(?![|_])")


def _escape_absolute_values(app, what, name, obj, options, lines):
    """Docstrings write absolute values as |x| (e.g. "max |gradient|"), which
    reStructuredText reads as a substitution reference: escape the bars."""
    lines[:] = [_ABS_BARS.sub(r"\\|\1\\|", line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _escape_absolute_values, priority=400)
