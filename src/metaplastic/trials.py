"""A trial's data: its item classes, its sequence of presentations, its features and how they
are normalised into the networks' input.

Everything here is decided by (run seed, trial index) alone, so a trial re-run alone, in any
batch, on any worker, gets the same classes, sequence, task sets and inputs. The engine
(:mod:`metaplastic.engine`) trains on what :func:`prepare_trial` returns; the lab asks
:func:`required_features` which features to extract before training.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from metaplastic import protocol
from metaplastic.config import RunConfig
from metaplastic.data.two_digit import CLASSES, REFERENCE_CLASSES
from metaplastic.experiments import EXPERIMENTS, SequenceRequest

#: Images per reference class ("00" ... "99", training digits) behind a run's feature
#: normalisation: 10 x 100 images, the same for every trial and every scale.
REFERENCE_PER_CLASS = 100

#: Published frequency schedules handed to a trial: ``(csv row, order)`` pairs.
Schedules = tuple[tuple[int, list[int]], ...]


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from (run seed, trial, purpose...): independent streams per purpose."""
    words = [p if isinstance(p, int) else zlib.crc32(p.encode()) for p in parts]
    return int(np.random.SeedSequence(words).generate_state(2, np.uint64)[0] >> np.uint64(1))


@dataclass
class Trial:
    """The data of one trial: its item classes, presentations and features.

    The features stay as the source gives them (the cache's float16) on the device, and are
    normalised a mini-batch at a time (:meth:`normalise`): a trial's features take half the
    memory and are never copied from the host again after :func:`prepare_trial`.
    """

    index: int
    classes: list[str]
    presentations: list[protocol.Presentation]
    schedule: str               # which schedule built the sequence (frequency experiment)
    train: torch.Tensor         # [items, positives, 9216], raw (the source's precision)
    test: torch.Tensor          # [items * test_per_class, 9216], raw
    test_labels: np.ndarray     # item index of each test row
    rng: np.random.Generator    # task sets and mini-batch order
    mean: torch.Tensor | None = None   # [9216] float32, subtracted first (``center_features``)
    scale: float = 1.0                 # then multiplied by this

    def normalise(self, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Raw features of this trial -> the network's input (:func:`normalisation`)."""
        return normalise(x, self.mean, torch.tensor(self.scale, dtype=torch.float32), dtype)


def normalise(x: torch.Tensor, mean: torch.Tensor | None, scale: torch.Tensor,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(x - mean) * scale`` in float32, then cast to ``dtype``; ``mean`` and ``scale`` broadcast.

    Done in float32 whatever ``dtype`` is, exactly as :func:`normalisation` measured them, so a
    float64 run sees the float32 run's inputs (only its training arithmetic differs). In place on
    one new float32 tensor (``x`` itself is never changed): one allocation per call, not three.
    """
    out = x.to(torch.float32, copy=True)
    if mean is not None:
        out.sub_(mean)
    return out.mul_(scale.to(out.device)).to(dtype)


FeatureSource = Callable[[str, str, int], np.ndarray]   # (class, split, n) -> [n, 9216]


def build_sequence(config: RunConfig, index: int, rng: np.random.Generator,
                   schedules: Schedules | None = None) -> tuple[list[protocol.Presentation], str]:
    """The trial's presentations, from its experiment's sequence builder (the registry)."""
    request = SequenceRequest(config.items, index, rng, schedules)
    return EXPERIMENTS[config.experiment].sequence(request)


def trial_classes(config: RunConfig, index: int) -> list[str]:
    """The item sequence of a trial: ``items`` distinct classes drawn from the 45."""
    rng = np.random.default_rng(derive_seed(config.seed, index, "classes"))
    return [CLASSES[c] for c in rng.choice(len(CLASSES), size=config.items, replace=False)]


def required_features(config: RunConfig, trials) -> list[tuple[str, str, int]]:
    """The ``(class, split, images)`` features that training ``trials`` of a run reads."""
    items = {(name, split, n) for t in trials for name in trial_classes(config, t)
             for split, n in (("train", config.train_per_class), ("test", config.test_per_class))}
    return sorted(items | set(reference_features()))


def reference_features() -> list[tuple[str, str, int]]:
    """The ``(class, split, images)`` features a run's normalisation is measured on."""
    return [(name, "train", REFERENCE_PER_CLASS) for name in REFERENCE_CLASSES]


def prepare_trial(config: RunConfig, features: FeatureSource, index: int,
                  schedules: Schedules | None = None) -> Trial:
    rng = np.random.default_rng(derive_seed(config.seed, index, "trial"))
    classes = trial_classes(config, index)
    presentations, schedule = build_sequence(config, index, rng, schedules)
    train = np.stack([np.asarray(features(c, "train", config.train_per_class)) for c in classes])
    test = np.concatenate([np.asarray(features(c, "test", config.test_per_class)) for c in classes])
    mean, scale = normalisation(config, np.concatenate([np.asarray(features(*key))
                                                        for key in reference_features()]))
    kept = np.float16 if train.dtype == np.float16 and test.dtype == np.float16 else np.float32
    device = torch.device(config.device)
    return Trial(index, classes, presentations, schedule,
                 torch.from_numpy(train.astype(kept)).to(device),
                 torch.from_numpy(test.astype(kept)).to(device),
                 np.repeat(np.arange(config.items), config.test_per_class), rng,
                 None if mean is None else torch.from_numpy(mean).to(device), scale)


def normalisation(config: RunConfig, reference: np.ndarray) -> tuple[np.ndarray | None, float]:
    """How features are brought to a fixed size (docs/protocol.md section 7: the feature scale):
    the mean to subtract (or None) and the factor to multiply by.

    Measured on the reference images (:func:`reference_features`: classes "ii", which no trial
    trains or tests on), never on a trial's items: the input an item is trained on cannot depend
    on the items after it (no look-ahead), and every trial of a run, alone or in a batch, is
    normalised identically. Optionally the mean reference feature vector is subtracted first
    (``center_features``): pool5 activations are all non-negative, and with an untrained backbone
    their common component dominates every image. In float32, on the host.
    """
    reference = reference.astype(np.float32).reshape(-1, reference.shape[-1])
    mean = None
    if config.center_features:
        mean = reference.mean(axis=0)
        reference = reference - mean
    return mean, config.feature_scale / float(reference.std())


class Inputs:
    """Normalisation of the stacked trials' raw features ``[T, n, 9216]``, a slice at a time."""

    def __init__(self, trials: list[Trial], dtype: torch.dtype):
        device = trials[0].train.device
        self.mean = None if trials[0].mean is None else torch.stack([t.mean for t in trials])[:, None]
        self.scale = torch.tensor([t.scale for t in trials], dtype=torch.float32,
                                  device=device)[:, None, None]
        self.dtype = dtype

    def __call__(self, raw: torch.Tensor) -> torch.Tensor:
        return normalise(raw, self.mean, self.scale, self.dtype)
