"""A page per compact model for the report: its filters per layer, its layer-0 filters as images, the images
synthesised for it (maximizing, most-driving natural, minimizing, adversarial), and its fidelity and accuracy.

A run has dozens to hundreds of compact models, so a page is cheap to draw: five axes at fixed places (no layout
engine), the images of each part tiled into one picture."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from compactcortex.figures.style import MODEL_COLOURS, paper_style
from compactcortex.io.stimulus_sets import ADVERSARIAL_DOWN, ADVERSARIAL_UP, MAXIMIZING, MINIMIZING, NATURAL_TOP

PAGE_SIZE = (7.2, 5.8)  # inches; pages are saved at screen resolution
IMAGE_ROWS = (
    (MAXIMIZING, "maximizing"),
    (NATURAL_TOP, "most-driving natural"),
    (MINIMIZING, "minimizing"),
)
MAX_IMAGE_COLUMNS = 8  # images of each kind shown at most (ordered by the model's response)
ADVERSARIAL_PAIRS = 3  # adversarial images shown of each direction, each after its source
GAP, LABEL_BAND = 0.15, 0.45  # between tiles, and under each tile for its label (in tiles)


@dataclass
class CompactModelPage:
    """What a compact model's page shows. ``early_filters`` (filter, 3, k, k): the layer-0 kernels, signed by their
    BatchNorm scale; ``stimuli``: the stimulus set's rows of this neuron (image, stimulus, source) and the sources of
    its adversarial images, each with ``index`` (into ``images``) and ``response`` (the model's prediction)."""

    session: str
    neuron: str
    filters: Sequence[int]
    filters_initial: Sequence[int]
    early_filters: np.ndarray
    images: np.ndarray
    stimuli: pd.DataFrame
    scores: Mapping[str, float | None] = field(default_factory=dict)


def filter_image(kernel: np.ndarray) -> np.ndarray:
    """A (3, k, k) kernel as an RGB image: 0.5 grey at zero, each filter scaled to its own largest weight."""
    scale = float(np.abs(kernel).max()) or 1.0
    return np.clip(0.5 + 0.5 * np.moveaxis(kernel, 0, -1) / scale, 0.0, 1.0)


@dataclass
class Tile:
    """An image placed in a mosaic, with the label written under it."""

    image: np.ndarray  # (h, w, 3): uint8, or float in 0..1
    label: str = ""
    colour: str = "black"


def mosaic(rows: Sequence[Sequence[Tile | None]], labels: bool = True) -> tuple[np.ndarray, list[tuple]]:
    """Tiles of one size as one white picture (row by row; None leaves a place empty), and where each label goes:
    (x, y, text, colour) in the picture's pixels."""
    size = next(tile.image.shape[0] for row in rows for tile in row if tile is not None)
    gap, band = round(GAP * size) or 1, round(LABEL_BAND * size) if labels else 0
    columns = max(len(row) for row in rows)
    height, width = len(rows) * (size + band + gap), columns * (size + gap)
    picture = np.ones((height, width, 3))
    places = []
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            if tile is None:
                continue
            y, x = r * (size + band + gap), c * (size + gap)
            image = tile.image.astype(float) / 255.0 if tile.image.dtype == np.uint8 else tile.image
            picture[y : y + size, x : x + size] = image
            if labels and tile.label:
                places.append((x + size / 2, y + size + band * 0.1, tile.label, tile.colour))
    return picture, places


def _show(ax: plt.Axes, picture: np.ndarray, places: list[tuple], title: str) -> None:
    ax.imshow(picture, interpolation="nearest")
    ax.set_anchor("W")
    for x, y, text, colour in places:
        ax.text(x, y, text, ha="center", va="top", fontsize=6, color=colour)
    ax.set_title(title, fontsize=8, pad=3, loc="left")
    ax.axis("off")


def _score_text(page: CompactModelPage) -> str:
    def number(key: str, form: str = "{:.3f}") -> str:
        value = page.scores.get(key)
        return "n/a" if value is None or not np.isfinite(value) else form.format(value)

    return "\n".join(
        [
            f"{page.neuron}  (session {page.session})",
            f"parameters: {number('n_parameters', '{:,.0f}')}",
            f"filters per layer: {', '.join(map(str, page.filters))}",
            f"  (before pruning: {', '.join(map(str, page.filters_initial))})",
            "",
            "fidelity $r^2$ to the ensemble:",
            f"  {number('fidelity_r2')} pruned, {number('fidelity_r2_unpruned')} unpruned",
            "held-out accuracy, compact | ensemble:",
            f"  $R^2_{{ER}}$ {number('r2_er')} | {number('r2_er_ensemble')}",
            f"  r {number('r')} | {number('r_ensemble')}",
            f"noise ceiling: {number('reliability')}",
        ]
    )


def _image_rows(page: CompactModelPage) -> tuple[list[list[Tile]], list[str]]:
    rows, names = [], []
    for kind, name in IMAGE_ROWS:
        chosen = page.stimuli[page.stimuli["stimulus"] == kind]
        chosen = chosen.sort_values("response", ascending=kind == MINIMIZING).head(MAX_IMAGE_COLUMNS)
        if len(chosen):
            pairs = zip(chosen["index"], chosen["response"], strict=True)
            rows.append([Tile(page.images[int(index)], f"{response:.2f}") for index, response in pairs])
            names.append(name)
    return rows, names


def _adversarial_row(page: CompactModelPage) -> list[Tile | None]:
    by_image = page.stimuli.set_index("image")
    row: list[Tile | None] = []
    for kind, arrow, colour in ((ADVERSARIAL_UP, "up", "compact"), (ADVERSARIAL_DOWN, "down", "ensemble")):
        for _, made in page.stimuli[page.stimuli["stimulus"] == kind].head(ADVERSARIAL_PAIRS).iterrows():
            source = by_image.loc[made["source"]] if made["source"] in by_image.index else None
            row.append(None if source is None else Tile(page.images[int(source["index"])], f"{source['response']:.2f}"))
            row.append(Tile(page.images[int(made["index"])], f"{arrow} {made['response']:.2f}", MODEL_COLOURS[colour]))
    return row


def compact_model_figure(page: CompactModelPage) -> plt.Figure:
    with paper_style():
        figure = plt.figure(figsize=PAGE_SIZE)
        text = figure.add_axes((0.01, 0.66, 0.40, 0.32))
        text.axis("off")
        text.text(0, 1, _score_text(page), va="top", ha="left", fontsize=7, linespacing=1.35)

        bars = figure.add_axes((0.47, 0.71, 0.22, 0.22))
        layers = np.arange(len(page.filters))
        bars.bar(layers, page.filters_initial, color="#dddddd")
        bars.bar(layers, page.filters, color=MODEL_COLOURS["compact"])
        bars.set_xticks(layers)
        bars.set_xlabel("layer", labelpad=1)
        bars.set_ylabel("filters", labelpad=1)
        bars.set_title("filters per layer (grey: before pruning)", fontsize=8)

        kernels = page.early_filters
        columns = int(np.ceil(np.sqrt(max(len(kernels), 1))))
        grid = [[Tile(filter_image(k)) for k in kernels[i : i + columns]] for i in range(0, len(kernels), columns)]
        filters = figure.add_axes((0.76, 0.68, 0.23, 0.26))
        _show(filters, *mosaic(grid, labels=False), f"layer-0 filters ({len(kernels)})")

        rows, names = _image_rows(page)
        images = figure.add_axes((0.17, 0.25, 0.82, 0.38))
        if rows:
            picture, places = mosaic(rows)
            _show(images, picture, places, "synthesised and natural images (under each: the model's response)")
            step = picture.shape[0] / len(rows)
            for r, name in enumerate(names):
                images.text(-0.15 * step, (r + 0.3) * step, name, ha="right", va="center", fontsize=7)
        else:
            images.axis("off")

        adversarial = _adversarial_row(page)
        ax = figure.add_axes((0.17, 0.01, 0.82, 0.19))
        if any(tile is not None for tile in adversarial):
            _show(ax, *mosaic([adversarial]), "adversarial images, each after its source (a few pixel values changed)")
        else:
            ax.axis("off")
    return figure
