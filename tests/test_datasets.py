"""softmax.datasets: the shipped sample logits load, and they are the source's data.

The expected numbers are not computed by this package: the shapes, dtypes
and sha256 checksums are those of the source's SOURCE.md, and the
accuracy and NLL are the uncalibrated test-split numbers published with
these exact logits (accuracy 93.56 %, NLL 0.358274134971), recomputed here
with NumPy and scipy.special.log_softmax.
"""

import hashlib
import pathlib

import numpy as np
import pytest

import softmax
from softmax import datasets

SHA256 = {
    "logits_val": "6c42a8420e89f8b0ecb132290dfdca261dd3fa48d850e39e9312a601354f4e2a",
    "labels_val": "2a7320fb2c01af5b9727f624b335a315953d5ef14c8cd1e8da581ec269b66092",
    "logits_test": "a2b36be35f0dcb49cd9412bd73b9afb15af87b305b730b0a9b0e107b460f65b5",
    "labels_test": "fc48d9ecfdbeacce2dacf004498170f2df12e75e3485475017d2663b587a92f3",
}


def test_exported_from_the_package():
    assert softmax.datasets is datasets
    assert "datasets" in softmax.__all__


def test_available():
    assert datasets.available() == ("resnet110_cifar10",)


def test_shapes_dtypes_and_fields():
    data = datasets.load_logits("resnet110_cifar10")
    assert data._fields == ("logits_val", "labels_val", "logits_test", "labels_test")
    lv, yv, lt, yt = data  # a named tuple unpacks
    assert (lv.shape, lv.dtype) == ((5000, 10), np.float32)
    assert (yv.shape, yv.dtype) == ((5000,), np.int64)
    assert (lt.shape, lt.dtype) == ((10000, 10), np.float32)
    assert (yt.shape, yt.dtype) == ((10000,), np.int64)
    for labels in (yv, yt):
        assert labels.min() == 0 and labels.max() == 9
    assert np.isfinite(lv).all() and np.isfinite(lt).all()


def test_default_name_is_the_shipped_set():
    a, b = datasets.load_logits(), datasets.load_logits("resnet110_cifar10")
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_each_call_returns_new_arrays():
    a, b = datasets.load_logits(), datasets.load_logits()
    a.logits_val[0, 0] = 1e9
    assert b.logits_val[0, 0] != 1e9


def test_files_are_the_sources_bytes():
    folder = pathlib.Path(datasets.__file__).parent / "resnet110_cifar10"
    for part, digest in SHA256.items():
        assert hashlib.sha256((folder / f"{part}.npy").read_bytes()).hexdigest() == digest


def test_license_and_source_ship_beside_the_data():
    folder = pathlib.Path(datasets.__file__).parent / "resnet110_cifar10"
    license_text = (folder / "LICENSE").read_text(encoding="utf-8")
    assert "MIT License" in license_text
    assert "Copyright (c) 2018 Markus Kängsepp" in license_text
    source = (folder / "SOURCE.md").read_text(encoding="utf-8")
    assert "markus93/NN_calibration" in source
    assert "507807023684f463ceea252f8760ece30643b64e5da89152f9950f7e98e9ea3e" in source


def test_published_uncalibrated_test_numbers():
    special = pytest.importorskip("scipy.special")
    data = datasets.load_logits()
    logits = data.logits_test.astype(np.float64)
    labels = data.labels_test
    accuracy = np.mean(np.argmax(logits, axis=1) == labels)
    assert accuracy == pytest.approx(0.9356, abs=5e-5)  # 9356 of 10000
    nll = -np.mean(special.log_softmax(logits, axis=1)[np.arange(labels.size), labels])
    # The source computed in float32 (float64 here gives 0.35827414892): the
    # published digits agree to float32's relative precision, 1.2e-7.
    assert nll == pytest.approx(0.358274134971, rel=1.2e-7)


@pytest.mark.parametrize("name", ["resnet56", "", "RESNET110_CIFAR10", None, 3])
def test_unknown_name_names_the_argument(name):
    with pytest.raises(ValueError, match=r"name must be one of 'resnet110_cifar10', got "):
        datasets.load_logits(name)
