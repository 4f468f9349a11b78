"""Jobs of ``rules/figures.smk``: the analyses of how the compact models compute (compressibility, dot detectors)
and the paper's four figures."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from compactcortex.analysis.compressibility import cluster_early_filters, early_filters, filters_table
from compactcortex.analysis.dots import ablation_table, dot_selectivity
from compactcortex.figures.accuracy import accuracy_figure
from compactcortex.figures.compressibility import compressibility_figure
from compactcortex.figures.dots import dots_figure
from compactcortex.figures.style import paper_style, save_figure
from compactcortex.figures.synthesis import synthesis_figure
from compactcortex.io.compact_models import load_compact_model
from compactcortex.io.early_filters import write_early_filters
from compactcortex.io.ground_truth import read_ground_truth
from compactcortex.io.stimulus_sets import CONTROL, read_stimuli
from compactcortex.io.tables import read_table, write_table
from compactcortex.models.compact import predict
from compactcortex.provenance import provenance_attrs
from compactcortex.seeding import rng_for
from compactcortex.stimuli import DOT_FACTORS, dot_battery

log = logging.getLogger(__name__)


def analyze_compressibility(
    *, model_tables: Sequence[str], table_output: str, filters_output: str, clusters: int, cover: float, seed: int
) -> None:
    """Filters per layer of every compact model, and the clustering of their early filters (trained, and what
    training added), each against the chance level of random filters of the same count."""
    table = filters_table(model_tables)
    found: dict[str, list[np.ndarray]] = {"trained": [], "learned": []}
    model_of = []
    for i, card in enumerate(table["card"]):
        model, card_values = load_compact_model(card)
        for name, filters in early_filters(model, card_values).items():
            found[name].append(filters)
        model_of += [i] * model.filters[0]
    model_of = np.array(model_of)
    variables, notes = {}, []
    for name, parts in found.items():
        result = cluster_early_filters(
            np.concatenate(parts), model_of, clusters, cover, rng_for(seed, "analysis", name)
        )
        side = int(round(np.sqrt(result["centres"].shape[1] / 3)))
        variables |= {
            f"{name}_centre": (("cluster", "channel", "y", "x"), result["centres"].reshape(-1, 3, side, side)),
            f"{name}_coverage": (("n_clusters",), result["coverage"]),
            f"{name}_coverage_random": (("n_clusters",), result["coverage_random"]),
            f"{name}_cluster": (("filter",), result["labels"]),
            f"{name}_similarity": (("filter",), result["similarity"]),
            f"{name}_similarity_random": (("filter",), result["similarity_random"]),
        }
        similarity, random = np.median(result["similarity"]), np.median(result["similarity_random"])
        notes.append(
            f"{name}: median similarity {similarity:.2f} (random {random:.2f}); {clusters} clusters cover "
            f"{100 * result['coverage'][-1]:.0f}% of models (random {100 * result['coverage_random'][-1]:.0f}%)"
        )
        variables[f"{name}_threshold"] = ((), result["threshold"])
    dataset = xr.Dataset(
        {**variables, "filter_model": (("filter",), model_of)},
        coords={
            "cluster": np.arange(min(clusters, len(model_of))),
            "n_clusters": np.arange(1, min(clusters, len(model_of)) + 1),
            "channel": ["R", "G", "B"],
            "model": ("model", table["neuron"].to_numpy()),
        },
        attrs={
            "cover": cover,
            "description": "layer-0 filters of every compact model clustered by spherical k-means; a model is "
            "covered by m clusters when at least `cover` of its filters are nearer one of them than 95% of random "
            "filters get to theirs",
            **provenance_attrs({"clusters": clusters, "cover": cover, "seed": seed}, model_tables),
        },
    )
    write_early_filters(filters_output, dataset)
    write_table(table_output, table.drop(columns="card"), float_format=None)
    log.info("%d models; bottleneck layers %s", len(table), table["bottleneck_layer"].value_counts().to_dict())
    for note in notes:
        log.info(note)


def analyze_dots(
    *,
    model_tables: Sequence[str],
    stimulus_sets: Sequence[str],
    truths: Sequence[str],
    selectivity_output: str,
    tuning_output: str,
    ablation_output: str,
    threshold: float,
    key_channels: int,
) -> None:
    """Dot selectivity of every compact model (natural reference: the closed-loop controls of its session), the
    dot tuning of every model, and the ablation of the most dot-selective model's consolidation step."""
    rows, tuning, models = [], [], {}
    kinds = _true_kinds(truths)
    for table_path, stimuli_path in zip(model_tables, stimulus_sets, strict=True):
        images, stimuli = read_stimuli(stimuli_path)
        natural = images[(stimuli["stimulus"] == CONTROL).to_numpy()]
        battery, params = dot_battery(images.shape[1])
        table = read_table(table_path)
        for neuron, card in zip(table["neuron"], table["card"], strict=True):
            model, _ = load_compact_model(Path(table_path).parent / card)
            responses = predict(model, battery)[:, 0]
            natural_responses = predict(model, natural)[:, 0]
            rows.append(
                {
                    "neuron": neuron,
                    "dot_selectivity": dot_selectivity(responses, natural_responses),
                    "true_kind": kinds.get(neuron, ""),
                }
            )
            models[neuron] = (model, battery, natural)
            scale = np.std(natural_responses, ddof=1)
            for factor, column in DOT_FACTORS.items():
                chosen = (params["factor"] == factor) | (params["factor"] == "reference")
                for value, response in zip(params[column][chosen], responses[chosen], strict=True):
                    tuning.append(
                        {
                            "neuron": neuron,
                            "factor": factor,
                            "value": float(value),
                            "response": float(response),
                            "response_z": float((response - natural_responses.mean()) / scale),
                        }
                    )
    selectivity = pd.DataFrame(rows)
    selectivity["dot_selective"] = selectivity["dot_selectivity"] > threshold
    best = selectivity.loc[selectivity["dot_selectivity"].idxmax(), "neuron"]
    ablation = ablation_table(*models[best], n_key=key_channels)
    ablation.insert(0, "neuron", best)
    for path, frame in (
        (selectivity_output, selectivity),
        (tuning_output, pd.DataFrame(tuning)),
        (ablation_output, ablation),
    ):
        write_table(path, frame)
    log.info(
        "%d of %d models dot-selective (> %.1f sd); most selective %s: %.2f sd, %.2f with %d key channels silenced",
        int(selectivity["dot_selective"].sum()),
        len(selectivity),
        threshold,
        best,
        ablation["dot_selectivity"].iloc[0],
        float(ablation.loc[ablation["silenced"].str.contains("key"), "dot_selectivity"].iloc[0]),
        key_channels,
    )


def _true_kinds(truths: Sequence[str]) -> dict[str, str]:
    """neuron -> its simulated kind (curvature, texture, colour, dot), where the data are simulated."""
    kinds: dict[str, str] = {}
    for path in truths:
        truth = read_ground_truth(path, ("neuron_kind",))
        kinds.update(zip(truth["neuron"].values.astype(str), truth["neuron_kind"].values.astype(str), strict=True))
    return kinds


def figure_accuracy(
    *, evaluations: Sequence[str], members: Sequence[str], compact_tables: Sequence[str], png: str, pdf: str
) -> None:
    with paper_style():
        save_figure(accuracy_figure(evaluations, members, compact_tables), png, pdf)


def figure_synthesis(
    *, stimulus_sets: Sequence[str], scores: Sequence[str], loops: Sequence[str], png: str, pdf: str
) -> None:
    with paper_style():
        save_figure(synthesis_figure(stimulus_sets, scores, loops), png, pdf)


def figure_compressibility(*, filters_table: str, early_filters: str, initial_filters: int, png: str, pdf: str) -> None:
    with paper_style():
        save_figure(compressibility_figure(filters_table, early_filters, initial_filters), png, pdf)


def figure_dots(
    *, selectivity: str, tuning: str, ablation: str, stimulus_sets: Sequence[str], threshold: float, png: str, pdf: str
) -> None:
    with paper_style():
        save_figure(dots_figure(selectivity, tuning, ablation, stimulus_sets, threshold), png, pdf)
