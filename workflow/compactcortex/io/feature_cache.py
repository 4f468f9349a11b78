"""The feature cache of an image set: the frozen backbone's layers (float16, image order kept) as one torch file,
with the image ids they belong to and the backbone's parameter count up to each layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compactcortex.atomic import save_torch_atomic
from compactcortex.errors import InputDataError


def write_feature_cache(
    path: str | Path,
    *,
    backbone: str,
    input_size: int,
    image_ids: Sequence[str] | np.ndarray,
    layers: Mapping[str, np.ndarray],
    n_parameters: Mapping[str, int],
    provenance: Mapping[str, Any],
) -> None:
    save_torch_atomic(
        {
            "backbone": backbone,
            "input_size": input_size,
            "image_ids": [str(image) for image in image_ids],
            "layers": {layer: torch.from_numpy(values).to(torch.float16) for layer, values in layers.items()},
            "n_parameters": dict(n_parameters),
            "provenance": dict(provenance),
        },
        path,
    )


def _open(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # only the layer used is read
    except FileNotFoundError as exc:
        raise InputDataError(path, "feature cache not found") from exc
    except Exception as exc:  # torch raises RuntimeError/EOFError/UnpicklingError for corrupt files
        raise InputDataError(path, f"cannot be read as a feature cache (corrupt or truncated?): {exc}") from exc


def load_features(path: str | Path, layer: str, image_ids: np.ndarray | None = None) -> torch.Tensor:
    """Read one layer of a session's cached features, checking they belong to the session's images."""
    path = Path(path)
    cached = _open(path)
    if layer not in cached.get("layers", {}):
        raise InputDataError(path, f"holds no features of layer '{layer}' (has: {', '.join(cached.get('layers', {}))})")
    features = cached["layers"][layer]
    if image_ids is not None and list(cached["image_ids"]) != [str(image) for image in image_ids]:
        raise InputDataError(path, "features were computed for other images than the session's (stale cache?)")
    return features


def backbone_parameters(path: str | Path, layer: str) -> int:
    """The backbone's parameters up to ``layer`` (the ensemble counts them once)."""
    return int(_open(Path(path))["n_parameters"][layer])


def feature_sets(path: str | Path, layers: Sequence[str], image_ids: np.ndarray) -> dict[str, np.ndarray]:
    """Flattened (image, feature) float64 matrices of the requested layers, for ridge regression."""
    return {layer: load_features(path, layer, image_ids).flatten(1).numpy().astype(np.float64) for layer in layers}
