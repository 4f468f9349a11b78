"""Frozen backbone features of an image set, computed once and cached (a rule output per image set)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from compactcortex.atomic import save_torch_atomic
from compactcortex.backbones import load_backbone
from compactcortex.errors import InputDataError
from compactcortex.provenance import provenance_attrs

log = logging.getLogger(__name__)


def feature_layers(features: Mapping[str, Any]) -> list[str]:
    """The ensemble's layer followed by the task-driven baseline's candidate layers, without repeats."""
    return list(dict.fromkeys([features["layer"], *features["baseline_layers"]]))


def read_images(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The images and image ids of a session dataset or a candidate pool (any dataset with `images`)."""
    path = Path(path)
    try:
        with xr.open_dataset(path, engine="netcdf4") as dataset:
            return dataset["images"].values, dataset["image"].values.astype(str)
    except (OSError, KeyError, ValueError) as exc:
        raise InputDataError(path, f"cannot read images from it: {exc}") from exc


def extract_features(
    images_path: str | Path,
    output_path: str | Path,
    *,
    features: Mapping[str, Any],
    device: str,
    layers: Sequence[str] | None = None,
) -> None:
    """Run the frozen backbone over an image set and cache its layers (float16, image order kept); ``layers``
    defaults to the ensemble's and the baseline's."""
    images, image_ids = read_images(images_path)
    backbone = load_backbone(features["backbone"], features.get("weights_path"))
    layers = list(layers) if layers else feature_layers(features)
    extracted = backbone.extract(
        images,
        layers,
        input_size=features["input_size"],
        batch_size=features["batch_size"],
        device=device,
        progress=True,
    )
    save_torch_atomic(
        {
            "backbone": features["backbone"],
            "input_size": features["input_size"],
            "image_ids": [str(image) for image in image_ids],
            "layers": {layer: torch.from_numpy(values).to(torch.float16) for layer, values in extracted.items()},
            "n_parameters": {layer: backbone.n_parameters(layer) for layer in layers},
            "provenance": provenance_attrs({"features": dict(features)}, [images_path]),
        },
        output_path,
    )
    shapes = ", ".join(f"{layer} {tuple(values.shape[1:])}" for layer, values in extracted.items())
    log.info("%s: %d images -> %s", output_path, len(image_ids), shapes)


def backbone_parameters(features_path: str | Path, layer: str) -> int:
    cached = torch.load(features_path, map_location="cpu", weights_only=True, mmap=True)  # reads only what is used
    return int(cached["n_parameters"][layer])


def feature_sets(features_path: str | Path, layers: Sequence[str], image_ids: np.ndarray) -> dict[str, np.ndarray]:
    """Flattened (image, feature) float64 matrices of the requested layers, for ridge regression."""
    from compactcortex.ensemble.data import load_features

    return {
        layer: load_features(features_path, layer, image_ids).flatten(1).numpy().astype(np.float64) for layer in layers
    }
