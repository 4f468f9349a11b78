"""The virtual lab's fixed V1-like front end: the filter bank every simulated neuron reads.

Colour opponency, a quadrature log-Gabor bank with divisive normalisation and centre-surround channels.
Everything spatial is in fractions of the image (frequencies in cycles per image), so a neuron means the
same at 64 and at 112 pixels. The filters are sampled on a fixed grid of ~32 x 32 points per image
(band-limited filtering in the Fourier domain, with demodulated Gabor outputs), which keeps the cost
nearly independent of the image size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

# Front end, in image fractions / cycles per image.
GABOR_FREQUENCIES = (3.0, 6.0, 12.0)  # luminance Gabor centre frequencies, coarse to fine
N_ORIENTATIONS = 8
LOG_BANDWIDTH = 0.45  # radial sd of the log-Gabor, in natural-log units (~1.5 octaves FWHM)
ANGULAR_BANDWIDTH = 0.35  # angular sd, radians (~20 degrees)
COLOUR_FREQUENCY = 3.0
N_COLOUR_ORIENTATIONS = 4
DOG_SIGMAS = (0.012, 0.019, 0.03)  # centre sd of the centre-surround channels (best disc radius 1.84x)
DOG_SURROUND = 1.8
LOWPASS_SIGMA = 0.04
GRID = 40  # samples across the padded frame (1.25 image widths): 32 per image
PAD_FRACTION = 0.125
NORMALISATION_CONSTANT = 2e-3  # semi-saturation of the divisive normalisation (energy units)

FLOAT = torch.float32


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
        x = torch.from_numpy(np.ascontiguousarray(images)).to(FLOAT) / 255.0
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
