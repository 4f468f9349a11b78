"""The virtual lab's ground truth of a simulated session (``ground_truth/<session>.nc``): what the simulator knows
and the recordings do not, the neurons' noiseless rates for every image, their spontaneous rates, latencies and
kinds. (The neurons themselves are saved by ``lab.neurons.VirtualNeurons.save``.)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from compactcortex.atomic import atomic_path
from compactcortex.errors import InputDataError


def write_ground_truth(
    path: str | Path,
    *,
    kinds: np.ndarray,
    rates: np.ndarray,
    spontaneous: np.ndarray,
    latency_s: np.ndarray,
    neuron_ids: np.ndarray,
    image_ids: np.ndarray,
    image_types: np.ndarray,
    attrs: Mapping[str, str],
) -> None:
    """rates: (neuron, image) noiseless driven rates (spikes/s)."""
    truth = xr.Dataset(
        {
            "rate": (("neuron", "image"), rates, {"long_name": "noiseless driven firing rate", "units": "spikes/s"}),
            "spontaneous_rate": ("neuron", spontaneous, {"units": "spikes/s"}),
            "latency_ms": ("neuron", latency_s * 1000.0, {"units": "ms"}),
            "neuron_kind": ("neuron", np.asarray(kinds).astype(str)),
        },
        coords={"neuron": neuron_ids, "image": image_ids, "image_type": ("image", image_types.astype(str))},
        attrs=dict(attrs),
    )
    with atomic_path(path) as temporary:
        truth.to_netcdf(temporary, engine="netcdf4")


def read_ground_truth(path: str | Path, variables: Sequence[str] = ("rate",)) -> xr.Dataset:
    """The ground truth, loaded (the file is closed), checked for ``variables``."""
    path = Path(path)
    try:
        with xr.open_dataset(path, engine="netcdf4") as truth:
            truth = truth.load()
    except (OSError, ValueError) as exc:
        raise InputDataError(path, f"cannot be read as a ground truth: {exc}") from exc
    missing = [name for name in variables if name not in truth]
    if missing:
        raise InputDataError(path, f"is not a virtual lab's ground truth: it lacks {', '.join(missing)}")
    return truth


def true_rates_table(path: str | Path) -> pd.DataFrame:
    """image x neuron table of the simulated neurons' noiseless rates."""
    rate = read_ground_truth(path)["rate"].transpose("image", "neuron")
    return pd.DataFrame(rate.values, index=rate["image"].values.astype(str), columns=rate["neuron"].values.astype(str))
