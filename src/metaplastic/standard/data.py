"""MNIST from the local folder, as the tensors the standard benchmarks are built from.

Every run draws from the same two disjoint parts of MNIST's 60,000 training digits: a
training pool (50,000) and a validation split (10,000) that only the settings search
evaluates on. The split is fixed (its own seed), so no run's training data ever overlaps
the validation digits, whatever the run's seed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

#: Digits held out of the training pool for the settings search.
VALIDATION_SIZE = 10_000
#: Seed of the pool / validation split: fixed, independent of every run's seed.
SPLIT_SEED = 1809


@dataclass(frozen=True)
class Digits:
    """Images (uint8, N x 28 x 28) and labels (int64, N)."""

    images: torch.Tensor
    labels: torch.Tensor

    def take(self, indices: np.ndarray) -> Digits:
        index = torch.from_numpy(np.asarray(indices, dtype=np.int64))
        return Digits(self.images[index], self.labels[index])


class LabelledTensors(torch.utils.data.TensorDataset):
    """Inputs and labels with the ``targets`` attribute Avalanche's generators read."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor):
        super().__init__(inputs, labels)
        self.targets = labels.tolist()


@functools.lru_cache(maxsize=4)
def load_mnist(root: str, train: bool) -> Digits:
    """MNIST's training or test digits from ``root`` (torchvision's layout; never downloads)."""
    from torchvision.datasets import MNIST

    dataset = MNIST(root=root, train=train, download=False)
    return Digits(dataset.data.clone(), dataset.targets.clone().long())


def pool_and_validation(root: str) -> tuple[Digits, Digits]:
    """The training pool and the validation split, carved once from MNIST's training digits."""
    digits = load_mnist(root, train=True)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(digits.labels))
    return digits.take(order[VALIDATION_SIZE:]), digits.take(order[:VALIDATION_SIZE])


def draw_exactly(n_available: int, n_wanted: int, rng: np.random.Generator) -> np.ndarray:
    """``n_wanted`` indices into ``n_available`` items: whole shuffled passes, then a part.

    A task trained on these for one epoch takes exactly ``n_wanted / batch`` iterations, and
    sees every item about equally often when it takes more than one pass.
    """
    passes = [rng.permutation(n_available) for _ in range(-(-n_wanted // n_available))]
    return np.concatenate(passes)[:n_wanted]


def to_inputs(images: torch.Tensor, pad_to: int | None = None,
              permutation: np.ndarray | None = None) -> torch.Tensor:
    """Flattened float inputs in [0, 1]: zero-padded to ``pad_to`` pixels a side, then permuted."""
    x = images.float().div_(255)
    if pad_to is not None:
        margin = (pad_to - x.shape[-1]) // 2
        x = torch.nn.functional.pad(x, (margin, pad_to - x.shape[-1] - margin) * 2)
    x = x.flatten(1)
    if permutation is not None:
        x = x[:, torch.from_numpy(permutation)]
    return x.contiguous()
