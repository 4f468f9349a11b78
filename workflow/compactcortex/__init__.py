"""compactcortex: data-driven and compact deep network models of visual-cortex neurons.

Implements Cowley, Stan, Pillow & Smith, "Compact deep neural network models of visual cortex". The public API
(``compactcortex.api``) is importable from the top: ``cc.load_compact_model``, ``cc.load_ensemble``,
``cc.maximizing_image``, ``cc.export_onnx``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

API = ("CompactNeuronModel", "EnsembleModel", "export_onnx", "load_compact_model", "load_ensemble", "maximizing_image")
__all__ = [*API, "__version__"]


def __getattr__(name: str) -> Any:
    """The API on first use: the pipeline's rules import this package without paying for PyTorch."""
    if name in API:
        from compactcortex import api

        return getattr(api, name)
    raise AttributeError(f"module 'compactcortex' has no attribute {name!r}")
