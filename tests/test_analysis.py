"""Scoring the closed loop and analysing compact models (docs/method.md sections 5-6): permutation p-values, the
closed-loop tables of a hand-made session, spherical k-means of planted filter clusters, dot selectivity and the
ablation of a bottleneck layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from compactcortex.analysis.compressibility import (
    cluster_early_filters,
    shared_filter_coverage,
    spherical_kmeans,
)
from compactcortex.analysis.dots import ablation_table, bottleneck_layer, dot_selectivity, silenced
from compactcortex.io.early_filters import clusters_to_cover
from compactcortex.models.compact import predict
from compactcortex.synthesis.closed_loop import closed_loop_tables, permutation_p_value
from tests.test_compact_distill_prune import make_images, make_teacher

SIZE = 16


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- permutation_p_value ---


def test_a_sample_clearly_above_the_reference_is_significant() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=60)
    p = permutation_p_value(np.full(5, 10.0), reference, rng, 999)
    assert p == pytest.approx(1 / 1000)  # no permutation reaches the observed difference
    assert p < 0.001 + 1e-12


def test_a_sample_clearly_below_the_reference_is_not() -> None:
    rng = np.random.default_rng(1)
    assert permutation_p_value(np.full(5, -10.0), rng.normal(size=60), rng, 200) == 1.0


def test_p_values_under_the_null_are_roughly_uniform() -> None:
    rng = np.random.default_rng(2)
    p = np.array([permutation_p_value(rng.normal(size=5), rng.normal(size=60), rng, 200) for _ in range(200)])
    assert ((p > 0) & (p <= 1)).all()
    assert np.all(p >= 1 / 201)  # the observed labelling counts as one permutation
    assert 0.01 <= np.mean(p < 0.05) <= 0.10
    assert 0.4 <= np.mean(p) <= 0.6


def test_p_value_of_exchangeable_identical_values_is_one() -> None:
    """Every permutation of a constant pool ties the observed difference (0 >= 0)."""
    assert permutation_p_value(np.ones(3), np.ones(7), np.random.default_rng(0), 50) == 1.0


def test_p_value_is_seeded_and_nan_for_an_empty_sample() -> None:
    sample, reference = np.array([1.0, 2.0, 3.5]), np.array([0.5, 1.0, 2.0, 0.0, 1.5])
    first = permutation_p_value(sample, reference, np.random.default_rng(5), 300)
    assert first == permutation_p_value(sample, reference, np.random.default_rng(5), 300)
    assert np.isnan(permutation_p_value(np.array([]), reference, np.random.default_rng(0), 10))
    assert np.isnan(permutation_p_value(sample, np.array([]), np.random.default_rng(0), 10))


def test_p_value_of_a_small_design_matches_enumeration() -> None:
    """2 of 4 values: of the 6 labellings, only the observed one reaches its difference, so p -> 1/6."""
    p = permutation_p_value(np.array([10.0, 11.0]), np.array([1.0, 2.0]), np.random.default_rng(0), 20000)
    assert p == pytest.approx(1 / 6, abs=0.01)


# --- closed_loop_tables ---

CONTROLS = ["c0", "c1", "c2", "c3"]
# image: (stimulus, neuron, source)
STIMULI = {
    "c0": ("control", "", ""),
    "c1": ("control", "", ""),
    "c2": ("control", "", ""),
    "c3": ("control", "", ""),
    "n1_max0": ("maximizing", "n1", ""),
    "n1_max1": ("maximizing", "n1", ""),
    "n1_min0": ("minimizing", "n1", ""),
    "n1_top0": ("natural_top", "n1", "c3"),
    "n1_up0": ("adversarial_up", "n1", "c0"),  # true: 2 -> 3, up: correct
    "n1_down0": ("adversarial_down", "n1", "c1"),  # true: 4 -> 5, not down: wrong
    "n1_up1": ("adversarial_up", "n1", "c2"),  # true: 6 -> 7, up: correct
    "n2_max0": ("maximizing", "n2", ""),
    "n2_max1": ("maximizing", "n2", ""),
    "n2_max2": ("maximizing", "n2", ""),
    "n2_min0": ("minimizing", "n2", ""),
    "n2_top0": ("natural_top", "n2", "c0"),
    "n2_up0": ("adversarial_up", "n2", "c0"),  # true: 1 -> 0.5, not up: wrong
    "n2_down0": ("adversarial_down", "n2", "c0"),  # true: 1 -> 0.2, down: correct
    "n3_max0": ("maximizing", "n3", ""),  # n3 was not recorded in the closed-loop session
    "n3_up0": ("adversarial_up", "n3", "c0"),
}
TRUE = {
    "n1": {"c0": 2, "c1": 4, "c2": 6, "c3": 8, "n1_max0": 20, "n1_max1": 30, "n1_min0": 0.5, "n1_top0": 9,
           "n1_up0": 3, "n1_down0": 5, "n1_up1": 7},
    "n2": {"c0": 1, "c1": 1, "c2": 1, "c3": 1, "n2_max0": 3, "n2_max1": 5, "n2_max2": 4, "n2_min0": 0.1,
           "n2_top0": 2, "n2_up0": 0.5, "n2_down0": 0.2},
    "n3": {"c0": 1, "c1": 2, "c2": 3, "c3": 4, "n3_max0": 10, "n3_up0": 2},
}  # fmt: skip
# recorded responses: the true rates plus noise, chosen so that the recorded adversarial signs differ from the true
RECORDED_SHIFT = {"n1_up0": -2.0, "n1_down0": -3.0, "n2_up0": +1.0}


def _tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    stimuli = pd.DataFrame(
        [
            {"image": image, "stimulus": stimulus, "neuron": neuron, "source": source, "predicted": 0.0}
            for image, (stimulus, neuron, source) in STIMULI.items()
        ]
    )
    true_rates = pd.DataFrame(TRUE).reindex(list(STIMULI)).fillna(0.0)
    noise = np.random.default_rng(0).normal(0, 0.01, true_rates.shape)
    recorded = true_rates + noise
    for image, shift in RECORDED_SHIFT.items():
        recorded.loc[image] += shift
    return stimuli, recorded.drop(columns="n3"), true_rates


def test_closed_loop_scores_from_true_rates() -> None:
    stimuli, recorded, true_rates = _tables()
    scores, adversarial = closed_loop_tables(stimuli, recorded, true_rates, np.random.default_rng(0), 99)
    assert scores["neuron"].tolist() == ["n1", "n2"]  # n3 is not in `recorded`: skipped
    n1, n2 = (scores.set_index("neuron").loc[name] for name in ("n1", "n2"))
    assert n1["drive_ratio"] == pytest.approx(np.mean([20, 30]) / np.mean([2, 4, 6, 8]))  # 5
    assert n2["drive_ratio"] == pytest.approx(np.mean([3, 5, 4]) / 1.0)
    assert n1["drive_ratio_natural_top"] == pytest.approx(9 / 5)
    assert n1["max_synthesised_over_max_control"] == pytest.approx(30 / 8)
    assert n2["max_synthesised_over_max_control"] == pytest.approx(5 / 1)
    assert (n1["n_maximizing"], n2["n_maximizing"]) == (2, 3)
    assert (scores["drive_from"] == "true rates").all()
    assert n1["recorded_controls"] == pytest.approx(recorded.loc[CONTROLS, "n1"].mean())
    assert n1["recorded_maximizing"] == pytest.approx(recorded.loc[["n1_max0", "n1_max1"], "n1"].mean())
    assert n2["recorded_minimizing"] == pytest.approx(recorded.loc["n2_min0", "n2"])
    assert n2["recorded_natural_top"] == pytest.approx(recorded.loc["n2_top0", "n2"])
    # the share of adversarial images whose true rate moved the intended way
    assert n1["frac_adversarial_correct"] == pytest.approx(2 / 3)
    assert n2["frac_adversarial_correct"] == pytest.approx(1 / 2)

    assert set(adversarial["neuron"]) == {"n1", "n2"}
    table = adversarial.set_index("image")
    assert table.loc[["n1_up0", "n1_down0", "n1_up1", "n2_up0", "n2_down0"], "true_correct"].tolist() == [
        True,
        False,
        True,
        False,
        True,
    ]
    assert table.loc["n1_down0", "intended"] == "down" and table.loc["n1_up1", "intended"] == "up"
    assert table.loc["n1_up1", "source"] == "c2"
    assert table.loc["n1_up0", "true_change"] == pytest.approx(1.0)
    assert table.loc["n2_down0", "true_change"] == pytest.approx(-0.8)
    # recorded: n1_up0 fell (3 - 2 -> 1 - 2), n1_down0 fell (5 - 3 vs 4), n2_up0 rose (0.5 + 1 vs 1)
    assert table.loc[["n1_up0", "n1_down0", "n1_up1", "n2_up0", "n2_down0"], "recorded_correct"].tolist() == [
        False,
        True,
        True,
        True,
        True,
    ]
    for image, row in table.iterrows():
        expected = recorded.loc[image, row["neuron"]] - recorded.loc[row["source"], row["neuron"]]
        assert row["recorded_change"] == pytest.approx(expected)


def test_closed_loop_p_values_are_the_permutation_tests_in_order() -> None:
    stimuli, recorded, true_rates = _tables()
    scores, _ = closed_loop_tables(stimuli, recorded, true_rates, np.random.default_rng(3), 199)
    rng = np.random.default_rng(3)
    for neuron, row in scores.set_index("neuron").iterrows():
        response = recorded[neuron]
        mine = stimuli[stimuli["neuron"] == neuron]
        kind = {k: mine.loc[mine["stimulus"] == k, "image"].tolist() for k in ("maximizing", "natural_top")}
        minimizing = mine.loc[mine["stimulus"] == "minimizing", "image"].tolist()
        expected = [
            permutation_p_value(response[kind["maximizing"]], response[CONTROLS], rng, 199),
            permutation_p_value(response[kind["natural_top"]], response[CONTROLS], rng, 199),
            permutation_p_value(-response[minimizing], -response[CONTROLS], rng, 199),
        ]
        got = row[["p_maximizing_beats_natural", "p_natural_top_beats_natural", "p_minimizing_below_natural"]]
        assert got.tolist() == expected
        assert all(0 < p <= 1 for p in expected)
    # n1's two maximizing images are above all four controls: only 1 of the 15 labellings gets there
    assert scores.set_index("neuron").loc["n1", "p_maximizing_beats_natural"] < 0.2


def test_closed_loop_without_true_rates_scores_the_recorded_responses() -> None:
    stimuli, recorded, _ = _tables()
    scores, adversarial = closed_loop_tables(stimuli, recorded, None, np.random.default_rng(0), 50)
    n1 = scores.set_index("neuron").loc["n1"]
    expected = recorded.loc[["n1_max0", "n1_max1"], "n1"].mean() / recorded.loc[CONTROLS, "n1"].mean()
    assert n1["drive_ratio"] == pytest.approx(expected)
    assert (scores["drive_from"] == "recorded responses").all()
    assert "true_change" not in adversarial.columns and "true_correct" not in adversarial.columns
    # the recorded signs: n1 2 of 3 correct (up0 wrong), n2 both correct
    assert scores.set_index("neuron")["frac_adversarial_correct"].to_dict() == pytest.approx({"n1": 2 / 3, "n2": 1.0})


def test_closed_loop_without_adversarial_images_has_no_adversarial_share() -> None:
    stimuli, recorded, true_rates = _tables()
    stimuli = stimuli[~stimuli["stimulus"].str.startswith("adversarial")]
    scores, adversarial = closed_loop_tables(stimuli, recorded, true_rates, np.random.default_rng(0), 20)
    assert adversarial.empty and "frac_adversarial_correct" not in scores.columns
    assert scores["neuron"].tolist() == ["n1", "n2"]


# --- spherical k-means and shared early filters ---


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_spherical_kmeans_recovers_planted_clusters() -> None:
    rng = np.random.default_rng(0)
    prototypes = _unit(rng.normal(size=(3, 20)))
    truth = np.repeat(np.arange(3), [15, 25, 20])
    vectors = _unit(prototypes[truth] + 0.05 * rng.normal(size=(len(truth), 20)))
    order = rng.permutation(len(truth))
    vectors, truth = vectors[order], truth[order]
    centres, labels = spherical_kmeans(vectors, 3, np.random.default_rng(1))
    assert centres.shape == (3, 20) and labels.shape == truth.shape
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0, atol=1e-12)
    # the same partition up to relabelling: each true cluster is one label, and different clusters different labels
    mapping = {t: np.unique(labels[truth == t]) for t in range(3)}
    assert all(len(found) == 1 for found in mapping.values())
    assert len({int(found[0]) for found in mapping.values()}) == 3
    for t, found in mapping.items():
        assert centres[found[0]] @ prototypes[t] > 0.99
    # every vector is nearest its own centre
    np.testing.assert_array_equal(labels, np.argmax(vectors @ centres.T, axis=1))


def test_spherical_kmeans_with_more_clusters_than_vectors() -> None:
    vectors = _unit(np.random.default_rng(0).normal(size=(3, 5)))
    centres, labels = spherical_kmeans(vectors, 10, np.random.default_rng(0))
    assert centres.shape == (3, 5)
    assert sorted(labels.tolist()) == [0, 1, 2]
    np.testing.assert_allclose(np.sort(np.max(vectors @ centres.T, axis=1)), 1.0, atol=1e-12)


def _shared_filters(seed: int, noise: float = 0.02, dim: int = 75) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """10 models of 6 unit filters each, every model with all 4 shared prototypes and 2 more of them, plus noise."""
    rng = np.random.default_rng(seed)
    prototypes = _unit(rng.normal(size=(4, dim)))
    which = np.concatenate([np.concatenate([np.arange(4), rng.integers(0, 4, 2)]) for _ in range(10)])
    filters = _unit(prototypes[which] + noise * rng.normal(size=(len(which), dim)))
    return filters, np.repeat(np.arange(10), 6), which


@pytest.mark.parametrize("k", [4, 6])
def test_a_few_shared_clusters_cover_models_built_from_shared_filters(k: int) -> None:
    filters, model_of, which = _shared_filters(seed=0)
    result = cluster_early_filters(filters, model_of, k, 0.8, np.random.default_rng(0))
    coverage, random = result["coverage"], result["coverage_random"]
    assert coverage.shape == random.shape == (k,)
    assert np.all(np.diff(coverage) >= 0)  # more clusters never cover fewer models
    assert coverage[-1] == 1.0
    assert coverage[3] == 1.0
    assert clusters_to_cover(coverage, 0.8) <= 4
    assert random[-1] < 0.5
    assert isinstance(result["threshold"], float) and 0 < result["threshold"] < 1
    # relabelled consistently: cluster 0 is the one most models use, and each filter's similarity is to its centre
    centres, labels = result["centres"], result["labels"]
    assert centres.shape == (k, filters.shape[1]) and sorted(np.unique(labels)) == list(range(k))
    np.testing.assert_allclose(result["similarity"], np.sum(filters * centres[labels], axis=1), atol=1e-12)
    users = [len(np.unique(model_of[labels == j])) for j in range(k)]
    assert users == sorted(users, reverse=True)
    assert result["similarity"].min() > 0.9 > result["threshold"]
    # no cluster mixes prototypes; with k = 4, each prototype is one cluster
    for j in range(k):
        assert len(np.unique(which[labels == j])) == 1
    if k == 4:
        assert all(len(np.unique(labels[which == prototype])) == 1 for prototype in range(4))


def test_shared_filter_coverage_known_values() -> None:
    """3 models of 2 filters, 2 clusters: cluster 1 is used by all three models, cluster 0 by one."""
    labels = np.array([1, 1, 1, 0, 1, 1])
    model_of = np.array([0, 0, 1, 1, 2, 2])
    similarity = np.array([[0.1, 0.9], [0.2, 0.95], [0.0, 0.9], [0.99, 0.1], [0.3, 0.2], [0.1, 0.8]])
    order, coverage = shared_filter_coverage(similarity, labels, model_of, threshold=0.5, cover=1.0)
    assert order.tolist() == [1, 0]
    # cluster 1 alone: model 0 (both near), model 1 (one of two), model 2 (one of two) -> 1/3; both clusters: 2/3
    np.testing.assert_allclose(coverage, [1 / 3, 2 / 3])
    _, half = shared_filter_coverage(similarity, labels, model_of, threshold=0.5, cover=0.5)
    np.testing.assert_allclose(half, [1.0, 1.0])


def test_clusters_to_cover() -> None:
    coverage = np.array([0.2, 0.5, 0.8, 1.0])
    assert clusters_to_cover(coverage, 0.8) == 3
    assert clusters_to_cover(coverage, 0.5) == 2
    assert clusters_to_cover(coverage) == 3
    assert clusters_to_cover(coverage, 0.1) == 1
    assert clusters_to_cover(np.array([0.1, 0.3, 0.6]), 0.8) is None
    assert clusters_to_cover(np.array([]), 0.8) is None


# --- dots ---


def test_dot_selectivity_known_values() -> None:
    battery, natural = np.array([3.0, 5.0]), np.array([1.0, 2.0, 3.0])
    assert dot_selectivity(battery, natural) == pytest.approx((4.0 - 2.0) / 1.0)
    natural = np.array([0.0, 4.0, 2.0, 6.0])  # mean 3, sd (ddof 1) sqrt(20 / 3)
    assert dot_selectivity(np.array([1.0]), natural) == pytest.approx((1 - 3) / np.sqrt(20 / 3))
    assert np.isnan(dot_selectivity(battery, np.full(4, 2.0)))


def test_bottleneck_layer() -> None:
    assert bottleneck_layer([10, 8, 3, 3, 5]) == 2
    assert bottleneck_layer([1, 8, 6, 4, 4]) == 3  # layer 0 does not count
    assert bottleneck_layer([5, 5, 5, 5, 5]) == 1
    assert bottleneck_layer((9, 9, 9, 9, 2)) == 4


@pytest.fixture(scope="module")
def model_and_images() -> dict:
    images = make_images(60, seed=4, size=SIZE)
    return {"model": make_teacher(images[:40], seed=2), "battery": images[:20], "natural": images[20:]}


@pytest.mark.parametrize(("layer", "channels"), [(2, [0, 2]), (0, [1]), (4, [0, 1, 2])])
def test_silenced_channels_are_zero_and_the_hook_goes_away(
    model_and_images: dict, layer: int, channels: list[int]
) -> None:
    model = model_and_images["model"]
    x = model.preprocess(model_and_images["natural"])
    with torch.no_grad():
        intact = model.layer_outputs(x)
        with silenced(model, layer, channels) as quiet:
            assert quiet is model
            outputs = model.layer_outputs(x)
            silenced_prediction = model(x)
        after = model.layer_outputs(x)
        intact_prediction = model(x)
    kept = [c for c in range(model.filters[layer]) if c not in channels]
    assert torch.count_nonzero(outputs[layer][:, channels]) == 0
    assert torch.count_nonzero(intact[layer][:, channels]) > 0  # they were active
    assert torch.equal(outputs[layer][:, kept], intact[layer][:, kept])
    for k in range(layer):
        assert torch.equal(outputs[k], intact[k])
    assert not torch.equal(silenced_prediction, intact_prediction)
    for k in range(len(intact)):
        assert torch.equal(after[k], intact[k])


def test_silenced_removes_its_hook_after_an_error(model_and_images: dict) -> None:
    model = model_and_images["model"]
    x = model.preprocess(model_and_images["natural"][:4])
    with torch.no_grad():
        expected = model(x)
        with pytest.raises(RuntimeError, match="inside"), silenced(model, 1, [0, 1]):
            raise RuntimeError("inside")
        assert torch.equal(model(x), expected)
    assert not model.layers["layer1_bn"]._forward_hooks


def test_ablation_table(model_and_images: dict) -> None:
    model, battery, natural = model_and_images["model"], model_and_images["battery"], model_and_images["natural"]
    layer = bottleneck_layer(model.filters)
    assert model.filters == (4, 4, 3, 3, 3) and layer == 2
    table = ablation_table(model, battery, natural, n_key=2)
    assert table.columns.tolist() == [
        "silenced",
        "channels",
        "layer",
        "dot_selectivity",
        "battery_mean",
        "natural_mean",
        "natural_r",
    ]
    n = model.filters[layer]
    assert len(table) == 1 + n + 2
    assert table["silenced"].tolist() == [
        "none",
        *(f"channel {c}" for c in range(n)),
        "the 2 key channels",
        "the other 1 channels",
    ]
    assert (table["layer"] == layer).all()
    intact_battery, intact_natural = predict(model, battery)[:, 0], predict(model, natural)[:, 0]
    first = table.iloc[0]
    assert first["channels"] == ""
    assert first["dot_selectivity"] == pytest.approx(dot_selectivity(intact_battery, intact_natural))
    assert first["battery_mean"] == pytest.approx(intact_battery.mean())
    assert first["natural_mean"] == pytest.approx(intact_natural.mean())
    assert first["natural_r"] == pytest.approx(1.0)
    for c in range(n):
        with silenced(model, layer, [c]):
            b, m = predict(model, battery)[:, 0], predict(model, natural)[:, 0]
        row = table.iloc[1 + c]
        assert row["channels"] == str(c)
        assert row["dot_selectivity"] == pytest.approx(dot_selectivity(b, m))
        assert row["natural_r"] == pytest.approx(np.corrcoef(m, intact_natural)[0, 1])
    # the key channels: the two whose loss costs the most selectivity
    cost = first["dot_selectivity"] - table["dot_selectivity"].iloc[1 : 1 + n].to_numpy()
    key = sorted(np.argsort(-cost, kind="stable")[:2].tolist())
    assert table.iloc[-2]["channels"] == " ".join(map(str, key))
    assert table.iloc[-1]["channels"] == str(next(c for c in range(n) if c not in key))
    # the model is left intact
    np.testing.assert_array_equal(predict(model, natural)[:, 0], intact_natural)


def test_ablation_table_with_every_channel_key_has_no_rest_row(model_and_images: dict) -> None:
    model = model_and_images["model"]
    table = ablation_table(model, model_and_images["battery"], model_and_images["natural"], n_key=10)
    n = model.filters[bottleneck_layer(model.filters)]
    assert len(table) == 1 + n + 1
    assert table.iloc[-1]["silenced"] == f"the {n} key channels"
    assert table.iloc[-1]["channels"] == " ".join(map(str, range(n)))


# --- the paper's own compact models through the same analyses ---


def test_the_published_models_filter_counts_give_the_papers_consolidation_step(cowley_dir) -> None:  # noqa: ANN001
    """From their filter counts alone (issue 15): median [48, 57, 3, 7, 3] filters per layer, and the narrowest of
    layers 1-4 is L2 in 79 of the 122 published models and L4 in 38."""
    from compactcortex.analysis.compressibility import bottleneck_layer as narrowest
    from compactcortex.io.cowley2023 import model_paths, published_models
    from compactcortex.io.cowley2023_models import read_filter_counts

    counts = np.array([read_filter_counts(model_paths(cowley_dir, s, n)[1]) for s, n in published_models(cowley_dir)])
    assert len(counts) == 122
    assert np.median(counts, axis=0).tolist() == [48, 57, 3, 7, 3]
    layers = pd.Series([narrowest(c) for c in counts]).value_counts()
    assert (layers[2], layers[4]) == (79, 38)


def test_the_published_models_analysis_job(cowley_dir, tmp_path) -> None:  # noqa: ANN001
    """The job on 3 of session 190923's published models (a root that links to them; their natural responses
    predicted here for 60 of the session's images): one row per model with its stored filter counts, their early
    filters clustered against random filters, and a finite dot selectivity each."""
    from compactcortex.compact.published import load_published_model
    from compactcortex.io.cowley2023 import published_models
    from compactcortex.io.cowley2023_models import read_session_images
    from compactcortex.io.early_filters import read_early_filters
    from compactcortex.io.predictions import PredictionIndex, write_predictions
    from compactcortex.io.tables import read_table
    from compactcortex.jobs.figures import analyze_published_models

    numbers = [n for s, n in published_models(cowley_dir) if s == "190923"][:3]
    root = tmp_path / "root"
    for folder, suffix in (("compact_models_torch", ".pt"), ("compact_models_nums_filters", ".npy")):
        (root / folder).mkdir(parents=True)
        for n in numbers:
            name = f"compact_model_190923_neuron{n}{suffix}"
            (root / folder / name).symlink_to(cowley_dir / folder / name)
    images = read_session_images(cowley_dir, "190923", np.arange(1, 61))
    models = {n: load_published_model(cowley_dir, "190923", n, dtype=torch.float32) for n in numbers}
    natural = np.stack([predict(models[n], images)[:, 0] for n in numbers])
    index = PredictionIndex("190923", np.array([f"190923_n{n:03d}" for n in numbers]), np.arange(60).astype(str))
    predictions = tmp_path / "190923.nc"
    write_predictions(predictions, natural, index, {}, [])
    out = {name: tmp_path / name for name in ("filters.csv", "early.nc", "dots.csv")}
    analyze_published_models(
        root=str(root), predictions=[str(predictions)], table_output=str(out["filters.csv"]),
        filters_output=str(out["early.nc"]), selectivity_output=str(out["dots.csv"]), clusters=8, cover=0.5,
        threshold=1.0, seed=0,
    )  # fmt: skip
    table = read_table(out["filters.csv"])
    assert len(table) == len(numbers) == 3
    first = models[numbers[0]]
    assert table.iloc[0][[f"filters_layer{k}" for k in range(5)]].tolist() == list(first.filters)
    assert table.iloc[0]["n_parameters"] == first.n_parameters()
    dots = read_table(out["dots.csv"])
    assert np.isfinite(dots["dot_selectivity"]).all() and dots["dot_selective"].dtype == bool
    with read_early_filters(out["early.nc"]) as clusters:
        assert clusters["trained_coverage"].shape == (8,) and clusters.sizes["filter"] == table["filters_layer0"].sum()
        assert 0 <= float(clusters["trained_coverage_random"][-1]) <= 1
    # the summary's block and the figure beside this pipeline's models (here the same tables stand in for them)
    from compactcortex.jobs.figures import figure_published_models
    from compactcortex.summary import published_analysis_summary

    outputs = [str(out[name]) for name in ("filters.csv", "early.nc", "dots.csv")]
    block = published_analysis_summary(*outputs)
    assert block["n_models"] == 3 and block["filters_per_layer_median"] == table.iloc[:, 2:7].median().tolist()
    assert sum(block["bottleneck_layer_counts"].values()) == 3
    assert block["n_dot_selective"] == int(dots["dot_selective"].sum())
    png, pdf = tmp_path / "figure.png", tmp_path / "figure.pdf"
    figure_published_models(ours=outputs, published=outputs, threshold=1.0, png=str(png), pdf=str(pdf))
    assert png.stat().st_size > 10_000 and pdf.stat().st_size > 5_000


def test_synthesised_images_are_scored_on_the_published_model_of_the_same_neuron(cowley_dir, tmp_path) -> None:  # noqa: ANN001
    """A hand-made stimulus set for neuron 0 of session 190923: its 'maximizing' images are the session images the
    published model predicts highest, its adversarial images move that prediction up and down. The check scores
    them on the published model as the closed loop scores a recording: significant, a drive ratio above 1 in spike
    counts, every adversarial image the intended way."""
    from compactcortex.compact.published import load_published_model
    from compactcortex.io.image_sets import read_images
    from compactcortex.io.session_dataset import repeat_means
    from compactcortex.io.stimulus_sets import write_stimuli
    from compactcortex.io.tables import read_table
    from compactcortex.jobs.closed_loop import check_synthesis_on_published
    from compactcortex.jobs.preprocess import ingest_cowley_session
    from tests.conftest import PREPROCESS_PARAMS

    dataset = tmp_path / "190923.nc"
    ingest_cowley_session(cowley_dir, "190923", dataset, params=PREPROCESS_PARAMS, seed=0, monkey="WE")
    responses = repeat_means(dataset)
    images, image_ids = read_images(dataset)
    model = load_published_model(cowley_dir, "190923", 0, dtype=torch.float32)
    candidates = np.arange(60, 360)
    order = candidates[np.argsort(-predict(model, images[candidates])[:, 0])]
    neuron = "190923_n000"
    assert neuron in responses.columns
    rows = [(i, "control", "", "") for i in range(60)]
    rows += [(i, "maximizing", neuron, "") for i in order[:4]] + [(i, "minimizing", neuron, "") for i in order[-4:]]
    rows += [(i, "natural_top", neuron, "") for i in order[4:7]]
    rows += [(order[7], "adversarial_up", neuron, image_ids[0]), (order[-5], "adversarial_down", neuron, image_ids[0])]
    ids = [f"x{k:03d}" for k in range(len(rows))]
    for k, row in enumerate(rows):
        if row[1] == "control":
            ids[k] = image_ids[row[0]]
    stimuli = tmp_path / "stimuli.nc"
    write_stimuli(
        stimuli, images[[row[0] for row in rows]], np.array(ids), np.array([row[1] for row in rows]),
        {"neuron": np.array([r[2] for r in rows]), "source": np.array([r[3] for r in rows]),
         "predicted": np.zeros(len(rows))}, {},
    )  # fmt: skip
    scores, adversarial = tmp_path / "scores.csv", tmp_path / "adversarial.csv"
    check_synthesis_on_published(
        stimuli=str(stimuli), dataset=str(dataset), root=str(cowley_dir), scores_output=str(scores),
        adversarial_output=str(adversarial), closed_loop={"permutations": 999}, seed=0, session="190923",
    )  # fmt: skip
    table = read_table(scores)
    assert table["neuron"].tolist() == [neuron] and table["drive_from"].iloc[0] == "published compact model"
    assert table["p_maximizing_beats_natural"].iloc[0] < 0.05 and table["drive_ratio"].iloc[0] > 1
    moved = read_table(adversarial)
    assert len(moved) == 2 and moved["recorded_correct"].all()


def test_the_published_check_figure_reports_the_checks_numbers(tmp_path: Path) -> None:
    """Section 4's figure, from tables made as check_synthesis_on_published writes them: its panels name the share
    of neurons whose maximizing images beat the controls, the median drive ratio and the adversarial share."""
    from compactcortex.figures.published_check import published_check_figure
    from compactcortex.jobs.figures import figure_published_check

    scores = pd.DataFrame(
        {
            "neuron": ["a_n000", "a_n001", "a_n002"],
            "recorded_maximizing": [6.0, 4.0, 2.0],
            "recorded_controls": [2.0, 2.0, 2.0],
            "p_maximizing_beats_natural": [0.001, 0.01, 0.6],
            "drive_ratio": [3.0, 1.5, 1.0],
        }
    )
    adversarial = pd.DataFrame(
        {
            "neuron": ["a_n000"] * 4,
            "intended": ["up", "down", "up", "down"],
            "recorded_correct": [True, True, True, False],
        }
    )
    scores.to_csv(tmp_path / "scores.csv", index=False)
    adversarial.to_csv(tmp_path / "adversarial.csv", index=False)
    figure = published_check_figure([tmp_path / "scores.csv"], [tmp_path / "adversarial.csv"])
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["2 of 3 neurons p < 0.05", "median 1.50", "75% of 4 images"], titles
    heights = [patch.get_height() for patch in figure.axes[2].patches]
    assert heights == pytest.approx([1.0, 0.5]), "up: 2 of 2; down: 1 of 2"
    figure_published_check(
        scores=[str(tmp_path / "scores.csv")], adversarial=[str(tmp_path / "adversarial.csv")],
        png=str(tmp_path / "check.png"), pdf=str(tmp_path / "check.pdf"),
    )  # fmt: skip
    assert (tmp_path / "check.png").stat().st_size > 10_000 and (tmp_path / "check.pdf").is_file()
