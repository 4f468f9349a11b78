"""NWB files: written and read back exactly; bad files get a clear error naming the file."""

from __future__ import annotations

import shutil
from datetime import UTC
from pathlib import Path

import numpy as np
import pytest
from pynwb import NWBHDF5IO

from compactcortex.errors import InputDataError
from compactcortex.io.nwb import read_recording_nwb, write_recording_nwb
from compactcortex.recording import Recording


def test_round_trip_is_exact(tmp_path: Path, recording: Recording) -> None:
    path = tmp_path / "t01.nwb"
    write_recording_nwb(path, recording)
    back = read_recording_nwb(path)
    np.testing.assert_array_equal(back.spike_times, recording.spike_times)
    np.testing.assert_array_equal(back.unit_bounds, recording.unit_bounds)
    np.testing.assert_array_equal(back.trial_onset, recording.trial_onset)
    np.testing.assert_array_equal(back.trial_image, recording.trial_image)
    np.testing.assert_array_equal(back.images, recording.images)
    np.testing.assert_array_equal(back.image_ids, recording.image_ids)
    np.testing.assert_array_equal(back.image_types, recording.image_types)
    np.testing.assert_array_equal(back.unit_ids, recording.unit_ids)
    assert (back.session, back.monkey) == ("t01", "M1")
    assert not list(tmp_path.glob(".*partial*")), "no temporary file is left behind"


@pytest.mark.parametrize("onsets", ["regular", "jittered"])
def test_file_passes_nwbinspector_with_the_dandi_configuration(
    tmp_path: Path, recording: Recording, onsets: str
) -> None:
    """No finding at BEST_PRACTICE_VIOLATION or above under DANDI's configuration (which makes the subject's
    metadata critical), whether the trials come at a constant interval or not (the virtual lab jitters them)."""
    from nwbinspector import Importance, inspect_nwbfile, load_config

    if onsets == "jittered":
        jitter = np.random.default_rng(1).uniform(0.0, 0.02, recording.n_trials)
        recording.trial_onset, recording.trial_offset = recording.trial_onset + jitter, recording.trial_offset + jitter
    path = tmp_path / "t01.nwb"
    write_recording_nwb(path, recording)
    threshold = Importance.BEST_PRACTICE_VIOLATION
    messages = inspect_nwbfile(nwbfile_path=path, config=load_config("dandi"), importance_threshold=threshold)
    findings = [m for m in messages if m.importance.value >= threshold.value]
    assert not findings, "\n".join(
        f"{m.importance.name} {m.check_function_name} at {m.location}: {m.message}" for m in findings
    )


def test_truncated_file_is_a_clear_error(tmp_path: Path, recording: Recording) -> None:
    path = tmp_path / "t01.nwb"
    write_recording_nwb(path, recording)
    truncated = tmp_path / "truncated.nwb"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputDataError, match=r"truncated\.nwb: cannot be read as NWB"):
        read_recording_nwb(truncated)
    garbage = tmp_path / "garbage.nwb"
    garbage.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(InputDataError, match="garbage.nwb"):
        read_recording_nwb(garbage)
    with pytest.raises(InputDataError, match="not found"):
        read_recording_nwb(tmp_path / "absent.nwb")


def test_missing_pieces_are_named(tmp_path: Path, recording: Recording) -> None:
    path = tmp_path / "t01.nwb"
    write_recording_nwb(path, recording)
    with pytest.raises(InputDataError, match="no column 'stimulus_id'"):
        read_recording_nwb(path, image_column="stimulus_id")
    with pytest.raises(InputDataError, match="no stimulus template 'natural_scenes'"):
        read_recording_nwb(path, template_name="natural_scenes")


def test_trials_naming_a_missing_image_are_an_error(tmp_path: Path, recording: Recording) -> None:
    import h5py

    path = tmp_path / "t01.nwb"
    write_recording_nwb(path, recording)
    with h5py.File(path, "r+") as handle:
        handle["intervals/trials/image_index"][3] = len(recording.image_ids) + 5
    with pytest.raises(InputDataError, match=r"image index 17, but the template holds 12 images"):
        read_recording_nwb(path)


def test_unsorted_spike_times_are_sorted_per_unit(tmp_path: Path, recording: Recording) -> None:
    path = tmp_path / "t01.nwb"
    shuffled = recording.spike_times.copy()
    first = slice(recording.unit_bounds[0], recording.unit_bounds[1])
    shuffled[first] = shuffled[first][::-1]
    recording.spike_times = shuffled
    write_recording_nwb(path, recording)
    back = read_recording_nwb(path)
    assert np.all(np.diff(back.spike_times[first]) >= 0)


def test_write_is_atomic(tmp_path: Path, recording: Recording) -> None:
    recording.trial_offset = recording.trial_offset[:-1]  # trials disagree: the writer fails
    with pytest.raises(ValueError):
        write_recording_nwb(tmp_path / "t01.nwb", recording)
    assert list(tmp_path.iterdir()) == []


def test_reads_a_file_made_by_another_writer(tmp_path: Path, recording: Recording) -> None:
    """A user's file: grayscale images without an order, no unit names, image names in the trials."""
    from datetime import datetime

    from pynwb import NWBFile
    from pynwb.base import Images
    from pynwb.image import GrayscaleImage

    nwbfile = NWBFile("user session", "id-1", datetime(2025, 5, 1, tzinfo=UTC), session_id="u1")
    grey = recording.images[..., 0]
    nwbfile.add_stimulus_template(
        Images(name="stimulus_images", images=[GrayscaleImage(name=f"im{i:02d}", data=g) for i, g in enumerate(grey)])
    )
    nwbfile.add_trial_column("image_index", "image name")
    for onset, image in zip(recording.trial_onset, recording.trial_image, strict=True):
        nwbfile.add_trial(start_time=onset, stop_time=onset + 0.1, image_index=f"im{image:02d}")
    for unit in range(recording.n_units):
        nwbfile.add_unit(
            spike_times=recording.spike_times[recording.unit_bounds[unit] : recording.unit_bounds[unit + 1]]
        )
    path = tmp_path / "u1.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    back = read_recording_nwb(path)
    np.testing.assert_array_equal(back.trial_image, recording.trial_image)
    np.testing.assert_array_equal(back.images[..., 2], grey)
    assert back.unit_ids[0] == "unit0" and back.image_types[0] == "unknown"
    shutil.rmtree(tmp_path)


def test_errors_name_the_unit_or_trial(tmp_path: Path, recording: Recording) -> None:
    import h5py

    path = tmp_path / "t01.nwb"
    write_recording_nwb(path, recording)
    good = path.read_bytes()
    with h5py.File(path, "r+") as handle:
        handle["units/spike_times"][recording.unit_bounds[2] + 1] = np.nan
    with pytest.raises(InputDataError, match=r"t01\.nwb: NaN or infinite spike times in 1 unit\(s\): t01_n002"):
        read_recording_nwb(path)
    path.write_bytes(good)
    with h5py.File(path, "r+") as handle:
        handle["intervals/trials/start_time"][9] = np.nan
    with pytest.raises(InputDataError, match=r"t01\.nwb: trial 9 has a NaN or infinite start_time"):
        read_recording_nwb(path)
    path.write_bytes(good)
    with h5py.File(path, "r+") as handle:
        del handle["units/unit_name"]
        handle["units/unit_name"] = np.array([b"a", b"b", b"a", b"c", b"b"], dtype=h5py.string_dtype())
    with pytest.raises(InputDataError, match="duplicate unit ids: a, b"):
        read_recording_nwb(path)


def test_unit_areas_round_trip(tmp_path: Path, recording: Recording) -> None:
    recording.unit_areas = np.array(["V4", "V1", "V4", "V4", "V1"])
    path = tmp_path / "t01.nwb"
    write_recording_nwb(path, recording)
    back = read_recording_nwb(path)
    np.testing.assert_array_equal(back.unit_areas, recording.unit_areas)
    assert back.area == "V1,V4"
