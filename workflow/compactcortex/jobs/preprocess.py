"""Jobs of ``rules/preprocess.smk``: a recording (NWB, or the published data's own format) -> the session
dataset."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from compactcortex.errors import InputDataError
from compactcortex.io.cowley2023 import PUBLISHED_AREA, cowley_paths, read_image_zip, session_responses
from compactcortex.io.nwb import read_recording_nwb
from compactcortex.io.session_dataset import build_session_dataset, write_session_dataset
from compactcortex.preprocess import preprocess_recording, preprocess_settings, unit_areas
from compactcortex.provenance import provenance_attrs
from compactcortex.seeding import rng_for

log = logging.getLogger(__name__)


def preprocess_session(
    nwb_path: str | Path,
    output_path: str | Path,
    *,
    params: Mapping[str, Any],
    seed: int,
    session: str | None = None,
    area: str | None = None,
) -> None:
    """Read an NWB session, count spikes per trial and write the session dataset, named ``session`` (by default
    the output file's name). ``area``: the session's brain area from the config (None: the file's)."""
    nwb_path = Path(nwb_path)
    params = preprocess_settings(params)
    recording = read_recording_nwb(
        nwb_path,
        template_name=params["nwb_stimulus_template"],
        image_column=params["nwb_image_column"],
        image_order=params["nwb_image_order"],
        trial_filter=params["trial_filter"],
    )
    session = session or Path(output_path).stem
    if recording.session != session:
        log.warning(
            "%s: NWB session_id '%s' differs from the session's name '%s'", nwb_path, recording.session, session
        )
        recording.session = session
    if recording.n_trials == 0:
        raise InputDataError(nwb_path, "no trials")
    dataset = preprocess_recording(recording, source=nwb_path, params=params, seed=seed, inputs=[nwb_path], area=area)
    write_session_dataset(dataset, output_path, params["compression_level"])
    log.info(
        "%s: %d neurons, %d images, median %d repeats, %d spikes",
        output_path,
        dataset.sizes["neuron"],
        dataset.sizes["image"],
        int(np.median(dataset["n_repeats"])),
        recording.n_spikes,
    )


def ingest_cowley_session(
    root: str | Path,
    session: str,
    output_path: str | Path,
    *,
    params: Mapping[str, Any],
    seed: int,
    monkey: str,
    area: str | None = None,
) -> None:
    """Convert one session of the published data into the session dataset (``area``: the configured area, which
    must be the data's, V4)."""
    params = preprocess_settings(params)
    paths = cowley_paths(root, session)
    for path in paths.values():
        if not path.is_file():
            raise InputDataError(path, f"file of session {session} not found")
    images, indices = read_image_zip(paths["images"])
    responses, response_kind = session_responses(paths)
    if responses.shape[1] != images.shape[0]:
        raise InputDataError(
            paths["images"],
            f"holds {images.shape[0]} images but {paths['averaged'].name} has responses to {responses.shape[1]}",
        )
    source = paths["averaged"] if response_kind == "repeat_averaged" else paths["raw"]
    dataset = build_session_dataset(
        source=source,
        session=session,
        monkey=monkey,
        responses=responses,
        images=images,
        neuron_ids=np.asarray([f"{session}_n{index:03d}" for index in range(responses.shape[0])]),
        image_ids=np.asarray([f"image{index:04d}" for index in indices]),
        image_types=np.full(images.shape[0], "unknown"),
        source_index=indices - 1,
        response_kind=response_kind,
        latency_ms=params["latency_ms"],
        window_ms=params["window_ms"],
        reliability_splits=params["reliability_splits"],
        min_reliability=params["min_reliability"],
        seed=int(rng_for(seed, session, "reliability").integers(2**31)),
        area=unit_areas(source, np.full(responses.shape[0], PUBLISHED_AREA), area),
        on_silent_neuron=params["on_silent_neuron"],
        history=(
            "compactcortex.jobs.preprocess.ingest_cowley_session: converted from the published format of "
            "Cowley et al. 2023 "
            f"({', '.join(sorted(path.name for path in paths.values()))})"
        ),
        attrs={
            **provenance_attrs(
                {"preprocess": params, "seed": seed, "monkey": monkey, "area": area}, list(paths.values())
            ),
            "source_format": "cowley2023",
            "citation": "Cowley, Stan, Pillow & Smith, Compact deep neural network models of visual cortex (2023)",
            "license": "GPL-3.0 (source data)",
        },
    )
    write_session_dataset(dataset, output_path, params["compression_level"])
    log.info("%s: %d neurons, %d images (%s)", output_path, *dataset["responses"].shape[:2], response_kind)
