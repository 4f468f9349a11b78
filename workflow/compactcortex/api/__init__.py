"""The public API: load a model, predict, synthesise, export (README, "Using the models").

import compactcortex as cc
model = cc.load_compact_model("results/virtual_v4/compact/s09/models/000/s09_n003.json")
responses = model.predict(images)  # uint8 (n, H, W, 3) -> (n, neuron), spikes per counting window
"""

from compactcortex.api.export import export_onnx
from compactcortex.api.models import CompactNeuronModel, EnsembleModel, load_compact_model, load_ensemble
from compactcortex.api.synthesis import maximizing_image

__all__ = [
    "CompactNeuronModel",
    "EnsembleModel",
    "export_onnx",
    "load_compact_model",
    "load_ensemble",
    "maximizing_image",
]
