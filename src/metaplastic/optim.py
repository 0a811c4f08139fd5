"""``MetaplasticSGD``: the paper's metaplasticity rule as a PyTorch optimizer.

Three tiers, as in ``torch.optim``: the class (argument checks, per-parameter
state, ``consolidate()``), the functional update :func:`metaplastic_sgd`, and
three private kernels sharing one signature: a single-tensor reference, a
``foreach`` kernel (the default), and an opt-in ``fused`` kernel that reads S
in a compact dtype inside one compiled pass (``torch.compile``).
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Iterable

import torch
from torch.optim import Optimizer

from metaplastic._checks import (
    check_flexibility_tensor,
    check_master_dtype,
    check_number,
    check_scale_dtype,
)
from metaplastic.plasticity import (
    Constant,
    ProfileSpec,
    describe_profile,
    plasticity_scale_,
    resolve_profile,
)

__all__ = ["MetaplasticSGD", "metaplastic_sgd", "METAPLASTIC_STATE_KEYS"]

#: The per-parameter state entries that carry the rule (momentum buffers aside):
#: what must survive when a training framework resets an optimizer's state.
METAPLASTIC_STATE_KEYS = ("flexibility", "flexibility_rng", "initial", "scale")


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
    ``[B, in, out]`` weights: the rule is elementwise). 1-d parameters (biases)
    learn at the plain rate, as in the paper, unless ``scale_biases=True``. A
    param group may set ``"scaled": True/False`` to decide for all of its
    parameters (useful for stacked biases shaped ``[B, out]``). Parameters with
    ``requires_grad=False`` when the optimizer is built get no state (see below
    if they are unfrozen later).

    **State follows the model.** The initial weights :math:`w_0` and S are
    created lazily, at the first :meth:`consolidate` or :meth:`step`, from the
    parameter as it is then (device, dtype and values): loading pretrained
    weights into the model, or ``model.to(device or dtype)``, after building
    the optimizer is safe. If the model moves after that, the state follows it
    at the next boundary or step. :meth:`reanchor` takes the current weights as
    the new :math:`w_0` (for example after loading weights into a model whose
    optimizer has already trained).

    **Flexibilities** are drawn at construction from ``generator`` (or torch's
    global generator), parameter after parameter, so the draws are
    reproducible. What is kept of them: nothing for a constant profile (the
    number is in the param group); for the built-in random profiles
    (``uniform``, ``biased``, ``"hybrid"``) only the generator's state before
    the draw, from which every :meth:`consolidate` draws the same values again
    (bit-identical, no per-weight memory); for an explicit tensor, a Beta
    profile or a custom profile, the tensor itself, in the dtype it came in
    (pass a float16 tensor to halve it). A parameter that receives a gradient
    without a flexibility (frozen at construction then unfrozen, or appended
    to ``param_groups`` by hand) draws one at its first boundary or step.

    Args:
        params: parameters or param groups. A group may override ``lr``,
            ``alpha``, ``flexibility``, ``momentum``, ``weight_decay``,
            ``scale_biases``, ``scale_dtype`` and ``scaled``.
        lr: learning rate :math:`\eta` (>= 0).
        alpha: width of S, Eq. 2 (>= 0). The reference uses 4e5 (10 items) and
            2e5 (30 items), tuned to its scale of ``dw`` (about 1e-6); see
            ``docs/optimizer.md`` and :func:`metaplastic.suggest_alpha` for a
            new model.
        flexibility: a profile (:mod:`metaplastic.plasticity`), a profile name
            (``"conventional"``, ``"stable"``, ``"hybrid"``), a number in [0, 1]
            (a constant profile) or a tensor with the shape of the parameter.
        momentum: heavy-ball momentum in [0, 1) (the paper uses 0).
        weight_decay: L2 penalty added to the gradient (the paper uses 0).
        generator: the ``torch.Generator`` the flexibilities are drawn from,
            for reproducible networks.
        scale_biases: scale 1-d parameters by S too.
        scale_dtype: dtype in which S is stored (``None``: the parameter's).
            ``torch.bfloat16`` halves S's memory; S only multiplies the
            learning rate, so its 3 significant digits are enough. On a GPU the
            step reads fewer bytes; on a CPU torch converts S to float32 first,
            which makes the step several times slower unless ``fused=True``
            (docs/benchmarks.md).
        foreach: use the ``foreach`` kernel (default) or the single-tensor
            reference kernel (``False``). Both compute the same update.
        fused: for S stored in a dtype other than the parameter's (a
            ``scale_dtype`` such as ``torch.bfloat16``) on the CPU, apply
            ``w -= lr * S * d`` in one pass compiled by ``torch.compile``,
            reading S in its compact dtype: torch's own CPU kernels convert
            S to the parameter's dtype in a separate pass first. Same update
            as the eager kernels (bit for bit where ATen's CPU ``addcmul_``
            uses a fused multiply-add, as on x86 builds with AVX2 or AVX-512;
            otherwise within one rounding of the product). The first step
            compiles (seconds; cached on disk for later runs); without a
            working compiler it warns once and uses the eager kernel. Elsewhere
            (a GPU's eager kernel already casts S inside its one pass, or S in
            the parameter's dtype) it is the ``foreach`` kernel.

    Scaled parameters must be float32 or float64: a drift of 1e-6 is below
    the resolution of bfloat16 or float16 weights, so those are refused with
    an error (keep float32 master weights; autocast may still run the matrix
    products in low precision).

    Departures from the paper, both off by default: with momentum or weight
    decay, S scales the whole step ``d = momentum * d + grad + wd * w``, so
    an f = 0 weight stays frozen whatever the other terms say.

    Memory per scaled weight: the initial value and S (8 bytes in float32, 6
    with ``scale_dtype=torch.bfloat16``), plus 4 for a stored flexibility
    tensor (explicit, Beta or custom profiles) and 4 for momentum. A constant
    flexibility of 1 keeps no state at all (it is plain SGD), a constant 0 none
    either (the weight is frozen: its step is skipped).

    ``state_dict()`` is plain data: param groups hold numbers, strings and a
    plain description of the profile; the tensors are in the per-parameter
    state. ``torch.load(..., weights_only=True)`` reads it back.

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
            if _has_state(p, group) and p.requires_grad:
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

    def _flexibility(self, p: torch.Tensor, group: dict, state: dict) -> torch.Tensor:
        """``p``'s flexibilities as a tensor of its shape, device and dtype."""
        f = self._flexibility_source(p, group, state)
        if f.dim() == 0:
            return f.expand_as(p)
        return f.to(device=p.device, dtype=p.dtype)

    def _flexibility_source(self, p: torch.Tensor, group: dict, state: dict) -> torch.Tensor:
        """``p``'s flexibilities as kept, without a copy where there is none to make.

        A 0-d tensor in ``p``'s dtype for a constant profile, the stored
        tensor (in its own dtype) for an explicit one, or a fresh draw from
        the kept generator state: at most one tensor of ``p``'s size.
        """
        spec = group["flexibility"]
        if spec["profile"] == "constant":
            return torch.tensor(spec["value"], dtype=p.dtype, device=p.device)
        if "flexibility" not in state and "flexibility_rng" not in state:
            index = next(i for i, q in enumerate(group["params"]) if q is p)
            self._draw_flexibility(p, group, resolve_profile(spec), index)
        if "flexibility" in state:
            return state["flexibility"]
        # Redraw from the kept generator state: the values drawn at construction.
        generator = torch.Generator(device=group["generator_device"])
        generator.set_state(state["flexibility_rng"])
        return resolve_profile(spec).sample(p.shape, generator).to(device=p.device)

    def flexibility_of(self, p: torch.Tensor) -> torch.Tensor:
        """The flexibilities of parameter ``p`` (a tensor of its shape), however they are kept."""
        for group in self.param_groups:
            if any(q is p for q in group["params"]):
                if not _is_scaled(p, group):
                    raise ValueError(f"parameter of shape {tuple(p.shape)} is not scaled by S: "
                                     "it has no flexibility")
                return self._flexibility(p, group, self.state[p])
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
        if initial is None:
            check_master_dtype(f"parameter of shape {tuple(p.shape)}", p.dtype)
            if "flexibility" in state:
                state["flexibility"] = state["flexibility"].to(device=p.device)
            state["initial"] = p.detach().clone()
            state["scale"] = torch.empty_like(p, dtype=scale_dtype, memory_format=torch.preserve_format)
            self._update_scale(p, group, state)     # dw = 0: S = 1 where f > 0, 0 where f = 0
            return
        if initial.device != p.device or initial.dtype != p.dtype:
            check_master_dtype(f"parameter of shape {tuple(p.shape)}", p.dtype)
            state["initial"] = initial.to(device=p.device, dtype=p.dtype)
            if "momentum_buffer" in state:
                state["momentum_buffer"] = state["momentum_buffer"].to(device=p.device, dtype=p.dtype)
            if "flexibility" in state:
                state["flexibility"] = state["flexibility"].to(device=p.device)
        scale = state["scale"]
        if scale.device != p.device or scale.dtype != scale_dtype:
            state["scale"] = scale.to(device=p.device, dtype=scale_dtype)

    def _update_scale(self, p: torch.Tensor, group: dict, state: dict) -> None:
        """S of Eq. 2 from ``dw = w - w0``, written into ``state["scale"]`` a chunk at a time.

        Bit-identical to ``plasticity_scale(f, w - w0, alpha)`` on the whole
        tensor, with no full-size temporary but a redrawn flexibility.
        """
        f = self._flexibility_source(p, group, state)
        plasticity_scale_(state["scale"], f, p.detach(), state["initial"], group["alpha"])

    @torch.no_grad()
    def consolidate(self) -> None:
        """Mark an item boundary: recompute every S from ``dw = w - w_init`` (Eq. 2).

        S then stays fixed for every step until the next call (protocol.md
        section 1: dw is measured at the start of the current item). At the
        first call the initial weights are taken from the parameters as they
        are now.
        """
        for group in self.param_groups:
            if not _group_has_state(group):
                continue
            for p in group["params"]:
                if not (_has_state(p, group) and p.requires_grad):
                    continue
                state = self.state[p]
                first = "initial" not in state     # first boundary: w0 = w, dw = 0
                self._prepare(p, group, state)
                if not first:
                    self._update_scale(p, group, state)

    @torch.no_grad()
    def reanchor(self) -> None:
        """Take the current weights as the initial weights ``w_0`` (drift 0, S = 1 where f > 0).

        For a model whose weights were replaced after the optimizer trained
        (a checkpoint loaded into the model only), or to start a new sequence
        of items from a trained model. Flexibilities and momentum are kept.
        """
        for state in self.state.values():
            state.pop("initial", None)
            state.pop("scale", None)

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state; S and the generator states get back their own dtypes.

        ``torch.optim.Optimizer.load_state_dict`` casts every tensor of the
        state to its parameter's dtype: the generator states are bytes and S
        may be kept in ``scale_dtype``, so both are cast back (exactly).
        """
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
            spec = group["flexibility"]
            frozen = spec["profile"] == "constant" and spec["value"] == 0
            params, grads, scales, buffers = [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise ValueError("MetaplasticSGD does not support sparse gradients")
                scaled = _is_scaled(p, group)
                if scaled and frozen:
                    continue                     # f = 0 everywhere: S = 0, the step is a no-op
                state = self.state[p]
                scale = None
                if scaled and _group_has_state(group):
                    self._prepare(p, group, state)
                    scale = state["scale"]
                params.append(p)
                grads.append(p.grad)
                scales.append(scale)
                buffers.append(state.get("momentum_buffer"))
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


def _has_state(p: torch.Tensor, group: dict) -> bool:
    return _is_scaled(p, group) and _group_has_state(group)


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
                    scales: list[torch.Tensor | None],
                    momentum_buffers: list[torch.Tensor | None], *, lr: float,
                    momentum: float = 0.0, weight_decay: float = 0.0,
                    foreach: bool | None = None, fused: bool | None = None) -> None:
    """Functional form of :class:`MetaplasticSGD`'s step.

    ``scales[i]`` is S for ``params[i]``, or ``None`` for a parameter that
    learns at the plain rate. With momentum, ``momentum_buffers`` is updated
    in place (a ``None`` entry is replaced by a new buffer). ``fused=True``
    selects the compiled kernel for S kept in a compact dtype on the CPU.
    """
    if fused:
        kernel = _fused_metaplastic_sgd
    elif foreach is False:
        kernel = _single_tensor_metaplastic_sgd
    else:
        kernel = _multi_tensor_metaplastic_sgd
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
    directions = _directions_foreach(params, grads, momentum_buffers, momentum, weight_decay)
    _apply_foreach(params, scales, directions, lr)


def _fused_metaplastic_sgd(params, grads, scales, momentum_buffers, *, lr, momentum,
                           weight_decay):
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
    """``w -= lr * S * d`` (or ``lr * d`` where S is None) with one foreach call per bucket."""
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


# ------------------------------------------------------------------ fused kernel
#
# On the CPU, ``w.addcmul_(S, d)`` with S in bfloat16 and w in float32 first
# converts S into a float32 temporary (torch's CPU kernels do not cast inside
# the loop), so a compact S costs a pass more than it saves. The compiled
# kernel below reads w, d and the compact S once and writes w once: 14 bytes
# per weight with S in bfloat16, against SGD's 12 and 16 with S in float32.
# On CUDA torch's eager kernels cast mixed dtypes inside their one pass, so
# only CPU tensors take this path (and no GPU compiler, Triton, is needed).

#: Why the compiled kernel is unavailable in this process (None: not known to be).
_fused_unavailable: str | None = None
_compiled_update = None


def _scaled_update(param: torch.Tensor, scale: torch.Tensor, direction: torch.Tensor,
                   neg_lr: torch.Tensor) -> None:
    """``w += (-lr * S) * d``, S converted element by element: the body that is compiled.

    The order of the products is that of ATen's CPU ``addcmul_``, whose
    vectorised loop computes ``w + (value * S) * d`` with one multiply-add;
    with contraction enabled (below) the compiled loop rounds the same way.
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
        _compiled_update = torch.compile(_scaled_update, dynamic=True, fullgraph=True,
                                         options=options)
    return _compiled_update


def _fusable(p: torch.Tensor, scale: torch.Tensor | None, direction: torch.Tensor) -> bool:
    """Whether ``p``'s update goes through the compiled kernel (others take the foreach path)."""
    return (scale is not None and scale.dtype != p.dtype and p.device.type == "cpu"
            and _fused_unavailable is None
            and p.is_contiguous() and scale.is_contiguous() and direction.is_contiguous()
            and direction.dtype == p.dtype
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
