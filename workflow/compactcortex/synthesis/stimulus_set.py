"""What a session's stimulus set holds, and how each neuron's images are made.

A session's stimulus set is what the next recording session shows (the closed loop): the control natural images
(the first ``controls`` natural images of the held-out pool, the same for every neuron) and, for every neuron,
its maximizing and minimizing images, its most-driving natural images and adversarial versions (up and down) of
the controls its model predicts to drive it most. Its files are written and read by
``io.stimulus_sets``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from compactcortex.config import settings_from
from compactcortex.errors import InputDataError
from compactcortex.io.stimulus_sets import ADVERSARIAL_DOWN, ADVERSARIAL_UP, MAXIMIZING, MINIMIZING, NATURAL_TOP
from compactcortex.models.compact import CompactModel, predict
from compactcortex.seeding import rng_for
from compactcortex.synthesis.images import (
    AdversarialSettings,
    SynthesisSettings,
    adversarial,
    as_bank,
    synthesize,
    white_noise,
)

NOISE_STD = 40.0  # pixels: the white-noise start about mid-grey


@dataclass(frozen=True)
class StimulusDesign:
    """What is made per neuron, from the config's ``synthesis`` section."""

    starts: int  # maximizing images (random starts), and as many minimizing ones
    natural_top: int  # most-driving natural images of the pool
    controls: int  # natural images shown to every neuron
    adversarial_sources: int  # controls perturbed up and down, per neuron
    synthesis: SynthesisSettings
    adversarial: AdversarialSettings
    batched: bool  # all of a chunk's neurons as one bank (a GPU) or one at a time (a CPU)
    device: str

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> StimulusDesign:
        batched = section["batched"] == "always" or (section["batched"] == "auto" and section["device"] == "cuda")
        return settings_from(
            cls,
            section,
            adversarial_sources=section["adversarial"]["sources"],
            synthesis=settings_from(SynthesisSettings, section),
            adversarial=settings_from(AdversarialSettings, section["adversarial"]),
            batched=batched,
        )


def control_indices(image_types: np.ndarray, split: np.ndarray, n_controls: int, pool: str | Path) -> np.ndarray:
    """The first ``n_controls`` natural images of the held-out pool (never trained on), by pool order."""
    candidates = np.flatnonzero((image_types == "natural") & (split == "heldout"))
    if len(candidates) < n_controls:
        raise InputDataError(
            Path(pool), f"holds {len(candidates)} held-out natural images; synthesis.controls asks for {n_controls}"
        )
    return candidates[:n_controls]


def _stack(per_neuron: Sequence[np.ndarray], group: Sequence[int], device: str) -> torch.Tensor:
    """Per-neuron (n_images, 3, H, W) arrays -> (n_images, len(group), 3, H, W) float32 on ``device``."""
    return torch.from_numpy(np.stack([per_neuron[i] for i in group], axis=1)).float().to(device)


def _to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """(n_images, 3, H, W) float pixels -> uint8 (n_images, H, W, 3)."""
    return pixels.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def neuron_stimuli(
    models: Sequence[CompactModel],
    neurons: Sequence[str],
    pool: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    controls: np.ndarray,
    design: StimulusDesign,
    seed: int,
) -> list[dict[str, Any]]:
    """Every neuron's images: one row per image with its pixels (uint8, H, W, 3), kind, source and prediction."""
    images, image_ids, image_types, _ = pool
    size = images.shape[1]
    # one draw per neuron: its images do not depend on how the neurons are grouped into jobs
    starts = [white_noise(rng_for(seed, "synthesis", n), 2 * design.starts, size, NOISE_STD) for n in neurons]
    sources = [adversarial_sources(model, images[controls], controls, design.adversarial_sources) for model in models]
    source_pixels = [images[s].transpose(0, 3, 1, 2).repeat(2, axis=0).astype(np.float64) for s in sources]
    synthesis_direction = torch.tensor([1.0] * design.starts + [-1.0] * design.starts)
    adversarial_direction = torch.tensor([1.0, -1.0] * design.adversarial_sources)
    groups = [list(range(len(models)))] if design.batched else [[i] for i in range(len(models))]
    # each neuron's images together, in neuron order: the stimulus set's order (and so the closed loop's noise
    # draws) does not depend on how the neurons are grouped into jobs
    rows_of: dict[str, list[dict[str, Any]]] = {neuron: [] for neuron in neurons}
    for group in tqdm(groups, desc="synthesis", unit="group", mininterval=10):
        bank = as_bank([models[i] for i in group])
        best, responses = synthesize(bank, _stack(starts, group, design.device), synthesis_direction, design.synthesis)
        perturbed, adversarial_responses = adversarial(
            bank, _stack(source_pixels, group, design.device), adversarial_direction, design.adversarial
        )
        for column, i in enumerate(group):
            neuron = neurons[i]
            synthesised = _to_uint8(best[:, column])
            for j in range(2 * design.starts):
                kind = MAXIMIZING if j < design.starts else MINIMIZING
                rows_of[neuron].append(_row(neuron, kind, j % design.starts, synthesised[j], "", responses[j, column]))
            adversarial_images = _to_uint8(perturbed[:, column])
            for j in range(2 * design.adversarial_sources):
                kind = ADVERSARIAL_UP if j % 2 == 0 else ADVERSARIAL_DOWN
                source = image_ids[sources[i][j // 2]]
                rows_of[neuron].append(
                    _row(neuron, kind, j // 2, adversarial_images[j], source, adversarial_responses[j, column])
                )
    natural = np.flatnonzero(image_types == "natural")
    for model, neuron in zip(models, neurons, strict=True):
        predicted = predict(model, images[natural])[:, 0]
        for rank, index in enumerate(np.argsort(-predicted, kind="stable")[: design.natural_top]):
            rows_of[neuron].append(
                _row(neuron, NATURAL_TOP, rank, images[natural[index]], image_ids[natural[index]], predicted[index])
            )
    return [row for neuron in neurons for row in rows_of[neuron]]


def adversarial_sources(model: CompactModel, control_images: np.ndarray, controls: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` controls the model predicts to drive its neuron most: a neuron silent on an image cannot be driven
    lower (and a rectified model has no gradient there), so these leave room both ways."""
    predicted = predict(model, control_images)[:, 0]
    return controls[np.argsort(-predicted, kind="stable")[:n]]


def _row(neuron: str, kind: str, index: int, pixels: np.ndarray, source: str, predicted: Any) -> dict[str, Any]:
    return {
        "image": f"{neuron}_{kind}{index:02d}",
        "neuron": neuron,
        "stimulus": kind,
        "source": source,
        "predicted": float(predicted),
        "pixels": pixels,
    }
