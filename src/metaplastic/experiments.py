"""The registry of experiments and the scale presets; the typed, frozen run configuration.

One entry per experiment of the paper feeds the CLI choices, the report and
the tests' parametrisation: nothing is listed twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from metaplastic import claims as c
from metaplastic.data.two_digit import CLASSES


@dataclass(frozen=True)
class Experiment:
    """One experiment of the paper."""

    name: str
    paper: str                     # which figure it reproduces
    description: str
    sequence: str                  # "serial", "repetition", "poisoning", "frequency"
    profiles: tuple[str, ...]      # flexibility profiles compared (names or "constant:0.8")
    items: int = 10
    repetitions: int = 1           # passes over the sequence (repetition, poisoning: 9)
    alpha_factor: float = 1.0      # alpha relative to the scale's (paper: 2e5 / 4e5 for 30 items)
    quick_trials: int | None = None  # fewer trials at the quick scale for long sequences
    claims: tuple[c.Claim, ...] = field(default=())


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e for e in [
        Experiment(
            name="serial-position", paper="Fig. 2",
            description="10 items learned once each; conventional, stable (f = 0.3) and hybrid "
                        "networks; performance of every item after each presentation",
            sequence="serial", profiles=("conventional", "stable", "hybrid"), items=10,
            claims=c.SERIAL_POSITION_CLAIMS),
        Experiment(
            name="sequence-length", paper="Fig. 3",
            description="30 items, 30 readouts; hybrid vs conventional; memorized items, their "
                        "ratio, average performance and gross memory vs items trained",
            sequence="serial", profiles=("conventional", "hybrid"), items=30, alpha_factor=0.5,
            quick_trials=3,
            claims=c.SEQUENCE_LENGTH_CLAIMS),
        Experiment(
            name="repetition", paper="Fig. 4a-d, Supp. Fig. 4",
            description="the same 10-item sequence 9 times; lowest item performance per "
                        "repetition; highest minus lowest",
            sequence="repetition", profiles=("conventional", "hybrid"), repetitions=9,
            quick_trials=3,
            claims=c.REPETITION_CLAIMS),
        Experiment(
            name="poisoning", paper="Fig. 4e-h",
            description="9 clean repetitions, then one pass whose positives carry deranged labels",
            sequence="poisoning", profiles=("conventional", "hybrid"), repetitions=9,
            quick_trials=3,
            claims=c.POISONING_CLAIMS),
        Experiment(
            name="frequency", paper="Fig. 5",
            description="item i presented i times (55 presentations) in an order weakly "
                        "correlated with frequency; Spearman with order and with frequency",
            sequence="frequency", profiles=("conventional", "hybrid"),
            quick_trials=3,
            claims=c.FREQUENCY_CLAIMS),
        Experiment(
            name="single-value", paper="Supp. Fig. 2",
            description="networks with one flexibility for every synapse: 0.3 to 1.0",
            sequence="serial",
            profiles=tuple(f"constant:{v}" for v in (0.3, 0.5, 0.72, 0.8, 0.88, 0.9, 1.0)),
            quick_trials=3,
            claims=c.SINGLE_VALUE_CLAIMS),
        Experiment(
            name="biased-flexibility", paper="Supp. Fig. 3",
            description="uniform flexibility vs distributions biased toward stable or flexible",
            sequence="serial",
            profiles=("hybrid", "biased-stable:0.5", "biased-stable:0.1", "biased-flexible:0.5",
                      "biased-flexible:0.1"),
            quick_trials=3,
            claims=c.BIASED_CLAIMS),
    ]
}


@dataclass(frozen=True)
class Scale:
    """A preset of sizes and calibrated hyperparameters (see docs/calibration.md)."""

    name: str
    description: str
    width: int               # FC6 and FC7 widths (paper: 4096)
    train_per_class: int     # positives per presentation (reference: 2,000)
    test_per_class: int      # test images per item (paper: 1,000)
    epochs: int
    batch_size: int
    lr: float
    alpha: float
    feature_scale: float     # features / their global SD * feature_scale
    trials: int
    center_features: bool = False  # subtract the trial's mean training feature first


SCALES: dict[str, Scale] = {
    s.name: s for s in [
        Scale("paper", "the reference implementation's settings (protocol.md); for a GPU",
              width=4096, train_per_class=2000, test_per_class=1000, epochs=5, batch_size=1024,
              lr=1e-4, alpha=4e5, feature_scale=10.0, trials=100),
        Scale("quick", "reduced sizes that run on a 2-core CPU in about 10 minutes",
              width=512, train_per_class=300, test_per_class=100, epochs=5, batch_size=64,
              lr=1e-4, alpha=3e4, feature_scale=10.0, trials=5, center_features=True),
    ]
}


@dataclass(frozen=True)
class RunConfig:
    """Every setting of one run; written next to its results."""

    experiment: str
    scale: str
    items: int
    trials: int
    seed: int
    profiles: tuple[str, ...]
    width: int
    train_per_class: int
    test_per_class: int
    epochs: int
    batch_size: int
    lr: float
    alpha: float
    feature_scale: float
    center_features: bool = False
    backbone: str = "auto"
    device: str = "cpu"
    dataset_seed: int = 0
    dropout: float = 0.0

    #: Settings that do not change any number a trial produces: left out of the run's identity,
    #: so that asking for more trials extends a run folder instead of starting a new one.
    NOT_IDENTITY = ("trials",)

    def identity(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in self.NOT_IDENTITY}

    def run_hash(self, provenance: dict) -> str:
        text = json.dumps({"config": self.identity(), "provenance": provenance}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def make_config(experiment: str, scale: str = "quick", *, items: int | None = None,
                trials: int | None = None, seed: int = 0, **overrides) -> RunConfig:
    """Defaults from the experiment and the scale preset, then overrides, then checks."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; known: {', '.join(EXPERIMENTS)}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")
    spec, preset = EXPERIMENTS[experiment], SCALES[scale]
    values = {k: v for k, v in dataclasses.asdict(preset).items() if k not in ("name", "description")}
    default_trials = spec.quick_trials if scale == "quick" and spec.quick_trials else preset.trials
    values.update(experiment=experiment, scale=scale, items=items or spec.items,
                  trials=trials if trials is not None else default_trials, seed=seed,
                  profiles=spec.profiles, alpha=preset.alpha * spec.alpha_factor)
    values.update({k: v for k, v in overrides.items() if v is not None})
    config = RunConfig(**values)
    validate(config)
    return config


def validate(config: RunConfig) -> None:
    if not 3 <= config.items <= len(CLASSES):
        raise ValueError(f"--items must be between 3 and {len(CLASSES)} (there are {len(CLASSES)} "
                         f"two-digit classes), got {config.items}")
    if config.trials < 1:
        raise ValueError(f"--trials must be at least 1, got {config.trials}")
    for name in ("width", "train_per_class", "test_per_class", "epochs", "batch_size"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(config, name)}")
    for name in ("lr", "alpha", "feature_scale"):
        if not getattr(config, name) >= 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(config, name)}")
    if config.device not in ("cpu", "cuda") and not config.device.startswith("cuda:"):
        raise ValueError(f"--device must be cpu or cuda, got {config.device!r}")
