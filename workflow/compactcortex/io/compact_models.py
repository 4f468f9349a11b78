"""A compact model on disk: its state dict (``<neuron>.pt``) beside a JSON model card (``<neuron>.json``).

The card holds everything needed to rebuild the model without the pipeline (``architecture``), what it was made
from and with (session, neuron, seed, config hash, code version), and how good it is (fidelity to the teacher,
accuracy on the held-out real responses). ``load_compact_model(card)`` returns a ready model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from compactcortex.atomic import save_torch_atomic, write_text_atomic
from compactcortex.errors import InputDataError
from compactcortex.models.compact import N_LAYERS, CompactModel
from compactcortex.provenance import sha256_file

CARD_FORMAT = "compactcortex.compact_model/1"
TIMINGS = "timings.tsv"  # per neuron: seconds of distillation, pruning and retraining (beside the cards)
FILTER_COLUMNS = [f"filters_layer{k}" for k in range(N_LAYERS)]  # a models table's filters per layer
REQUIRED_KEYS = ("format", "session", "neuron", "architecture", "state_dict", "state_dict_sha256", "n_parameters")


def _json_safe(value: Any) -> Any:
    """NaN and infinity are not JSON: they are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def save_compact_model(model: CompactModel, card: Mapping[str, Any], directory: str | Path, name: str) -> Path:
    """Write ``<name>.pt`` and ``<name>.json`` into ``directory`` (atomically); returns the card's path."""
    directory = Path(directory)
    state_path = directory / f"{name}.pt"
    save_torch_atomic({key: value.detach().cpu() for key, value in model.state_dict().items()}, state_path)
    full_card = {
        "format": CARD_FORMAT,
        **dict(card),
        "architecture": model.config(),
        "n_parameters": model.n_parameters(),
        "state_dict": state_path.name,
        "state_dict_sha256": sha256_file(state_path),
    }
    card_path = directory / f"{name}.json"
    write_text_atomic(card_path, json.dumps(_json_safe(full_card), indent=2) + "\n")
    return card_path


def read_card(path: str | Path) -> dict[str, Any]:
    """A model card, checked for the keys a loader needs."""
    path = Path(path)
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputDataError(path, "model card not found") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputDataError(path, f"is not a readable JSON model card (corrupt or truncated?): {exc}") from exc
    if not isinstance(card, dict):
        raise InputDataError(path, "a model card must be a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in card]
    if missing:
        raise InputDataError(path, f"model card lacks {', '.join(missing)}")
    if card["format"] != CARD_FORMAT:
        raise InputDataError(path, f"unknown model card format {card['format']!r} (expected {CARD_FORMAT!r})")
    return card


def load_compact_model(card_path: str | Path, device: str = "cpu") -> tuple[CompactModel, dict[str, Any]]:
    """(model in eval mode, card) from a model card; the state dict is checked against the card's checksum."""
    card_path = Path(card_path)
    card = read_card(card_path)
    state_path = card_path.parent / card["state_dict"]
    if not state_path.is_file():
        raise InputDataError(state_path, f"state dict named by {card_path.name} not found")
    if sha256_file(state_path) != card["state_dict_sha256"]:
        raise InputDataError(state_path, f"checksum differs from {card_path.name}'s (corrupt, or another model's?)")
    try:
        model = CompactModel.from_config(card["architecture"])
    except (TypeError, ValueError) as exc:
        raise InputDataError(card_path, f"architecture cannot be built: {exc}") from exc
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt or mismatched files
        raise InputDataError(state_path, f"cannot be loaded into the card's architecture: {exc}") from exc
    if model.n_parameters() != card["n_parameters"]:
        raise InputDataError(card_path, f"n_parameters {card['n_parameters']} but the model has {model.n_parameters()}")
    return model.to(device).eval(), card


def card_paths(folders: Sequence[str | Path]) -> list[Path]:
    """The model cards in ``folders`` (compression jobs' outputs), ordered by neuron."""
    return sorted((path for folder in folders for path in Path(folder).glob("*.json")), key=lambda p: p.stem)
