"""The documentation pages' examples run and print what the pages say.

Every `>>>` example in docs/*.md is run with doctest (as the README's are in
test_readme.py). The site itself, with its plots and the command-line help
captured at build time, is built by CI with warnings as errors:
`sphinx-build -W --keep-going -b html docs docs/_build/html`.
"""

import doctest
import pathlib

import numpy as np
import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def test_the_pages_are_found():
    names = {p.name for p in PAGES}
    assert {"index.md", "tutorial.md", "coming-from.md", "scale.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_examples(page):
    if "array_api_strict" in page.read_text(encoding="utf-8"):
        pytest.importorskip("array_api_strict")
    if "dask.array" in page.read_text(encoding="utf-8"):
        pytest.importorskip("dask.array")
    with np.printoptions(legacy=False):
        result = doctest.testfile(
            str(page),
            module_relative=False,
            optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS,
            encoding="utf-8",
        )
    assert result.failed == 0, f"{result.failed} example(s) failed in docs/{page.name}"


def test_tutorial_has_examples_and_plots():
    text = (DOCS / "tutorial.md").read_text(encoding="utf-8")
    assert text.count(">>> ") >= 30
    assert text.count(".. plot::") >= 5
