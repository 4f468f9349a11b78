"""A compact model exported to ONNX: the graph takes pixels as images are stored and returns responses in the
model's units, so the file is all a lab needs (ONNX Runtime: ``session.run(None, {"images": x})``)."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from compactcortex.api.models import CompactNeuronModel
from compactcortex.io.onnx_models import INPUT_NAME, OUTPUT_NAME, write_onnx

INPUT_DOC = (
    "float32 (image, S, S, 3): RGB pixel values in 0..255, channels last, at the model's image size S (crop each "
    "image to its centred square and resize it to S x S first)"
)


class ExportedModel(nn.Module):
    """Pixels (image, S, S, 3) in 0..255 -> responses (image, neuron): means subtracted, network, response scale."""

    def __init__(self, model: CompactNeuronModel) -> None:
        super().__init__()
        network = model.network
        self.network = copy.deepcopy(network).float()  # a copy: the caller's model keeps its dtype
        n = len(model.neurons)
        mean = model.scale.mean if model.scale is not None else [0.0] * n
        sd = model.scale.sd if model.scale is not None else [1.0] * n
        self.register_buffer("pixel_means", torch.tensor(network.config()["means"]).view(1, 3, 1, 1))
        self.register_buffer("response_mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("response_sd", torch.tensor(sd, dtype=torch.float32))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 3, 1, 2) - self.pixel_means
        return self.network(x) * self.response_sd + self.response_mean


def export_onnx(model: CompactNeuronModel, path: str | Path) -> Path:
    """Write ``model`` as ONNX (float32) to ``path``; its metadata names the neurons, units, input and provenance."""
    exported = ExportedModel(model).eval()
    size = model.image_size
    example = torch.full((2, size, size, 3), 128.0)
    metadata = {
        "neurons": model.neurons,
        "input": f"{INPUT_NAME}: {INPUT_DOC}",
        "output": f"{OUTPUT_NAME}: float32 (image, neuron), {model.units}",
        "image_size": size,
        "filters_per_layer": list(model.network.filters),
        "provenance": model.info()["provenance"],
    }
    return write_onnx(exported, example, path, metadata)
