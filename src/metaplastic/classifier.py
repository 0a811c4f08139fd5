"""The FC6-FC8 head, in a stacked form that holds B independent networks.

Weights are stored as ``[B, in, out]`` (each network's ``W^T``) and biases as
``[B, out]``; a forward pass is one batched matrix product per layer, so B networks (profiles x trials) train
at once while staying independent: no parameter is shared, and each network's
loss only reaches its own slice.

Why ``[B, in, out]`` and not ``torch.nn.Linear``'s ``[out, in]``: on the CPU,
the backward pass of ``bmm(x, W.transpose(1, 2))`` produces a transposed
gradient that is copied on every step; storing ``W^T`` made a training
step about a third faster (benchmarks/bench_engine.py; docs/history.md, "The engine").
The rule is elementwise, so the layout does not matter to the optimizer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def glorot_normal(out_features: int, in_features: int, generator: torch.Generator) -> torch.Tensor:
    """Glorot (Xavier) normal init: std = sqrt(2 / (fan_in + fan_out)) (docs/protocol.md section 3)."""
    std = math.sqrt(2.0 / (in_features + out_features))
    return torch.randn(out_features, in_features, generator=generator) * std


class StackedMLP(torch.nn.Module):
    """B independent ReLU MLPs with the same widths, e.g. ``[9216, 4096, 4096, N]``.

    ``weights[l][b]`` is network b's layer-l weight matrix transposed, ``[in, out]``.

    ``initial`` gives, per network, the index of the initial-weight set it
    starts from; networks with the same index start identical (the networks of
    one trial share their initial weights).
    """

    def __init__(self, widths: list[int], init_generators: list[torch.Generator],
                 initial: list[int], *, dropout: float = 0.0):
        super().__init__()
        self.widths = list(widths)
        self.dropout = dropout
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        sets = [[glorot_normal(o, i, g) for i, o in zip(widths[:-1], widths[1:])]
                for g in init_generators]
        for layer, fan_out in enumerate(widths[1:]):
            stacked = torch.stack([sets[k][layer].t() for k in initial]).contiguous()
            self.weights.append(torch.nn.Parameter(stacked))
            self.biases.append(torch.nn.Parameter(torch.zeros(len(initial), fan_out)))

    @property
    def n_networks(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, batch, in]`` -> logits ``[B, batch, out]``.

        Under ``torch.autocast`` the hidden layers take its low precision, but the readout layer
        stays in float32: logits are compared by argmax, and bfloat16's 8-bit mantissa makes
        near-equal logits tie, which argmax would always resolve toward the lowest item index.
        """
        last = len(self.weights) - 1
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            if layer < last:
                x = F.relu(torch.baddbmm(bias.unsqueeze(1), x, weight))
                if self.dropout > 0:
                    x = F.dropout(x, self.dropout, self.training)
            else:
                with torch.autocast(x.device.type, enabled=False):
                    x = torch.baddbmm(bias.unsqueeze(1), x.to(weight.dtype), weight)
        return x

    def layer_values(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Each layer's input and pre-activation for ``x [B, batch, in]``, without dropout: what a
        per-example gradient needs (EWC's Fisher, :func:`metaplastic.learners.stacked_fisher`)."""
        inputs, pre = [], []
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            inputs.append(x)
            z = torch.baddbmm(bias.unsqueeze(1), x, weight)
            pre.append(z)
            x = F.relu(z) if layer < len(self.weights) - 1 else z
        return inputs, pre
