"""Cost of MetaplasticSGD against torch.optim.SGD, measured in one run: memory and time.

For an MLP with the paper's FC sizes (9216-4096-4096-10) it prints

* the bytes of optimizer state per scaled weight, for each way the
  flexibility can be given (hybrid, hybrid with S in bfloat16, a constant,
  conventional, an explicit tensor as the lab passes it);
* the time of one optimizer step (S in float32, and in bfloat16), and of one
  whole training iteration (forward, backward, step on a batch), each as a
  ratio to SGD's. Ours and SGD's are timed alternately, repetition after
  repetition, and the ratio is the median of the per-repetition ratios: on a
  shared machine the load changes between repetitions, less within one.

    python benchmarks/bench_optimizer.py [--repeats 15] [--batch 1024]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from metaplastic import MetaplasticSGD


def paper_head(sizes: list[int]) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def state_bytes_per_scaled_weight(opt: MetaplasticSGD, model: torch.nn.Module) -> float:
    """Bytes of every tensor in the optimizer state, over the number of scaled (dim >= 2) weights."""
    total = sum(v.numel() * v.element_size() for state in opt.state.values()
                for v in state.values() if isinstance(v, torch.Tensor))
    scaled = sum(p.numel() for p in model.parameters() if p.dim() >= 2)
    return total / scaled


def paired_ratio(ours, theirs, repeats: int) -> tuple[float, float, float]:
    """Median time of ``ours`` and ``theirs`` (seconds) and the median of their paired ratios."""
    ours(), theirs()  # warm-up: first-touch allocations and kernel selection
    a, b = [], []
    for _ in range(repeats):
        for fn, times in ((theirs, b), (ours, a)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b), statistics.median(x / y for x, y in zip(a, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15, help="timed repetitions (median)")
    parser.add_argument("--batch", type=int, default=1024, help="batch size of an iteration")
    parser.add_argument("--sizes", default="9216,4096,4096,10", help="layer widths")
    parser.add_argument("--single-tensor", action="store_true",
                        help="time the single-tensor reference kernel instead of foreach")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    foreach = not args.single_tensor

    torch.manual_seed(0)
    model_a, model_b = paper_head(sizes), paper_head(sizes)
    model_b.load_state_dict(model_a.state_dict())
    n_params = sum(p.numel() for p in model_a.parameters())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"model {sizes} ({n_params / 1e6:.1f} M parameters), "
          f"kernel {'foreach' if foreach else 'single-tensor'}")

    def build(flexibility, **kwargs):
        opt = MetaplasticSGD(model_a.parameters(), lr=1e-4, alpha=4e5, flexibility=flexibility,
                             generator=torch.Generator().manual_seed(0), foreach=foreach, **kwargs)
        opt.consolidate()  # creates the state; S differs from 1 after the next boundaries
        return opt

    print("optimizer state, bytes per scaled weight (before: 12 in float32 for every profile)")
    explicit = [{"params": [p], "flexibility": torch.rand(p.shape)} for p in model_a.parameters()
                if p.dim() >= 2]
    explicit.append({"params": [p for p in model_a.parameters() if p.dim() < 2], "scaled": False})
    for label, flexibility, kwargs in [
        ("hybrid (uniform f, redrawn at each boundary)", "hybrid", {}),
        ("hybrid, scale_dtype=torch.bfloat16", "hybrid", {"scale_dtype": torch.bfloat16}),
        ("constant f = 0.3 (\"stable\")", "stable", {}),
        ("constant f = 1 (\"conventional\")", "conventional", {}),
        ("explicit float32 tensor (the lab's engine)", explicit, {}),
    ]:
        if isinstance(flexibility, list):
            opt = MetaplasticSGD(flexibility, lr=1e-4, alpha=4e5, flexibility=1.0, foreach=foreach)
            opt.consolidate()
        else:
            opt = build(flexibility, **kwargs)
        print(f"  {label:48s} {state_bytes_per_scaled_weight(opt, model_a):5.2f}")
        del opt

    for model in (model_a, model_b):
        for p in model.parameters():
            p.grad = torch.randn_like(p) * 1e-3
    baseline = torch.optim.SGD(model_b.parameters(), lr=1e-4, foreach=True)
    for label, kwargs in [("S float32", {}), ("S bfloat16", {"scale_dtype": torch.bfloat16})]:
        ours = build("hybrid", **kwargs)
        t_ours, t_sgd, ratio = paired_ratio(ours.step, baseline.step, args.repeats)
        print(f"step ({label:10s}) MetaplasticSGD {t_ours * 1e3:7.1f} ms   SGD {t_sgd * 1e3:7.1f} ms"
              f"   ratio {ratio:.3f}")
        del ours

    ours = build("hybrid")
    x = torch.randn(args.batch, sizes[0])
    y = torch.randint(0, sizes[-1], (args.batch,))

    def iteration(model, opt):
        def run():
            opt.zero_grad(set_to_none=False)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return run

    t_ours, t_sgd, ratio = paired_ratio(iteration(model_a, ours), iteration(model_b, baseline),
                                        args.repeats)
    print(f"iteration (S float32, batch {args.batch}) MetaplasticSGD {t_ours * 1e3:7.1f} ms   "
          f"SGD {t_sgd * 1e3:7.1f} ms   ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
