"""The continual-learning engine: train stacked networks on a sequence, test after each item.

One call of :func:`run_trials` trains every network of the given trials
(profiles x trials, stacked into one :class:`~metaplastic.classifier.StackedMLP`;
a trial's data comes from :mod:`metaplastic.trials`)
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

import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from metaplastic import learners, protocol, stats
from metaplastic._memory import release_freed_memory
from metaplastic.classifier import StackedMLP
from metaplastic.config import Learner, RunConfig
from metaplastic.features import FEATURE_DIM
from metaplastic.optim import MetaplasticSGD
from metaplastic.records import RECORD_COLUMNS
from metaplastic.trials import FeatureSource, Inputs, Schedules, Trial, derive_seed, prepare_trial


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the network and the settings."""


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


def _init_generators(config: RunConfig, trials: list[Trial]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(derive_seed(config.seed, t.index, "init")) for t in trials]


def build_networks(config: RunConfig, trials: list[Trial],
                   profiles: tuple[Learner, ...] | None = None) -> tuple[StackedMLP, MetaplasticSGD]:
    """One stacked model for profiles x trials and its optimizer with per-network flexibility."""
    profiles = config.profile_learners if profiles is None else profiles
    n_profiles = len(profiles)
    owner = [k // n_profiles for k in range(len(trials) * n_profiles)]
    widths = [FEATURE_DIM, config.width, config.width, config.items]
    model = StackedMLP(widths, _init_generators(config, trials), owner,
                       dropout=config.dropout).to(config.device, run_dtype(config))
    groups = []
    for layer, weight in enumerate(model.weights):
        flexibility = torch.stack([
            profile.method.sample(weight.shape[1:], torch.Generator().manual_seed(
                derive_seed(config.seed, trial.index, "flexibility", profile.name, layer)))
            for trial in trials for profile in profiles])
        groups.append({"params": [weight], "flexibility": flexibility})
    groups.append({"params": list(model.biases), "scaled": False})  # biases: plain rate (paper)
    optimizer = MetaplasticSGD(groups, lr=config.lr, alpha=config.alpha, flexibility=1.0)
    return model, optimizer


@dataclass
class Group:
    """The stacked networks of one learner family: every profile in one model trained by
    MetaplasticSGD, each baseline learner in its own model; one network per (trial, learner)."""

    learners: list[str]          # the names of a trial's networks' learners, in network order
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
    profiles = config.profile_learners
    if profiles:
        model, optimizer = build_networks(config, trials, profiles)
        groups.append(Group([p.name for p in profiles], model, learners.MetaplasticTrainer(optimizer)))
    widths = [FEATURE_DIM, config.width, config.width, config.items]
    for learner in config.learners:
        if learner.is_profile:
            continue
        model = StackedMLP(widths, _init_generators(config, trials), list(range(len(trials))),
                           dropout=config.dropout).to(config.device, run_dtype(config))
        generators = [np.random.default_rng(derive_seed(config.seed, t.index, "replay", learner.name))
                      for t in trials]
        trainer = learner.method.trainer(model, lr=config.lr, batch_size=config.batch_size,
                                         generators=generators)
        groups.append(Group([learner.name], model, trainer))
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
               costs: dict[str, dict] | None = None) -> pd.DataFrame:
    """Train and test every network of the given trials; return their records.

    ``schedules``: the published frequency schedules for this sequence length, if any (the
    frequency experiment takes trial t's from them; other experiments ignore them).
    ``costs``: if given, filled per learner with what it cost in this training (:func:`costs_of`).
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
    if costs is not None:
        costs.update(costs_of(groups, n_presentations))
    table = pd.concat(records, ignore_index=True)[RECORD_COLUMNS]
    if len(groups) > 1:   # trial, then learner in the run's order, as a profiles-only run lists them
        rank = table["learner"].map({name: i for i, name in enumerate(config.learner_names)})
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
    trial, learner = trials[bad // per_trial].index, group.learners[bad % per_trial]
    raise TrainingDiverged(
        f"loss became {losses[bad].item()} for learner {learner!r}, trial {trial}, presentation "
        f"{k + 1}, epoch {epoch + 1} (lr={config.lr}, alpha={config.alpha}, feature_scale="
        f"{config.feature_scale}, width={config.width}, batch_size={config.batch_size}); "
        "try a smaller lr or feature scale")


def costs_of(groups: list[Group], presentations: int) -> dict[str, dict]:
    """What each learner cost beyond its weights, measured on the training just done.

    Per learner: bytes of state per parameter (the tensors its optimizer or method keeps; the
    profiles of one stacked model share its optimizer's), the training examples it stores per
    network and their bytes (features in float32 with an int64 label), and its seconds per
    presentation and network: its share of its stacked model's training time, the shared data
    work (task sets, normalisation) excluded.
    """
    out = {}
    for g in groups:
        seconds = (g.step_seconds + g.boundary_seconds) / (g.model.n_networks * presentations)
        stored = g.trainer.stored_examples()
        for name in g.learners:
            out[name] = {"state_bytes_per_weight": learners.state_bytes_per_weight(g.trainer, g.model),
                         "stored_examples": stored, "stored_bytes": stored * (FEATURE_DIM * 4 + 8),
                         "seconds_per_presentation": seconds}
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
            "experiment": config.experiment, "learner": group.learners[b % per_trial],
            "trial": trial.index, "seed": config.seed, "presentation": presentation,
            "item": np.arange(1, n + 1), "item_class": trial.classes,
            "performance": performance, "p_value": p_values,
            "memorized": stats.is_memorized(p_values),
            "presented_item": (shown.item + 1) if shown else 0,
            "poisoned": bool(shown and shown.poisoned), "n_items": n, "schedule": trial.schedule}))
    return pd.concat(frames, ignore_index=True)
