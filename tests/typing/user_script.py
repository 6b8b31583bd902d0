"""A user's script: every public function called as a user would call it.

Two jobs: ``mypy --strict`` checks it (``tests/test_typing.py``), so the
public annotations are exercised and the types they promise are pinned with
``assert_type``; and it runs, so those promises are also true at run time.
PyTorch and Dask are optional: their part runs only when they are installed
(and mypy checks it either way).
"""

from __future__ import annotations

import importlib.util
import io
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import softmax
import softmax.calibration as cal
import softmax.stream as stream

if sys.version_info >= (3, 11):
    from typing import assert_type
else:  # pragma: no cover - Python 3.10
    from typing_extensions import assert_type

Floats = NDArray[np.floating[Any]]
Float = np.floating[Any]


def numpy_input() -> None:
    x = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.0]])
    labels = np.array([0, 1])

    p = assert_type(softmax.softmax(x), Floats)
    assert_type(softmax.softmax([2.0, 1.0, 0.1], temperature=0.5), Floats)
    assert_type(softmax.softmax(3.0), Float)
    assert_type(softmax.softmax(x, axis=None, base=2.0, where=x > 0.2), Floats)
    out = np.empty_like(x)
    assert softmax.softmax(x, out=out) is out
    assert_type(softmax.log_softmax(x, axis=(0, 1)), Floats)

    assert_type(softmax.logsumexp(x), Float)
    assert_type(softmax.logsumexp(x, axis=1), Floats | Float)
    value, sign = assert_type(softmax.logsumexp(x, b=-x, return_sign=True),
                              tuple[Float, Float])
    assert_type(softmax.logsumexp([0.0, 0.0], 0, [1.0, 2.0], True, True),
                tuple[Floats | Float, Floats | Float])
    assert float(sign) in (-1.0, 0.0, 1.0) and np.isfinite(value)

    assert_type(softmax.sigmoid(x), Floats)
    assert_type(softmax.sigmoid(-740.0), Float)
    assert_type(softmax.log_sigmoid([0.0, 40.0]), Floats)
    assert_type(softmax.logit(0.25), Float)
    assert_type(softmax.hardmax(x, ties="first"), Floats)

    assert_type(softmax.softmax_jacobian(p), Floats)
    assert_type(softmax.softmax_vjp(p, np.ones_like(p)), Floats)
    assert_type(softmax.log_softmax_vjp(p, [1.0, 0.0, 0.0], where=np.ones(3, dtype=bool)), Floats)

    loss = assert_type(softmax.cross_entropy(x, labels), Float)
    assert_type(softmax.cross_entropy(x, labels, reduction="none"), Floats | Float)
    assert_type(softmax.cross_entropy_grad(x, labels, label_smoothing=0.1), Floats)
    assert_type(softmax.entropy(x), Floats | Float)
    assert_type(softmax.entropy(p, input="probs"), Floats | Float)
    draws = assert_type(softmax.sample(x, size=4, rng=0), NDArray[np.intp] | np.intp)
    assert np.shape(draws) == (4, 2) and float(loss) > 0

    t: float = softmax.temperature_from_base(2.0)
    assert_type(softmax.base_from_temperature(t), float)

    threads: int = softmax.get_num_threads()
    softmax.set_num_threads(threads)
    info: dict[str, Any] = softmax.config()
    softmax.show_config(file=io.StringIO())
    assert "num_threads" in info and isinstance(softmax.__version__, str)


def calibration() -> None:
    rng = np.random.default_rng(0)
    logits = 3.0 * rng.normal(size=(200, 4))
    labels = rng.integers(0, 4, size=200)

    ts = assert_type(cal.fit_temperature(logits, labels, bounds=(0.05, 20.0)), cal.TemperatureScaling)
    assert_type(ts.temperature_, float)
    assert_type(ts.predict_proba(logits), Floats)
    assert_type(ts.transform(logits), Floats)
    assert_type(ts.predict(logits), NDArray[np.intp])
    est = cal.TemperatureScaling().fit(logits, labels, sample_weight=np.ones(200))
    assert_type(est.fit_transform(logits, labels), Floats)
    assert_type(est.transform_logits(logits[:2]), Floats)
    assert cal.TemperatureScaling.from_dict(est.to_dict()) == est
    path = os.path.join(tempfile.mkdtemp(), "t.json")
    est.save(path)
    assert_type(cal.TemperatureScaling.load(path), cal.TemperatureScaling)

    probs = softmax.softmax(logits)
    for metric in (cal.nll(logits, labels), cal.brier(probs, labels, input="probs"),
                   cal.accuracy(logits, labels), cal.mce(logits, labels),
                   cal.ece(logits, labels, n_bins=10, strategy="quantile", norm="l2", debias=True),
                   cal.classwise_ece(logits, labels)):
        assert_type(metric, float)
    curve = assert_type(cal.reliability_curve(logits, labels, n_bins=5), cal.ReliabilityCurve)
    assert_type(curve.counts, NDArray[np.intp])
    if importlib.util.find_spec("matplotlib") is not None:
        fig = cal.reliability_diagram(logits, labels, calibrated=ts, title="before / after")
        assert len(fig.axes) == 4


def streaming() -> None:
    acc = stream.OnlineLogSumExp(axis=1)
    x = np.array([[2.0, 1.0, 0.1, 3.0], [0.0, 0.0, 0.0, 0.0]])
    acc = assert_type(acc.update(x[:, :2]).update(x[:, 2:]), stream.OnlineLogSumExp)
    assert_type(acc.softmax(x[:, :2]), Floats)
    assert_type(acc.log_softmax(x[:, 2:], where=np.ones((2, 2), dtype=bool)), Floats)
    assert_type(acc.logsumexp, Floats | Float)
    assert_type(acc.merge(stream.OnlineLogSumExp(axis=1)).max, Floats | Float)

    d = Path(tempfile.mkdtemp())
    np.save(d / "x.npy", x)
    out = assert_type(stream.softmax_file(d / "x.npy", str(d / "p.npy"), progress=False), Path)
    assert np.allclose(np.load(out).sum(axis=-1), 1.0)


def other_libraries() -> None:
    """The caller's array type comes back: a tensor stays a tensor, Dask stays lazy."""
    if importlib.util.find_spec("torch") is not None:
        import torch

        t = torch.tensor([[2.0, 1.0, 0.1]], requires_grad=True)
        p = assert_type(softmax.softmax(t), torch.Tensor)
        # unpacked: without torch installed, mypy sees Any and the pair as tuple[Any, ...]
        lse, sign = softmax.logsumexp(t, axis=-1, return_sign=True)
        assert_type(lse, torch.Tensor)
        assert_type(sign, torch.Tensor)
        assert_type(softmax.entropy(t), torch.Tensor)
        loss = assert_type(softmax.cross_entropy(t, torch.tensor([0])), torch.Tensor)
        assert_type(softmax.sample(t, rng=0), torch.Tensor)
        assert_type(cal.TemperatureScaling(2.0).predict_proba(t.detach()), torch.Tensor)
        assert loss.requires_grad and isinstance(p, torch.Tensor)  # the graph is kept
    if importlib.util.find_spec("dask") is not None:
        import dask.array as da

        lazy: da.Array = da.from_array(np.ones((4, 3)), chunks=(2, 3))
        assert_type(softmax.softmax(lazy), da.Array)
        assert_type(softmax.hardmax(lazy, where=lazy > 0), da.Array)
        assert_type(softmax.logsumexp(lazy, axis=1), da.Array)
        assert softmax.log_softmax(lazy).compute().shape == (4, 3)
    if importlib.util.find_spec("array_api_strict") is not None:
        import array_api_strict as xp

        a = xp.asarray([[2.0, 1.0, 0.1]])
        assert type(softmax.sigmoid(a)) is type(a)
        same = softmax.log_softmax(a, axis=-1)
        assert type(same) is type(a)


def main() -> None:
    numpy_input()
    calibration()
    streaming()
    other_libraries()


if __name__ == "__main__":
    main()
