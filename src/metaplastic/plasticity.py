"""The metaplasticity rule as pure tensor functions.

Two pieces live here (paper, Methods 2.2; ``docs/protocol.md`` sections 1-2):

* :func:`plasticity_scale`, Eq. 2 of the paper: the factor ``S`` in [0, 1]
  that scales a synapse's learning rate given its flexibility ``f`` and its
  drift ``dw`` from its initial value, and :func:`plasticity_scale_`, the
  same numbers written into an existing tensor a chunk at a time (bounded
  temporaries, for weights of hundreds of millions of elements);
* flexibility profiles: the distributions from which every synapse draws its
  fixed flexibility once, when the network is initialised.

Nothing here knows about optimizers, data or experiments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

from metaplastic._checks import check_flexibility_tensor, check_number


def plasticity_scale(flexibility: torch.Tensor | float, dw: torch.Tensor | float,
                     alpha: float) -> torch.Tensor:
    r"""Learning-rate scale of Eq. 2: :math:`S = 1 - \tanh^2(\alpha \frac{1-f}{f} \Delta w)`.

    Elementwise and broadcasting over ``flexibility`` and ``dw``; the result
    has their promoted floating dtype.

    * ``f = 1`` gives exactly 1 (a conventional synapse);
    * ``f = 0`` gives exactly 0 for every ``dw``, including ``dw = 0`` where
      the formula reads ``inf * 0`` (the reference implementation's choice:
      a fully stable synapse never learns);
    * ``dw = 0`` gives 1 for every ``f > 0`` (paper: S = 1 during item 1);
    * the sign of ``dw`` does not matter.

    ``1 - tanh^2(x)`` is evaluated as ``sech^2(x) = 4 t / (1 + t)^2`` with
    ``t = exp(-2|x|)``: the same function without the cancellation of
    ``1 - tanh^2`` near ``|x| ~ 10`` and without overflow for huge ``|x|``
    (``t`` underflows to 0, so ``S`` goes to 0, never to NaN).
    """
    f = torch.as_tensor(flexibility)
    delta = torch.as_tensor(dw)
    if not torch.is_floating_point(f):
        f = f.to(torch.get_default_dtype())
    if not torch.is_floating_point(delta):
        delta = delta.to(torch.get_default_dtype())
    # Divide last: for f > 0 a zero numerator gives exactly 0, never inf * 0.
    x = (alpha * delta.abs() * (1 - f)) / f             # inf or NaN only where f == 0
    t = torch.exp(-2 * x)
    s = (4 * t / (1 + t) ** 2).clamp(max=1)              # rounding may reach 1 + 1 ulp
    return torch.where(f == 0, torch.zeros_like(s), s)  # f = 0: S = 0, never NaN


#: Elements handled at a time by the chunked functions below. Their temporaries
#: are a few buffers of this size (16 MiB each in float32), not several copies
#: of a weight matrix that may hold hundreds of millions of elements. Large
#: enough that a tensor takes few chunks: every chunk costs some fifteen
#: parallel regions, and on a machine shared with other jobs each region may
#: wait for a descheduled thread.
CHUNK_ELEMENTS = 1 << 22


def _chunked(tensors: list[torch.Tensor], chunk: int | None = None):
    """Aligned pieces of equally shaped tensors, each of at most ``chunk`` elements.

    Yields lists of views, one per tensor, covering the same elements; an
    elementwise function applied piece by piece gives what it gives on the
    whole. Contiguous tensors are cut flat; others along their leading
    dimensions, so any strides work (a piece may then exceed ``chunk`` only
    when one innermost row already does). ``chunk`` defaults to
    :data:`CHUNK_ELEMENTS`.
    """
    chunk = CHUNK_ELEMENTS if chunk is None else chunk
    if all(t.is_contiguous() for t in tensors):
        flat = [t.view(-1) for t in tensors]
        for start in range(0, flat[0].numel(), chunk):
            yield [t[start:start + chunk] for t in flat]
        return
    first = tensors[0]
    if first.dim() == 0 or first.numel() <= chunk:
        yield list(tensors)
        return
    row = first[0].numel()
    if row > chunk:                                  # one slice is too large: cut inside it
        for i in range(first.shape[0]):
            yield from _chunked([t[i] for t in tensors], chunk)
        return
    rows = chunk // max(row, 1)
    for start in range(0, first.shape[0], rows):
        yield [t[start:start + rows] for t in tensors]


def plasticity_scale_(out: torch.Tensor, flexibility: torch.Tensor | float, weight: torch.Tensor,
                      initial: torch.Tensor, alpha: float, *, chunk: int | None = None
                      ) -> torch.Tensor:
    """Eq. 2 written into ``out``, a chunk at a time: ``S(f, weight - initial)``.

    ``out`` receives exactly ``plasticity_scale(f, weight - initial, alpha)``
    with ``f`` in ``weight``'s dtype (then rounded to ``out``'s dtype), bit
    for bit: the same elementwise operations in the same order, run in place
    on two work buffers of ``chunk`` elements (and a mask of ``chunk``
    bytes) that are allocated once. :func:`plasticity_scale` on the whole
    tensor holds several temporaries of its size at once (for the paper's
    FC6, 151 MB each per network).

    Args:
        out: where S goes, shaped like ``weight`` (any floating dtype).
        flexibility: a tensor shaped like ``weight`` in any floating dtype
            (converted to ``weight``'s a chunk at a time, in a third buffer),
            or one number or 0-d tensor for every synapse.
        weight, initial: the current and the initial weights (``dw = weight - initial``).
        alpha: the width of S (>= 0).
        chunk: elements per chunk (default :data:`CHUNK_ELEMENTS`).
    """
    chunk = CHUNK_ELEMENTS if chunk is None else chunk
    f = torch.as_tensor(flexibility, device=weight.device)
    constant = f.dim() == 0
    if constant:
        f = f.to(weight.dtype)
    size = min(chunk, weight.numel())
    work = weight.new_empty(size)                    # x, then t, then S
    other = weight.new_empty(size)                   # 1 - f, then (1 + t)^2
    zero_f = torch.empty(size, dtype=torch.bool, device=weight.device)
    f_work = weight.new_empty(size) if not constant and f.dtype != weight.dtype else None
    pieces = _chunked([weight, initial, out] + ([] if constant else [f]), chunk)
    for piece in pieces:
        w, w0, s = piece[:3]
        n = w.numel()
        x, y, mask = (b[:n].view(w.shape) for b in (work, other, zero_f))
        if constant:
            f_part = f.expand_as(w)
        elif f_work is not None:
            f_part = f_work[:n].view(w.shape).copy_(piece[3])
        else:
            f_part = piece[3]
        # The operations of plasticity_scale, in its order (see there for why this form).
        torch.sub(w, w0, out=x)                                  # dw
        x.abs_().mul_(alpha)                                     # alpha |dw|
        torch.sub(1, f_part, out=y)                              # 1 - f
        x.mul_(y).div_(f_part)                                   # x = alpha |dw| (1 - f) / f
        x.mul_(-2).exp_()                                        # t = exp(-2 x)
        torch.add(x, 1, out=y).pow_(2)                           # (1 + t)^2
        x.mul_(4).div_(y).clamp_(max=1)                          # S = 4 t / (1 + t)^2 <= 1
        torch.eq(f_part, 0, out=mask)
        x.masked_fill_(mask, 0.0)                                # f = 0: S = 0, never NaN
        s.copy_(x)
    return out


def suggest_alpha(drifts, *, flexibility: float = 0.5, scale: float = 0.5,
                  quantile: float = 0.5) -> float:
    r"""An alpha for a new model, from the drifts ``dw`` measured after its first item.

    Eq. 2 depends on alpha only through :math:`\alpha\,|\Delta w|`, so alpha
    must match the scale of the drifts, which depends on the model, the data,
    the learning rate and the length of an item. This picks the alpha at which
    a synapse of the given ``flexibility`` whose drift after the first item is
    the ``quantile`` of all drifts (the median by default) gets ``S = scale``:

    .. math::
        \alpha = \frac{f}{1 - f}\,\frac{\operatorname{artanh}\sqrt{1 - S}}{|\Delta w|_q}.

    A starting point for a sweep (try it times and divided by 3 and 10), not a
    calibration: the paper's 4e5 for drifts of about 1e-6 is
    ``alpha * |dw|`` of about 0.4, i.e. S of about 0.86 for f = 0.5.

    Args:
        drifts: tensors of ``w - w_0`` after the first item (e.g.
            :meth:`MetaplasticSGD.drifts`); zeros (frozen weights) are ignored.
        flexibility: the f of the reference synapse, in (0, 1).
        scale: the S it should have after the first item, in (0, 1).
        quantile: which drift is typical, in (0, 1).
    """
    check_number("flexibility", flexibility, low=0, high=1, low_open=True, high_open=True)
    check_number("scale", scale, low=0, high=1, low_open=True, high_open=True)
    check_number("quantile", quantile, low=0, high=1, low_open=True, high_open=True)
    if isinstance(drifts, torch.Tensor):
        drifts = [drifts]
    values = torch.cat([d.detach().abs().flatten().double().cpu() for d in drifts])
    values = values[values > 0]
    if values.numel() == 0:
        raise ValueError("suggest_alpha needs drifts measured after training on an item; "
                         "every drift is 0 (was the model trained, or are the weights frozen?)")
    if values.numel() > 1_000_000:   # torch.quantile has a size limit; a strided sample suffices
        values = values[:: values.numel() // 1_000_000 + 1]
    typical = torch.quantile(values, quantile).item()
    return flexibility / (1 - flexibility) * math.atanh(math.sqrt(1 - scale)) / typical


# --------------------------------------------------------------------------- profiles


@runtime_checkable
class FlexibilityProfile(Protocol):
    """Anything that draws one flexibility in [0, 1] per synapse.

    A profile may set the class attribute ``regenerable = True`` to promise
    that ``sample`` is a cheap, pure function of the generator's state: the
    optimizer then keeps only that state (a few bytes per parameter) and draws
    the flexibilities again at every item boundary, instead of storing them.
    """

    def sample(self, shape: torch.Size | tuple[int, ...],
               generator: torch.Generator | None = None) -> torch.Tensor:
        ...


def _uniform01(shape, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else None
    return torch.rand(tuple(shape), generator=generator, device=device)


@dataclass(frozen=True)
class Constant:
    """Every synapse has the same flexibility ``value`` (a "single-value" network)."""

    value: float
    regenerable: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "value", check_number("flexibility", self.value, low=0, high=1))

    def sample(self, shape, generator=None):
        device = generator.device if generator is not None else None
        return torch.full(tuple(shape), self.value, device=device)


@dataclass(frozen=True)
class Uniform:
    """Flexibility drawn independently per synapse from Uniform(low, high)."""

    low: float = 0.0
    high: float = 1.0
    regenerable: ClassVar[bool] = True

    def __post_init__(self):
        low = check_number("uniform low", self.low, low=0, high=1)
        high = check_number("uniform high", self.high, low=low, high=1)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def sample(self, shape, generator=None):
        # In place: the draw is the only tensor of this size (same values as low + (high-low) u).
        return _uniform01(shape, generator).mul_(self.high - self.low).add_(self.low)


@dataclass(frozen=True)
class Biased:
    """A linear density biased toward one end (docs/protocol.md section 2, Supp. Fig. 3).

    ``toward="flexible"``: CDF ``F(x) = (1-a) x^2 + a x`` on [0, 1], a density
    that rises linearly toward f = 1. ``toward="stable"``: its mirror ``1 - X``.
    ``a = 1`` is the uniform profile; a smaller ``a`` is a stronger bias.
    """

    a: float
    toward: str = "flexible"
    regenerable: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "a", check_number("biased a", self.a, low=0, high=1))
        if self.toward not in ("flexible", "stable"):
            raise ValueError(f"biased toward must be 'flexible' or 'stable', got {self.toward!r}")

    def sample(self, shape, generator=None):
        u = _uniform01(shape, generator)
        for (part,) in _chunked([u]):     # in place, a chunk at a time: u is the only full tensor
            self._inverse_cdf_(part)
        return u

    def _inverse_cdf_(self, u: torch.Tensor) -> None:
        # Inverse CDF, written as 2u / (a + sqrt(a^2 + 4(1-a)u)): the root of
        # (1-a)x^2 + a x = u without the 0/0 of the textbook form at a = 1.
        denominator = u.mul(4 * (1 - self.a)).add_(self.a**2).sqrt_().add_(self.a)
        positive = denominator > 0                       # 0 only where a = 0 and u = 0: x = 0
        u.mul_(2).div_(denominator.clamp_min_(1e-30)).masked_fill_(~positive, 0.0).clamp_(0, 1)
        if self.toward == "stable":
            u.neg_().add_(1)                             # 1 - x


@dataclass(frozen=True)
class Beta:
    """Flexibility drawn from a Beta(a, b) distribution.

    Sampled by inverting the CDF of uniform draws from ``generator``
    (``scipy.special.betaincinv``), so a seeded generator gives the same
    flexibilities everywhere; ``torch.distributions.Beta`` takes no generator.
    """

    a: float
    b: float
    regenerable: ClassVar[bool] = False   # scipy's inverse CDF is too slow to redo at every boundary

    def __post_init__(self):
        object.__setattr__(self, "a", check_number("beta a", self.a, low=0, low_open=True))
        object.__setattr__(self, "b", check_number("beta b", self.b, low=0, low_open=True))

    def sample(self, shape, generator=None):
        from scipy.special import betaincinv

        u = _uniform01(shape, generator)
        x = betaincinv(self.a, self.b, u.cpu().double().numpy())
        return torch.from_numpy(x).to(device=u.device, dtype=u.dtype)


@dataclass(frozen=True, eq=False)
class Explicit:
    """A flexibility given tensor-for-tensor: it must match its parameter's shape."""

    tensor: torch.Tensor
    regenerable: ClassVar[bool] = False

    def __post_init__(self):
        check_flexibility_tensor("flexibility tensor", self.tensor)

    def sample(self, shape, generator=None):
        if tuple(self.tensor.shape) != tuple(shape):
            raise ValueError(f"flexibility tensor has shape {tuple(self.tensor.shape)} but its "
                             f"parameter has shape {tuple(shape)}; they must match")
        return self.tensor.detach().clone()

    def __repr__(self):
        return f"Explicit(shape={tuple(self.tensor.shape)}, dtype={self.tensor.dtype})"


def constant(value: float) -> Constant:
    """Profile: one flexibility ``value`` for every synapse."""
    return Constant(value)


def uniform(low: float = 0.0, high: float = 1.0) -> Uniform:
    """Profile: flexibility ~ Uniform(low, high), independent per synapse."""
    return Uniform(low, high)


def biased(a: float, toward: str = "flexible") -> Biased:
    """Profile: linear density biased toward ``"flexible"`` or ``"stable"`` (see :class:`Biased`)."""
    return Biased(a, toward)


def beta(a: float, b: float) -> Beta:
    """Profile: flexibility ~ Beta(a, b)."""
    return Beta(a, b)


#: The paper's three networks (Fig. 2c): their flexibility profiles by name.
NAMED_PROFILES: dict[str, FlexibilityProfile] = {
    "conventional": Constant(1.0),
    "stable": Constant(0.3),
    "hybrid": Uniform(0.0, 1.0),
}

ProfileSpec = FlexibilityProfile | str | float | int | torch.Tensor | dict

#: Built-in profiles by the name their plain-data description carries.
_DESCRIBED: dict[str, type] = {"constant": Constant, "uniform": Uniform, "biased": Biased,
                               "beta": Beta}


def describe_profile(profile: FlexibilityProfile) -> dict[str, Any]:
    """A plain-data description of a profile: strings and numbers only.

    Built-in profiles are described completely (``{"profile": "uniform",
    "low": 0.0, "high": 1.0}``) and :func:`resolve_profile` rebuilds them from
    it. An explicit tensor is described as ``{"profile": "explicit"}`` and any
    other profile by its ``repr``: their flexibilities live in the optimizer
    state, not in the description.
    """
    for kind, cls in _DESCRIBED.items():
        if type(profile) is cls:
            return {"profile": kind} | {field.name: getattr(profile, field.name)
                                        for field in fields(profile)}
    if isinstance(profile, Explicit):
        return {"profile": "explicit", "shape": list(profile.tensor.shape)}
    return {"profile": "custom", "repr": repr(profile)}


def _from_description(spec: dict) -> FlexibilityProfile:
    kind = spec.get("profile")
    if kind in _DESCRIBED:
        fields = {k: v for k, v in spec.items() if k != "profile"}
        try:
            return _DESCRIBED[kind](**fields)
        except TypeError:
            raise ValueError(f"bad description of a {kind} profile: {spec!r}") from None
    if kind in ("explicit", "custom"):
        raise ValueError(f"a {kind} profile cannot be rebuilt from its description {spec!r}: "
                         "its flexibilities are stored in the optimizer state")
    raise ValueError(f"unknown profile description {spec!r}; known kinds: "
                     f"{', '.join(sorted(_DESCRIBED))}, explicit, custom")


def resolve_profile(spec: ProfileSpec) -> FlexibilityProfile:
    """Turn a profile object, name, number, tensor or description into a profile."""
    if isinstance(spec, torch.Tensor):
        return Explicit(spec)
    if isinstance(spec, dict):
        return _from_description(spec)
    if isinstance(spec, str):
        try:
            return NAMED_PROFILES[spec]
        except KeyError:
            raise ValueError(f"unknown flexibility profile {spec!r}; known names: "
                             f"{', '.join(sorted(NAMED_PROFILES))}") from None
    if isinstance(spec, bool):
        raise ValueError(f"flexibility must be a profile, a name, a number or a tensor, got {spec!r}")
    if isinstance(spec, (int, float)):
        if math.isnan(float(spec)):
            raise ValueError(f"flexibility must be in [0, 1], got {spec!r}")
        return Constant(float(spec))
    if isinstance(spec, FlexibilityProfile):
        return spec
    raise ValueError(f"flexibility must be a profile, a name ({', '.join(sorted(NAMED_PROFILES))}), "
                     f"a number in [0, 1], a tensor or a description, got {spec!r}")
