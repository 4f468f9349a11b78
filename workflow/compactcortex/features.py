"""Frozen backbone features of an image set, computed once per image set and cached (``io.feature_cache``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from compactcortex.backbones import Backbone, load_backbone


def feature_layers(features: Mapping[str, Any]) -> list[str]:
    """The ensemble's layer followed by the task-driven baseline's candidate layers, without repeats."""
    return list(dict.fromkeys([features["layer"], *features["baseline_layers"]]))


def compute_features(
    images: np.ndarray, features: Mapping[str, Any], layers: Sequence[str], device: str
) -> tuple[Backbone, dict[str, np.ndarray]]:
    """The backbone named by the config's ``features`` section, and its ``layers`` for ``images`` (uint8)."""
    backbone = load_backbone(features["backbone"], features.get("weights_path"))
    extracted = backbone.extract(
        images,
        list(layers),
        input_size=features["input_size"],
        batch_size=features["batch_size"],
        device=device,
        progress=True,
    )
    return backbone, extracted
