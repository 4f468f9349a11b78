"""Figure 1: how well each model predicts the held-out responses, and how many parameters it takes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from compactcortex.evaluate import MODELS
from compactcortex.figures.style import FULL_WIDTH, MODEL_COLOURS, MODEL_LABELS, panel_label, paper_style
from compactcortex.io.members import ensemble_parameters, read_member
from compactcortex.io.tables import read_tables


def accuracy_metric(table: pd.DataFrame) -> str:
    """r2_er where the data have single trials (noise-corrected), else Pearson r."""
    return "r2_er" if table["r2_er_ensemble"].notna().any() else "r"


def _strip(ax: plt.Axes, position: float, values: np.ndarray, colour: str, rng: np.random.Generator) -> None:
    values = values[np.isfinite(values)]
    ax.scatter(position + rng.uniform(-0.15, 0.15, len(values)), values, s=9, color=colour, alpha=0.7, lw=0)
    if len(values):
        ax.plot([position - 0.28, position + 0.28], [np.median(values)] * 2, color="black", lw=1.5)


def accuracy_figure(
    evaluation_paths: Sequence[str | Path], member_paths: Sequence[str | Path], compact_tables: Sequence[str | Path]
) -> plt.Figure:
    table = read_tables(evaluation_paths)
    if "r2_er_compact" in table:
        table = table[table["r2_er_compact"].notna() | table["r_compact"].notna()]  # the compressed neurons
    metric = accuracy_metric(table)
    label = "noise-corrected $R^2_{ER}$ (held-out half)" if metric == "r2_er" else "Pearson r (held-out half)"
    models = [m for m in MODELS if f"{metric}_{m}" in table and table[f"{metric}_{m}"].notna().any()]
    rng = np.random.default_rng(0)  # jitter only
    with paper_style():
        figure, axes = plt.subplots(
            1, 3, figsize=(FULL_WIDTH, 2.7), layout="constrained", gridspec_kw={"width_ratios": [1.3, 1, 1]}
        )
        ax = axes[0]
        for i, model in enumerate(models):
            _strip(ax, i, table[f"{metric}_{model}"].to_numpy(), MODEL_COLOURS[model], rng)
        ax.set_xticks(range(len(models)), [MODEL_LABELS[m] for m in models], rotation=20)
        ax.set_ylabel(label)
        ax.set_title(f"{len(table)} held-out neurons (median: bar)")
        panel_label(ax, "a")

        ax = axes[1]
        if "compact" in models:
            x, y = table[f"{metric}_ensemble"].to_numpy(), table[f"{metric}_compact"].to_numpy()
            ax.scatter(x, y, s=10, color=MODEL_COLOURS["compact"], lw=0)
            low, high = np.nanmin([x.min(), y.min(), 0]), np.nanmax([x.max(), y.max(), 1])
            ax.plot([low, high], [low, high], color="black", lw=0.8, ls="--")
            ax.set_xlabel(f"ensemble ({metric.replace('r2_er', '$R^2_{ER}$')})")
            ax.set_ylabel(f"compact model ({metric.replace('r2_er', '$R^2_{ER}$')})")
            ax.set_title("per neuron")
        panel_label(ax, "b")

        ax = axes[2]
        compact = read_tables(compact_tables)
        ensemble = ensemble_parameters([read_member(path) for path in member_paths])
        ax.scatter([0], [ensemble], s=40, color=MODEL_COLOURS["ensemble"], marker="s")
        ax.annotate(f"{ensemble:,}", (0, ensemble), textcoords="offset points", xytext=(8, -3), fontsize=7)
        _strip(ax, 1, compact["n_parameters"].to_numpy().astype(float), MODEL_COLOURS["compact"], rng)
        median = float(np.median(compact["n_parameters"]))
        ax.annotate(
            f"median {median:,.0f}\n({ensemble / median:,.0f}x fewer)",
            (1, median),
            textcoords="offset points",
            xytext=(-25, 12),
            fontsize=7,
        )
        ax.set_yscale("log")
        ax.set_ylim(compact["n_parameters"].min() / 3, ensemble * 3)
        ax.set_xlim(-0.6, 1.6)
        ax.set_xticks([0, 1], [f"ensemble\n({len(member_paths)} members\n+ backbone)", "compact\n(per neuron)"])
        ax.set_ylabel("parameters")
        ax.set_title("model size")
        panel_label(ax, "c")
    return figure
