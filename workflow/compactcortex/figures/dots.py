"""Figure 4: a dot-detecting compact model: which models prefer dots, its preferred stimuli, its tuning to the dots'
number, size, spacing and contrast, and the few consolidation-step channels that carry the preference."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from compactcortex.figures.style import FULL_WIDTH, MODEL_COLOURS, panel_label, paper_style
from compactcortex.io.stimulus_sets import MAXIMIZING, read_stimuli
from compactcortex.io.tables import read_table
from compactcortex.stimuli import DOT_FACTORS

FACTOR_LABELS = {
    "number": "dots",
    "radius": "dot radius (pixels)",
    "spacing": "spacing (pixels)",
    "contrast": "contrast",
}


def dots_figure(
    selectivity: str | Path,
    tuning: str | Path,
    ablation: str | Path,
    stimulus_sets: Sequence[str | Path],
    threshold: float,
) -> plt.Figure:
    selectivity_table = read_table(selectivity).sort_values("dot_selectivity", ascending=False).reset_index(drop=True)
    ablation_table = read_table(ablation)
    neuron = ablation_table["neuron"].iloc[0]
    tuning_table = read_table(tuning)
    tuning_table = tuning_table[tuning_table["neuron"] == neuron]
    with paper_style():
        figure = plt.figure(figsize=(FULL_WIDTH, 5.0), layout="constrained")
        spec = figure.add_gridspec(2, 4, height_ratios=[1, 1])
        ax = figure.add_subplot(spec[0, :2])
        kinds = selectivity_table["true_kind"].fillna("").astype(str)
        colours = np.where(kinds == "dot", MODEL_COLOURS["compact"], "#9e9e9e")
        ax.bar(selectivity_table.index, selectivity_table["dot_selectivity"], color=colours)
        ax.axhline(threshold, color="black", ls="--", lw=0.8, label=f"threshold ({threshold} sd)")
        ax.set_xticks([])
        simulated = (kinds != "").any()
        ax.set_xlabel("compact models" + (" (coloured: true dot neurons)" if simulated else ""))
        ax.set_ylabel("dot selectivity\n(sd of natural responses)")
        ax.legend(frameon=False)
        ax.set_title(f"{int(selectivity_table['dot_selective'].sum())} dot-selective models; {neuron} analysed")
        panel_label(ax, "a")

        ax = figure.add_subplot(spec[0, 2])
        for folder in stimulus_sets:
            images, table = read_stimuli(Path(folder) / "stimuli.nc")
            mine = table[(table["neuron"] == neuron) & (table["stimulus"] == MAXIMIZING)]
            if len(mine):
                ax.imshow(images[mine["predicted"].idxmax()])
                ax.set_title(f"{neuron}: maximizing image", fontsize=7)
                break
        ax.set_xticks([])
        ax.set_yticks([])
        panel_label(ax, "b")

        ax = figure.add_subplot(spec[0, 3])
        rows = ablation_table.reset_index(drop=True)
        colours = ["black"] + ["#9e9e9e"] * (len(rows) - 3) + [MODEL_COLOURS["compact"], MODEL_COLOURS["ensemble"]]
        ax.barh(range(len(rows)), rows["dot_selectivity"], color=colours[: len(rows)])
        ax.set_yticks(range(len(rows)), rows["silenced"], fontsize=6)
        ax.invert_yaxis()
        ax.set_xlabel("dot selectivity (sd)")
        ax.set_title(f"silencing layer {rows['layer'].iloc[0]} channels", fontsize=8)
        panel_label(ax, "d")

        for i, factor in enumerate(DOT_FACTORS):
            ax = figure.add_subplot(spec[1, i])
            values = tuning_table[tuning_table["factor"] == factor].sort_values("value")
            ax.plot(values["value"], values["response_z"], marker="o", ms=3, color=MODEL_COLOURS["compact"])
            ax.axhline(0, color="#8c8c8c", lw=0.8, ls=":")
            ax.set_xlabel(FACTOR_LABELS[factor])
            if i == 0:
                ax.set_ylabel("predicted response\n(sd above natural mean)")
                panel_label(ax, "c")
    return figure
