"""Experience replay with a reservoir buffer (Vitter's algorithm R).

Each network keeps ``buffer`` past training examples; every mini-batch of the current
presentation gets up to ``replay_batch`` examples drawn from the buffer appended (default: as
many as the mini-batch holds); at the end of each presentation its examples enter the reservoir.
Draws come from each network's own generator, so no other network's random stream moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from metaplastic.learners.base import Method, Range, Trainer, parameters
from metaplastic.learners.registry import register


@register
@dataclass(frozen=True)
class Replay(Method):
    """Reservoir replay: ``buffer`` stored examples per network, ``replay_batch`` per mini-batch
    (0: as many as the current mini-batch holds)."""

    buffer: int = 3000
    replay_batch: int = 0
    family: ClassVar[str] = "replay"
    colour: ClassVar[str] = "#56B4E9"
    summary: ClassVar[str] = "reservoir replay of stored examples (buffer, replay_batch)"
    ranges: ClassVar[dict[str, Range]] = {"buffer": Range(1, integer=True),
                                          "replay_batch": Range(0, integer=True)}

    def trainer(self, model, *, lr, batch_size, generators) -> Trainer:
        return ReplayTrainer(parameters(model), lr=lr, learner=self, batch_size=batch_size,
                             generators=generators)


class ReplayTrainer(Trainer):
    """Plain SGD on each mini-batch plus examples replayed from each network's reservoir."""

    uses_item_data = True

    def __init__(self, params, *, lr: float, learner: Replay, batch_size: int,
                 generators: list[np.random.Generator]):
        super().__init__(params, lr=lr)
        self.learner = learner
        self.per_batch = learner.replay_batch or batch_size
        self.generators = generators            # one per network: its own draws only
        self.x: torch.Tensor | None = None      # [B, buffer, in]
        self.y: torch.Tensor | None = None      # [B, buffer]
        self.filled = 0
        self.seen = 0

    def compose(self, x, y):
        count = min(self.filled, self.per_batch)
        if count == 0:
            return x, y
        rows = torch.as_tensor(np.stack([g.choice(self.filled, count, replace=False)
                                         for g in self.generators]), device=x.device)
        replay_x = torch.gather(self.x, 1, rows.unsqueeze(-1).expand(-1, -1, self.x.shape[2]))
        return torch.cat([x, replay_x], dim=1), torch.cat([y, torch.gather(self.y, 1, rows)], dim=1)

    def end_item(self, model, x, y) -> None:
        """Reservoir sampling (algorithm R) over the stream of every example trained on."""
        size = self.learner.buffer
        if self.x is None:
            self.x = x.new_zeros(x.shape[0], size, x.shape[2])
            self.y = y.new_zeros(y.shape[0], size)
        for row in range(x.shape[1]):
            self.seen += 1
            if self.filled < size:
                slots = [self.filled] * x.shape[0]
                self.filled += 1
            else:   # the n-th example replaces a random slot with probability size / n
                slots = [int(g.integers(self.seen)) for g in self.generators]
            for b, slot in enumerate(slots):
                if slot < size:
                    self.x[b, slot] = x[b, row]
                    self.y[b, slot] = y[b, row]

    def state_tensors(self):
        return []           # its cost is the stored examples, counted apart

    def stored_examples(self) -> int:
        return self.learner.buffer
