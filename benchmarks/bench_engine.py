"""Time per trial of the quick preset, and B = 6 networks stacked vs one after another.

Both measurements run in this process on the same features (extracted first,
not timed): (a) 2 trials x 3 profiles = 6 networks trained as one stacked
model, (b) the same 6 networks trained one at a time (B = 1 each). It prints
the seconds of each and their ratio; the records of (a) and (b) are checked to
agree, so the speed does not come from doing something else.

    python benchmarks/bench_engine.py --data-dir ../shared/data [--scale quick] [--items 10]
                                      [--device cpu|cuda]

With ``--compare-vmap`` it instead compares the hand-written stacked head
(:class:`~metaplastic.classifier.StackedMLP`, weights ``[B, in, out]``, one ``baddbmm`` per
layer) with torch's generic way of stacking any model: B copies of
``nn.Sequential(Linear, ReLU, Linear, ReLU, Linear)`` stacked by
``torch.func.stack_module_state`` and called through ``functional_call`` under ``vmap``
(weights ``[B, out, in]``, nn.Linear's layout). No data is needed (random features). For each
size it first checks, from the same weights, that both give the same losses, gradients, updated
weights and test logits (that check is also the warm-up), then times side by side (runs
interleaved, median of ``--repeats`` steps and ``--test-repeats`` test forwards; the ratio
of the least step times is printed too):

* one training step as the engine runs it: gradients set to None, forward, per-network mean
  cross-entropy summed, backward, MetaplasticSGD step (the same optimizer for both); the vmap
  way in two forms: autograd on the stacked parameter tensors (``vmap`` + ``backward``), and
  ``vmap(grad_and_value(loss))`` (gradients assigned to ``.grad``, then the same step);
* the test-time forward over ``--test-rows`` rows (no gradients; one call for both vmap heads).

Sizes: the quick preset (B = 6 networks, width 512, batch 64) and the paper's (width 4096,
batch 1024) with ``--paper-networks`` networks (1 by default, to fit a 2-core CPU's time).

    python benchmarks/bench_engine.py --compare-vmap [--device cpu|cuda] [--repeats N]
                                      [--test-repeats 3] [--sizes quick,paper] [--paper-networks 1]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from metaplastic._memory import keep_freed_memory
from metaplastic.classifier import StackedMLP
from metaplastic.config import DEFAULT_BACKBONE, SCALES
from metaplastic.engine import run_trials
from metaplastic.experiments import EXPERIMENTS, make_config
from metaplastic.features import FEATURE_DIM
from metaplastic.lab import Lab
from metaplastic.learners import stacked_losses
from metaplastic.optim import MetaplasticSGD

ITEMS = 10   # outputs of the compared heads (the quick preset's 10 items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir")
    parser.add_argument("--cache-dir")
    parser.add_argument("--scale", default="quick")
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--compare-vmap", action="store_true",
                        help="compare StackedMLP with stack_module_state + vmap (no data needed)")
    parser.add_argument("--sizes", default="quick,paper", help="--compare-vmap: presets to time")
    parser.add_argument("--paper-networks", type=int, default=1,
                        help="--compare-vmap: networks B at the paper's sizes")
    parser.add_argument("--repeats", type=int, default=None,
                        help="--compare-vmap: timed steps per head (default 15 quick, 3 paper)")
    parser.add_argument("--test-repeats", type=int, default=3,
                        help="--compare-vmap: timed test forwards per way")
    parser.add_argument("--test-rows", type=int, default=2048,
                        help="--compare-vmap: rows of the test-time forward")
    args = parser.parse_args()
    if args.compare_vmap:
        compare_vmap(args)
    else:
        bench_trials(args)


def bench_trials(args) -> None:
    config = make_config("serial-position", args.scale, items=args.items, trials=2,
                         backbone=DEFAULT_BACKBONE, device=args.device)
    lab = Lab(data_dir=args.data_dir, cache_dir=args.cache_dir, backbone=DEFAULT_BACKBONE)
    cached = lab.features(config, [0, 1])
    features = lambda c, s, n: cached[(c, s)]  # noqa: E731

    start = time.perf_counter()
    stacked = run_trials(config, features, [0, 1])
    stacked_s = time.perf_counter() - start

    start = time.perf_counter()
    alone = []
    for trial in (0, 1):
        for profile in EXPERIMENTS["serial-position"].profiles:   # the run's learners, by name
            one = make_config("serial-position", args.scale, items=args.items, trials=2,
                              backbone=DEFAULT_BACKBONE, learners=[profile], device=args.device)
            alone.append(run_trials(one, features, [trial]))
    alone_s = time.perf_counter() - start

    keys = ["trial", "profile", "presentation", "item"]
    paired = stacked.merge(pd.concat(alone), on=keys, suffixes=("_stacked", "_alone"))
    same = len(paired) == len(stacked) and np.allclose(paired["performance_stacked"],
                                                       paired["performance_alone"])
    agreement = (paired["performance_stacked"] - paired["performance_alone"]).abs().max()
    print(f"{args.scale} preset, {config.items} items, width {config.width}, "
          f"{config.train_per_class} positives, {config.epochs} epochs, batch {config.batch_size}")
    print(f"time per trial (3 profiles stacked): {stacked_s / 2:.1f} s")
    print(f"6 networks stacked {stacked_s:.1f} s   one after another {alone_s:.1f} s   "
          f"ratio stacked/sequential {stacked_s / alone_s:.2f}   records agree: {same} "
          f"(largest performance difference {agreement:.3g})")


# ---------------------------------------------------------------- StackedMLP vs vmap


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _optimizer(weights: list[torch.Tensor], biases: list[torch.Tensor], lr: float,
               alpha: float) -> MetaplasticSGD:
    """The engine's optimizer (build_networks): weights scaled by S, biases at the plain rate.
    A constant flexibility of 0.5 keeps S and w0 as a sampled profile does (the step is the same)."""
    groups = [{"params": [w]} for w in weights] + [{"params": biases, "scaled": False}]
    optimizer = MetaplasticSGD(groups, lr=lr, alpha=alpha, flexibility=0.5)
    optimizer.consolidate()   # the item boundary: w0 and S exist before the first step
    return optimizer


class _Head:
    """A head under test: ``losses_and_grads`` fills the gradients, ``step`` then updates."""

    optimizer: MetaplasticSGD

    def losses_and_grads(self, x, y) -> torch.Tensor:
        raise NotImplementedError

    def step(self, x, y):
        self.losses_and_grads(x, y)
        self.optimizer.step()


class HandHead(_Head):
    """(a) StackedMLP as the engine trains it."""

    name = "StackedMLP [B,in,out] + baddbmm"

    def __init__(self, model: StackedMLP, lr: float, alpha: float):
        self.model = model
        self.optimizer = _optimizer(list(model.weights), list(model.biases), lr, alpha)

    def losses_and_grads(self, x, y):
        self.optimizer.zero_grad(set_to_none=True)
        losses = stacked_losses(self.model, x, y)
        losses.sum().backward()
        return losses.detach()

    def grads(self) -> list[torch.Tensor]:
        """Per layer, weight gradient in nn.Linear's ``[B, out, in]`` layout, then bias gradient."""
        return [g for w, b in zip(self.model.weights, self.model.biases)
                for g in (w.grad.transpose(1, 2), b.grad)]

    def weights(self) -> list[torch.Tensor]:
        return [t for w, b in zip(self.model.weights, self.model.biases) for t in (w.transpose(1, 2), b)]

    @torch.no_grad()
    def forward(self, x):
        return self.model(x)


class VmapHead(_Head):
    """(b) B nn.Sequential copies, stack_module_state, functional_call under vmap.

    ``functional``: gradients by ``vmap(grad_and_value(loss))`` (torch.func end to end), else by
    autograd on the stacked parameter tensors (``vmap`` forward, then ``backward``)."""

    def __init__(self, model: StackedMLP, lr: float, alpha: float, functional: bool):
        self.functional = functional
        self.name = ("vmap + grad_and_value" if functional else "vmap + backward") + " [B,out,in]"
        widths, device, dtype = model.widths, model.weights[0].device, model.weights[0].dtype
        copies = []
        for b in range(model.n_networks):
            layers = []
            for layer, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
                linear = torch.nn.utils.skip_init(torch.nn.Linear, fan_in, fan_out,
                                                  device=device, dtype=dtype)
                with torch.no_grad():   # nn.Linear keeps W [out, in]; StackedMLP keeps W^T
                    linear.weight.copy_(model.weights[layer][b].t())
                    linear.bias.copy_(model.biases[layer][b])
                layers += [linear, torch.nn.ReLU()]
            copies.append(torch.nn.Sequential(*layers[:-1]))
        self.params, self.buffers = torch.func.stack_module_state(copies)
        self.base = copy.deepcopy(copies[0]).to("meta")   # the structure only, for functional_call
        del copies
        names = list(self.params)
        self.optimizer = _optimizer([self.params[n] for n in names if n.endswith("weight")],
                                    [self.params[n] for n in names if n.endswith("bias")], lr, alpha)

        def logits(params, buffers, x):
            return torch.func.functional_call(self.base, (params, buffers), (x,))

        def loss(params, buffers, x, y):
            return F.cross_entropy(logits(params, buffers, x), y)

        self.logits = torch.vmap(logits)
        self.grad_and_loss = torch.vmap(torch.func.grad_and_value(loss))

    def losses_and_grads(self, x, y):
        self.optimizer.zero_grad(set_to_none=True)
        if self.functional:
            with torch.no_grad():   # torch.func.grad still differentiates; no outer graph is kept
                grads, losses = self.grad_and_loss(self.params, self.buffers, x, y)
            for name, p in self.params.items():
                p.grad = grads[name]
            return losses
        out = self.logits(self.params, self.buffers, x)
        losses = F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view(y.shape).mean(1)
        losses.sum().backward()
        return losses.detach()

    def grads(self) -> list[torch.Tensor]:
        return [p.grad for p in self.params.values()]

    def weights(self) -> list[torch.Tensor]:
        return list(self.params.values())

    @torch.no_grad()
    def forward(self, x):
        return self.logits(self.params, self.buffers, x)


def _largest_difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Largest |a - b| over every tensor, relative to the largest |a| of that tensor."""
    return max(float((u - v).abs().max() / u.abs().max().clamp_min(1e-30))
               for u, v in zip([t.detach() for t in a], [t.detach() for t in b]))


def _check(heads, x, y, x_test) -> dict[str, float]:
    """Losses, gradients, weights after one step and test logits of every head against the
    first's, from the same weights and data (relative differences; also the warm-up)."""
    reference, others = heads[0], heads[1:]
    base_losses = reference.losses_and_grads(x, y)
    base_grads = [g.clone() for g in reference.grads()]
    result = {"losses": 0.0, "gradients": 0.0, "weights after a step": 0.0, "test logits": 0.0}
    losses = [h.losses_and_grads(x, y) for h in others]
    result["losses"] = max(_largest_difference([base_losses], [v]) for v in losses)
    result["gradients"] = max(_largest_difference(base_grads, h.grads()) for h in others)
    for h in heads:
        h.optimizer.step()
    result["weights after a step"] = max(_largest_difference(reference.weights(), h.weights())
                                         for h in others)
    # Both vmap heads run the same forward call: the test logits are those of the first.
    result["test logits"] = _largest_difference([reference.forward(x_test)], [others[0].forward(x_test)])
    return result


def _time_side_by_side(fns: list, device: torch.device, repeats: int) -> list[dict]:
    """Median and least seconds of each function over ``repeats`` runs, interleaved (a, b, c,
    then b, c, a, ...) so that load from other processes falls on every way alike; the check
    (:func:`_check`) ran each once before, as the warm-up. On a GPU also each one's peak memory."""
    times = [[] for _ in fns]
    peaks = [0] * len(fns)
    for r in range(repeats):
        for j in range(len(fns)):
            k = (j + r) % len(fns)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            _sync(device)
            start = time.perf_counter()
            fns[k]()
            _sync(device)
            times[k].append(time.perf_counter() - start)
            if device.type == "cuda":
                peaks[k] = max(peaks[k], torch.cuda.max_memory_allocated(device))
    return [{"median": float(np.median(t)), "min": min(t), "peak": peak}
            for t, peak in zip(times, peaks)]


def _compare_size(args, device: torch.device, size: str) -> list[tuple]:
    """Check and time the three heads at one preset's sizes; one table row per head."""
    preset = SCALES[size]
    networks = 6 if size == "quick" else args.paper_networks
    width, batch = preset.width, preset.batch_size
    repeats = args.repeats or (15 if size == "quick" else 3)
    widths = [FEATURE_DIM, width, width, ITEMS]
    generators = [torch.Generator().manual_seed(k) for k in range(networks)]
    start = time.perf_counter()
    model = StackedMLP(widths, generators, list(range(networks))).to(device)
    heads = [HandHead(model, preset.lr, preset.alpha)]
    heads += [VmapHead(model, preset.lr, preset.alpha, functional) for functional in (False, True)]
    x = torch.randn(networks, batch, FEATURE_DIM, device=device)
    y = torch.randint(ITEMS, (networks, batch), device=device)
    x_test = torch.randn(networks, args.test_rows, FEATURE_DIM, device=device)
    agreement = _check(heads, x, y, x_test)
    steps = _time_side_by_side([lambda h=h: h.step(x, y) for h in heads], device, repeats)
    tests = _time_side_by_side([lambda h=h: h.forward(x_test) for h in heads[:2]], device,
                               args.test_repeats)
    tests.append(tests[1])   # the two vmap heads' forward is one and the same call
    label = f"{size}: B={networks}, [{FEATURE_DIM}, {width}, {width}, {ITEMS}], batch {batch}"
    print(f"\n{label}, test {args.test_rows} rows: {repeats} timed steps per head, "
          f"{args.test_repeats} timed test forwards per way ({time.perf_counter() - start:.0f} s)")
    print("  largest relative difference from StackedMLP: "
          + ", ".join(f"{k} {v:.2g}" for k, v in agreement.items()))
    return [(label, h.name, step, step["median"] / steps[0]["median"], step["min"] / steps[0]["min"],
             test, test["median"] / tests[0]["median"]) for h, step, test in zip(heads, steps, tests)]


def compare_vmap(args) -> None:
    device = torch.device(args.device)
    if device.type == "cpu":
        keep_freed_memory()   # as the lab does on the CPU (metaplastic._memory), for both ways
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads; "
          "each head checked once (the warm-up), then timed interleaved; medians")
    rows = []
    for size in args.sizes.split(","):
        rows += _compare_size(args, device, size)
    memory = device.type == "cuda"
    print("\n| size | head | s / training step | ratio to StackedMLP (of least) |"
          + (" peak MiB / step |" if memory else "")
          + f" s / test forward ({args.test_rows} rows) | ratio to StackedMLP |")
    print("| --- | --- | --- | --- |" + (" --- |" if memory else "") + " --- | --- |")
    for label, name, step, ratio, least, test, test_ratio in rows:
        peak = f" {step['peak'] / 2**20:.0f} |" if memory else ""
        same = " (the call above)" if "grad_and_value" in name else ""
        print(f"| {label} | {name} | {step['median']:.4f} | {ratio:.2f} ({least:.2f}) |{peak} "
              f"{test['median']:.4f}{same} | {test_ratio:.2f} |")


if __name__ == "__main__":
    main()
