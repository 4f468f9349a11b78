"""Figure 3: compressibility: filters kept per layer, where the bottleneck (consolidation step) falls, and the
early filters that compact models share."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from compactcortex.figures.style import FULL_WIDTH, MODEL_COLOURS, panel_label, paper_style
from compactcortex.io.compact_models import FILTER_COLUMNS
from compactcortex.io.early_filters import read_early_filters
from compactcortex.io.tables import read_table

SHOWN_CLUSTERS = 8


def _as_rgb(kernel: np.ndarray) -> np.ndarray:
    """(3, k, k) weights -> an RGB image in 0..1 (zero weight = mid-grey)."""
    scale = np.abs(kernel).max() or 1.0
    return np.clip(0.5 + 0.5 * kernel.transpose(1, 2, 0) / scale, 0, 1)


def compressibility_figure(filters_table: str | Path, early_filters: str | Path, initial_filters: int) -> plt.Figure:
    table = read_table(filters_table)
    counts = table[FILTER_COLUMNS].to_numpy()
    with read_early_filters(early_filters) as clusters:
        clusters = clusters.load()
    with paper_style():
        figure = plt.figure(figsize=(FULL_WIDTH, 4.8), layout="constrained")
        spec = figure.add_gridspec(2, SHOWN_CLUSTERS, height_ratios=[2.2, 1.1])
        ax = figure.add_subplot(spec[0, :3])
        layers = np.arange(counts.shape[1])
        rng = np.random.default_rng(0)
        for row in counts:
            ax.plot(layers + rng.uniform(-0.08, 0.08), row, color=MODEL_COLOURS["compact"], alpha=0.25, lw=0.8)
        ax.plot(layers, np.median(counts, axis=0), color="black", lw=2, marker="o", label="median")
        ax.axhline(initial_filters, color="#8c8c8c", ls="--", lw=0.8, label=f"before pruning ({initial_filters})")
        ax.set_xticks(layers, [f"L{k}" for k in layers])
        ax.set_xlabel("layer")
        ax.set_ylabel("filters kept")
        ax.set_ylim(0, initial_filters * 1.1)
        ax.legend(frameon=False, loc="lower left")
        ax.set_title(f"{len(table)} compact models")
        panel_label(ax, "a")

        ax = figure.add_subplot(spec[0, 3:5])
        bottleneck = table["bottleneck_layer"].value_counts().reindex(range(1, 5), fill_value=0)
        ax.bar([f"L{k}" for k in bottleneck.index], bottleneck.to_numpy(), color=MODEL_COLOURS["compact"])
        ax.set_xlabel("narrowest layer (of L1-L4)")
        ax.set_ylabel("models")
        ax.set_title("the consolidation step")
        panel_label(ax, "b")

        ax = figure.add_subplot(spec[0, 5:])
        n = clusters["n_clusters"].values
        for name, colour, label in (
            ("learned", MODEL_COLOURS["compact"], "learned part"),
            ("trained", MODEL_COLOURS["ensemble"], "trained filters"),
        ):
            ax.plot(n, 100 * clusters[f"{name}_coverage"].values, marker="o", ms=3, color=colour, label=label)
            ax.plot(n, 100 * clusters[f"{name}_coverage_random"].values, ls=":", color=colour, label=f"{label}: random")
        ax.set_xlabel("shared filter clusters")
        ax.set_ylabel(f"models covered (%)\n(>= {clusters.attrs['cover']:.0%} of their layer-0 filters)")
        ax.set_ylim(-3, 103)
        ax.legend(frameon=False, fontsize=6, loc="upper left")
        ax.set_title("shared early filters")
        panel_label(ax, "c")

        labels = clusters["learned_cluster"].values
        models = clusters["filter_model"].values
        for j in range(min(SHOWN_CLUSTERS, clusters.sizes["cluster"])):
            ax = figure.add_subplot(spec[1, j])
            ax.imshow(_as_rgb(clusters["learned_centre"].values[j]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            users = len(np.unique(models[labels == j]))
            ax.set_xlabel(f"{users} models", fontsize=7)
            if j == 0:
                ax.set_ylabel("cluster\ncentres", fontsize=7)
                panel_label(ax, "d")
    return figure
