"""The ensemble's training curves: each member's training loss and validation score per epoch, its best epoch (the
one kept) marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from compactcortex.figures.style import FULL_WIDTH, panel_label, paper_style


def training_curves_figure(members: Sequence[Mapping[str, Any]]) -> plt.Figure:
    """``members``: each member's saved fields (``member``, ``history``: one entry per epoch with ``epoch``,
    ``train_loss`` and ``validation_score``, and ``best_epoch``)."""
    colours = plt.get_cmap("Blues")(np.linspace(0.45, 0.95, max(len(members), 1)))
    with paper_style():
        figure, axes = plt.subplots(1, 2, figsize=(FULL_WIDTH, 2.6), layout="constrained")
        for member, colour in zip(members, colours, strict=True):
            history = member["history"]
            epochs = [entry["epoch"] for entry in history]
            label = f"member {member.get('member', '?')}"
            for ax, key in zip(axes, ("train_loss", "validation_score"), strict=True):
                values = [entry[key] for entry in history]
                ax.plot(epochs, values, marker="o", ms=2.5, lw=1, color=colour, label=label)
                best = [v for e, v in zip(epochs, values, strict=True) if e == member.get("best_epoch")]
                if best:
                    ax.scatter([member["best_epoch"]], best, s=40, facecolor="none", edgecolor="black", lw=0.8)
        axes[0].set_ylabel("loss (MSE, z-scored)")
        axes[0].set_title("training: mean loss per epoch")
        axes[1].set_ylabel("median held-out accuracy")
        axes[1].set_title("validation score (circled: the epoch kept)")
        for ax, letter in zip(axes, "ab", strict=True):
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
            panel_label(ax, letter)
        axes[1].legend(frameon=False, fontsize=6, ncols=2 if len(members) > 6 else 1)
    return figure
