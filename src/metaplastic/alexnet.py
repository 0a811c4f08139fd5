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
"""

from __future__ import annotations

import math

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
