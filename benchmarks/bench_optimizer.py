"""Cost of MetaplasticSGD against torch.optim.SGD, measured in one run.

For an MLP with the paper's FC sizes (9216-4096-4096-10) it prints the median
time of one optimizer step, and of one whole training iteration (forward,
backward, step on a batch), for both optimizers, and their ratios.

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


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: first-touch allocations and kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_optimizers(model_a, model_b, foreach: bool):
    ours = MetaplasticSGD(model_a.parameters(), lr=1e-4, alpha=4e5, flexibility="hybrid",
                          generator=torch.Generator().manual_seed(0), foreach=foreach)
    ours.consolidate()  # S now differs from 1: a realistic mid-sequence state
    baseline = torch.optim.SGD(model_b.parameters(), lr=1e-4, foreach=True)
    return ours, baseline


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

    torch.manual_seed(0)
    model_a, model_b = paper_head(sizes), paper_head(sizes)
    model_b.load_state_dict(model_a.state_dict())
    ours, baseline = make_optimizers(model_a, model_b, foreach=not args.single_tensor)
    for model in (model_a, model_b):
        for p in model.parameters():
            p.grad = torch.randn_like(p) * 1e-3

    n_params = sum(p.numel() for p in model_a.parameters())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"model {sizes} ({n_params / 1e6:.1f} M parameters), "
          f"kernel {'single-tensor' if args.single_tensor else 'foreach'}")

    step_ours = median_seconds(ours.step, args.repeats)
    step_sgd = median_seconds(baseline.step, args.repeats)
    print(f"step       MetaplasticSGD {step_ours * 1e3:8.1f} ms   SGD {step_sgd * 1e3:8.1f} ms"
          f"   ratio {step_ours / step_sgd:.3f}")

    x = torch.randn(args.batch, sizes[0])
    y = torch.randint(0, sizes[-1], (args.batch,))

    def iteration(model, opt):
        def run():
            opt.zero_grad(set_to_none=False)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return run

    iter_ours = median_seconds(iteration(model_a, ours), args.repeats)
    iter_sgd = median_seconds(iteration(model_b, baseline), args.repeats)
    print(f"iteration  MetaplasticSGD {iter_ours * 1e3:8.1f} ms   SGD {iter_sgd * 1e3:8.1f} ms"
          f"   ratio {iter_ours / iter_sgd:.3f}   (batch {args.batch})")


if __name__ == "__main__":
    main()
