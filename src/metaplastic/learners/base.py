"""What every baseline shares: the settings base class, the trainer interface, the stacked losses.

A *trainer* trains the stacked networks of one learner. The engine calls, per presentation:
``begin_item()``; for every mini-batch ``x, y = compose(x, y)``, the losses, ``step(losses)``;
then ``end_item(model, x, y)`` with the presentation's whole training set (``None`` unless the
trainer sets ``uses_item_data``). Every trainer works on stacked parameters ``[B, ...]``: each
network's loss reaches only its own slice, so stacked networks stay independent.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from metaplastic.classifier import StackedMLP
from metaplastic.optim import MetaplasticSGD


def spell(value: float) -> str:
    """A setting as a name writes it: short (``100``, ``0.9``) where ``:g`` is exact, else in full.

    The short form is what run identities have always held, so it stays wherever it loses
    nothing; ``repr`` only for the values ``:g`` would round (``1234567``, ``123.4567891``).
    """
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


@dataclass(frozen=True)
class Range:
    """The valid values of one setting: ``low`` to ``high``, each end closed or open."""

    low: float
    high: float = math.inf
    closed_low: bool = True
    closed_high: bool = True
    integer: bool = False

    def __contains__(self, value: float) -> bool:
        if not math.isfinite(value) or (self.integer and value != int(value)):
            return False
        above = value >= self.low if self.closed_low else value > self.low
        below = value <= self.high if self.closed_high else value < self.high
        return above and below

    def __str__(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.high == math.inf:
            return f"{kind} {'>=' if self.closed_low else '>'} {self.low:g}"
        return (f"{kind} in {'[' if self.closed_low else '('}{self.low:g}, "
                f"{self.high:g}{']' if self.closed_high else ')'}")


@dataclass(frozen=True)
class Method:
    """The settings of one baseline method: a frozen dataclass of numbers with their defaults.

    A subclass names its ``family`` (the learner name, ``ewc``), the ``colour`` its networks take
    in every figure, a one-line ``summary`` for ``--help``, the valid ``ranges`` of its settings
    (checked when a name is parsed), and builds its :class:`Trainer` (:meth:`trainer`).
    """

    family: ClassVar[str]
    colour: ClassVar[str]
    summary: ClassVar[str]
    ranges: ClassVar[dict[str, Range]]

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value not in self.ranges[field.name]:
                raise ValueError(f"learner {self.family!r}: {field.name} must be "
                                 f"{self.ranges[field.name]}, got {spell(value)}")

    def trainer(self, model: StackedMLP, *, lr: float, batch_size: int,
                generators: list[np.random.Generator]) -> Trainer:
        raise NotImplementedError

    def describe(self) -> str:
        """``family:key=value,...`` with every setting spelled out."""
        return f"{self.family}:" + ",".join(f"{f.name}={spell(getattr(self, f.name))}"
                                            for f in dataclasses.fields(self))


def stacked_losses(model: StackedMLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each network's mean cross-entropy on its own rows: ``x [B, b, in]``, ``y [B, b]`` -> ``[B]``.

    Summing these gives every network the gradient of its own mean loss only.
    """
    logits = model(x)
    losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
    return losses.view(y.shape).mean(dim=1)


def parameters(model: StackedMLP) -> list[torch.nn.Parameter]:
    """Weights, then biases."""
    return list(model.weights) + list(model.biases)


def proximal_sgd_step(param: torch.Tensor, grad: torch.Tensor, stiffness: torch.Tensor,
                      anchor: torch.Tensor, lr: float) -> torch.Tensor:
    """The SGD step on ``loss + k / 2 (theta - theta*)^2`` taken implicitly in the penalty:
    ``(theta - lr g + lr k theta*) / (1 + lr k)``.

    Where ``lr k`` is small it is the explicit step ``theta - lr (g + k (theta - theta*))`` to
    first order; where it is not (a strong penalty on a weight with a large Fisher) the explicit
    step oscillates and diverges once ``lr k > 2``, while this one settles at the anchor, so a
    sweep can cover strong penalties without losing the run (docs/baselines.md).
    """
    return (param - lr * grad + lr * stiffness * anchor) / (1 + lr * stiffness)


def penalty_grad(params: list[torch.Tensor], stiffness: list[torch.Tensor],
                 anchor: list[torch.Tensor]) -> list[torch.Tensor]:
    """Gradient of ``sum k / 2 (theta - theta*)^2``: ``k (theta - theta*)``."""
    return [k * (p.detach() - a) for p, k, a in zip(params, stiffness, anchor)]


class Trainer:
    """Plain SGD on every parameter (the base of EWC and SI, and the interface)."""

    #: Whether ``end_item`` reads the presentation's training set (else it gets ``None``).
    uses_item_data: ClassVar[bool] = False

    def __init__(self, params: list[torch.Tensor], *, lr: float):
        self.params = list(params)
        self.lr = lr

    def begin_item(self) -> None:
        pass

    def compose(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, y

    def step(self, losses: torch.Tensor) -> None:
        self._sgd_step(self._task_grads(losses))

    def _sgd_step(self, grads: list[torch.Tensor]) -> None:
        """Plain SGD, with the method's quadratic penalty (if any) taken implicitly."""
        penalty = self.penalty()
        with torch.no_grad():
            for k, (p, g) in enumerate(zip(self.params, grads)):
                if penalty is None:
                    p.sub_(self.lr * g)
                else:
                    stiffness, anchor = penalty[0][k], penalty[1][k]
                    p.copy_(proximal_sgd_step(p, g, stiffness, anchor, self.lr))

    def penalty(self) -> tuple[list[torch.Tensor], list[torch.Tensor]] | None:
        """The quadratic penalty's stiffness k and anchor theta*, per parameter, or None."""
        return None

    def end_item(self, model: StackedMLP, x: torch.Tensor, y: torch.Tensor) -> None:
        pass

    def state_tensors(self) -> list[torch.Tensor]:
        """Every tensor the method keeps beside the weights (for its memory cost)."""
        return []

    def stored_examples(self) -> int:
        """Training examples kept per network."""
        return 0

    def _task_grads(self, losses: torch.Tensor) -> list[torch.Tensor]:
        for p in self.params:
            p.grad = None
        losses.sum().backward()
        return [p.grad for p in self.params]


class MetaplasticTrainer(Trainer):
    """The flexibility profiles: the library's MetaplasticSGD, consolidated at item boundaries."""

    def __init__(self, optimizer: MetaplasticSGD):
        self.optimizer = optimizer

    def begin_item(self) -> None:
        self.optimizer.consolidate()   # item boundary: S from the drift after the previous item (Eq. 2)

    def step(self, losses: torch.Tensor) -> None:
        # Gradients set to None, not zeroed: the backward pass then hands its fresh gradient
        # over instead of adding it to a zeroed buffer (two passes over every weight fewer; the
        # same numbers).
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.optimizer.step()

    def state_tensors(self) -> list[torch.Tensor]:
        return [v for state in self.optimizer.state.values() for v in state.values()
                if isinstance(v, torch.Tensor)]


def state_bytes_per_weight(trainer: Trainer, model: StackedMLP) -> float:
    """Bytes the method keeps per parameter, beyond the parameter itself (measured on its state)."""
    kept = sum(t.numel() * t.element_size() for t in trainer.state_tensors())
    return kept / sum(p.numel() for p in parameters(model))
