"""Reliability diagrams with matplotlib (optional: ``pip install matplotlib``).

matplotlib is imported inside `reliability_diagram`, so importing
softmax.calibration never imports it. Figures are built from
``matplotlib.figure.Figure`` directly (rendered by Agg on save): no pyplot,
no global backend switch, nothing left open in pyplot's figure manager.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ._estimator import TemperatureScaling
from ._inputs import check_bins, check_input
from .._typing import ArrayLike, NDArray
from ._inputs import Input, Strategy
from ._metrics import curve_and_ece, stats

if TYPE_CHECKING:  # matplotlib is optional, imported when a diagram is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_BAR = "#4C72B0"
_GAP = "#DD8452"


def _panel(ax: Axes, scores: ArrayLike, labels: ArrayLike, *, input: str, axis: int,
           where: ArrayLike | None, n_bins: int, strategy: Strategy, label: str,
           counts_ax: Axes | None = None) -> float:
    curve, err = curve_and_ece(stats(scores, labels, input, axis, where), n_bins, strategy)
    edges = curve.edges
    binary = np.ndim(scores) == 1
    xlabel = "predicted probability of class 1" if binary else "confidence (top-label probability)"
    left, width = edges[:-1], np.diff(edges)
    full = curve.counts > 0
    acc = np.where(full, curve.accuracy, 0.0)
    conf = np.where(full, curve.confidence, 0.0)

    ax.bar(left[full], acc[full], width=width[full], align="edge", color=_BAR,
           edgecolor="white", linewidth=0.6, label="accuracy")
    # The gap drawn from the accuracy to the bin's mean confidence: above the
    # bar when overconfident, inside it when underconfident.
    ax.bar(left[full], (conf - acc)[full], bottom=acc[full], width=width[full], align="edge",
           color=_GAP, alpha=0.45, edgecolor=_GAP, hatch="//", linewidth=0.6,
           label="gap to mean confidence")
    ax.plot([0, 1], [0, 1], ls="--", color="0.3", lw=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_ylabel("fraction of positives" if binary else "accuracy")
    ax.set_title(f"{label}ECE = {100 * err:.2f} %" if label else f"ECE = {100 * err:.2f} %")
    ax.legend(loc="upper left", fontsize=8, frameon=False)

    if counts_ax is not None:
        counts_ax.bar(left, curve.counts, width=width, align="edge", color="0.55",
                      edgecolor="white", linewidth=0.6)
        counts_ax.set_xlim(0, 1)
        counts_ax.set_xlabel(xlabel)
        counts_ax.set_ylabel("samples")
        for x, w, c in zip(left, width, curve.counts):
            if c:
                counts_ax.annotate(f"{c}", (x + w / 2, c), ha="center", va="bottom",
                                   fontsize=6, rotation=90, xytext=(0, 1),
                                   textcoords="offset points")
        top = max(int(curve.counts.max()), 1)
        counts_ax.set_ylim(0, top * 1.35)
    else:
        ax.set_xlabel(xlabel)
        for x, w, c in zip(left, width, curve.counts):
            if c:
                ax.annotate(f"n={c}", (x + w / 2, 0.02), ha="center", va="bottom", fontsize=6,
                            rotation=90, color="white")
    return err


def reliability_diagram(scores: ArrayLike, labels: ArrayLike, *,
                        calibrated: ArrayLike | TemperatureScaling | None = None,
                        input: Input = "logits", axis: int = -1,
                        where: ArrayLike | None = None, n_bins: int = 15,
                        strategy: Strategy = "uniform",
                        path: str | os.PathLike[str] | None = None,
                        ax: Axes | Sequence[Axes] | NDArray[Any] | None = None,
                        title: str | None = None) -> Figure:
    """Reliability diagram: accuracy per confidence bin against the diagonal.

    Bars show each bin's accuracy, a hatched band the gap to perfect
    calibration, the numbers the samples per bin; the ECE is in the title.
    Needs matplotlib (``pip install matplotlib``), imported only when this
    function is called; drawn with the Agg backend without touching
    pyplot's global state.

    Parameters
    ----------
    scores, labels, input, axis, where
        As for `ece` (binary scores too: then the bars are the fraction of
        positives per bin of the positive class's probability).
    calibrated : array_like or TemperatureScaling, optional
        A second set of scores for the same samples (same `input` kind), or
        a fitted `TemperatureScaling` (with the same `input`) to apply to
        `scores`. Draws "before" and "after" side by side with both ECEs.
    n_bins, strategy
        As for `ece`.
    path : str or path-like, optional
        Save the figure there (format from the suffix, e.g. ``.png``).
    ax : matplotlib Axes or pair of Axes, optional
        Draw into these (two when `calibrated` is given) instead of a new
        figure.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from softmax.calibration import fit_temperature, reliability_diagram
    >>> rng = np.random.default_rng(0)
    >>> logits = 4 * rng.normal(size=(500, 3))
    >>> labels = rng.integers(0, 3, size=500)
    >>> fig = reliability_diagram(logits, labels, calibrated=fit_temperature(logits, labels))
    >>> len(fig.axes) >= 2
    True
    """
    check_input(input)
    n_bins, strategy = check_bins(n_bins, strategy)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a string, got {title!r}")
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            f"reliability_diagram needs matplotlib: pip install matplotlib ({exc})"
        ) from None
    sets: list[tuple[Any, str, str]]
    sets = [(scores, input, "before: " if calibrated is not None else "")]
    if calibrated is not None:
        after: ArrayLike
        if isinstance(calibrated, TemperatureScaling):
            if calibrated.input != input:
                raise ValueError(
                    f"calibrated must be a TemperatureScaling for input={input!r} scores, "
                    f"got one with input={calibrated.input!r}"
                )
            # Calibrated logits (also when the scores are probabilities).
            after, kind = calibrated.transform(scores), "logits"
            label = f"after (T = {calibrated.temperature_:.3g}): "
        else:
            after, kind = calibrated, input
            label = "after: "
        sets.append((after, kind, label))

    if ax is not None:
        axes: list[Axes]
        axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [cast("Axes", ax)]
        if len(axes) != len(sets):
            raise ValueError(
                f"ax must be {len(sets)} Axes (one per set of scores), got {len(axes)}"
            )
        for a, (s, kind, label) in zip(axes, sets):
            _panel(a, s, labels, input=kind, axis=axis, where=where, n_bins=n_bins,
                   strategy=strategy, label=label)
        fig = cast("Figure", axes[0].figure)  # (a SubFigure's Axes could not be saved anyway)
    else:
        fig = Figure(figsize=(4.6 * len(sets), 6.0), layout="constrained")
        grid = fig.add_gridspec(2, len(sets), height_ratios=(4, 1.3))
        for col, (s, kind, label) in enumerate(sets):
            main = fig.add_subplot(grid[0, col])
            counts = fig.add_subplot(grid[1, col], sharex=main)
            main.tick_params(labelbottom=False)
            _panel(main, s, labels, input=kind, axis=axis, where=where, n_bins=n_bins,
                   strategy=strategy, label=label, counts_ax=counts)
    if title:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(os.fspath(path), dpi=120)
    return fig
