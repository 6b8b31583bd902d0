"""The README's Python examples (every `>>>` line) run and print what it says."""

import doctest
import pathlib

import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_examples_run():
    with np.printoptions(legacy=False):
        result = doctest.testfile(
            str(README),
            module_relative=False,
            optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS,
        )
    assert result.attempted >= 10
    assert result.failed == 0
