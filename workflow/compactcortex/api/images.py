"""Images as a user hands them to a model: one uint8 RGB image (H, W, 3), a stack (n, H, W, 3), or a list of images
of different sizes. Each is cropped to its centred square (the stimuli of these experiments are square, and a model
sees a square input), then resized by the model to what it expects (see ``models``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from compactcortex.io.image_folders import centred_square_box, read_rgb_image

Images = np.ndarray | Sequence[np.ndarray]


def centred_square(image: np.ndarray) -> np.ndarray:
    """The centred square of an (..., H, W, 3) array (``centred_square_box``: as the pool crops its image files)."""
    top, left, side = centred_square_box(image.shape[-3], image.shape[-2])
    return image[..., top : top + side, left : left + side, :]


def _checked(image: np.ndarray, what: str) -> np.ndarray:
    if image.dtype != np.uint8 or image.shape[-1:] != (3,) or min(image.shape[-3:-1], default=0) < 1:
        raise ValueError(
            f"{what} must be uint8 RGB pixels (height, width, 3) in 0..255, got {image.dtype} {tuple(image.shape)}"
        )
    return image


def square_batches(images: Images) -> Iterator[tuple[slice, np.ndarray]]:
    """(positions, uint8 (k, S, S, 3)) for consecutive runs of images of one size, in the order given."""
    if isinstance(images, np.ndarray):
        if images.ndim == 3:
            yield slice(0, 1), centred_square(_checked(images, "an image"))[np.newaxis].copy()
            return
        if images.ndim != 4:
            raise ValueError(f"images must be (H, W, 3) or (n, H, W, 3), got shape {images.shape}")
        if len(images) == 0:
            raise ValueError("no images given")
        square = centred_square(_checked(images, "images"))
        yield slice(0, len(images)), square if square.flags.writeable else square.copy()  # torch wants writable
        return
    squares = [centred_square(_checked(np.asarray(image), f"image {i}")) for i, image in enumerate(images)]
    if not squares:
        raise ValueError("no images given")
    start = 0
    for end in range(1, len(squares) + 1):
        if end == len(squares) or squares[end].shape != squares[start].shape:
            yield slice(start, end), np.stack(squares[start:end])
            start = end


def count_images(images: Images) -> int:
    if isinstance(images, np.ndarray):
        return 1 if images.ndim == 3 else len(images)
    return len(images)


def read_image_files(paths: Sequence[str | Path]) -> list[np.ndarray]:
    """Image files (PNG, JPEG, ... anything PIL reads) as uint8 RGB arrays at their own sizes."""
    return [read_rgb_image(path) for path in paths]
