"""The published compact models of Cowley et al. 2023 (``cowleygroup/V4_compact_models``), as stored on disk.

Layout under ``root`` (see ``shared/data/cowley2023/README.md``): ``compact_models_torch/compact_model_<session>_
neuron<i>.pt`` (a float64 state dict) and ``compact_models_nums_filters/compact_model_<session>_neuron<i>.npy``
(the five per-layer filter counts), the session's images in ``images/images_<session>.zip``, and the
interoperability fixture ``reference_predictions.npz``.
"""

from __future__ import annotations

import logging
import math
import pickle
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from compactcortex.errors import InputDataError
from compactcortex.ingest_cowley import cowley_paths, read_image_zip
from compactcortex.models.compact import BN_EPS, IMAGE_SIZE, N_LAYERS, CompactModel

log = logging.getLogger(__name__)
MODEL_NAME = re.compile(r"^compact_model_(\d+)_neuron(\d+)\.pt$")
REFERENCE_KEYS = ("session", "neuron", "image_index", "predictions")


def model_paths(root: str | Path, session: str, neuron: int) -> tuple[Path, Path]:
    """(state dict .pt, filter counts .npy) of one published model."""
    name = f"compact_model_{session}_neuron{int(neuron)}"
    root = Path(root)
    return root / "compact_models_torch" / f"{name}.pt", root / "compact_models_nums_filters" / f"{name}.npy"


def published_models(root: str | Path) -> list[tuple[str, int]]:
    """The (session, neuron) pairs with a published state dict, sorted by session then neuron number."""
    folder = Path(root) / "compact_models_torch"
    if not folder.is_dir():
        return []
    matches = (MODEL_NAME.match(path.name) for path in folder.iterdir())
    return sorted((m.group(1), int(m.group(2))) for m in matches if m)


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


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict of finite tensors, or InputDataError naming the file."""
    if not path.is_file():
        raise InputDataError(path, "no such model file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise InputDataError(path, f"cannot be read as a PyTorch state dict (corrupt or truncated?): {exc}") from exc
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputDataError(path, f"is not a state dict of tensors (got {type(state).__name__})")
    for key, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise InputDataError(path, f"{key} holds non-finite values")
    return dict(state)


def read_filter_counts(path: Path) -> tuple[int, ...]:
    """The five per-layer filter counts of a published model."""
    try:
        counts = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputDataError(path, f"cannot be read as a .npy array of filter counts: {exc}") from exc
    if counts.shape != (N_LAYERS,) or not np.issubdtype(counts.dtype, np.integer) or np.any(counts < 1):
        raise InputDataError(path, f"expected {N_LAYERS} positive integer filter counts, got {counts.dtype} {counts}")
    return tuple(int(c) for c in counts)


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


def read_session_images(root: str | Path, session: str, indices: Sequence[int] | None = None) -> np.ndarray:
    """A session's images, uint8 (n, 112, 112, 3); ``indices`` are the 1-based image numbers (all when None)."""
    path = cowley_paths(root, session)["images"]
    if not path.is_file():
        raise InputDataError(path, "no such image zip")
    images, numbers = read_image_zip(path)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise InputDataError(path, f"expected {IMAGE_SIZE} x {IMAGE_SIZE} RGB images, got {images.shape[1:]}")
    if indices is None:
        return images
    wanted = np.asarray(indices, dtype=np.int64)
    position = {int(n): i for i, n in enumerate(numbers)}
    absent = [int(i) for i in wanted if int(i) not in position]
    if absent:
        raise InputDataError(path, f"has no image{absent[0]:04d}.jpg (image indices are 1-based)")
    return images[[position[int(i)] for i in wanted]]


def read_reference_fixture(path: Path) -> dict[str, np.ndarray]:
    """The fixture: session, neuron (one per model), image_index (1-based), predictions (models x images)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            fixture = {key: archive[key] for key in REFERENCE_KEYS}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        keys = ", ".join(REFERENCE_KEYS)
        raise InputDataError(path, f"cannot be read as the reference predictions ({keys}): {exc}") from exc
    expected = (fixture["session"].size, fixture["image_index"].size)
    if fixture["neuron"].size != expected[0] or fixture["predictions"].shape != expected:
        raise InputDataError(path, f"predictions have shape {fixture['predictions'].shape}, expected {expected}")
    return fixture


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


def published_predictions_job(*, root: str, session: str, dataset: str, output: str) -> None:
    """The published compact models' predictions for a session's images (neuron i is the session's ``_n<i:03d>``),
    written like every other model's predictions, so the same evaluation code scores them."""
    from compactcortex.compact.distill import predict
    from compactcortex.ensemble.jobs import PredictionIndex, write_predictions
    from compactcortex.features import read_images

    numbers = [neuron for name, neuron in published_models(root) if name == session]
    if not numbers:
        raise InputDataError(Path(root), f"holds no published compact models of session {session}")
    images, image_ids = read_images(dataset)
    # float32: the published float64 weights predict the fixture to ~1e-6 in float32, ten times faster on a CPU
    predictions, x = [], None
    for count, number in enumerate(numbers, start=1):
        model = load_published_model(root, session, number, dtype=torch.float32)
        x = model.preprocess(images) if x is None else x  # the published models share the input: preprocessed once
        predictions.append(predict(model, x)[:, 0])
        if count % 10 == 0 or count == len(numbers):
            log.info("%s: %d of %d published models predicted", session, count, len(numbers))
    neuron_ids = np.asarray([f"{session}_n{n:03d}" for n in numbers])
    paths = [model_paths(root, session, n)[0] for n in numbers]
    write_predictions(
        output,
        np.stack(predictions),
        PredictionIndex(session, neuron_ids, image_ids),
        {"root": root},
        [dataset, *paths],
    )
