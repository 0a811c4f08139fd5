"""The metaplastic rule of Laborieux et al. (2021) for real weights.

Adam's update U, except that where ``U * w > 0`` (the step ``w - lr U`` shrinks ``|w|``) it is
multiplied by ``1 - tanh^2(m |w|)``. Biases take plain Adam steps (as the profiles' biases take
plain SGD steps). Its learning rate is its own setting, not the run's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from metaplastic.learners.base import Method, Range, Trainer
from metaplastic.learners.registry import register


@register
@dataclass(frozen=True)
class MetaAdam(Method):
    """Laborieux et al. (2021) for real weights: Adam at ``lr`` with metaplasticity ``m``."""

    m: float = 30.0
    lr: float = 1e-6
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    family: ClassVar[str] = "meta-adam"
    colour: ClassVar[str] = "#000000"
    summary: ClassVar[str] = "Adam with Laborieux et al.'s metaplasticity (m, lr, beta1, beta2, eps)"
    ranges: ClassVar[dict[str, Range]] = {
        "m": Range(0), "lr": Range(0, closed_low=False), "beta1": Range(0, 1, closed_high=False),
        "beta2": Range(0, 1, closed_high=False), "eps": Range(0, closed_low=False)}

    def trainer(self, model, *, lr, batch_size, generators) -> Trainer:
        return MetaAdamTrainer(model.weights, model.biases, learner=self)


def meta_adam_update(param: torch.Tensor, update: torch.Tensor, m: float) -> torch.Tensor:
    """Laborieux et al. (2021): the Adam update ``U`` with ``1 - tanh^2(m |w|)`` applied where
    ``U * w > 0``, i.e. where the step ``w - lr U`` drives ``|w|`` down (toward zero)."""
    shrinks = update * param > 0
    meta = 1 - torch.tanh(m * param.abs()).square()
    return torch.where(shrinks, update * meta, update)


class MetaAdamTrainer(Trainer):
    """Adam; on the weights, updates that shrink |w| are scaled by 1 - tanh^2(m |w|)."""

    def __init__(self, weights, biases, *, learner: MetaAdam):
        super().__init__(list(weights) + list(biases), lr=learner.lr)
        self.learner = learner
        self.scaled = [True] * len(weights) + [False] * len(biases)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = 0

    def step(self, losses: torch.Tensor) -> None:
        grads = self._task_grads(losses)
        lr, beta1, beta2 = self.learner.lr, self.learner.beta1, self.learner.beta2
        self.steps += 1
        correction1, correction2 = 1 - beta1 ** self.steps, 1 - beta2 ** self.steps
        with torch.no_grad():
            for p, g, avg, avg_sq, scaled in zip(self.params, grads, self.exp_avg, self.exp_avg_sq,
                                                 self.scaled):
                avg.mul_(beta1).add_(g, alpha=1 - beta1)
                avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                update = (avg / correction1) / ((avg_sq / correction2).sqrt() + self.learner.eps)
                if scaled:
                    update = meta_adam_update(p, update, self.learner.m)
                p.sub_(lr * update)

    def state_tensors(self):
        return self.exp_avg + self.exp_avg_sq
