"""Stimulus sets: the images a next recording session shows, as a folder a rig can load.

* A synthesised stimulus set (``synthesis/<session>/stimulus_set/``): ``stimuli.nc`` (an image set whose images
  carry ``neuron``, ``source`` and ``predicted``), the images as PNGs, ``manifest.csv`` (one row per image: image,
  stimulus, neuron, source, predicted, file) and ``predictions.nc`` (every compact model's prediction for every
  image). A chunk of it (one compression job's neurons) is the ``stimuli.nc`` part alone.
* The active-learning set (``active_learning/stimulus_set/``): the chosen images as PNGs and ``manifest.csv``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from compactcortex.atomic import atomic_directory, atomic_path
from compactcortex.io.image_sets import read_image_coords, read_images, write_image_set
from compactcortex.io.predictions import Indexed, write_predictions
from compactcortex.io.tables import write_table

# What each image of a synthesised stimulus set is (its ``stimulus``)
CONTROL = "control"
MAXIMIZING, MINIMIZING, NATURAL_TOP = "maximizing", "minimizing", "natural_top"
ADVERSARIAL_UP, ADVERSARIAL_DOWN = "adversarial_up", "adversarial_down"
PER_IMAGE = ("neuron", "source", "predicted")
STIMULI, MANIFEST, PREDICTIONS = "stimuli.nc", "manifest.csv", "predictions.nc"


def write_stimuli(
    path: str | Path,
    images: np.ndarray,
    image_ids: np.ndarray,
    stimulus: np.ndarray,
    per_image: Mapping[str, np.ndarray],
    attrs: Mapping[str, str],
) -> None:
    """Images (uint8, n, H, W, 3), each with its id, what it is (``stimulus``) and ``neuron``, ``source`` and
    ``predicted`` (``per_image``)."""
    missing = [key for key in PER_IMAGE if key not in per_image]
    if missing:
        raise ValueError(f"a stimulus set needs {', '.join(missing)} per image")
    write_image_set(path, images, image_ids, stimulus, attrs, extra_coords={key: per_image[key] for key in PER_IMAGE})


def read_stimuli(path: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """(images, table) of a stimulus image set (a chunk's file, or a set's ``stimuli.nc``; a set's folder also
    serves): one row per image (image, stimulus, neuron, source, predicted)."""
    path = Path(path)
    if path.is_dir():
        path = path / STIMULI
    images, image_ids = read_images(path)
    coords = read_image_coords(path, ["image_type", *PER_IMAGE], kind="a stimulus set")
    table = pd.DataFrame(
        {"image": image_ids, "stimulus": coords["image_type"].astype(str), **{k: coords[k] for k in PER_IMAGE}}
    )
    table["neuron"] = table["neuron"].astype(str)
    table["source"] = table["source"].astype(str).replace("nan", "")
    return images, table


def save_png_images(folder: Path, images: Sequence[np.ndarray] | np.ndarray, files: Sequence[str]) -> None:
    """Each uint8 (H, W, 3) image as a PNG at ``folder / file``."""
    for image, name in zip(images, files, strict=True):
        Image.fromarray(image).save(folder / name)


def write_stimulus_set(
    folder: str | Path,
    images: np.ndarray,
    table: pd.DataFrame,
    attrs: Mapping[str, str],
    predictions: np.ndarray,
    index: Indexed,
    prediction_inputs: Sequence[str],
) -> None:
    """A synthesised stimulus set, written as a whole or not at all; its manifest is ``table`` with the PNG ``file``
    column. ``predictions`` (model neuron, image) is indexed by ``index``."""
    table = table.assign(file=[f"images/{image}.png" for image in table["image"]])
    with atomic_directory(folder) as temporary:
        (temporary / "images").mkdir()
        save_png_images(temporary, images, table["file"])
        per_image = {key: table[key].to_numpy() for key in PER_IMAGE}
        write_stimuli(
            temporary / STIMULI, images, table["image"].to_numpy(), table["stimulus"].to_numpy(), per_image, attrs
        )
        write_predictions(temporary / PREDICTIONS, predictions, index, {"session": index.session}, prediction_inputs)
        with atomic_path(temporary / MANIFEST) as manifest:
            table.to_csv(manifest, index=False, float_format="%.6g")


def write_active_learning_set(folder: str | Path, images: np.ndarray, table: pd.DataFrame) -> None:
    """The chosen images as ``images/active<rank>.png`` and ``manifest.csv`` (``table`` with the ``file`` column
    after ``rank``), written as a whole or not at all."""
    table = table.copy()
    table.insert(1, "file", [f"images/active{rank:04d}.png" for rank in table["rank"]])
    with atomic_directory(folder) as temporary:
        (temporary / "images").mkdir()
        save_png_images(temporary, images, table["file"])
        write_table(temporary / MANIFEST, table)
