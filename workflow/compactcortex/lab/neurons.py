"""Ground-truth V4-like neurons of the virtual lab.

A fixed V1-like front end (colour opponency, a quadrature Gabor bank with divisive normalisation,
centre-surround channels) feeds hand-built V4 computations of four kinds: ``curvature`` (conjunctions of
orientations along an arc), ``texture`` (pooled products of oriented energy across an orientation or
scale pair), ``colour`` (rectified hue signal, modulated by luminance contrast) and ``dot`` (pooled,
expansive centre-surround responses suppressed by oriented edges). None of it is a convolutional network,
so recovering these neurons with the pipeline's compact CNNs is not circular.

Everything spatial is defined in fractions of the image (frequencies in cycles per image), so a neuron
means the same at 64 and at 112 pixels. The front end works on a fixed sampling grid of ~32 x 32 points
per image (band-limited filtering done in the Fourier domain, with demodulated Gabor outputs), which
keeps the cost nearly independent of the image size.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from compactcortex import stimuli
from compactcortex.errors import InputDataError

FORMAT_VERSION = 1
KINDS = ("curvature", "texture", "colour", "dot")
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

# Front end, in image fractions / cycles per image.
GABOR_FREQUENCIES = (3.0, 6.0, 12.0)  # luminance Gabor centre frequencies, coarse to fine
N_ORIENTATIONS = 8
LOG_BANDWIDTH = 0.45  # radial sd of the log-Gabor, in natural-log units (~1.5 octaves FWHM)
ANGULAR_BANDWIDTH = 0.35  # angular sd, radians (~20 degrees)
COLOUR_FREQUENCY = 3.0
N_COLOUR_ORIENTATIONS = 4
DOG_SIGMAS = (0.012, 0.019, 0.03)  # centre sd of the centre-surround channels (best disc radius 1.84x)
DOG_SURROUND = 1.8
DOG_GABOR_SCALE = (2, 1, 1)  # the Gabor scale whose orientation bias suppresses each dot scale
LOWPASS_SIGMA = 0.04
GRID = 40  # samples across the padded frame (1.25 image widths): 32 per image
PAD_FRACTION = 0.125
NORMALISATION_CONSTANT = 2e-3  # semi-saturation of the divisive normalisation (energy units)
MAX_SUBUNITS = 4

_FLOAT = torch.float32
_INT_PARAMETERS = ("scale", "scale2", "n_sub", "polarity")
_VECTOR_PARAMETERS = ("sub_dx", "sub_dy", "sub_ori")
_PARAMETERS = (
    "rf_x", "rf_y", "rf_sigma", "surround_ratio", "surround_k",
    "scale", "scale2", "n_sub", "sub_dx", "sub_dy", "sub_ori", "sub_sigma", "xori_k",
    "ori1", "ori2", "local_sigma",
    "hue", "hue_threshold", "colour_edge", "lum_mod",
    "polarity", "edge_k", "clutter_k", "half_saturation", "local_power", "expo",
    "gamma", "c_sat", "baseline", "peak", "drive_lo", "drive_hi",
)  # fmt: skip


# =============================================================================================== front end
@dataclass(frozen=True)
class Features:
    """Front-end maps for a batch, on the coarse grid (g x g points in the image) unless said otherwise."""

    energy: torch.Tensor  # (B, scales, orientations, g, g) complex-cell energy of quadrature pairs
    normalised: torch.Tensor  # energy divided by the local orientation pool
    colour_z: torch.Tensor  # (B, 2, colour orientations, g, g) complex Gabor outputs of RG and BY
    colour: torch.Tensor  # (B, 2, g, g) low-passed RG and BY
    contrast: torch.Tensor  # (B, g, g) mean normalised energy: ~1 where textured, ~0 where blank
    dog: torch.Tensor  # (B, dog scales, g2, g2) luminance centre-surround, on the fine grid


@dataclass(frozen=True)
class _Channel:
    """One band-limited filter: which colour plane, its centre frequency (cycles per image) and gain."""

    source: int  # 0 luminance, 1 red-green, 2 blue-yellow
    centre: tuple[float, float]  # (fy, fx) demodulation frequency; (0, 0) for real, low-pass/band-pass ones
    gain: Callable[[np.ndarray, np.ndarray], np.ndarray]  # gain at (fy, fx) in cycles per image


def _log_gabor(frequency: float, theta: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """One-sided (quadrature) log-Gabor preferring bars at orientation theta; x2 so that a grating of
    amplitude a gives |z| = a."""

    def gain(fy: np.ndarray, fx: np.ndarray) -> np.ndarray:
        radius = np.hypot(fy, fx)
        radial = np.exp(-(np.log(np.maximum(radius, 1e-9) / frequency) ** 2) / (2 * LOG_BANDWIDTH**2))
        delta = np.angle(np.exp(1j * (np.arctan2(fy, fx) - theta - np.pi / 2)))
        return 2.0 * radial * (radius > 0) * np.exp(-(delta**2) / (2 * ANGULAR_BANDWIDTH**2))

    return gain


def _gaussian_gain(sigma: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return lambda fy, fx: np.exp(-2 * np.pi**2 * sigma**2 * (fy**2 + fx**2))


def _dog_gain(sigma: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Difference of Gaussians (centre sigma, surround DOG_SURROUND x sigma), peak gain 1."""
    centre, surround = _gaussian_gain(sigma), _gaussian_gain(DOG_SURROUND * sigma)
    best = np.sqrt(np.log(DOG_SURROUND**2) / (2 * np.pi**2 * sigma**2 * (DOG_SURROUND**2 - 1)))
    peak = float(centre(np.array(best), np.array(0.0)) - surround(np.array(best), np.array(0.0)))
    return lambda fy, fx: (centre(fy, fx) - surround(fy, fx)) / peak


class _Bank:
    """Filters sampled on one grid of `grid` points across the padded frame.

    Each channel is computed from the image spectrum restricted to a grid x grid window of frequencies
    around its centre frequency (demodulation), so the output is the filter's response sampled on the
    coarse grid exactly (up to the window): cheap, and the same in cycles per image for any image size.
    The magnitude of a demodulated complex output equals that of the full-resolution output.
    """

    def __init__(self, size: int, pad: int, grid: int, channels: Sequence[_Channel]) -> None:
        padded = size + 2 * pad
        step = padded / grid
        pixel = np.arange(grid) * step - pad
        keep = np.flatnonzero((pixel >= 0) & (pixel <= size - 1))
        self.keep = slice(int(keep[0]), int(keep[-1]) + 1)
        self.positions = (pixel[self.keep] + 0.5) / size  # image fractions of the kept grid points
        self.spacing = step / size
        offsets = np.fft.fftfreq(grid, d=1.0 / grid).astype(np.int64)
        frequencies = np.fft.fftfreq(padded, d=1.0 / padded) * size / padded  # cycles per image of each bin
        indices, gains = [], []
        for channel in channels:
            centre_y, centre_x = (int(round(f * padded / size)) for f in channel.centre)
            bins_y = ((centre_y + offsets) % padded)[:, None]
            bins_x = ((centre_x + offsets) % padded)[None, :]
            indices.append(channel.source * padded * padded + bins_y * padded + bins_x)
            gains.append(channel.gain(frequencies[bins_y], frequencies[bins_x]) * (grid / padded) ** 2)
        self.index = torch.from_numpy(np.stack(indices).reshape(-1))
        self.gain = torch.from_numpy(np.stack(gains).astype(np.float32))

    def __call__(self, spectrum: torch.Tensor) -> torch.Tensor:
        """(B, 3 * P * P) image spectra -> (B, channels, g, g) complex outputs on the kept grid."""
        gathered = torch.index_select(spectrum, 1, self.index).reshape(len(spectrum), *self.gain.shape)
        return torch.fft.ifft2(gathered * self.gain)[..., self.keep, self.keep]


class FrontEnd:
    """The V1-like stage for one image size; all filters are precomputed."""

    def __init__(self, image_size: int) -> None:
        self.size = int(image_size)
        self.pad = int(round(PAD_FRACTION * self.size))
        coarse = [
            _gabor_channel(0, f, o * np.pi / N_ORIENTATIONS) for f in GABOR_FREQUENCIES for o in range(N_ORIENTATIONS)
        ]
        coarse += [
            _gabor_channel(source, COLOUR_FREQUENCY, o * np.pi / N_COLOUR_ORIENTATIONS)
            for source in (1, 2)
            for o in range(N_COLOUR_ORIENTATIONS)
        ]
        coarse += [_Channel(source, (0.0, 0.0), _gaussian_gain(LOWPASS_SIGMA)) for source in (1, 2)]
        fine = [_Channel(0, (0.0, 0.0), _dog_gain(sigma)) for sigma in DOG_SIGMAS]
        self.coarse = _Bank(self.size, self.pad, GRID, coarse)
        self.fine = _Bank(self.size, self.pad, 2 * GRID, fine)
        self.positions = self.coarse.positions
        self.spacing = self.coarse.spacing
        self.pool_blur = [self.blur_matrix(0.6 / f) for f in GABOR_FREQUENCIES]
        # From the fine grid to the coarse one: a local Gaussian average (rows sum to 1).
        distance = self.positions[:, None] - self.fine.positions[None, :]
        weights = np.exp(-(distance**2) / (2 * (0.5 * self.spacing) ** 2))
        self.fine_to_coarse = torch.from_numpy((weights / weights.sum(axis=1, keepdims=True)).astype(np.float32))

    # ------------------------------------------------------------------ spatial helpers
    def blur_matrix(self, sigma: float, shift: float = 0.0) -> torch.Tensor:
        """(g, g) matrix M with (M @ v)[i] = Gaussian-weighted mean of v around positions[i] + shift
        (weights fall off at the image border, as with zero padding)."""
        u = self.positions
        weights = np.exp(-((u[None, :] - u[:, None] - shift) ** 2) / (2 * sigma**2))
        lattice = np.arange(-200, 201) * self.spacing
        total = np.exp(-(lattice**2) / (2 * sigma**2)).sum()
        return torch.from_numpy((weights / total).astype(np.float32))

    def gaussian_map(self, x: float, y: float, sigma: float) -> torch.Tensor:
        """A 2-D Gaussian weight map on the coarse grid, summing to 1."""
        u = self.positions
        weights = np.outer(np.exp(-((u - y) ** 2) / (2 * sigma**2)), np.exp(-((u - x) ** 2) / (2 * sigma**2)))
        return torch.from_numpy((weights / max(weights.sum(), 1e-12)).astype(np.float32))

    # ------------------------------------------------------------------ forward
    def __call__(self, images: np.ndarray) -> Features:
        x = torch.from_numpy(np.ascontiguousarray(images)).to(_FLOAT) / 255.0
        red, green, blue = x.unbind(-1)
        planes = torch.stack(
            [0.299 * red + 0.587 * green + 0.114 * blue, red - green, blue - 0.5 * (red + green)], dim=1
        )
        planes = torch.nn.functional.pad(planes, (self.pad,) * 4, mode="reflect")
        spectrum = torch.fft.fft2(planes).reshape(len(images), -1)
        out = self.coarse(spectrum)
        n_lum, n_col = len(GABOR_FREQUENCIES) * N_ORIENTATIONS, 2 * N_COLOUR_ORIENTATIONS
        z = out[:, :n_lum].unflatten(1, (len(GABOR_FREQUENCIES), N_ORIENTATIONS))
        energy = z.real**2 + z.imag**2
        normalised = torch.stack([self._normalise(energy[:, s], s) for s in range(len(GABOR_FREQUENCIES))], dim=1)
        colour_z = out[:, n_lum : n_lum + n_col].unflatten(1, (2, N_COLOUR_ORIENTATIONS))
        colour = out[:, n_lum + n_col :].real
        contrast = normalised.mean(dim=(1, 2))
        dog = self.fine(spectrum).real
        return Features(energy, normalised, colour_z, colour, contrast, dog)

    def _normalise(self, energy: torch.Tensor, scale: int) -> torch.Tensor:
        """Divisive normalisation: energy over the local (blurred) mean energy across orientations."""
        blur = self.pool_blur[scale]
        pool = blur @ energy.mean(dim=1, keepdim=True) @ blur.T
        return energy / (NORMALISATION_CONSTANT + pool)


def _gabor_channel(source: int, frequency: float, theta: float) -> _Channel:
    """A quadrature log-Gabor channel on one colour plane, demodulated at its centre frequency: the
    (fy, fx) of a grating whose bars have orientation theta (image axes: x right, y down)."""
    centre = (frequency * np.sin(theta + np.pi / 2), frequency * np.cos(theta + np.pi / 2))
    return _Channel(source, centre, _log_gabor(frequency, theta))


# =============================================================================================== V4 stage
def _orientation_weights(theta: float, n: int = N_ORIENTATIONS) -> np.ndarray:
    """Weights over the n orientation channels that interpolate a preferred orientation theta (radians)."""
    channels = np.arange(n) * np.pi / n
    weights = np.maximum(np.cos(2 * (theta - channels)), 0.0) ** 4
    return weights / weights.sum()


def _channel_weights(scale: int, theta: float) -> np.ndarray:
    """Weights over all (scale, orientation) luminance channels, flattened: one scale, orientation theta."""
    weights = np.zeros((len(GABOR_FREQUENCIES), N_ORIENTATIONS))
    weights[scale] = _orientation_weights(theta)
    return weights.ravel()


def _tensor(values: np.ndarray | Sequence[float], *shape: int) -> torch.Tensor:
    array = np.asarray(values, dtype=np.float32)
    return torch.from_numpy(array.reshape(shape) if shape else array)


def _pool(maps: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-neuron weighted spatial sum: (B, n, g, g) x (n, g, g) -> (B, n)."""
    return torch.einsum("bnhw,nhw->bn", maps, weights)


class _Group:
    """All neurons of one kind, computed together from the shared front-end features.

    Parameters arrive as arrays with one row per neuron of the group; the drive is non-negative.
    """

    def __init__(self, front: FrontEnd, kind: str, p: Mapping[str, np.ndarray]) -> None:
        self.kind = kind
        self.front = front
        n = len(p["rf_x"])
        self.rf = torch.stack([front.gaussian_map(p["rf_x"][i], p["rf_y"][i], p["rf_sigma"][i]) for i in range(n)])
        self.surround = torch.stack(
            [
                front.gaussian_map(p["rf_x"][i], p["rf_y"][i], p["rf_sigma"][i] * p["surround_ratio"][i])
                for i in range(n)
            ]
        )
        self.surround_k = _tensor(p["surround_k"])
        self.expo = _tensor(p["expo"])
        getattr(self, f"_prepare_{kind}")(front, p, n)

    def drive(self, f: Features) -> torch.Tensor:
        """(B, n) drives: the kind's computation, divided by surround suppression from local contrast."""
        core = getattr(self, f"_{self.kind}")(f)
        surround = torch.einsum("bhw,nhw->bn", f.contrast, self.surround)
        return core / (1.0 + self.surround_k * surround)

    # ------------------------------------------------------------------ curvature
    def _prepare_curvature(self, front: FrontEnd, p: Mapping[str, np.ndarray], n: int) -> None:
        preferred, orthogonal, blur_y, blur_x, cross, owner = [], [], [], [], [], []
        for i in range(n):
            for j in range(int(p["n_sub"][i])):
                theta = float(p["sub_ori"][i, j])
                preferred.append(_channel_weights(int(p["scale"][i]), theta))
                orthogonal.append(_channel_weights(int(p["scale"][i]), theta + np.pi / 2))
                blur_y.append(front.blur_matrix(p["sub_sigma"][i], float(p["sub_dy"][i, j])))
                blur_x.append(front.blur_matrix(p["sub_sigma"][i], float(p["sub_dx"][i, j])))
                cross.append(p["xori_k"][i])
                owner.append(i)
        self.mixing = _tensor(np.stack(preferred + orthogonal))
        self.blur_y = torch.stack(blur_y)
        self.blur_xt = torch.stack(blur_x).transpose(1, 2).contiguous()
        self.cross = _tensor(cross, -1, 1, 1)
        average = np.zeros((n, len(owner)))
        average[owner, np.arange(len(owner))] = 1.0 / p["n_sub"][owner]
        self.average = _tensor(average)  # (neuron, subunit): mean of the neuron's subunits

    def _curvature(self, f: Features) -> torch.Tensor:
        """Geometric mean of oriented subunits placed along an arc, at every grid position, raised to a
        power and pooled over the RF: the whole curve drives it, its parts alone barely do."""
        mixed = torch.einsum("bchw,jc->bjhw", f.normalised.flatten(1, 2), self.mixing)
        preferred, orthogonal = mixed.chunk(2, dim=1)
        subunits = self.blur_y @ (preferred / (1.0 + self.cross * orthogonal)) @ self.blur_xt
        conjunction = torch.exp(torch.einsum("bjhw,nj->bnhw", torch.log(subunits + 0.02), self.average))
        return _pool(conjunction ** self.expo[:, None, None], self.rf)

    # ------------------------------------------------------------------ texture
    def _prepare_texture(self, front: FrontEnd, p: Mapping[str, np.ndarray], n: int) -> None:
        first = [_channel_weights(int(p["scale"][i]), p["ori1"][i]) for i in range(n)]
        second = [_channel_weights(int(p["scale2"][i]), p["ori2"][i]) for i in range(n)]
        cross = [_channel_weights(int(p["scale"][i]), p["ori1"][i] + np.pi / 2) for i in range(n)]
        self.mixing = _tensor(np.stack(first + second + cross))
        self.local = torch.stack([front.blur_matrix(p["local_sigma"][i]) for i in range(n)])
        self.cross = _tensor(p["xori_k"], -1, 1, 1)

    def _texture(self, f: Features) -> torch.Tensor:
        """Pooled local co-activation (geometric mean) of two oriented-energy channels (an orientation or
        scale pair), with cross-orientation inhibition: a second-order texture statistic."""
        mixed = torch.einsum("bchw,jc->bjhw", f.normalised.flatten(1, 2), self.mixing)
        first, second, cross = (self.local @ part @ self.local.transpose(1, 2) for part in mixed.chunk(3, dim=1))
        product = torch.sqrt(first * second + 1e-6) / (1.0 + self.cross * cross)
        return _pool(product, self.rf) ** self.expo

    # ------------------------------------------------------------------ colour
    def _prepare_colour(self, front: FrontEnd, p: Mapping[str, np.ndarray], n: int) -> None:
        self.hue_axis = _tensor(np.stack([np.cos(p["hue"]), np.sin(p["hue"])], axis=1))
        self.threshold = _tensor(p["hue_threshold"], -1, 1, 1)
        self.edge_weight = _tensor(p["colour_edge"], -1, 1, 1)
        self.power = _tensor(p["local_power"], -1, 1, 1)
        self.lum_mod = _tensor(p["lum_mod"])

    def _colour(self, f: Features) -> torch.Tensor:
        """Rectified hue signal plus hue-specific colour-edge energy, pooled over the RF and multiplied by a
        luminance-contrast modulation (some prefer textured colour, some uniform colour patches)."""
        hue = torch.einsum("bchw,nc->bnhw", f.colour, self.hue_axis)
        real = torch.einsum("bcohw,nc->bnohw", f.colour_z.real, self.hue_axis)
        imag = torch.einsum("bcohw,nc->bnohw", f.colour_z.imag, self.hue_axis)
        edge = torch.sqrt((real**2 + imag**2).sum(dim=2) + 1e-8)
        local = torch.relu(hue - self.threshold) + self.edge_weight * edge
        contrast = torch.einsum("bhw,nhw->bn", f.contrast, self.rf)
        return _pool(local**self.power, self.rf) * torch.exp(self.lum_mod * (contrast - 0.5))

    # ------------------------------------------------------------------ dot
    def _prepare_dot(self, front: FrontEnd, p: Mapping[str, np.ndarray], n: int) -> None:
        self.scale = torch.from_numpy(p["scale"].astype(np.int64))
        polarity = p["polarity"]
        self.on = _tensor((polarity >= 0).astype(float), -1, 1, 1)
        self.off = _tensor((polarity <= 0).astype(float), -1, 1, 1)
        self.power = _tensor(p["local_power"], -1, 1, 1)
        self.edge_k = _tensor(p["edge_k"], -1, 1, 1)
        self.clutter_k = _tensor(p["clutter_k"])
        self.half_saturation = _tensor(p["half_saturation"] ** p["local_power"], -1, 1, 1)
        self.used_scales = sorted({int(s) for s in p["scale"]})
        self.local = {s: front.blur_matrix(max(2 * DOG_SIGMAS[s], front.spacing)) for s in self.used_scales}
        angles = np.arange(N_ORIENTATIONS) * np.pi / N_ORIENTATIONS
        self.double_angle = _tensor(np.stack([np.cos(2 * angles), np.sin(2 * angles)]))

    def _isotropy(self, f: Features) -> torch.Tensor:
        """(B, dot scales, g, g): 1 minus the orientation bias of the local energy (0 on a straight edge,
        ~1 on a dot or in isotropic texture), at the Gabor scale matched to each dot scale."""
        out = torch.zeros(f.contrast.shape[0], len(DOG_SIGMAS), *f.contrast.shape[1:], dtype=_FLOAT)
        for s, local in self.local.items():
            energy = local @ f.energy[:, DOG_GABOR_SCALE[s]] @ local.T
            bias = torch.linalg.vector_norm(torch.einsum("bohw,ko->bkhw", energy, self.double_angle), dim=1)
            out[:, s] = torch.clamp(1.0 - bias / (energy.sum(dim=1) + NORMALISATION_CONSTANT), min=0.0)
        return out

    def _dot(self, f: Features) -> torch.Tensor:
        """Rectified centre-surround response at the preferred dot scale, raised to a power on the fine grid
        (peaks, not extended edges), suppressed where local energy is oriented and divided by the RF's
        overall structure, pooled, then expanded: several isolated dots drive it more than one."""
        dog = f.dog[:, self.scale]
        local = (self.on * torch.relu(dog) + self.off * torch.relu(-dog)) ** self.power
        local = local / (local + self.half_saturation)  # contrast saturation: any visible dot counts
        down = self.front.fine_to_coarse
        local = torch.einsum("yk,bnkl,xl->bnyx", down, local, down)
        isotropy = self._isotropy(f)[:, self.scale]
        pooled = _pool(local * isotropy**self.edge_k, self.rf)
        clutter = torch.einsum("bhw,nhw->bn", f.contrast, self.rf)
        return (pooled / (1.0 + self.clutter_k * clutter)) ** self.expo


# =============================================================================================== population
def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_images(images: np.ndarray, image_size: int) -> np.ndarray:
    if not isinstance(images, np.ndarray):
        raise ValueError(f"images must be a numpy array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be shaped (n, size, size, 3), got {images.shape}")
    if images.shape[1] != image_size:
        raise ValueError(f"images are {images.shape[1]} px but these neurons were built for {image_size} px")
    return images


class VirtualNeurons:
    """A population of ground-truth V4-like neurons: parameters (numpy arrays, one row per neuron), their
    kinds and the image size they see. ``rates(images)`` gives noiseless rates in spikes/s."""

    def __init__(self, image_size: int, kind: Sequence[str] | np.ndarray, params: Mapping[str, np.ndarray]) -> None:
        if not _is_int(image_size) or image_size < stimuli.MIN_SIZE:
            raise ValueError(f"image_size must be an integer >= {stimuli.MIN_SIZE}, got {image_size!r}")
        self.image_size = int(image_size)
        self.kind = np.asarray(kind).astype(str)
        if self.kind.ndim != 1:
            raise ValueError("kind must be one-dimensional")
        bad = sorted(set(self.kind) - set(KINDS))
        if bad:
            raise ValueError(f"unknown neuron kind(s) {bad}; valid kinds are {list(KINDS)}")
        self.kind.setflags(write=False)
        self.params = _checked_parameters(params, len(self.kind))
        self._groups: list[tuple[np.ndarray, _Group]] | None = None
        self._front: FrontEnd | None = None

    def __len__(self) -> int:
        return len(self.kind)

    def __repr__(self) -> str:
        counts = {k: int((self.kind == k).sum()) for k in KINDS}
        return f"VirtualNeurons(n={len(self)}, image_size={self.image_size}, kinds={counts})"

    def __getattr__(self, name: str) -> np.ndarray:
        params = self.__dict__.get("params")
        if params is not None and name in params:
            return params[name]
        raise AttributeError(name)

    # ------------------------------------------------------------------ compute
    def _compiled(self) -> tuple[FrontEnd, list[tuple[np.ndarray, _Group]]]:
        """The front end and one computing group per kind present (built once, on first use)."""
        if self._front is None or self._groups is None:
            self._front = FrontEnd(self.image_size)
            self._groups = []
            for kind in KINDS:
                index = np.flatnonzero(self.kind == kind)
                if index.size:
                    params = {name: values[index] for name, values in self.params.items()}
                    self._groups.append((index, _Group(self._front, kind, params)))
        return self._front, self._groups

    def drives(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Raw, uncalibrated drives (neuron, image), before the output nonlinearity."""
        images = _check_images(images, self.image_size)
        if not _is_int(batch_size) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        front, groups = self._compiled()
        out = np.empty((len(self), len(images)), dtype=np.float64)
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                features = front(images[start : start + batch_size])
                for index, group in groups:
                    out[index, start : start + batch_size] = group.drive(features).double().numpy().T
        return out

    def rates(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Noiseless firing rates (spikes/s), float64 shaped (neuron, image), for uint8 images
        shaped (n, image_size, image_size, 3), computed batch_size images at a time.

        Deterministic: the same parameters and images give the same rates, bit for bit (also after
        save/load). The front end runs in float32, so splitting the images into other batches or the
        neurons into other subsets may change rates by ~1e-5 spikes/s.
        """
        return self._output(self.drives(images, batch_size))

    def _output(self, drive: np.ndarray) -> np.ndarray:
        """Calibrated output nonlinearity: baseline + (peak - baseline) * h(z), with z = 0 at drive_lo and
        1 at drive_hi, h(z) = z^gamma (1 + c) / (z^gamma + c): a power law that saturates softly at
        (1 + c) times the peak's rise above baseline."""
        p = self.params
        col = (slice(None), None)
        z = np.maximum((drive - p["drive_lo"][col]) / (p["drive_hi"] - p["drive_lo"])[col], 0.0)
        zg, c = z ** p["gamma"][col], p["c_sat"][col]
        return p["baseline"][col] + (p["peak"] - p["baseline"])[col] * zg * (1.0 + c) / (zg + c)

    # ------------------------------------------------------------------ population handling
    def subset(self, indices: Sequence[int] | np.ndarray) -> VirtualNeurons:
        """The neurons at ``indices`` (integer indices or a boolean mask), as a new population."""
        index = np.asarray(indices)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise ValueError(f"boolean mask must have length {len(self)}, got shape {index.shape}")
            index = np.flatnonzero(index)
        if index.ndim != 1 or (index.size and not np.issubdtype(index.dtype, np.integer)):
            raise ValueError("indices must be a 1-D array of integers or a boolean mask")
        if index.size and (index.min() < -len(self) or index.max() >= len(self)):
            raise ValueError(f"indices out of range for {len(self)} neurons")
        index = index.astype(np.int64)
        return VirtualNeurons(self.image_size, self.kind[index], {k: v[index] for k, v in self.params.items()})

    def save(self, path: str | Path) -> None:
        """Write the parameters (and a format version) to one .npz file at exactly ``path``."""
        arrays = {f"param_{name}": values for name, values in self.params.items()}
        with open(path, "wb") as handle:
            np.savez(
                handle,
                format_version=np.int64(FORMAT_VERSION),
                image_size=np.int64(self.image_size),
                kind=self.kind.astype("<U16"),
                **arrays,
            )

    @classmethod
    def load(cls, path: str | Path) -> VirtualNeurons:
        """Rebuild a population saved by :meth:`save`; its rates are identical, bit for bit."""
        unreadable = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)
        try:
            archive = np.load(path, allow_pickle=False)
        except unreadable as error:
            raise InputDataError(path, f"not a readable neuron parameter file ({error})") from error
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise InputDataError(path, "not a neuron parameter file (.npz archive expected)")
        with archive:
            try:
                contents = {name: archive[name] for name in archive.files}
            except unreadable as error:
                raise InputDataError(path, f"corrupt neuron parameter file ({error})") from error
        version = contents.get("format_version")
        if version is None or version.shape != () or int(version) != FORMAT_VERSION:
            raise InputDataError(path, f"neuron file format version {version} is not {FORMAT_VERSION}")
        missing = [n for n in ("image_size", "kind") if n not in contents]
        missing += [f"param_{n}" for n in _PARAMETERS if f"param_{n}" not in contents]
        if missing:
            raise InputDataError(path, f"neuron file lacks {missing}")
        try:
            return cls(
                int(contents["image_size"]),
                contents["kind"],
                {name: contents[f"param_{name}"] for name in _PARAMETERS},
            )
        except (ValueError, TypeError) as error:
            raise InputDataError(path, f"bad neuron parameters: {error}") from error


def _checked_parameters(params: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    missing = [name for name in _PARAMETERS if name not in params]
    if missing:
        raise ValueError(f"missing neuron parameters {missing}")
    extra = sorted(set(params) - set(_PARAMETERS))
    if extra:
        raise ValueError(f"unknown neuron parameters {extra}")
    out = {}
    for name in _PARAMETERS:
        values = np.asarray(params[name])
        shape = (n, MAX_SUBUNITS) if name in _VECTOR_PARAMETERS else (n,)
        if values.shape != shape:
            raise ValueError(f"parameter {name!r} has shape {values.shape}, expected {shape}")
        if not np.issubdtype(values.dtype, np.number):
            raise ValueError(f"parameter {name!r} is not numeric")
        values = values.astype(np.int64 if name in _INT_PARAMETERS else np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"parameter {name!r} has non-finite values")
        values.setflags(write=False)
        out[name] = values
    _check_ranges(out)
    return out


def _check_ranges(p: Mapping[str, np.ndarray]) -> None:
    checks = {
        "rf_sigma": p["rf_sigma"] > 0,
        "sub_sigma": p["sub_sigma"] > 0,
        "local_sigma": p["local_sigma"] > 0,
        "half_saturation": p["half_saturation"] > 0,
        "scale": (p["scale"] >= 0) & (p["scale"] < 3),
        "scale2": (p["scale2"] >= 0) & (p["scale2"] < 3),
        "n_sub": (p["n_sub"] >= 1) & (p["n_sub"] <= MAX_SUBUNITS),
        "polarity": np.isin(p["polarity"], (-1, 0, 1)),
        "drive_hi": p["drive_hi"] > p["drive_lo"],
        "peak": p["peak"] > p["baseline"],
        "baseline": p["baseline"] >= 0,
        "gamma": p["gamma"] > 0,
        "c_sat": p["c_sat"] > 0,
    }
    bad = [name for name, ok in checks.items() if not np.all(ok)]
    if bad:
        raise ValueError(f"neuron parameters out of range: {bad}")


# =============================================================================================== sampling
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
    params = {name: np.zeros((n, MAX_SUBUNITS) if name in _VECTOR_PARAMETERS else n) for name in _PARAMETERS}
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
    if not _is_int(n_neurons) or n_neurons < 1:
        raise ValueError(f"n_neurons must be a positive integer, got {n_neurons!r}")
    if not _is_int(image_size) or image_size < stimuli.MIN_SIZE:
        raise ValueError(f"image_size must be an integer >= {stimuli.MIN_SIZE}, got {image_size!r}")
    fractions = _check_fractions(kind_fractions)
    if calibration_images is not None:
        _check_images(calibration_images, int(image_size))
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
