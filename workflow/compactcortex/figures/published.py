"""The paper's own compact models beside this pipeline's (issue 15, section 3): filters per layer, the
consolidation step, shared early filters and dot selectivity, the same analyses on both."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

from compactcortex.figures.style import FULL_WIDTH, MODEL_COLOURS, panel_label, paper_style
from compactcortex.io.compact_models import FILTER_COLUMNS
from compactcortex.io.early_filters import read_early_filters
from compactcortex.io.tables import read_table

KINDS = {"compact": "this pipeline", "published_compact": "published (Cowley et al.)"}


def published_models_figure(
    ours: Sequence[str | Path], published: Sequence[str | Path], threshold: float
) -> plt.Figure:
    """``ours`` and ``published``: (filters table, early-filter clusters, dot selectivity table) each."""
    data = {}
    for kind, (table, early, dots) in zip(KINDS, (ours, published), strict=True):
        with read_early_filters(early) as clusters:
            coverage = (clusters["trained_coverage"].values, clusters["trained_coverage_random"].values)
        data[kind] = {"table": read_table(table), "coverage": coverage, "dots": read_table(dots)}
    with paper_style():
        figure, axes = plt.subplots(1, 4, figsize=(FULL_WIDTH, 2.2), layout="constrained")
        layers = np.arange(len(FILTER_COLUMNS))
        for offset, (kind, values) in zip((-0.15, 0.15), data.items(), strict=True):
            counts = values["table"][FILTER_COLUMNS].to_numpy()
            low, median, high = np.percentile(counts, [25, 50, 75], axis=0)
            axes[0].errorbar(
                layers + offset, median, yerr=[median - low, high - median], fmt="o-", color=MODEL_COLOURS[kind],
                label=f"{KINDS[kind]} ({len(counts)})", capsize=2, lw=1,
            )  # fmt: skip
            narrowest = values["table"]["bottleneck_layer"].value_counts(normalize=True)
            shares = [narrowest.get(k, 0.0) for k in range(1, len(FILTER_COLUMNS))]
            axes[1].bar(np.arange(1, len(FILTER_COLUMNS)) + offset, shares, width=0.3, color=MODEL_COLOURS[kind])
            coverage, random = values["coverage"]
            m = np.arange(1, len(coverage) + 1)
            axes[2].plot(m, coverage, "o-", color=MODEL_COLOURS[kind], ms=3)
            axes[2].plot(m, random, ":", color=MODEL_COLOURS[kind])
            selectivity = values["dots"]["dot_selectivity"].to_numpy()
            axes[3].hist(selectivity, bins=20, alpha=0.6, color=MODEL_COLOURS[kind], density=True)
        axes[0].set(xticks=layers, xticklabels=[f"L{k}" for k in layers], ylabel="filters kept", yscale="log")
        axes[0].yaxis.set_major_locator(FixedLocator([1, 3, 10, 30, 100]))
        axes[0].yaxis.set_major_formatter(ScalarFormatter())
        axes[0].yaxis.set_minor_locator(NullLocator())
        axes[0].legend(frameon=False, fontsize=6, loc="lower left")
        axes[1].set(xticks=range(1, len(FILTER_COLUMNS)), xlabel="narrowest layer", ylabel="share of models")
        axes[1].set_xticklabels([f"L{k}" for k in range(1, len(FILTER_COLUMNS))])
        axes[2].set(xlabel="shared clusters m", ylabel="models covered", ylim=(-0.02, 1.02))
        axes[3].axvline(threshold, color="black", ls="--", lw=0.8)
        axes[3].set(xlabel="dot selectivity (sd)", ylabel="density")
        for ax, letter in zip(axes, "abcd", strict=True):
            panel_label(ax, letter)
    return figure
