"""The registry of the paper's experiments.

One entry per experiment holds everything that makes it that experiment: the
sequence builder (which items are presented in which order), the learners it
compares (flexibility profiles, by the name its records use), its default
length and its claims. The CLI choices, the engine, the report and the tests'
parametrisation all read this registry: adding an experiment or a profile is
one entry here, nothing is listed twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from metaplastic import claims as c
from metaplastic import learners, protocol
from metaplastic.config import SCALES, Learner, RunConfig, validate
from metaplastic.plasticity import NAMED_PROFILES, FlexibilityProfile, biased, constant

# --------------------------------------------------------------------------- sequence builders


@dataclass(frozen=True)
class SequenceRequest:
    """What a sequence builder may use: the length, the trial, its random stream, and the
    published frequency schedules for this length (``(csv row, order)`` pairs) when available."""

    items: int
    trial: int
    rng: np.random.Generator
    frequency_schedules: tuple[tuple[int, list[int]], ...] | None = None


#: A built sequence: the presentations and, for the record, which schedule made them.
BuiltSequence = tuple[list[protocol.Presentation], str]


@dataclass(frozen=True)
class Serial:
    """Each item once, in order (Fig. 2, 3)."""

    kind: ClassVar[str] = "serial"

    def __call__(self, request: SequenceRequest) -> BuiltSequence:
        return protocol.serial(request.items), ""


@dataclass(frozen=True)
class Repetition:
    """The same order presented ``times`` times in a row (Fig. 4a-d)."""

    times: int = 9
    kind: ClassVar[str] = "repetition"

    def __call__(self, request: SequenceRequest) -> BuiltSequence:
        return protocol.repetition(request.items, self.times), ""


@dataclass(frozen=True)
class Poisoning:
    """``times`` clean passes, then one pass whose positives carry deranged labels (Fig. 4e-h)."""

    times: int = 9
    kind: ClassVar[str] = "poisoning"

    def __call__(self, request: SequenceRequest) -> BuiltSequence:
        return protocol.poisoning(request.items, self.times, request.rng), ""


@dataclass(frozen=True)
class Frequency:
    """Item i presented i times (Fig. 5): trial t takes published schedule t mod K, or a generated
    schedule with the published schedules' property when none is available (docs/frequency.md)."""

    kind: ClassVar[str] = "frequency"

    def __call__(self, request: SequenceRequest) -> BuiltSequence:
        if request.frequency_schedules:
            row, order = protocol.schedule_for_trial(request.frequency_schedules, request.trial)
            return protocol.frequency(order), f"published row {row}"
        order = protocol.generate_frequency_profile(request.items, request.rng)
        return protocol.frequency(order), "generated"


SequenceBuilder = Callable[[SequenceRequest], BuiltSequence]


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Experiment:
    """One experiment of the paper."""

    name: str
    paper: str                     # which figure it reproduces
    description: str
    sequence: SequenceBuilder
    profiles: Mapping[str, FlexibilityProfile]   # learners compared, by record name, in plot order
    items: int = 10
    alpha_factor: float = 1.0      # alpha relative to the scale's (paper: 2e5 / 4e5 for 30 items)
    quick_trials: int | None = None  # fewer trials at the quick scale for long sequences
    claims: tuple[c.Claim, ...] = field(default=())
    min_items: int = 3             # shortest sequence the protocol allows

    @property
    def kind(self) -> str:
        return self.sequence.kind


def _named(*names: str) -> dict[str, FlexibilityProfile]:
    return {name: NAMED_PROFILES[name] for name in names}


SINGLE_VALUES = (0.3, 0.5, 0.72, 0.8, 0.88, 0.9, 1.0)   # Supp. Fig. 2
BIAS_LEVELS = (0.5, 0.1)                                  # Supp. Fig. 3b: a = 1 is uniform


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e for e in [
        Experiment(
            name="serial-position", paper="Fig. 2",
            description="10 items learned once each; conventional, stable (f = 0.3) and hybrid "
                        "networks; performance of every item after each presentation",
            sequence=Serial(), profiles=_named("conventional", "stable", "hybrid"), items=10,
            claims=c.SERIAL_POSITION_CLAIMS),
        Experiment(
            name="sequence-length", paper="Fig. 3",
            description="30 items, 30 readouts; hybrid vs conventional; memorized items, their "
                        "ratio, average performance and gross memory vs items trained",
            sequence=Serial(), profiles=_named("conventional", "hybrid"), items=30, alpha_factor=0.5,
            quick_trials=3, claims=c.SEQUENCE_LENGTH_CLAIMS),
        Experiment(
            name="repetition", paper="Fig. 4a-d, Supp. Fig. 4",
            description="the same 10-item sequence 10 times (Fig. 4 is read after the 9th pass, "
                        "Supp. Fig. 4c after the 10th); lowest item performance per repetition; "
                        "highest minus lowest",
            sequence=Repetition(10), profiles=_named("conventional", "hybrid"),
            quick_trials=3, claims=c.REPETITION_CLAIMS),
        Experiment(
            name="poisoning", paper="Fig. 4e-h",
            description="9 clean repetitions, then one pass whose positives carry deranged labels",
            sequence=Poisoning(9), profiles=_named("conventional", "hybrid"),
            quick_trials=3, claims=c.POISONING_CLAIMS),
        Experiment(
            name="frequency", paper="Fig. 5",
            description="item i presented i times (55 presentations) on the authors' published "
                        "schedules; Spearman of performance with order and with frequency",
            sequence=Frequency(), profiles=_named("conventional", "hybrid"),
            quick_trials=3, claims=c.FREQUENCY_CLAIMS,
            min_items=4),   # with 3 items |Spearman(frequency, last position)| cannot be <= 0.12
        Experiment(
            name="single-value", paper="Supp. Fig. 2",
            description="networks with one flexibility for every synapse: 0.3 to 1.0",
            sequence=Serial(), profiles={f"constant:{v}": constant(v) for v in SINGLE_VALUES},
            quick_trials=3, claims=c.SINGLE_VALUE_CLAIMS),
        Experiment(
            name="biased-flexibility", paper="Supp. Fig. 3",
            description="uniform flexibility vs distributions biased toward stable or flexible",
            sequence=Serial(),
            profiles=_named("hybrid") | {f"biased-{toward}:{a}": biased(a, toward=toward)
                                         for toward in ("stable", "flexible") for a in BIAS_LEVELS},
            quick_trials=3, claims=c.BIASED_CLAIMS),
    ]
}


#: ``--learners baselines``: the paper's two networks beside the established methods (issue 11);
#: meant for serial-position, sequence-length, poisoning and frequency, valid for every experiment.
BASELINES = ("hybrid", "conventional", "ewc", "si", "replay", "meta-adam")

#: Learners that are flexibility profiles under another name: ``sgd`` is plain SGD, i.e. the
#: conventional network (f = 1, S = 1).
PROFILE_ALIASES: dict[str, FlexibilityProfile] = {"sgd": constant(1.0)}


def learner_object(experiment: str, name: str) -> FlexibilityProfile | learners.Method:
    """What a learner name stands for in an experiment: the experiment's own profile of that
    name, a named profile (``hybrid``, ``conventional``, ``stable``), ``sgd``, or a baseline
    (``ewc``, ``si``, ``replay``, ``meta-adam``, optionally with settings: ``ewc:lam=1e4``)."""
    return resolve_learner(experiment, name).method


def resolve_learner(experiment: str, name: str) -> Learner:
    """The :class:`~metaplastic.config.Learner` of a name (see :func:`learner_object`); the
    error of an unknown name or a bad setting names what is valid."""
    for table in (EXPERIMENTS[experiment].profiles, NAMED_PROFILES, PROFILE_ALIASES):
        if name in table:
            return Learner(name, table[name])
    if not learners.is_baseline(name):
        raise ValueError(f"unknown learner {name!r}; baselines: {', '.join(learners.FAMILIES)} "
                         "(optionally with settings, e.g. ewc:lam=1e4,decay=1); or a profile of "
                         f"{experiment!r}: {', '.join(EXPERIMENTS[experiment].profiles)}, or "
                         f"{', '.join(list(NAMED_PROFILES) + list(PROFILE_ALIASES))}")
    method = learners.parse(name)      # its error names the settings that are valid
    return Learner(name, method, method.family)


def resolve_learners(experiment: str, names: str | list[str] | tuple[str, ...]) -> tuple[Learner, ...]:
    """Learners from a list of names or a comma-separated string; ``baselines`` stands for
    :data:`BASELINES`."""
    if isinstance(names, str):   # "hybrid,ewc:lam=1,decay=1": "decay=1" continues ewc's settings
        tokens, names = [n.strip() for n in names.split(",") if n.strip()], []
        for token in tokens:
            if names and "=" in token and ":" not in token and ":" in names[-1]:
                names[-1] += "," + token
            else:
                names.append(token)
    out: list[str] = []
    for name in names:
        out.extend(BASELINES if name == "baselines" else [name])
    if not out:
        raise ValueError("--learners needs at least one learner, e.g. hybrid,ewc or baselines")
    duplicates = sorted({n for n in out if out.count(n) > 1})
    if duplicates:
        raise ValueError(f"--learners names {', '.join(duplicates)} more than once")
    return tuple(resolve_learner(experiment, name) for name in out)


def make_config(experiment: str, scale: str = "quick", *, items: int | None = None,
                trials: int | None = None, seed: int = 0, learners: str | list[str] | None = None,
                **overrides) -> RunConfig:
    """Defaults from the experiment and the scale preset, then overrides, then checks.

    ``learners`` replaces the experiment's profiles (``"hybrid,ewc"``, ``"baselines"``); names
    become :class:`~metaplastic.config.Learner` objects here, once."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; known: {', '.join(EXPERIMENTS)}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")
    spec, preset = EXPERIMENTS[experiment], SCALES[scale]
    values = {k: v for k, v in dataclasses.asdict(preset).items() if k not in ("name", "description")}
    default_trials = spec.quick_trials if scale == "quick" and spec.quick_trials else preset.trials
    values.update(experiment=experiment, scale=scale, items=items or spec.items,
                  trials=trials if trials is not None else default_trials, seed=seed,
                  learners=tuple(Learner(name, profile) for name, profile in spec.profiles.items()),
                  alpha=preset.alpha * spec.alpha_factor)
    if learners is not None:
        values.update(learners=resolve_learners(experiment, learners))
    values.update({k: v for k, v in overrides.items() if v is not None})
    config = RunConfig(**values)
    validate(config)
    if config.items < spec.min_items:
        raise ValueError(f"--items must be at least {spec.min_items} for {experiment!r}, got {config.items}")
    return config

__all__ = ["BASELINES", "EXPERIMENTS", "SCALES", "Experiment", "Learner", "RunConfig", "SequenceRequest",
           "learner_object", "make_config", "resolve_learner", "resolve_learners"]
