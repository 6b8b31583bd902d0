"""Every Examples section in the package's docstrings runs and is correct."""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import softmax


def _modules():
    names = ["softmax"]
    # Subpackages too (softmax.cli.*): walk_packages descends into them.
    for info in pkgutil.walk_packages(softmax.__path__, "softmax."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    with np.printoptions(legacy=False):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
