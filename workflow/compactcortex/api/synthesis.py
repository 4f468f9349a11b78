"""The image that drives a compact model most, by the pipeline's own procedure (docs/method.md section 5)."""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch

from compactcortex.api.models import CompactNeuronModel
from compactcortex.progress import Progress
from compactcortex.seeding import rng_for
from compactcortex.synthesis.images import SynthesisSettings, as_bank, synthesize, white_noise
from compactcortex.synthesis.stimulus_set import NOISE_STD

log = logging.getLogger(__name__)


def maximizing_image(
    model: CompactNeuronModel, steps: int = 1000, starts: int = 4, size: int | None = None, seed: int = 0
) -> tuple[np.ndarray, float]:
    """(uint8 image (size, size, 3), the model's response to it, in ``model.units``): the best of ``starts``
    gradient ascents from white noise (seeded by ``seed``), ``size`` pixels a side (default: the model's)."""
    if len(model.neurons) != 1:
        raise ValueError(f"synthesis takes a model of one neuron, this one predicts {len(model.neurons)}")
    size = size or model.image_size
    network = copy.deepcopy(model.network).float()  # the bank is float32; the caller's model keeps its dtype
    start = white_noise(rng_for(seed, "synthesis", model.neurons[0]), starts, size, NOISE_STD)
    best, _ = synthesize(
        as_bank([network]),
        torch.from_numpy(start).float().unsqueeze(1),
        torch.ones(starts),
        SynthesisSettings(steps=steps),
        Progress(f"{model.neurons[0]}: maximizing image", steps, "step", logger=log),
        label="gradient ascent:",
    )
    images = best[:, 0].round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    responses = model.predict(images)[:, 0]
    winner = int(np.argmax(responses))
    return images[winner], float(responses[winner])
