"""How a compression job reads its distillation pool: by index, in batches, never whole (docs/method.md section 4).

A job's pool is ``PoolData``: a source of images by pool index (the pool's recipe, which regenerates them, or an
array drawn in one piece) and a source of the teacher's labels of its neurons by index range (the label file, or an
array). Memory does not grow with the pool: a job holds one batch of images, one block of labels (``block`` images,
the label file's chunk), the held-out images and the calibration and probe images (sizes from the config), and at
most ``cache_mb`` of regenerated images.

``BatchSampler`` walks the training indices epoch by epoch in a seeded order that needs no table of the pool's size:
each epoch visits the blocks in a shuffled order and, within a block, its indices in a shuffled order (both Feistel
bijections), so every training image is seen once per epoch and a batch's labels lie in one or two blocks. The
pool's own order is already a seeded shuffle of its sources, so a block is a random sample of the whole pool.

Every quantity is a pure function of the pool's indices and the seed, so the same indices give the same bytes from
either source: a model trained on the recipe and the label file equals, bit for bit, one trained on the same pool
drawn in one piece (a test checks it).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from compactcortex.pool import feistel_keys, shuffled_positions
from compactcortex.progress import Progress

log = logging.getLogger(__name__)


class ImageSource(Protocol):
    def images(self, indices: np.ndarray) -> np.ndarray:
        """uint8 (len(indices), s, s, 3): pool images by index."""
        ...


class LabelSource(Protocol):
    neuron_ids: np.ndarray
    n_images: int

    def read(self, start: int, stop: int) -> np.ndarray:
        """(neuron, image): the labels of pool images start..stop-1 (float32 from a label file)."""
        ...


class ImageArray:
    """A pool drawn in one piece (``images[i]`` is pool image ``i``)."""

    def __init__(self, images: np.ndarray) -> None:
        self.array = images

    def images(self, indices: np.ndarray) -> np.ndarray:
        return self.array[np.asarray(indices)]


class LabelArray:
    """Labels held in memory (neuron, image), in their own dtype (a label file's are float32)."""

    def __init__(self, labels: np.ndarray, neuron_ids: np.ndarray) -> None:
        self.array = np.atleast_2d(np.asarray(labels))
        self.neuron_ids = np.asarray(neuron_ids, dtype=str)
        if self.array.ndim != 2 or len(self.array) != len(self.neuron_ids):
            raise ValueError(f"{len(self.array)} rows of labels for {len(self.neuron_ids)} neuron(s)")
        self.n_images = self.array.shape[1]

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.array[:, start:stop]


class CachedImages:
    """An image source with the first ``max_bytes`` of images it regenerates kept in memory (regeneration is the
    cost of a pool walked for several epochs). It returns the same bytes as the source, so it changes no result."""

    def __init__(self, source: ImageSource, max_bytes: int) -> None:
        self.source = source
        self.max_bytes = max_bytes
        self.cache: dict[int, np.ndarray] = {}
        self.bytes = 0

    def images(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64)
        missing = np.unique([i for i in indices.tolist() if i not in self.cache])
        fresh = dict(zip(missing.tolist(), self.source.images(missing), strict=True)) if missing.size else {}
        for index, image in fresh.items():
            if self.bytes + image.nbytes > self.max_bytes:
                break
            self.cache[index] = image
            self.bytes += image.nbytes
        return np.stack([self.cache[i] if i in self.cache else fresh[i] for i in indices.tolist()])


class BlockLabels:
    """Labels by arbitrary indices, read block by block from a label source (the last two blocks kept)."""

    def __init__(self, source: LabelSource, n_images: int, block: int) -> None:
        self.source, self.n_images, self.block = source, n_images, block
        self.blocks: OrderedDict[int, np.ndarray] = OrderedDict()

    def _block(self, k: int) -> np.ndarray:
        if k not in self.blocks:
            self.blocks[k] = self.source.read(k * self.block, min(self.n_images, (k + 1) * self.block))
            while len(self.blocks) > 2:
                self.blocks.popitem(last=False)
        return self.blocks[k]

    def __getitem__(self, indices: np.ndarray) -> np.ndarray:
        """(len(indices), neuron) float64 (exactly the source's values)."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), len(self.source.neuron_ids)), dtype=np.float64)
        for k in np.unique(indices // self.block).tolist():
            here = indices // self.block == k
            out[here] = self._block(k)[:, indices[here] - k * self.block].T
        return out


class BatchSampler:
    """The training indices of each Adam step (see the module docstring): step ``s``'s batch is a pure function of
    (seed, s). Batches are consecutive slices of an epoch's order; an epoch's last batch may be smaller, and a lone
    last image is joined by the epoch's first (BatchNorm cannot train on one image)."""

    def __init__(self, n_images: int, batch_size: int, seed: int, block: int) -> None:
        if n_images < 2:
            raise ValueError("distillation needs at least 2 training images (BatchNorm in training mode)")
        self.n_images, self.batch_size, self.seed, self.block = n_images, batch_size, seed, block
        self.batches_per_epoch = -(-n_images // batch_size)
        self.sizes = np.array([min(block, n_images - start) for start in range(0, n_images, block)])
        self._epoch: tuple[int, np.ndarray, np.ndarray] | None = None

    def _keys(self, *names: str) -> np.ndarray:
        return feistel_keys(self.seed, "compact", "batches", *names)

    def _block_order(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """The epoch's blocks in visiting order, and where each starts in the epoch's order."""
        if self._epoch is None or self._epoch[0] != epoch:
            n_blocks = len(self.sizes)
            order = shuffled_positions(np.arange(n_blocks), n_blocks, self._keys(str(epoch), "blocks"))
            starts = np.concatenate([[0], np.cumsum(self.sizes[order])[:-1]])
            self._epoch = (epoch, order, starts)
        return self._epoch[1], self._epoch[2]

    def epoch_order(self, epoch: int, positions: np.ndarray) -> np.ndarray:
        """The training indices at ``positions`` of the epoch's order."""
        order, starts = self._block_order(epoch)
        slot = np.searchsorted(starts, positions, side="right") - 1
        out = np.empty(len(positions), dtype=np.int64)
        for s in np.unique(slot).tolist():
            here = slot == s
            k = int(order[s])
            within = shuffled_positions(positions[here] - starts[s], int(self.sizes[k]), self._keys(str(epoch), str(k)))
            out[here] = k * self.block + within
        return out

    def batch(self, step: int) -> np.ndarray:
        """Step ``step``'s (0-based) training indices."""
        epoch, b = divmod(step, self.batches_per_epoch)
        positions = np.arange(b * self.batch_size, min(self.n_images, (b + 1) * self.batch_size))
        if positions.size == 1:
            positions = np.array([positions[0], 0])
        return self.epoch_order(epoch, positions)


@dataclass
class PoolData:
    """A compression job's pool: images and its neurons' labels by pool index; the last ``heldout`` indices are
    never trained on. ``workers`` processes regenerate the images of the coming batches (0: the job's own)."""

    images: ImageSource
    labels: LabelSource
    n_images: int
    heldout: int
    block: int
    workers: int = 0
    mean: np.ndarray | float = 0.0  # the labels' standardisation (``targets_of``)
    sd: np.ndarray | float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.heldout < self.n_images:
            raise ValueError(f"the held-out part ({self.heldout}) must lie inside the pool ({self.n_images} images)")
        if self.labels.n_images != self.n_images:
            raise ValueError(f"labels of {self.labels.n_images} images, but the pool has {self.n_images}")
        self.label_blocks = BlockLabels(self.labels, self.n_images, self.block)

    @property
    def n_train(self) -> int:
        return self.n_images - self.heldout

    @property
    def neuron_ids(self) -> np.ndarray:
        return self.labels.neuron_ids

    def labels_of(self, indices: np.ndarray) -> np.ndarray:
        """(len(indices), neuron) float64."""
        return self.label_blocks[indices]

    def heldout_indices(self) -> np.ndarray:
        return np.arange(self.n_train, self.n_images)

    def train_ranges(self, limit: int | None = None) -> Iterator[tuple[int, int]]:
        """Consecutive ranges of training indices, one label block at most each (the first ``limit`` only)."""
        stop = self.n_train if limit is None else min(limit, self.n_train)
        for start in range(0, stop, self.block):
            yield start, min(stop, start + self.block)

    def label_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """Each neuron's mean and standard deviation of its labels over the training images (float64, two passes,
        block by block: one neuron's values never depend on which neurons share the job)."""
        n = len(self.neuron_ids)
        n_blocks = -(-self.n_train // self.block)
        progress = Progress("label statistics", 2 * n_blocks, "block", logger=log)  # every block read twice
        sums = np.zeros(n)
        for start, stop in self.train_ranges():
            block = self.labels.read(start, stop)
            sums += [np.sum(block[row].astype(np.float64)) for row in range(n)]
            progress.advance(1, "means")
        mean = sums / self.n_train
        squares = np.zeros(n)
        for start, stop in self.train_ranges():
            block = self.labels.read(start, stop)
            squares += [np.sum((block[row].astype(np.float64) - mean[row]) ** 2) for row in range(n)]
            progress.advance(1, "standard deviations")
        return mean, np.sqrt(squares / self.n_train)

    def channel_means(self, n_images: int, batch_size: int = 256) -> list[float]:
        """The mean pixel value per channel of the first ``n_images`` training images (exact integer sums)."""
        totals = np.zeros(3, dtype=np.int64)
        stop = min(n_images, self.n_train)
        for start in range(0, stop, batch_size):
            images = self.images.images(np.arange(start, min(stop, start + batch_size)))
            totals += images.reshape(-1, 3).sum(axis=0, dtype=np.int64)
        pixels = stop * images.shape[1] * images.shape[2]
        return (totals / pixels).tolist()

    def targets_of(self, indices: np.ndarray) -> np.ndarray:
        """(len(indices), neuron) float64: the labels standardised by ``mean`` and ``sd``."""
        return (self.labels_of(indices) - self.mean) / self.sd

    def image_batches(self, batches: Batches, count: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(indices, images) of batches 0..count-1, in order (regenerated ahead by ``workers`` processes, if any)."""
        if self.workers == 0:
            for k in range(count):
                indices = batches.batch(k)
                yield indices, self.images.images(indices)
            return
        loader = torch.utils.data.DataLoader(
            _BatchImages(self.images, batches, count), batch_size=None, num_workers=self.workers, prefetch_factor=4
        )
        for k, images in enumerate(loader):
            yield batches.batch(k), np.asarray(images)


class Batches(Protocol):
    def batch(self, k: int) -> np.ndarray:
        """Batch k's pool indices."""
        ...


@dataclass(frozen=True)
class RangeBatches:
    """Indices start..stop-1 in order, ``size`` at a time."""

    start: int
    stop: int
    size: int

    def __len__(self) -> int:
        return -(-(self.stop - self.start) // self.size)

    def batch(self, k: int) -> np.ndarray:
        first = self.start + k * self.size
        return np.arange(first, min(self.stop, first + self.size))


class _BatchImages(torch.utils.data.Dataset):
    """Batch k's images, for the DataLoader's worker processes."""

    def __init__(self, images: ImageSource, batches: Batches, count: int) -> None:
        self.source, self.batches, self.count = images, batches, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, k: int) -> np.ndarray:
        return self.source.images(self.batches.batch(k))
