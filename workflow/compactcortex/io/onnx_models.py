"""A compact model as an ONNX file, for labs that run it without this package (ONNX Runtime, or any ONNX
backend): one graph, its input and output named and documented in the file's metadata."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compactcortex.atomic import atomic_path

OPSET = 17
INPUT_NAME = "images"
OUTPUT_NAME = "responses"


def write_onnx(network: nn.Module, example: torch.Tensor, path: str | Path, metadata: Mapping[str, Any]) -> Path:
    """Export ``network`` (traced on ``example``, the batch dimension left free) to ``path``, atomically, with
    ``metadata`` as the model's metadata properties (values JSON-encoded where not strings); checked by ONNX."""
    import onnx

    path = Path(path)
    with atomic_path(path) as temporary, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's notes on shape inference, not the user's concern
        torch.onnx.export(
            network.eval(),
            (example,),
            str(temporary),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "image"}, OUTPUT_NAME: {0: "image"}},
            opset_version=OPSET,
        )
        model = onnx.load(str(temporary))
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
        onnx.checker.check_model(model)
        onnx.save(model, str(temporary))
    return path
