from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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
