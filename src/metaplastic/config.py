"""The typed, frozen run configuration and the scale presets.

This module imports nothing of the package above it (only the list of classes and the profile
protocol): the engine, the results store and the registry of experiments all read a
:class:`RunConfig`, and none of them is needed to build or check one. Its learners are objects,
resolved once from their names by :func:`metaplastic.experiments.make_config`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from metaplastic.data.two_digit import CLASSES

#: The two-digit classes bound the length of a sequence.
N_CLASSES = len(CLASSES)

#: Where the frequency experiment's schedules come from (docs/frequency.md).
FREQUENCY_SCHEDULE_SOURCES = ("published", "generated")

#: The arithmetic of training and testing (docs/benchmarks.md, "Precision"). Master weights,
#: optimizer state and updates are always in the run's dtype; "tf32" keeps them in float32 and lets
#: a CUDA device compute the matrix products with TF32 inputs (10-bit mantissa). "bfloat16" also
#: keeps float32 master weights and state, and runs the networks' forward products (and so their
#: backward products) in bfloat16 under ``torch.autocast``, on a CPU or a GPU. "float64" is the
#: reference against which float32 is checked.
PRECISIONS = ("float32", "float64", "tf32", "bfloat16")

#: The version of what a trial computes. It is part of every run's identity (its folder name), so
#: a resume never mixes trials of two versions of the code. Bump it in the same commit as any
#: change that alters the records a given configuration and seed produce: task sets, sequences,
#: initialisation, the training loop, the rule, the statistics written per record, or the
#: preprocessing of features. Do not bump it for changes that leave records bit-identical
#: (speed, logging, new columns computed from existing ones, docs).
PROTOCOL_VERSION = 2

#: Bounds on settings beyond which a run is not a setting of this lab but a typo.
MAX_TRIALS = 1_000_000
MAX_EPOCHS = 10_000
#: The feature extractor the presets are calibrated on: the untrained Table S1 AlexNet (seed 0),
#: deterministic and needing no network (metaplastic.features).
DEFAULT_BACKBONE = "untrained-s1"
MAX_SEED = 2**63 - 1
#: The backbones named by a word (metaplastic.features); anything else given to --backbone is a file.
BACKBONE_NAMES = ("untrained-s1", "imagenet", "untrained", "auto")
#: The untrained networks, whose weights are a draw: ``untrained-s1:seed=3`` names the draw.
DRAWN_BACKBONES = ("untrained-s1", "untrained")


@dataclass(frozen=True)
class BackboneSpec:
    """A ``--backbone`` value, parsed: a named network (its draw seed, if given) or a file."""

    name: str | None          # one of BACKBONE_NAMES, or None for a file
    seed: int | None = None   # the draw of an untrained network, when the spec gives one
    path: str | None = None   # a weights file: .pth (a state dict) or .npy (BVLC's pickled dict)


def parse_backbone(text: str) -> BackboneSpec:
    """``untrained-s1``, ``untrained-s1:seed=3``, ``untrained:seed=3``, ``imagenet``, ``auto``, or a
    path. A ValueError names the value and what is valid; files are only looked at when loaded."""
    name, colon, options = text.partition(":")
    if name not in BACKBONE_NAMES:
        if not text:
            raise ValueError("--backbone is empty: give one of " + ", ".join(BACKBONE_NAMES) + " or a file")
        return BackboneSpec(None, path=text)
    if not colon:
        return BackboneSpec(name)
    if name not in DRAWN_BACKBONES:
        raise ValueError(f"--backbone {text}: {name} takes no options (only "
                         f"{' and '.join(DRAWN_BACKBONES)} take seed=K, the draw of their weights)")
    seed = None
    for option in options.split(","):
        key, equals, value = option.partition("=")
        if key.strip() != "seed" or not equals:
            raise ValueError(f"--backbone {text}: unknown option {option!r}; {name} takes seed=K "
                             f"(K an integer, 0..2**63-1), e.g. {name}:seed=1")
        if seed is not None:
            raise ValueError(f"--backbone {text}: seed is given twice")
        value = value.strip()
        if not (value.isascii() and value.isdigit()) or int(value) > MAX_SEED:
            raise ValueError(f"--backbone {text}: seed must be an integer between 0 and 2**63-1, "
                             f"got {value!r}")
        seed = int(value)
    return BackboneSpec(name, seed)


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
        Scale("paper", "the reference implementation's sizes and alpha (docs/protocol.md), lr and "
              "centring calibrated on the Table S1 features; for a GPU",
              width=4096, train_per_class=2000, test_per_class=1000, epochs=5, batch_size=1024,
              lr=2e-4, alpha=4e5, feature_scale=10.0, trials=100, center_features=True),
        Scale("quick", "reduced sizes for a 2-core CPU: the whole reproduction (every "
              "experiment) in about 24 minutes (docs/results-quick.md)",
              width=512, train_per_class=300, test_per_class=100, epochs=5, batch_size=64,
              lr=1e-4, alpha=3e4, feature_scale=10.0, trials=5, center_features=True),
    ]
}


@dataclass(frozen=True)
class Learner:
    """What one stacked network is trained as, resolved from its name once.

    ``method`` is a flexibility profile (``family == "profile"``, trained by MetaplasticSGD) or a
    baseline method's settings (:class:`metaplastic.learners.base.Method`, ``family`` its name:
    ``ewc``, ``si``, ...). ``name`` is how the records, figures and report call it.
    """

    name: str
    method: Any
    family: str = "profile"

    @property
    def is_profile(self) -> bool:
        return self.family == "profile"

    def describe(self) -> str:
        """A baseline's every setting, spelled out for the run's record: ``ewc = ewc:lam=100,...``."""
        return f"{self.name} = {self.method.describe()}"


@dataclass(frozen=True)
class RunConfig:
    """Every setting of one run; written next to its results."""

    experiment: str
    scale: str
    items: int
    trials: int
    seed: int
    learners: tuple[Learner, ...]
    width: int
    train_per_class: int
    test_per_class: int
    epochs: int
    batch_size: int
    lr: float
    alpha: float
    feature_scale: float
    center_features: bool = False
    backbone: str = DEFAULT_BACKBONE
    device: str = "cpu"
    dataset_seed: int = 0
    dropout: float = 0.0
    frequency_schedules: str = "published"   # frequency experiment: "published" or "generated"
    precision: str = "float32"               # see PRECISIONS

    #: Settings that do not change any number a trial produces: left out of the run's identity,
    #: so that asking for more trials extends a run folder instead of starting a new one.
    #: The backbone is named as asked ("auto", a path, "untrained-s1:seed=1"); what counts is its
    #: fingerprint (provenance), a hash of the weights, which another draw seed or file changes.
    NOT_IDENTITY = ("trials", "backbone")

    #: Settings added after runs existed, with the value every earlier run had: at that value they
    #: are left out of the identity, so earlier run folders keep their names (and resume).
    LATER_SETTINGS = {"learner_settings": (), "precision": "float32"}

    @property
    def learner_names(self) -> tuple[str, ...]:
        return tuple(learner.name for learner in self.learners)

    @property
    def profile_learners(self) -> tuple[Learner, ...]:
        """The learners that are flexibility profiles, in the run's order."""
        return tuple(learner for learner in self.learners if learner.is_profile)

    @property
    def learner_settings(self) -> tuple[str, ...]:
        """Every setting of the run's baselines, spelled out; empty when all are profiles."""
        return tuple(learner.describe() for learner in self.learners if not learner.is_profile)

    def identity(self) -> dict:
        """The settings that change a trial's numbers. Learners enter by name under the key
        ``profiles`` and their settings under ``learner_settings``, the keys of the folders
        written before learners were objects, so those folders keep their names (and resume)."""
        values = self.to_dict()
        values["profiles"] = values.pop("learners")
        return {k: v for k, v in values.items() if k not in self.NOT_IDENTITY
                and not (k in self.LATER_SETTINGS and v == self.LATER_SETTINGS[k])}

    def run_hash(self, provenance: dict) -> str:
        text = json.dumps({"config": self.identity(), "provenance": provenance,
                           "protocol_version": PROTOCOL_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def to_dict(self) -> dict:
        """Plain data, for config.json: learners by name, baselines' settings spelled out."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values.update(learners=self.learner_names, learner_settings=self.learner_settings)
        return values


#: How a yes/no setting may be written on a command line.
_BOOLEAN_TEXT = {"1": True, "true": True, "yes": True, "on": True,
                 "0": False, "false": False, "no": False, "off": False}


def parse_setting(name: str, text: str):
    """One RunConfig setting from its text (a sweep's grid, a script's ``--set``), typed by its field:
    ``parse_setting("width", "512") == 512``, ``parse_setting("center_features", "on") is True``."""
    types = {field.name: field.type for field in dataclasses.fields(RunConfig)}
    if name not in types:
        raise ValueError(f"unknown setting {name!r}; known: {', '.join(types)}")
    kind = types[name]
    if kind == "bool":
        if text.lower() not in _BOOLEAN_TEXT:
            raise ValueError(f"{name} must be one of {', '.join(_BOOLEAN_TEXT)}, got {text!r}")
        return _BOOLEAN_TEXT[text.lower()]
    cast = {"int": int, "float": float, "str": str}.get(kind)
    if cast is None:
        raise ValueError(f"{name} ({kind}) cannot be given as text")
    try:
        return cast(text)
    except ValueError:
        raise ValueError(f"{name} must be a {kind}, got {text!r}") from None


def validate(config: RunConfig) -> None:
    """Every check that needs no registry: raise ValueError naming the value and what is valid."""
    if not 3 <= config.items <= N_CLASSES:
        raise ValueError(f"--items must be between 3 and {N_CLASSES} (there are {N_CLASSES} "
                         f"two-digit classes), got {config.items}")
    if not 1 <= config.trials <= MAX_TRIALS:
        raise ValueError(f"--trials must be between 1 and {MAX_TRIALS:,}, got {config.trials}")
    for name in ("width", "train_per_class", "test_per_class", "epochs", "batch_size"):
        if getattr(config, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(config, name)}")
    if config.epochs > MAX_EPOCHS:
        raise ValueError(f"--epochs must be at most {MAX_EPOCHS:,}, got {config.epochs}")
    for name in ("seed", "dataset_seed"):
        if not 0 <= getattr(config, name) <= MAX_SEED:
            raise ValueError(f"--{name.replace('_', '-')} must be between 0 and 2**63-1, "
                             f"got {getattr(config, name)}")
    for name in ("lr", "alpha", "feature_scale"):
        if not 0 <= getattr(config, name) < math.inf:   # also refuses nan
            raise ValueError(f"--{name.replace('_', '-')} must be a finite number >= 0, "
                             f"got {getattr(config, name)}")
    if not 0 <= config.dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {config.dropout}")
    if config.device not in ("cpu", "cuda") and not (config.device.startswith("cuda:")
                                                      and config.device[5:].isdigit()):
        raise ValueError(f"--device must be cpu or cuda, got {config.device!r}")
    if config.precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {config.precision!r}")
    if config.precision == "tf32" and not config.device.startswith("cuda"):
        raise ValueError("--precision tf32 changes only the matrix products of a CUDA device; on "
                         f"--device {config.device} use float32 (or float64)")
    parse_backbone(config.backbone)   # a named network's options; a file is looked at when loaded
    if config.frequency_schedules not in FREQUENCY_SCHEDULE_SOURCES:
        raise ValueError(f"--frequency-schedules must be one of {', '.join(FREQUENCY_SCHEDULE_SOURCES)}, "
                         f"got {config.frequency_schedules!r}")
