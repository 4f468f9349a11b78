"""Drawing a diverse, calibrated population of the virtual lab's V4 neurons: kind mix and per-kind parameters."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from compactcortex import stimuli
from compactcortex.lab.front_end import DOG_SIGMAS, GABOR_FREQUENCIES
from compactcortex.lab.neuron_kinds import KINDS
from compactcortex.lab.neurons import (
    MAX_SUBUNITS,
    PARAMETERS,
    VECTOR_PARAMETERS,
    VirtualNeurons,
    check_images,
    is_int,
)

DEFAULT_KIND_FRACTIONS = {"curvature": 0.3, "texture": 0.25, "colour": 0.2, "dot": 0.25}
DEFAULT_CALIBRATION_COUNTS = {
    "natural": 120,
    "dead_leaves": 36,
    "texture": 36,
    "gaudy": 36,
    "dots": 36,
    "shapes": 36,
}
MIN_CALIBRATION_IMAGES = 20


def _kind_counts(n_neurons: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder allocation; every kind with a positive share gets one neuron if n allows."""
    positive = [k for k in KINDS if fractions.get(k, 0.0) > 0]
    share = np.array([fractions.get(k, 0.0) for k in positive], dtype=float)
    share /= share.sum()
    minimum = 1 if n_neurons >= len(positive) else 0
    counts = np.full(len(positive), minimum)
    remaining = n_neurons - counts.sum()
    exact = share * remaining
    counts += np.floor(exact).astype(int)
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    counts[order[: n_neurons - counts.sum()]] += 1
    return {k: int(c) for k, c in zip(positive, counts, strict=True)}


def _check_fractions(kind_fractions: Mapping[str, float] | None) -> dict[str, float]:
    if kind_fractions is None:
        return dict(DEFAULT_KIND_FRACTIONS)
    unknown = sorted(set(kind_fractions) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown neuron kind(s) {unknown}; valid kinds are {list(KINDS)}")
    values = {k: float(v) for k, v in kind_fractions.items()}
    if any(not math.isfinite(v) or v < 0 for v in values.values()) or sum(values.values()) <= 0:
        raise ValueError(f"kind_fractions must be non-negative, finite and not all zero, got {kind_fractions}")
    return values


_NEUTRAL_ONES = (
    "sub_sigma",
    "local_sigma",
    "n_sub",
    "gamma",
    "c_sat",
    "expo",
    "local_power",
    "half_saturation",
)


def _blank_parameters(n: int) -> dict[str, np.ndarray]:
    """Parameters for n neurons with neutral values; each kind's sampler fills in what it uses."""
    params = {name: np.zeros((n, MAX_SUBUNITS) if name in VECTOR_PARAMETERS else n) for name in PARAMETERS}
    for name in _NEUTRAL_ONES:
        params[name][:] = 1.0
    params["drive_hi"][:] = 1.0
    params["peak"][:] = 2.0
    return params


def _sample_common(rng: np.random.Generator, p: dict[str, np.ndarray], i: int, kind: str) -> None:
    p["rf_x"][i], p["rf_y"][i] = 0.5 + np.clip(rng.normal(0.0, 0.07, 2), -0.15, 0.15)
    p["rf_sigma"][i] = rng.uniform(0.1, 0.2) if kind == "texture" else rng.uniform(0.08, 0.16)
    p["surround_ratio"][i] = rng.uniform(1.8, 3.0)
    p["surround_k"][i] = rng.uniform(0.1, 0.8)
    p["gamma"][i] = rng.uniform(1.0, 2.0)
    p["c_sat"][i] = rng.uniform(0.5, 1.5)
    p["baseline"][i] = rng.uniform(1.0, 8.0)
    p["peak"][i] = rng.uniform(20.0, 60.0)


def _sample_curvature(rng: np.random.Generator, p: dict[str, np.ndarray], i: int) -> None:
    scale = int(rng.integers(1, 3))  # 6 or 12 cycles per image
    n_sub = int(rng.integers(2, 4 if scale == 1 else 5))
    spacing = rng.uniform(0.6, 0.9) / GABOR_FREQUENCIES[scale]
    turn = rng.uniform(0.3, 2.6) / max(n_sub - 1, 1)  # turning angle between neighbouring subunits
    curvature = turn / spacing
    heading = rng.uniform(0.0, 2 * np.pi)
    t = (np.arange(n_sub) - (n_sub - 1) / 2) * spacing
    along, across = np.sin(curvature * t) / curvature, (1 - np.cos(curvature * t)) / curvature
    across -= across.mean()
    p["sub_dx"][i, :n_sub] = along * np.cos(heading) - across * np.sin(heading)
    p["sub_dy"][i, :n_sub] = along * np.sin(heading) + across * np.cos(heading)
    p["sub_ori"][i, :n_sub] = np.mod(heading + curvature * t, np.pi)
    p["scale"][i], p["n_sub"][i] = scale, n_sub
    p["sub_sigma"][i] = 0.4 * spacing
    p["xori_k"][i] = rng.uniform(0.0, 0.5)
    p["expo"][i] = rng.uniform(1.5, 2.5)


def _sample_texture(rng: np.random.Generator, p: dict[str, np.ndarray], i: int) -> None:
    scale = int(rng.integers(0, 3))
    ori1 = rng.uniform(0.0, np.pi)
    pair = rng.choice(3, p=[0.35, 0.35, 0.3])  # two scales, two orientations, one channel
    scale2, ori2, xori = scale, ori1, rng.uniform(0.0, 0.6)
    if pair == 0:
        scale2 = scale + 1 if scale == 0 else scale - 1 if scale == 2 else scale + rng.choice([-1, 1])
    elif pair == 1:
        ori2 = ori1 + rng.choice([-1.0, 1.0]) * rng.choice([np.pi / 4, np.pi / 2])
        xori = 0.0
    p["scale"][i], p["scale2"][i] = scale, scale2
    p["ori1"][i], p["ori2"][i] = ori1, np.mod(ori2, np.pi)
    p["xori_k"][i] = xori
    p["local_sigma"][i] = rng.uniform(0.6, 1.2) / GABOR_FREQUENCIES[min(scale, scale2)]
    p["expo"][i] = rng.uniform(1.0, 2.0)


def _sample_colour(rng: np.random.Generator, p: dict[str, np.ndarray], i: int) -> None:
    p["hue"][i] = rng.uniform(0.0, 2 * np.pi)
    p["hue_threshold"][i] = rng.uniform(0.0, 0.04)
    p["colour_edge"][i] = rng.uniform(0.0, 1.0)
    p["lum_mod"][i] = rng.uniform(-1.0, 1.0)
    p["local_power"][i] = rng.uniform(1.0, 2.0)


def _sample_dot(rng: np.random.Generator, p: dict[str, np.ndarray], i: int) -> None:
    p["scale"][i] = rng.integers(0, len(DOG_SIGMAS))
    p["polarity"][i] = rng.choice([1, -1, 0], p=[0.4, 0.2, 0.4])
    p["local_power"][i] = rng.uniform(2.0, 3.0)
    p["edge_k"][i] = rng.uniform(2.0, 4.0)
    p["clutter_k"][i] = rng.uniform(2.0, 6.0)
    p["half_saturation"][i] = rng.uniform(0.04, 0.12)
    p["expo"][i] = rng.uniform(1.2, 1.8)


_SAMPLERS = {
    "curvature": _sample_curvature,
    "texture": _sample_texture,
    "colour": _sample_colour,
    "dot": _sample_dot,
}


def sample_population(
    rng: np.random.Generator,
    n_neurons: int,
    image_size: int,
    kind_fractions: Mapping[str, float] | None = None,
    calibration_images: np.ndarray | None = None,
) -> VirtualNeurons:
    """Sample ``n_neurons`` diverse V4-like neurons and calibrate their rate range.

    kind_fractions: share of each kind (default 0.3 curvature, 0.25 texture, 0.2 colour, 0.25 dot); every
    kind with a positive share is present when n_neurons allows. Calibration: on ``calibration_images``
    (default: a mixed set of 300 drawn from ``rng``) each neuron's rate sits at its baseline (1-8 spikes/s)
    below a random 5-30 % quantile of its drive and reaches its peak (20-60 spikes/s) at the 99 % quantile.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if not is_int(n_neurons) or n_neurons < 1:
        raise ValueError(f"n_neurons must be a positive integer, got {n_neurons!r}")
    if not is_int(image_size) or image_size < stimuli.MIN_SIZE:
        raise ValueError(f"image_size must be an integer >= {stimuli.MIN_SIZE}, got {image_size!r}")
    fractions = _check_fractions(kind_fractions)
    if calibration_images is not None:
        check_images(calibration_images, int(image_size))
        if len(calibration_images) < MIN_CALIBRATION_IMAGES:
            raise ValueError(
                f"need at least {MIN_CALIBRATION_IMAGES} calibration images, got {len(calibration_images)}"
            )
    counts = _kind_counts(int(n_neurons), fractions)
    kinds = rng.permutation(np.concatenate([np.full(c, k) for k, c in counts.items()]).astype("<U16"))
    params = _blank_parameters(int(n_neurons))
    for i, kind in enumerate(kinds):
        _sample_common(rng, params, i, kind)
        _SAMPLERS[kind](rng, params, i)
    low_quantile = rng.uniform(0.05, 0.3, int(n_neurons))
    if calibration_images is None:
        calibration_images, _ = stimuli.make_image_set(rng, DEFAULT_CALIBRATION_COUNTS, int(image_size))
    drives = VirtualNeurons(int(image_size), kinds, params).drives(calibration_images)
    for i in range(int(n_neurons)):
        low, high = np.quantile(drives[i], [low_quantile[i], 0.99])
        if not high > low:
            raise ValueError(f"calibration images do not drive neuron {i} ({kinds[i]}): drive range is empty")
        params["drive_lo"][i], params["drive_hi"][i] = low, high
    return VirtualNeurons(int(image_size), kinds, params)
