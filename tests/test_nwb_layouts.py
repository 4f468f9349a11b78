"""NWB files as other labs write them (pynwb by hand, not write_recording_nwb): none is read wrongly without an
error or a recorded warning. Image order, overlapping windows, aborted trials, brain areas, silent neurons, and the
folders labs publish them in (DANDI)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import xarray as xr
import yaml
from pynwb import NWBHDF5IO, NWBFile
from pynwb.base import ImageReferences, Images
from pynwb.file import Subject
from pynwb.image import RGBImage

from compactcortex.errors import InputDataError
from compactcortex.io.nwb import read_recording_nwb, session_nwb_files
from compactcortex.jobs.preprocess import preprocess_session
from compactcortex.preprocess import overlapping_windows, trial_responses
from compactcortex.recording import Recording
from tests.conftest import PREPROCESS_PARAMS, TINY_CONFIG, run_snakemake

Column = tuple[str, Sequence[Any]]  # (description, one value per row)


def user_nwb(
    path: Path,
    recording: Recording,
    *,
    names: Sequence[str] | None = None,
    images: Sequence[np.ndarray] | None = None,
    order: Sequence[int] | None = None,
    trial_images: Sequence[Any] | None = None,
    onsets: np.ndarray | None = None,
    trial_columns: Mapping[str, Column] | None = None,
    spike_trains: Sequence[np.ndarray] | None = None,
    unit_columns: Mapping[str, Column] | None = None,
    electrodes: tuple[Sequence[str], Sequence[Sequence[int]]] | None = None,
    session_id: str | None = None,
    subject_id: str | None = None,
) -> Path:
    """`recording` written as another lab's code might. An Images container of img0, img1, ... (the indices in
    `recording.trial_image` count in that, natural, order), with order_of_images only where `order` (positions)
    is given; extra trials and units columns; electrodes as (their locations, the rows of each unit). The session_id
    is the file's name unless given; a subject_id adds a Subject, as DANDI asks."""
    subject = Subject(subject_id=subject_id, species="Macaca mulatta", sex="M", age="P7Y") if subject_id else None
    nwbfile = NWBFile(
        session_description="another lab's session",
        identifier="id-1",
        session_start_time=datetime(2025, 5, 1, tzinfo=UTC),
        session_id=path.stem if session_id is None else session_id,
        subject=subject,
    )
    names = list(names or [f"img{index}" for index in range(len(recording.image_ids))])
    pixels = recording.images if images is None else images
    image_objects = [RGBImage(name=name, data=data) for name, data in zip(names, pixels, strict=True)]
    recorded = {}
    if order is not None:
        recorded["order_of_images"] = ImageReferences(name="order_of_images", data=[image_objects[i] for i in order])
    nwbfile.add_stimulus_template(Images(name="stimulus_images", images=image_objects, **recorded))
    columns = {"image_index": ("image shown", recording.trial_image if trial_images is None else trial_images)}
    columns.update(trial_columns or {})
    for name, (description, _) in columns.items():
        nwbfile.add_trial_column(name, description)
    onsets = recording.trial_onset if onsets is None else onsets
    for trial, onset in enumerate(onsets):
        values = {name: _scalar(values[trial]) for name, (_, values) in columns.items()}
        nwbfile.add_trial(start_time=float(onset), stop_time=float(onset) + 0.1, **values)
    if electrodes is not None:
        device = nwbfile.create_device("array")
        group = nwbfile.create_electrode_group("shank", "electrodes", "see each electrode", device)
        for location in electrodes[0]:
            nwbfile.add_electrode(group=group, location=location)
    for name, (description, _) in (unit_columns or {}).items():
        nwbfile.add_unit_column(name, description)
    trains = spike_trains or [
        recording.spike_times[recording.unit_bounds[unit] : recording.unit_bounds[unit + 1]]
        for unit in range(recording.n_units)
    ]
    for unit, train in enumerate(trains):
        values = {name: values[unit] for name, (_, values) in (unit_columns or {}).items()}
        if electrodes is not None:
            values["electrodes"] = list(electrodes[1][unit])
        nwbfile.add_unit(spike_times=np.asarray(train, dtype=np.float64), **values)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _shown(recording: Recording) -> np.ndarray:
    """The pixels shown on each trial: equal when trials are matched to the right images."""
    return recording.images[recording.trial_image]


# Image order ---------------------------------------------------------------------------------------------------


def test_hdf5_lists_images_alphabetically_and_pynwb_records_no_creation_order(
    tmp_path: Path, recording: Recording
) -> None:
    """Why the order is never taken from the file's listing: it is alphabetical, not the order written."""
    path = user_nwb(tmp_path / "u1.nwb", recording)
    with h5py.File(path, "r") as handle:
        template = handle["stimulus/templates/stimulus_images"]
        assert list(template)[:4] == ["img0", "img1", "img10", "img11"]
        assert template.id.get_create_plist().get_link_creation_order() == 0


def test_integer_indices_without_a_recorded_order_are_refused(tmp_path: Path, recording: Recording) -> None:
    path = user_nwb(tmp_path / "u1.nwb", recording)
    with pytest.raises(InputDataError, match=r"u1\.nwb: .*integer image indices.*records no order of its images"):
        read_recording_nwb(path)
    with pytest.raises(InputDataError, match="nwb_image_order"):
        preprocess_session(path, tmp_path / "u1.nc", params=PREPROCESS_PARAMS, seed=1)
    assert not (tmp_path / "u1.nc").exists()


def test_configured_image_order_counts_the_indices(tmp_path: Path, recording: Recording) -> None:
    path = user_nwb(tmp_path / "u1.nwb", recording)
    natural = read_recording_nwb(path, image_order="natural")
    assert list(natural.image_ids[:3]) == ["img0", "img1", "img2"]
    np.testing.assert_array_equal(_shown(natural), _shown(recording))
    assert natural.read_attrs["image_order"] == "natural"
    alphabetical = read_recording_nwb(path, image_order="alphabetical")
    assert list(alphabetical.image_ids[:3]) == ["img0", "img1", "img10"]
    assert alphabetical.read_attrs["image_order"] == "alphabetical"
    assert not np.array_equal(_shown(alphabetical), _shown(recording)), "indices count alphabetically, as told"
    output = tmp_path / "u1.nc"
    preprocess_session(path, output, params={**PREPROCESS_PARAMS, "nwb_image_order": "natural"}, seed=1)
    with xr.open_dataset(output) as dataset:
        assert (dataset.attrs["image_order"], dataset.attrs["image_matched_by"]) == ("natural", "index")
        np.testing.assert_array_equal(dataset["source_index"], np.arange(12))
        np.testing.assert_array_equal(dataset["images"].values, recording.images)


def test_the_files_order_of_images_is_used(tmp_path: Path, recording: Recording) -> None:
    """order_of_images in neither natural nor alphabetical order; the trials' indices count in it."""
    order = np.random.default_rng(3).permutation(12)
    path = user_nwb(tmp_path / "u1.nwb", recording, order=order, trial_images=np.argsort(order)[recording.trial_image])
    back = read_recording_nwb(path)
    assert list(back.image_ids) == [f"img{index}" for index in order]
    np.testing.assert_array_equal(_shown(back), _shown(recording))
    assert back.read_attrs["image_order"] == "order_of_images"
    with pytest.raises(InputDataError, match=r"nwb_image_order is natural, but the file's order_of_images differs"):
        read_recording_nwb(path, image_order="natural")
    agrees = user_nwb(tmp_path / "u2.nwb", recording, order=np.arange(12))
    np.testing.assert_array_equal(_shown(read_recording_nwb(agrees, image_order="natural")), _shown(recording))


def test_image_names_in_the_trials_need_no_order(tmp_path: Path, recording: Recording) -> None:
    names = [f"img{index}" for index in range(12)]
    path = user_nwb(tmp_path / "u1.nwb", recording, trial_images=[names[image] for image in recording.trial_image])
    back = read_recording_nwb(path)
    np.testing.assert_array_equal(_shown(back), _shown(recording))
    assert list(back.image_ids) == names, "listed in natural order"
    assert back.read_attrs == {**back.read_attrs, "image_order": "natural", "image_matched_by": "name"}


def test_names_without_a_natural_order_are_refused(tmp_path: Path, recording: Recording) -> None:
    names = ["img01", *[f"img{index}" for index in range(1, 12)]]
    path = user_nwb(tmp_path / "u1.nwb", recording, names=names)
    with pytest.raises(InputDataError, match="'img01' and 'img1' .* have no natural order"):
        read_recording_nwb(path, image_order="natural")


# Overlapping counting windows ----------------------------------------------------------------------------------


def test_overlapping_counting_windows_are_refused_naming_the_trials(tmp_path: Path, recording: Recording) -> None:
    onsets = recording.trial_onset.copy()
    onsets[6] = onsets[5] + 0.06  # windows [+50, +150) ms overlap by 40 ms
    path = user_nwb(tmp_path / "u1.nwb", recording, onsets=onsets)
    params = {**PREPROCESS_PARAMS, "nwb_image_order": "natural"}
    with pytest.raises(
        InputDataError, match=r"u1\.nwb: .*1 trial\(s\) overlap.*trial 5 \(onset 2\.5000 s\) and trial 6"
    ):
        preprocess_session(path, tmp_path / "u1.nc", params=params, seed=1)
    preprocess_session(path, tmp_path / "u1.nc", params={**params, "allow_overlapping_windows": True}, seed=1)
    with xr.open_dataset(tmp_path / "u1.nc") as dataset:
        assert dataset.attrs["n_overlapping_windows"] == 1
        assert "overlap" in json.loads(dataset.attrs["warnings_json"])[0]


def test_abutting_windows_do_not_overlap(recording: Recording) -> None:
    recording.trial_onset = 1.0 + np.arange(recording.n_trials) * 0.1  # each window ends where the next starts
    assert overlapping_windows(recording, latency_ms=50, window_ms=100)[0].size == 0
    assert overlapping_windows(recording, latency_ms=50, window_ms=101)[0].size == recording.n_trials - 1


# Aborted trials ------------------------------------------------------------------------------------------------


def _aborted(recording: Recording) -> np.ndarray:
    return np.arange(recording.n_trials) % 7 == 3


def test_trial_filter_counts_only_the_kept_trials(tmp_path: Path, recording: Recording) -> None:
    aborted = _aborted(recording)
    path = user_nwb(
        tmp_path / "u1.nwb",
        recording,
        trial_images=np.where(aborted, -1, recording.trial_image),  # no image on aborted trials
        trial_columns={"success": ("fixation held", ~aborted)},
    )
    output = tmp_path / "u1.nc"
    trial_filter = {"column": "success", "keep": [True]}
    params = {**PREPROCESS_PARAMS, "nwb_image_order": "natural", "trial_filter": trial_filter}
    preprocess_session(path, output, params=params, seed=1)
    kept = ~aborted
    recording.trial_onset, recording.trial_image = recording.trial_onset[kept], recording.trial_image[kept]
    expected, _ = trial_responses(recording, latency_ms=50, window_ms=100)
    with xr.open_dataset(output) as dataset:
        np.testing.assert_array_equal(dataset["responses"].values, expected)
        assert dataset["n_repeats"].sum() == kept.sum()
        assert (dataset.attrs["n_trials_in_file"], dataset.attrs["n_trials_excluded"]) == (48, aborted.sum())
        record = json.loads(dataset.attrs["trial_filter_json"])
        assert record == {"column": "success", "keep": [True], "excluded": [[False, int(aborted.sum())]]}
        assert json.loads(dataset.attrs["warnings_json"]) == []


def test_an_unfiltered_outcome_column_is_a_recorded_warning(
    tmp_path: Path, recording: Recording, caplog: pytest.LogCaptureFixture
) -> None:
    outcome = np.where(_aborted(recording), "fix_break", "hit")
    path = user_nwb(tmp_path / "u1.nwb", recording, trial_columns={"outcome": ("trial outcome", outcome)})
    output = tmp_path / "u1.nc"
    params = {**PREPROCESS_PARAMS, "nwb_image_order": "natural"}
    with caplog.at_level(logging.WARNING):
        preprocess_session(path, output, params=params, seed=1)
    assert "trials column 'outcome' looks like a trial outcome" in caplog.text
    with xr.open_dataset(output) as dataset:
        assert dataset.attrs["n_trials_excluded"] == 0 and dataset["n_repeats"].sum() == 48
        (warning,) = json.loads(dataset.attrs["warnings_json"])
        assert "'outcome'" in warning and "'fix_break': 7" in warning
    filtered = {**params, "trial_filter": {"column": "outcome", "keep": ["hit"]}}
    preprocess_session(path, output, params=filtered, seed=1)
    with xr.open_dataset(output) as dataset:
        assert dataset.attrs["n_trials_excluded"] == 7 and json.loads(dataset.attrs["warnings_json"]) == []


def test_bad_trial_filters_are_errors(tmp_path: Path, recording: Recording) -> None:
    path = user_nwb(tmp_path / "u1.nwb", recording, trial_columns={"success": ("ok", np.ones(48, dtype=bool))})
    with pytest.raises(
        InputDataError, match=r"u1\.nwb: trials table has no column 'succes' \(preprocess\.trial_filter"
    ):
        read_recording_nwb(path, image_order="natural", trial_filter={"column": "succes", "keep": [True]})
    with pytest.raises(InputDataError, match=r"keeps no trial: trials column 'success' holds True: 48"):
        read_recording_nwb(path, image_order="natural", trial_filter={"column": "success", "keep": ["yes"]})


# Brain area ----------------------------------------------------------------------------------------------------


def test_area_of_each_unit_from_its_location(tmp_path: Path, recording: Recording) -> None:
    areas = ["V4", "V1", "V4", "V1", "V4"]
    path = user_nwb(tmp_path / "u1.nwb", recording, order=range(12), unit_columns={"location": ("area", areas)})
    output = tmp_path / "u1.nc"
    preprocess_session(path, output, params=PREPROCESS_PARAMS, seed=1)
    with xr.open_dataset(output) as dataset:
        assert dataset.attrs["area"] == "V1,V4"
        assert list(dataset["area"].values) == areas and dataset["area"].dims == ("neuron",)
        assert dataset["area"].attrs["long_name"] == "brain area of the neuron"
    with pytest.raises(InputDataError, match=r"u1\.nwb: the config gives the session's area as 'V4', but .* V1, V4"):
        preprocess_session(path, output, params=PREPROCESS_PARAMS, seed=1, area="V4")


def test_area_from_the_units_electrodes(tmp_path: Path, recording: Recording) -> None:
    electrodes = (["V4", "V4", "V2", "unknown", "V4"], [[0], [1, 2], [3], [4], [0, 4]])
    path = user_nwb(tmp_path / "u1.nwb", recording, order=range(12), electrodes=electrodes)
    back = read_recording_nwb(path)
    assert list(back.unit_areas) == ["V4", "V2+V4", "unknown", "V4", "V4"]


def test_area_from_the_config_or_unknown(
    tmp_path: Path, recording: Recording, caplog: pytest.LogCaptureFixture
) -> None:
    path = user_nwb(tmp_path / "u1.nwb", recording, order=range(12))
    output = tmp_path / "u1.nc"
    with caplog.at_level(logging.WARNING):
        preprocess_session(path, output, params=PREPROCESS_PARAMS, seed=1)
    assert "neither the file (location) nor the config" in caplog.text
    with xr.open_dataset(output) as dataset:
        assert dataset.attrs["area"] == "unknown" and "area" not in dataset.coords
    preprocess_session(path, output, params=PREPROCESS_PARAMS, seed=1, area="IT")
    with xr.open_dataset(output) as dataset:
        assert dataset.attrs["area"] == "IT" and json.loads(dataset.attrs["params_json"])["area"] == "IT"
    located = user_nwb(tmp_path / "u2.nwb", recording, order=range(12), unit_columns={"location": ("a", ["V4"] * 5)})
    preprocess_session(located, tmp_path / "u2.nc", params=PREPROCESS_PARAMS, seed=1, area="V4")  # agree: fine


# Silent neurons ------------------------------------------------------------------------------------------------


def test_silent_neurons_are_dropped_and_listed(
    tmp_path: Path, recording: Recording, caplog: pytest.LogCaptureFixture
) -> None:
    trains = [recording.spike_times[recording.unit_bounds[u] : recording.unit_bounds[u + 1]] for u in range(5)]
    trains[1] = np.empty(0)  # never fires
    trains[3] = np.sort(np.concatenate([recording.trial_onset + 0.06, recording.trial_onset + 0.07]))  # 2 per trial
    path = user_nwb(tmp_path / "u1.nwb", recording, order=range(12), spike_trains=trains)
    output = tmp_path / "u1.nc"
    with caplog.at_level(logging.WARNING):
        preprocess_session(path, output, params=PREPROCESS_PARAMS, seed=1)
    assert "2 silent neurons left out" in caplog.text
    with xr.open_dataset(output) as dataset:
        assert list(dataset["neuron"].values) == ["unit0", "unit2", "unit4"]
        assert json.loads(dataset.attrs["dropped_neurons_json"]) == [
            {"neuron": "unit1", "reason": "no spikes in any counting window"},
            {"neuron": "unit3", "reason": "the same repeat-mean response to every image"},
        ]
        true_counts = recording.metadata["true_counts"]
        first = np.flatnonzero(recording.trial_image == 0)
        np.testing.assert_array_equal(dataset["responses"].values[:, 0, :], true_counts[[0, 2, 4]][:, first])
    with pytest.raises(InputDataError, match=r"u1\.nwb: silent neurons \(nothing to model\): unit1 .*; unit3"):
        preprocess_session(path, tmp_path / "u2.nc", params={**PREPROCESS_PARAMS, "on_silent_neuron": "error"}, seed=1)
    assert not (tmp_path / "u2.nc").exists()


# Errors name the culprit ---------------------------------------------------------------------------------------


def test_an_image_of_another_size_is_named(tmp_path: Path, recording: Recording) -> None:
    images = list(recording.images)
    images[7] = np.zeros((10, 6, 3), dtype=np.uint8)
    path = user_nwb(tmp_path / "u1.nwb", recording, images=images, order=range(12))
    with pytest.raises(InputDataError, match=r"u1\.nwb: stimulus image 'img7' is 10x6 pixels, .*'img0'\) are 8x8"):
        read_recording_nwb(path)


def test_unknown_image_names_are_named_with_their_trial(tmp_path: Path, recording: Recording) -> None:
    names = [f"img{image}" for image in recording.trial_image]
    names[4] = "img99"
    path = user_nwb(tmp_path / "u1.nwb", recording, trial_images=names)
    with pytest.raises(InputDataError, match=r"missing from the template: 'img99' \(trial 4\)"):
        read_recording_nwb(path)


# The folders labs publish in (DANDI) ---------------------------------------------------------------------------

DANDI_PATTERN = "sub-*/sub-*_ses-{session}_*.nwb"
TWO_SUBJECTS = {
    "sub-M1/sub-M1_ses-190923_behavior+ecephys.nwb": "190923",
    "sub-M2/sub-M2_ses-191002_ecephys.nwb": "191002",
}


def dandi_tree(root: Path, recording: Recording, files: Mapping[str, str]) -> Path:
    """A DANDI dataset's tree: each file (sub-<subject>/sub-<subject>_ses-<session>_<modalities>.nwb) as another
    lab's code writes it, holding the session_id `files` gives it and its subject."""
    for name, session_id in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        subject = path.parent.name.removeprefix("sub-")
        user_nwb(path, recording, order=range(12), session_id=session_id, subject_id=subject)
    return root


def test_a_dandi_tree_of_two_subjects_is_found_and_preprocessed(tmp_path: Path, recording: Recording) -> None:
    root = dandi_tree(tmp_path / "000999", recording, TWO_SUBJECTS)
    (root / "sub-M1" / "._sub-M1_ses-190923_behavior+ecephys.nwb").write_bytes(b"macOS metadata")  # hidden: ignored
    files = session_nwb_files(root, {"190923": None, "191002": None}, pattern=DANDI_PATTERN)
    assert files == {
        "190923": root / "sub-M1/sub-M1_ses-190923_behavior+ecephys.nwb",
        "191002": root / "sub-M2/sub-M2_ses-191002_ecephys.nwb",
    }
    expected, _ = trial_responses(recording, latency_ms=50, window_ms=100)
    for session, monkey in (("190923", "M1"), ("191002", "M2")):
        output = tmp_path / "sessions" / f"{session}.nc"
        preprocess_session(files[session], output, params=PREPROCESS_PARAMS, seed=1)
        with xr.open_dataset(output) as dataset:
            assert (dataset.attrs["session"], dataset.attrs["monkey"]) == (session, monkey)
            np.testing.assert_array_equal(dataset["responses"].values, expected)


def test_the_flat_folder_is_the_default(tmp_path: Path) -> None:
    """<path>/<session>.nwb, taken as it is (a missing file is named by Snakemake or the reader, as before)."""
    assert session_nwb_files(tmp_path, {"t01": None, "t02": None}) == {
        "t01": tmp_path / "t01.nwb",
        "t02": tmp_path / "t02.nwb",
    }


def test_sessions_found_by_the_session_id_in_their_files(tmp_path: Path, recording: Recording) -> None:
    """Files named by another scheme: the session_id stored in each says which session it is; other sessions'
    files are left alone."""
    files = {
        "sub-M1/sub-M1_ses-1_ecephys.nwb": "190923",
        "sub-M2/sub-M2_ses-1_ecephys.nwb": "191002",
        "sub-M2/sub-M2_ses-2_ecephys.nwb": "191105",  # not in the config
    }
    root = dandi_tree(tmp_path, recording, files)
    found = session_nwb_files(root, {"190923": None, "191002": None}, pattern="sub-*/*.nwb", match_by="session_id")
    assert found == {
        "190923": root / "sub-M1/sub-M1_ses-1_ecephys.nwb",
        "191002": root / "sub-M2/sub-M2_ses-1_ecephys.nwb",
    }
    same = session_nwb_files(root, {"190923": None}, pattern=DANDI_PATTERN, match_by="session_id")  # {session}: *
    assert same == {"190923": found["190923"]}
    with pytest.raises(
        InputDataError,
        match=r"no NWB file holds session_id '200101' .*3 file\(s\) match 'sub-\*/\*\.nwb', "
        r"holding session_id 190923, 191002, 191105",
    ):
        session_nwb_files(root, {"200101": None}, pattern="sub-*/*.nwb", match_by="session_id")


def test_a_pattern_matching_several_files_or_none_is_an_error_naming_them(tmp_path: Path, recording: Recording) -> None:
    """Both subjects have a session 1: which one session '1' means is not guessed."""
    files = {"sub-M1/sub-M1_ses-1_ecephys.nwb": "1", "sub-M2/sub-M2_ses-1_ecephys.nwb": "1"}
    root = dandi_tree(tmp_path, recording, files)
    with pytest.raises(
        InputDataError,
        match=r"2 files match 'sub-\*/sub-\*_ses-1_\*\.nwb' \(source\.pattern\) for session '1': "
        r"sub-M1/sub-M1_ses-1_ecephys\.nwb, sub-M2/sub-M2_ses-1_ecephys\.nwb\. .*not guessed: give the session its "
        r"file",
    ):
        session_nwb_files(root, {"1": None}, pattern=DANDI_PATTERN)
    with pytest.raises(
        InputDataError,
        match=r"2 files hold session_id '1': sub-M1/.*, sub-M2/.*not guessed: list each as its own session",
    ):
        session_nwb_files(root, {"1": None}, pattern="sub-*/*.nwb", match_by="session_id")
    with pytest.raises(
        InputDataError,
        match=r"no file matches 'sub-\*/sub-\*_ses-2_\*\.nwb' \(source\.pattern\) for session '2': check",
    ):
        session_nwb_files(root, {"2": None}, pattern=DANDI_PATTERN)
    with pytest.raises(InputDataError, match=r"for session '1' \(the folder does not exist\)"):
        session_nwb_files(tmp_path / "absent", {"1": None}, pattern=DANDI_PATTERN)
    # Resolved: each session named with its own id and file (a glob that matches one).
    sessions = {"M1-1": "sub-M1/sub-M1_ses-1_ecephys.nwb", "M2-1": "sub-M2/*_ses-1_*.nwb"}
    assert session_nwb_files(root, sessions, pattern=DANDI_PATTERN) == {
        "M1-1": root / "sub-M1/sub-M1_ses-1_ecephys.nwb",
        "M2-1": root / "sub-M2/sub-M2_ses-1_ecephys.nwb",
    }
    with pytest.raises(
        InputDataError, match=r"2 files match 'sub-\*/\*_ses-1_\*\.nwb' \(the session's file in sessions\)"
    ):
        session_nwb_files(root, {"M1-1": "sub-*/*_ses-1_*.nwb"})
    with pytest.raises(
        InputDataError, match=r"sub-M1_ses-1_ecephys\.nwb: is the file of sessions a, b: each session needs its own"
    ):
        session_nwb_files(root, {"a": "sub-M1/sub-M1_ses-1_ecephys.nwb", "b": "sub-M1/*.nwb"})


def test_an_unreadable_file_among_those_matched_by_session_id_is_named(tmp_path: Path, recording: Recording) -> None:
    root = dandi_tree(tmp_path, recording, TWO_SUBJECTS)
    (root / "sub-M2" / "sub-M2_ses-191003_ecephys.nwb").write_bytes(b"an upload cut short")
    with pytest.raises(
        InputDataError,
        match=r"sub-M2_ses-191003_ecephys\.nwb: cannot be read as NWB .* must be read: narrow the pattern",
    ):
        session_nwb_files(root, {"190923": None}, pattern=DANDI_PATTERN, match_by="session_id")


def test_the_workflow_resolves_each_sessions_file_in_a_dandi_tree(tmp_path: Path, recording: Recording) -> None:
    """A dry run plans each session's preprocessing from its file: found by the session_id stored in it, or, for the
    file that stores the lab's own id, given in sessions."""
    subjects = {"t01": "M1", "t02": "M1", "t03": "M1", "t04": "M2"}
    files = {f"sub-{subject}/sub-{subject}_ses-{session}_ecephys.nwb": session for session, subject in subjects.items()}
    files["sub-M2/sub-M2_ses-191002_ecephys.nwb"] = "2019-10-02"
    root = dandi_tree(tmp_path / "dandiset", recording, files)
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config.pop("virtual_lab")
    config["source"] = {"kind": "nwb", "path": str(root), "pattern": "sub-*/*.nwb", "match_by": "session_id"}
    assert config["sessions"][4]["id"] == "t05"
    config["sessions"][4]["file"] = "sub-M2/*_ses-191002_*.nwb"
    (tmp_path / "dandi.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(tmp_path, "--configfile", str(tmp_path / "dandi.yaml"), "--dry-run")
    planned = re.findall(r"rule preprocess_session:\n\s+input: (\S+)\n\s+output: \S+/sessions/(\w+)\.nc", result.stdout)
    assert {session: Path(path) for path, session in planned} == {
        "t01": root / "sub-M1/sub-M1_ses-t01_ecephys.nwb",
        "t02": root / "sub-M1/sub-M1_ses-t02_ecephys.nwb",
        "t03": root / "sub-M1/sub-M1_ses-t03_ecephys.nwb",
        "t04": root / "sub-M2/sub-M2_ses-t04_ecephys.nwb",
        "t05": root / "sub-M2/sub-M2_ses-191002_ecephys.nwb",
    }
