"""Established continual-learning methods, trained beside the flexibility profiles (issue 11).

A *learner* is what one stacked network is trained as (design.md): a
flexibility profile with :class:`~metaplastic.MetaplasticSGD`, or one of the
baselines below. The paper argues that its rule needs no extra machinery,
unlike EWC (a Fisher matrix), synaptic intelligence (a path integral) or replay
(stored examples); these baselines let the lab run that comparison on the
paper's own protocols. Each one is short and written here, without a framework:

* :class:`EWC`, elastic weight consolidation (Kirkpatrick et al. 2017) in its
  online form (Schwarz et al. 2018). After item k, the diagonal empirical
  Fisher information ``F_k = mean_i (d log p(y_i | x_i) / d theta)^2`` over the
  item's training examples (exact per-example squares, see :func:`stacked_fisher`)
  is folded into ``F <- decay F + F_k`` and the weights are anchored,
  ``theta* <- theta``. Training then minimises
  ``L + lam / 2 sum F (theta - theta*)^2``: the penalty adds
  ``lam F (theta - theta*)`` to the gradient.
* :class:`SI`, synaptic intelligence (Zenke et al. 2017). During an item,
  ``omega -= g * delta_theta`` at every step (g: the gradient of the task loss
  alone, delta_theta: the step actually taken); at its end
  ``Omega += omega / (Delta^2 + xi)`` with Delta the item's total change, omega
  is reset and theta* anchored. Penalty ``c sum Omega (theta - theta*)^2``.
* :class:`Replay`, experience replay with a reservoir buffer (Vitter's
  algorithm R) of ``buffer`` past training examples per network: every
  mini-batch of the current presentation gets up to ``replay_batch`` examples
  drawn from the buffer appended (default: as many as the mini-batch holds); at
  the end of each presentation its examples enter the reservoir. Draws come
  from each network's own generator, so no other network's random stream moves.
* :class:`MetaAdam`, the metaplastic rule of Laborieux et al. (2021) for real
  weights: Adam's update U, except that where ``U * w > 0`` (the step
  ``w - lr U`` shrinks ``|w|``) it is multiplied by ``1 - tanh^2(m |w|)``.
  Biases take plain Adam steps (as the profiles' biases take plain SGD steps).

EWC, SI and replay take plain SGD steps at the run's learning rate, as the
conventional network does (``sgd`` is that network under its own name), so
they differ from it only by their method. One deviation, numerical: the
quadratic penalties ``k / 2 (theta - theta*)^2`` (``k = lam F`` for EWC,
``2 c Omega`` for SI) are applied by an implicit (proximal) step,
``theta <- (theta - lr g + lr k theta*) / (1 + lr k)``, the exact minimiser of
the linearised loss plus the penalty. Where ``lr k`` is small it is the explicit
step ``theta - lr (g + k (theta - theta*))`` to first order; where it is not
(a strong penalty on a weight with a large Fisher), the explicit step
oscillates and diverges once ``lr k > 2``, while this one settles at the
anchor, so a sweep can cover strong penalties without losing the run. Every trainer here works on stacked
parameters ``[B, ...]``: each network's loss reaches only its own slice, so
stacked networks stay independent.
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

# --------------------------------------------------------------------------- the methods' settings


@dataclass(frozen=True)
class EWC:
    """Online EWC: penalty strength ``lam``, Fisher decay per item ``decay`` (1: plain sum)."""

    lam: float = 1e2
    decay: float = 0.9
    family: ClassVar[str] = "ewc"


@dataclass(frozen=True)
class SI:
    """Synaptic intelligence: penalty strength ``c``, damping ``xi`` (Zenke et al.: 1e-3)."""

    c: float = 1e4
    xi: float = 1e-3
    family: ClassVar[str] = "si"


@dataclass(frozen=True)
class Replay:
    """Reservoir replay: ``buffer`` stored examples per network, ``replay_batch`` per mini-batch
    (0: as many as the current mini-batch holds)."""

    buffer: int = 3000
    replay_batch: int = 0
    family: ClassVar[str] = "replay"


@dataclass(frozen=True)
class MetaAdam:
    """Laborieux et al. (2021) for real weights: Adam at ``lr`` with metaplasticity ``m``."""

    m: float = 30.0
    lr: float = 1e-6
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    family: ClassVar[str] = "meta-adam"


Baseline = EWC | SI | Replay | MetaAdam

#: The families by name; a learner name is ``family`` or ``family:key=value,key=value``.
FAMILIES: dict[str, type] = {cls.family: cls for cls in (EWC, SI, Replay, MetaAdam)}

#: The settings each family takes when a name gives none: the choices of the recorded sweep at
#: the quick preset (scripts/sweep_learners.py, 2 trials, seed 0; docs/calibration.md,
#: "Baselines"). Runs record every setting (``RunConfig.learner_settings``), so a change of
#: these never mixes two settings in one run folder.
DEFAULTS: dict[str, Baseline] = {cls.family: cls() for cls in (EWC, SI, Replay, MetaAdam)}


def parse(name: str) -> Baseline:
    """The baseline a learner name stands for: ``ewc``, ``ewc:lam=1e4``, ``replay:buffer=50``.

    >>> parse("ewc:lam=10")
    EWC(lam=10.0, decay=0.9)
    """
    family, _, settings = name.partition(":")
    if family not in FAMILIES:
        raise ValueError(f"unknown learner {name!r}; baselines: {', '.join(FAMILIES)} "
                         "(optionally with settings, e.g. ewc:lam=1e4,decay=1)")
    learner = DEFAULTS[family]
    if not settings:
        return learner
    fields = {f.name: f for f in dataclasses.fields(learner)}
    values = {}
    for entry in settings.split(","):
        key, equals, value = entry.partition("=")
        if not equals or key not in fields:
            raise ValueError(f"learner {name!r}: {entry!r} is not key=value with key one of "
                             f"{', '.join(fields)}")
        cast = type(getattr(learner, key))
        try:
            values[key] = cast(float(value)) if cast is int else cast(value)
        except ValueError:
            raise ValueError(f"learner {name!r}: {key} must be a number, got {value!r}") from None
    return dataclasses.replace(learner, **values)


def describe(name: str) -> str:
    """A learner name with every setting spelled out, for the run's record."""
    learner = parse(name)
    return f"{name} = {learner.family}:" + ",".join(
        f"{f.name}={getattr(learner, f.name):g}" for f in dataclasses.fields(learner))


def is_baseline(name: str) -> bool:
    return name.partition(":")[0] in FAMILIES


# --------------------------------------------------------------------------- the math, as functions


def stacked_losses(model: StackedMLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each network's mean cross-entropy on its own rows: ``x [B, b, in]``, ``y [B, b]`` -> ``[B]``.

    Summing these gives every network the gradient of its own mean loss only.
    """
    logits = model(x)
    losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
    return losses.view(y.shape).mean(dim=1)


def stacked_fisher(model: StackedMLP, x: torch.Tensor, y: torch.Tensor,
                   chunk: int = 512) -> list[torch.Tensor]:
    """Diagonal empirical Fisher of every stacked network on its rows (``x [B, M, in]``, ``y [B, M]``):
    ``mean_i g_i^2`` with ``g_i`` the gradient of example i's log-likelihood, for the weights then
    the biases (the order of :func:`parameters`).

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


def si_stiffness(importance: list[torch.Tensor], c: float) -> list[torch.Tensor]:
    """SI's penalty ``c sum Omega (theta - theta*)^2`` as ``k / 2 (theta - theta*)^2``:
    ``k = 2 c Omega``; its gradient is ``2 c Omega (theta - theta*)``."""
    return [2 * c * o for o in importance]


def penalty_grad(params: list[torch.Tensor], stiffness: list[torch.Tensor],
                 anchor: list[torch.Tensor]) -> list[torch.Tensor]:
    """Gradient of ``sum k / 2 (theta - theta*)^2``: ``k (theta - theta*)``."""
    return [k * (p.detach() - a) for p, k, a in zip(params, stiffness, anchor)]


def proximal_sgd_step(param: torch.Tensor, grad: torch.Tensor, stiffness: torch.Tensor,
                      anchor: torch.Tensor, lr: float) -> torch.Tensor:
    """The SGD step on ``loss + k / 2 (theta - theta*)^2`` taken implicitly in the penalty:
    ``(theta - lr g + lr k theta*) / (1 + lr k)`` (module docstring)."""
    return (param - lr * grad + lr * stiffness * anchor) / (1 + lr * stiffness)


def si_importance(importance: torch.Tensor, omega: torch.Tensor, change: torch.Tensor,
                  xi: float) -> torch.Tensor:
    """Zenke et al. Eq. 5: ``Omega + omega / (Delta^2 + xi)``."""
    return importance + omega / (change.square() + xi)


def meta_adam_update(param: torch.Tensor, update: torch.Tensor, m: float) -> torch.Tensor:
    """Laborieux et al. (2021): the Adam update ``U`` with ``1 - tanh^2(m |w|)`` applied where
    ``U * w > 0``, i.e. where the step ``w - lr U`` drives ``|w|`` down (toward zero)."""
    shrinks = update * param > 0
    meta = 1 - torch.tanh(m * param.abs()).square()
    return torch.where(shrinks, update * meta, update)


def parameters(model: StackedMLP) -> list[torch.nn.Parameter]:
    """Weights, then biases."""
    return list(model.weights) + list(model.biases)


# --------------------------------------------------------------------------- trainers
#
# A trainer trains the stacked networks of one learner. The engine calls, per presentation:
# ``begin_item()``; for every mini-batch ``x, y = compose(x, y)``, the losses, ``step(losses)``;
# then ``end_item(model, x, y)`` with the presentation's whole training set.


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


class ReplayTrainer(Trainer):
    """Plain SGD on each mini-batch plus examples replayed from each network's reservoir."""

    uses_item_data = True

    def __init__(self, params, *, lr: float, learner: Replay, batch_size: int,
                 generators: list[np.random.Generator]):
        super().__init__(params, lr=lr)
        self.learner = learner
        self.per_batch = learner.replay_batch or batch_size
        self.generators = generators            # one per network: its own draws only
        self.x: torch.Tensor | None = None      # [B, buffer, in]
        self.y: torch.Tensor | None = None      # [B, buffer]
        self.filled = 0
        self.seen = 0

    def compose(self, x, y):
        count = min(self.filled, self.per_batch)
        if count == 0:
            return x, y
        rows = torch.as_tensor(np.stack([g.choice(self.filled, count, replace=False)
                                         for g in self.generators]), device=x.device)
        replay_x = torch.gather(self.x, 1, rows.unsqueeze(-1).expand(-1, -1, self.x.shape[2]))
        return torch.cat([x, replay_x], dim=1), torch.cat([y, torch.gather(self.y, 1, rows)], dim=1)

    def end_item(self, model, x, y) -> None:
        """Reservoir sampling (algorithm R) over the stream of every example trained on."""
        size = self.learner.buffer
        if self.x is None:
            self.x = x.new_zeros(x.shape[0], size, x.shape[2])
            self.y = y.new_zeros(y.shape[0], size)
        for row in range(x.shape[1]):
            self.seen += 1
            if self.filled < size:
                slots = [self.filled] * x.shape[0]
                self.filled += 1
            else:   # the n-th example replaces a random slot with probability size / n
                slots = [int(g.integers(self.seen)) for g in self.generators]
            for b, slot in enumerate(slots):
                if slot < size:
                    self.x[b, slot] = x[b, row]
                    self.y[b, slot] = y[b, row]

    def state_tensors(self):
        return []           # its cost is the stored examples, counted apart

    def stored_examples(self) -> int:
        return self.learner.buffer


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


def make_trainer(name: str, model: StackedMLP, *, lr: float, batch_size: int,
                 generators: list[np.random.Generator]) -> Trainer:
    """The trainer of a baseline learner for the stacked networks of ``model``."""
    learner = parse(name)
    if isinstance(learner, EWC):
        return EWCTrainer(parameters(model), lr=lr, learner=learner)
    if isinstance(learner, SI):
        return SITrainer(parameters(model), lr=lr, learner=learner)
    if isinstance(learner, Replay):
        return ReplayTrainer(parameters(model), lr=lr, learner=learner, batch_size=batch_size,
                             generators=generators)
    return MetaAdamTrainer(model.weights, model.biases, learner=learner)


def state_bytes_per_weight(trainer: Trainer, model: StackedMLP) -> float:
    """Bytes the method keeps per parameter, beyond the parameter itself (measured on its state)."""
    kept = sum(t.numel() * t.element_size() for t in trainer.state_tensors())
    return kept / sum(p.numel() for p in parameters(model))


def steps_per_presentation(examples: int, batch_size: int, epochs: int) -> int:
    return epochs * math.ceil(examples / batch_size)


__all__ = ["DEFAULTS", "EWC", "FAMILIES", "SI", "MetaAdam", "Replay", "describe", "is_baseline",
           "make_trainer", "parse", "stacked_fisher"]
