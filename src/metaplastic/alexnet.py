"""The feature extractor of the paper's Table S1: the original AlexNet, conv1..pool5.

Krizhevsky et al. (2012) as Table S1 lists it, which torchvision's ``alexnet``
is not (torchvision has 64-192-384-256-256 kernels, no normalisation, no
groups):

======  ==========================================  ======================
layer   kernels                                     then
======  ==========================================  ======================
conv1   96 x 11x11x3, stride 4                      ReLU, LRN, max pool 3/2
conv2   256 x 5x5x48, 2 groups, padding 2           ReLU, LRN, max pool 3/2
conv3   384 x 3x3x256, padding 1                    ReLU
conv4   384 x 3x3x192, 2 groups, padding 1          ReLU
conv5   256 x 3x3x192, 2 groups, padding 1          ReLU, max pool 3/2
======  ==========================================  ======================

Input 227 x 227 x 3, output 6 x 6 x 256 = 9,216 features, 2,334,080
parameters. LRN is cross-channel over 5 channels with alpha 1e-4, beta 0.75,
k 1, the reference network's constants; ``torch.nn.LocalResponseNorm``
divides alpha by the size as the reference does. The network uses a subclass
of it that gives the same numbers bit for bit, faster on the CPU
(:class:`LocalResponseNorm`; benchmarks/bench_backbone.py).

The untrained network draws its weights from a CPU ``torch.Generator`` seeded
by ``seed`` (He-normal weights, the right scale for ReLU layers; zero biases),
so it is the same on every machine for a given seed and torch version.

Trained weights go in by :func:`table_s1_with_weights` (torch's layout) or
:func:`table_s1_from_bvlc` (the BVLC weights as the common ``bvlc_alexnet.npy``
holds them: TensorFlow's layout, B, G, R input channels). Either checks every
layer's shapes against the table. The network takes its input channels in the
order R, G, B: the mean pixel of its preprocessing is R, G, B
(metaplastic.features), and BVLC's conv1 is reversed to match.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

#: Local response normalisation of the reference (size, alpha, beta, k).
LRN = dict(size=5, alpha=1e-4, beta=0.75, k=1.0)

#: (out channels, kernel, stride, padding, groups, then LRN?, then pool?) per conv layer.
CONV_LAYERS = (
    (96, 11, 4, 0, 1, True, True),
    (256, 5, 1, 2, 2, True, True),
    (384, 3, 1, 1, 1, False, False),
    (384, 3, 1, 1, 2, False, False),
    (256, 3, 1, 1, 2, False, True),
)


class LocalResponseNorm(nn.LocalResponseNorm):
    """torch's cross-channel LRN, bit for bit, without its 3-D padding and average pooling.

    torch pads the squared input along the channels and average-pools it in 3-D; on the CPU
    that took about 40% of the Table S1 network's forward pass (benchmarks/bench_backbone.py).
    Here the window's squares are summed directly, in the order torch sums them (channels
    c - size//2 upwards, then divided by the size), so the features and every cache key stay
    what they were. With gradients wanted
    (never in the frozen backbone) torch's own forward is used.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3 or (torch.is_grad_enabled() and x.requires_grad):
            return super().forward(x)
        squares = x.square()
        window = torch.zeros_like(squares)
        channels = x.shape[1]
        for offset in range(-(self.size // 2), (self.size - 1) // 2 + 1):
            low, high = max(0, -offset), min(channels, channels - offset)
            if low < high:
                window[:, low:high] += squares[:, low + offset:high + offset]
        divisor = window.div_(self.size).mul_(self.alpha).add_(self.k).pow_(self.beta)
        return torch.div(x, divisor, out=divisor)


class MaxPool2d(nn.MaxPool2d):
    """torch's 3x3, stride-2 max pool without padding, as two 1-D passes (rows, then columns).

    The maximum of a window is the maximum of its rows' maxima, and a maximum is exact, so the
    result equals torch's bit for bit (NaN propagates in both). On the CPU torch's 2-D pool was
    1.5-5 times slower than the two passes on the Table S1 network's activations. Any other
    configuration, a GPU, or gradients wanted use torch's own forward.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.two_pass = (self.kernel_size in (3, (3, 3)) and self.stride in (2, (2, 2))
                         and self.padding in (0, (0, 0)) and self.dilation in (1, (1, 1))
                         and not self.ceil_mode and not self.return_indices)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (not self.two_pass or x.dim() < 3 or x.device.type != "cpu" or x.shape[-1] < 3
                or x.shape[-2] < 3 or (torch.is_grad_enabled() and x.requires_grad)):
            return super().forward(x)
        return _max3_stride2(_max3_stride2(x, -1), -2)


def _max3_stride2(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Maxima of the windows ``[2i, 2i + 3)`` along ``dim``: ``(n - 3) // 2 + 1`` of them."""
    n = (x.shape[dim] - 3) // 2 + 1
    left, middle, right = (x.narrow(dim, start, 2 * n - 1)[_every_other(x.dim(), dim)]
                           for start in range(3))
    return torch.maximum(torch.maximum(left, middle), right)


def _every_other(ndim: int, dim: int) -> tuple:
    """An index that keeps every second element along ``dim`` and all of every other dim."""
    index = [slice(None)] * ndim
    index[dim] = slice(None, None, 2)
    return tuple(index)


def table_s1_features(seed: int | None = 0) -> nn.Sequential:
    """conv1..pool5 of Table S1; weights drawn from ``seed`` (None: leave torch's default init)."""
    layers: list[nn.Module] = []
    channels = 3
    for out, kernel, stride, padding, groups, lrn, pool in CONV_LAYERS:
        layers += [nn.Conv2d(channels, out, kernel, stride=stride, padding=padding, groups=groups),
                   nn.ReLU(inplace=True)]
        if lrn:
            layers.append(LocalResponseNorm(**LRN))
        if pool:
            layers.append(MaxPool2d(kernel_size=3, stride=2))
        channels = out
    features = nn.Sequential(*layers)
    if seed is not None:
        _initialise(features, torch.Generator().manual_seed(seed))
    return features


@torch.no_grad()
def _initialise(features: nn.Sequential, generator: torch.Generator) -> None:
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            fan_in = layer.weight[0].numel()            # input channels per group x kernel area
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator)
                               * math.sqrt(2.0 / fan_in))
            layer.bias.zero_()


#: The conv layers' names, in the order of CONV_LAYERS (as BVLC's files name them).
LAYER_NAMES = ("conv1", "conv2", "conv3", "conv4", "conv5")


def layer_shapes() -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """Each conv layer's (weight, bias) shapes in torch's layout: ``[out, in/groups, kh, kw]``, ``[out]``."""
    shapes, channels = {}, 3
    for name, (out, kernel, _, _, groups, _, _) in zip(LAYER_NAMES, CONV_LAYERS):
        shapes[name] = ((out, channels // groups, kernel, kernel), (out,))
        channels = out
    return shapes


def state_keys() -> dict[str, str]:
    """Each conv layer's index in the network (the prefix of its state-dict keys): conv2 is "4"."""
    convs = [index for index, layer in enumerate(table_s1_features(None)) if isinstance(layer, nn.Conv2d)]
    return {name: str(index) for name, index in zip(LAYER_NAMES, convs)}


def table_s1_with_weights(layers: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> nn.Sequential:
    """The Table S1 network holding ``layers[name] = (weight, bias)`` in torch's layout, R, G, B input.

    A missing layer, a shape other than the table's or a non-finite value is a ValueError naming
    the layer and the shapes."""
    missing = [name for name in LAYER_NAMES if name not in layers]
    if missing:
        raise ValueError(f"no {', '.join(missing)} (Table S1 has {', '.join(LAYER_NAMES)})")
    with torch.random.fork_rng(devices=[]):   # torch's default init, overwritten: no global draw
        features = table_s1_features(None)
    convs = [layer for layer in features if isinstance(layer, nn.Conv2d)]
    with torch.no_grad():
        for name, conv, (weight_shape, bias_shape) in zip(LAYER_NAMES, convs, layer_shapes().values()):
            weight, bias = (torch.as_tensor(t) for t in layers[name])
            for part, tensor, wanted in (("weights", weight, weight_shape), ("biases", bias, bias_shape)):
                if tuple(tensor.shape) != wanted:
                    raise ValueError(f"{name} {part} have shape {list(tensor.shape)}; Table S1's {name} "
                                     f"wants {list(wanted)}"
                                     + (" ([out, in/groups, kh, kw])" if part == "weights" else ""))
                if not tensor.is_floating_point():
                    raise ValueError(f"{name} {part} are {tensor.dtype}, not floating-point numbers")
                if not torch.isfinite(tensor).all():
                    raise ValueError(f"{name} {part} are not all finite (NaN or infinity)")
            conv.weight.copy_(weight)
            conv.bias.copy_(bias)
    return features


def table_s1_from_bvlc(layers: Mapping[str, Sequence[np.ndarray]]) -> nn.Sequential:
    """The Table S1 network holding the BVLC weights as ``bvlc_alexnet.npy`` stores them.

    ``layers["conv1"] = [W, b]`` with ``W`` in TensorFlow's layout ``[kh, kw, in/groups, out]``
    and input channels B, G, R (Caffe's, which the file inherits); conv2, conv4 and conv5 have
    2 groups, the first half of ``out`` reading the first half of the input channels, as torch's
    groups do. Other entries (fc6..fc8) are ignored. Each ``W`` becomes ``W.transpose(3, 2, 0, 1)``
    and conv1's input channels are reversed to R, G, B. Shapes are checked in the file's layout."""
    missing = [name for name in LAYER_NAMES if name not in layers]
    if missing:
        held = ", ".join(sorted(map(str, layers))) or "nothing"
        raise ValueError(f"no {', '.join(missing)} (it holds {held}; BVLC's AlexNet has "
                         f"{', '.join(LAYER_NAMES)}, fc6, fc7, fc8)")
    weights = {}
    for name, (weight_shape, bias_shape) in layer_shapes().items():
        entry = layers[name]
        if isinstance(entry, np.ndarray) and entry.dtype == object and entry.ndim == 1:
            entry = list(entry)   # a pair stored as an object array
        if isinstance(entry, (str, bytes, Mapping)) or not isinstance(entry, Sequence) or len(entry) != 2:
            raise ValueError(f"{name} is a {type(entry).__name__}, not a pair [weights, biases]")
        try:
            weight, bias = (np.asarray(part, dtype=np.float32) for part in entry)
        except (TypeError, ValueError):
            raise ValueError(f"{name} does not hold numeric arrays") from None
        out, in_per_group, kh, kw = weight_shape
        file_layout = (kh, kw, in_per_group, out)
        if weight.shape != file_layout:
            hint = (" (that is torch's layout [out, in/groups, kh, kw]; this file format holds "
                    "[kh, kw, in/groups, out])" if weight.shape == weight_shape else "")
            raise ValueError(f"{name} weights have shape {list(weight.shape)}; Table S1's {name} wants "
                             f"{list(file_layout)} ([kh, kw, in/groups, out]){hint}")
        if bias.shape != bias_shape:
            raise ValueError(f"{name} biases have shape {list(bias.shape)}; Table S1's {name} wants "
                             f"{list(bias_shape)}")
        weight = torch.from_numpy(np.ascontiguousarray(weight.transpose(3, 2, 0, 1)))
        if name == "conv1":
            weight = weight.flip(1)   # B, G, R -> R, G, B
        weights[name] = (weight, torch.from_numpy(bias))
    return table_s1_with_weights(weights)
