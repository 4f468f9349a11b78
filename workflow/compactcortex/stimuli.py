"""Stimuli of the virtual V4 lab: images with natural statistics and artificial shapes, all made offline.

Every image set is ``uint8`` shaped ``(n, size, size, 3)`` (RGB, channels last) and works for any
``size >= 32``. Sizes of things (crop scale, dot radius, bar length, spatial frequency) are defined as
fractions of the image, so a set means the same at 64 and at 112 pixels. Every random choice comes from
the ``numpy.random.Generator`` passed in: the same generator state gives the same images.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

MIN_SIZE = 32
GREY = 128
IMAGE_TYPES = ("natural", "dead_leaves", "texture", "gaudy", "dots", "shapes")
DOT_PARAMETERS = ("n_dots", "dot_radius", "spacing", "contrast")

# scikit-image's bundled photographs that load without a network connection.
_COLOUR_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "colorwheel",
)
_GREY_PHOTOS = ("camera", "coins", "grass", "gravel", "brick", "moon", "clock")


# ----------------------------------------------------------------------------------------------- checks
def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise ValueError(f"image size must be an integer >= {MIN_SIZE}, got {size!r}")
    return int(size)


def _check_count(n: int, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    return int(n)


def _check_rng(rng: np.random.Generator) -> None:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x) in pixels, shaped (size, 1) and (1, size)."""
    axis = np.arange(size, dtype=np.float64)
    return axis[:, None], axis[None, :]


# ----------------------------------------------------------------------------------------------- natural
@functools.lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    """The bundled photographs as read-only uint8 RGB arrays (loaded once)."""
    from skimage import data

    photos = [getattr(data, name)() for name in _COLOUR_PHOTOS]
    left, right, _ = data.stereo_motorcycle()
    photos += [left, right]
    photos += [np.repeat(getattr(data, name)()[..., None], 3, axis=2) for name in _GREY_PHOTOS]
    out = []
    for photo in photos:
        photo = np.ascontiguousarray(photo[..., :3], dtype=np.uint8)
        photo.setflags(write=False)
        out.append(photo)
    return tuple(out)


def _resize(patch: np.ndarray, size: int) -> np.ndarray:
    """Anti-aliased resize of one (h, h, 3) uint8 patch to (size, size, 3) float: block averaging by an
    integer factor first (cheap, exact box filter), then anti-aliased bilinear interpolation."""
    factor = patch.shape[0] // (2 * size)
    if factor > 1:
        side = factor * (patch.shape[0] // factor)
        blocks = patch[:side, :side].reshape(side // factor, factor, side // factor, factor, 3)
        patch = blocks.mean(axis=(1, 3), dtype=np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(patch, dtype=np.float32)).permute(2, 0, 1)[None]
    antialias = patch.shape[0] > size
    out = F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)
    return out[0].permute(1, 2, 0).numpy()


def natural_crops(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Random square crops of the bundled photographs: side 1/8 to 1/2 of the photo's short side,
    random horizontal and vertical flips, resized with anti-aliasing to ``size``."""
    _check_rng(rng)
    n, size = _check_count(n), _check_size(size)
    photos = _photos()
    choice = rng.integers(0, len(photos), n)
    scale = rng.uniform(1.0 / 8.0, 1.0 / 2.0, n)
    corner = rng.random((n, 2))
    flips = rng.random((n, 2)) < 0.5
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for index in range(n):
        photo = photos[choice[index]]
        height, width = photo.shape[:2]
        side = max(8, int(round(scale[index] * min(height, width))))
        top = int(corner[index, 0] * (height - side + 1))
        left = int(corner[index, 1] * (width - side + 1))
        patch = photo[top : top + side, left : left + side]
        if flips[index, 0]:
            patch = patch[:, ::-1]
        if flips[index, 1]:
            patch = patch[::-1]
        out[index] = _to_uint8(_resize(patch, size))
    return out


# ----------------------------------------------------------------------------------------------- dead leaves
def dead_leaves(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """The dead-leaves model: opaque discs with radius density ~ r^-3 (scale invariant) and random colours,
    512 per image stacked front to back (they cover ~99 % of it; the rest shows one more leaf colour).
    Gives natural-like ~1/f amplitude spectra."""
    _check_rng(rng)
    n, size = _check_count(n), _check_size(size)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    chunk = 64
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        out[start:stop] = _dead_leaves_chunk(rng, stop - start, size)
    return out


def _dead_leaves_chunk(rng: np.random.Generator, n: int, size: int, n_discs: int = 512) -> np.ndarray:
    r_min = size * rng.uniform(0.02, 0.035, (n, 1))
    r_max = size * rng.uniform(0.25, 0.6, (n, 1))
    u = rng.random((n, n_discs))
    radius = ((r_min**-2 - u * (r_min**-2 - r_max**-2)) ** -0.5).ravel()  # inverse CDF of p(r) ~ r^-3
    centre_y = rng.uniform(-0.1 * size, 1.1 * size, n * n_discs)
    centre_x = rng.uniform(-0.1 * size, 1.1 * size, n * n_discs)
    colours = _leaf_colours(rng, n, n_discs + 1)  # the last colour is the background behind all leaves
    # Every (disc, pixel) pair inside the disc's bounding box; each pixel shows its first (frontmost) disc.
    y0 = np.clip(np.floor(centre_y - radius), 0, size).astype(np.int64)
    y1 = np.clip(np.ceil(centre_y + radius), 0, size).astype(np.int64)
    x0 = np.clip(np.floor(centre_x - radius), 0, size).astype(np.int64)
    x1 = np.clip(np.ceil(centre_x + radius), 0, size).astype(np.int64)
    width = x1 - x0
    count = (y1 - y0) * width
    disc = np.repeat(np.arange(n * n_discs, dtype=np.int32), count)
    # Position of each pair inside its box, in float32 (exact for these small integers) for speed.
    offset = np.arange(disc.size, dtype=np.float32) - np.repeat((np.cumsum(count) - count).astype(np.float32), count)
    box_width = np.maximum(width, 1).astype(np.float32)[disc]
    row = np.floor((offset + np.float32(0.5)) / box_width)
    col = offset - row * box_width
    row += y0.astype(np.float32)[disc]
    col += x0.astype(np.float32)[disc]
    dy = row + np.float32(0.5) - centre_y.astype(np.float32)[disc]
    dx = col + np.float32(0.5) - centre_x.astype(np.float32)[disc]
    inside = dy * dy + dx * dx < (radius.astype(np.float32) ** 2)[disc]
    disc, row, col = disc[inside], row[inside].astype(np.int64), col[inside].astype(np.int64)
    image, leaf = np.divmod(disc, n_discs)
    label = np.full(n * size * size, n_discs, dtype=np.int64)
    np.minimum.at(label, (image * size + row) * size + col, leaf)
    images = np.take_along_axis(colours, label.reshape(n, size * size)[..., None], axis=1)
    return _to_uint8(images.reshape(n, size, size, 3))


def _leaf_colours(rng: np.random.Generator, n: int, count: int) -> np.ndarray:
    """Leaf colours: a random luminance times a random, mostly desaturated, tint (0..255 floats)."""
    luminance = rng.uniform(0.05, 1.0, (n, count, 1))
    tint = 1.0 + rng.uniform(0.0, 0.6, (n, 1, 1)) * rng.normal(0.0, 0.5, (n, count, 3))
    return np.clip(255.0 * luminance * tint, 0.0, 255.0)


# ----------------------------------------------------------------------------------------------- textures
def _frequency_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """FFT frequencies in cycles per image, (size, 1) and (1, size)."""
    freq = np.fft.fftfreq(size, d=1.0 / size)
    return freq[:, None], freq[None, :]


def textures(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Procedural textures: oriented band-pass filtered noise (random orientation, orientation bandwidth,
    spatial frequency and colours), sinusoidal or square-wave gratings, and plaids of two gratings."""
    _check_rng(rng)
    n, size = _check_count(n), _check_size(size)
    kind = rng.choice(3, size=n, p=[0.5, 0.25, 0.25])
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for code, maker in enumerate((_bandpass_noise, _gratings, _plaids)):
        where = np.flatnonzero(kind == code)
        if where.size:
            out[where] = maker(rng, where.size, size)
    return out


def _random_colour_axes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Directions in RGB: luminance plus a random chromatic part, scaled so max |component| == 1."""
    saturation = rng.uniform(0.0, 1.0, (n, 1)) ** 2
    axes = (1.0 - saturation) * np.ones((n, 3)) + saturation * rng.normal(0.0, 1.0, (n, 3))
    return axes / np.maximum(np.abs(axes).max(axis=1, keepdims=True), 1e-6)


def _compose(rng: np.random.Generator, patterns: np.ndarray, contrast: np.ndarray) -> np.ndarray:
    """(n, k, h, w) zero-mean patterns in [-1, 1] -> RGB on a near-grey mean, one colour per pattern."""
    n, k = patterns.shape[:2]
    mean = 127.5 + rng.normal(0.0, 12.0, (n, 1, 1, 3))
    axes = _random_colour_axes(rng, n * k).reshape(n, k, 3)
    signal = np.einsum("nkhw,nkc->nhwc", patterns, axes)
    return _to_uint8(mean + 127.5 * contrast[:, None, None, None] * signal)


def _bandpass_noise(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    n_layers = 2
    fy, fx = _frequency_grid(size)
    radius = np.hypot(fy, fx)
    radius[0, 0] = 1.0
    angle = np.arctan2(fy, fx)
    f0 = np.exp(rng.uniform(np.log(2.0), np.log(size / 5.0), (n, n_layers, 1, 1)))
    log_width = rng.uniform(0.2, 0.5, (n, n_layers, 1, 1))
    theta = rng.uniform(0.0, np.pi, (n, n_layers, 1, 1))
    angular_width = rng.uniform(0.12, 1.2, (n, n_layers, 1, 1))
    delta = np.angle(np.exp(2j * (angle - theta))) / 2.0  # orientation difference, both lobes
    gain = np.exp(-(np.log(radius / f0) ** 2) / (2 * log_width**2)) * np.exp(-(delta**2) / (2 * angular_width**2))
    gain[..., 0, 0] = 0.0
    noise = rng.normal(0.0, 1.0, (n, n_layers, size, size))
    patterns = np.fft.ifft2(np.fft.fft2(noise) * gain).real
    patterns /= np.maximum(patterns.std(axis=(2, 3), keepdims=True), 1e-9) * 3.0
    patterns = np.clip(patterns, -1.0, 1.0)
    patterns[:, 1] *= (rng.random(n) < 0.5)[:, None, None]  # half are single-layer
    return _compose(rng, patterns, rng.uniform(0.3, 1.0, n))


def _grating(size: int, frequency: np.ndarray, theta: np.ndarray, phase: np.ndarray, square: np.ndarray) -> np.ndarray:
    """(n, size, size) gratings; frequency in cycles per image, theta the direction of modulation."""
    y, x = _pixel_grid(size)
    y, x = (y + 0.5) / size, (x + 0.5) / size
    arg = (
        2 * np.pi * frequency[:, None, None] * (x * np.cos(theta)[:, None, None] + y * np.sin(theta)[:, None, None])
        + phase[:, None, None]
    )
    wave = np.sin(arg)
    return np.where(square[:, None, None], np.sign(wave), wave)


def _grating_parameters(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, ...]:
    frequency = np.exp(rng.uniform(np.log(1.5), np.log(size / 5.0), n))
    return frequency, rng.uniform(0.0, np.pi, n), rng.uniform(0.0, 2 * np.pi, n), rng.random(n) < 0.3


def _gratings(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    pattern = _grating(size, *_grating_parameters(rng, n, size))
    return _compose(rng, pattern[:, None], rng.uniform(0.2, 1.0, n))


def _plaids(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    frequency, theta, phase, square = _grating_parameters(rng, n, size)
    first = _grating(size, frequency, theta, phase, square)
    ratio = np.where(rng.random(n) < 0.5, 1.0, np.exp(rng.uniform(-0.7, 0.7, n)))
    turn = rng.uniform(np.pi / 6, np.pi / 2, n) * rng.choice([-1.0, 1.0], n)
    second = _grating(size, frequency * ratio, theta + turn, rng.uniform(0.0, 2 * np.pi, n), square)
    patterns = 0.5 * np.stack([first, second], axis=1)
    return _compose(rng, patterns, rng.uniform(0.3, 1.0, n))


# ----------------------------------------------------------------------------------------------- gaudy
def gaudy(images: np.ndarray) -> np.ndarray:
    """The paper's gaudy images: each image's channels set to 255 above that channel's median, else 0."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be shaped (n, height, width, 3), got {images.shape}")
    median = np.median(images.reshape(images.shape[0], -1, 3), axis=1)
    return np.where(images > median[:, None, None, :], 255, 0).astype(np.uint8)


# ----------------------------------------------------------------------------------------------- dots
def _render_dots(size: int, centres: list[np.ndarray], radius: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Anti-aliased discs (one radius and colour per image) on the grey background."""
    y, x = _pixel_grid(size)
    out = np.empty((len(centres), size, size, 3), dtype=np.uint8)
    for index, points in enumerate(centres):
        alpha = np.zeros((size, size))
        for cy, cx in points:
            distance = np.hypot(y - cy, x - cx)
            alpha = np.maximum(alpha, np.clip(radius[index] + 0.5 - distance, 0.0, 1.0))
        out[index] = _to_uint8(GREY + alpha[..., None] * (colour[index] - GREY))
    return out


def _dot_colours(rng: np.random.Generator, contrast: np.ndarray) -> np.ndarray:
    """Dot colours: achromatic of either polarity (60 %) or a random hue, at the given contrast."""
    n = contrast.size
    direction = rng.normal(0.0, 1.0, (n, 3))
    achromatic = rng.random(n) < 0.6
    direction[achromatic] = rng.choice([-1.0, 1.0], (int(achromatic.sum()), 1))
    direction /= np.abs(direction).max(axis=1, keepdims=True)
    return GREY + contrast[:, None] * 127.0 * direction


def _mean_nearest_distance(points: np.ndarray) -> float:
    if len(points) < 2:
        return 0.0
    distance = np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(distance, np.inf)
    return float(distance.min(axis=1).mean())


def _place_dots(rng: np.random.Generator, n_dots: int, radius: float, spread: float, size: int) -> np.ndarray | None:
    """Dot centres (pixels) from a Gaussian cluster, no two closer than 2 radii plus a gap of >= 3 px."""
    margin = radius + 1.0
    min_distance = 2 * radius + max(3.0, 0.04 * size)
    centre = size / 2 + np.clip(rng.normal(0.0, 0.06 * size, 2), -0.15 * size, 0.15 * size)
    points: list[np.ndarray] = []
    for _ in range(n_dots):
        candidates = np.concatenate(
            [centre + rng.normal(0.0, spread, (64, 2)), rng.uniform(margin, size - 1 - margin, (64, 2))]
        )
        inside = np.all((candidates >= margin) & (candidates <= size - 1 - margin), axis=1)
        if points:
            gaps = np.hypot(*(candidates[:, None, :] - np.array(points)[None]).transpose(2, 0, 1))
            inside &= gaps.min(axis=1) >= min_distance
        good = np.flatnonzero(inside)
        if good.size == 0:
            return None
        points.append(candidates[good[0]])
    return np.array(points)


def dot_images(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Artificial dot stimuli on a grey background: 1-12 equal, well-separated dots per image.

    Returns the images and per-image parameters: ``n_dots``; ``dot_radius`` (pixels); ``spacing``, the
    mean nearest-neighbour centre distance (pixels, 0 for a single dot); ``contrast`` (0-1, the fraction of
    the largest possible deviation from grey). The cluster spread, radius and colour vary at random.
    """
    _check_rng(rng)
    n, size = _check_count(n), _check_size(size)
    n_dots = rng.integers(1, 13, n)
    contrast = rng.uniform(0.15, 1.0, n)
    colour = _dot_colours(rng, contrast)
    radius = np.empty(n)
    spacing = np.empty(n)
    centres: list[np.ndarray] = []
    for index in range(n):
        while True:
            top = 0.07 / max(1.0, np.sqrt(n_dots[index] / 4.0))
            radius[index] = max(1.0, size * rng.uniform(0.02, top))
            spread = size * rng.uniform(0.05, 0.2)
            points = _place_dots(rng, int(n_dots[index]), radius[index], spread, size)
            if points is not None:
                break
        centres.append(points)
        spacing[index] = _mean_nearest_distance(points)
    params = {
        "n_dots": n_dots.astype(np.int64),
        "dot_radius": radius,
        "spacing": spacing,
        "contrast": contrast,
    }
    return _render_dots(size, centres, radius, colour), params


def _lattice_cluster(n_dots: int, spacing: float) -> np.ndarray:
    """The n points of a triangular lattice (side ``spacing``) nearest its centre, centred on (0, 0):
    a compact, deterministic cluster in which every dot's nearest neighbour is exactly ``spacing`` away."""
    i, j = np.meshgrid(np.arange(-6, 7), np.arange(-6, 7))
    points = np.stack([j.ravel() * np.sqrt(3) / 2, i.ravel() + j.ravel() / 2], axis=1)
    distance = np.hypot(points[:, 0] - 0.11, points[:, 1] - 0.23)  # off-centre origin: no ties
    chosen = points[np.argsort(distance, kind="stable")[:n_dots]]
    return (chosen - chosen.mean(axis=0)) * spacing


# The dot battery's factors, each swept about a reference dot pattern: factor -> its parameter column
DOT_FACTORS = {"number": "n_dots", "radius": "dot_radius", "spacing": "spacing", "contrast": "contrast"}


def dot_battery(size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A systematic, deterministic set of dot stimuli: one factor at a time around a reference
    (4 white dots, radius 0.04 and centre spacing 0.16 of the image, full contrast), centred in the image,
    the dots on a triangular lattice (every nearest-neighbour distance equals the spacing).

    Factors: number (1-12), radius, spacing, contrast (white dots, then black dots) and colour. Returns
    the images and the parameters of :func:`dot_images` plus ``factor``, the factor varied
    ("reference", "number", "radius", "spacing", "contrast", "polarity" or "colour").
    """
    size = _check_size(size)
    reference = {"n_dots": 4, "dot_radius": 0.04, "spacing": 0.16, "contrast": 1.0}
    white = np.array([1.0, 1.0, 1.0])
    rows: list[tuple[str, dict[str, float], np.ndarray]] = [("reference", reference, white)]
    rows += [("number", {**reference, "n_dots": k}, white) for k in range(1, 13) if k != 4]
    rows += [("radius", {**reference, "dot_radius": r}, white) for r in (0.015, 0.025, 0.05, 0.06)]
    rows += [("spacing", {**reference, "spacing": s}, white) for s in (0.12, 0.14, 0.2, 0.25, 0.3)]
    rows += [("contrast", {**reference, "contrast": c}, white) for c in (0.1, 0.2, 0.35, 0.5, 0.75)]
    rows += [("polarity", {**reference, "contrast": c}, -white) for c in (0.1, 0.2, 0.35, 0.5, 0.75, 1.0)]
    hues = ((1, -1, -1), (-1, 1, -1), (-1, -1, 1), (1, 1, -1), (-1, 1, 1), (1, -1, 1))
    rows += [("colour", reference, np.array(hue, dtype=float)) for hue in hues]
    centres, radius, colour, spacing = [], [], [], []
    for _, values, direction in rows:
        points = size / 2 - 0.5 + _lattice_cluster(values["n_dots"], values["spacing"] * size)
        centres.append(points)
        radius.append(values["dot_radius"] * size)
        colour.append(GREY + values["contrast"] * 127.0 * direction)
        spacing.append(_mean_nearest_distance(points))
    params = {
        "n_dots": np.array([values["n_dots"] for _, values, _ in rows], dtype=np.int64),
        "dot_radius": np.array(radius),
        "spacing": np.array(spacing),
        "contrast": np.array([values["contrast"] for _, values, _ in rows]),
        "factor": np.array([factor for factor, _, _ in rows]),
    }
    return _render_dots(size, centres, np.array(radius), np.array(colour)), params


# ----------------------------------------------------------------------------------------------- shapes
def _segment_distance(y: np.ndarray, x: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    direction = end - start
    length2 = max(float(direction @ direction), 1e-9)
    t = np.clip(((y - start[0]) * direction[0] + (x - start[1]) * direction[1]) / length2, 0.0, 1.0)
    return np.hypot(y - start[0] - t * direction[0], x - start[1] - t * direction[1])


def _arc_distance(
    y: np.ndarray, x: np.ndarray, centre: np.ndarray, radius: float, middle: float, half_angle: float
) -> np.ndarray:
    """Distance to the arc of a circle (centre, radius) spanning middle +- half_angle (radians)."""
    dy, dx = y - centre[0], x - centre[1]
    offset = np.angle(np.exp(1j * (np.arctan2(dy, dx) - middle)))
    on_arc = np.abs(offset) <= half_angle
    ends = [
        centre + radius * np.array([np.sin(middle + s * half_angle), np.cos(middle + s * half_angle)])
        for s in (-1.0, 1.0)
    ]
    to_ends = np.minimum(*(np.hypot(y - e[0], x - e[1]) for e in ends))
    return np.where(on_arc, np.abs(np.hypot(dy, dx) - radius), to_ends)


def _shape_distance(rng: np.random.Generator, size: int) -> np.ndarray:
    """Distance map (pixels) to one random bar, arc or angle near the image centre."""
    y, x = _pixel_grid(size)
    centre = size / 2 - 0.5 + rng.normal(0.0, 0.08 * size, 2)
    length = size * rng.uniform(0.15, 0.45)
    theta = rng.uniform(0.0, 2 * np.pi)
    kind = rng.integers(0, 3)
    if kind == 0:  # bar
        half = 0.5 * length * np.array([np.sin(theta), np.cos(theta)])
        return _segment_distance(y, x, centre - half, centre + half)
    if kind == 1:  # arc: curvature from gentle to a near-closed curve
        turn = rng.uniform(0.4, 1.6) * np.pi
        radius = length / turn
        circle = centre - radius * np.array([np.sin(theta), np.cos(theta)])
        return _arc_distance(y, x, circle, radius, theta, turn / 2)
    opening = rng.uniform(np.pi / 6, 5 * np.pi / 6)  # angle: two arms meeting at a vertex
    arms = [centre + 0.5 * length * np.array([np.sin(a), np.cos(a)]) for a in (theta, theta + opening)]
    return np.minimum(_segment_distance(y, x, centre, arms[0]), _segment_distance(y, x, centre, arms[1]))


def bars_and_curves(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Artificial shapes on grey: oriented bars, arcs of varying curvature, and angles, in random colours."""
    _check_rng(rng)
    n, size = _check_count(n), _check_size(size)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    colour = _dot_colours(rng, rng.uniform(0.3, 1.0, n))
    width = np.maximum(1.0, size * rng.uniform(0.02, 0.06, n))
    for index in range(n):
        distance = _shape_distance(rng, size)
        alpha = np.clip(width[index] / 2 + 0.5 - distance, 0.0, 1.0)
        out[index] = _to_uint8(GREY + alpha[..., None] * (colour[index] - GREY))
    return out


# ----------------------------------------------------------------------------------------------- sets
def _gaudy_crops(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    return gaudy(natural_crops(rng, n, size))


def _dots_only(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    return dot_images(rng, n, size)[0]


MAKERS = {  # image type -> its generator (rng, n, size) -> uint8 (n, size, size, 3)
    "natural": natural_crops,
    "dead_leaves": dead_leaves,
    "texture": textures,
    "gaudy": _gaudy_crops,
    "dots": _dots_only,
    "shapes": bars_and_curves,
}


def make_image_set(rng: np.random.Generator, counts: Mapping[str, int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """One session's image set: ``counts`` images of each type (keys among IMAGE_TYPES), shuffled together.

    Types are generated in the fixed order of IMAGE_TYPES whatever the order of ``counts``, so the result
    depends only on the generator state, the counts and the size. Returns (images, image_type).
    """
    _check_rng(rng)
    size = _check_size(size)
    unknown = sorted(set(counts) - set(IMAGE_TYPES))
    if unknown:
        raise ValueError(f"unknown image type(s) {unknown}; valid types are {list(IMAGE_TYPES)}")
    parts, labels = [], []
    for name in IMAGE_TYPES:
        count = _check_count(counts.get(name, 0), f"count of {name!r}")
        if count:
            parts.append(MAKERS[name](rng, count, size))
            labels.append(np.full(count, name))
    if not parts:
        return np.empty((0, size, size, 3), dtype=np.uint8), np.empty(0, dtype="<U11")
    order = rng.permutation(sum(len(part) for part in parts))
    images = np.concatenate(parts)[order]
    image_type = np.concatenate(labels).astype("<U11")[order]
    return images, image_type


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """A square uint8 (s, s, 3) image at ``size`` px (bilinear, as PIL does it); unchanged when already that size."""
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
