"""The three scenarios of van de Ven & Tolias 2018 as Avalanche benchmarks, and their models.

* ``permuted``: Permuted MNIST, domain-incremental: every task is all ten digits under its own
  fixed pixel permutation (the first task unpermuted, as in the paper), 32 x 32 zero-padded
  input, one shared ten-way output, MLP 1024-1000-1000-10.
* ``split-task``: Split MNIST, task-incremental: five tasks of two digits (0/1, 2/3, ...); the
  task label is given, and each task reads only its own two of the ten output units.
* ``split-class``: Split MNIST, class-incremental: the same tasks, no task label, one ten-way
  output over all digits seen. Both Split scenarios use the MLP 784-400-400-10.

The benchmarks come from Avalanche's ``nc_benchmark`` over tensors built from the local MNIST
folder. A run's seed fixes the permutations, the training digits each task draws and the
initial weights; the task order is the paper's fixed one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from avalanche.benchmarks import nc_benchmark
from avalanche.models import MultiTaskModule

from metaplastic.standard.data import (
    Digits,
    LabelledTensors,
    draw_exactly,
    load_mnist,
    pool_and_validation,
    to_inputs,
)


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str            # the paper's scenario: domain, task or class incremental
    max_tasks: int | None
    hidden: int
    pad_to: int | None   # input side after zero padding (None: 28 x 28 as stored)

    @property
    def input_size(self) -> int:
        return (self.pad_to or 28) ** 2


#: The baselines' optimizers: plain SGD (no momentum, the rule's own) or Adam (the paper's).
OPTIMIZERS = ("sgd", "adam")

SCENARIOS = {
    "permuted": Scenario("permuted", "domain", None, 1000, 32),
    "split-task": Scenario("split-task", "task", 5, 400, None),
    "split-class": Scenario("split-class", "class", 5, 400, None),
}


@dataclass(frozen=True)
class Protocol:
    """Everything that fixes a benchmark's data and training budget (recorded in each run)."""

    scenario: str
    tasks: int
    iterations: int             # SGD steps per task (one epoch over iterations x batch digits)
    batch: int = 128
    eval_per_task: int | None = None   # evaluation digits per task (None: all of them)
    split: str = "test"          # "test", or "validation" for the settings search
    eval_mode: str = "seen"      # "seen": all trained tasks after each; "diagonal": see below
    full_every: int = 10         # with "diagonal": every trained task after each full_every-th
    optimizer: str = "sgd"       # the baselines' optimizer, "sgd" or "adam"; the rule is MetaplasticSGD

    def __post_init__(self):
        scenario = SCENARIOS[self.scenario]
        if self.tasks < 1 or (scenario.max_tasks and self.tasks > scenario.max_tasks):
            raise ValueError(f"{self.scenario} has 1..{scenario.max_tasks or 'any'} tasks, got {self.tasks}")
        if self.split not in ("test", "validation") or self.eval_mode not in ("seen", "diagonal"):
            raise ValueError(f"bad split {self.split!r} or eval_mode {self.eval_mode!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")

    def as_dict(self) -> dict:
        return asdict(self)

    def evaluated_after(self, task: int) -> list[int]:
        """The tasks evaluated after training ``task`` (0-based)."""
        last = task == self.tasks - 1
        if self.eval_mode == "seen" or last or (task + 1) % self.full_every == 0:
            return list(range(task + 1))
        return [task]


def build_benchmark(protocol: Protocol, seed: int, data_root: str):
    """The Avalanche benchmark of ``protocol`` for ``seed``: train and evaluation streams."""
    pool, validation = pool_and_validation(data_root)
    evaluation = validation if protocol.split == "validation" else load_mnist(data_root, train=False)
    if protocol.scenario == "permuted":
        return _permuted(protocol, seed, pool, evaluation)
    return _split(protocol, seed, pool, evaluation)


def permutations(tasks: int, seed: int, pixels: int) -> list[np.ndarray | None]:
    """Task 0 sees the digits as they are; every later task a permutation drawn from ``seed``."""
    rng = np.random.default_rng([seed, 0])
    return [None] + [rng.permutation(pixels) for _ in range(tasks - 1)]


def _permuted(protocol: Protocol, seed: int, pool: Digits, evaluation: Digits):
    scenario = SCENARIOS["permuted"]
    n_eval = protocol.eval_per_task or len(evaluation.labels)
    held = evaluation.take(np.arange(n_eval))
    train, test = [], []
    for task, permutation in enumerate(permutations(protocol.tasks, seed, scenario.input_size)):
        rng = np.random.default_rng([seed, 1, task])
        drawn = pool.take(draw_exactly(len(pool.labels), protocol.iterations * protocol.batch, rng))
        train.append(LabelledTensors(to_inputs(drawn.images, scenario.pad_to, permutation), drawn.labels))
        test.append(LabelledTensors(to_inputs(held.images, scenario.pad_to, permutation), held.labels))
    # As Avalanche's own PermutedMNIST: one dataset per experience, the ten digits of each
    # mapped to the same ten outputs (domain-incremental).
    return nc_benchmark(train, test, n_experiences=protocol.tasks, task_labels=False, shuffle=False,
                        one_dataset_per_exp=True, class_ids_from_zero_in_each_exp=True)


def _split(protocol: Protocol, seed: int, pool: Digits, evaluation: Digits):
    task_il = SCENARIOS[protocol.scenario].kind == "task"
    train_parts, test_parts = [], []
    for task in range(protocol.tasks):
        digits = (2 * task, 2 * task + 1)
        rng = np.random.default_rng([seed, 1, task])
        mine = np.flatnonzero(np.isin(pool.labels.numpy(), digits))
        drawn = draw_exactly(len(mine), protocol.iterations * protocol.batch, rng)
        train_parts.append(pool.take(mine[drawn]))
        held = np.flatnonzero(np.isin(evaluation.labels.numpy(), digits))[: protocol.eval_per_task]
        test_parts.append(evaluation.take(held))
    train, test = (_tensors(parts) for parts in (train_parts, test_parts))
    # nc_benchmark splits by class in the paper's fixed order; task-IL gives each experience
    # its task label and its classes as 0 / 1 (the two output units of its task).
    return nc_benchmark(train, test, n_experiences=protocol.tasks, task_labels=task_il, shuffle=False,
                        fixed_class_order=list(range(2 * protocol.tasks)),
                        class_ids_from_zero_in_each_exp=task_il)


def _tensors(parts: list[Digits]) -> LabelledTensors:
    images = torch.cat([p.images for p in parts])
    return LabelledTensors(to_inputs(images), torch.cat([p.labels for p in parts]))


# ---------------------------------------------------------------------- models


def mlp(input_size: int, hidden: int, outputs: int = 10) -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Linear(input_size, hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, outputs))


class TaskHeadMLP(MultiTaskModule):
    """The MLP whose ten outputs are shared out two per task: task t reads units 2t and 2t+1.

    The paper's multi-headed output for task-incremental Split MNIST. The heads are slices of
    one fixed layer, so Avalanche's model adaptation never adds parameters.
    """

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.net = mlp(input_size, hidden, 10)

    def forward_single_task(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        return self.net(x)[:, 2 * task_label: 2 * task_label + 2]


def make_model(scenario_name: str) -> torch.nn.Module:
    scenario = SCENARIOS[scenario_name]
    if scenario.kind == "task":
        return TaskHeadMLP(scenario.input_size, scenario.hidden)
    return mlp(scenario.input_size, scenario.hidden)
