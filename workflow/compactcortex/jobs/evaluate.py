"""Jobs of ``rules/evaluate.smk``: the held-out accuracy of every model of a test session, per neuron."""

from __future__ import annotations

from collections.abc import Mapping

from compactcortex.evaluate import evaluation_table
from compactcortex.io.tables import write_table


def evaluate_session(*, dataset: str, predictions: Mapping[str, str], output: str, truth: str | None = None) -> None:
    """One row per neuron: r2_ER and Pearson r on the held-out half for each model given in ``predictions``."""
    write_table(output, evaluation_table(dataset, predictions, truth))
