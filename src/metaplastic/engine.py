"""The continual-learning engine: train stacked networks on a sequence, test after each item.

One call of :func:`run_trials` trains every network of the given trials
(profiles x trials, stacked into one :class:`~metaplastic.classifier.StackedMLP`)
with the library's :class:`~metaplastic.MetaplasticSGD`: the engine holds no
copy of the rule, it only calls ``consolidate()`` at every item boundary.
Baseline learners (EWC, SI, replay, metaplastic Adam: :mod:`metaplastic.learners`)
get a stacked model each, over the same trials, initial weights and
mini-batches, trained in lockstep with the profiles' model; a run of profiles
only is exactly what it was before they existed.
Each network sees its own trial's data; every random draw comes from
generators seeded by (run seed, trial), so a trial re-run alone gives the same
numbers on the CPU.
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from metaplastic import learners, protocol, stats
from metaplastic._memory import release_freed_memory
from metaplastic.classifier import StackedMLP
from metaplastic.config import RunConfig
from metaplastic.data.two_digit import CLASSES
from metaplastic.experiments import EXPERIMENTS, SequenceRequest, is_profile, learner_object
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


def prepare_trial(config: RunConfig, features: FeatureSource, index: int,
                  schedules: Schedules | None = None) -> Trial:
    rng = np.random.default_rng(derive_seed(config.seed, index, "trial"))
    classes = trial_classes(config, index)
    presentations, schedule = build_sequence(config, index, rng, schedules)
    train = np.stack([np.asarray(features(c, "train", config.train_per_class)) for c in classes])
    test = np.concatenate([np.asarray(features(c, "test", config.test_per_class)) for c in classes])
    mean, scale = normalisation(config, train)
    kept = np.float16 if train.dtype == np.float16 and test.dtype == np.float16 else np.float32
    device = torch.device(config.device)
    return Trial(index, classes, presentations, schedule,
                 torch.from_numpy(train.astype(kept)).to(device),
                 torch.from_numpy(test.astype(kept)).to(device),
                 np.repeat(np.arange(config.items), config.test_per_class), rng,
                 None if mean is None else torch.from_numpy(mean).to(device), scale)


def normalisation(config: RunConfig, train: np.ndarray) -> tuple[np.ndarray | None, float]:
    """How a trial's features are brought to a fixed size (protocol.md section 7: the feature
    scale): the mean to subtract (or None) and the factor to multiply by.

    Statistics come from the trial's own training features only, so a trial
    re-run alone normalises identically. Optionally the mean training feature
    vector is subtracted first (``center_features``): pool5 activations are
    all non-negative, and with an untrained backbone their common component
    dominates every image. Computed once per trial, in float32, on the host.
    """
    train = train.astype(np.float32).reshape(-1, train.shape[-1])
    mean = None
    if config.center_features:
        mean = train.mean(axis=0)
        train = train - mean
    return mean, config.feature_scale / float(train.std())


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


def run_dtype(config: RunConfig) -> torch.dtype:
    """The dtype of the networks' weights, inputs and optimizer state."""
    return torch.float64 if config.precision == "float64" else torch.float32


@contextmanager
def matmul_precision(config: RunConfig):
    """TF32 matrix products on a CUDA device for ``precision="tf32"``, restored afterwards."""
    if config.precision != "tf32":
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def forward_precision(config: RunConfig):
    """The context of one forward pass: bfloat16 matrix products for ``precision="bfloat16"``.

    Under ``torch.autocast`` the products (and, through autograd, their backward products) take
    bfloat16 inputs while weights, gradients and optimizer state stay float32. It is entered
    around each forward pass, never around an optimizer step: autocast keeps its bfloat16 copy of
    a weight until the context ends, and a copy kept across a step would be stale.
    """
    if config.precision != "bfloat16":
        return nullcontext()
    return torch.autocast(torch.device(config.device).type, dtype=torch.bfloat16)


def profile_learners(config: RunConfig) -> list[str]:
    """The learners of a run that are flexibility profiles, in the run's order."""
    return [name for name in config.profiles if is_profile(config.experiment, name)]


def _init_generators(config: RunConfig, trials: list[Trial]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(derive_seed(config.seed, t.index, "init")) for t in trials]


def build_networks(config: RunConfig, trials: list[Trial],
                   profiles: list[str] | None = None) -> tuple[StackedMLP, MetaplasticSGD]:
    """One stacked model for profiles x trials and its optimizer with per-network flexibility."""
    profiles = profile_learners(config) if profiles is None else profiles
    n_profiles = len(profiles)
    owner = [k // n_profiles for k in range(len(trials) * n_profiles)]
    widths = [FEATURE_DIM, config.width, config.width, config.items]
    model = StackedMLP(widths, _init_generators(config, trials), owner,
                       dropout=config.dropout).to(config.device, run_dtype(config))
    groups = []
    for layer, weight in enumerate(model.weights):
        flexibility = torch.stack([
            learner_object(config.experiment, profile).sample(
                weight.shape[1:], torch.Generator().manual_seed(
                    derive_seed(config.seed, trial.index, "flexibility", profile, layer)))
            for trial in trials for profile in profiles])
        groups.append({"params": [weight], "flexibility": flexibility})
    groups.append({"params": list(model.biases), "scaled": False})  # biases: plain rate (paper)
    optimizer = MetaplasticSGD(groups, lr=config.lr, alpha=config.alpha, flexibility=1.0)
    return model, optimizer


@dataclass
class Group:
    """The stacked networks of one learner family: every profile in one model trained by
    MetaplasticSGD, each baseline learner in its own model; one network per (trial, learner)."""

    learners: list[str]          # the learners of a trial's networks, in network order
    model: StackedMLP
    trainer: learners.Trainer
    step_seconds: float = 0.0    # mini-batch work (composition, forward, backward, update)
    boundary_seconds: float = 0.0  # item-boundary work (consolidate, Fisher, reservoir)

    @property
    def per_trial(self) -> int:
        """Networks per trial, one per learner; trial t's are networks t*per_trial onwards."""
        return len(self.learners)


def build_groups(config: RunConfig, trials: list[Trial]) -> list[Group]:
    """The profiles' stacked model first (exactly as when a run has only profiles), then one
    stacked model per baseline learner. Every network of a trial starts from that trial's initial
    weights; replay draws from generators of its own, seeded by (run seed, trial, learner)."""
    groups = []
    profiles = profile_learners(config)
    if profiles:
        model, optimizer = build_networks(config, trials, profiles)
        groups.append(Group(profiles, model, learners.MetaplasticTrainer(optimizer)))
    widths = [FEATURE_DIM, config.width, config.width, config.items]
    for name in config.profiles:
        if name in profiles:
            continue
        model = StackedMLP(widths, _init_generators(config, trials), list(range(len(trials))),
                           dropout=config.dropout).to(config.device, run_dtype(config))
        generators = [np.random.default_rng(derive_seed(config.seed, t.index, "replay", name))
                      for t in trials]
        trainer = learners.make_trainer(name, model, lr=config.lr, batch_size=config.batch_size,
                                        generators=generators)
        groups.append(Group([name], model, trainer))
    return groups


def per_network(x: torch.Tensor, per_trial: int) -> torch.Tensor:
    """Each network's copy of its trial's rows: ``x [T, ...]`` -> ``[T * per_trial, ...]``.

    A trial's networks are consecutive, so this is an expand and one copy; a gather by network
    index copies the same numbers several times slower on the CPU.
    """
    if per_trial == 1:
        return x
    return x.unsqueeze(1).expand(-1, per_trial, *x.shape[1:]).flatten(0, 1)


def run_trials(config: RunConfig, features: FeatureSource, trial_indices: list[int],
               on_presentation: Callable[[int, int], None] | None = None,
               schedules: Schedules | None = None,
               timings: dict[str, float] | None = None) -> pd.DataFrame:
    """Train and test every network of the given trials; return their records.

    ``schedules``: the published frequency schedules for this sequence length, if any (the
    frequency experiment takes trial t's from them; other experiments ignore them).
    ``timings``: if given, filled with each learner's measured seconds per presentation and
    network (its share of its stacked model's training time; the shared data work excluded).
    """
    torch.manual_seed(derive_seed(config.seed, *trial_indices, "torch"))  # dropout, if on
    trials = [prepare_trial(config, features, t, schedules) for t in trial_indices]
    groups = build_groups(config, trials)
    n_presentations = len(trials[0].presentations)
    tests, inputs = _stack_tests(trials), Inputs(trials, run_dtype(config))
    with matmul_precision(config):
        records = [_test(config, g, trials, tests, inputs, 0) for g in groups]
        for k in range(n_presentations):
            _train_presentation(config, groups, trials, k)
            records.extend(_test(config, g, trials, tests, inputs, k + 1) for g in groups)
            release_freed_memory()   # a kept heap fragments across presentations (_memory)
            if on_presentation is not None:
                on_presentation(k + 1, n_presentations)
    if timings is not None:
        for g in groups:
            networks = g.model.n_networks * n_presentations
            for name in g.learners:
                timings[name] = (g.step_seconds + g.boundary_seconds) / networks
    table = pd.concat(records, ignore_index=True)[RECORD_COLUMNS]
    if len(groups) > 1:   # trial, then learner in the run's order, as a profiles-only run lists them
        rank = table["profile"].map({name: i for i, name in enumerate(config.profiles)})
        table = table.iloc[np.lexsort((rank, table["trial"], table["presentation"]))]
        table = table.reset_index(drop=True)
    return table


def _train_presentation(config, groups: list[Group], trials, k, epochs: int | None = None) -> None:
    for g in groups:
        with _timer(g, "boundary_seconds"):
            g.trainer.begin_item()
    task_sets = [protocol.task_set(t.presentations[k], config.items, config.train_per_class, t.rng)
                 for t in trials]
    x = torch.stack([t.train[torch.as_tensor(s.items), torch.as_tensor(s.rows)]
                     for t, s in zip(trials, task_sets)])                   # [T, M, 9216], raw
    y = torch.stack([torch.as_tensor(s.labels) for s in task_sets]).to(x.device)  # [T, M]
    inputs = Inputs(trials, run_dtype(config))
    size = x.shape[1]
    rows = x.flatten(0, 1)                                                  # [T * M, 9216]
    first_row = torch.arange(len(trials), device=x.device).unsqueeze(1) * size  # [T, 1]
    for g in groups:
        g.model.train()
    for epoch in range(config.epochs if epochs is None else epochs):
        # Non-finite losses are collected on the device and checked once per epoch, not per step:
        # reading a flag back every step would stall a GPU at each mini-batch.
        failed: list[torch.Tensor | None] = [None] * len(groups)
        order = torch.stack([torch.as_tensor(t.rng.permutation(size)) for t in trials]).to(x.device)
        for start in range(0, size, config.batch_size):
            batch = order[:, start:start + config.batch_size]                 # [T, b]
            # Whole rows by index_select: a gather by element index copies the same rows slower.
            picked = rows.index_select(0, (batch + first_row).flatten())
            xt = inputs(picked.view(*batch.shape, x.shape[2]))              # [T, b, 9216]
            yt = torch.gather(y, 1, batch)                                   # [T, b]
            for index, g in enumerate(groups):   # every learner on the same mini-batches, in lockstep
                with _timer(g, "step_seconds"):
                    xb, yb = g.trainer.compose(per_network(xt, g.per_trial),
                                               per_network(yt, g.per_trial))
                    # Sum over networks of each network's mean loss: each slice gets its own gradient.
                    with forward_precision(config):
                        losses = learners.stacked_losses(g.model, xb, yb)
                    failed[index] = _first_nonfinite(failed[index], losses)
                    g.trainer.step(losses)
        for g, losses in zip(groups, failed):
            if losses is not None and bool((~torch.isfinite(losses)).any()):   # one sync per epoch
                _diverged(config, g, trials, losses, k, epoch)
    item_data = inputs(x) if any(g.trainer.uses_item_data for g in groups) else None
    for g in groups:
        with _timer(g, "boundary_seconds"):
            if g.trainer.uses_item_data:
                g.trainer.end_item(g.model, per_network(item_data, g.per_trial),
                                   per_network(y, g.per_trial))
            else:
                g.trainer.end_item(g.model, None, None)


@contextmanager
def _timer(group: Group, field: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        setattr(group, field, getattr(group, field) + time.perf_counter() - start)


def _first_nonfinite(seen: torch.Tensor | None, losses: torch.Tensor) -> torch.Tensor:
    """Per network, its first non-finite loss of the epoch if any, else its latest loss."""
    losses = losses.detach()
    if seen is None:
        return losses.clone()
    return torch.where(torch.isfinite(seen), losses, seen)


def _diverged(config, group, trials, losses, k, epoch):
    bad = int(torch.nonzero(~torch.isfinite(losses))[0])
    per_trial = group.per_trial
    trial, profile = trials[bad // per_trial].index, group.learners[bad % per_trial]
    raise TrainingDiverged(
        f"loss became {losses[bad].item()} for profile {profile!r}, trial {trial}, presentation "
        f"{k + 1}, epoch {epoch + 1} (lr={config.lr}, alpha={config.alpha}, feature_scale="
        f"{config.feature_scale}, width={config.width}, batch_size={config.batch_size}); "
        "try a smaller lr or feature scale")


def measure_costs(config: RunConfig, names: list[str] | None = None) -> dict[str, dict]:
    """What each learner costs beyond its weights, measured at the run's sizes on this machine.

    Per learner, on one network with random features: bytes of state per parameter (the
    tensors its optimizer or method keeps), stored training examples, and seconds per
    presentation: one presentation of one epoch is trained untimed (to fill buffers and the
    Fisher), then a second one is timed and scaled to the run's epochs (mini-batch work times
    epochs, plus the item-boundary work once).
    """
    generator = torch.Generator().manual_seed(0)
    n, rows = config.items, config.train_per_class
    train = torch.randn(n, rows, FEATURE_DIM, generator=generator).to(config.device)
    test = torch.randn(n * 2, FEATURE_DIM, generator=generator).to(config.device)
    out = {}
    for name in names or list(config.profiles):
        single = dataclasses.replace(config, profiles=(name,))
        trial = Trial(0, list(CLASSES[:n]), protocol.serial(n)[:2], "", train, test,
                      np.repeat(np.arange(n), 2), np.random.default_rng(0))
        (group,) = build_groups(single, [trial])
        _train_presentation(single, [group], [trial], 0, epochs=1)
        group.step_seconds = group.boundary_seconds = 0.0
        _train_presentation(single, [group], [trial], 1, epochs=1)
        state = sum(t.numel() * t.element_size() for t in group.trainer.state_tensors())
        weights = sum(p.numel() for p in learners.parameters(group.model))
        out[name] = {"state_bytes_per_weight": state / weights,
                     "stored_examples": group.trainer.stored_examples(),
                     "stored_bytes": group.trainer.stored_examples() * (FEATURE_DIM * 4 + 8),
                     "seconds_per_presentation": group.boundary_seconds
                     + group.step_seconds * config.epochs}
    return out


@torch.no_grad()
def predict(model: StackedMLP, x: torch.Tensor, per_trial: int, chunk: int = 2048,
            inputs: Callable[[torch.Tensor], torch.Tensor] | None = None) -> np.ndarray:
    """Arg-max readout of every network on its own trial's rows: ``[B, rows]``.

    ``x`` is ``[T, rows, 9216]``; ``inputs`` normalises a chunk of it (raw features), if given.
    The predictions stay on the device until the last chunk: one copy to the host per test."""
    model.eval()
    out = []
    for start in range(0, x.shape[1], chunk):
        part = x[:, start:start + chunk]
        out.append(model(per_network(part if inputs is None else inputs(part), per_trial)).argmax(-1))
    return torch.cat(out, dim=1).cpu().numpy()


def _stack_tests(trials: list[Trial]) -> torch.Tensor:
    """The trials' test features as one ``[T, rows, 9216]`` tensor, built once per run; each
    trial's ``test`` becomes a view of it (no second copy on the device)."""
    tests = torch.stack([t.test for t in trials])
    for t, view in zip(trials, tests):
        t.test = view
    return tests


def _test(config, group: Group, trials, tests: torch.Tensor, inputs: Inputs,
          presentation: int) -> pd.DataFrame:
    with forward_precision(config):
        predictions = predict(group.model, tests, group.per_trial, inputs=inputs)
    per_trial, n = group.per_trial, config.items
    frames = []
    for b, prediction in enumerate(predictions):
        trial = trials[b // per_trial]
        performance = stats.item_performance(prediction, trial.test_labels, n)
        p_values = stats.memorized_pvalues(prediction, trial.test_labels, n)
        shown = trial.presentations[presentation - 1] if presentation else None
        frames.append(pd.DataFrame({
            "experiment": config.experiment, "profile": group.learners[b % per_trial],
            "trial": trial.index, "seed": config.seed, "presentation": presentation,
            "item": np.arange(1, n + 1), "item_class": trial.classes,
            "performance": performance, "p_value": p_values,
            "memorized": stats.is_memorized(p_values),
            "presented_item": (shown.item + 1) if shown else 0,
            "poisoned": bool(shown and shown.poisoned), "n_items": n, "schedule": trial.schedule}))
    return pd.concat(frames, ignore_index=True)
