"""The distillation pool of one test session (docs/method.md section 4): images the teacher labels for the students.

The pool is a recipe, not a file (``PoolRecipe``): its sources with their counts and the seed define it, and image
``i`` is a pure function of (seed, session, i), so any job can regenerate any index range, in any order, and get the
same bytes. The paper labels 12 million natural images; here the sources are, at sizes from the config:

* the procedural generators of ``stimuli`` (natural-image crops, dead leaves, textures, gaudy variants, dots,
  shapes), one seeded draw per image;
* augmented copies (flips, shifts, zooms, contrast) of the session's own images of the **fit half** only (the
  held-out half, on which accuracy is measured, never reaches training, not even augmented);
* images of the dataset's other sessions (for real data: thousands of natural images of the right statistics),
  leaving out any image identical to one of this session's held-out images;
* image folders a user has (``io.image_folders``: the documented file order makes index ``i`` stable).

Sources are laid end to end (in the order above) and shuffled by a seeded bijection of the indices (a Feistel
network, so a job needs no table of the pool's size); the last ``heldout`` indices are never trained on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from compactcortex.io.image_folders import list_images, listing_sha256, read_square_image
from compactcortex.io.image_sets import read_images
from compactcortex.io.predictions import halves
from compactcortex.seeding import rng_for
from compactcortex.stimuli import IMAGE_TYPES, MAKERS, resize_square

AUGMENTED = "session_augmented"
OTHER_SESSIONS = "other_sessions"
FOLDER = "folder"  # the image type of a folder's images
FEISTEL_ROUNDS = 6
MAX_SHIFT = 1 / 8  # of the image side
MAX_ZOOM = 1.25
CONTRAST_RANGE = (0.8, 1.2)


def pool_image_id(session: str, index: int) -> str:
    """The name of pool image ``index`` of a session (in stimulus sets: a control, a natural image's source)."""
    return f"{session}_distill{index:07d}"


def augment_images(rng: np.random.Generator, images: np.ndarray, n: int) -> np.ndarray:
    """``n`` augmented copies of random ``images`` (uint8, n, s, s, 3): a horizontal flip half the time, a zoom
    (1 to 1.25x) about a shifted centre (up to 1/8 of the side), reflected at the edges, and a contrast change
    (0.8 to 1.2x about the image's mean)."""
    if images.ndim != 4 or images.shape[0] == 0 or images.dtype != np.uint8:
        raise ValueError(f"need uint8 images (n, s, s, 3) to augment, got {images.dtype} {images.shape}")
    size = images.shape[1]
    choice = rng.integers(0, images.shape[0], n)
    flip = rng.random(n) < 0.5
    zoom = rng.uniform(1.0, MAX_ZOOM, n)
    shift = rng.uniform(-MAX_SHIFT, MAX_SHIFT, (n, 2)) * 2  # affine_grid coordinates span [-1, 1]
    contrast = rng.uniform(*CONTRAST_RANGE, n)
    x = torch.from_numpy(images[choice]).permute(0, 3, 1, 2).double()
    x = torch.where(torch.from_numpy(flip).view(-1, 1, 1, 1), x.flip(-1), x)
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = theta[:, 1, 1] = torch.from_numpy(1.0 / zoom)
    theta[:, :, 2] = torch.from_numpy(shift)
    grid = F.affine_grid(theta, [n, 3, size, size], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = mean + (x - mean) * torch.from_numpy(contrast).view(-1, 1, 1, 1)
    return x.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def pool_split(n_images: int, heldout: int) -> np.ndarray:
    """'train' or 'heldout' per pool image: the last ``heldout`` images are held out."""
    if not 0 < heldout < n_images:
        raise ValueError(f"the held-out part ({heldout}) must be between 0 and the pool's size ({n_images})")
    split = np.full(n_images, "train", dtype="<U7")
    split[n_images - heldout :] = "heldout"
    return split


def feistel_keys(seed: int, *names: str) -> np.ndarray:
    """The round keys of a seeded Feistel bijection (``shuffled_positions``) named by ``names``."""
    return rng_for(seed, *names).integers(0, 2**62, FEISTEL_ROUNDS, dtype=np.uint64)


def _round_keys(seed: int, session: str) -> np.ndarray:
    return feistel_keys(seed, "compact", "pool", session, "order")


def _mix(values: np.ndarray, key: np.uint64) -> np.ndarray:
    """A 64-bit integer hash (splitmix64's finaliser) of ``values`` xor ``key``; wraps modulo 2**64."""
    with np.errstate(over="ignore"):
        z = values ^ key
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def shuffled_positions(indices: np.ndarray, n: int, keys: np.ndarray) -> np.ndarray:
    """A bijection of [0, n): a balanced Feistel network on the smallest even number of bits that holds n, walked
    again where it lands outside [0, n) (cycle walking). Pure integer arithmetic: the same on every machine."""
    half = max(1, (int(n - 1).bit_length() + 1) // 2)
    mask = np.uint64((1 << half) - 1)
    positions = np.asarray(indices, dtype=np.uint64).copy()
    if np.any(positions >= np.uint64(n)):
        raise IndexError(f"pool indices must lie in [0, {n})")
    todo = np.ones(positions.size, dtype=bool)
    while todo.any():
        value = positions[todo]
        left, right = value >> np.uint64(half), value & mask
        for key in keys:
            left, right = right, left ^ (_mix(right, key) & mask)
        positions[todo] = (left << np.uint64(half)) | right
        todo = positions >= np.uint64(n)
    return positions.astype(np.int64)


@dataclass(frozen=True)
class Folder:
    """A user's image folder as a source: its files in the documented order, ``count`` of them used."""

    path: Path
    files: tuple[str, ...]
    count: int

    def image(self, j: int, size: int) -> np.ndarray:
        """Image j: the files spread evenly over the folder's order when fewer are used than it holds."""
        return read_square_image(self.path / self.files[(j * len(self.files)) // self.count], size)


@dataclass(frozen=True)
class PoolRecipe:
    """A test session's distillation pool as a pure function of (seed, session, index)."""

    seed: int
    session: str
    image_size: int
    counts: Mapping[str, int]  # procedural images per type (keys among stimuli.IMAGE_TYPES)
    augmented: int
    fit_images: np.ndarray  # the session's fit-half images, the only ones augmented
    other_sessions: int
    other_images: np.ndarray  # the other sessions' images that may be used (none identical to a held-out one)
    folders: Sequence[Folder]
    heldout: int
    sources: tuple[tuple[str, int], ...] = field(init=False)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.counts) - set(IMAGE_TYPES))
        if unknown:
            raise ValueError(f"unknown image type(s) {unknown}; valid types are {list(IMAGE_TYPES)}")
        if self.augmented and len(self.fit_images) == 0:
            raise ValueError("augmented copies need the session's fit-half images")
        if self.other_sessions > len(self.other_images):
            raise ValueError(
                f"other_sessions asks for {self.other_sessions} images; the other sessions have "
                f"{len(self.other_images)} that may be used"
            )
        sources = pool_sources(self.counts, self.augmented, self.other_sessions, [f.count for f in self.folders])
        object.__setattr__(self, "sources", sources)
        if not 0 < self.heldout < len(self):
            raise ValueError(f"the held-out part ({self.heldout}) must be between 0 and the pool's size ({len(self)})")

    def __len__(self) -> int:
        return sum(count for _, count in self.sources)

    @property
    def heldout_start(self) -> int:
        """The first held-out index: the last ``heldout`` indices are never trained on."""
        return len(self) - self.heldout

    def split(self) -> np.ndarray:
        """'train' or 'heldout' per index (for small pools: a table of the pool's size)."""
        return pool_split(len(self), self.heldout)

    def describe(self) -> str:
        """The recipe's sources and counts, and its folders' file listings (by checksum), as JSON: provenance."""
        folders = [
            {"path": str(f.path), "files": len(f.files), "listing_sha256": listing_sha256(f.path, list(f.files))}
            for f in self.folders
        ]
        return json.dumps({"sources": dict(self.sources), "heldout": self.heldout, "folders": folders})

    def natural_indices(self, start: int, stop: int) -> np.ndarray:
        """The indices in start..stop-1 that are procedural natural images (``stimuli``' natural crops)."""
        indices = np.arange(start, stop)
        return indices[self.image_types(indices) == "natural"]

    def locate(self, indices: np.ndarray) -> list[tuple[str, int]]:
        """(source, index within the source) of each pool index."""
        positions = shuffled_positions(np.asarray(indices), len(self), _round_keys(self.seed, self.session))
        bounds = np.cumsum([count for _, count in self.sources])
        which = np.searchsorted(bounds, positions, side="right")
        starts = bounds - np.array([count for _, count in self.sources])
        return [(self.sources[k][0], int(p - starts[k])) for k, p in zip(which, positions, strict=True)]

    def image_types(self, indices: np.ndarray) -> np.ndarray:
        return np.array([FOLDER if name.startswith(FOLDER) else name for name, _ in self.locate(indices)])

    def images(self, indices: np.ndarray) -> np.ndarray:
        """uint8 (len(indices), size, size, 3): the same bytes whichever indices are asked together, in any order."""
        size = self.image_size
        out = np.empty((len(indices), size, size, 3), dtype=np.uint8)
        for row, (name, j) in enumerate(self.locate(np.asarray(indices))):
            out[row] = self._image(name, j)
        return out

    def _image(self, name: str, j: int) -> np.ndarray:
        rng = rng_for(self.seed, "compact", "pool", self.session, name, str(j))
        if name in IMAGE_TYPES:
            return MAKERS[name](rng, 1, self.image_size)[0]
        if name == AUGMENTED:
            return augment_images(rng, self.fit_images, 1)[0]
        if name == OTHER_SESSIONS:
            # an even spread over the usable images, in their order: index j -> one image, without repeats
            image = self.other_images[(j * len(self.other_images)) // self.other_sessions]
            return resize_square(image, self.image_size)
        return self.folders[int(name[len(FOLDER) :])].image(j, self.image_size)


def pool_sources(
    counts: Mapping[str, int], augmented: int, other_sessions: int, folder_counts: Sequence[int]
) -> tuple[tuple[str, int], ...]:
    """The pool's sources in the order they are laid end to end, with their counts (empty ones left out)."""
    sources = [(name, int(counts.get(name, 0))) for name in IMAGE_TYPES]
    sources += [(AUGMENTED, augmented), (OTHER_SESSIONS, other_sessions)]
    sources += [(f"{FOLDER}{k}", count) for k, count in enumerate(folder_counts)]
    return tuple((name, count) for name, count in sources if count > 0)


def heldout_natural_count(pool: Mapping[str, Any], session: str, seed: int) -> int:
    """How many procedural natural images the held-out part of a session's pool holds (synthesis takes its controls
    from them), from the config alone: no image is read, so the config is checked before anything runs."""
    sources = pool_sources(
        pool["images"], pool["augmented"], pool["other_sessions"], [f["count"] for f in pool["folders"]]
    )
    n = sum(count for _, count in sources)
    names = [name for name, _ in sources]
    if not 0 < pool["heldout"] < n:
        raise ValueError(f"the held-out part ({pool['heldout']}) must be between 0 and the pool's size ({n})")
    if "natural" not in names:
        return 0
    start = sum(count for _, count in sources[: names.index("natural")])
    stop = start + sources[names.index("natural")][1]
    positions = shuffled_positions(np.arange(n - pool["heldout"], n), n, _round_keys(seed, session))
    return int(((positions >= start) & (positions < stop)).sum())


def pool_recipe(
    dataset: str, other_datasets: Sequence[str], pool: Mapping[str, Any], session: str, seed: int
) -> PoolRecipe:
    """The session's pool recipe: its fit half for augmentation; the other sessions' images that are not one of its
    held-out images; the config's folders."""
    session_images, _ = read_images(dataset)
    fit, held_out = halves(len(session_images))
    held_out_bytes = {session_images[i].tobytes() for i in held_out}
    others = [read_images(path)[0] for path in other_datasets] if pool["other_sessions"] else []
    usable = [image for images in others for image in images if image.tobytes() not in held_out_bytes]
    size = session_images.shape[1]
    return PoolRecipe(
        seed=seed,
        session=session,
        image_size=size,
        counts=dict(pool["images"]),
        augmented=pool["augmented"],
        fit_images=session_images[fit],
        other_sessions=pool["other_sessions"],
        other_images=np.stack(usable) if usable else np.empty((0, size, size, 3), dtype=np.uint8),
        folders=[
            Folder(Path(entry["path"]), tuple(list_images(entry["path"])), entry["count"]) for entry in pool["folders"]
        ],
        heldout=pool["heldout"],
    )
