"""What the test modules share: the shared MNIST folder and one tiny run (its configuration,
synthetic features and a lab that serves them).

Tests take these as fixtures (``tiny_config``, ``synthetic_features``, ``fake_lab``) and never import
another test module; code that runs outside pytest (a writer process started by a test) imports the
plain functions below (``from tests.conftest import FakeLab, make_tiny_config``).

Tests marked ``slow`` (registered in pyproject.toml: many processes or kills, Ray, real feature
extraction, ``torch.compile``, fixtures that train every experiment) are left out by
``python -m pytest -m "not slow"``; CI runs everything. The tests and the processes they start
train with one torch thread unless OMP_NUM_THREADS says otherwise (:data:`TEST_THREADS`).
"""

import os
from pathlib import Path

import numpy as np
import pytest

#: Torch threads of the test process and of every process it starts (writers, scripts), unless
#: OMP_NUM_THREADS is set already. The tests train networks of 8 to 16 units: with two threads on
#: a 2-core machine that other work shares, each product waits for the busier core and the
#: quick suite ran three times slower than with one (a 10x slower batched product, measured).
TEST_THREADS = int(os.environ.setdefault("OMP_NUM_THREADS", "1"))

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

#: The tiny run: a few items, 8-unit networks, a dozen positives per presentation. Learnable in
#: two epochs at lr 0.05 on :func:`prototype_features`; seconds per run on a 2-core CPU.
TINY_SETTINGS = dict(trials=2, seed=3, items=4, width=8, train_per_class=12, test_per_class=6,
                     epochs=2, batch_size=5, lr=0.05, alpha=20.0, feature_scale=1.0)


def make_tiny_config(experiment: str = "serial-position", **overrides):
    """The tiny run of ``experiment`` (quick preset), with ``overrides`` (any ``make_config``
    keyword: ``learners="hybrid,ewc"``, ``precision=``, ``items=``...)."""
    from metaplastic.experiments import make_config

    return make_config(experiment, "quick", **(TINY_SETTINGS | overrides))


def prototype_features(name: str, split: str, n: int) -> np.ndarray:
    """Class prototypes plus noise: learnable, deterministic, no backbone needed."""
    from metaplastic.data.two_digit import CLASSES, REFERENCE_CLASSES

    index = (CLASSES + REFERENCE_CLASSES).index(name)
    prototype = np.random.default_rng([index]).normal(size=9216)
    noise = np.random.default_rng([index, split == "test"]).normal(size=(n, 9216))
    return (prototype + noise).astype(np.float16)


class FakeLab:
    """A Lab stand-in with synthetic features: the store and resume logic without a backbone."""

    def frequency_schedules(self, config):
        from metaplastic.lab import frequency_schedules

        return frequency_schedules(SHARED_DATA / "frequency_profiles.csv", config)

    def provenance(self):
        return {"backbone": {"weights": "synthetic"}, "mnist": {"source": "synthetic"}}

    def features(self, config, trials, progress=True):
        from metaplastic.trials import required_features

        return {(c, s): prototype_features(c, s, n) for c, s, n in required_features(config, trials)}


@pytest.fixture(scope="session")
def tiny_config():
    """``tiny_config(experiment="serial-position", **overrides)``: a tiny run's RunConfig."""
    return make_tiny_config


@pytest.fixture(scope="session")
def synthetic_features():
    """The feature source of tiny runs: ``synthetic_features(class, split, n) -> [n, 9216]``."""
    return prototype_features


@pytest.fixture(scope="session")
def fake_lab():
    return FakeLab()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared MNIST folder beside the repository (tests never download)."""
    if not (SHARED_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.fail(f"shared MNIST not found at {SHARED_DATA}; tests need ../shared/data")
    return SHARED_DATA


@pytest.fixture(scope="session")
def digits(shared_data):
    from metaplastic.data import load_digits

    return load_digits(shared_data, download=False)


def pytest_configure(config):
    import torch

    torch.set_num_threads(TEST_THREADS)   # in case torch was imported before this file set the variable
