"""Predictions of a model for a session's images, and the half split they are scored on.

A predictions file is ``prediction(image, neuron[, member])`` with the image's half (``fit_half``) beside it; every
model of a test session (ensemble members, task-driven baseline, compact models) writes one, and evaluation reads
them all the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import xarray as xr

from compactcortex.atomic import atomic_path
from compactcortex.errors import InputDataError
from compactcortex.provenance import provenance_attrs


def halves(n_images: int) -> tuple[np.ndarray, np.ndarray]:
    """The paper's split of a held-out session: the first half of its images (index order) fits the
    mapping, the second half is held out for evaluation."""
    split = n_images // 2
    return np.arange(split), np.arange(split, n_images)


class Indexed(Protocol):
    """What a predictions file is indexed by: a session's neurons and images."""

    session: str
    neuron_ids: np.ndarray
    image_ids: np.ndarray


@dataclass(frozen=True)
class PredictionIndex:
    """A session and the neurons and images of its predictions (a session's data also serves)."""

    session: str
    neuron_ids: np.ndarray
    image_ids: np.ndarray


def write_predictions(
    path: str | Path,
    predictions: np.ndarray,
    session: Indexed,
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


def read_predictions(path: str | Path, neurons: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(predictions (member, neuron, image), neuron ids); one member where the file has none. NaN for ``neurons``
    the file lacks (e.g. neurons without a published compact model)."""
    path = Path(path)
    try:
        with xr.open_dataset(path, engine="netcdf4") as predictions:
            values = predictions["prediction"]
            if "member" not in values.dims:
                values = values.expand_dims("member")
            values = values.transpose("member", "neuron", "image")
            if neurons is not None:
                values = values.reindex(neuron=neurons)
            return values.values.astype(np.float64), values["neuron"].values
    except (OSError, KeyError, ValueError) as exc:
        raise InputDataError(path, f"cannot be read as predictions: {exc}") from exc
