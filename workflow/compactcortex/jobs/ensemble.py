"""Jobs of ``rules/ensemble.smk``: backbone features, ensemble members, their mapping to held-out sessions, the
task-driven baseline and active learning."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from compactcortex.ensemble.active_learning import disagreement
from compactcortex.ensemble.data import fit_half, load_session, ridge_on_first_half
from compactcortex.ensemble.mapping import MappingSettings, map_members
from compactcortex.ensemble.train import TrainSettings, fit_member
from compactcortex.features import compute_features, feature_layers
from compactcortex.io.feature_cache import backbone_parameters, feature_sets, load_features, write_feature_cache
from compactcortex.io.image_sets import read_image_coords, read_images, write_image_set
from compactcortex.io.members import embedding_hw, load_member, save_member, save_readouts
from compactcortex.io.predictions import write_predictions
from compactcortex.io.stimulus_sets import write_active_learning_set
from compactcortex.models.ensemble import CoreShape, Member, count_parameters
from compactcortex.models.teacher import member_predictions
from compactcortex.provenance import provenance_attrs
from compactcortex.response_scale import ResponseScale
from compactcortex.seeding import rng_for
from compactcortex.stimuli import make_image_set

log = logging.getLogger(__name__)


def extract_features(
    *, images: str, output: str, features: Mapping[str, Any], device: str, layers: Sequence[str] | None = None
) -> None:
    """Run the frozen backbone over an image set and cache its layers (float16, image order kept); ``layers``
    defaults to the ensemble's and the baseline's."""
    pixels, image_ids = read_images(images)
    layers = list(layers) if layers else feature_layers(features)
    backbone, extracted = compute_features(pixels, features, layers, device)
    write_feature_cache(
        output,
        backbone=features["backbone"],
        input_size=features["input_size"],
        image_ids=image_ids,
        layers=extracted,
        n_parameters={layer: backbone.n_parameters(layer) for layer in layers},
        provenance=provenance_attrs({"features": dict(features)}, [images]),
    )
    shapes = ", ".join(f"{layer} {tuple(values.shape[1:])}" for layer, values in extracted.items())
    log.info("%s: %d images -> %s", output, len(image_ids), shapes)


def train_member(
    *,
    member: int,
    train_datasets: Sequence[str],
    train_features: Sequence[str],
    validation_dataset: str,
    validation_features: str,
    output: str,
    checkpoint: str,
    ensemble: Mapping[str, Any],
    features: Mapping[str, Any],
    seed: int,
    fit_half_datasets: Sequence[str] = (),
    fit_half_features: Sequence[str] = (),
) -> None:
    """Train one member on the training sessions, stopping early on the validation session. With
    ``fit_half_datasets`` (the test sessions, under ``ensemble.test_fit_halves``), their fit halves train the core too,
    their neurons as extra readouts; their held-out halves are never seen."""
    layer = features["layer"]
    sessions = [load_session(d, f, layer) for d, f in zip(train_datasets, train_features, strict=True)]
    sessions += [fit_half(load_session(d, f, layer)) for d, f in zip(fit_half_datasets, fit_half_features, strict=True)]
    validation = load_session(validation_dataset, validation_features, layer)
    shape = CoreShape.from_config(ensemble, int(sessions[0].features.shape[1]))
    settings = TrainSettings.from_config(ensemble, seed)
    log.info(
        "member %d: %d training sessions (%d of them fit halves), %d images, %d neurons; validation %s",
        member,
        len(sessions),
        len(fit_half_datasets),
        sum(s.n_images for s in sessions),
        sum(s.n_neurons for s in sessions),
        validation.session,
    )
    result = fit_member(member, sessions, validation, shape, settings, checkpoint)
    neurons_per_session = {s.session: s.n_neurons for s in sessions}
    trained = Member(shape, neurons_per_session, embedding_hw(result["state_dict"]))
    trained.load_state_dict(result["state_dict"])
    save_member(
        output,
        {
            "member": member,
            "shape": shape.as_dict(),
            "neurons_per_session": neurons_per_session,
            "neuron_ids": {s.session: [str(n) for n in s.neuron_ids] for s in sessions},
            "state_dict": result["state_dict"],
            "validation_score": result["validation_score"],
            "best_epoch": result["best_epoch"],
            "history": result["history"],
            "n_parameters_core": count_parameters(trained.core),
            "n_parameters_backbone": backbone_parameters(train_features[0], layer),
            "provenance": provenance_attrs(
                {"ensemble": dict(ensemble), "features": dict(features), "seed": seed, "member": member},
                [*train_datasets, *fit_half_datasets, validation_dataset],
            ),
        },
    )
    Path(checkpoint).unlink(missing_ok=True)
    log.info(
        "member %d: best validation median %.4f at epoch %d", member, result["validation_score"], result["best_epoch"]
    )


def map_session(
    *,
    member_paths: Sequence[str],
    dataset: str,
    features_path: str,
    predictions_output: str,
    readouts_output: str,
    mapping: Mapping[str, Any],
    features: Mapping[str, Any],
    device: str,
    seed: int,
) -> None:
    """Map every member to a held-out session's neurons (on the first half of its images); predict all its images."""
    session = load_session(dataset, features_path, features["layer"])
    members = [load_member(path, device) for path in member_paths]
    settings = MappingSettings.from_config(mapping, seed)
    predictions, mappings = map_members(members, session, settings, device)
    params = {"mapping": dict(mapping), "features": dict(features), "seed": seed}
    write_predictions(
        predictions_output, predictions, session, params, [dataset, *member_paths], member=np.arange(len(members))
    )
    scale = ResponseScale.of_fit_half(session.responses, session.response_units)
    save_readouts(readouts_output, settings.method, session.neuron_ids, mappings, scale)


def task_driven_session(
    *,
    dataset: str,
    features_path: str,
    output: str,
    task_driven: Mapping[str, Any],
    features: Mapping[str, Any],
    seed: int,
) -> None:
    """The task-driven baseline (docs/method.md section 3): frozen ImageNet features with ridge regression. The
    layer and the ridge penalty are chosen by cross-validation inside the first half of the session's images only;
    the second half is held out for evaluation, as for the ensemble."""
    session = load_session(dataset, features_path, features["layer"])
    sets = feature_sets(features_path, features["baseline_layers"], session.image_ids)
    predictions, _, report = ridge_on_first_half(
        sets, session.repeat_mean(), tuple(task_driven["ridge_alphas"]), task_driven["cv_folds"], seed
    )
    log.info("%s: task-driven baseline chose layer %s", session.session, report["chosen_set"])
    write_predictions(
        output,
        predictions,
        session,
        {"task_driven": dict(task_driven), "features": dict(features), "seed": seed},
        [dataset, features_path],
        attrs={"chosen_layer": str(report["chosen_set"])},
    )


def candidate_pool(*, output: str, pool: Mapping[str, Any], image_size: int, seed: int) -> None:
    """Draw the candidate pool of active learning: natural crops, procedural and artificial images, never shown."""
    images, image_types = make_image_set(rng_for(seed, "active_learning", "pool"), dict(pool["images"]), image_size)
    write_image_set(
        output,
        images,
        [f"pool{index:06d}" for index in range(len(images))],
        image_types,
        provenance_attrs({"pool": dict(pool), "image_size": image_size, "seed": seed}),
    )


def select_active_learning_images(
    *,
    member_paths: Sequence[str],
    readout_paths: Sequence[str],
    pool_images: str,
    pool_features: str,
    output_dir: str,
    n_images: int,
    layer: str,
    device: str,
) -> None:
    """Export the candidates the members disagree on most (PNG) and a manifest, for the next recording session."""
    images, image_ids = read_images(pool_images)
    image_types = read_image_coords(pool_images, ["image_type"])["image_type"].astype(str)
    features = load_features(pool_features, layer, image_ids)
    scores = disagreement(member_predictions(member_paths, readout_paths, features, device))
    chosen = np.argsort(-scores, kind="stable")[:n_images]
    table = pd.DataFrame(
        {
            "rank": np.arange(len(chosen)),
            "pool_image": image_ids[chosen],
            "image_type": image_types[chosen],
            "member_disagreement": scores[chosen],
            "pool_median_disagreement": float(np.median(scores)),
        }
    )
    write_active_learning_set(output_dir, images[chosen], table)
    log.info(
        "chose %d of %d candidates; disagreement %.3f (chosen median) vs %.3f (pool median)",
        len(chosen),
        len(scores),
        np.median(scores[chosen]),
        np.median(scores),
    )
