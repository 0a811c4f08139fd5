"""The backbone's forward pass: multiply-adds, time per layer, and the LRN against torch's.

Prints, for the Table S1 network (the default backbone) and torchvision's AlexNet variant (the
default before issue 9): the convolutions' multiply-adds per image; the time of one forward
pass over a batch; for the Table S1 network the time of each layer, with torch's own
``LocalResponseNorm`` and with ours (metaplastic.alexnet), and the two LRNs' ratio on conv1's
output. All in the same run, on random inputs of the network's size (the numbers do not depend
on the images).

    python benchmarks/bench_backbone.py [--batch 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torchvision.models import alexnet

from metaplastic.alexnet import LRN, table_s1_features


def multiply_adds(features: nn.Sequential, size: int) -> int:
    """The convolutions' multiply-adds for one image of ``size`` x ``size`` pixels."""
    total, x = 0, torch.zeros(1, 3, size, size)
    with torch.no_grad():
        for layer in features:
            x = layer(x)
            if isinstance(layer, nn.Conv2d):
                per_output = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
                total += x.numel() * per_output
    return total


def best_time(function, repeats: int) -> float:
    function()                                      # warm-up: kernel selection, allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def layer_times(features: nn.Sequential, x: torch.Tensor, repeats: int) -> list[tuple[str, float]]:
    rows = []
    with torch.no_grad():
        for layer in features:
            # clone: ReLU works in place
            seconds = best_time(lambda layer=layer, x=x: layer(x.clone()), repeats)
            x = layer(x)
            rows.append((type(layer).__name__, seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    s1, variant = table_s1_features(0).eval(), alexnet(weights=None).features.eval()
    with_torchs_lrn = table_s1_features(0).eval()
    for i, layer in enumerate(with_torchs_lrn):
        if isinstance(layer, nn.LocalResponseNorm):
            with_torchs_lrn[i] = nn.LocalResponseNorm(**LRN)
    x227, x224 = torch.rand(args.batch, 3, 227, 227) * 255 - 120, torch.randn(args.batch, 3, 224, 224)

    print(f"torch threads {torch.get_num_threads()}, batch {args.batch}")
    print(f"multiply-adds per image: Table S1 {multiply_adds(s1, 227) / 1e6:.1f} M, "
          f"torchvision's variant {multiply_adds(variant, 224) / 1e6:.1f} M")
    with torch.no_grad():
        forward = {"torchvision's variant": best_time(lambda: variant(x224), args.repeats),
                   "Table S1, torch's LRN": best_time(lambda: with_torchs_lrn(x227), args.repeats),
                   "Table S1, our LRN": best_time(lambda: s1(x227), args.repeats)}
    for name, seconds in forward.items():
        print(f"forward {name}: {seconds:.3f} s ({args.batch / seconds:.1f} images/s)")
    for label, network in (("torch's LRN", with_torchs_lrn), ("our LRN", s1)):
        rows = layer_times(network, x227, args.repeats)
        total = sum(seconds for _, seconds in rows)
        lrn = sum(seconds for name, seconds in rows if name == "LocalResponseNorm")
        print(f"Table S1 layer by layer with {label}: " + ", ".join(f"{n} {s:.3f}" for n, s in rows)
              + f"; LRN {lrn:.3f} s of {total:.3f} s ({lrn / total:.0%})")
    conv1 = torch.relu(s1[0](x227[: args.batch])).detach()
    with torch.no_grad():
        theirs = best_time(lambda: nn.LocalResponseNorm(**LRN)(conv1), args.repeats)
        ours = best_time(lambda: s1[2](conv1), args.repeats)
    print(f"LRN on conv1's output: torch's {theirs:.3f} s, ours {ours:.3f} s, ratio {theirs / ours:.2f}")


if __name__ == "__main__":
    main()
