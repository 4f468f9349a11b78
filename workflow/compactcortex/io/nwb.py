"""Read and write recording sessions as NWB files (Units, trials, images as stimulus templates), and find each
session's file in a folder or a DANDI-style tree."""

from __future__ import annotations

import glob
import itertools
import json
import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import hdmf.container
import numpy as np
from hdmf.backends.hdf5.h5_utils import H5DataIO
from hdmf.common import VectorData
from pynwb import NWBHDF5IO, NWBFile
from pynwb.base import ImageReferences, Images
from pynwb.epoch import TimeIntervals
from pynwb.file import Subject
from pynwb.image import IndexSeries, RGBImage
from pynwb.misc import Units

from compactcortex.atomic import atomic_path
from compactcortex.errors import InputDataError
from compactcortex.recording import Recording

log = logging.getLogger(__name__)

IMAGE_TYPE_COLUMN = "image_type"


@contextmanager
def reproducible_object_ids(name: str) -> Iterator[None]:
    """NWB gives every object a random UUID (hdmf's ``uuid4``); within this block they are derived from ``name``
    and the order of creation instead, so the same recording written twice gives the same bytes."""
    counter = itertools.count()
    random_uuid4 = hdmf.container.uuid4
    hdmf.container.uuid4 = lambda: uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/object/{next(counter)}")
    try:
        yield
    finally:
        hdmf.container.uuid4 = random_uuid4


def write_recording_nwb(
    path: str | Path,
    recording: Recording,
    *,
    template_name: str = "stimulus_images",
    image_column: str = "image_index",
    spike_time_resolution_s: float = 1 / 30000,
    session_start_time: datetime = datetime(2026, 1, 1, tzinfo=UTC),
) -> None:
    """Write `recording` as an NWB file, atomically (the file appears complete or not at all); the same recording
    always gives the same bytes (fixed dates, object ids derived from the session)."""
    with reproducible_object_ids(f"compactcortex/{recording.monkey}/{recording.session}"):
        _write_recording_nwb(path, recording, template_name, image_column, spike_time_resolution_s, session_start_time)


def _write_recording_nwb(
    path: str | Path,
    recording: Recording,
    template_name: str,
    image_column: str,
    spike_time_resolution_s: float,
    session_start_time: datetime,
) -> None:
    nwbfile = NWBFile(
        session_description=recording.description or f"session {recording.session}",
        identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"compactcortex/{recording.monkey}/{recording.session}")),
        session_start_time=session_start_time,
        file_create_date=session_start_time,  # not the clock: the same recording gives the same bytes
        session_id=recording.session,
        experimenter=[recording.metadata.get("experimenter", "Lab, Virtual")],
        lab=recording.metadata.get("lab", "virtual V4 lab"),
        institution=recording.metadata.get("institution", "compactcortex"),
        experiment_description=recording.metadata.get(
            "experiment_description", "Passive fixation; images flashed in shuffled order; Utah array in V4."
        ),
        keywords=["V4", "macaque", "Utah array", "natural images", "compact models"],
        subject=Subject(
            subject_id=recording.monkey,
            species="Macaca mulatta",
            sex="U",
            age="P6Y",
            description=recording.metadata.get("subject_description", "rhesus macaque"),
        ),
    )
    image_objects = [
        RGBImage(name=str(image_id), data=H5DataIO(image, compression="gzip"), description=str(image_type))
        for image_id, image, image_type in zip(
            recording.image_ids, recording.images, recording.image_types, strict=True
        )
    ]
    images = Images(
        name=template_name,
        images=image_objects,
        description="Images shown, RGB uint8, each described by its image type.",
        order_of_images=ImageReferences(name="order_of_images", data=image_objects),
    )
    nwbfile.add_stimulus_template(images)
    nwbfile.add_stimulus(
        IndexSeries(
            name="image_presentations",
            data=recording.trial_image.astype(np.uint32),
            indexed_images=images,
            unit="N/A",
            description="Index (in order_of_images) of the image shown at each onset.",
            **_presentation_times(np.asarray(recording.trial_onset, dtype=np.float64)),
        )
    )
    # Built column by column (add_trial row by row costs a second per thousand trials); the same table, with
    # pynwb's own descriptions of its required columns.
    required = {column["name"]: column["description"] for column in TimeIntervals.__columns__}
    trial_columns = {
        "start_time": (required["start_time"], np.asarray(recording.trial_onset, dtype=np.float64)),
        "stop_time": (required["stop_time"], np.asarray(recording.trial_offset, dtype=np.float64)),
        image_column: (
            "Index of the image shown, into the stimulus template's order.",
            np.asarray(recording.trial_image, dtype=np.int64),
        ),
        IMAGE_TYPE_COLUMN: (
            "Type of the image shown (natural, gaudy, ...).",
            [str(recording.image_types[image]) for image in recording.trial_image],
        ),
    }
    nwbfile.trials = TimeIntervals(
        name="trials",
        description="experimental trials",
        columns=[VectorData(name=name, description=text, data=data) for name, (text, data) in trial_columns.items()],
    )
    nwbfile.units = Units(
        name="units",
        description=f"Sorted units recorded in {recording.area}.",
        resolution=spike_time_resolution_s,
    )
    nwbfile.units.add_column("unit_name", "Identifier of the unit in the lab's sorting.")
    nwbfile.units.add_column("location", "Brain area.")
    for index, (unit_id, area) in enumerate(zip(recording.unit_ids, recording.areas_of_units(), strict=True)):
        times = recording.spike_times[recording.unit_bounds[index] : recording.unit_bounds[index + 1]]
        nwbfile.units.add_unit(spike_times=times, unit_name=str(unit_id), location=str(area))
    with atomic_path(path) as temporary, NWBHDF5IO(str(temporary), "w") as io:
        io.write(nwbfile)


def _presentation_times(onsets: np.ndarray) -> dict[str, Any]:
    """The presentations' times: onsets at a constant interval as starting_time and rate (what nwbinspector asks of
    regular timestamps, to nanoseconds), any others as timestamps."""
    intervals = np.unique(np.diff(onsets).round(9))
    if onsets.size > 2 and intervals.size == 1 and intervals[0] > 0:
        return {"starting_time": float(onsets[0]), "rate": float((onsets.size - 1) / (onsets[-1] - onsets[0]))}
    return {"timestamps": onsets}


IMAGE_ORDERS = ("recorded", "natural", "alphabetical")
# Trials columns that usually mark failed or aborted trials: present but not filtered on, they get a warning.
OUTCOME_COLUMNS = frozenset(
    ("success", "successful", "correct", "outcome", "trial_outcome", "result", "status", "aborted", "abort")
    + ("valid", "is_valid", "completed", "complete", "rewarded", "error", "fixation_break", "broke_fixation")
)


def read_recording_nwb(
    path: str | Path,
    *,
    template_name: str = "stimulus_images",
    image_column: str = "image_index",
    image_order: str = "recorded",
    trial_filter: Mapping[str, Any] | None = None,
) -> Recording:
    """Read an NWB session: the Units table's spike times, the trials and the stimulus template images.

    Requirements of the file (README, "Bringing your own data"): a Units table with spike_times; a
    trials table with start_time (stimulus onset), stop_time and `image_column` (an index into the
    template's images, or an image name); the images as stimulus template `template_name` (an Images
    container, or an ImageSeries of frames). An optional trials column `image_type` labels the images.

    Integer indices count in the order the file records (the Images' order_of_images, an ImageSeries' frames).
    HDF5 lists a group's images alphabetically and pynwb records no creation order, so without
    order_of_images no order is guessed: `image_order` "natural" (img2 before img10) or "alphabetical" says
    how the indices count, and the default "recorded" makes integer indices an error.

    `trial_filter` ({"column": ..., "keep": [values]}) keeps only the trials whose column holds one of the
    values (e.g. successful ones); a column that looks like a trial outcome but is not filtered on gets a
    warning. Each unit's area is the Units' location, or that of its electrodes.

    Reads the file's HDF5 layout directly (h5py): pynwb would build an object per image and hold several
    copies of a session in memory; this way memory stays about one session's size.
    """
    path = Path(path)
    if image_order not in IMAGE_ORDERS:
        raise ValueError(f"image_order must be one of {IMAGE_ORDERS}, not {image_order!r}")
    if not path.is_file():
        raise InputDataError(path, "NWB file not found")
    with _open_nwb(path) as handle:
        try:
            return _read_recording(path, handle, template_name, image_column, image_order, trial_filter)
        except (OSError, KeyError, RuntimeError) as exc:
            raise InputDataError(path, f"cannot be read as NWB (corrupt or truncated file?): {exc}") from exc


def _open_nwb(path: Path) -> h5py.File:
    """`path` opened for reading, checked to be an NWB file (an InputDataError naming it otherwise)."""
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise InputDataError(path, f"cannot be read as NWB (corrupt or truncated file?): {exc}") from exc
    if "nwb_version" not in handle.attrs:
        handle.close()
        raise InputDataError(path, "is an HDF5 file but not an NWB file (no nwb_version attribute)")
    return handle


def _read_recording(
    path: Path,
    handle: h5py.File,
    template_name: str,
    image_column: str,
    image_order: str,
    trial_filter: Mapping[str, Any] | None,
) -> Recording:
    unit_ids, spike_times, unit_bounds = _read_units(path, handle)
    unit_areas = _read_unit_areas(path, handle, unit_ids)
    if "intervals/trials" not in handle or "start_time" not in handle["intervals/trials"]:
        raise InputDataError(path, "has no trials table (stimulus onsets and the image shown on each)")
    trials = handle["intervals/trials"]
    if image_column not in trials:
        raise InputDataError(path, f"trials table has no column '{image_column}' (columns: {_columns(trials)})")
    n_trials = trials["start_time"].shape[0]
    if n_trials == 0:
        raise InputDataError(path, "the trials table is empty")
    trial_ids = np.asarray(trials["id"][:]) if "id" in trials else np.arange(n_trials)
    warnings: list[str] = []
    keep, selection = _select_trials(path, trials, trial_filter, warnings)
    trial_ids = trial_ids[keep]
    onset = _trial_times(path, trials, "start_time", keep, trial_ids)
    offset = _trial_times(path, trials, "stop_time", keep, trial_ids)
    values = _column(trials[image_column])[keep]
    if np.issubdtype(values.dtype, np.floating) or values.dtype == bool:
        raise InputDataError(
            path, f"trials column '{image_column}' holds {values.dtype} values, not image indices or names"
        )
    by_index = bool(np.issubdtype(values.dtype, np.integer))
    image_ids, read_image, order = _image_listing(path, handle, template_name, image_column, image_order, by_index)
    images = _as_rgb_uint8(path, image_ids, read_image)
    trial_image = _trial_image_indices(path, values, image_ids, trial_ids)
    image_types = np.full(len(image_ids), "unknown", dtype=object)
    if IMAGE_TYPE_COLUMN in trials:
        trial_types = _column(trials[IMAGE_TYPE_COLUMN])[keep].astype(str)
        image_types[trial_image] = trial_types
        inconsistent = np.flatnonzero(image_types[trial_image] != trial_types)
        if inconsistent.size:
            image = image_ids[trial_image[inconsistent[0]]]
            raise InputDataError(path, f"image '{image}' is labelled with more than one image_type in the trials")
    subject_id = _text(handle, "general/subject/subject_id")
    return Recording(
        session=_text(handle, "general/session_id") or path.stem,
        monkey=subject_id or "unknown",
        unit_ids=unit_ids,
        spike_times=spike_times,
        unit_bounds=unit_bounds,
        trial_onset=onset,
        trial_offset=offset,
        trial_image=trial_image,
        images=images,
        image_ids=image_ids,
        image_types=image_types.astype(str),
        area=",".join(sorted(set(unit_areas.tolist()))),
        description=_text(handle, "session_description") or "",
        unit_areas=unit_areas,
        trial_ids=trial_ids,
        read_attrs={"image_order": order, "image_matched_by": "index" if by_index else "name", **selection},
        warnings=warnings,
    )


def _column(dataset: h5py.Dataset) -> np.ndarray:
    if h5py.check_string_dtype(dataset.dtype) is not None:
        return np.asarray(dataset.asstr()[:])
    return np.asarray(dataset[:])


def _columns(table: h5py.Group) -> str:
    """A table's columns, for messages (not the ragged columns' index datasets, nor the ids)."""
    return ", ".join(name for name in table if not name.endswith("_index") and name != "id")


def _text(handle: h5py.File, name: str) -> str | None:
    if name not in handle:
        return None
    value = handle[name][()]
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_units(path: Path, handle: h5py.File) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if "units/spike_times" not in handle or "units/spike_times_index" not in handle:
        raise InputDataError(path, "has no Units table with spike_times")
    units = handle["units"]
    spike_times = np.asarray(units["spike_times"][:], dtype=np.float64)
    unit_bounds = np.concatenate([[0], np.asarray(units["spike_times_index"][:], dtype=np.int64)])
    if unit_bounds.size < 2:
        raise InputDataError(path, "the Units table holds no units")
    if unit_bounds[-1] != spike_times.size or np.any(np.diff(unit_bounds) < 0):
        raise InputDataError(path, "Units spike_times_index does not match spike_times (corrupt file?)")
    if "unit_name" in units:
        unit_ids = _column(units["unit_name"]).astype(str)
    else:
        unit_ids = np.asarray([f"unit{unit_id}" for unit_id in units["id"][:]])
    values, counts = np.unique(unit_ids, return_counts=True)
    if np.any(counts > 1):
        raise InputDataError(path, f"Units table has duplicate unit ids: {', '.join(values[counts > 1][:5])}")
    unit_of_spike = np.repeat(np.arange(unit_bounds.size - 1), np.diff(unit_bounds))
    bad = np.unique(unit_of_spike[~np.isfinite(spike_times)])
    if bad.size:
        raise InputDataError(path, f"NaN or infinite spike times in {bad.size} unit(s): {', '.join(unit_ids[bad[:5]])}")
    if np.any((np.diff(spike_times) < 0) & (np.diff(unit_of_spike) == 0)):
        spike_times = spike_times[np.lexsort((spike_times, unit_of_spike))]
    return unit_ids, spike_times, unit_bounds


def _read_unit_areas(path: Path, handle: h5py.File, unit_ids: np.ndarray) -> np.ndarray:
    """Each unit's brain area: the Units' location column, else the locations of the unit's electrodes (joined
    with '+' where they differ), else "unknown"."""
    units = handle["units"]
    if "location" in units and "location_index" not in units:
        locations = _areas(_column(units["location"]))
        if locations.shape != unit_ids.shape:
            raise InputDataError(path, f"Units location has {locations.size} rows for {unit_ids.size} units")
        return locations
    if "electrodes" not in units:
        return np.full(unit_ids.shape, "unknown")
    region = units["electrodes"]
    table = handle[region.attrs["table"]] if "table" in region.attrs else None
    if table is None or "location" not in table:
        return np.full(unit_ids.shape, "unknown")
    locations = _areas(_column(table["location"]))
    rows = np.asarray(region[:], dtype=np.int64)
    if "electrodes_index" in units:
        bounds = np.concatenate([[0], np.asarray(units["electrodes_index"][:], dtype=np.int64)])
    else:
        bounds = np.arange(rows.size + 1)
    if bounds.size != unit_ids.size + 1 or bounds[-1] != rows.size:
        raise InputDataError(path, "Units electrodes_index does not match electrodes (corrupt file?)")
    areas = []
    for unit, unit_id in enumerate(unit_ids):
        unit_rows = rows[bounds[unit] : bounds[unit + 1]]
        if np.any((unit_rows < 0) | (unit_rows >= locations.size)):
            raise InputDataError(path, f"unit {unit_id} refers to an electrode missing from the electrodes table")
        found = sorted(set(locations[unit_rows].tolist()) - {"unknown"})
        areas.append("+".join(found) or "unknown")
    return np.asarray(areas)


def _areas(locations: np.ndarray) -> np.ndarray:
    cleaned = np.char.strip(locations.astype(str))
    return np.where((cleaned == "") | (np.char.lower(cleaned) == "unknown"), "unknown", cleaned)


def _trial_times(path: Path, trials: h5py.Group, column: str, keep: np.ndarray, trial_ids: np.ndarray) -> np.ndarray:
    times = np.asarray(trials[column][:], dtype=np.float64)[keep]
    bad = np.flatnonzero(~np.isfinite(times))
    if bad.size:
        raise InputDataError(
            path,
            f"trial {trial_ids[bad[0]]} has a NaN or infinite {column} ({times[bad[0]]}); {bad.size} trial(s) in all",
        )
    return times


def _select_trials(
    path: Path, trials: h5py.Group, trial_filter: Mapping[str, Any] | None, warnings: list[str]
) -> tuple[np.ndarray, dict[str, str | int]]:
    """Which trials count: those `trial_filter` keeps (all without one). Returns the mask and what was done,
    as dataset attributes; warns of outcome-like columns that are not filtered on."""
    n_trials = trials["start_time"].shape[0]
    keep = np.ones(n_trials, dtype=bool)
    record: dict[str, Any] | None = None
    column = trial_filter["column"] if trial_filter else None
    if trial_filter:
        keep_values = list(trial_filter["keep"])
        values = _scalar_column(path, trials, column, n_trials)
        keep = np.asarray([value in keep_values for value in values.tolist()], dtype=bool)
        excluded = sorted(Counter(values[~keep].tolist()).items(), key=lambda item: str(item[0]))
        if not keep.any():
            raise InputDataError(
                path,
                f"preprocess.trial_filter keeps no trial: trials column '{column}' holds "
                f"{_value_counts(values)}, and keep lists {keep_values}",
            )
        record = {"column": column, "keep": keep_values, "excluded": [[value, count] for value, count in excluded]}
        log.info(
            "%s: trial_filter on '%s' keeps %d of %d trials (excluded: %s)",
            path,
            column,
            keep.sum(),
            n_trials,
            _value_counts(values[~keep]) or "none",
        )
    for name in _outcome_columns(trials, n_trials):
        if name != column:
            text = (
                f"trials column '{name}' looks like a trial outcome ({_value_counts(_column(trials[name]))}) but "
                "preprocess.trial_filter does not filter on it: every trial is counted"
            )
            log.warning("%s: %s", path, text)
            warnings.append(text)
    selection = {
        "n_trials_in_file": int(n_trials),
        "n_trials_excluded": int(n_trials - keep.sum()),
        "trial_filter_json": json.dumps(record),
    }
    return keep, selection


def _outcome_columns(trials: h5py.Group, n_trials: int) -> list[str]:
    """The trials columns, one value per trial, named like a trial outcome (OUTCOME_COLUMNS)."""
    return [
        name
        for name in trials
        if name.lower() in OUTCOME_COLUMNS
        and f"{name}_index" not in trials
        and isinstance(trials[name], h5py.Dataset)
        and trials[name].shape == (n_trials,)
    ]


def _scalar_column(path: Path, trials: h5py.Group, column: str, n_trials: int) -> np.ndarray:
    if column not in trials:
        raise InputDataError(
            path, f"trials table has no column '{column}' (preprocess.trial_filter; columns: {_columns(trials)})"
        )
    values = _column(trials[column])
    if f"{column}_index" in trials or values.shape != (n_trials,):
        raise InputDataError(path, f"trials column '{column}' does not hold one value per trial")
    return values


def _value_counts(values: np.ndarray, shown: int = 5) -> str:
    """'True: 380, False: 20' (the most frequent values first), for messages."""
    counts = Counter(values.tolist()).most_common()
    text = ", ".join(f"{value!r}: {count}" for value, count in counts[:shown])
    return text + (f", ... ({len(counts)} values)" if len(counts) > shown else "")


IMAGE_TYPES = ("RGBImage", "RGBAImage", "GrayscaleImage")


def _neurodata_type(node: h5py.HLObject) -> str:
    value = node.attrs.get("neurodata_type", "")
    return value.decode() if isinstance(value, bytes) else str(value)


def _image_listing(
    path: Path, handle: h5py.File, template_name: str, image_column: str, image_order: str, by_index: bool
) -> tuple[np.ndarray, Callable[[int], np.ndarray], str]:
    """The template's image ids in the order integer indices count, a reader of image i, and that order's name
    (order_of_images, image_series, natural or alphabetical)."""
    templates = handle.get("stimulus/templates")
    if templates is None or template_name not in templates:
        available = ", ".join(templates) if templates is not None else "none"
        raise InputDataError(path, f"has no stimulus template '{template_name}' (templates: {available or 'none'})")
    template = templates[template_name]
    if _neurodata_type(template) == "ImageSeries" or "data" in template and isinstance(template["data"], h5py.Dataset):
        frames = template["data"]
        image_ids = np.asarray([f"{template_name}{index:05d}" for index in range(frames.shape[0])])
        return image_ids, lambda index: frames[index], "image_series"
    if "order_of_images" in template:
        names = [h5py.h5r.get_name(reference, handle.id).decode() for reference in template["order_of_images"][:]]
        order = "order_of_images"
    else:
        names = [template[name].name for name in template if _neurodata_type(template[name]) in IMAGE_TYPES]
        if by_index and image_order == "recorded":
            raise InputDataError(
                path,
                f"trials column '{image_column}' holds integer image indices, but stimulus template "
                f"'{template_name}' records no order of its images (no order_of_images; HDF5 lists them "
                "alphabetically: img0, img1, img10, ...), so which image an index means is unknown. Write the "
                "Images with order_of_images, put the image names in the trials column, or set "
                "preprocess.nwb_image_order to natural (img2 before img10) or alphabetical",
            )
        order = "natural" if image_order == "recorded" else image_order  # "recorded": trials name the images
        names = _sorted_names(path, template_name, names, order, check_ambiguous=by_index)
    if not names:
        raise InputDataError(path, f"stimulus template '{template_name}' holds no images")
    for name in names:
        if _neurodata_type(handle[name]) not in IMAGE_TYPES:
            raise InputDataError(path, f"'{name}' in the template is a {_neurodata_type(handle[name])}, not an image")
    if by_index and order == "order_of_images" and image_order != "recorded":
        wanted = _sorted_names(path, template_name, names, image_order, check_ambiguous=True)
        if wanted != names:
            position = next(index for index, (a, b) in enumerate(zip(names, wanted, strict=True)) if a != b)
            raise InputDataError(
                path,
                f"preprocess.nwb_image_order is {image_order}, but the file's order_of_images differs: index "
                f"{position} is '{_basename(names[position])}' there and '{_basename(wanted[position])}' in "
                f"{image_order} order. Leave nwb_image_order at recorded to use the file's order",
            )
    image_ids = np.asarray([_basename(name) for name in names])
    return image_ids, lambda index: handle[names[index]][()], order


def _basename(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _sorted_names(path: Path, template_name: str, names: list[str], order: str, check_ambiguous: bool) -> list[str]:
    """`names` in natural (img2 before img10) or alphabetical order of their base names; where integer indices
    depend on it (`check_ambiguous`), names the natural order cannot tell apart (img1, img01) are an error."""
    if order == "alphabetical":
        return sorted(names, key=_basename)

    def natural(name: str) -> list[str | int]:
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", _basename(name))]

    ordered = sorted(names, key=lambda name: (natural(name), _basename(name)))
    if check_ambiguous:
        for first, second in itertools.pairwise(ordered):
            if natural(first) == natural(second):
                raise InputDataError(
                    path,
                    f"images '{_basename(first)}' and '{_basename(second)}' of stimulus template '{template_name}' "
                    "have no natural order (the same number): set preprocess.nwb_image_order to alphabetical",
                )
    return ordered


def _as_rgb_uint8(path: Path, image_ids: np.ndarray, read: Callable[[int], np.ndarray]) -> np.ndarray:
    """Read the images one at a time into one preallocated (image, y, x, 3) uint8 array.

    Dataset objects are not kept open: HDF5 caches each open object, which for thousands of images
    costs several times the images' own size.
    """
    sample = np.asarray(read(0))
    images = np.empty((len(image_ids), *sample.shape[:2], 3), dtype=np.uint8)
    for index, image_id in enumerate(image_ids):
        frame = np.asarray(read(index)) if index else sample
        if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[-1] not in (3, 4)):
            raise InputDataError(
                path, f"stimulus image '{image_id}' has shape {frame.shape}, expected (y, x), (y, x, 3) or (y, x, 4)"
            )
        if frame.shape[:2] != sample.shape[:2]:
            raise InputDataError(
                path,
                f"stimulus image '{image_id}' is {frame.shape[0]}x{frame.shape[1]} pixels, but the images "
                f"before it (from '{image_ids[0]}') are {sample.shape[0]}x{sample.shape[1]}",
            )
        if frame.ndim == 2:
            frame = frame[..., None]
        frame = frame[..., :3]
        if frame.dtype != np.uint8:
            if np.issubdtype(frame.dtype, np.floating) and frame.max(initial=0) <= 1.0:
                frame = frame * 255.0
            frame = np.clip(np.round(frame), 0, 255)
        images[index] = frame
    return images


def _trial_image_indices(path: Path, values: np.ndarray, image_ids: np.ndarray, trial_ids: np.ndarray) -> np.ndarray:
    if np.issubdtype(values.dtype, np.integer):
        indices = values.astype(np.int64)
        missing = np.flatnonzero((indices < 0) | (indices >= len(image_ids)))
        if missing.size:
            raise InputDataError(
                path,
                f"trial {trial_ids[missing[0]]} names image index {indices[missing[0]]}, but the template holds "
                f"{len(image_ids)} images ({missing.size} such trial(s))",
            )
        return indices
    names = values.astype(str)
    lookup = {name: index for index, name in enumerate(image_ids)}
    unknown = np.flatnonzero([name not in lookup for name in names])
    if unknown.size:
        listed = ", ".join(f"'{names[trial]}' (trial {trial_ids[trial]})" for trial in unknown[:5])
        raise InputDataError(path, f"trials name images missing from the template: {listed}")
    return np.asarray([lookup[name] for name in names], dtype=np.int64)


# Each session's file: a flat folder, a DANDI-style tree (sub-<id>/sub-<id>_ses-<id>_*.nwb) or the NWB session_id --

SESSION_FIELD = "{session}"
MATCH_BY = ("file_name", "session_id")
SHOWN_FILES = 10  # files listed in a message


def session_nwb_files(
    root: str | Path,
    sessions: Mapping[str, str | None],
    *,
    pattern: str = "{session}.nwb",
    match_by: str = "file_name",
) -> dict[str, Path]:
    """Each session's NWB file under `root`. `sessions` maps a session id to the session's own file (a path or a
    glob, relative to `root` or absolute) or to None; the others are found by `pattern`, a glob relative to `root`
    in which {session} stands for the id: by their file names (`match_by` "file_name"), or by the session_id
    stored in the files `pattern` matches with {session} read as * ("session_id").

    A path without wildcards is taken as it is (a missing one is named by Snakemake, or by the reader). Nothing is
    guessed: a glob matching no file or several, two files holding a session's session_id, or two sessions given
    the same file is an InputDataError naming the files and how to resolve it."""
    root = Path(root)
    if match_by not in MATCH_BY:
        raise ValueError(f"match_by must be one of {MATCH_BY}, not {match_by!r}")
    by_session_id = None
    if match_by == "session_id" and None in sessions.values():
        by_session_id = _files_by_session_id(root, pattern.replace(SESSION_FIELD, "*"))
    files = {}
    for session, file in sessions.items():
        if file is not None:
            files[session] = _one_file(root, file, session, given=True)
        elif by_session_id is not None:
            files[session] = _file_holding(root, session, pattern.replace(SESSION_FIELD, "*"), by_session_id)
        else:
            files[session] = _one_file(root, pattern.replace(SESSION_FIELD, session), session, given=False)
    _check_one_session_per_file(files)
    return files


def read_nwb_session_id(path: str | Path) -> str | None:
    """The session_id an NWB file holds (None where it holds none)."""
    with _open_nwb(Path(path)) as handle:
        return _text(handle, "general/session_id") or None


def _glob(root: Path, pattern: str) -> list[Path]:
    """The files `pattern` (relative to `root`, or absolute; ** spans folders) matches, sorted; hidden files (such as
    macOS's ._ copies) are left out."""
    return sorted(
        root / match for match in glob.glob(pattern, root_dir=root, recursive=True) if (root / match).is_file()
    )


def _one_file(root: Path, pattern: str, session: str, *, given: bool) -> Path:
    """The one file `pattern` names (the session's own file where `given`, else source.pattern's): itself when it
    holds no wildcard, else the only file it matches."""
    if glob.escape(pattern) == pattern:
        return root / pattern
    found = _glob(root, pattern)
    if len(found) == 1:
        return found[0]
    where = "the session's file in sessions" if given else "source.pattern"
    if not found:
        missing = "" if root.is_dir() else " (the folder does not exist)"
        fix = "correct the session's file" if given else "give the session its file in sessions (file: ...)"
        raise InputDataError(
            root,
            f"no file matches '{pattern}' ({where}) for session '{session}'{missing}: check source.path and {where}, "
            f"or {fix}",
        )
    fix = (
        "narrow the session's file until it matches one"
        if given
        else "give the session its file in sessions (file: <path relative to source.path>), or narrow source.pattern "
        "until it matches one file per session"
    )
    raise InputDataError(
        root,
        f"{len(found)} files match '{pattern}' ({where}) for session '{session}': {_listing(root, found)}. Which one "
        f"is the session's is not guessed: {fix}",
    )


def _files_by_session_id(root: Path, pattern: str) -> dict[str | None, list[Path]]:
    """The files `pattern` matches, by the session_id each holds (None: none)."""
    found: dict[str | None, list[Path]] = {}
    for path in _glob(root, pattern):
        try:
            session_id = read_nwb_session_id(path)
        except InputDataError as exc:
            raise InputDataError(
                path,
                f"{exc.problem}. source.match_by is session_id and source.pattern ('{pattern}') matches this file, so "
                "its session_id must be read: narrow the pattern to leave it out, or give each session its file in "
                "sessions (file: ...)",
            ) from exc
        found.setdefault(session_id, []).append(path)
    return found


def _file_holding(root: Path, session: str, pattern: str, by_session_id: Mapping[str | None, list[Path]]) -> Path:
    """The one file that holds session_id `session`."""
    found = by_session_id.get(session, [])
    if len(found) == 1:
        return found[0]
    if not found:
        held = sorted(session_id for session_id in by_session_id if session_id is not None)
        n_files = sum(len(paths) for paths in by_session_id.values())
        holding = f", holding session_id {', '.join(held[:SHOWN_FILES])}" if held else ""
        holding += ", ..." if len(held) > SHOWN_FILES else ""
        without = len(by_session_id.get(None, []))
        holding += f" ({without} without one)" if without else ""
        raise InputDataError(
            root,
            f"no NWB file holds session_id '{session}' (source.match_by: session_id): {n_files} file(s) match "
            f"'{pattern}'{holding}. Check the session's id in sessions and source.pattern, or give the session its "
            "file (file: ...)",
        )
    raise InputDataError(
        root,
        f"{len(found)} files hold session_id '{session}': {_listing(root, found)}. Which one is the session's is not "
        "guessed: list each as its own session with its file in sessions (file: <path relative to source.path>), "
        "or narrow source.pattern until one remains",
    )


def _check_one_session_per_file(files: Mapping[str, Path]) -> None:
    """Two sessions never read the same file."""
    sessions_of: dict[Path, list[str]] = {}
    for session, path in files.items():
        sessions_of.setdefault(path.resolve(), []).append(session)
    for path, sessions in sessions_of.items():
        if len(sessions) > 1:
            raise InputDataError(
                path,
                f"is the file of sessions {', '.join(sessions)}: each session needs its own file (check source.pattern "
                "and the sessions' file)",
            )


def _listing(root: Path, paths: list[Path]) -> str:
    """Files for a message, relative to `root` where they lie under it."""
    shown = [str(path.relative_to(root)) if path.is_relative_to(root) else str(path) for path in paths[:SHOWN_FILES]]
    return ", ".join(shown) + (f", ... ({len(paths)} in all)" if len(paths) > SHOWN_FILES else "")
