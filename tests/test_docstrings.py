"""Every Examples section in the package's docstrings runs and is correct."""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import softmax


def _modules():
    """Every module of the package, subpackages included (walk_packages recurses)."""
    names = ["softmax"]
    for info in pkgutil.walk_packages(softmax.__path__, "softmax."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return names


def test_subpackages_are_walked():
    names = _modules()
    assert "softmax.calibration" in names
    assert "softmax.calibration._estimator" in names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    with np.printoptions(legacy=False):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
