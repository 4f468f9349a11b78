"""The ensemble on disk: a trained member (``member<k>.pt``: its core and readouts with its architecture, history and
provenance), the per-epoch training checkpoint a killed job resumes from, and a session's fitted mappings
(``readouts.pt``: one mapping per member from the embedding to the session's neurons)."""

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
    """A member's saved fields (tensors and plain values only)."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
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
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint means: start again
        log.warning("%s: unreadable checkpoint (%s); training from the start", path, exc)
        return None


def save_readouts(path: str | Path, method: str, neuron_ids: Sequence[str], readouts: Sequence[Any]) -> None:
    """A session's mappings, one per member: factorised readouts (saved as state dicts) or ridge models."""
    save_torch_atomic(
        {
            "method": method,
            "neuron_ids": [str(n) for n in neuron_ids],
            "readouts": [m.state_dict() if isinstance(m, FactorisedReadout) else m for m in readouts],
        },
        path,
    )


def _read_readouts(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        raise InputDataError(path, f"cannot be read as session readouts (corrupt or truncated?): {exc}") from exc


def readout_neurons(path: str | Path) -> list[str]:
    """The neurons a session's mappings predict, in their order."""
    return list(_read_readouts(Path(path))["neuron_ids"])


def load_readouts(path: str | Path) -> list[Mapping_]:
    """The fitted mappings of a session, one callable per member: embedding (image, C, h, w) -> (neuron, image)."""
    saved = _read_readouts(Path(path))
    if saved["method"] == "ridge":
        return [
            lambda embedding, model=model: model.predict(embedding.flatten(1).numpy().astype(np.float64)).T
            for model in saved["readouts"]
        ]
    callables = []
    for state in saved["readouts"]:
        n_neurons, height, width_px = state["spatial"].shape
        readout = FactorisedReadout(state["mixing.weight"].shape[1], n_neurons, height, width_px)
        readout.load_state_dict(state)
        readout.eval()
        callables.append(lambda embedding, readout=readout: readout(embedding).detach().numpy().T)
    return callables
