"""Synaptic intelligence (Zenke et al. 2017).

During an item, ``omega -= g * delta_theta`` at every step (g: the gradient of the task loss
alone, delta_theta: the step actually taken); at its end ``Omega += omega / (Delta^2 + xi)``
with Delta the item's total change, omega is reset and theta* anchored. Penalty
``c sum Omega (theta - theta*)^2``, taken by an implicit step
(:func:`~metaplastic.learners.base.proximal_sgd_step`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from metaplastic.learners.base import Method, Range, Trainer, parameters
from metaplastic.learners.registry import register


@register
@dataclass(frozen=True)
class SI(Method):
    """Synaptic intelligence: penalty strength ``c``, damping ``xi`` (Zenke et al.: 1e-3)."""

    c: float = 1e4
    xi: float = 1e-3
    family: ClassVar[str] = "si"
    colour: ClassVar[str] = "#E69F00"
    summary: ClassVar[str] = "synaptic intelligence (c, xi)"
    ranges: ClassVar[dict[str, Range]] = {"c": Range(0), "xi": Range(0, closed_low=False)}

    def trainer(self, model, *, lr, batch_size, generators) -> Trainer:
        return SITrainer(parameters(model), lr=lr, learner=self)


def si_stiffness(importance: list[torch.Tensor], c: float) -> list[torch.Tensor]:
    """SI's penalty ``c sum Omega (theta - theta*)^2`` as ``k / 2 (theta - theta*)^2``:
    ``k = 2 c Omega``; its gradient is ``2 c Omega (theta - theta*)``."""
    return [2 * c * o for o in importance]


def si_importance(importance: torch.Tensor, omega: torch.Tensor, change: torch.Tensor,
                  xi: float) -> torch.Tensor:
    """Zenke et al. Eq. 5: ``Omega + omega / (Delta^2 + xi)``."""
    return importance + omega / (change.square() + xi)


class SITrainer(Trainer):
    def __init__(self, params, *, lr: float, learner: SI):
        super().__init__(params, lr=lr)
        self.learner = learner
        self.omega = [torch.zeros_like(p) for p in self.params]
        self.importance = [torch.zeros_like(p) for p in self.params]
        self.start: list[torch.Tensor] = []
        self.anchor: list[torch.Tensor] | None = None

    def begin_item(self) -> None:
        self.start = [p.detach().clone() for p in self.params]

    def penalty(self):
        if self.anchor is None:
            return None
        return si_stiffness(self.importance, self.learner.c), self.anchor

    def step(self, losses: torch.Tensor) -> None:
        grads = self._task_grads(losses)
        before = [p.detach().clone() for p in self.params]
        self._sgd_step(grads)
        with torch.no_grad():   # path integral of the task gradient over the step taken (Zenke Eq. 3)
            for p, g, old, omega in zip(self.params, grads, before, self.omega):
                omega.sub_(g * (p - old))

    def end_item(self, model, x, y) -> None:
        with torch.no_grad():
            for k, p in enumerate(self.params):
                self.importance[k] = si_importance(self.importance[k], self.omega[k],
                                                   p - self.start[k], self.learner.xi)
                self.omega[k].zero_()
            self.anchor = [p.detach().clone() for p in self.params]

    def state_tensors(self):
        return self.omega + self.importance + self.start + (self.anchor or [])
