"""What a session's stimulus set holds, and how each neuron's images are made.

A session's stimulus set is what the next recording session shows (the closed loop): the control natural images
(the first ``controls`` natural images of the held-out pool, the same for every neuron) and, for every neuron,
its maximizing and minimizing images, its most-driving natural images and adversarial versions (up and down) of
the controls its model predicts to drive it most. Its files are written and read by
``io.stimulus_sets``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from compactcortex.config import settings_from
from compactcortex.io.stimulus_sets import ADVERSARIAL_DOWN, ADVERSARIAL_UP, MAXIMIZING, MINIMIZING, NATURAL_TOP
from compactcortex.models.compact import CompactModel, predict
from compactcortex.pool import PoolRecipe, pool_image_id
from compactcortex.progress import Progress
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

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StimulusDesign:
    """What is made per neuron, from the config's ``synthesis`` section."""

    starts: int  # maximizing images (random starts), and as many minimizing ones
    natural_top: int  # most-driving natural images of the pool
    natural_search: int  # among the natural images of the pool's first indices
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


def control_indices(pool: PoolRecipe, n_controls: int) -> np.ndarray:
    """The first ``n_controls`` natural images of the held-out pool (never trained on), by pool index."""
    candidates = pool.natural_indices(pool.heldout_start, len(pool))
    if len(candidates) < n_controls:
        raise ValueError(
            f"the held-out distillation pool holds {len(candidates)} natural images; synthesis.controls asks for "
            f"{n_controls} (raise compact.pool.heldout or the natural images' share)"
        )
    return candidates[:n_controls]


def most_driving_natural(
    models: Sequence[CompactModel], pool: PoolRecipe, n_search: int, top: int, batch_size: int = 1024
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each model's ``top`` natural images of the first ``n_search`` pool indices (a random sample of the pool: its
    order is shuffled), as (pool indices, predictions) by decreasing prediction, ties to the lower index. Streamed
    in batches: memory does not grow with the search."""
    best = [(np.empty(0, dtype=np.int64), np.empty(0)) for _ in models]
    stop = min(n_search, len(pool))
    progress = Progress("natural images searched", stop, "image", logger=log)
    for start in range(0, stop, batch_size):
        natural = pool.natural_indices(start, min(stop, start + batch_size))
        if natural.size == 0:
            progress.update(min(stop, start + batch_size))
            continue
        images = pool.images(natural)
        for k, model in enumerate(models):
            indices = np.concatenate([best[k][0], natural])
            predicted = np.concatenate([best[k][1], predict(model, images)[:, 0]])
            order = np.lexsort((indices, -predicted))[:top]
            best[k] = (indices[order], predicted[order])
        progress.update(min(stop, start + batch_size))
    if any(len(indices) < top for indices, _ in best):
        raise ValueError(f"the first {stop} pool images hold fewer than synthesis.natural_top = {top} natural ones")
    return best


def _stack(per_neuron: Sequence[np.ndarray], group: Sequence[int], device: str) -> torch.Tensor:
    """Per-neuron (n_images, 3, H, W) arrays -> (n_images, len(group), 3, H, W) float32 on ``device``."""
    return torch.from_numpy(np.stack([per_neuron[i] for i in group], axis=1)).float().to(device)


def _to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """(n_images, 3, H, W) float pixels -> uint8 (n_images, H, W, 3)."""
    return pixels.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def neuron_stimuli(
    models: Sequence[CompactModel],
    neurons: Sequence[str],
    pool: PoolRecipe,
    design: StimulusDesign,
    seed: int,
) -> list[dict[str, Any]]:
    """Every neuron's images: one row per image with its pixels (uint8, H, W, 3), kind, source and prediction."""
    controls = control_indices(pool, design.controls)
    control_images = pool.images(controls)
    size = pool.image_size
    # one draw per neuron: its images do not depend on how the neurons are grouped into jobs
    starts = [white_noise(rng_for(seed, "synthesis", n), 2 * design.starts, size, NOISE_STD) for n in neurons]
    sources = [adversarial_sources(model, control_images, design.adversarial_sources) for model in models]
    source_pixels = [control_images[s].transpose(0, 3, 1, 2).repeat(2, axis=0).astype(np.float64) for s in sources]
    synthesis_direction = torch.tensor([1.0] * design.starts + [-1.0] * design.starts)
    adversarial_direction = torch.tensor([1.0, -1.0] * design.adversarial_sources)
    groups = [list(range(len(models)))] if design.batched else [[i] for i in range(len(models))]
    # each neuron's images together, in neuron order: the stimulus set's order (and so the closed loop's noise
    # draws) does not depend on how the neurons are grouped into jobs
    rows_of: dict[str, list[dict[str, Any]]] = {neuron: [] for neuron in neurons}
    steps = design.synthesis.steps + design.adversarial.steps
    progress = Progress("synthesis", len(groups) * steps, "step", logger=log)
    for number, group in enumerate(groups, start=1):
        label = f"group {number}/{len(groups)} ({neurons[group[0]] if len(group) == 1 else f'{len(group)} neurons'})"
        bank = as_bank([models[i] for i in group])
        best, responses = synthesize(
            bank,
            _stack(starts, group, design.device),
            synthesis_direction,
            design.synthesis,
            progress,
            f"{label} synthesis:",
        )
        perturbed, adversarial_responses = adversarial(
            bank,
            _stack(source_pixels, group, design.device),
            adversarial_direction,
            design.adversarial,
            progress,
            f"{label} adversarial:",
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
                source = pool_image_id(pool.session, int(controls[sources[i][j // 2]]))
                rows_of[neuron].append(
                    _row(neuron, kind, j // 2, adversarial_images[j], source, adversarial_responses[j, column])
                )
    natural = most_driving_natural(models, pool, design.natural_search, design.natural_top)
    for neuron, (indices, predicted) in zip(neurons, natural, strict=True):
        images = pool.images(indices)
        for rank, (index, image, value) in enumerate(zip(indices, images, predicted, strict=True)):
            source = pool_image_id(pool.session, int(index))
            rows_of[neuron].append(_row(neuron, NATURAL_TOP, rank, image, source, value))
    return [row for neuron in neurons for row in rows_of[neuron]]


def adversarial_sources(model: CompactModel, control_images: np.ndarray, n: int) -> np.ndarray:
    """The positions among the controls of the ``n`` the model predicts to drive its neuron most: a neuron silent
    on an image cannot be driven lower (and a rectified model has no gradient there), so these leave room both
    ways."""
    predicted = predict(model, control_images)[:, 0]
    return np.argsort(-predicted, kind="stable")[:n]


def _row(neuron: str, kind: str, index: int, pixels: np.ndarray, source: str, predicted: Any) -> dict[str, Any]:
    return {
        "image": f"{neuron}_{kind}{index:02d}",
        "neuron": neuron,
        "stimulus": kind,
        "source": source,
        "predicted": float(predicted),
        "pixels": pixels,
    }
