"""A user's image collection as a pool source: a folder tree of JPEG and PNG files (ImageNet-style or flat), read
only.

Order (what makes index ``i`` stable): every file below the folder whose name ends in .jpg, .jpeg or .png (any case),
sorted by its path relative to the folder, as POSIX text compared code point by code point (so ``B/x.jpg`` comes
before ``a/x.jpg``); hidden files and folders (a name starting with '.') are left out. Each image is converted to
RGB, cropped to the centred square and resized to the pool's image size (bilinear, as PIL does it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from compactcortex.atomic import atomic_path
from compactcortex.errors import InputDataError

EXTENSIONS = (".jpg", ".jpeg", ".png")


def list_images(folder: str | Path) -> list[str]:
    """The folder's image files, relative POSIX paths in the documented order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputDataError(folder, "image folder not found")
    files = [
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file()
        and path.suffix.lower() in EXTENSIONS
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]
    if not files:
        raise InputDataError(folder, f"holds no image files ({', '.join(EXTENSIONS)})")
    return sorted(files)


def listing_sha256(folder: str | Path, files: list[str]) -> str:
    """A checksum of the listing (names and sizes): what the pool's provenance records of a folder."""
    digest = hashlib.sha256()
    for name in files:
        digest.update(f"{name}\t{(Path(folder) / name).stat().st_size}\n".encode())
    return digest.hexdigest()


def centred_square_box(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, side) of an image's centred square: the longer side trimmed evenly, the odd pixel at the end."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side


def read_rgb_image(path: str | Path) -> np.ndarray:
    """One image file (any format PIL reads) as uint8 (height, width, 3), RGB, at its own size."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(path, "image file not found")
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise InputDataError(path, f"cannot be read as an image (corrupt or truncated?): {exc}") from exc


def write_png(path: str | Path, image: np.ndarray) -> None:
    """uint8 (height, width, 3) as a PNG file, written atomically."""
    with atomic_path(path) as temporary:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(temporary, format="PNG")


def read_square_image(path: str | Path, size: int) -> np.ndarray:
    """One image as uint8 (size, size, 3): RGB, the centred square, resized."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            width, height = image.size
            top, left, side = centred_square_box(height, width)
            square = image.crop((left, top, left + side, top + side))
            return np.asarray(square.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise InputDataError(path, f"cannot be read as an image (corrupt or truncated?): {exc}") from exc
