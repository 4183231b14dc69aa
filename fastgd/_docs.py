"""Where fastgd's documentation lives, for the HTML repr's links.

scikit-learn's HTML repr (``_repr_html_``, shown by Jupyter) puts a "?" link on each
estimator to its API page, built from three class attributes of
``sklearn.utils._repr_html.base._HTMLDocumentationLinkMixin``:
``_doc_link_module`` (only classes under this top-level module get a link),
``_doc_link_template`` and ``_doc_link_url_param_generator`` (None: the template
is filled with ``estimator_module`` - the module path up to the first private
part, e.g. ``fastgd`` or ``fastgd.dask`` - and ``estimator_name``). The parameter
and attribute tooltips of the repr come from the numpydoc sections of the class
docstring, and each parameter links to its entry on that page by a text fragment.
"""

# PLACEHOLDER: the address the Sphinx site (docs/) is meant to be published at. The
# site is not published yet; change it here only, the links and the tests follow.
DOCS_URL = "https://fastgd.readthedocs.io/en/latest/"

# One page per public estimator: docs/api/<module>.<name>.rst
DOC_LINK_TEMPLATE = DOCS_URL + "api/{estimator_module}.{estimator_name}.html"


class DocLinkMixin:
    """Class attributes that point the HTML repr's "?" link at fastgd's pages."""

    _doc_link_module = "fastgd"
    _doc_link_template = DOC_LINK_TEMPLATE


def section(cls, title):
    """The body of the numpydoc section ``title`` of ``cls.__doc__`` (as written,
    indentation kept), so that a face over ``cls`` can repeat its entries."""
    lines = (cls.__doc__ or "").splitlines()
    header = [i for i, (a, b) in enumerate(zip(lines, lines[1:]))
              if a.strip() == title and b.strip() == "-" * len(title)]
    if not header:
        raise ValueError(f"{cls.__name__}'s docstring has no {title} section")
    start = header[0] + 2
    body = []
    for line, following in zip(lines[start:], lines[start + 1:] + [""]):
        stripped = following.strip()
        if stripped and set(stripped) == {"-"} and len(stripped) == len(line.strip()):
            break  # ``line`` is the next section's title
        body.append(line)
    return "\n".join(body).rstrip() + "\n"
