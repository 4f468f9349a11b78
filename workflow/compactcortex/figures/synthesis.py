"""Figure 2: maximizing images for a grid of neurons, and their check in the closed loop."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from compactcortex.figures.style import FULL_WIDTH, MODEL_COLOURS, panel_label, paper_style
from compactcortex.io.session_dataset import repeat_means
from compactcortex.io.stimulus_sets import CONTROL, MAXIMIZING, MINIMIZING, NATURAL_TOP, read_stimuli
from compactcortex.io.tables import read_tables
from compactcortex.metrics import SIGNIFICANCE

GRID_NEURONS = 8
ROWS = (
    (MAXIMIZING, "maximizing\n(synthesised)"),
    (NATURAL_TOP, "most-driving\nnatural"),
    (MINIMIZING, "minimizing\n(synthesised)"),
)


def _best_of(table: pd.DataFrame, neuron: str, kind: str, highest: bool = True) -> int:
    rows = table[(table["neuron"] == neuron) & (table["stimulus"] == kind)]
    return int(rows["predicted"].idxmax() if highest else rows["predicted"].idxmin())


def synthesis_figure(
    stimulus_sets: Sequence[str | Path], scores: Sequence[str | Path], loops: Sequence[str | Path]
) -> plt.Figure:
    parts = [read_stimuli(Path(folder) / "stimuli.nc") for folder in stimulus_sets]
    images = np.concatenate([p[0] for p in parts])
    table = pd.concat([p[1] for p in parts], ignore_index=True)
    score = read_tables(scores) if scores else None
    neurons = sorted(set(table["neuron"]) - {""})
    if score is not None and len(score):
        neurons = score.sort_values("drive_ratio", ascending=False)["neuron"].tolist()
    grid = neurons[:GRID_NEURONS]
    with paper_style():
        figure = plt.figure(figsize=(FULL_WIDTH, 6.4 if score is not None else 3.0), layout="constrained")
        top, bottom = figure.subfigures(2, 1, height_ratios=[1.25, 1]) if score is not None else (figure, None)
        image_axes = top.subplots(len(ROWS), len(grid), squeeze=False)
        for r, (kind, label) in enumerate(ROWS):
            for c, neuron in enumerate(grid):
                ax = image_axes[r, c]
                index = _best_of(table, neuron, kind, highest=kind != MINIMIZING)
                ax.imshow(images[index])
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_xlabel(f"model: {table.at[index, 'predicted']:.1f}", fontsize=6, labelpad=1)
                if r == 0:
                    ax.set_title(neuron, fontsize=7)
                if c == 0:
                    ax.set_ylabel(label, fontsize=7)
        panel_label(image_axes[0, 0], "a")
        if bottom is not None:
            recorded = pd.concat([repeat_means(path) for path in loops], axis=1)
            recorded = recorded.T.groupby(level=0).first().T  # one column per neuron across sessions
            ax, ratio_ax = bottom.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
            controls = table.loc[table["stimulus"] == CONTROL, "image"]
            rng = np.random.default_rng(0)  # jitter only
            kinds = (
                (-0.25, CONTROL, "#8c8c8c"),
                (0.0, NATURAL_TOP, MODEL_COLOURS["ensemble"]),
                (0.25, MAXIMIZING, MODEL_COLOURS["compact"]),
            )
            for i, neuron in enumerate(grid):
                response = recorded[neuron]
                mine = table[table["neuron"] == neuron]
                for offset, kind, colour in kinds:
                    ids = controls if kind == CONTROL else mine.loc[mine["stimulus"] == kind, "image"]
                    values = response.reindex(ids).dropna().to_numpy()
                    ax.scatter(
                        i + offset + rng.uniform(-0.06, 0.06, len(values)),
                        values,
                        s=5,
                        color=colour,
                        lw=0,
                        label=kind.replace("_", " ") if i == 0 else None,
                    )
            ax.set_xticks(range(len(grid)), [n.replace("_", "\n") for n in grid], fontsize=6)
            ax.set_ylabel("spike count\n(mean over repeats)")
            ax.set_title("closed loop: the same neurons, a new session", fontsize=8)
            ax.legend(frameon=False, loc="upper right", markerscale=2)
            panel_label(ax, "b")
            ordered = score.sort_values("drive_ratio", ascending=False).reset_index(drop=True)
            significant = (ordered["p_maximizing_beats_natural"] < SIGNIFICANCE).to_numpy()
            ratio_ax.bar(
                ordered.index, ordered["drive_ratio"], color=np.where(significant, MODEL_COLOURS["compact"], "#cccccc")
            )
            ratio_ax.axhline(1.0, color="black", lw=0.8, ls="--")
            ratio_ax.set_yscale("log")
            ratio_ax.set_xlabel(f"neurons ({significant.sum()} of {len(ordered)} with p < {SIGNIFICANCE}: coloured)")
            ratio_ax.set_ylabel(f"maximizing / mean natural\n({ordered['drive_from'].iloc[0]})")
            ratio_ax.set_xticks([])
            panel_label(ratio_ax, "c")
    return figure
