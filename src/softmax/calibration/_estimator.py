"""`TemperatureScaling`: temperature scaling as a scikit-learn-style estimator."""

from __future__ import annotations

import json
import math
import numbers
import os
from typing import Any, Callable, Literal, cast, overload

import numpy as np

from .._arguments import as_float_array
from .._typing import (
    AnyArray,
    ArrayAPIArray,
    ArrayLike,
    DaskArray,
    FloatArray,
    Input,
    Mask,
    NDArray,
)
from . import _solver
from ._inputs import (
    DaskScores,
    Scores,
    _check_values,
    check_axis,
    check_bounds,
    check_dask_scores,
    check_input,
    check_scores,
    check_temperature,
    is_dask,
    log_probs,
)

_FORMAT = "softmax.calibration.TemperatureScaling"
_VERSION = 1
_PARAMS = ("temperature", "bounds", "input", "axis")


class NotFittedError(ValueError, AttributeError):
    """A `TemperatureScaling` was used before `fit` (and without a `temperature`)."""


def _public_softmax() -> Callable[..., Any]:
    from .._functions import softmax  # the public function (keeps torch and Dask types)

    return softmax


class TemperatureScaling:
    """Temperature scaling: ``softmax(logits / T)`` with one T fitted on held-out data.

    Follows scikit-learn's estimator convention (and netcal's
    ``TemperatureScaling().fit(X, y)``): `fit` returns the estimator and
    sets the fitted attributes (names ending in ``_``); `transform` gives
    calibrated logits, `predict_proba` calibrated probabilities, `predict`
    the class (never changed by T). A known T can be given instead of
    fitting: ``TemperatureScaling(2.0)`` is ready to use, and its `fit`
    keeps T = 2 (it only records the data's NLL at it).

    Parameters
    ----------
    temperature : float, optional
        A known T > 0. Default None: `fit` finds T.
    bounds : (float, float), optional
        Range searched for T by `fit`, ``low <= 1 <= high``. Default
        (0.01, 100).
    input : {"logits", "probs"}, optional
        What the estimator is given: logits (default) or probabilities
        (fitted on their logarithm, which are valid logits).
    axis : int, optional
        The class axis. Default: the last. 1-D scores are binary: one logit
        (or probability) of the positive class per sample.
    nll_before, nll_after, converged, iterations, at_bound, message, n_samples : optional
        The record of an earlier fit, as `fit_temperature` and `from_dict`
        set it (kept for compatibility; give them with `temperature`).

    Attributes
    ----------
    temperature_ : float
        The T in use (fitted, or the given `temperature`).
    converged_ : bool
        The fit met its tolerance (1e-6 relative on T, in practice far
        better), or stopped at a bound for a reason given in `message_`.
    at_bound_ : bool
        The NLL still decreased at the edge of `bounds`: T is that bound.
    n_iter_ : int
        Passes over the data (objective evaluations), including T = 1.
    message_ : str
        How the fit ended, in words.
    nll_before_, nll_after_ : float or None
        Mean (weighted) NLL of the fitted data at T = 1 and at T, in nats.
    n_features_in_ : int
        Size of the class axis seen by `fit` (1 for binary scores).
    classes_ : ndarray
        ``arange(n_classes)`` (two classes for binary scores).
    n_samples_ : int
        Samples fitted (after masked ones were dropped).

    The old names `nll_before`, `nll_after`, `converged`, `iterations`,
    `at_bound`, `message`, `n_samples` read the same values.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax.calibration import TemperatureScaling
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(3000, 4))
    >>> p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    >>> y = (rng.random((3000, 1)) > p.cumsum(1)).sum(1)    # labels drawn from softmax(z)
    >>> ts = TemperatureScaling().fit(3 * z, y)              # three times too confident
    >>> round(ts.temperature_, 1), ts.converged_, ts.n_features_in_
    (3.0, True, 4)
    >>> ts.predict_proba(3 * z[:2]).round(3)
    array([[0.226, 0.176, 0.376, 0.222],
           [0.072, 0.175, 0.442, 0.311]])
    >>> ts.predict(3 * z[:2])
    array([2, 2])

    A known temperature, no fit needed:

    >>> TemperatureScaling(2.0).transform(np.array([4.0, 2.0, 0.0]))
    array([2., 1., 0.])
    """

    temperature_: float
    nll_before_: float | None
    nll_after_: float | None
    converged_: bool
    n_iter_: int
    at_bound_: bool
    message_: str
    n_samples_: int | None
    n_features_in_: int
    classes_: NDArray[Any]

    def __init__(self, temperature: float | None = None, *,
                 bounds: tuple[float, float] = (1e-2, 1e2),
                 input: Literal["logits", "probs"] = "logits", axis: int = -1,
                 nll_before: float | None = None, nll_after: float | None = None,
                 converged: bool = True, iterations: int = 0, at_bound: bool = False,
                 message: str = "", n_samples: int | None = None) -> None:
        # Checked here, stored as given (scikit-learn's clone compares them by identity).
        t = None if temperature is None else check_temperature(temperature)
        check_bounds(bounds)
        self.temperature = temperature
        self.bounds = bounds
        self.input = check_input(input)
        self.axis = check_axis(axis)
        record = {"nll_before": nll_before, "nll_after": nll_after, "n_samples": n_samples}
        if t is None:
            given = [k for k, v in record.items() if v is not None]
            if given:
                raise ValueError(f"{given[0]} must come with a temperature, got temperature=None")
            return
        self.temperature_ = t
        self.nll_before_ = _optional_nll(nll_before, "nll_before")
        self.nll_after_ = _optional_nll(nll_after, "nll_after")
        self.converged_ = _bool(converged, "converged")
        self.n_iter_ = _count(iterations, "iterations")
        self.at_bound_ = _bool(at_bound, "at_bound")
        if not isinstance(message, str):
            raise ValueError(f"message must be a string, got {message!r}")
        self.message_ = message
        self.n_samples_ = None if n_samples is None else _count(n_samples, "n_samples")

    # ---------------------------------------------------------- estimator API

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters (scikit-learn's ``get_params``).

        Examples
        --------
        >>> from softmax.calibration import TemperatureScaling
        >>> TemperatureScaling(bounds=(0.1, 10)).get_params()["bounds"]
        (0.1, 10)
        """
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params: Any) -> "TemperatureScaling":
        """Set constructor parameters (scikit-learn's ``set_params``); forgets a fit.

        Examples
        --------
        >>> from softmax.calibration import TemperatureScaling
        >>> TemperatureScaling().set_params(temperature=1.5).temperature_
        1.5
        """
        for name in params:
            if name not in _PARAMS:
                raise ValueError(f"params must be among {', '.join(_PARAMS)}, got {name!r}")
        merged = {**self.get_params(), **params}
        self.__dict__.clear()
        # re-initialized in place, as scikit-learn's set_params does
        self.__init__(**merged)  # type: ignore[misc]
        return self

    def fit(self, X: ArrayLike | AnyArray, y: ArrayLike | AnyArray,
            sample_weight: ArrayLike | AnyArray | None = None, *,
            where: Mask = None) -> "TemperatureScaling":
        """Fit T on held-out scores `X` and labels `y`; returns the estimator.

        Parameters
        ----------
        X : array_like or dask array
            Logits (or probabilities, with ``input="probs"``), classes along
            `axis`; 1-D for binary scores. A masked array excludes its
            masked classes.
        y : array_like of int or bool
            True class of each sample (0/1 or bool for binary scores).
            Masked labels drop their samples.
        sample_weight : array_like, optional
            Non-negative weight per sample; only their ratios matter.
        where : array_like of bool, optional
            Classes to include; combines with a mask of `X`.

        Returns
        -------
        TemperatureScaling
            self, with `temperature_` and the other fitted attributes set.

        Examples
        --------
        >>> from softmax.calibration import TemperatureScaling
        >>> ts = TemperatureScaling().fit([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]], [0, 1, 1])
        >>> round(ts.temperature_, 3), ts.converged_
        (1.322, True)
        """
        checked: Scores | DaskScores
        if is_dask(X):
            checked = check_dask_scores(X, y, input=self.input, axis=self.axis, where=where,
                                        weights=sample_weight)
            n_features = 1 if cast(Any, X).ndim == 1 else checked.n_classes  # X: a Dask array
        else:
            checked = check_scores(X, y, input=self.input, axis=self.axis, where=where,
                                   weights=sample_weight)
            n_features = checked.n_features
        bounds = check_bounds(self.bounds)
        if self.temperature is None:
            self._record(_solver.fit(checked, bounds))
        else:
            self._record(_solver.evaluate(checked, check_temperature(self.temperature), bounds))
        self.n_features_in_ = n_features
        self.classes_ = np.arange(max(n_features, 2))
        return self

    def _record(self, fit: _solver.Fit) -> None:
        self.temperature_ = fit.temperature
        self.nll_before_ = fit.nll_before
        self.nll_after_ = fit.nll_after
        self.converged_ = fit.converged
        self.n_iter_ = fit.iterations
        self.at_bound_ = fit.at_bound
        self.message_ = fit.message
        self.n_samples_ = fit.n_samples

    def _t(self) -> float:
        try:
            return self.temperature_
        except AttributeError:
            raise NotFittedError(
                "This TemperatureScaling is not fitted: call fit(logits, labels) first, "
                "or give a known temperature, TemperatureScaling(T)"
            ) from None

    def _logits(self, X: Any, what: str) -> tuple[Any, float, int | None]:
        """X as logits (log of probabilities with input="probs"), checked on NumPy."""
        t = self._t()
        if is_dask(X) or (not isinstance(X, np.ndarray) and hasattr(X, "__array_namespace__")
                          or type(X).__module__.partition(".")[0] in ("torch", "jax", "jaxlib")):
            if self.input == "probs":
                X = X.log() if hasattr(X, "log") else np.log(X)
            return X, t, None
        mask = np.ma.getmask(X) if isinstance(X, np.ma.MaskedArray) else np.ma.nomask
        arr = as_float_array(np.ma.getdata(X), self.input)
        if arr.ndim == 0:
            raise ValueError(f"{self.input} must have a class axis, or be a 1-D array of binary "
                             "scores, got a scalar")
        binary = arr.ndim == 1
        ax = -1 if binary else np.lib.array_utils.normalize_axis_index(self.axis, arr.ndim)
        k = 1 if binary else arr.shape[ax]
        expected = getattr(self, "n_features_in_", None)
        if expected is not None and k != expected:
            raise ValueError(
                f"{what} must have {expected} classes along axis {self.axis} (as fitted), "
                f"got {k} (shape {arr.shape})"
            )
        if arr.size:
            rows = arr[:, None] if binary else np.moveaxis(arr, ax, -1).reshape(-1, k)
            keep = None
            if mask is not np.ma.nomask:
                keep = ~np.broadcast_to(mask, arr.shape)
                keep = keep[:, None] if binary else np.moveaxis(keep, ax, -1).reshape(-1, k)
            _check_values(rows, keep, self.input, binary)
        if self.input == "probs":
            arr = log_probs(arr)
            if binary:
                with np.errstate(divide="ignore", invalid="ignore"):
                    arr = arr - log_probs(-np.expm1(arr))  # logit(p) = log p - log(1 - p)
        if mask is not np.ma.nomask:
            arr = np.ma.masked_array(arr, mask)
        return arr, t, ax

    @overload
    def transform(self, X: DaskArray) -> DaskArray: ...
    @overload
    def transform(self, X: ArrayAPIArray) -> ArrayAPIArray: ...
    @overload
    def transform(self, X: NDArray[Any]) -> FloatArray: ...
    @overload
    def transform(self, X: ArrayLike) -> FloatArray: ...

    def transform(self, X: Any) -> Any:
        """Calibrated logits: ``X / T`` (dtype kept).

        With ``input="probs"``, the logits ``log(p) / T`` (binary:
        ``logit(p) / T``). Values too large for the dtype become +-inf
        without a warning; `predict_proba` stays exact at every T.

        Examples
        --------
        >>> from softmax.calibration import TemperatureScaling
        >>> TemperatureScaling(2.0).transform([4.0, 2.0, 0.0])
        array([2., 1., 0.])
        """
        z, t, _ = self._logits(X, "X")
        if not isinstance(z, np.ndarray):
            return z / t
        dt = z.dtype
        # T is not rounded to the dtype first (float16/32 would turn a tiny or
        # huge T into 0 or inf): divide in float64 (or longdouble) and round once.
        wide = np.longdouble if dt == np.longdouble else np.float64
        with np.errstate(over="ignore"):
            out = (z.astype(wide) / wide(t)).astype(dt)
        return out

    @overload
    def transform_logits(self, logits: DaskArray) -> DaskArray: ...
    @overload
    def transform_logits(self, logits: ArrayAPIArray) -> ArrayAPIArray: ...
    @overload
    def transform_logits(self, logits: NDArray[Any]) -> FloatArray: ...
    @overload
    def transform_logits(self, logits: ArrayLike) -> FloatArray: ...

    def transform_logits(self, logits: Any) -> Any:
        """The same as `transform` (the name before the estimator API).

        Examples
        --------
        >>> from softmax.calibration import TemperatureScaling
        >>> TemperatureScaling(2.0).transform_logits([4.0, 2.0, 0.0])
        array([2., 1., 0.])
        """
        return self.transform(logits)

    @overload
    def predict_proba(self, X: DaskArray) -> DaskArray: ...
    @overload
    def predict_proba(self, X: ArrayAPIArray) -> ArrayAPIArray: ...
    @overload
    def predict_proba(self, X: NDArray[Any]) -> FloatArray: ...
    @overload
    def predict_proba(self, X: ArrayLike) -> FloatArray: ...

    def predict_proba(self, X: Any) -> Any:
        """Calibrated probabilities ``softmax(X / T)`` along `axis`.

        Binary scores of shape (N,) give shape (N, 2): the probabilities
        of class 0 and class 1, as scikit-learn's ``predict_proba``.

        Examples
        --------
        >>> from softmax.calibration import TemperatureScaling
        >>> TemperatureScaling(2.0).predict_proba([4.0, 2.0, 0.0]).round(4)
        array([[0.1192, 0.8808],
               [0.2689, 0.7311],
               [0.5   , 0.5   ]])
        >>> TemperatureScaling(2.0).predict_proba([[4.0, 2.0, 0.0]]).round(4)
        array([[0.6652, 0.2447, 0.09  ]])
        """
        z, t, ax = self._logits(X, "X")
        softmax = _public_softmax()
        if getattr(z, "ndim", None) == 1:
            z = _stack_binary(z)
            return softmax(z, axis=-1, temperature=t)
        return softmax(z, axis=self.axis if ax is None else ax, temperature=t)

    @overload
    def predict(self, X: DaskArray) -> DaskArray: ...
    @overload
    def predict(self, X: ArrayAPIArray) -> ArrayAPIArray: ...
    @overload
    def predict(self, X: NDArray[Any]) -> NDArray[np.intp]: ...
    @overload
    def predict(self, X: ArrayLike) -> NDArray[np.intp]: ...

    def predict(self, X: Any) -> Any:
        """The predicted class: the arg max along `axis` (1 where a binary logit is > 0).

        Temperature scaling never changes it.

        Examples
        --------
        >>> from softmax.calibration import TemperatureScaling
        >>> TemperatureScaling(2.0).predict([[4.0, 2.0, 0.0], [0.0, 1.0, 0.0]])
        array([0, 1])
        """
        z, _, ax = self._logits(X, "X")
        if isinstance(z, np.ma.MaskedArray):
            z = z.filled(-np.inf)
        if getattr(z, "ndim", None) == 1:
            return (z > 0).astype(np.intp) if isinstance(z, np.ndarray) else (z > 0) * 1
        return z.argmax(axis=self.axis if ax is None else ax)

    @overload
    def fit_transform(self, X: DaskArray, y: ArrayLike | AnyArray,
                      sample_weight: ArrayLike | AnyArray | None = None, *,
                      where: Mask = None) -> DaskArray: ...
    @overload
    def fit_transform(self, X: ArrayAPIArray, y: ArrayLike | AnyArray,
                      sample_weight: ArrayLike | AnyArray | None = None, *,
                      where: Mask = None) -> ArrayAPIArray: ...
    @overload
    def fit_transform(self, X: NDArray[Any], y: ArrayLike | AnyArray,
                      sample_weight: ArrayLike | AnyArray | None = None, *,
                      where: Mask = None) -> FloatArray: ...
    @overload
    def fit_transform(self, X: ArrayLike, y: ArrayLike | AnyArray,
                      sample_weight: ArrayLike | AnyArray | None = None, *,
                      where: Mask = None) -> FloatArray: ...

    def fit_transform(self, X: Any, y: Any, sample_weight: Any = None, *, where: Any = None) -> Any:
        """`fit`, then `transform` the same scores.

        Examples
        --------
        >>> from softmax.calibration import TemperatureScaling
        >>> TemperatureScaling(2.0).fit_transform([[4.0, 0.0]], [0])
        array([[2., 0.]])
        """
        return self.fit(X, y, sample_weight, where=where).transform(X)

    # ------------------------------------------------------ compatibility

    @property
    def nll_before(self) -> float | None:
        return getattr(self, "nll_before_", None)

    @property
    def nll_after(self) -> float | None:
        return getattr(self, "nll_after_", None)

    @property
    def converged(self) -> bool | None:
        return getattr(self, "converged_", None)

    @property
    def iterations(self) -> int | None:
        return getattr(self, "n_iter_", None)

    @property
    def at_bound(self) -> bool | None:
        return getattr(self, "at_bound_", None)

    @property
    def message(self) -> str | None:
        return getattr(self, "message_", None)

    @property
    def n_samples(self) -> int | None:
        return getattr(self, "n_samples_", None)

    def __repr__(self) -> str:
        defaults = {"temperature": None, "bounds": (1e-2, 1e2), "input": "logits", "axis": -1}
        args = [f"{k}={getattr(self, k)!r}" for k in _PARAMS if getattr(self, k) != defaults[k]]
        return f"TemperatureScaling({', '.join(args)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TemperatureScaling):
            return NotImplemented
        mine = self.to_dict() if hasattr(self, "temperature_") else self.get_params()
        theirs = other.to_dict() if hasattr(other, "temperature_") else other.get_params()
        return mine == theirs

    __hash__ = None  # type: ignore[assignment]  # unhashable: __eq__ compares fitted values

    # ------------------------------------------------------------ saving

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (plain floats, ints, bools, strings, lists).

        Examples
        --------
        >>> from softmax.calibration import TemperatureScaling
        >>> TemperatureScaling(1.5).to_dict()["temperature"]
        1.5
        """
        d = {
            "format": _FORMAT,
            "version": _VERSION,
            "temperature": float(self._t()),
            "nll_before": self.nll_before,
            "nll_after": self.nll_after,
            "converged": bool(self.converged),
            "iterations": int(self.iterations),  # type: ignore[arg-type]  # fitted: not None
            "at_bound": bool(self.at_bound),
            "message": self.message,
            "bounds": [float(b) for b in check_bounds(self.bounds)],
            "n_samples": self.n_samples,
            "input": self.input,
            "axis": self.axis,
        }
        n_features = getattr(self, "n_features_in_", None)
        if n_features is not None:
            d["n_features_in"] = int(n_features)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TemperatureScaling":
        """Inverse of `to_dict`. Every known key is checked; unknown keys are ignored.

        Examples
        --------
        >>> from softmax.calibration import TemperatureScaling
        >>> ts = TemperatureScaling(1.5, nll_before=0.4, nll_after=0.3)
        >>> TemperatureScaling.from_dict(ts.to_dict()) == ts
        True
        >>> TemperatureScaling.from_dict({"temperature": 2.0, "converged": "no"})
        Traceback (most recent call last):
        ...
        ValueError: converged must be true or false, got 'no'
        """
        if not isinstance(data, dict) or "temperature" not in data:
            raise ValueError(f"data must be a dict with a 'temperature' entry, got {data!r}")
        fmt = data.get("format", _FORMAT)
        if fmt != _FORMAT:
            raise ValueError(f"data must be in format {_FORMAT!r}, got format {fmt!r}")
        version = data.get("version", _VERSION)
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= _VERSION:
            raise ValueError(f"version must be an integer from 1 to {_VERSION}, got {version!r}")
        kwargs: dict[str, Any]
        kwargs = {k: data[k] for k in ("temperature", "nll_before", "nll_after", "converged",
                                       "iterations", "at_bound", "message", "n_samples",
                                       "input", "axis")
                  if k in data and data[k] is not None}
        bounds = data.get("bounds")
        if bounds is not None:
            if not isinstance(bounds, (list, tuple)) or len(bounds) != 2 or not all(
                    _is_real(b) for b in bounds):
                raise ValueError(f"bounds must be a pair (low, high) of temperatures, got {bounds!r}")
            kwargs["bounds"] = tuple(bounds)
        ts = cls(**kwargs)
        n_features = data.get("n_features_in")
        if n_features is not None:
            ts.n_features_in_ = _count(n_features, "n_features_in", least=1)
            ts.classes_ = np.arange(max(ts.n_features_in_, 2))
        return ts

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write `to_dict` as JSON to `path`.

        Examples
        --------
        >>> import os, tempfile
        >>> from softmax.calibration import TemperatureScaling
        >>> path = os.path.join(tempfile.mkdtemp(), "temperature.json")
        >>> TemperatureScaling(1.5).save(path)
        >>> TemperatureScaling.load(path).temperature_
        1.5
        """
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        with open(os.fspath(path), "w", encoding="utf-8") as fh:
            fh.write(text + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "TemperatureScaling":
        """Read a JSON file written by `save`; errors name the file.

        Examples
        --------
        See `save`.
        """
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a temperature file (invalid JSON: {exc})") from None
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: {exc}") from None


def _stack_binary(z: Any) -> Any:
    """(N,) logits -> (N, 2) logits [0, z], in z's own array type."""
    if isinstance(z, np.ndarray):
        out = np.stack([np.zeros_like(z), z], axis=-1)
        return np.ma.masked_array(out, np.stack([np.ma.getmaskarray(z)] * 2, axis=-1)) \
            if isinstance(z, np.ma.MaskedArray) else out
    if is_dask(z):
        import dask.array as da

        return da.stack([da.zeros_like(z), z], axis=-1)
    mod = __import__(type(z).__module__.partition(".")[0])
    return mod.stack([mod.zeros_like(z), z], -1)


def _is_real(v: object) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _bool(v: object, name: str) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise ValueError(f"{name} must be true or false, got {v!r}")
    return bool(v)


def _count(v: Any, name: str, least: int = 0) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {v!r}")
    return int(v)


def _optional_nll(v: Any, name: str) -> float | None:
    if v is None:
        return None
    if not _is_real(v) or not (0 <= v < math.inf):
        raise ValueError(f"{name} must be a finite number >= 0 or None, got {v!r}")
    return float(v)
