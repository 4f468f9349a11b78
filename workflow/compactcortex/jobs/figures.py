"""Jobs of ``rules/figures.smk``: the analyses of how the compact models compute (compressibility, dot detectors),
the paper's four figures, and the report's other figures (held-out predictions per neuron, the ensemble's training
curves, a page per compact model)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from compactcortex.analysis.compressibility import (
    bottleneck_layer,
    early_filter_dataset,
    early_filters,
    filters_table,
    trained_early_filters,
)
from compactcortex.analysis.dots import ablation_table, dot_selectivity
from compactcortex.atomic import atomic_directory
from compactcortex.compact.published import load_published_model
from compactcortex.errors import InputDataError
from compactcortex.figures.accuracy import accuracy_figure
from compactcortex.figures.compact_model import CompactModelPage, compact_model_figure
from compactcortex.figures.compressibility import compressibility_figure
from compactcortex.figures.dots import dots_figure
from compactcortex.figures.predictions import neuron_panels, noise_ceiling_figure, predictions_figure
from compactcortex.figures.published import published_models_figure
from compactcortex.figures.published_check import published_check_figure
from compactcortex.figures.style import paper_style, save_figure, save_png
from compactcortex.figures.synthesis import synthesis_figure
from compactcortex.figures.training import training_curves_figure
from compactcortex.io.compact_models import FILTER_COLUMNS, load_compact_model
from compactcortex.io.cowley2023 import published_models
from compactcortex.io.early_filters import write_early_filters
from compactcortex.io.ground_truth import read_ground_truth
from compactcortex.io.members import read_member
from compactcortex.io.predictions import read_predictions
from compactcortex.io.stimulus_sets import ADVERSARIAL_DOWN, ADVERSARIAL_UP, CONTROL, PREDICTIONS, read_stimuli
from compactcortex.io.tables import read_table, write_table
from compactcortex.models.compact import predict
from compactcortex.provenance import provenance_attrs
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
    attrs = provenance_attrs({"clusters": clusters, "cover": cover, "seed": seed}, model_tables)
    dataset, notes = early_filter_dataset(found, model_of, table["neuron"].to_numpy(), clusters, cover, seed, attrs)
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


def analyze_published_models(
    *,
    root: str,
    predictions: Sequence[str],
    table_output: str,
    filters_output: str,
    selectivity_output: str,
    clusters: int,
    cover: float,
    threshold: float,
    seed: int,
) -> None:
    """The paper's own compact models through this pipeline's analyses (docs/method.md section 6): filters per layer
    and the consolidation step (the narrowest of layers 1-4), the clustering of their layer-0 filters against random
    filters, and their dot selectivity (the dot battery against their predictions for their session's own natural
    images, ``published_compact_predictions``)."""
    rows, found, model_of = [], [], []
    available = published_models(root)
    for path in predictions:
        values, neuron_ids = read_predictions(path)
        session = Path(path).stem
        natural_of = dict(zip(neuron_ids.astype(str), values[0], strict=True))
        numbers = [number for name, number in available if name == session]
        if not numbers:
            raise InputDataError(Path(root), f"holds no published compact models of session {session}")
        for number in numbers:
            neuron = f"{session}_n{number:03d}"
            if neuron not in natural_of:
                raise InputDataError(Path(path), f"has no predictions of the published model of {neuron}")
            model = load_published_model(root, session, number, dtype=torch.float32)
            battery, _ = dot_battery(model.image_size)
            found.append(trained_early_filters(model))
            model_of += [len(rows)] * model.filters[0]
            rows.append(
                {
                    "session": session,
                    "neuron": neuron,
                    **{column: f for column, f in zip(FILTER_COLUMNS, model.filters, strict=True)},
                    "n_parameters": model.n_parameters(),
                    "bottleneck_layer": bottleneck_layer(model.filters),
                    "dot_selectivity": dot_selectivity(predict(model, battery)[:, 0], natural_of[neuron]),
                }
            )
        log.info("%s: %d published models analysed", session, len(numbers))
    table = pd.DataFrame(rows)
    table["dot_selective"] = table["dot_selectivity"] > threshold
    attrs = provenance_attrs({"clusters": clusters, "cover": cover, "seed": seed, "root": root}, predictions)
    dataset, notes = early_filter_dataset(
        {"trained": found}, np.array(model_of), table["neuron"].to_numpy(), clusters, cover, seed, attrs
    )
    write_early_filters(filters_output, dataset)
    write_table(table_output, table[["session", "neuron", *FILTER_COLUMNS, "n_parameters", "bottleneck_layer"]])
    write_table(selectivity_output, table[["session", "neuron", "dot_selectivity", "dot_selective"]])
    log.info(
        "%d published models: median filters %s, narrowest layers %s, %d dot-selective",
        len(table),
        table[FILTER_COLUMNS].median().tolist(),
        table["bottleneck_layer"].value_counts().sort_index().to_dict(),
        int(table["dot_selective"].sum()),
    )
    for note in notes:
        log.info(note)


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


def figure_published_models(
    *, ours: Sequence[str], published: Sequence[str], threshold: float, png: str, pdf: str
) -> None:
    with paper_style():
        save_figure(published_models_figure(ours, published, threshold), png, pdf)


def figure_published_check(*, scores: Sequence[str], adversarial: Sequence[str], png: str, pdf: str) -> None:
    """This pipeline's synthesised images shown to the published compact models of the same neurons."""
    with paper_style():
        save_figure(published_check_figure(scores, adversarial), png, pdf)


def figure_predictions(
    *,
    evaluations: Sequence[str],
    datasets: Sequence[str],
    ensemble_predictions: Sequence[str],
    compact_predictions: Sequence[str],
    grid_png: str,
    grid_pdf: str,
    ceiling_png: str,
    ceiling_pdf: str,
) -> None:
    """Each test neuron's predicted against its recorded held-out responses (a grid, best to worst), and each model's
    accuracy against the neuron's noise ceiling. Every list holds one file per session: ``evaluation/<session>.csv``,
    ``sessions/<session>.nc``, ``ensemble/predictions/<session>.nc``, ``compact/<session>/predictions.nc``."""
    evaluation_of = {Path(path).stem: path for path in evaluations}
    panels, metric = neuron_panels(
        evaluation_of,
        {Path(path).stem: path for path in datasets},
        {Path(path).stem: path for path in ensemble_predictions},
        {Path(path).parent.name: path for path in compact_predictions},
    )
    with paper_style():
        save_figure(predictions_figure(panels, metric), grid_png, grid_pdf)
        save_figure(noise_ceiling_figure(evaluation_of), ceiling_png, ceiling_pdf)
    log.info("%d test neurons of %d sessions", len(panels), len(evaluation_of))


def figure_training_curves(*, members: Sequence[str], png: str, pdf: str) -> None:
    """The ensemble's training curves, from the history each member's file keeps."""
    saved = [read_member(path) for path in members]
    with paper_style():
        save_figure(training_curves_figure(saved), png, pdf)


def figure_compact_models(
    *, models_tables: Sequence[str], stimulus_sets: Sequence[str], evaluations: Sequence[str], output: str
) -> None:
    """One page per compact model (``<output>/<session>/<neuron>.png``): its filters per layer, its layer-0 filters,
    its synthesised images with the model's responses, and its fidelity and accuracy beside the ensemble's. The lists
    hold one file per session, in the same order: ``models.csv``, the stimulus set, the evaluation table."""
    with atomic_directory(output) as folder:
        for models_table, stimulus_set, evaluation in zip(models_tables, stimulus_sets, evaluations, strict=True):
            session = Path(models_table).parent.name
            (folder / session).mkdir()
            for neuron, page in _compact_model_pages(models_table, stimulus_set, evaluation):
                save_png(compact_model_figure(page), folder / session / f"{neuron}.png")
            log.info("%s: %d compact model pages", session, len(list((folder / session).glob("*.png"))))


def _compact_model_pages(
    models_table: str, stimulus_set: str, evaluation: str
) -> Iterator[tuple[str, CompactModelPage]]:
    """(neuron, what its page shows) for every compact model of a session."""
    table = read_table(models_table)
    images, stimuli = read_stimuli(stimulus_set)
    predictions, neurons = read_predictions(Path(stimulus_set) / PREDICTIONS)
    if predictions.shape[-1] != len(stimuli):
        raise InputDataError(Path(stimulus_set), f"predicts {predictions.shape[-1]} images of {len(stimuli)}")
    response_of = {str(neuron): values for neuron, values in zip(neurons, predictions[0], strict=True)}
    scores = read_table(evaluation).set_index("neuron")
    stimuli["index"] = np.arange(len(stimuli))
    for row in table.itertuples():
        model, card = load_compact_model(Path(models_table).parent / row.card)
        neuron = str(row.neuron)
        own = stimuli["neuron"] == neuron
        adversarial = own & stimuli["stimulus"].isin([ADVERSARIAL_UP, ADVERSARIAL_DOWN])
        rows = stimuli[own | stimuli["image"].isin(stimuli.loc[adversarial, "source"])].copy()  # and the sources
        rows["response"] = response_of[neuron][rows["index"].to_numpy()]
        evaluated = scores.loc[neuron] if neuron in scores.index else {}
        yield (
            neuron,
            CompactModelPage(
                session=card["session"],
                neuron=neuron,
                filters=card["filters"],
                filters_initial=card.get("filters_initial", card["filters"]),
                early_filters=trained_early_filters(model).reshape(model.layers["layer0_conv"].weight.shape),
                images=images,
                stimuli=rows,
                scores={
                    "n_parameters": card["n_parameters"],
                    **{key: card.get(key) for key in ("fidelity_r2", "fidelity_r2_unpruned", "r2_er", "r")},
                    **{key: evaluated.get(key) for key in ("r2_er_ensemble", "r_ensemble", "reliability")},
                },
            ),
        )
