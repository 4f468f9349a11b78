"""The published compact models of Cowley et al. 2023 (``cowleygroup/V4_compact_models``) as compact models of this
pipeline, and the check that they reproduce the published predictions (files: ``io.cowley2023``)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from compactcortex.errors import InputDataError
from compactcortex.io.cowley2023 import model_paths
from compactcortex.io.cowley2023_models import (
    read_filter_counts,
    read_reference_fixture,
    read_session_images,
    read_state_dict,
)
from compactcortex.models.compact import BN_EPS, N_LAYERS, CompactModel

log = logging.getLogger(__name__)


def load_published_model(
    root: str | Path, session: str, neuron: int, dtype: torch.dtype = torch.float64, bn_eps: float = BN_EPS
) -> CompactModel:
    """The published compact model of one neuron, in eval mode, its filter counts checked against the .npy file."""
    pt_path, npy_path = model_paths(root, session, neuron)
    state = read_state_dict(pt_path)
    filters, image_size, n_outputs = _architecture(pt_path, state)
    expected = read_filter_counts(npy_path)
    if filters != expected:
        raise InputDataError(npy_path, f"filter counts {list(expected)} disagree with {pt_path.name}'s {list(filters)}")
    model = CompactModel(filters, image_size=image_size, n_outputs=n_outputs, bn_eps=bn_eps).to(dtype)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InputDataError(pt_path, f"does not match the compact model architecture: {exc}") from exc
    return model.eval()


def _architecture(path: Path, state: Mapping[str, torch.Tensor]) -> tuple[tuple[int, ...], int, int]:
    """(filters, image_size, n_outputs) implied by a state dict's shapes."""
    names = ["layers.layer0_conv.weight"] + [f"layers.layer{k}_conv_point.weight" for k in range(1, N_LAYERS)]
    missing = [name for name in [*names, "layers.Beta.weight"] if name not in state]
    if missing:
        raise InputDataError(path, f"is not a published compact model: missing {missing}")
    filters = tuple(int(state[name].shape[0]) for name in names)
    n_outputs, n_inputs = (int(n) for n in state["layers.Beta.weight"].shape)
    side = math.isqrt(n_inputs // filters[-1])
    if side * side * filters[-1] != n_inputs:
        raise InputDataError(path, f"readout size {n_inputs} is not a square map of {filters[-1]} channels")
    return filters, 4 * side, n_outputs


def reference_predictions(
    root: str | Path, bn_eps: float = BN_EPS, dtype: torch.dtype = torch.float64
) -> tuple[np.ndarray, np.ndarray]:
    """(computed, stored) outputs of the fixture's models on its images, shape (models, images), computed in
    ``dtype`` and returned as float64."""
    fixture = read_reference_fixture(Path(root) / "reference_predictions.npz")
    inputs: dict[str, torch.Tensor] = {}
    computed = np.empty(fixture["predictions"].shape, dtype=np.float64)
    for row, (session_id, neuron) in enumerate(zip(fixture["session"], fixture["neuron"], strict=True)):
        session = str(session_id)
        model = load_published_model(root, session, int(neuron), dtype=dtype, bn_eps=bn_eps)
        if session not in inputs:  # decode each session's zip once
            inputs[session] = model.preprocess(read_session_images(root, session, fixture["image_index"]))
        with torch.no_grad():
            computed[row] = model(inputs[session])[:, 0].double().numpy()
    return computed, fixture["predictions"].astype(np.float64)


def reproduce_reference(root: str | Path) -> float:
    """Max absolute difference between our float64 outputs of the published models and the stored fixture."""
    computed, stored = reference_predictions(root)
    return float(np.max(np.abs(computed - stored)))
