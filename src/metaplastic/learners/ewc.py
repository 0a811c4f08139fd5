"""Elastic weight consolidation (Kirkpatrick et al. 2017), online form (Schwarz et al. 2018).

After item k, the diagonal empirical Fisher information
``F_k = mean_i (d log p(y_i | x_i) / d theta)^2`` over the item's training examples (exact
per-example squares, :func:`stacked_fisher`) is folded into ``F <- decay F + F_k`` and the
weights are anchored, ``theta* <- theta``. Training then minimises
``L + lam / 2 sum F (theta - theta*)^2``, the penalty taken by an implicit step
(:func:`~metaplastic.learners.base.proximal_sgd_step`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from metaplastic.classifier import StackedMLP
from metaplastic.learners.base import Method, Range, Trainer, parameters
from metaplastic.learners.registry import register


@register
@dataclass(frozen=True)
class EWC(Method):
    """Online EWC: penalty strength ``lam``, Fisher decay per item ``decay`` (1: plain sum)."""

    lam: float = 1e2
    decay: float = 0.9
    family: ClassVar[str] = "ewc"
    colour: ClassVar[str] = "#CC79A7"
    summary: ClassVar[str] = "online elastic weight consolidation (lam, decay)"
    ranges: ClassVar[dict[str, Range]] = {"lam": Range(0), "decay": Range(0, 1)}

    def trainer(self, model, *, lr, batch_size, generators) -> Trainer:
        return EWCTrainer(parameters(model), lr=lr, learner=self)


def stacked_fisher(model: StackedMLP, x: torch.Tensor, y: torch.Tensor,
                   chunk: int = 512) -> list[torch.Tensor]:
    """Diagonal empirical Fisher of every stacked network on its rows (``x [B, M, in]``, ``y [B, M]``):
    ``mean_i g_i^2`` with ``g_i`` the gradient of example i's log-likelihood, for the weights then
    the biases (the order of :func:`~metaplastic.learners.base.parameters`).

    Exact, without per-example backward passes: for a linear layer ``z = a W + b`` the
    gradient of example i is ``a_i^T delta_i``, so ``sum_i g_i^2 = (a^2)^T (delta^2)``, where
    ``delta_i = d loss_i / d z_i`` comes from one backward pass of the summed loss (example i's
    loss reaches only its own row). Dropout is off here (the Fisher of the deterministic net).
    """
    sums = [torch.zeros_like(p) for p in parameters(model)]
    layers = len(model.weights)
    rows = x.shape[1]
    with torch.enable_grad():
        for start in range(0, rows, chunk):
            inputs, pre = model.layer_values(x[:, start:start + chunk])
            yc = y[:, start:start + chunk]
            loss = F.cross_entropy(pre[-1].flatten(0, 1), yc.flatten(), reduction="sum")
            deltas = torch.autograd.grad(loss, pre)
            for layer, (a, d) in enumerate(zip(inputs, deltas)):
                d2 = d.detach().square()
                sums[layer] += torch.bmm(a.detach().square().transpose(1, 2), d2)
                sums[layers + layer] += d2.sum(dim=1)
    return [s / rows for s in sums]


def ewc_stiffness(fisher: list[torch.Tensor], lam: float) -> list[torch.Tensor]:
    """EWC's penalty ``lam / 2 sum F (theta - theta*)^2`` as ``k / 2 (theta - theta*)^2``:
    ``k = lam F``; its gradient is ``lam F (theta - theta*)``."""
    return [lam * f for f in fisher]


class EWCTrainer(Trainer):
    uses_item_data = True

    def __init__(self, params, *, lr: float, learner: EWC):
        super().__init__(params, lr=lr)
        self.learner = learner
        self.fisher: list[torch.Tensor] | None = None
        self.anchor: list[torch.Tensor] | None = None

    def consolidate(self, fisher: list[torch.Tensor]) -> None:
        """Fold an item's Fisher into the running one and anchor at the current weights."""
        if self.fisher is None:
            self.fisher = [f.clone() for f in fisher]
        else:
            self.fisher = [self.learner.decay * old + new for old, new in zip(self.fisher, fisher)]
        self.anchor = [p.detach().clone() for p in self.params]

    def end_item(self, model, x, y) -> None:
        self.consolidate(stacked_fisher(model, x, y))

    def penalty(self):
        if self.fisher is None:
            return None
        return ewc_stiffness(self.fisher, self.learner.lam), self.anchor

    def state_tensors(self):
        return (self.fisher or []) + (self.anchor or [])
