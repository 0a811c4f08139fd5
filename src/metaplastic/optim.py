"""``MetaplasticSGD``: the paper's metaplasticity rule as a PyTorch optimizer.

Three tiers, as in ``torch.optim``: the class (argument checks, per-parameter
state, ``consolidate()``), the functional update :func:`metaplastic_sgd`, and
two private kernels sharing one signature, a single-tensor reference and a
``foreach`` kernel for speed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import torch
from torch.optim import Optimizer

from metaplastic._checks import check_flexibility_tensor, check_number
from metaplastic.plasticity import ProfileSpec, plasticity_scale, resolve_profile

__all__ = ["MetaplasticSGD", "metaplastic_sgd"]


class MetaplasticSGD(Optimizer):
    r"""Stochastic gradient descent whose per-weight learning rate shrinks with drift.

    Every scaled weight :math:`w` gets, once, a flexibility :math:`f \in [0, 1]`
    drawn from a profile, and remembers its initial value :math:`w_0`. At each
    item boundary, :meth:`consolidate` fixes its learning-rate scale (paper,
    Eq. 2):

    .. math::
        S = 1 - \tanh^2\!\Big(\alpha \,\frac{1 - f}{f}\, (w - w_0)\Big),

    and every :meth:`step` until the next boundary applies (paper, Eq. 1):

    .. math::
        w \leftarrow w - \eta \, S \, \frac{\partial J}{\partial w}.

    ``f = 1`` is a conventional synapse (S = 1 always), ``f = 0`` never learns
    (S = 0, the reference implementation's choice where Eq. 2 reads inf * 0).
    Before the first ``consolidate()`` the drift is zero, so S = 1 for f > 0.

    Which parameters are scaled: those with ``dim >= 2`` (weights, also stacked
    ``[B, out, in]`` weights: the rule is elementwise). 1-d parameters (biases)
    learn at the plain rate, as in the paper, unless ``scale_biases=True``. A
    param group may set ``"scaled": True/False`` to decide for all of its
    parameters (useful for stacked biases shaped ``[B, out]``).

    Args:
        params: parameters or param groups. A group may override ``lr``,
            ``alpha``, ``flexibility``, ``momentum``, ``weight_decay``,
            ``scale_biases`` and ``scaled``.
        lr: learning rate :math:`\eta` (>= 0).
        alpha: width of S, Eq. 2 (>= 0). The reference uses 4e5 (10 items) and
            2e5 (30 items), tuned to its scale of ``dw`` (about 1e-6).
        flexibility: a profile (:mod:`metaplastic.plasticity`), a profile name
            (``"conventional"``, ``"stable"``, ``"hybrid"``), a number in [0, 1]
            (a constant profile) or a tensor with the shape of the parameter.
        momentum: heavy-ball momentum in [0, 1) (the paper uses 0).
        weight_decay: L2 penalty added to the gradient (the paper uses 0).
        generator: the ``torch.Generator`` the flexibilities are drawn from,
            for reproducible networks.
        scale_biases: scale 1-d parameters by S too.
        foreach: use the ``foreach`` kernel (default) or the single-tensor
            reference kernel (``False``). Both compute the same update.

    Departures from the paper, both off by default: with momentum or weight
    decay, S scales the whole step ``d = momentum * d + grad + wd * w``, so
    an f = 0 weight stays frozen whatever the other terms say.

    Memory: three extra tensors per scaled weight, each of the weight's size
    and dtype: its flexibility, its initial value and its current S (momentum
    adds a fourth, as in ``torch.optim.SGD``). For the paper's head
    (FC6 9216x4096, FC7 4096x4096, FC8 4096xN) that is 3 x 54.6 M floats,
    about 655 MB in float32, beside the 218 MB of the weights.

    Example:
        >>> import torch
        >>> from metaplastic import MetaplasticSGD
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = MetaplasticSGD(model.parameters(), lr=0.1, alpha=10.0,
        ...                      flexibility="hybrid", generator=torch.Generator().manual_seed(0))
        >>> for item in range(3):                 # three items learned in sequence
        ...     opt.consolidate()                 # item boundary: fix S from the drift so far
        ...     for _ in range(5):
        ...         opt.zero_grad()
        ...         model(torch.randn(8, 4)).pow(2).mean().backward()
        ...         opt.step()
        >>> bool(opt.state[model.weight]["scale"].le(1).all())
        True
    """

    def __init__(self, params: Iterable, lr: float, *, alpha: float,
                 flexibility: ProfileSpec, momentum: float = 0.0, weight_decay: float = 0.0,
                 generator: torch.Generator | None = None, scale_biases: bool = False,
                 foreach: bool | None = None):
        defaults = dict(lr=lr, alpha=alpha, flexibility=flexibility, momentum=momentum,
                        weight_decay=weight_decay, scale_biases=scale_biases, scaled=None,
                        foreach=foreach)
        self._generator = generator  # read by add_param_group, which super() calls
        super().__init__(params, defaults)

    # ------------------------------------------------------------------ state

    def add_param_group(self, param_group: dict) -> None:
        """Add a group, check its settings and draw its flexibilities (once)."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        _check_group(group)
        group["flexibility"] = resolve_profile(group["flexibility"])
        for index, p in enumerate(group["params"]):
            if not _is_scaled(p, group):
                continue
            name = f"flexibility of parameter {index} (shape {tuple(p.shape)})"
            f = group["flexibility"].sample(p.shape, self._generator)
            f = f.to(device=p.device, dtype=p.dtype)
            check_flexibility_tensor(name, f)
            state = self.state[p]
            state["flexibility"] = f
            state["initial"] = p.detach().clone()
            # Drift is zero before the first item boundary: S = 1 where f > 0, 0 where f = 0.
            state["scale"] = plasticity_scale(f, torch.zeros_like(f), group["alpha"])

    @torch.no_grad()
    def consolidate(self) -> None:
        """Mark an item boundary: recompute every S from ``dw = w - w_init`` (Eq. 2).

        S then stays fixed for every step until the next call (protocol.md
        section 1: dw is measured at the start of the current item).
        """
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state.get(p)
                if state and "scale" in state:
                    state["scale"].copy_(plasticity_scale(state["flexibility"],
                                                          p - state["initial"], group["alpha"]))

    # ------------------------------------------------------------------ update

    @torch.no_grad()
    def step(self, closure=None):
        """Apply ``w <- w - lr * S * grad`` to every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, scales, buffers = [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise ValueError("MetaplasticSGD does not support sparse gradients")
                state = self.state[p]
                params.append(p)
                grads.append(p.grad)
                scales.append(state.get("scale"))
                buffers.append(state.get("momentum_buffer"))
            metaplastic_sgd(params, grads, scales, buffers, lr=group["lr"],
                            momentum=group["momentum"], weight_decay=group["weight_decay"],
                            foreach=group["foreach"])
            if group["momentum"] != 0:
                for p, buffer in zip(params, buffers):
                    self.state[p]["momentum_buffer"] = buffer
        return loss


def _is_scaled(p: torch.Tensor, group: dict) -> bool:
    if group["scaled"] is not None:
        return bool(group["scaled"])
    return p.dim() >= 2 or group["scale_biases"]


def _check_group(group: dict) -> None:
    check_number("lr", group["lr"], low=0)
    check_number("alpha", group["alpha"], low=0)
    check_number("momentum", group["momentum"], low=0, high=1, high_open=True)
    check_number("weight_decay", group["weight_decay"], low=0)
    for p in group["params"]:
        if not torch.is_floating_point(p):
            raise ValueError(f"MetaplasticSGD needs floating-point parameters, got {p.dtype}")


# ---------------------------------------------------------------------- functional


def metaplastic_sgd(params: list[torch.Tensor], grads: list[torch.Tensor],
                    scales: list[torch.Tensor | None],
                    momentum_buffers: list[torch.Tensor | None], *, lr: float,
                    momentum: float = 0.0, weight_decay: float = 0.0,
                    foreach: bool | None = None) -> None:
    """Functional form of :class:`MetaplasticSGD`'s step.

    ``scales[i]`` is S for ``params[i]``, or ``None`` for a parameter that
    learns at the plain rate. With momentum, ``momentum_buffers`` is updated
    in place (a ``None`` entry is replaced by a new buffer).
    """
    kernel = _single_tensor_metaplastic_sgd if foreach is False else _multi_tensor_metaplastic_sgd
    kernel(params, grads, scales, momentum_buffers, lr=lr, momentum=momentum,
           weight_decay=weight_decay)


def _single_tensor_metaplastic_sgd(params, grads, scales, momentum_buffers, *, lr,
                                   momentum, weight_decay):
    """Reference kernel: one parameter at a time, the update exactly as written."""
    for i, (p, grad, scale) in enumerate(zip(params, grads, scales)):
        direction = grad if weight_decay == 0 else grad.add(p, alpha=weight_decay)
        if momentum != 0:
            buffer = momentum_buffers[i]
            if buffer is None:
                buffer = torch.clone(direction).detach()
                momentum_buffers[i] = buffer
            else:
                buffer.mul_(momentum).add_(direction)
            direction = buffer
        if scale is None:
            p.add_(direction, alpha=-lr)
        else:
            p.addcmul_(scale, direction, value=-lr)  # Eq. 1: w -= lr * S * dJ/dw


def _multi_tensor_metaplastic_sgd(params, grads, scales, momentum_buffers, *, lr,
                                  momentum, weight_decay):
    """``foreach`` kernel: one fused ``addcmul_`` pass per (device, dtype) bucket."""
    if not params:
        return
    directions = list(grads)
    if weight_decay != 0:
        directions = torch._foreach_add(directions, params, alpha=weight_decay)
    if momentum != 0:
        _momentum_foreach(directions, momentum_buffers, momentum)
        directions = list(momentum_buffers)
    for indices in _buckets(params).values():
        scaled = [i for i in indices if scales[i] is not None]
        plain = [i for i in indices if scales[i] is None]
        if scaled:
            torch._foreach_addcmul_([params[i] for i in scaled], [scales[i] for i in scaled],
                                    [directions[i] for i in scaled], value=-lr)
        if plain:
            torch._foreach_add_([params[i] for i in plain], [directions[i] for i in plain],
                                alpha=-lr)


def _momentum_foreach(directions, momentum_buffers, momentum):
    existing = [i for i, b in enumerate(momentum_buffers) if b is not None]
    for i, b in enumerate(momentum_buffers):
        if b is None:
            momentum_buffers[i] = torch.clone(directions[i]).detach()
    if existing:
        buffers = [momentum_buffers[i] for i in existing]
        torch._foreach_mul_(buffers, momentum)
        torch._foreach_add_(buffers, [directions[i] for i in existing])


def _buckets(params) -> dict:
    """Indices of the parameters grouped by (device, dtype): foreach ops need one of each."""
    buckets: dict = defaultdict(list)
    for i, p in enumerate(params):
        buckets[(p.device, p.dtype)].append(i)
    return buckets
