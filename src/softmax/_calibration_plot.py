"""Reliability diagrams with matplotlib (the optional ``plot`` extra).

Imported only by `softmax.calibration.reliability_diagram`, so that
importing the package never imports matplotlib. Figures are built from
``matplotlib.figure.Figure`` directly (rendered by Agg on save): no pyplot,
no global backend switch, nothing left open in pyplot's figure manager.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

from . import calibration as _cal

_BAR = "#4C72B0"
_GAP = "#DD8452"


def _panel(ax, scores, labels, *, input, axis, n_bins, strategy, label, counts_ax=None):
    curve = _cal.reliability_curve(scores, labels, input=input, axis=axis, n_bins=n_bins,
                                   strategy=strategy)
    err = _cal.ece(scores, labels, input=input, axis=axis, n_bins=n_bins, strategy=strategy)
    edges = curve.edges
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
    ax.set_ylabel("accuracy")
    ax.set_title(f"{label}ECE = {100 * err:.2f} %" if label else f"ECE = {100 * err:.2f} %")
    ax.legend(loc="upper left", fontsize=8, frameon=False)

    if counts_ax is not None:
        counts_ax.bar(left, curve.counts, width=width, align="edge", color="0.55",
                      edgecolor="white", linewidth=0.6)
        counts_ax.set_xlim(0, 1)
        counts_ax.set_xlabel("confidence (top-label probability)")
        counts_ax.set_ylabel("samples")
        for x, w, c in zip(left, width, curve.counts):
            if c:
                counts_ax.annotate(f"{c}", (x + w / 2, c), ha="center", va="bottom",
                                   fontsize=6, rotation=90, xytext=(0, 1),
                                   textcoords="offset points")
        top = max(int(curve.counts.max()), 1)
        counts_ax.set_ylim(0, top * 1.35)
    else:
        ax.set_xlabel("confidence (top-label probability)")
        for x, w, c in zip(left, width, curve.counts):
            if c:
                ax.annotate(f"n={c}", (x + w / 2, 0.02), ha="center", va="bottom", fontsize=6,
                            rotation=90, color="white")
    return err


def reliability_diagram(scores, labels, *, calibrated=None, input="logits", axis=-1, n_bins=15,
                        strategy="uniform", path=None, ax=None, title=None):
    sets = [(scores, input, "before: " if calibrated is not None else "")]
    if calibrated is not None:
        if isinstance(calibrated, _cal.TemperatureScaling):
            if input != "logits":
                raise ValueError(
                    "calibrated must be scores when input='probs', got a TemperatureScaling "
                    "(it applies to logits)"
                )
            after = calibrated.transform_logits(scores)
            label = f"after (T = {calibrated.temperature:.3g}): "
        else:
            after = calibrated
            label = "after: "
        sets.append((after, input, label))

    if ax is not None:
        axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        if len(axes) != len(sets):
            raise ValueError(
                f"ax must be {len(sets)} Axes (one per set of scores), got {len(axes)}"
            )
        for a, (s, kind, label) in zip(axes, sets):
            _panel(a, s, labels, input=kind, axis=axis, n_bins=n_bins, strategy=strategy,
                   label=label)
        fig = axes[0].figure
    else:
        fig = Figure(figsize=(4.6 * len(sets), 6.0), layout="constrained")
        grid = fig.add_gridspec(2, len(sets), height_ratios=(4, 1.3))
        for col, (s, kind, label) in enumerate(sets):
            main = fig.add_subplot(grid[0, col])
            counts = fig.add_subplot(grid[1, col], sharex=main)
            main.tick_params(labelbottom=False)
            _panel(main, s, labels, input=kind, axis=axis, n_bins=n_bins, strategy=strategy,
                   label=label, counts_ax=counts)
    if title:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(os.fspath(path), dpi=120)
    return fig
