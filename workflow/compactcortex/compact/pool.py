"""The distillation pool of one test session (docs/method.md section 4): images the teacher labels for the students.

The paper labels 12 million natural images; here the pool mixes, at sizes from the config, natural-image crops,
procedural images (dead leaves, textures, gaudy variants, dots, shapes: ``stimuli``) and augmented copies of the
session's own images (flips, shifts, zooms and contrast changes), so the students see the statistics the neuron was
recorded with. The last ``heldout`` images are never trained on: the students' fidelity is measured there.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from compactcortex.stimuli import make_image_set

AUGMENTED = "session_augmented"
MAX_SHIFT = 1 / 8  # of the image side
MAX_ZOOM = 1.25
CONTRAST_RANGE = (0.8, 1.2)


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


def distillation_pool(
    rng: np.random.Generator, counts: Mapping[str, int], session_images: np.ndarray, augmented: int
) -> tuple[np.ndarray, np.ndarray]:
    """(images, image_type), shuffled: ``counts`` generated images per type plus ``augmented`` session copies."""
    size = session_images.shape[1]
    generated, generated_types = make_image_set(rng, counts, size)
    copies = augment_images(rng, session_images, augmented) if augmented else generated[:0]
    images = np.concatenate([generated, copies])
    image_types = np.concatenate([generated_types.astype(object), np.full(len(copies), AUGMENTED, dtype=object)])
    order = rng.permutation(len(images))
    return images[order], image_types[order].astype(str)


def pool_split(n_images: int, heldout: int) -> np.ndarray:
    """'train' or 'heldout' per pool image: the last ``heldout`` images are held out."""
    if not 0 < heldout < n_images:
        raise ValueError(f"the held-out part ({heldout}) must be between 0 and the pool's size ({n_images})")
    split = np.full(n_images, "train", dtype="<U7")
    split[n_images - heldout :] = "heldout"
    return split
