"""The synthesis check on an independent model of the same neurons (issue 15, section 4): this pipeline's
maximizing and adversarial images of each neuron shown to the published compact model of that neuron."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from compactcortex.figures.style import FULL_WIDTH, MODEL_COLOURS, panel_label
from compactcortex.io.tables import read_tables
from compactcortex.metrics import SIGNIFICANCE

RATIO_AXIS = 10


def published_check_figure(scores: Sequence[str | Path], adversarial: Sequence[str | Path]) -> plt.Figure:
    """(a) Each neuron's published-model response to its maximizing images against the controls' (p < 0.05 in
    colour); (b) the drive ratios, best to worst; (c) the share of adversarial images that move the published model
    the intended way, up and down."""
    score, shifts = read_tables(scores), read_tables(adversarial)
    significant = (score["p_maximizing_beats_natural"] < SIGNIFICANCE).to_numpy()
    colour = np.where(significant, MODEL_COLOURS["compact"], "#999999")
    figure, axes = plt.subplots(1, 3, figsize=(FULL_WIDTH, FULL_WIDTH / 3.2), constrained_layout=True)

    ax = axes[0]
    ax.scatter(score["recorded_controls"], score["recorded_maximizing"], s=8, c=colour)
    low = float(min(score["recorded_controls"].min(), score["recorded_maximizing"].min()))
    high = float(max(score["recorded_controls"].max(), score["recorded_maximizing"].max()))
    ax.plot([low, high], [low, high], color="black", linewidth=0.6, linestyle="--")
    ax.set_xlabel("controls (spikes)")
    ax.set_ylabel("maximizing images (spikes)")
    ax.set_title(f"{significant.sum()} of {len(score)} neurons p < {SIGNIFICANCE}", fontsize="small")
    panel_label(ax, "a")

    ax = axes[1]
    ratio = score["drive_ratio"].to_numpy()
    order = np.argsort(-ratio)
    # controls near zero spikes make a few ratios huge or negative: the axis shows 0 to RATIO_AXIS, and says so
    ax.bar(np.arange(len(score)), np.clip(ratio[order], 0, RATIO_AXIS), color=colour[order], width=1.0)
    ax.axhline(1.0, color="black", linewidth=0.6, linestyle="--")
    ax.set_ylim(0, RATIO_AXIS)
    ax.set_xlabel("neurons (best to worst)")
    ax.set_ylabel("drive ratio (maximizing / controls)")
    clipped = int(((ratio < 0) | (ratio > RATIO_AXIS)).sum())
    title = f"median {np.median(ratio):.2f}" + (f"; {clipped} outside 0-{RATIO_AXIS} clipped" if clipped else "")
    ax.set_title(title, fontsize="small")
    panel_label(ax, "b")

    ax = axes[2]
    directions = ["up", "down"]
    shares = [shifts.loc[shifts["intended"] == d, "recorded_correct"].mean() for d in directions]
    ax.bar(directions, shares, color=MODEL_COLOURS["compact"], width=0.6)
    ax.axhline(0.5, color="black", linewidth=0.6, linestyle="--")
    ax.set_ylim(0, 1)
    ax.set_xlabel("adversarial images: intended change")
    ax.set_ylabel("share moved the intended way")
    ax.set_title(f"{shifts['recorded_correct'].mean():.0%} of {len(shifts)} images", fontsize="small")
    panel_label(ax, "c")
    return figure
