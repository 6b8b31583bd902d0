"""Sample data shipped with the package: real classifier logits.

One small set of logits from a published, pretrained network ships inside the
package, so the calibration tour runs on a fresh install with no download:

``resnet110_cifar10``
    ResNet-110 on CIFAR-10 (10 classes), trained by Markus Kängsepp:
    5,000 validation rows to fit a temperature on and 10,000 test rows to
    evaluate it on. MIT license; the notice, the source and the checksums
    are in ``LICENSE`` and ``SOURCE.md`` beside the files
    (``softmax/datasets/resnet110_cifar10/``).

Examples
--------
>>> from softmax import datasets
>>> datasets.available()
('resnet110_cifar10',)
>>> data = datasets.load_logits()
>>> data.logits_test.shape, data.labels_test.shape
((10000, 10), (10000,))
"""

from __future__ import annotations

import pathlib
from typing import NamedTuple

import numpy as np

__all__ = ["CalibrationLogits", "available", "load_logits"]

_HERE = pathlib.Path(__file__).resolve().parent

#: Shipped sets, each a folder of four ``.npy`` files beside this module.
_NAMES = ("resnet110_cifar10",)

_FILES = ("logits_val", "labels_val", "logits_test", "labels_test")


class CalibrationLogits(NamedTuple):
    """Logits and labels of a classifier, split for calibration.

    A named tuple, so it also unpacks:
    ``logits_val, labels_val, logits_test, labels_test = load_logits()``.

    Attributes
    ----------
    logits_val : numpy.ndarray
        float32, shape ``(n_val, K)``: pre-softmax outputs on the split used
        to fit a temperature.
    labels_val : numpy.ndarray
        int64, shape ``(n_val,)``: the true class of each row, in ``[0, K)``.
    logits_test : numpy.ndarray
        float32, shape ``(n_test, K)``: pre-softmax outputs on the split used
        to evaluate the calibration.
    labels_test : numpy.ndarray
        int64, shape ``(n_test,)``.
    """

    logits_val: np.ndarray
    labels_val: np.ndarray
    logits_test: np.ndarray
    labels_test: np.ndarray


def available() -> tuple[str, ...]:
    """Names of the data sets shipped with the package.

    Returns
    -------
    tuple of str
        Each name can be passed to `load_logits`.

    Examples
    --------
    >>> from softmax.datasets import available
    >>> available()
    ('resnet110_cifar10',)
    """
    return _NAMES


def load_logits(name: str = "resnet110_cifar10") -> CalibrationLogits:
    """Load a shipped set of classifier logits and labels.

    The arrays are read from plain ``.npy`` files inside the installed
    package (with ``allow_pickle=False``); each call returns new arrays.

    Parameters
    ----------
    name : str, default "resnet110_cifar10"
        Which set; `available` lists them.

        ``resnet110_cifar10``: ResNet-110 on CIFAR-10, K = 10 classes,
        5,000 validation and 10,000 test rows, 720 KB. Uncalibrated on the
        test split it has accuracy 93.56 % and NLL 0.3583 (the numbers its
        source publishes); it is overconfident, and temperature scaling
        fits T of about 2.4 on the validation split. Source and license
        (MIT, Copyright (c) 2018 Markus Kängsepp): ``SOURCE.md`` and
        ``LICENSE`` in ``softmax/datasets/resnet110_cifar10/``.

    Returns
    -------
    CalibrationLogits
        A named tuple ``(logits_val, labels_val, logits_test, labels_test)``:
        float32 logits of shape ``(n, K)`` and int64 labels of shape ``(n,)``.

    Raises
    ------
    ValueError
        If `name` is not one of `available()`.

    See Also
    --------
    softmax.calibration.fit_temperature : fit T on the validation split.

    Examples
    --------
    >>> import numpy as np
    >>> import softmax as sm
    >>> from softmax.datasets import load_logits
    >>> data = load_logits("resnet110_cifar10")
    >>> data.logits_val.shape, data.logits_val.dtype, data.labels_val.dtype
    ((5000, 10), dtype('float32'), dtype('int64'))

    The article's caution, on a real network: top-1 accuracy is 93.56 %,
    but the mean confidence is higher, so the softmax outputs are
    overconfident.

    >>> p = sm.softmax(data.logits_test)
    >>> float(np.mean(p.argmax(axis=1) == data.labels_test))
    0.9356
    >>> round(float(p.max(axis=1).mean()), 4)
    0.9831

    A temperature fitted on the validation split fixes the confidence:

    >>> from softmax.calibration import fit_temperature
    >>> T = fit_temperature(data.logits_val, data.labels_val).temperature
    >>> round(float(T), 2)
    2.4
    """
    if not isinstance(name, str) or name not in _NAMES:
        choices = ", ".join(repr(n) for n in _NAMES)
        raise ValueError(f"name must be one of {choices}, got {name!r}")
    folder = _HERE / name
    arrays = [np.load(folder / f"{part}.npy", allow_pickle=False) for part in _FILES]
    return CalibrationLogits(*arrays)
