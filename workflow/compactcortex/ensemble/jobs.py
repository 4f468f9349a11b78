"""File-level entry points of the ensemble's rules: read inputs, call the logic, write outputs atomically."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from compactcortex.atomic import atomic_path, save_torch_atomic
from compactcortex.ensemble.data import SessionData, halves, load_session
from compactcortex.ensemble.mapping import MappingSettings, map_members
from compactcortex.ensemble.train import TrainSettings, train_member
from compactcortex.errors import InputDataError
from compactcortex.features import backbone_parameters
from compactcortex.models.ensemble import CoreShape, FactorisedReadout, Member, count_parameters
from compactcortex.provenance import provenance_attrs

log = logging.getLogger(__name__)


def core_shape(ensemble: Mapping[str, Any], in_channels: int) -> CoreShape:
    return CoreShape(in_channels, ensemble["width"], ensemble["bottleneck"], ensemble["residual_blocks"])


def train_member_job(
    *,
    member: int,
    train_datasets: Sequence[str],
    train_features: Sequence[str],
    validation_dataset: str,
    validation_features: str,
    output: str,
    checkpoint: str,
    ensemble: Mapping[str, Any],
    features: Mapping[str, Any],
    seed: int,
) -> None:
    layer = features["layer"]
    sessions = [load_session(d, f, layer) for d, f in zip(train_datasets, train_features, strict=True)]
    validation = load_session(validation_dataset, validation_features, layer)
    shape = core_shape(ensemble, int(sessions[0].features.shape[1]))
    settings = TrainSettings.from_config(dict(ensemble), seed)
    log.info(
        "member %d: %d training sessions, %d images, %d neurons; validation %s",
        member,
        len(sessions),
        sum(s.n_images for s in sessions),
        sum(s.n_neurons for s in sessions),
        validation.session,
    )
    result = train_member(member, sessions, validation, shape, settings, checkpoint)
    trained = Member(shape, {s.session: s.n_neurons for s in sessions}, _embedding_hw(result["state_dict"]))
    trained.load_state_dict(result["state_dict"])
    save_torch_atomic(
        {
            "member": member,
            "shape": shape.as_dict(),
            "neurons_per_session": {s.session: s.n_neurons for s in sessions},
            "neuron_ids": {s.session: [str(n) for n in s.neuron_ids] for s in sessions},
            "state_dict": result["state_dict"],
            "validation_score": result["validation_score"],
            "best_epoch": result["best_epoch"],
            "history": result["history"],
            "n_parameters_core": count_parameters(trained.core),
            "n_parameters_backbone": backbone_parameters(train_features[0], layer),
            "provenance": provenance_attrs(
                {"ensemble": dict(ensemble), "features": dict(features), "seed": seed, "member": member},
                [*train_datasets, validation_dataset],
            ),
        },
        output,
    )
    Path(checkpoint).unlink(missing_ok=True)
    log.info(
        "member %d: best validation median %.4f at epoch %d", member, result["validation_score"], result["best_epoch"]
    )


def _embedding_hw(state_dict: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    spatial = next(tensor for name, tensor in state_dict.items() if name.endswith(".spatial"))
    return int(spatial.shape[1]), int(spatial.shape[2])


def load_member(path: str | Path, device: str = "cpu") -> Member:
    """A trained member, ready to embed features (eval mode)."""
    path = Path(path)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        member = Member(CoreShape(**saved["shape"]), saved["neurons_per_session"], _embedding_hw(saved["state_dict"]))
        member.load_state_dict(saved["state_dict"])
    except FileNotFoundError as exc:
        raise InputDataError(path, "ensemble member not found") from exc
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        raise InputDataError(path, f"cannot be read as an ensemble member (corrupt or truncated?): {exc}") from exc
    return member.to(device).eval()


def map_session_job(
    *,
    member_paths: Sequence[str],
    dataset: str,
    features_path: str,
    predictions_output: str,
    readouts_output: str,
    mapping: Mapping[str, Any],
    features: Mapping[str, Any],
    device: str,
    seed: int,
) -> None:
    session = load_session(dataset, features_path, features["layer"])
    members = [load_member(path, device) for path in member_paths]
    settings = MappingSettings(
        method=mapping["method"],
        steps=mapping["steps"],
        learning_rate=mapping["learning_rate"],
        penalties=tuple(mapping["penalties"]),
        ridge_alphas=tuple(mapping["ridge_alphas"]),
        cv_folds=mapping["cv_folds"],
        seed=seed,
    )
    predictions, mappings = map_members(members, session, settings, device)
    params = {"mapping": dict(mapping), "features": dict(features), "seed": seed}
    write_predictions(
        predictions_output, predictions, session, params, [dataset, *member_paths], member=np.arange(len(members))
    )
    save_torch_atomic(
        {
            "method": settings.method,
            "neuron_ids": [str(n) for n in session.neuron_ids],
            "readouts": [m.state_dict() if isinstance(m, FactorisedReadout) else m for m in mappings],
        },
        readouts_output,
    )


@dataclass(frozen=True)
class PredictionIndex:
    """What a predictions file is indexed by (a ``SessionData`` also serves)."""

    session: str
    neuron_ids: np.ndarray
    image_ids: np.ndarray


def write_predictions(
    path: str | Path,
    predictions: np.ndarray,
    session: SessionData | PredictionIndex,
    params: Mapping[str, Any],
    inputs: Sequence[str],
    member: np.ndarray | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Predictions as a dataset: prediction(image, neuron, member), or (image, neuron) without members.

    `predictions` comes as (member, neuron, image), or (neuron, image).
    """
    n_images = len(session.image_ids)
    fit, _ = halves(n_images)
    predictions = np.moveaxis(predictions, -1, 0)  # image first
    if member is not None:
        predictions = np.moveaxis(predictions, 1, -1)  # (image, neuron, member)
    dims = ("image", "neuron", "member") if member is not None else ("image", "neuron")
    coords = {"neuron": session.neuron_ids, "image": session.image_ids}
    if member is not None:
        coords["member"] = member
    in_fit_half = np.zeros(n_images, dtype=np.int8)
    in_fit_half[fit] = 1
    dataset = xr.Dataset(
        {"prediction": (dims, predictions, {"units": "response z-scored with the first half's mean and sd"})},
        coords={**coords, "fit_half": ("image", in_fit_half)},
        attrs={"session": session.session, **provenance_attrs(params, inputs), **dict(attrs or {})},
    )
    with atomic_path(path) as temporary:
        dataset.to_netcdf(temporary, engine="netcdf4")


def load_readouts(path: str | Path) -> list:
    """The fitted mappings of a session, one callable per member: embedding (image, C, h, w) -> (neuron, image)."""
    path = Path(path)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        raise InputDataError(path, f"cannot be read as session readouts (corrupt or truncated?): {exc}") from exc
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
