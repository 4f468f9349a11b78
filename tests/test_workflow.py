"""The Snakemake workflow: lint, the full DAG, and one end-to-end run of the tiny configuration."""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from compactcortex.config import DEFAULT_CONFIG_PATH, load_config
from tests.conftest import COWLEY_DIR, REPOSITORY, SNAKEMAKE, TINY_CONFIG, job_counts, planned_jobs, run_snakemake


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run_snakemake(workdir, *args, check=check)


def test_lint_is_clean() -> None:
    result = subprocess.run([*SNAKEMAKE, "--lint"], capture_output=True, text=True, cwd=REPOSITORY, timeout=120)
    assert result.returncode == 0 and "Lints for" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_default_dag_plans_every_session(tmp_path: Path) -> None:
    result = snakemake(tmp_path, "--dry-run", "--quiet", "rules")
    rows = [line.split() for line in result.stdout.splitlines()]
    counts = {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit()}
    config = load_config(DEFAULT_CONFIG_PATH)
    members = config["ensemble"]["members"]
    sessions = len(config["sessions"])
    tests = sum(session["role"] == "test" for session in config["sessions"])
    expected = {
        "simulate_session": sessions,
        "preprocess_session": sessions,
        "extract_features": sessions + 1,  # every session and the candidate pool (the teacher streams its pool)
        "train_member": members,
        "map_session": tests,
        "task_driven_session": tests,
        "evaluate_session": tests,
        "candidate_pool": 1,
        "select_active_learning_images": 1,
        "teacher_labels": tests,
        "plan_compression": tests,  # the checkpoint: compress_neurons jobs are planned once it has run
        "collect_compact_models": tests,
        "compact_comparison": 1,
        "collect_stimuli": tests,  # synthesize_images jobs, one per compression job, are planned after the checkpoint
        "simulate_closed_loop": tests,
        "preprocess_closed_loop": tests,
        "score_closed_loop": tests,
        "analyze_compressibility": 1,
        "analyze_dots": 1,
        "figure_accuracy": 1,
        "figure_synthesis": 1,
        "figure_compressibility": 1,
        "figure_dots": 1,
        "figure_predictions": 1,
        "figure_training_curves": 1,
        "figure_compact_models": 1,
        "summary": 1,
        "report_tables": 1,
        "manifest": 1,
        "all": 1,
    }
    assert counts == {**expected, "total": sum(expected.values())}, result.stdout


def test_every_job_has_a_runtime_that_grows_on_retry(tmp_path: Path) -> None:
    """Rules that give no runtime take it from the profiles' default-resources (a --profile's default-resources
    replace the workflow profile's, so every profile of the repository gives it); every request doubles on a retry."""
    profiles = [REPOSITORY / "profiles" / "default", REPOSITORY / "profiles" / "slurm"]
    profiles += [path for path in (REPOSITORY / "tests" / "profiles").iterdir() if path.is_dir()]
    for profile in profiles:
        runtime = str(yaml.safe_load((profile / "config.yaml").read_text())["default-resources"]["runtime"])
        assert [eval(runtime, {"attempt": attempt}) for attempt in (1, 2)] == [10, 20], profile  # noqa: S307
    for rule_file in (REPOSITORY / "workflow" / "rules").glob("*.smk"):  # every explicit request grows too
        requests = re.findall(r"^\s+(?:mem_mb|runtime)=(.*)$", rule_file.read_text(), re.M)
        assert all(request.startswith("grow(") for request in requests), (rule_file.name, requests)
    result = snakemake(
        tmp_path,
        "--dry-run",
        "--workflow-profile",
        str(REPOSITORY / "profiles" / "default"),
        "--configfile",
        str(TINY_CONFIG),
    )
    resources = [line for line in result.stdout.splitlines() if line.strip().startswith("resources:")]
    assert len(resources) > 20
    assert all("runtime=" in line for line in resources), [line for line in resources if "runtime=" not in line]


def test_cowley_dag_plans_ingest(tmp_path: Path) -> None:
    if not COWLEY_DIR.is_dir():
        pytest.skip(f"the published Cowley et al. 2023 data are not at {COWLEY_DIR}")
    config = yaml.safe_load((REPOSITORY / "config" / "cowley2023.yaml").read_text())
    config["source"]["path"] = str(COWLEY_DIR)
    (tmp_path / "cowley.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--configfile", str(tmp_path / "cowley.yaml"), "--dry-run", "--quiet", "rules")
    assert "ingest_cowley_session" in result.stdout and " 11" in result.stdout.split("ingest_cowley_session")[1][:20]


def test_real_data_closed_loop_is_scored_once_its_recording_is_named(tmp_path: Path) -> None:
    """With real data the stimulus set is exported; naming the next session's NWB file plans its scoring."""
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config.pop("virtual_lab")
    raw = tmp_path / "raw"
    raw.mkdir()
    for session in config["sessions"]:
        (raw / f"{session['id']}.nwb").touch()  # a dry run reads no data
    config["source"] = {"kind": "nwb", "path": str(raw)}
    (tmp_path / "nwb.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--configfile", str(tmp_path / "nwb.yaml"), "--dry-run", "--quiet", "rules")
    jobs = job_counts(result.stdout)
    assert jobs["collect_stimuli"] == 1 and "score_closed_loop" not in jobs and "simulate_closed_loop" not in jobs
    (tmp_path / "next.nwb").touch()
    config["closed_loop"]["recordings"] = {"t05": str(tmp_path / "next.nwb")}
    (tmp_path / "nwb.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--configfile", str(tmp_path / "nwb.yaml"), "--dry-run", "--quiet", "rules")
    jobs = job_counts(result.stdout)
    assert jobs["preprocess_closed_loop"] == 1 and jobs["score_closed_loop"] == 1 and "simulate_closed_loop" not in jobs


def test_test_fit_halves_lend_every_member_the_test_sessions(tmp_path: Path) -> None:
    """``ensemble.test_fit_halves``: each member's job reads the test sessions too (it keeps their fit halves); off,
    the paper's protocol, it reads only the training and validation sessions."""
    config = yaml.safe_load(TINY_CONFIG.read_text())
    tests = [session["id"] for session in config["sessions"] if session["role"] == "test"]

    def member_inputs(lend: bool) -> str:
        config["ensemble"]["test_fit_halves"] = lend
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        result = snakemake(tmp_path, "--configfile", str(tmp_path / "config.yaml"), "--dry-run")
        job = result.stdout.split("rule train_member:")[1]
        return job.split("input:")[1].split("\n")[0]

    assert all(f"sessions/{session}.nc" not in member_inputs(False) for session in tests)
    assert all(f"sessions/{session}.nc" in member_inputs(True) for session in tests)


def test_unknown_config_key_stops_before_anything_runs(tmp_path: Path) -> None:
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["preprocess"]["widnow_ms"] = 100
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--configfile", str(tmp_path / "bad.yaml"), check=False)
    assert result.returncode != 0
    assert "widnow_ms" in result.stderr + result.stdout
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_streamed_teacher_labels_equal_the_pool_labelled_in_one_piece(tiny_local_run: Path) -> None:
    """The teacher job regenerates the pool batch by batch from its recipe, with backbone features computed on the
    fly; labelling the whole pool at once, drawn in one piece, gives the same labels, bit for bit. No pool image is
    written anywhere."""
    import torch

    from compactcortex.backbones import load_backbone
    from compactcortex.config import load_config
    from compactcortex.io.teacher_labels import read_teacher_labels
    from compactcortex.models.teacher import member_predictions
    from compactcortex.pool import pool_recipe

    data = tiny_local_run / "results" / "tiny"
    config = load_config(TINY_CONFIG)
    features = config["features"]
    dataset = str(data / "sessions" / "t05.nc")
    recipe = pool_recipe(dataset, [], config["compact"]["pool"], "t05", config["seed"])
    images = recipe.images(np.arange(len(recipe)))
    backbone = load_backbone(features["backbone"], features.get("weights_path"))
    extracted = backbone.extract(
        images, [features["layer"]], input_size=features["input_size"], batch_size=features["batch_size"], device="cpu"
    )[features["layer"]]
    members = sorted(str(path) for path in (data / "ensemble" / "members").glob("member*.pt"))
    readouts = [str(data / "ensemble" / "readouts" / "t05.pt")]
    in_one_piece = member_predictions(members, readouts, torch.from_numpy(extracted).to(torch.float16), "cpu")
    streamed, _, heldout_start = read_teacher_labels(data / "compact" / "t05" / "teacher.nc")
    assert len(images) > 256  # more than one streamed batch
    np.testing.assert_array_equal(streamed, in_one_piece.mean(axis=0).astype(np.float32))
    assert heldout_start == len(images) - config["compact"]["pool"]["heldout"]
    assert not list(data.rglob("pool*.nc"))


def test_tiny_pipeline_end_to_end(tiny_local_run: Path) -> None:
    tmp_path = tiny_local_run
    data = tmp_path / "results" / "tiny"
    summary = json.loads((data / "summary.json").read_text())
    assert summary["data"]["n_sessions"] == 5 and summary["data"]["n_neurons"] == 3 * 8 + 6 + 8
    assert 0.0 < summary["data"]["median_reliability"] <= 1.0
    # recovery: the ensemble's held-out prediction correlates with the true rate far above chance
    assert summary["ensemble"]["median_r_to_truth"] > 0.4, summary["ensemble"]
    assert summary["ensemble"]["n_members"] == 2 and summary["ensemble"]["n_params"] > 0
    for key in ("median_r2_er", "median_r"):
        assert summary["ensemble"][key] is not None and summary["task_driven"][key] is not None
    table = (data / "evaluation" / "t05.csv").read_text().splitlines()
    with xr.open_dataset(data / "sessions" / "t05.nc") as dataset:
        n_reliable = int(dataset["reliable"].sum())
    assert table[0].startswith("neuron,reliability,r2_er_ensemble,r_ensemble") and len(table) == 1 + n_reliable
    manifest = (data / "active_learning" / "stimulus_set" / "manifest.csv").read_text().splitlines()
    assert (
        len(manifest) == 1 + 5 and (data / "active_learning" / "stimulus_set" / "images" / "active0000.png").is_file()
    )
    with xr.open_dataset(data / "ensemble" / "predictions" / "t05.nc") as predictions:
        assert predictions["prediction"].dims == ("image", "neuron", "member")
        assert predictions.sizes["member"] == 2 and int(predictions["fit_half"].sum()) == 60
    for session in ("t01", "t02", "t03", "t04", "t05"):
        assert (data / "raw" / f"{session}.nwb").is_file()
        assert (data / "logs" / "preprocess_session" / f"{session}.log").is_file()
        assert (data / "benchmarks" / "simulate_session" / f"{session}.tsv").is_file()
    with (
        xr.open_dataset(data / "sessions" / "t05.nc") as dataset,
        xr.open_dataset(data / "ground_truth" / "t05.nc") as truth,
    ):
        assert dataset.sizes["neuron"] == 8 and dataset.attrs["session"] == "t05"
        rate = truth["rate"].sel(image=dataset["image"].values)
        correlation = [np.corrcoef(dataset["responses"].mean("repeat")[n], rate[n])[0, 1] for n in range(8)]
        assert np.median(correlation) > 0.5, correlation
    check_compact_models(data, n_reliable, summary)
    check_synthesis(data, n_reliable, summary)
    check_figures(data)
    check_manifest(data)
    again = snakemake(tmp_path, "--configfile", str(TINY_CONFIG), "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr
    # A dry run cannot list the compress_neurons jobs behind a checkpoint that reruns: they are planned once
    # plan_compression has run, so those plans end at plan_compression (and what waits on it).
    synthesis = {"collect_stimuli": 1, "simulate_closed_loop": 1, "preprocess_closed_loop": 1, "score_closed_loop": 1,
                 "analyze_dots": 1, "figure_synthesis": 1, "figure_dots": 1, "figure_compact_models": 1}  # fmt: skip
    models = {"collect_compact_models": 1, "compact_comparison": 1, "analyze_compressibility": 1,
              "figure_accuracy": 1, "figure_compressibility": 1, "figure_predictions": 1, "report_tables": 1,
              **synthesis}  # fmt: skip
    compression = {"teacher_labels": 1, "plan_compression": 1, **models}
    downstream = {"extract_features": 5, "train_member": 2, "map_session": 1, "task_driven_session": 1,
                  "evaluate_session": 1, "select_active_learning_images": 1, "figure_training_curves": 1,
                  **compression, "summary": 1, "manifest": 1, "all": 1}  # fmt: skip
    threads = {"threads": 2}
    # (config changes, the jobs a dry run plans): the dry runs two at a time, one per core
    expected = [
        ({"preprocess": {"window_ms": 80}}, {"preprocess_session": 5, **downstream}),
        ({"virtual_lab": {"spiking": {"gain_cv": 0.2}}},
         {"simulate_session": 5, "preprocess_session": 5, **downstream}),
        ({"mapping": {"cv_folds": 3}}, {
            "map_session": 1, "evaluate_session": 1, "select_active_learning_images": 1, **compression, "summary": 1,
            "manifest": 1, "all": 1,
        }),
        # a compression setting reruns the session's compression jobs (3 chunks) and what uses their models, only
        ({"compact": {"retrain_steps": 20}}, {
            "compress_neurons": 3, "synthesize_images": 3, **models, "evaluate_session": 1, "summary": 1,
            "manifest": 1, "all": 1,
        }),
        # a synthesis setting reruns the synthesis (3 chunks), the closed loop and what uses them, not the models
        ({"synthesis": {"steps": 20}}, {
            "synthesize_images": 3, **synthesis, "summary": 1, "report_tables": 1, "manifest": 1, "all": 1,
        }),
        # no stage's threads change any output
        ({section: threads for section in ("features", "ensemble", "task_driven", "compact", "synthesis")}, {}),
    ]  # fmt: skip
    with ThreadPoolExecutor(max_workers=2) as pool:
        planned = list(pool.map(lambda case: planned_jobs(tmp_path, changed_config(**case[0])), expected))
    for (changes, jobs), found in zip(expected, planned, strict=True):
        assert found == jobs, changes
    # how the neurons are split into jobs changes no model
    assert planned_jobs(tmp_path, changed_config(compact={"neurons_per_job": 4}))["plan_compression"] == 1


def check_compact_models(data: Path, n_reliable: int, summary: dict) -> None:
    """Every reliable test neuron has a loadable compact model whose card agrees with the evaluation."""
    from compactcortex.io.compact_models import load_compact_model
    from compactcortex.models.compact import predict

    plan = json.loads((data / "compact" / "t05" / "plan.json").read_text())
    assert [len(neurons) for neurons in plan["chunks"].values()] == [3, 3, n_reliable - 6]
    models = pd.read_csv(data / "compact" / "t05" / "models.csv")
    evaluation = pd.read_csv(data / "evaluation" / "t05.csv").set_index("neuron")
    assert sorted(models["neuron"]) == sorted(evaluation.index) and len(models) == n_reliable
    with (
        xr.open_dataset(data / "sessions" / "t05.nc") as dataset,
        xr.open_dataset(data / "compact" / "t05" / "predictions.nc") as predictions,
    ):
        images = dataset["images"].values
        stored = predictions["prediction"].transpose("neuron", "image")
        for row in models.itertuples():
            model, card = load_compact_model(data / "compact" / "t05" / row.card)
            assert card["session"] == "t05" and card["neuron"] == row.neuron
            assert min(card["filters"]) >= 3 and max(card["filters"]) <= 6 and model.n_parameters() == row.n_parameters
            np.testing.assert_allclose(predict(model, images)[:, 0], stored.sel(neuron=row.neuron).values, rtol=1e-5)
            assert card["r"] == pytest.approx(evaluation.loc[row.neuron, "r_compact"], abs=1e-5)
    compact = summary["compact"]
    for key in ("median_r2_er", "median_r", "median_params", "median_fidelity_r2", "median_r_to_truth"):
        assert compact[key] is not None, key
    assert len(compact["filters_per_layer_median"]) == 5 and compact["median_params"] < summary["ensemble"]["n_params"]
    session = compact["sessions"]["t05"]  # the per-session block: accuracy, fidelity and size of its models
    assert session["median_r"] == pytest.approx(evaluation["r_compact"].median(), abs=1e-5)
    assert session["median_fidelity_r2"] == pytest.approx(models["fidelity_r2"].median(), abs=1e-5)
    assert session["n_models"] == len(models) and session["accuracy_vs_ensemble"] is not None
    assert summary["ensemble"]["sessions"]["t05"]["over_task_driven"] is not None
    comparison = pd.read_csv(data / "tables" / "compact_comparison.csv")
    assert comparison.loc[0, "median_r_compact"] == pytest.approx(compact["median_r"], abs=1e-3)


def check_synthesis(data: Path, n_reliable: int, summary: dict) -> None:
    """The stimulus set holds every neuron's images, adversarial images keep their budget, the closed loop scored
    every neuron, and the summary reports it."""
    from compactcortex.io.stimulus_sets import read_stimuli

    config = yaml.safe_load(TINY_CONFIG.read_text())["synthesis"]
    folder = data / "synthesis" / "t05" / "stimulus_set"
    images, table = read_stimuli(folder / "stimuli.nc")
    per_neuron = 2 * config["starts"] + config["natural_top"] + 2 * config["adversarial"]["sources"]
    assert len(table) == config["controls"] + n_reliable * per_neuron
    manifest = pd.read_csv(folder / "manifest.csv")
    assert list(manifest["image"]) == list(table["image"]) and all((folder / f).is_file() for f in manifest["file"])
    index = {image: i for i, image in enumerate(table["image"])}
    adversarial = table[table["stimulus"].str.startswith("adversarial")]
    assert len(adversarial) == 2 * n_reliable * config["adversarial"]["sources"]
    for row in adversarial.itertuples():
        change = images[index[row.image]].astype(int) - images[index[row.source]].astype(int)
        assert 0 < np.abs(change).max() <= config["adversarial"]["budget"], row.image
    with xr.open_dataset(folder / "predictions.nc") as predictions:
        assert predictions.sizes["neuron"] == n_reliable and predictions.sizes["image"] == len(table)
        # a neuron's maximizing images drive its own model above all controls
        for neuron in table.loc[table["stimulus"] == "maximizing", "neuron"].unique():
            own = predictions["prediction"].sel(neuron=neuron).to_series()
            maximizing = table.loc[(table["neuron"] == neuron) & (table["stimulus"] == "maximizing"), "image"]
            assert own[maximizing].min() > own[table.loc[table["stimulus"] == "control", "image"]].max(), neuron
    with xr.open_dataset(data / "closed_loop" / "t05" / "session.nc") as loop:
        assert sorted(loop["image"].values.astype(str)) == sorted(table["image"])
        assert loop.attrs["session"] == "t05_closedloop" and loop.sizes["neuron"] == 8
    scores = pd.read_csv(data / "closed_loop" / "t05" / "scores.csv")
    assert len(scores) == n_reliable and scores["p_maximizing_beats_natural"].between(0, 1).all()
    block = summary["synthesis"]
    for key in ("frac_maximizing_beats_natural", "frac_adversarial_correct_direction"):
        assert 0.0 <= block[key] <= 1.0, key
    assert block["median_drive_ratio"] > 1.0, block  # the models' favourite images drive the true neurons harder
    analysis = summary["analysis"]
    assert sum(analysis["bottleneck_layer_counts"].values()) == n_reliable and analysis["n_dot_selective"] >= 0


def check_figures(data: Path) -> None:
    """The paper's four figures and the report's others (the report itself: tests/test_report.py)."""
    for name in ("fig1_accuracy", "fig2_synthesis", "fig3_compressibility", "fig4_dots", "predictions",
                 "noise_ceiling", "training_curves"):  # fmt: skip
        for suffix in ("png", "pdf"):
            assert (data / "figures" / f"{name}.{suffix}").stat().st_size > 10_000, name
    pages = sorted(path.stem for path in (data / "figures" / "compact_models" / "t05").glob("*.png"))
    assert pages == sorted(pd.read_csv(data / "compact" / "t05" / "models.csv")["neuron"]), pages


def check_manifest(data: Path) -> None:
    """MANIFEST lists every output (not logs, benchmarks or the report) with its sha256, and the software."""
    from compactcortex.provenance import sha256_file

    manifest = json.loads((data / "MANIFEST").read_text())
    files = manifest["files"]
    assert files["summary.json"] == sha256_file(data / "summary.json")
    assert "figures/fig4_dots.pdf" in files and "compact/t05/models.csv" in files and "raw/t05.nwb" in files
    assert not any(name.startswith(("logs/", "benchmarks/")) or name == "report.html" for name in files)
    assert manifest["config"]["dataset"] == "tiny" and manifest["packages"]["torch"].startswith("2.13.0")


def changed_config(**changes: dict) -> dict:
    """The tiny config with some of its values changed."""
    config = yaml.safe_load(TINY_CONFIG.read_text())
    for section, values in changes.items():
        for key, value in values.items():
            target = config.setdefault(section, {})
            target[key] = {**target.get(key, {}), **value} if isinstance(value, dict) else value
    return config
