"""Image-synthesis benchmark: seconds for one maximizing image (the paper's 1,000 steps at 112 x 112) of one compact
model, and for one image each of a batch of neurons synthesised together (one ``StudentBank``, an image per neuron).

The models have the paper's median pruned widths ([47, 57, 3, 7, 3]) with random weights: the cost of a gradient step
does not depend on the weights. Reported: seconds per image, and per neuron for the batch (its total / neurons).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch

from compactcortex.atomic import write_text_atomic
from compactcortex.models.compact import CompactModel
from compactcortex.synthesis.images import SynthesisSettings, as_bank, synthesize, white_noise

PAPER_MEDIAN_FILTERS = (47, 57, 3, 7, 3)


def synthesis_seconds(n_neurons: int, image_size: int, steps: int, device: str) -> float:
    """Wall seconds to synthesise one maximizing image for each of ``n_neurons`` models at once."""
    models = []
    for seed in range(n_neurons):
        torch.manual_seed(seed)
        models.append(CompactModel(PAPER_MEDIAN_FILTERS, image_size=image_size).to(device).eval())
    bank = as_bank(models)
    rng = np.random.default_rng(0)
    start = torch.from_numpy(np.stack([white_noise(rng, 1, image_size, 40.0) for _ in models], axis=1)).float()
    settings = SynthesisSettings(steps=steps)
    synthesize(bank, start, torch.ones(1), SynthesisSettings(steps=2))  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    synthesize(bank, start, torch.ones(1), settings)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def run(device: str, image_size: int, steps: int, neurons: int) -> dict[str, Any]:
    one = synthesis_seconds(1, image_size, steps, device)
    batch = synthesis_seconds(neurons, image_size, steps, device)
    return {
        "device": device,
        "threads": torch.get_num_threads(),
        "filters": list(PAPER_MEDIAN_FILTERS),
        "image_size": image_size,
        "steps": steps,
        "one_image_seconds": one,
        "batch_neurons": neurons,
        "batch_seconds": batch,
        "batch_seconds_per_neuron": batch / neurons,
        "batch_speedup_per_neuron": one / (batch / neurons),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--neurons", type=int, default=8, help="neurons synthesised together")
    parser.add_argument("--output", default="results/bench/synthesis.json")
    args = parser.parse_args(argv)
    if min(args.steps, args.neurons) < 1:
        parser.error("--steps and --neurons must be positive")
    results = run(args.device, args.image_size, args.steps, args.neurons)
    print(
        f"one maximizing image ({args.steps} steps, {args.image_size} px, {results['threads']} threads, "
        f"{args.device}): {results['one_image_seconds']:.1f} s; {args.neurons} neurons together: "
        f"{results['batch_seconds']:.1f} s ({results['batch_seconds_per_neuron']:.1f} s per neuron, "
        f"{results['batch_speedup_per_neuron']:.2f}x)"
    )
    write_text_atomic(args.output, json.dumps(results, indent=2))
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
