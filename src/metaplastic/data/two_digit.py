"""Two-digit MNIST: the 45 classes "ij" (i < j) and their images (paper 2.3; docs/protocol.md 4).

Every image is a 56x56 black canvas with digit i at rows 15-42 / columns 1-28
and digit j at rows 15-42 / columns 29-56 (1-based, as in the reference), each
digit drawn at random with replacement from that digit's MNIST pool: training
images from training digits, test images from test digits.

Images of one (class, split) are a pure function of (seed, class, split, n):
building one class never depends on which other classes were built.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaplastic.data.mnist import DigitSource

#: The 45 classes in a fixed order: "01", "02", ..., "09", "12", ..., "89".
CLASSES: tuple[str, ...] = tuple(f"{i}{j}" for i in range(10) for j in range(i + 1, 10))

#: The reference classes "00", "11", ..., "99": the same digit twice, which is no item's class.
#: Their images fix a run's feature normalisation without any item's images (trials.py).
REFERENCE_CLASSES: tuple[str, ...] = tuple(f"{d}{d}" for d in range(10))
_ALL_CLASSES = CLASSES + REFERENCE_CLASSES   # a class's index seeds its images: items first
SPLITS = ("train", "test")

IMAGE_SIZE = 56
ROWS = slice(14, 42)    # rows 15-42, 1-based
LEFT = slice(0, 28)     # columns 1-28
RIGHT = slice(28, 56)   # columns 29-56


@dataclass(frozen=True)
class TwoDigitSpec:
    """How many images per class and from which seed (the paper: 5,000 / 1,000)."""

    train_per_class: int = 2000   # the reference keeps 40% of its 5,000
    test_per_class: int = 1000
    seed: int = 0

    def count(self, split: str) -> int:
        return self.train_per_class if split == "train" else self.test_per_class


def class_digits(name: str) -> tuple[int, int]:
    """``"38"`` -> ``(3, 8)``, checking that it is one of the 45 classes or a reference class."""
    if name not in _ALL_CLASSES:
        raise ValueError(f"unknown two-digit class {name!r}; classes are 'ij' with i < j, e.g. '38' "
                         "(and the reference classes 'ii')")
    return int(name[0]), int(name[1])


def compose(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Place 28x28 digits side by side on 56x56 black canvases (batched)."""
    left, right = np.asarray(left), np.asarray(right)
    canvas = np.zeros(left.shape[:-2] + (IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    canvas[..., ROWS, LEFT] = left
    canvas[..., ROWS, RIGHT] = right
    return canvas


def class_rng(seed: int, name: str, split: str) -> np.random.Generator:
    """A generator that depends on (seed, class, split) only."""
    return np.random.default_rng([seed, _ALL_CLASSES.index(name), SPLITS.index(split), 0x2D1617])


def sample_digit_indices(digits: DigitSource, name: str, split: str, n: int,
                         seed: int) -> np.ndarray:
    """``[n, 2]`` indices into the split's MNIST images: (left digit, right digit) per image."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    left_digit, right_digit = class_digits(name)
    rng = class_rng(seed, name, split)
    left = rng.choice(digits.pool(split, left_digit), size=n, replace=True)
    right = rng.choice(digits.pool(split, right_digit), size=n, replace=True)
    return np.stack([left, right], axis=1)


def build_class(digits: DigitSource, name: str, split: str, n: int, seed: int) -> np.ndarray:
    """``[n, 56, 56]`` uint8 images of class ``name`` from the ``split`` digits."""
    index = sample_digit_indices(digits, name, split, n, seed)
    source = digits.images(split)
    return compose(source[index[:, 0]], source[index[:, 1]])


def source_fingerprint(digits: DigitSource) -> str:
    """A short checksum of the digit source, so caches keyed on it notice a different MNIST."""
    crc = 0
    for array in (digits.train_images, digits.train_labels, digits.test_images, digits.test_labels):
        crc = zlib.crc32(np.ascontiguousarray(array).tobytes(), crc)
    return f"{digits.source}-{crc:08x}"


def save_sample_grid(digits: DigitSource, path: str | Path, *, classes=CLASSES, per_class: int = 8,
                     split: str = "train", seed: int = 0) -> Path:
    """Save a PNG grid: one row per class, ``per_class`` sample images each."""
    from PIL import Image

    rows = [np.concatenate(list(build_class(digits, name, split, per_class, seed)), axis=1)
            for name in classes]
    grid = np.concatenate(rows, axis=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)
    return path
