"""The frozen AlexNet feature extractor and the on-disk feature cache.

The backbone (conv1..pool5, 9216 features per image) never learns, so the
features of every image are computed once and stored (docs/protocol.md section 3).
The reference re-ran the backbone at every step of every epoch.

Preprocessing (docs/protocol.md section 3) depends on the network. Both resize the
56x56 grey image to 227x227 with bilinear interpolation (``align_corners=False``,
no antialiasing: it is an upsampling) and copy it to three channels. Then:

- the Table S1 network (the default) takes the reference's input, pixels 0-255
  minus the mean image. The ImageNet mean image itself is not bundled, so its
  per-channel mean (123.68, 116.78, 103.94, R, G, B, the values published with
  the original network) is subtracted at every position, unless a mean image
  file is given (:func:`load_mean_image`). The scale matters: the local
  response normalisation constants of Table S1 assume 0-255 inputs (at the
  [-2, 2] scale of torchvision's normalisation LRN would do nothing).
- torchvision's variant (its ImageNet weights, or untrained) takes what its
  weights were trained with: [0, 1], minus the ImageNet mean, over the std.

The default backbone is the untrained Table S1 network drawn from seed 0: the
same features on every machine, online or not, and the features the presets
were calibrated on (docs/calibration.md). Other weights (another draw,
``untrained-s1:seed=K``; the BVLC ImageNet weights from a local file) are an
explicit choice and warn that the presets were not calibrated for them.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from metaplastic.config import BACKBONE_NAMES, DEFAULT_BACKBONE, parse_backbone

#: Bump whenever a change alters what extraction computes: old cache entries then miss.
EXTRACTION_VERSION = 1
FEATURE_DIM = 9216
INPUT_SIZE = 227
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The per-channel mean of the reference's mean image, on the 0-255 scale (R, G, B).
REFERENCE_MEAN_PIXEL = (123.68, 116.779, 103.939)
#: How each kind of network wants its input; the text enters every cache key and provenance.
PREPROCESSING = {
    "imagenet": (f"uint8/255 -> bilinear {INPUT_SIZE}x{INPUT_SIZE} (align_corners=False) -> "
                 f"3 channels -> normalise mean {IMAGENET_MEAN} std {IMAGENET_STD}"),
    "reference": (f"uint8 0-255 -> bilinear {INPUT_SIZE}x{INPUT_SIZE} (align_corners=False) -> "
                  f"3 channels -> minus the mean pixel {REFERENCE_MEAN_PIXEL}"),
}
WEIGHT_CHOICES = BACKBONE_NAMES
#: Weights files by their suffix: a torch state dict, or BVLC's pickled dict of NumPy arrays.
STATE_DICT_SUFFIXES = (".pth", ".pt")
BVLC_SUFFIX = ".npy"

TORCHVISION_ARCHITECTURE = "torchvision alexnet.features (conv1..pool5)"
TABLE_S1_ARCHITECTURE = "Table S1 AlexNet conv1..pool5 (96-256-384-384-256, LRN, groups; metaplastic.alexnet)"


class BackboneError(RuntimeError):
    """The requested backbone weights cannot be had; the message says why."""


@dataclass(eq=False)
class MeanImage:
    """A mean image (or pixel) to subtract from the Table S1 network's input instead of the mean pixel.

    ``values``: float32, R, G, B, 0-255, ``[1, 3, 227, 227]`` or ``[1, 3, 1, 1]``, ready to subtract.
    """

    values: torch.Tensor
    file: str
    sha256: str      # of the file
    shape: tuple     # as the file holds it
    layout: str      # how the file was read

    @property
    def digest(self) -> str:
        """A hash of what is subtracted (not of the file: two layouts of one mean agree)."""
        return hashlib.sha256(self.values.numpy().tobytes()).hexdigest()[:16]

    @property
    def preprocessing(self) -> str:
        what = "pixel" if self.values.shape[-1] == 1 else f"image {INPUT_SIZE}x{INPUT_SIZE}"
        return (f"uint8 0-255 -> bilinear {INPUT_SIZE}x{INPUT_SIZE} (align_corners=False) -> "
                f"3 channels -> minus the mean {what} (R, G, B) sha256 {self.digest}")

    def describe(self) -> dict:
        return {"file": self.file, "sha256": self.sha256, "shape": list(self.shape), "layout": self.layout,
                "subtracted_sha256": self.digest}


@dataclass
class Backbone:
    """AlexNet conv1..pool5, frozen and in eval mode, with a record of its weights."""

    module: torch.nn.Module
    weights: str          # what was actually loaded: "imagenet", "untrained", or a file path
    fingerprint: str      # a hash of the parameters, part of every cache key
    architecture: str = TORCHVISION_ARCHITECTURE
    input_style: str = "imagenet"   # a key of PREPROCESSING
    seed: int | None = None         # the draw of an untrained network; None for loaded weights
    mean: MeanImage | None = None   # subtracted instead of the mean pixel ("reference" input only)

    @property
    def preprocessing(self) -> str:
        return PREPROCESSING[self.input_style] if self.mean is None else self.mean.preprocessing

    @property
    def is_calibrated(self) -> bool:
        return calibrated_features(self.describe())

    def describe(self) -> dict:
        """The provenance record. ``seed`` (an untrained network's draw) and ``mean_image`` are
        recorded for the eye; the run's identity takes the fingerprint and preprocessing, which
        they change (metaplastic.results.run_identity)."""
        described = {"architecture": self.architecture,
                     "weights": self.weights, "fingerprint": self.fingerprint,
                     "preprocessing": self.preprocessing, "extraction_version": EXTRACTION_VERSION}
        if self.seed is not None:
            described["seed"] = self.seed
        if self.mean is not None:
            described["mean_image"] = self.mean.describe()
        return described


def calibrated_features(described: dict) -> bool:
    """Whether a backbone (as ``Backbone.describe`` records it in a run's provenance) gives the
    features the presets were calibrated on: the default, the untrained Table S1 network drawn
    from seed 0 (runs recorded before the seed was have no ``seed``: theirs was 0), its input
    minus the mean pixel."""
    return (described.get("weights") == "untrained" and described.get("architecture") == TABLE_S1_ARCHITECTURE
            and described.get("seed", 0) == 0 and described.get("mean_image") is None)


def load_backbone(weights: str | os.PathLike = DEFAULT_BACKBONE, *, seed: int | None = None,
                  mean_image: str | os.PathLike | None = None) -> Backbone:
    """Build the frozen backbone.

    ``weights``: ``"untrained-s1"`` (the default: the paper's Table S1 network,
    untrained, metaplastic.alexnet), ``"imagenet"`` (torchvision's
    ``IMAGENET1K_V1``, downloaded when online or read from torchvision's cache),
    ``"untrained"`` (torchvision's variant, its default init), ``"auto"``
    (imagenet when obtainable, else torchvision's untrained variant with a loud
    warning), or a path: a ``.npy`` of BVLC's weights (``{"conv1": [W, b], ...}``,
    :func:`metaplastic.alexnet.table_s1_from_bvlc`; unpickled, so it must be
    trusted) or a ``.pth`` state dict, of the Table S1 network (told by its keys:
    conv2 is ``4.weight``) or of torchvision's AlexNet (whole, or its ``features``).
    An untrained network is drawn from the spec's seed (``untrained-s1:seed=3``),
    else from ``seed``, else from 0. ``mean_image``: a ``.npy`` mean image or pixel
    subtracted from the Table S1 network's input instead of the mean pixel
    (:func:`load_mean_image`).
    """
    weights = os.fspath(weights)
    try:
        spec = parse_backbone(weights)
    except ValueError as error:
        raise BackboneError(str(error)) from None
    if spec.seed is not None and seed is not None and spec.seed != seed:
        raise BackboneError(f"--backbone {weights} names seed {spec.seed}, but seed={seed} was asked for")
    seed = spec.seed if spec.seed is not None else (seed if seed is not None else 0)
    backbone = _load(spec, weights, seed)
    if mean_image is not None:
        if backbone.input_style != "reference":
            raise BackboneError(f"--mean-image replaces the mean pixel of the Table S1 network's input "
                                f"(untrained-s1, a BVLC .npy or a Table S1 .pth), not of {weights}: "
                                "torchvision's variant takes ImageNet's mean and std on the 0-1 scale")
        backbone.mean = load_mean_image(mean_image)
    return backbone


def _load(spec, weights: str, seed: int) -> Backbone:
    if spec.name == "untrained-s1":
        from metaplastic.alexnet import table_s1_features

        return _freeze(table_s1_features(seed), "untrained", architecture=TABLE_S1_ARCHITECTURE,
                       input_style="reference", seed=seed)
    if spec.name == "untrained":
        return _freeze(_untrained_features(seed), "untrained", seed=seed)
    if spec.name == "imagenet":
        return _freeze(_imagenet_features(), "imagenet")
    if spec.name == "auto":
        try:
            return _freeze(_imagenet_features(), "imagenet")
        except BackboneError as error:
            warnings.warn(f"USING AN UNTRAINED BACKBONE: {error}. Features come from AlexNet with "
                          f"torchvision's default random init (seed {seed}); this is recorded with "
                          "every result. Give --backbone PATH.npy (BVLC's weights) for the paper's "
                          "ImageNet network.", RuntimeWarning, stacklevel=3)
            return _freeze(_untrained_features(seed), "untrained", seed=seed)
    path = Path(weights).expanduser()
    if path.suffix == BVLC_SUFFIX:
        return _freeze(_table_s1_from_bvlc_file(path), str(path), architecture=TABLE_S1_ARCHITECTURE,
                       input_style="reference")
    if path.suffix in STATE_DICT_SUFFIXES or path.exists():
        module, architecture = _features_from_file(path)
        return _freeze(module, str(path), architecture=architecture,
                       input_style="reference" if architecture == TABLE_S1_ARCHITECTURE else "imagenet")
    raise BackboneError(f"unknown backbone weights {weights!r}: use one of {', '.join(WEIGHT_CHOICES)} "
                        "(untrained-s1 and untrained take :seed=K), a .npy of BVLC's AlexNet weights "
                        "or a .pth state dict")


def _untrained_features(seed: int) -> torch.nn.Module:
    from torchvision.models import alexnet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return alexnet(weights=None).features


def _imagenet_features() -> torch.nn.Module:
    from torchvision.models import AlexNet_Weights, alexnet

    try:
        return alexnet(weights=AlexNet_Weights.IMAGENET1K_V1).features
    except Exception as error:  # offline and not cached, or a damaged cache file
        first_line = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise BackboneError(f"ImageNet AlexNet weights are not obtainable ({first_line})") from None


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise BackboneError(f"--backbone {path} is a folder; give a .pth file holding an AlexNet state "
                            "dict, a .npy of BVLC's AlexNet weights, or one of " + ", ".join(WEIGHT_CHOICES))
    if not path.is_file():
        raise BackboneError(f"backbone weights file {path} does not exist")


def _table_s1_from_bvlc_file(path: Path) -> torch.nn.Module:
    """BVLC's AlexNet weights from a pickled dict ``{"conv1": [W, b], ...}`` saved by NumPy (the
    common ``bvlc_alexnet.npy``, written by Python 2: hence latin-1). Unpickling runs whatever
    the file says: it must be trusted."""
    from metaplastic.alexnet import table_s1_from_bvlc

    _check_file(path)
    try:
        loaded = np.load(path, allow_pickle=True, encoding="latin1")
    except Exception as error:   # not a NumPy file, truncated, or a pickle that does not load
        text = str(error).strip().splitlines()
        raise BackboneError(f"cannot read backbone weights {path} as a NumPy file "
                            f"({type(error).__name__}: {text[0][:160] if text else ''})") from None
    layers = loaded.item() if isinstance(loaded, np.ndarray) and loaded.dtype == object \
        and loaded.shape == () else None
    if not isinstance(layers, dict):
        what = (f"an array of shape {list(loaded.shape)}" if isinstance(loaded, np.ndarray)
                else f"a {type(loaded).__name__}")
        raise BackboneError(f"{path} is not a BVLC AlexNet weights file: it holds {what}, not a pickled "
                            "dict {'conv1': [W, b], ..., 'conv5': [W, b]}")
    try:
        return table_s1_from_bvlc(layers)
    except ValueError as error:
        raise BackboneError(f"{path} does not hold Table S1's AlexNet: {error}") from None


def _table_s1_from_state(path: Path, own: dict) -> torch.nn.Module:
    """A state dict of metaplastic.alexnet's network (keys ``0.weight``, ``4.weight``, ...)."""
    from metaplastic.alexnet import state_keys, table_s1_with_weights

    keys = state_keys()
    wanted = {f"{index}.{part}" for index in keys.values() for part in ("weight", "bias")}
    unexpected = sorted(set(own) - wanted)
    if unexpected:
        raise BackboneError(f"{path} is not a state dict of the Table S1 network: unexpected "
                            f"{', '.join(unexpected[:6])} (it has {', '.join(sorted(wanted))})")
    missing = [f"{name} ({index}.weight, {index}.bias)" for name, index in keys.items()
               if f"{index}.weight" not in own or f"{index}.bias" not in own]
    if missing:
        raise BackboneError(f"{path} is not a state dict of the Table S1 network: no {', '.join(missing)}")
    try:
        return table_s1_with_weights({name: (own[f"{index}.weight"], own[f"{index}.bias"])
                                      for name, index in keys.items()})
    except ValueError as error:
        raise BackboneError(f"{path} does not hold Table S1's AlexNet: {error}") from None


def _features_from_file(path: Path) -> tuple[torch.nn.Module, str]:
    """The network of a ``.pth`` state dict and its architecture: the Table S1 network's (its conv
    layers at 0, 4, 8, 10, 12) or torchvision's AlexNet's (at 0, 3, 6, 8, 10; whole or features)."""
    from torchvision.models import alexnet

    _check_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:   # not a torch file, truncated, or pickled objects other than tensors
        text = str(error).strip().splitlines()
        raise BackboneError(f"cannot read backbone weights {path} as a torch state dict "
                            f"({type(error).__name__}: {text[0][:160] if text else ''})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BackboneError(f"{path} is not an AlexNet state dict (it holds a {type(state).__name__}, "
                            "not a mapping of parameter names to tensors)")
    # Accept a whole AlexNet ("features.0.weight", "classifier...") or its features only ("0.weight").
    own = {key.removeprefix("features."): value for key, value in state.items()
           if key.startswith("features.") or key.split(".")[0].isdigit()}
    if any(key.split(".")[0] in ("4", "12") for key in own):   # torchvision has no parameters there
        return _table_s1_from_state(path, own), TABLE_S1_ARCHITECTURE
    features = alexnet(weights=None).features
    try:
        features.load_state_dict(own, strict=True)
    except RuntimeError as error:
        raise BackboneError(f"{path} is not an AlexNet state dict: {str(error).splitlines()[0]}") from None
    return features, TORCHVISION_ARCHITECTURE


def load_mean_image(path: str | os.PathLike) -> MeanImage:
    """A mean image or pixel, 0-255, from a ``.npy`` array (not a pickle), as the Table S1 input takes it.

    Shapes, and the channel order each is taken to have:

    - ``[3]``: a mean pixel, B, G, R (Caffe's order, as BVLC's weights and mean files have it);
    - ``[3, H, W]``: Caffe's layout, B, G, R (``ilsvrc_2012_mean.npy`` is ``[3, 256, 256]``);
    - ``[H, W, 3]``: MATLAB's layout, R, G, B (``alexnet``'s ``averageImage`` is ``[227, 227, 3]``).

    H and W are at least 227; a larger image gives its centre 227x227, the crop Caffe tests with.
    """
    path = Path(path).expanduser()
    if path.suffix != ".npy":
        raise BackboneError(f"--mean-image {path}: give a .npy file (np.save of the mean array)")
    if not path.is_file():
        raise BackboneError(f"mean image file {path} does not exist")
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:   # not a NumPy file, or an object array (a pickle)
        text = str(error).strip().splitlines()
        raise BackboneError(f"cannot read the mean image {path} as a NumPy array "
                            f"({type(error).__name__}: {text[0][:160] if text else ''})") from None
    if not isinstance(array, np.ndarray) or not (np.issubdtype(array.dtype, np.integer)
                                                 or np.issubdtype(array.dtype, np.floating)):
        raise BackboneError(f"the mean image {path} is not an array of real numbers")
    shape, side = tuple(array.shape), INPUT_SIZE
    if shape == (3,):
        layout, rgb = "[3] mean pixel, B, G, R", array[::-1].reshape(3, 1, 1)
    elif len(shape) == 3 and shape[0] == 3 and min(shape[1:]) >= side:
        layout, rgb = "[3, H, W], B, G, R (Caffe)", array[::-1]
    elif len(shape) == 3 and shape[2] == 3 and min(shape[:2]) >= side:
        layout, rgb = "[H, W, 3], R, G, B (MATLAB)", array.transpose(2, 0, 1)
    else:
        raise BackboneError(f"the mean image {path} has shape {list(shape)}; give [3] (a mean pixel, "
                            "B, G, R), [3, H, W] (Caffe's layout, B, G, R, e.g. [3, 256, 256]) or "
                            f"[H, W, 3] (MATLAB's layout, R, G, B, e.g. [227, 227, 3]), H and W >= {side}")
    if rgb.shape[1:] != (1, 1) and rgb.shape[1:] != (side, side):   # the centre crop
        top, left = (rgb.shape[1] - side) // 2, (rgb.shape[2] - side) // 2
        rgb = rgb[:, top:top + side, left:left + side]
        layout += f", its centre {side}x{side}"
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    if not np.isfinite(rgb).all():
        raise BackboneError(f"the mean image {path} holds NaN or infinite values")
    if 0 < np.abs(rgb).max() <= 1:
        raise BackboneError(f"the mean image {path} looks like the 0-1 scale (largest value "
                            f"{np.abs(rgb).max():.3g}); the Table S1 input is on the 0-255 scale")
    return MeanImage(torch.from_numpy(rgb).unsqueeze(0), str(path), file_sha256(path), shape, layout)


def _freeze(module: torch.nn.Module, weights: str, architecture: str = TORCHVISION_ARCHITECTURE,
            input_style: str = "imagenet", seed: int | None = None) -> Backbone:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return Backbone(module, weights, digest.hexdigest()[:16], architecture, input_style, seed)


# ------------------------------------------------------------------ extraction


def preprocess(images: np.ndarray | torch.Tensor, style: str = "imagenet",
               mean: MeanImage | None = None) -> torch.Tensor:
    """``[n, 56, 56]`` uint8 -> ``[n, 3, 227, 227]`` float32, the input ``style`` of PREPROCESSING;
    with ``mean`` (the "reference" style only), minus that mean image instead of the mean pixel."""
    if style not in PREPROCESSING:
        raise ValueError(f"unknown input style {style!r}: use one of {', '.join(PREPROCESSING)}")
    if mean is not None and style != "reference":
        raise ValueError(f"a mean image replaces the mean pixel of the reference input, not of {style!r}")
    x = torch.as_tensor(np.asarray(images)).float().unsqueeze(1)
    if style == "imagenet":
        x = x.div_(255)
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    x = x.expand(-1, 3, -1, -1)
    if style == "reference":
        if mean is not None:
            return x - mean.values
        return x - torch.tensor(REFERENCE_MEAN_PIXEL).view(1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def extract(backbone: Backbone, images: np.ndarray, *, batch_size: int = 64,
            device: str | torch.device = "cpu", on_batch=None) -> np.ndarray:
    """pool5 features ``[n, 9216]`` float32 of uint8 images ``[n, 56, 56]``."""
    module = backbone.module.to(device)
    out = np.empty((len(images), FEATURE_DIM), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = preprocess(images[start:start + batch_size], backbone.input_style,
                               backbone.mean).to(device)
            out[start:start + len(batch)] = module(batch).flatten(1).float().cpu().numpy()
            if on_batch is not None:
                on_batch(len(batch))
    return out


# ------------------------------------------------------------------ the cache


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
