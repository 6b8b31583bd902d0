"""Sphinx configuration of the softmax documentation site.

Build (from the repository root, with the package installed):

    sphinx-build -W --keep-going -b html docs docs/_build/html

Pages are MyST markdown (myst-parser); the API reference is generated from
the docstrings (numpydoc + autosummary) over the public names in
``softmax.__all__``, ``softmax.calibration``, ``softmax.stream`` and
``softmax.datasets``; the plots run at build time (matplotlib's plot
directive) and the command-line reference is the installed command's own
``--help`` output (``_ext/cli_output.py``). Nothing here needs the network.
"""

from __future__ import annotations

import os
import pathlib
import sys

import softmax

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "softmax"
author = "the softmax developers"
copyright = "2026, the softmax developers"
version = release = softmax.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
    "cli_output",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"

# MyST: ::: fences, and anchors for ## headings so that pages
# can link to each other's sections.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The API reference: one page per public function or class.
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# Plots run when the site is built; a failing plot is a build error (-W).
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 96)]
plot_rcparams = {"figure.figsize": (6.4, 3.6), "figure.dpi": 96}
plot_pre_code = "import numpy as np\nimport matplotlib.pyplot as plt\nimport softmax as sm\n"
os.environ.setdefault("MPLBACKEND", "Agg")

# In reST docstrings, `|acc_b - conf_b|` (softmax.calibration.ece) reads as
# a substitution reference; define it as itself so the formula shows as written.
rst_prolog = r"""
.. |acc_b - conf_b| replace:: \|acc_b - conf_b\|
"""

html_theme = "pydata_sphinx_theme"
html_title = f"softmax {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": [],
    "secondary_sidebar_items": ["page-toc"],
}
# No left sidebar: the pages are flat, and the code needs the width.
html_sidebars = {"**": []}
html_show_sourcelink = False


def _write_api_reference():
    """docs/api.rst from the public names, so a new export is documented at once.

    Written as reStructuredText because autosummary's stub generation scans
    only reST directives.
    """
    import softmax.calibration
    import softmax.datasets
    import softmax.stream

    sections = [
        ("softmax", "The top-level functions", sorted(
            n for n in softmax.__all__
            if not n.startswith("_") and not isinstance(getattr(softmax, n), type(softmax))
        )),
        ("softmax.calibration", "Calibration", sorted(softmax.calibration.__all__)),
        ("softmax.stream", "Streams and files", sorted(softmax.stream.__all__)),
        ("softmax.datasets", "Sample data", sorted(softmax.datasets.__all__)),
    ]
    lines = [
        ".. This file is written by conf.py at every build; edit conf.py instead.",
        "",
        "API reference",
        "=============",
        "",
        "Generated from the docstrings of the public names: ``softmax.__all__``",
        "and the ``__all__`` of ``softmax.calibration``, ``softmax.stream`` and",
        "``softmax.datasets``. Every Examples section here is run by the test suite",
        "(``tests/test_docstrings.py``).",
        "",
    ]
    for module, title, names in sections:
        lines += [title, "-" * len(title), "", f".. currentmodule:: {module}", "",
                  ".. autosummary::", "   :toctree: generated/", ""]
        lines += [f"   {name}" for name in names]
        lines.append("")
    text = "\n".join(lines)
    target = HERE / "api.rst"
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


_write_api_reference()


def _add_unlisted_pages(app, docname, source):
    """Append pages that index.md's toctree does not list yet (e.g. a page
    another contributor just dropped into docs/), so a new .md page is in the
    navigation at once instead of failing the -W build as an orphan."""
    if docname != root_doc:
        return
    text = source[0]
    start = text.index("```{toctree}")
    end = text.index("```", start + 3)
    listed = {line.strip() for line in text[start:end].splitlines()}
    extra = sorted(
        p.stem for p in HERE.glob("*.md")
        if p.stem not in listed and p.stem != root_doc
    )
    if extra:
        source[0] = text[:end] + "\n".join(extra) + "\n" + text[end:]


def setup(app):
    app.connect("source-read", _add_unlisted_pages)
