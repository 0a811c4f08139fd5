"""Argument checks shared by the library: one place, one wording of errors.

Every check raises ``ValueError`` naming the argument, the value it got and
what would be valid, so that a user never has to read a traceback to learn
what went wrong.
"""

from __future__ import annotations

import math

import torch


def check_number(name: str, value: float, *, low: float | None = None,
                 high: float | None = None, low_open: bool = False,
                 high_open: bool = False) -> float:
    """Check that ``value`` is a finite real number inside the given bounds."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        raise ValueError(f"{name} must be in {_interval(low, high, low_open, high_open)}, "
                         f"got {value!r}")
    return number


def check_flexibility_tensor(name: str, tensor: torch.Tensor) -> None:
    """Check that every entry of a flexibility tensor lies in [0, 1] (and is not NaN)."""
    if not torch.is_floating_point(tensor):
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {tensor.dtype}")
    bad = torch.isnan(tensor) | (tensor < 0) | (tensor > 1)
    if bool(bad.any()):
        first = tensor[bad].flatten()[0].item()
        raise ValueError(f"{name} must lie in [0, 1] everywhere; found {first!r} "
                         f"({int(bad.sum())} bad entries)")


def check_master_dtype(name: str, dtype: torch.dtype) -> None:
    """Refuse weights too coarse to hold the drifts the rule measures (float32 or float64 only)."""
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(
            f"{name} is {dtype}: MetaplasticSGD measures drifts of about 1e-6, which {dtype} "
            f"weights cannot hold (a step that small rounds away); keep float32 master weights "
            f"(torch.autocast can still run the matrix products in low precision)")


def check_scale_dtype(value) -> str | None:
    """``scale_dtype``: ``None`` or a floating dtype (or its name); returns the name, plain data."""
    if value is None:
        return None
    name = value.removeprefix("torch.") if isinstance(value, str) else str(value).removeprefix("torch.")
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"scale_dtype must be None or a floating dtype such as torch.bfloat16, "
                         f"got {value!r}")
    return name


def _interval(low, high, low_open, high_open) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    low_text = "-inf" if low is None else f"{low:g}"
    high_text = "inf" if high is None else f"{high:g}"
    return f"{left}{low_text}, {high_text}{right}"
