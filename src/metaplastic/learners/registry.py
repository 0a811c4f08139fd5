"""The registry of baseline methods: each method's module registers its settings class once."""

from __future__ import annotations

import dataclasses

from metaplastic.learners.base import Method

#: The methods by family name; a learner name is ``family`` or ``family:key=value,key=value``.
FAMILIES: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method known by its ``family`` (to the CLI, engine and plots)."""
    if cls.family in FAMILIES:
        raise ValueError(f"two baseline methods are registered as {cls.family!r}")
    missing = {f.name for f in dataclasses.fields(cls)} ^ set(cls.ranges)
    if missing:
        raise TypeError(f"{cls.__name__}.ranges must name exactly its settings (differs on "
                        f"{', '.join(sorted(missing))})")
    FAMILIES[cls.family] = cls
    return cls


def is_baseline(name: str) -> bool:
    return name.partition(":")[0] in FAMILIES


def parse(name: str) -> Method:
    """The baseline a learner name stands for: ``ewc``, ``ewc:lam=1e4``, ``replay:buffer=50``.

    The class defaults are the choices of the recorded sweep at the quick preset
    (docs/calibration.md, "Baselines"); every setting is checked against its range here.

    >>> parse("ewc:lam=10")
    EWC(lam=10.0, decay=0.9)
    """
    family, _, settings = name.partition(":")
    if family not in FAMILIES:
        raise ValueError(f"unknown learner {name!r}; baselines: {', '.join(FAMILIES)} "
                         "(optionally with settings, e.g. ewc:lam=1e4,decay=1)")
    cls = FAMILIES[family]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for entry in settings.split(",") if settings else []:
        key, equals, text = entry.partition("=")
        if not equals or key not in fields:
            raise ValueError(f"learner {name!r}: {entry!r} is not key=value with key one of "
                             f"{', '.join(fields)}")
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"learner {name!r}: {key} must be {cls.ranges[key]}, got {text!r}") from None
        if cls.ranges[key].integer and number in cls.ranges[key]:
            number = int(number)
        values[key] = number
    try:
        return cls(**values)
    except ValueError as error:
        raise ValueError(f"learner {name!r}: {str(error).partition(': ')[2]}") from None
