"""The V4 stage of the virtual lab: each neuron kind's drive, computed from the front end's features.

Four kinds: ``curvature`` (conjunctions of orientations along an arc), ``texture`` (pooled products of
oriented energy across an orientation or scale pair), ``colour`` (rectified hue signal, modulated by
luminance contrast) and ``dot`` (pooled, expansive centre-surround responses suppressed by oriented edges).
None of it is a convolutional network, so recovering these neurons with the pipeline's compact CNNs is not
circular.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from compactcortex.lab.front_end import (
    DOG_SIGMAS,
    FLOAT,
    GABOR_FREQUENCIES,
    N_ORIENTATIONS,
    NORMALISATION_CONSTANT,
    Features,
    FrontEnd,
)

KINDS = ("curvature", "texture", "colour", "dot")
DOG_GABOR_SCALE = (2, 1, 1)  # the Gabor scale whose orientation bias suppresses each dot scale


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


class Group:
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
        out = torch.zeros(f.contrast.shape[0], len(DOG_SIGMAS), *f.contrast.shape[1:], dtype=FLOAT)
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
