"""What every figure shares: a paper-size style, model colours, and saving as PNG and PDF atomically."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on a cluster node

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from compactcortex.atomic import atomic_path  # noqa: E402

# A two-column paper figure is about 7 inches wide; fonts stay readable at that size.
FULL_WIDTH = 7.2
STYLE = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "pdf.fonttype": 42,  # editable text in the PDF
}
MODEL_COLOURS = {
    "task_driven": "#8c8c8c",
    "ensemble": "#1f5aa6",
    "compact": "#d9541e",
    "published_compact": "#7b3294",
}
MODEL_LABELS = {
    "task_driven": "task-driven",
    "ensemble": "ensemble",
    "compact": "compact",
    "published_compact": "published compact",
}


@contextmanager
def paper_style() -> Iterator[None]:
    with plt.rc_context(STYLE):
        yield


def panel_label(ax: plt.Axes, letter: str) -> None:
    ax.text(-0.12, 1.06, letter, transform=ax.transAxes, fontsize=10, fontweight="bold", va="bottom", ha="right")


def save_figure(figure: Figure, png: str | Path, pdf: str | Path) -> None:
    """Write the figure as PNG and PDF (each atomically) and close it."""
    for path, kind in ((png, "png"), (pdf, "pdf")):
        with atomic_path(path) as temporary:
            # no creation date: the same figure gives the same bytes (make verify)
            metadata = {"CreationDate": None} if kind == "pdf" else None
            figure.savefig(temporary, format=kind, bbox_inches="tight", metadata=metadata)
    plt.close(figure)


def save_png(figure: Figure, path: str | Path, dpi: float = 100) -> None:
    """Write a figure laid out by hand as a PNG only (a report page: at screen resolution and drawn once, cheap for
    many pages), atomically, and close it."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=dpi)
    plt.close(figure)
