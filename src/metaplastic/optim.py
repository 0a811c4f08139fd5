"""``MetaplasticSGD``: the paper's metaplasticity rule as a PyTorch optimizer.

Three tiers, as in ``torch.optim``: the class (checks, state, ``consolidate()``), the
functional :func:`metaplastic_sgd`, and three private kernels of one signature: single-tensor,
``foreach`` (the default) and ``fused`` (a compact S read in one ``torch.compile``-d pass).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch
from torch.optim import Optimizer

from metaplastic._checks import check_flexibility_tensor, check_master_dtype, check_number, check_scale_dtype
from metaplastic.plasticity import Constant, ProfileSpec, describe_profile, plasticity_scale_, resolve_profile

__all__ = ["MetaplasticSGD", "metaplastic_sgd", "METAPLASTIC_STATE_KEYS"]

#: The per-parameter state entries that carry the rule (momentum buffers aside):
#: what must survive when a training framework resets an optimizer's state.
METAPLASTIC_STATE_KEYS = ("flexibility", "flexibility_rng", "initial", "scale")


class MetaplasticSGD(Optimizer):
    r"""Stochastic gradient descent whose per-weight learning rate shrinks with drift.

    The metaplasticity rule of Cho, Lee, Baek & Paik, *Neuromimetic metaplasticity for
    adaptive continual learning*. Each scaled weight :math:`w` (``dim >= 2`` by default) gets
    once a flexibility :math:`f \in [0, 1]` and remembers its initial value :math:`w_0`. At
    each item boundary :meth:`consolidate` sets S (Eq. 2), which every :meth:`step` applies
    until the next boundary (Eq. 1):

    .. math::
        S = 1 - \tanh^2\!\Big(\alpha \,\frac{1 - f}{f}\, (w - w_0)\Big), \qquad
        w \leftarrow w - \eta \, S \, \frac{\partial J}{\partial w}.

    Which parameters are scaled, the state (lazy, following the model), memory, kernels,
    departures from the paper: docs/optimizer.md, section "MetaplasticSGD in detail".

    Args:
        params: parameters or param groups (a group may override any keyword, and set ``scaled``).
        lr: learning rate :math:`\eta` (>= 0).
        alpha: width of S in Eq. 2 (>= 0); see :func:`metaplastic.suggest_alpha`.
        flexibility: a profile, its name (``"conventional"``, ``"stable"``, ``"hybrid"``), a
            number in [0, 1] or a tensor shaped like the parameter.
        momentum, weight_decay: heavy-ball momentum in [0, 1) and L2 penalty (the paper: 0, 0).
        generator: the ``torch.Generator`` the flexibilities are drawn from.
        scale_biases, scale_dtype: scale 1-d parameters too; the dtype S is kept in.
        foreach, fused: the kernel: ``foreach`` (default), single-tensor or compiled.

    Example:
        >>> import torch
        >>> from metaplastic import MetaplasticSGD
        >>> _ = torch.manual_seed(0)
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = MetaplasticSGD(model.parameters(), lr=0.1, alpha=10.0, flexibility="hybrid")
        >>> for item in range(3):                 # three items learned in sequence
        ...     opt.consolidate()                 # item boundary: fix S from the drift so far
        ...     for _ in range(5):
        ...         opt.zero_grad()
        ...         model(torch.randn(8, 4)).pow(2).mean().backward()
        ...         opt.step()
        >>> bool(opt.state[model.weight]["scale"].lt(1).any())   # the drift lowered some rates
        True
    """

    def __init__(self, params: Iterable, lr: float, *, alpha: float,
                 flexibility: ProfileSpec, momentum: float = 0.0, weight_decay: float = 0.0,
                 generator: torch.Generator | None = None, scale_biases: bool = False,
                 scale_dtype: torch.dtype | str | None = None, foreach: bool | None = None,
                 fused: bool | None = None):
        defaults = dict(lr=lr, alpha=alpha, flexibility=flexibility, momentum=momentum,
                        weight_decay=weight_decay, scale_biases=scale_biases, scaled=None,
                        scale_dtype=scale_dtype, foreach=foreach, fused=fused)
        self._generator = generator  # read by add_param_group, which super() calls
        super().__init__(params, defaults)

    # ------------------------------------------------------------------ state

    def add_param_group(self, param_group: dict) -> None:
        """Add a group, check its settings and draw its flexibilities (once)."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        group["scale_dtype"] = check_scale_dtype(group["scale_dtype"])
        _check_group(group)
        profile = resolve_profile(group["flexibility"])
        group["flexibility"] = describe_profile(profile)   # plain data: state_dict loads weights_only
        group.setdefault("generator_device", None)           # where the kept generator states redraw
        for index, p in enumerate(group["params"]):
            if _is_scaled(p, group) and _group_has_state(group) and p.requires_grad:
                check_master_dtype(f"parameter {index} (shape {tuple(p.shape)})", p.dtype)
                self._draw_flexibility(p, group, profile, index)

    def _draw_flexibility(self, p: torch.Tensor, group: dict, profile, index: int) -> None:
        """Draw ``p``'s flexibilities; keep them, or only the generator state to redraw them."""
        if isinstance(profile, Constant):
            return              # one number, kept in the param group's description
        state = self.state[p]
        name = f"flexibility of parameter {index} (shape {tuple(p.shape)})"
        generator = self._generator
        if getattr(profile, "regenerable", False):
            if generator is None:
                # Draw from a copy of the global generator, then advance the global one past
                # the draw: the same numbers as drawing from it directly, and a state to keep.
                generator = torch.Generator()
                generator.set_state(torch.get_rng_state())
                rng = generator.get_state()
                f = profile.sample(p.shape, generator)
                torch.set_rng_state(generator.get_state())
            else:
                rng = generator.get_state()
                f = profile.sample(p.shape, generator)
            check_flexibility_tensor(name, f)
            state["flexibility_rng"] = rng
            group["generator_device"] = str(generator.device)
        else:
            f = profile.sample(p.shape, generator)
            check_flexibility_tensor(name, f)
            state["flexibility"] = f

    def _flexibility_source(self, p: torch.Tensor, group: dict, state: dict) -> torch.Tensor:
        """``p``'s flexibilities as kept: a 0-d tensor (constant), the stored tensor in its own
        dtype, or a redraw from the kept generator state (at most one tensor of ``p``'s size)."""
        spec = group["flexibility"]
        if spec["profile"] == "constant":
            return torch.tensor(spec["value"], dtype=p.dtype, device=p.device)
        self._draw_missing_flexibility(p, group, state)
        if "flexibility" in state:
            return state["flexibility"]
        # Redraw from the kept generator state: the values drawn at construction.
        generator = torch.Generator(device=group["generator_device"])
        generator.set_state(state["flexibility_rng"])
        return resolve_profile(spec).sample(p.shape, generator).to(device=p.device)

    def _draw_missing_flexibility(self, p: torch.Tensor, group: dict, state: dict) -> None:
        """Draw ``p``'s flexibilities if it has none yet (unfrozen, or added to a group by hand)."""
        spec = group["flexibility"]
        if spec["profile"] != "constant" and "flexibility" not in state and "flexibility_rng" not in state:
            index = next(i for i, q in enumerate(group["params"]) if q is p)
            self._draw_flexibility(p, group, resolve_profile(spec), index)

    def flexibility_of(self, p: torch.Tensor) -> torch.Tensor:
        """The flexibilities of parameter ``p`` (a tensor of its shape), however they are kept."""
        for group in self.param_groups:
            if any(q is p for q in group["params"]):
                if not _is_scaled(p, group):
                    raise ValueError(f"parameter of shape {tuple(p.shape)} is not scaled by S: "
                                     "it has no flexibility")
                f = self._flexibility_source(p, group, self.state[p])
                return f.expand_as(p) if f.dim() == 0 else f.to(device=p.device, dtype=p.dtype)
        raise ValueError(f"parameter of shape {tuple(p.shape)} is not in this optimizer")

    @torch.no_grad()
    def drifts(self) -> list[torch.Tensor]:
        """``w - w_0`` of every parameter that keeps an initial weight (for :func:`suggest_alpha`)."""
        return [p.detach() - state["initial"] for group in self.param_groups for p in group["params"]
                if (state := self.state.get(p)) and "initial" in state]

    def _prepare(self, p: torch.Tensor, group: dict, state: dict) -> None:
        """Create ``p``'s initial weight and S lazily, or move them to where ``p`` now is."""
        scale_dtype = _scale_dtype(group, p)
        initial = state.get("initial")
        moved = initial is not None and (initial.device != p.device or initial.dtype != p.dtype)
        if initial is None or moved:
            check_master_dtype(f"parameter of shape {tuple(p.shape)}", p.dtype)
            if "flexibility" in state:
                state["flexibility"] = state["flexibility"].to(device=p.device)
        if initial is None:
            state["initial"] = p.detach().clone()
            state["scale"] = torch.empty_like(p, dtype=scale_dtype, memory_format=torch.preserve_format)
            self._update_scale(p, group, state)     # dw = 0: S = 1 where f > 0, 0 where f = 0
            return
        if moved:
            state["initial"] = initial.to(device=p.device, dtype=p.dtype)
            if "momentum_buffer" in state:
                state["momentum_buffer"] = state["momentum_buffer"].to(device=p.device, dtype=p.dtype)
        scale = state["scale"]
        if scale.device != p.device or scale.dtype != scale_dtype:
            state["scale"] = scale.to(device=p.device, dtype=scale_dtype)

    def _update_scale(self, p: torch.Tensor, group: dict, state: dict) -> None:
        """S of Eq. 2 from ``dw = w - w0``, written into ``state["scale"]`` a chunk at a time
        (bit-identical to ``plasticity_scale`` on the whole tensor; no full-size temporary)."""
        f = self._flexibility_source(p, group, state)
        plasticity_scale_(state["scale"], f, p.detach(), state["initial"], group["alpha"])

    def _init_group(self, group: dict, params: list, scales: list, grads: list | None = None,
                    momentum_buffers: list | None = None, fresh: list | None = None) -> None:
        """Gather ``group``'s tensors, creating w0 and S lazily (or moving them to the parameter).

        For :meth:`step` (``grads`` given): each parameter with a gradient (but the scaled ones of
        an f = 0 group), its S (``None``: plain rate), gradient and momentum buffer. For
        :meth:`consolidate`: each scaled parameter that keeps state and requires grad, its S, and
        in ``fresh`` whether that state was created now."""
        boundary = grads is None
        spec = group["flexibility"]
        frozen = spec["profile"] == "constant" and spec["value"] == 0
        stateful = _group_has_state(group)
        for p in group["params"]:
            scaled = _is_scaled(p, group)
            if boundary:
                if not (stateful and scaled and p.requires_grad):
                    continue
            elif p.grad is None:
                continue
            elif p.grad.is_sparse:
                raise ValueError("MetaplasticSGD does not support sparse gradients")
            elif scaled and frozen:
                continue                         # f = 0 everywhere: S = 0, the step is a no-op
            state = self.state[p]
            scale = None
            if scaled and stateful:
                first = "initial" not in state   # first boundary or step: w0 = w, dw = 0
                self._prepare(p, group, state)
                scale = state["scale"]
                if boundary:
                    fresh.append(first)
                    if not first:                # w0 kept without f: draw f now, in parameter order
                        self._draw_missing_flexibility(p, group, state)
            params.append(p)
            scales.append(scale)
            if not boundary:
                grads.append(p.grad)
                momentum_buffers.append(state.get("momentum_buffer"))

    @torch.no_grad()
    def consolidate(self) -> None:
        """Mark an item boundary: recompute every S from ``dw = w - w_0`` (Eq. 2), fixed until
        the next call (docs/protocol.md section 1). The first call takes w_0 from the parameters."""
        for group in self.param_groups:
            params, scales, fresh = [], [], []
            self._init_group(group, params, scales, fresh=fresh)
            for p, first in zip(params, fresh):
                if not first:                      # a first boundary has w0 = w: S is already set
                    self._update_scale(p, group, self.state[p])

    @torch.no_grad()
    def reanchor(self) -> None:
        """Take the current weights as the initial weights ``w_0`` (drift 0, S = 1 where f > 0);
        flexibilities and momentum are kept."""
        for state in self.state.values():
            state.pop("initial", None)
            state.pop("scale", None)

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state; S and the generator states, cast to the parameter's dtype by
        ``Optimizer.load_state_dict``, get back their own dtypes (exactly)."""
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            # A state saved before profiles were described as plain data holds the profile itself.
            if not isinstance(group.get("flexibility"), dict):
                group["flexibility"] = describe_profile(resolve_profile(group["flexibility"]))
            group.setdefault("scale_dtype", None)
            group.setdefault("generator_device", None)
            group.setdefault("fused", None)
            for p in group["params"]:
                state = self.state.get(p)
                if not state:
                    continue
                if "flexibility_rng" in state:
                    state["flexibility_rng"] = state["flexibility_rng"].to("cpu", torch.uint8)
                if "scale" in state:
                    state["scale"] = state["scale"].to(_scale_dtype(group, p))

    # ------------------------------------------------------------------ update

    @torch.no_grad()
    def step(self, closure=None):
        """Apply ``w <- w - lr * S * grad`` to every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, scales, grads, buffers = [], [], [], []
            self._init_group(group, params, scales, grads, buffers)
            metaplastic_sgd(params, grads, scales, buffers, lr=group["lr"],
                            momentum=group["momentum"], weight_decay=group["weight_decay"],
                            foreach=group["foreach"], fused=group["fused"])
            if group["momentum"] != 0:
                for p, buffer in zip(params, buffers):
                    self.state[p]["momentum_buffer"] = buffer
        return loss


def _is_scaled(p: torch.Tensor, group: dict) -> bool:
    if group["scaled"] is not None:
        return bool(group["scaled"])
    return p.dim() >= 2 or group["scale_biases"]


def _group_has_state(group: dict) -> bool:
    """A constant flexibility of 0 or 1 needs no per-weight state: S is 0 or 1 whatever dw is."""
    spec = group["flexibility"]
    return not (spec["profile"] == "constant" and spec["value"] in (0.0, 1.0))


def _scale_dtype(group: dict, p: torch.Tensor) -> torch.dtype:
    name = group["scale_dtype"]
    return p.dtype if name is None else getattr(torch, name)


def _check_group(group: dict) -> None:
    check_number("lr", group["lr"], low=0)
    check_number("alpha", group["alpha"], low=0)
    check_number("momentum", group["momentum"], low=0, high=1, high_open=True)
    check_number("weight_decay", group["weight_decay"], low=0)
    if group["fused"] and group["foreach"]:
        raise ValueError("fused=True and foreach=True choose two different kernels: pass one of them")
    for p in group["params"]:
        if not torch.is_floating_point(p):
            raise ValueError(f"MetaplasticSGD needs floating-point parameters, got {p.dtype}")


# ---------------------------------------------------------------------- functional


def metaplastic_sgd(params: list[torch.Tensor], grads: list[torch.Tensor],
                    scales: list[torch.Tensor | None], momentum_buffers: list[torch.Tensor | None], *,
                    lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                    foreach: bool | None = None, fused: bool | None = None) -> None:
    """Functional form of :class:`MetaplasticSGD`'s step.

    ``scales[i]`` is S for ``params[i]``, or ``None`` (plain rate). With momentum,
    ``momentum_buffers`` is updated in place (a ``None`` entry becomes a new buffer).
    """
    if fused:
        kernel = _fused_metaplastic_sgd
    elif foreach is False:
        kernel = _single_tensor_metaplastic_sgd
    else:
        kernel = _multi_tensor_metaplastic_sgd
    kernel(params, grads, scales, momentum_buffers, lr=lr, momentum=momentum,
           weight_decay=weight_decay)


def _single_tensor_metaplastic_sgd(params, grads, scales, momentum_buffers, *, lr, momentum, weight_decay):
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


def _multi_tensor_metaplastic_sgd(params, grads, scales, momentum_buffers, *, lr, momentum, weight_decay):
    """``foreach`` kernel: one fused ``addcmul_`` pass per (device, dtype) bucket."""
    if not params:
        return
    directions = _directions_foreach(params, grads, momentum_buffers, momentum, weight_decay)
    _apply_foreach(params, scales, directions, lr)


def _fused_metaplastic_sgd(params, grads, scales, momentum_buffers, *, lr, momentum, weight_decay):
    """``fused`` kernel: the ``foreach`` kernel, but S kept in a compact dtype on the CPU
    is read by one compiled pass per parameter instead of being converted first."""
    if not params:
        return
    directions = _directions_foreach(params, grads, momentum_buffers, momentum, weight_decay)
    compact = {i for i, (p, s, d) in enumerate(zip(params, scales, directions))
               if _fusable(p, s, d)}
    for i in sorted(compact):
        _fused_scaled_update(params[i], scales[i], directions[i], lr)
    rest = [i for i in range(len(params)) if i not in compact]
    if rest:
        _apply_foreach([params[i] for i in rest], [scales[i] for i in rest],
                       [directions[i] for i in rest], lr)


def _directions_foreach(params, grads, momentum_buffers, momentum, weight_decay) -> list:
    """The step's direction ``d`` per parameter (gradient, weight decay, momentum)."""
    directions = list(grads)
    if weight_decay != 0:
        directions = torch._foreach_add(directions, params, alpha=weight_decay)
    if momentum != 0:
        _momentum_foreach(directions, momentum_buffers, momentum)
        directions = list(momentum_buffers)
    return directions


def _apply_foreach(params, scales, directions, lr) -> None:
    """``w -= lr * S * d`` (or ``lr * d`` where S is None) with one foreach call per bucket.

    Only the parameters are passed to torch's grouping, which checks every other list against
    the first one's dtypes: S may be kept in another dtype (``scale_dtype``).
    """
    buckets = Optimizer._group_tensors_by_device_and_dtype([params], with_indices=True)
    for _, indices in buckets.values():
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


# ------------------------------------------------------------------ fused kernel
#
# On the CPU, ``w.addcmul_(S, d)`` with a compact S first converts S in a pass of its own;
# the compiled loop reads w, d and S once and writes w once (CPU only: docs/optimizer.md).

#: Why the compiled kernel is unavailable in this process (None: not known to be).
_fused_unavailable: str | None = None
_compiled_update = None


def _scaled_update(param: torch.Tensor, scale: torch.Tensor, direction: torch.Tensor,
                   neg_lr: torch.Tensor) -> None:
    """``w += (-lr * S) * d``, S converted element by element: the body that is compiled.

    The products in the order of ATen's CPU ``addcmul_`` (``w + (value * S) * d``, one
    multiply-add): with contraction enabled (below) the compiled loop rounds the same way.
    """
    param.add_((neg_lr * scale.to(param.dtype)) * direction)


def _compiled_kernel():
    """``_scaled_update`` compiled by ``torch.compile``, built at the first fused step."""
    global _compiled_update
    if _compiled_update is None:
        # Imported here: inductor takes a second to import, and only fused=True needs it.
        import torch._inductor.config as inductor_config

        options = {}
        if hasattr(inductor_config.cpp, "enable_floating_point_contract_flag"):
            # Let the C++ compiler fuse w + p * d into a multiply-add, as ATen's kernel is built.
            options["cpp.enable_floating_point_contract_flag"] = "fast"
        # dynamic=True: one compiled loop for every length (tensors are passed flat), not one
        # per parameter shape; lr comes as a 0-d tensor so a schedule does not recompile.
        _compiled_update = torch.compile(_scaled_update, dynamic=True, fullgraph=True, options=options)
    return _compiled_update


def _fusable(p: torch.Tensor, scale: torch.Tensor | None, direction: torch.Tensor) -> bool:
    """Whether ``p``'s update goes through the compiled kernel (others take the foreach path)."""
    return (scale is not None and scale.dtype != p.dtype and p.device.type == "cpu"
            and _fused_unavailable is None and direction.dtype == p.dtype
            and p.is_contiguous() and scale.is_contiguous() and direction.is_contiguous()
            and p.numel() >= 2)     # sizes 0 and 1 would each compile a specialised loop


def _fused_scaled_update(p: torch.Tensor, scale: torch.Tensor, direction: torch.Tensor,
                         lr: float) -> None:
    """``p -= lr * S * d`` in one compiled pass; the eager update if it cannot be compiled."""
    global _fused_unavailable
    if _fused_unavailable is None:
        try:
            neg_lr = torch.full((), -lr, dtype=p.dtype, device=p.device)   # rounded as addcmul_ does
            _compiled_kernel()(p.detach().view(-1), scale.view(-1), direction.view(-1), neg_lr)
            return
        except Exception as error:  # no compiler, no inductor for this platform, ...
            # Nothing was written: compilation fails before the loop runs. The eager update
            # below computes the same result (and raises again if the inputs were at fault).
            _fused_unavailable = _one_line(error)
            warnings.warn("MetaplasticSGD(fused=True): torch.compile could not build the fused "
                          f"kernel ({_fused_unavailable}); using the eager kernel instead, which "
                          "computes the same update but converts S first (slower on the CPU)",
                          RuntimeWarning, stacklevel=4)
    p.addcmul_(scale, direction, value=-lr)


def _one_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
