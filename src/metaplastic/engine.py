"""The continual-learning engine: train stacked networks on a sequence, test after each item.

One call of :func:`run_trials` trains every network of the given trials
(profiles x trials, stacked into one :class:`~metaplastic.classifier.StackedMLP`)
with the library's :class:`~metaplastic.MetaplasticSGD`: the engine holds no
copy of the rule, it only calls ``consolidate()`` at every item boundary.
Each network sees its own trial's data; every random draw comes from
generators seeded by (run seed, trial), so a trial re-run alone gives the same
numbers on the CPU.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from metaplastic import protocol, stats
from metaplastic.classifier import StackedMLP
from metaplastic.config import RunConfig
from metaplastic.data.two_digit import CLASSES
from metaplastic.experiments import EXPERIMENTS, SequenceRequest, profile_object
from metaplastic.features import FEATURE_DIM
from metaplastic.optim import MetaplasticSGD

#: The record schema is a contract: columns are added, never renamed. ``schedule`` names the
#: frequency schedule a trial used ("published row 3", "generated"); empty for other sequences.
RECORD_COLUMNS = ["experiment", "profile", "trial", "seed", "presentation", "item", "item_class",
                  "performance", "p_value", "memorized", "presented_item", "poisoned", "n_items",
                  "schedule"]

#: Published frequency schedules handed to the engine: ``(csv row, order)`` pairs.
Schedules = tuple[tuple[int, list[int]], ...]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the network and the settings."""


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from (run seed, trial, purpose...): independent streams per purpose."""
    words = [p if isinstance(p, int) else zlib.crc32(p.encode()) for p in parts]
    return int(np.random.SeedSequence(words).generate_state(2, np.uint64)[0] >> np.uint64(1))


@dataclass
class Trial:
    """The data of one trial: its item classes, presentations and normalised features."""

    index: int
    classes: list[str]
    presentations: list[protocol.Presentation]
    schedule: str               # which schedule built the sequence (frequency experiment)
    train: torch.Tensor         # [items, positives, 9216]
    test: torch.Tensor          # [items * test_per_class, 9216]
    test_labels: np.ndarray     # item index of each test row
    rng: np.random.Generator    # task sets and mini-batch order


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


def prepare_trial(config: RunConfig, features: FeatureSource, index: int,
                  schedules: Schedules | None = None) -> Trial:
    rng = np.random.default_rng(derive_seed(config.seed, index, "trial"))
    classes = trial_classes(config, index)
    presentations, schedule = build_sequence(config, index, rng, schedules)
    train = np.stack([np.asarray(features(c, "train", config.train_per_class)) for c in classes])
    test = np.concatenate([np.asarray(features(c, "test", config.test_per_class)) for c in classes])
    train, test = normalise_features(config, train.astype(np.float32), test.astype(np.float32))
    device = torch.device(config.device)
    return Trial(index, classes, presentations, schedule,
                 torch.from_numpy(train).to(device), torch.from_numpy(test).to(device),
                 np.repeat(np.arange(config.items), config.test_per_class), rng)


def normalise_features(config: RunConfig, train: np.ndarray, test: np.ndarray):
    """Bring a trial's features to a fixed size (protocol.md section 7: the feature scale).

    Statistics come from the trial's own training features only, so a trial
    re-run alone normalises identically. Optionally the mean training feature
    vector is subtracted first (``center_features``): pool5 activations are
    all non-negative, and with an untrained backbone their common component
    dominates every image.
    """
    if config.center_features:
        mean = train.reshape(-1, train.shape[-1]).mean(axis=0)
        train, test = train - mean, test - mean
    scale = config.feature_scale / float(train.std())
    return train * scale, test * scale


def build_networks(config: RunConfig, trials: list[Trial]) -> tuple[StackedMLP, MetaplasticSGD]:
    """One stacked model for profiles x trials and its optimizer with per-network flexibility."""
    n_profiles = len(config.profiles)
    owner = [k // n_profiles for k in range(len(trials) * n_profiles)]
    init = [torch.Generator().manual_seed(derive_seed(config.seed, t.index, "init")) for t in trials]
    widths = [FEATURE_DIM, config.width, config.width, config.items]
    model = StackedMLP(widths, init, owner, dropout=config.dropout).to(config.device)
    groups = []
    for layer, weight in enumerate(model.weights):
        flexibility = torch.stack([
            profile_object(config.experiment, profile).sample(
                weight.shape[1:], torch.Generator().manual_seed(
                    derive_seed(config.seed, trial.index, "flexibility", profile, layer)))
            for trial in trials for profile in config.profiles])
        groups.append({"params": [weight], "flexibility": flexibility})
    groups.append({"params": list(model.biases), "scaled": False})  # biases: plain rate (paper)
    optimizer = MetaplasticSGD(groups, lr=config.lr, alpha=config.alpha, flexibility=1.0)
    return model, optimizer


def run_trials(config: RunConfig, features: FeatureSource, trial_indices: list[int],
               on_presentation: Callable[[int, int], None] | None = None,
               schedules: Schedules | None = None) -> pd.DataFrame:
    """Train and test every network of the given trials; return their records.

    ``schedules``: the published frequency schedules for this sequence length, if any (the
    frequency experiment takes trial t's from them; other experiments ignore them).
    """
    torch.manual_seed(derive_seed(config.seed, *trial_indices, "torch"))  # dropout, if on
    trials = [prepare_trial(config, features, t, schedules) for t in trial_indices]
    model, optimizer = build_networks(config, trials)
    owner = torch.arange(len(trials), device=config.device).repeat_interleave(len(config.profiles))
    n_presentations = len(trials[0].presentations)
    records = [_test(config, model, trials, owner, 0)]
    for k in range(n_presentations):
        optimizer.consolidate()   # item boundary: S from the drift after the previous item (Eq. 2)
        _train_presentation(config, model, optimizer, trials, owner, k)
        records.append(_test(config, model, trials, owner, k + 1))
        if on_presentation is not None:
            on_presentation(k + 1, n_presentations)
    return pd.concat(records, ignore_index=True)[RECORD_COLUMNS]


def _train_presentation(config, model, optimizer, trials, owner, k) -> None:
    task_sets = [protocol.task_set(t.presentations[k], config.items, config.train_per_class, t.rng)
                 for t in trials]
    x = torch.stack([t.train[torch.as_tensor(s.items), torch.as_tensor(s.rows)]
                     for t, s in zip(trials, task_sets)])                   # [T, M, 9216]
    y = torch.stack([torch.as_tensor(s.labels) for s in task_sets]).to(x.device)  # [T, M]
    size = x.shape[1]
    model.train()
    for epoch in range(config.epochs):
        order = torch.stack([torch.as_tensor(t.rng.permutation(size)) for t in trials]).to(x.device)
        for start in range(0, size, config.batch_size):
            batch = order[:, start:start + config.batch_size]                 # [T, b]
            xb = torch.gather(x, 1, batch.unsqueeze(-1).expand(-1, -1, x.shape[2]))[owner]
            yb = torch.gather(y, 1, batch)[owner]                            # [B, b]
            logits = model(xb)
            # Sum over networks of each network's mean loss: each slice gets its own gradient.
            losses = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none")
            losses = losses.view(yb.shape).mean(dim=1)
            if not torch.isfinite(losses).all():
                _diverged(config, trials, losses, k, epoch)
            optimizer.zero_grad(set_to_none=False)
            losses.sum().backward()
            optimizer.step()


def _diverged(config, trials, losses, k, epoch):
    bad = int(torch.nonzero(~torch.isfinite(losses))[0])
    n_profiles = len(config.profiles)
    trial, profile = trials[bad // n_profiles].index, config.profiles[bad % n_profiles]
    raise TrainingDiverged(
        f"loss became {losses[bad].item()} for profile {profile!r}, trial {trial}, presentation "
        f"{k + 1}, epoch {epoch + 1} (lr={config.lr}, alpha={config.alpha}, feature_scale="
        f"{config.feature_scale}, width={config.width}, batch_size={config.batch_size}); "
        "try a smaller lr or feature scale")


@torch.no_grad()
def predict(model: StackedMLP, x: torch.Tensor, owner: torch.Tensor, chunk: int = 2048) -> np.ndarray:
    """Arg-max readout of every network on its own trial's rows: ``[B, rows]``."""
    model.eval()
    out = [model(x[:, start:start + chunk][owner]).argmax(-1) for start in range(0, x.shape[1], chunk)]
    return torch.cat(out, dim=1).cpu().numpy()


def _test(config, model, trials, owner, presentation: int) -> pd.DataFrame:
    predictions = predict(model, torch.stack([t.test for t in trials]), owner)
    n_profiles, n = len(config.profiles), config.items
    frames = []
    for b, prediction in enumerate(predictions):
        trial = trials[b // n_profiles]
        performance = stats.item_performance(prediction, trial.test_labels, n)
        p_values = stats.memorized_pvalues(prediction, trial.test_labels, n)
        shown = trial.presentations[presentation - 1] if presentation else None
        frames.append(pd.DataFrame({
            "experiment": config.experiment, "profile": config.profiles[b % n_profiles],
            "trial": trial.index, "seed": config.seed, "presentation": presentation,
            "item": np.arange(1, n + 1), "item_class": trial.classes,
            "performance": performance, "p_value": p_values,
            "memorized": stats.is_memorized(p_values),
            "presented_item": (shown.item + 1) if shown else 0,
            "poisoned": bool(shown and shown.poisoned), "n_items": n, "schedule": trial.schedule}))
    return pd.concat(frames, ignore_index=True)
