"""How much memory and disk a run needs, and how many trials to stack in one model.

The estimate is rough but errs high; it decides the default ``--trial-batch`` and refuses a
run whose single trial cannot fit the machine, before anything is loaded.
"""

from __future__ import annotations

import os
import shutil
import warnings

from metaplastic.config import RunConfig
from metaplastic.features import FEATURE_DIM


class ResourceError(RuntimeError):
    """A run would not fit this machine's memory or disk; the message says what to lower."""


def estimate_bytes(config: RunConfig, trials: int = 1) -> dict[str, int]:
    """Rough peak memory of training ``trials`` trials stacked, and disk of one trial's features.

    Per trial, in the run's dtype (4 or 8 bytes): the features on the device in the cache's
    float16 (train and test) plus a presentation's task set (about two positives' worth), and
    per network its weights about six times over (weights, gradients, initial weights, S,
    flexibility, a spare) and the activations of the larger of a mini-batch and a test chunk.
    """
    items, dim = config.items, FEATURE_DIM
    word = 8 if config.precision == "float64" else 4
    networks = len(config.learners)
    weights = networks * (dim * config.width + config.width * config.width + config.width * items)
    features = items * (config.train_per_class + config.test_per_class) * dim
    task_set = 2 * config.train_per_class * dim
    activations = networks * max(config.batch_size, 2048) * (dim + 2 * config.width)
    per_trial = 2 * (features + task_set) + word * (6 * weights + activations)
    return {"memory": trials * per_trial, "disk": 2 * features}


#: Networks stacked in one model on the CPU, at most: stacking 6 was 19% faster than training
#: them one after another at the quick preset (docs/benchmarks.md), and a larger batch only
#: loses more work to a kill.
CPU_MAX_NETWORKS = 8

#: Share of the device's memory the trials of one batch may take by default.
MEMORY_SHARE = {"cpu": 0.25, "cuda": 0.8}


def trial_batch_size(config: RunConfig, memory_budget: float | None = None) -> int:
    """How many trials to train at once: as many as ``memory_budget`` bytes allow (default: a
    share of the device's memory, MEMORY_SHARE), on the CPU at most CPU_MAX_NETWORKS networks,
    never more than the run's trials, never fewer than one: a budget given that is too small for
    one trial warns, naming what one trial needs, and trains one trial at a time."""
    device = "cuda" if config.device.startswith("cuda") else "cpu"
    per_trial = estimate_bytes(config)["memory"]
    if memory_budget is None:
        total = _memory_bytes(config.device, free=True)
        memory_budget = MEMORY_SHARE[device] * total if total else 0
    elif memory_budget < per_trial:
        warnings.warn(f"--memory-budget {memory_budget / 2**30:.3g} GiB is less than one trial of "
                      f"{config.experiment} needs (about {per_trial / 2**30:.2f} GiB): training one "
                      "trial at a time", stacklevel=2)
    size = int(memory_budget // per_trial)
    if device == "cpu":
        size = min(size, CPU_MAX_NETWORKS // max(1, len(config.learners)))
    return max(1, min(size, config.trials))


def check_resources(config: RunConfig, lab) -> None:
    """Refuse settings whose one trial cannot fit this machine, naming what to lower."""
    need = estimate_bytes(config)
    have = _memory_bytes(config.device)
    if have and need["memory"] > have:
        raise ResourceError(
            f"one trial needs about {need['memory'] / 2**30:.1f} GiB of memory ({config.device} has "
            f"{have / 2**30:.1f} GiB): lower --width ({config.width}), --train-per-class "
            f"({config.train_per_class}) or --test-per-class ({config.test_per_class})")
    root = getattr(getattr(lab, "cache", None), "root", None)
    if root is not None:
        free = shutil.disk_usage(root).free
        if need["disk"] > free:
            raise ResourceError(
                f"the features of one trial need about {need['disk'] / 2**30:.1f} GiB in the feature "
                f"cache {root}, which has {free / 2**30:.1f} GiB free: lower --train-per-class "
                f"({config.train_per_class}) or --test-per-class ({config.test_per_class}), or "
                "choose another --cache-dir")


def _memory_bytes(device: str, free: bool = False) -> int | None:
    """The device's memory in bytes (on a GPU, its free memory with ``free``), or None."""
    if device.startswith("cuda"):
        import torch

        try:
            return int(torch.cuda.mem_get_info(torch.device(device))[0 if free else 1])
        except (RuntimeError, AssertionError):
            return None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
