"""The ensemble on disk: a trained member (``member<k>.pt``: its core and readouts with its architecture, history and
provenance), the per-epoch training checkpoint a killed job resumes from, and a session's fitted mappings
(``readouts.pt``: one mapping per member from the embedding to the session's neurons, with the response scale of
their z-scored outputs; tensors only, never pickled objects)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compactcortex.atomic import save_torch_atomic
from compactcortex.errors import InputDataError
from compactcortex.models.ensemble import CoreShape, FactorisedReadout, Member
from compactcortex.response_scale import ResponseScale
from compactcortex.ridge import RidgeModel

log = logging.getLogger(__name__)

Mapping_ = Callable[[torch.Tensor], np.ndarray]  # embedding (image, C, h, w) -> predictions (neuron, image)


def save_member(path: str | Path, contents: Mapping[str, Any]) -> None:
    """A trained member: ``contents`` holds its ``shape`` (``CoreShape.as_dict()``), ``state_dict`` and
    ``neurons_per_session`` (what ``load_member`` rebuilds it from), and its history, scores, parameter counts and
    provenance."""
    missing = [key for key in ("shape", "state_dict", "neurons_per_session") if key not in contents]
    if missing:
        raise ValueError(f"a member's file needs {', '.join(missing)}")
    save_torch_atomic(dict(contents), path)


def embedding_hw(state_dict: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    """The embedding's spatial size, read off a readout's spatial weights."""
    spatial = next(tensor for name, tensor in state_dict.items() if name.endswith(".spatial"))
    return int(spatial.shape[1]), int(spatial.shape[2])


def read_member(path: str | Path) -> dict[str, Any]:
    """A member's saved fields (tensors and plain values only). The file is memory-mapped: a caller that reads only
    its provenance, history or parameter counts does not read its weights."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except FileNotFoundError as exc:
        raise InputDataError(path, "ensemble member not found") from exc
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        raise InputDataError(path, f"cannot be read as an ensemble member (corrupt or truncated?): {exc}") from exc


def load_member(path: str | Path, device: str = "cpu") -> Member:
    """A trained member, ready to embed features (eval mode)."""
    saved = read_member(path)
    try:
        member = Member(CoreShape(**saved["shape"]), saved["neurons_per_session"], embedding_hw(saved["state_dict"]))
        member.load_state_dict(saved["state_dict"])
    except Exception as exc:  # noqa: BLE001 - a state dict that does not fit its architecture
        raise InputDataError(Path(path), f"cannot be rebuilt as an ensemble member: {exc}") from exc
    return member.to(device).eval()


def ensemble_parameters(members: Sequence[Mapping[str, Any]]) -> int:
    """The ensemble's parameters as the paper counts them: the backbone up to the feature layer, once, plus every
    member's trainable core (``members``: as ``read_member`` returns them)."""
    return int(members[0]["n_parameters_backbone"] + sum(member["n_parameters_core"] for member in members))


def write_training_checkpoint(path: str | Path, checkpoint: Mapping[str, Any]) -> None:
    """Written atomically after every epoch: a kill leaves the previous epoch's checkpoint intact."""
    save_torch_atomic(dict(checkpoint), path)


def read_training_checkpoint(path: str | Path) -> dict[str, Any] | None:
    """The checkpoint, or None where it cannot be read (a job then trains from the start)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint means: start again
        log.warning("%s: unreadable checkpoint (%s); training from the start", path, exc)
        return None


READOUTS_FORMAT = "compactcortex.readouts/2"
RIDGE_ARRAYS = ("weights", "intercept", "alpha", "feature_mean", "feature_scale")


def save_readouts(
    path: str | Path,
    method: str,
    neuron_ids: Sequence[str],
    readouts: Sequence[FactorisedReadout | RidgeModel],
    scale: ResponseScale,
) -> None:
    """A session's mappings, one per member (factorised readouts or ridge models), and the response scale of their
    z-scored outputs: tensors, strings and lists only, so the file loads with ``weights_only=True`` (no pickle)."""
    save_torch_atomic(
        {
            "format": READOUTS_FORMAT,
            "method": method,
            "neuron_ids": [str(n) for n in neuron_ids],
            "readouts": [_readout_tensors(readout) for readout in readouts],
            "response_mean": torch.as_tensor(scale.mean, dtype=torch.float64),
            "response_sd": torch.as_tensor(scale.sd, dtype=torch.float64),
            "response_units": scale.units,
        },
        path,
    )


def _readout_tensors(readout: FactorisedReadout | RidgeModel) -> dict[str, Any]:
    if isinstance(readout, FactorisedReadout):
        return {key: value.detach().cpu() for key, value in readout.state_dict().items()}
    arrays = {key: torch.from_numpy(np.asarray(getattr(readout, key), dtype=np.float64)) for key in RIDGE_ARRAYS}
    return {**arrays, "feature_set": readout.feature_set or ""}


def _read_readouts(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputDataError(path, "session readouts not found")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        raise InputDataError(
            path,
            f"cannot be read as session readouts (corrupt or truncated, or written by a version before "
            f"{READOUTS_FORMAT}: rerun rule map_session): {exc}",
        ) from exc
    if not isinstance(saved, dict) or saved.get("format") != READOUTS_FORMAT:
        found = saved.get("format") if isinstance(saved, dict) else type(saved).__name__
        raise InputDataError(path, f"unknown readouts format {found!r} (expected {READOUTS_FORMAT!r})")
    return saved


def readout_neurons(path: str | Path) -> list[str]:
    """The neurons a session's mappings predict, in their order."""
    return list(_read_readouts(Path(path))["neuron_ids"])


def read_response_scale(path: str | Path) -> ResponseScale:
    """The fit half's mean and sd of each neuron, in the units the mappings' z-scores map back to."""
    saved = _read_readouts(Path(path))
    return ResponseScale(saved["response_mean"].numpy(), saved["response_sd"].numpy(), saved["response_units"])


def load_readouts(path: str | Path) -> list[Mapping_]:
    """The fitted mappings of a session, one callable per member: embedding (image, C, h, w) -> (neuron, image)."""
    saved = _read_readouts(Path(path))
    if saved["method"] == "ridge":
        models = [_ridge_model(state) for state in saved["readouts"]]
        return [
            lambda embedding, model=model: model.predict(embedding.flatten(1).numpy().astype(np.float64)).T
            for model in models
        ]
    callables = []
    for state in saved["readouts"]:
        n_neurons, height, width_px = state["spatial"].shape
        readout = FactorisedReadout(state["mixing.weight"].shape[1], n_neurons, height, width_px)
        readout.load_state_dict(state)
        readout.eval()
        callables.append(lambda embedding, readout=readout: readout(embedding).detach().numpy().T)
    return callables


def _ridge_model(state: Mapping[str, Any]) -> RidgeModel:
    arrays = {key: state[key].numpy() for key in RIDGE_ARRAYS}
    return RidgeModel(**arrays, feature_set=state["feature_set"] or None)
