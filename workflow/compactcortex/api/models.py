"""Models a user loads and runs: a compact model (this pipeline's model cards, or the published models of Cowley et
al. 2023) and an ensemble (the members with a session's fitted mapping: the teacher of that session's compact
models). Each has ``.neurons``, ``.units`` and ``.predict(images)`` -> (image, neuron).

What ``predict`` does to the images it is given (uint8 RGB, any size; see ``images``):
- every image is cropped to its centred square;
- a compact model resizes the square to its ``image_size`` (anti-aliased bilinear, in float64) and subtracts its
  per-channel means; the ensemble resizes it to its backbone's input size (``features.input_size`` of the run's
  config) and normalises it as the backbone was trained;
- the network's output, a z-scored response, is mapped back to spike counts per counting window with the fit half's
  mean and sd of each neuron (saved with the mappings and on each model card). The published models carry no such
  scale: their outputs stay z-scored, and ``units`` says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compactcortex.api.images import Images, count_images, square_batches
from compactcortex.backbones import Backbone, load_backbone
from compactcortex.compact.published import load_published_model
from compactcortex.errors import InputDataError
from compactcortex.io.compact_models import load_compact_model as load_card_model
from compactcortex.io.cowley2023 import MODEL_NAME
from compactcortex.io.members import read_member, read_response_scale, readout_neurons
from compactcortex.models.compact import CompactModel, predict
from compactcortex.models.teacher import Teacher
from compactcortex.response_scale import Z_SCORED, ResponseScale

PUBLISHED_UNITS = "the neuron's z-scored response, as published; its mean and sd are not published"
PUBLISHED_SOURCE = "Cowley, Stan, Pillow & Smith 2023, published compact model (cowleygroup/V4_compact_models)"


@dataclass
class CompactNeuronModel:
    """A compact model ready to predict: the network, its neurons (one per output), the response scale of its
    outputs (None: z-scored, as the published models) and what its card says of it (fidelity, accuracy,
    provenance)."""

    network: CompactModel
    neurons: list[str]
    scale: ResponseScale | None
    card: dict[str, Any]
    path: Path
    unscaled_units: str = Z_SCORED  # what the outputs are where no scale is known

    @property
    def units(self) -> str:
        return self.scale.units if self.scale is not None else self.unscaled_units

    @property
    def image_size(self) -> int:
        """The side of the square the network sees (images of any size are resized to it)."""
        return self.network.image_size

    def predict(self, images: Images, batch_size: int = 256) -> np.ndarray:
        """Responses (image, neuron) in ``units`` to uint8 RGB images of any size (module docstring)."""
        responses = np.empty((count_images(images), len(self.neurons)))
        for positions, batch in square_batches(images):
            responses[positions] = predict(self.network, batch, batch_size)
        return self.scale.to_responses(responses) if self.scale is not None else responses

    def info(self) -> dict[str, Any]:
        """Architecture, filters per layer, parameters, quality and provenance, as the card gives them."""
        quality = {key: self.card.get(key) for key in ("fidelity_r2", "r", "r2_er", "accuracy_on") if key in self.card}
        provenance = {
            key: self.card[key]
            for key in ("session", "seed", "config_sha256", "code_version", "source_sha256", "source")
            if key in self.card
        }
        return {
            "model": str(self.path),
            "neurons": self.neurons,
            "architecture": self.network.config(),
            "filters_per_layer": list(self.network.filters),
            "n_parameters": self.network.n_parameters(),
            "output_units": self.units,
            **quality,
            "provenance": provenance,
        }


def load_compact_model(path: str | Path, device: str = "cpu") -> CompactNeuronModel:
    """A compact model from this pipeline's model card (``<neuron>.json``, beside its ``<neuron>.pt``), or a
    published Cowley et al. 2023 model (``compact_model_<session>_neuron<k>.pt``; its filter counts are checked
    against ``compact_models_nums_filters/`` beside its folder)."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(path, "no such model file")
    if path.suffix == ".json":
        return _from_card(path, device)
    if path.suffix == ".pt" and path.with_suffix(".json").is_file():
        return _from_card(path.with_suffix(".json"), device)
    match = MODEL_NAME.match(path.name)
    if path.suffix == ".pt" and match:
        session, neuron = match.group(1), int(match.group(2))
        network = load_published_model(path.parent.parent, session, neuron).to(device)
        card = {"session": session, "neuron": neuron, "source": PUBLISHED_SOURCE}
        return CompactNeuronModel(network, [f"{session}_n{neuron:03d}"], None, card, path, PUBLISHED_UNITS)
    raise InputDataError(
        path,
        "is neither a model card (<neuron>.json, as results/<dataset>/compact/<session>/models/ hold them) nor a "
        "published compact model (compact_model_<session>_neuron<k>.pt)",
    )


def _from_card(card_path: Path, device: str) -> CompactNeuronModel:
    network, card = load_card_model(card_path, device)
    scale = None
    if card.get("response_sd") is not None:
        mean, sd = np.array([card["response_mean"]]), np.array([card["response_sd"]])
        scale = ResponseScale(mean, sd, card["response_units"])
    return CompactNeuronModel(
        network, [str(card["neuron"])], scale, card, card_path, card.get("output_units", Z_SCORED)
    )


@dataclass
class EnsembleModel:
    """The ensemble as one session's teacher: every member's core through that session's fitted mapping, averaged
    over members (docs/method.md sections 2-3)."""

    member_paths: list[str]
    readouts_path: str
    features: Mapping[str, Any]
    neurons: list[str]
    scale: ResponseScale
    device: str = "cpu"
    _teacher: Teacher | None = field(default=None, repr=False)
    _backbone: Backbone | None = field(default=None, repr=False)

    @property
    def units(self) -> str:
        return self.scale.units

    def predict(self, images: Images) -> np.ndarray:
        """Responses (image, neuron) in ``units`` to uint8 RGB images of any size (module docstring)."""
        if self._teacher is None or self._backbone is None:  # loaded at the first call, kept for the next ones
            self._teacher = Teacher(self.member_paths, [self.readouts_path], self.device)
            self._backbone = load_backbone(self.features["backbone"], self.features.get("weights_path"))
        teacher, backbone = self._teacher, self._backbone
        layer = self.features["layer"]
        responses = np.empty((count_images(images), len(self.neurons)))
        for positions, batch in square_batches(images):
            extracted = backbone.extract(
                batch,
                [layer],
                input_size=self.features["input_size"],
                batch_size=self.features["batch_size"],
                device=self.device,
            )[layer]
            features = torch.from_numpy(extracted).to(torch.float16)  # as the pipeline caches and labels them
            responses[positions] = teacher(features).mean(axis=0).T
        return self.scale.to_responses(responses)


def load_ensemble(results_dir: str | Path, session: str, device: str = "cpu") -> EnsembleModel:
    """The ensemble of a run (``results/<dataset>``) with ``session``'s mapping: a test session, as mapped by rule
    map_session."""
    results_dir = Path(results_dir)
    members = sorted((results_dir / "ensemble" / "members").glob("member*.pt"))
    if not members:
        raise InputDataError(
            results_dir, "holds no ensemble members (ensemble/members/member*.pt): is it a run's results/<dataset>?"
        )
    readouts = results_dir / "ensemble" / "readouts" / f"{session}.pt"
    if not readouts.is_file():
        mapped = sorted(path.stem for path in (results_dir / "ensemble" / "readouts").glob("*.pt"))
        raise InputDataError(
            readouts, f"no mapping for session {session!r}; mapped sessions: {', '.join(mapped) or 'none'}"
        )
    params = json.loads(read_member(members[0])["provenance"]["params_json"])
    return EnsembleModel(
        member_paths=[str(path) for path in members],
        readouts_path=str(readouts),
        features=params["features"],
        neurons=readout_neurons(readouts),
        scale=read_response_scale(readouts),
        device=device,
    )
