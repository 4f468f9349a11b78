"""Each test neuron's predicted against its recorded responses to the held-out images (a grid, best to worst), and
each model's accuracy against the neuron's noise ceiling."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from compactcortex.evaluate import MODELS, held_out_responses
from compactcortex.figures.style import FULL_WIDTH, MODEL_COLOURS, MODEL_LABELS, panel_label, paper_style
from compactcortex.io.predictions import read_predictions
from compactcortex.io.tables import read_table, read_tables

GRID_COLUMNS = 8
PANEL_HEIGHT = 0.95  # inches per row of the grid
GRID_MODELS = ("ensemble", "compact")  # drawn in each neuron's panel, where the session has them


@dataclass
class NeuronPanel:
    """One neuron's held-out images: its recorded repeat means and each model's prediction, and its accuracies."""

    session: str
    neuron: str
    recorded: np.ndarray
    predicted: dict[str, np.ndarray]
    accuracy: dict[str, float]


def neuron_panels(
    evaluations: Mapping[str, str | Path],
    datasets: Mapping[str, str | Path],
    ensemble: Mapping[str, str | Path],
    compact: Mapping[str, str | Path],
) -> tuple[list[NeuronPanel], str]:
    """Every evaluated neuron of the test sessions (each mapping: session -> its file), ordered best to worst by the
    ensemble's held-out accuracy (r2_ER where every session has single trials, else Pearson r; NaN last), and that
    metric's name."""
    table = read_tables(list(evaluations.values()))
    metric = "r2_er" if table["r2_er_ensemble"].notna().all() else "r"  # one metric orders every neuron
    panels = []
    for session, path in evaluations.items():
        evaluation = read_table(path)
        neurons = evaluation["neuron"].to_numpy()
        held = held_out_responses(datasets[session], neurons)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an image without any repeat
            recorded = np.nanmean(held.responses[:, held.held_out], axis=2)
        scale = held.response_scale()  # the models' z-scores back to spike counts, as recorded
        z_scored = {"ensemble": read_predictions(ensemble[session], neurons)[0].mean(axis=0)}
        if session in compact:
            z_scored["compact"] = read_predictions(compact[session], neurons)[0][0]
        predicted = {model: scale.to_responses(values.T).T[:, held.held_out] for model, values in z_scored.items()}
        for i, row in enumerate(evaluation.itertuples()):
            panels.append(
                NeuronPanel(
                    session=session,
                    neuron=str(row.neuron),
                    recorded=recorded[i],
                    predicted={model: values[i] for model, values in predicted.items()},
                    accuracy={
                        model: float(getattr(row, f"{metric}_{model}"))
                        for model in predicted
                        if f"{metric}_{model}" in evaluation
                    },
                )
            )
    order = sorted(range(len(panels)), key=lambda i: _rank_key(panels[i].accuracy.get("ensemble", math.nan)))
    return [panels[i] for i in order], metric


def _rank_key(value: float) -> tuple[bool, float]:
    return (not np.isfinite(value), -value if np.isfinite(value) else 0.0)


def predictions_figure(panels: list[NeuronPanel], metric: str) -> plt.Figure:
    """One small scatter per neuron, best to worst: recorded repeat mean (x) against each model's prediction (y)."""
    name = "$R^2_{ER}$" if metric == "r2_er" else "r"
    rows = max(1, math.ceil(len(panels) / GRID_COLUMNS))
    with paper_style():
        figure, axes = plt.subplots(
            rows,
            GRID_COLUMNS,
            figsize=(FULL_WIDTH, 0.5 + PANEL_HEIGHT * rows),
            layout="constrained",
            squeeze=False,
        )
        for ax in axes.flat[len(panels) :]:
            ax.axis("off")
        for ax, panel in zip(axes.flat, panels, strict=False):
            shown = [panel.recorded, *(panel.predicted[m] for m in GRID_MODELS if m in panel.predicted)]
            low, high = np.nanmin([np.nanmin(v) for v in shown]), np.nanmax([np.nanmax(v) for v in shown])
            ax.plot([low, high], [low, high], color="0.7", lw=0.5, zorder=0)  # prediction = recording
            for model in GRID_MODELS:
                if model in panel.predicted and np.isfinite(panel.predicted[model]).any():
                    ax.scatter(panel.recorded, panel.predicted[model], s=2, lw=0, alpha=0.6, color=MODEL_COLOURS[model])
            scores = " ".join(
                f"{MODEL_LABELS[m][0]} {panel.accuracy[m]:.2f}"
                for m in GRID_MODELS
                if m in panel.accuracy and np.isfinite(panel.accuracy[m])
            )
            ax.set_title(f"{panel.neuron}\n{scores}", fontsize=5.5, pad=2)
            ax.tick_params(labelsize=4.5, length=1.5, pad=1)
            ax.locator_params(nbins=3)
        figure.suptitle(
            f"{len(panels)} test neurons, best to worst by the ensemble's {name}: ensemble (e, blue), compact model "
            "(c, orange)",
            fontsize=7,
        )
        figure.supxlabel("recorded repeat mean (spike count), held-out images", fontsize=7)
        figure.supylabel("predicted (spike count; grey: identity)", fontsize=7)
    return figure


def noise_ceiling_figure(evaluations: Mapping[str, str | Path]) -> plt.Figure:
    """(a) Each neuron's r^2 on the held-out half against its noise ceiling (the Spearman-Brown split-half reliability
    of its repeat means, the ceiling of r^2); (b) the noise-corrected accuracy (r2_ER, or r^2 over the ceiling where the
    data have no single trials) against the same ceiling."""
    table = read_tables(list(evaluations.values()))
    models = [m for m in MODELS if f"r_{m}" in table and table[f"r_{m}"].notna().any()]
    ceiling = table["reliability"].to_numpy(dtype=float)
    with paper_style():
        figure, axes = plt.subplots(1, 2, figsize=(FULL_WIDTH, 2.9), layout="constrained")
        for model in models:
            r2 = table[f"r_{model}"].to_numpy(dtype=float) ** 2
            r2_er = table[f"r2_er_{model}"].to_numpy(dtype=float)
            corrected = np.where(np.isfinite(r2_er), r2_er, r2 / ceiling)  # r^2 / ceiling: sessions of repeat means
            style = {"s": 10, "lw": 0, "alpha": 0.75, "color": MODEL_COLOURS[model], "label": MODEL_LABELS[model]}
            axes[0].scatter(ceiling, r2, **style)
            axes[1].scatter(ceiling, corrected, **style)
        top = float(np.nanmax([1.0, *ceiling]))
        axes[0].plot([0, top], [0, top], color="black", lw=0.8, ls="--", label="the ceiling")
        axes[0].set_ylabel("$r^2$ (held-out half)")
        axes[0].set_title(f"{len(table)} test neurons: accuracy against the noise ceiling")
        axes[1].axhline(1.0, color="black", lw=0.8, ls="--")
        single = table["r2_er_ensemble"].notna()
        axes[1].set_ylabel(
            "noise-corrected $R^2_{ER}$"
            if single.all()
            else "$r^2$ / noise ceiling"
            if not single.any()
            else "$R^2_{ER}$ ($r^2$ / ceiling without single trials)"
        )
        axes[1].set_title("the share of the explainable variance explained")
        for ax, letter in zip(axes, "ab", strict=True):
            ax.set_xlabel("noise ceiling (split-half reliability, Spearman-Brown)")
            panel_label(ax, letter)
        axes[0].legend(frameon=False, loc="upper left")
    return figure
