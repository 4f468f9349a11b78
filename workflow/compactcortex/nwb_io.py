"""Read and write recording sessions as NWB files (Units, trials, images as stimulus templates)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import h5py
import hdmf.container
import numpy as np
from hdmf.backends.hdf5.h5_utils import H5DataIO
from pynwb import NWBHDF5IO, NWBFile
from pynwb.base import ImageReferences, Images
from pynwb.file import Subject
from pynwb.image import IndexSeries, RGBImage
from pynwb.misc import Units

from compactcortex.atomic import atomic_path
from compactcortex.errors import InputDataError
from compactcortex.recording import Recording

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
            timestamps=recording.trial_onset,
            description="Index (in order_of_images) of the image shown at each onset.",
        )
    )
    nwbfile.add_trial_column(image_column, "Index of the image shown, into the stimulus template's order.")
    nwbfile.add_trial_column(IMAGE_TYPE_COLUMN, "Type of the image shown (natural, gaudy, ...).")
    for onset, offset, image in zip(recording.trial_onset, recording.trial_offset, recording.trial_image, strict=True):
        nwbfile.add_trial(
            start_time=float(onset),
            stop_time=float(offset),
            **{image_column: int(image), IMAGE_TYPE_COLUMN: str(recording.image_types[image])},
        )
    nwbfile.units = Units(
        name="units",
        description=f"Sorted units recorded in {recording.area}.",
        resolution=spike_time_resolution_s,
    )
    nwbfile.units.add_column("unit_name", "Identifier of the unit in the lab's sorting.")
    nwbfile.units.add_column("location", "Brain area.")
    for index, unit_id in enumerate(recording.unit_ids):
        times = recording.spike_times[recording.unit_bounds[index] : recording.unit_bounds[index + 1]]
        nwbfile.units.add_unit(spike_times=times, unit_name=str(unit_id), location=recording.area)
    with atomic_path(path) as temporary, NWBHDF5IO(str(temporary), "w") as io:
        io.write(nwbfile)


def read_recording_nwb(
    path: str | Path, *, template_name: str = "stimulus_images", image_column: str = "image_index"
) -> Recording:
    """Read an NWB session: the Units table's spike times, the trials and the stimulus template images.

    Requirements of the file (README, "Bringing your own data"): a Units table with spike_times; a
    trials table with start_time (stimulus onset), stop_time and `image_column` (an index into the
    template's images, or an image name); the images as stimulus template `template_name` (an Images
    container, or an ImageSeries of frames). An optional trials column `image_type` labels the images.

    Reads the file's HDF5 layout directly (h5py): pynwb would build an object per image and hold several
    copies of a session in memory; this way memory stays about one session's size.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(path, "NWB file not found")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise InputDataError(path, f"cannot be read as NWB (corrupt or truncated file?): {exc}") from exc
    with handle:
        if "nwb_version" not in handle.attrs:
            raise InputDataError(path, "is an HDF5 file but not an NWB file (no nwb_version attribute)")
        try:
            return _read_recording(path, handle, template_name, image_column)
        except (OSError, KeyError, RuntimeError) as exc:
            raise InputDataError(path, f"cannot be read as NWB (corrupt or truncated file?): {exc}") from exc


def _read_recording(path: Path, handle: h5py.File, template_name: str, image_column: str) -> Recording:
    unit_ids, spike_times, unit_bounds = _read_units(path, handle)
    images, image_ids = _read_images(path, handle, template_name)
    if "intervals/trials" not in handle or "start_time" not in handle["intervals/trials"]:
        raise InputDataError(path, "has no trials table (stimulus onsets and the image shown on each)")
    trials = handle["intervals/trials"]
    if image_column not in trials:
        columns = ", ".join(name for name in trials if not name.endswith("_index") and name != "id")
        raise InputDataError(path, f"trials table has no column '{image_column}' (columns: {columns})")
    onset = np.asarray(trials["start_time"][:], dtype=np.float64)
    offset = np.asarray(trials["stop_time"][:], dtype=np.float64)
    if onset.size == 0:
        raise InputDataError(path, "the trials table is empty")
    if not (np.all(np.isfinite(onset)) and np.all(np.isfinite(offset))):
        raise InputDataError(path, "trials table has NaN or infinite start/stop times")
    trial_image = _trial_image_indices(path, _column(trials[image_column]), image_ids)
    image_types = np.full(len(image_ids), "unknown", dtype=object)
    if IMAGE_TYPE_COLUMN in trials:
        trial_types = _column(trials[IMAGE_TYPE_COLUMN]).astype(str)
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
        description=_text(handle, "session_description") or "",
    )


def _column(dataset: h5py.Dataset) -> np.ndarray:
    if h5py.check_string_dtype(dataset.dtype) is not None:
        return np.asarray(dataset.asstr()[:])
    return np.asarray(dataset[:])


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
    if not np.all(np.isfinite(spike_times)):
        raise InputDataError(path, "Units table has NaN or infinite spike times")
    unit_of_spike = np.repeat(np.arange(unit_bounds.size - 1), np.diff(unit_bounds))
    if np.any((np.diff(spike_times) < 0) & (np.diff(unit_of_spike) == 0)):
        spike_times = spike_times[np.lexsort((spike_times, unit_of_spike))]
    if "unit_name" in units:
        unit_ids = _column(units["unit_name"]).astype(str)
    else:
        unit_ids = np.asarray([f"unit{unit_id}" for unit_id in units["id"][:]])
    if np.unique(unit_ids).size != unit_ids.size:
        raise InputDataError(path, "Units table has duplicate unit ids")
    return unit_ids, spike_times, unit_bounds


IMAGE_TYPES = ("RGBImage", "RGBAImage", "GrayscaleImage")


def _neurodata_type(node: h5py.HLObject) -> str:
    value = node.attrs.get("neurodata_type", "")
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_images(path: Path, handle: h5py.File, template_name: str) -> tuple[np.ndarray, np.ndarray]:
    templates = handle.get("stimulus/templates")
    if templates is None or template_name not in templates:
        available = ", ".join(templates) if templates is not None else "none"
        raise InputDataError(path, f"has no stimulus template '{template_name}' (templates: {available or 'none'})")
    template = templates[template_name]
    if _neurodata_type(template) == "ImageSeries" or "data" in template and isinstance(template["data"], h5py.Dataset):
        frames = template["data"]
        image_ids = np.asarray([f"{template_name}{index:05d}" for index in range(frames.shape[0])])
        return _as_rgb_uint8(path, frames.shape[0], lambda index: frames[index]), image_ids
    if "order_of_images" in template:
        names = [h5py.h5r.get_name(reference, handle.id).decode() for reference in template["order_of_images"][:]]
    else:
        names = [template[name].name for name in sorted(template) if _neurodata_type(template[name]) in IMAGE_TYPES]
    if not names:
        raise InputDataError(path, f"stimulus template '{template_name}' holds no images")
    for name in names:
        if _neurodata_type(handle[name]) not in IMAGE_TYPES:
            raise InputDataError(path, f"'{name}' in the template is a {_neurodata_type(handle[name])}, not an image")
    image_ids = np.asarray([name.rsplit("/", 1)[-1] for name in names])
    return _as_rgb_uint8(path, len(names), lambda index: handle[names[index]][()]), image_ids


def _as_rgb_uint8(path: Path, count: int, read) -> np.ndarray:  # noqa: ANN001
    """Read `count` images one at a time into one preallocated (image, y, x, 3) uint8 array.

    Dataset objects are not kept open: HDF5 caches each open object, which for thousands of images
    costs several times the images' own size.
    """
    sample = np.asarray(read(0))
    if sample.ndim not in (2, 3) or (sample.ndim == 3 and sample.shape[-1] not in (3, 4)):
        raise InputDataError(path, f"stimulus images have shape {sample.shape}, expected (y, x) or (y, x, 3)")
    images = np.empty((count, *sample.shape[:2], 3), dtype=np.uint8)
    for index in range(count):
        frame = np.asarray(read(index)) if index else sample
        if frame.shape[:2] != sample.shape[:2]:
            raise InputDataError(path, f"stimulus images differ in size: {sample.shape[:2]} and {frame.shape[:2]}")
        if frame.ndim == 2:
            frame = frame[..., None]
        frame = frame[..., :3]
        if frame.dtype != np.uint8:
            if np.issubdtype(frame.dtype, np.floating) and frame.max(initial=0) <= 1.0:
                frame = frame * 255.0
            frame = np.clip(np.round(frame), 0, 255)
        images[index] = frame
    return images


def _trial_image_indices(path: Path, values: np.ndarray, image_ids: np.ndarray) -> np.ndarray:
    if np.issubdtype(values.dtype, np.integer):
        indices = values.astype(np.int64)
        missing = indices[(indices < 0) | (indices >= len(image_ids))]
        if missing.size:
            raise InputDataError(
                path, f"trials name image index {missing[0]}, but the template holds {len(image_ids)} images"
            )
        return indices
    names = values.astype(str)
    lookup = {name: index for index, name in enumerate(image_ids)}
    unknown = sorted(set(names) - lookup.keys())
    if unknown:
        raise InputDataError(path, f"trials name images missing from the template: {', '.join(unknown[:5])}")
    return np.asarray([lookup[name] for name in names], dtype=np.int64)
