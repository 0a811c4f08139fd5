"""Cost of MetaplasticSGD against torch.optim.SGD, measured in one run: memory and time.

For an MLP with the paper's FC sizes (9216-4096-4096-10) it prints

* the bytes of optimizer state per scaled weight, for each way the
  flexibility can be given (hybrid, hybrid with S in bfloat16, a constant,
  conventional, an explicit tensor as the lab passes it), and how far the
  process's peak resident memory rises above the state during one
  ``consolidate()`` (Linux: the peak is reset through /proc/self/clear_refs;
  memory that an earlier step freed but kept may serve part of it);
* the time of one optimizer step (S in float32; S in bfloat16 with the
  eager kernel and with ``fused=True``), and of one whole training iteration
  (forward, backward, step on a batch), each as a ratio to SGD's. Ours and
  SGD's are timed alternately, repetition after repetition, and the ratio is
  the median of the per-repetition ratios: on a shared machine the load
  changes between repetitions, less within one. The quartiles of the ratios
  are printed beside it.

The baseline is ``torch.optim.SGD(foreach=True)``. On the CPU torch's default
(``foreach=None``) is the single-tensor loop; the script times it and
``fused=True`` against the baseline too, so the choice can be checked.

    python benchmarks/bench_optimizer.py [--repeats 15] [--batch 1024] [--no-iteration]
                                         [--threads N] [--clock wall|cpu]

``--clock cpu`` times the CPU time the process spends (with ``--threads 1``,
the calling thread's): on a machine whose cores other jobs keep busy, wall
time also counts the waits for a descheduled thread at every parallel
region, which round a 12 ms step up to whole scheduler ticks.
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


clock = time.perf_counter   # set by --clock


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith(key))


def peak_rise(fn) -> float | None:
    """Bytes by which the peak resident memory rises above the current one during ``fn()``."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")                 # resets the peak (VmHWM) to the current size
        before = _status_bytes("VmRSS:")
    except OSError:                          # not Linux, or no permission
        fn()
        return None
    fn()
    return _status_bytes("VmHWM:") - before


def paired_ratio(ours, theirs, repeats: int) -> tuple[float, float, float, tuple[float, float]]:
    """Median times of ``ours`` and ``theirs`` (s), the median of their paired ratios, its quartiles."""
    ours(), theirs()  # warm-up: first-touch allocations, kernel selection, compilation
    a, b = [], []
    for _ in range(repeats):
        for fn, times in ((theirs, b), (ours, a)):
            start = clock()
            fn()
            times.append(clock() - start)
    ratios = [x / y for x, y in zip(a, b)]
    quartiles = statistics.quantiles(ratios, n=4)
    return statistics.median(a), statistics.median(b), statistics.median(ratios), \
        (quartiles[0], quartiles[2])


def report(label: str, ours: str, timing) -> None:
    t_ours, t_base, ratio, (q1, q3) = timing
    print(f"{label:34s} {ours} {t_ours * 1e3:7.1f} ms   SGD {t_base * 1e3:7.1f} ms   "
          f"ratio {ratio:.3f} (quartiles {q1:.3f}-{q3:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15, help="timed repetitions (median)")
    parser.add_argument("--batch", type=int, default=1024, help="batch size of an iteration")
    parser.add_argument("--sizes", default="9216,4096,4096,10", help="layer widths")
    parser.add_argument("--single-tensor", action="store_true",
                        help="time the single-tensor reference kernel instead of foreach")
    parser.add_argument("--no-iteration", action="store_true",
                        help="skip the whole-iteration timing (the slow part)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or CPU time of the process (of the thread with --threads 1)")
    args = parser.parse_args()
    global clock
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        clock = time.thread_time if torch.get_num_threads() == 1 else time.process_time
    sizes = [int(s) for s in args.sizes.split(",")]
    foreach = not args.single_tensor

    torch.manual_seed(0)
    model_a, model_b = paper_head(sizes), paper_head(sizes)
    model_b.load_state_dict(model_a.state_dict())
    n_params = sum(p.numel() for p in model_a.parameters())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.clock} clock, "
          f"model {sizes} ({n_params / 1e6:.1f} M parameters), "
          f"kernel {'foreach' if foreach else 'single-tensor'}")

    def build(flexibility, **kwargs):
        kernel = {"foreach": None} if kwargs.get("fused") else {"foreach": foreach}
        opt = MetaplasticSGD(model_a.parameters(), lr=1e-4, alpha=4e5, flexibility=flexibility,
                             generator=torch.Generator().manual_seed(0), **kernel, **kwargs)
        opt.consolidate()  # creates the state; S differs from 1 after the next boundaries
        return opt

    print("optimizer state, bytes per scaled weight (before: 12 in float32 for every profile);\n"
          "peak memory rise during one consolidate()")
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
        rise = peak_rise(opt.consolidate)
        rise_text = "n/a" if rise is None else f"{rise / 1e6:6.0f} MB"
        print(f"  {label:48s} {state_bytes_per_scaled_weight(opt, model_a):5.2f}   "
              f"consolidate {rise_text}")
        del opt

    for model in (model_a, model_b):
        for p in model.parameters():
            p.grad = torch.randn_like(p) * 1e-3
    baseline = torch.optim.SGD(model_b.parameters(), lr=1e-4, foreach=True)
    print("one step; baseline torch.optim.SGD(foreach=True)")
    for label, kwargs in [("SGD, torch's CPU default (loop)", {}), ("SGD, fused=True", {"fused": True})]:
        other = torch.optim.SGD(model_a.parameters(), lr=1e-4, **kwargs)
        report(label, "   this", paired_ratio(other.step, baseline.step, args.repeats))
        del other
    bf16 = {"scale_dtype": torch.bfloat16}
    for label, kwargs in [("S float32", {}), ("S bfloat16, eager kernel", bf16),
                          ("S bfloat16, fused=True", bf16 | {"fused": True})]:
        ours = build("hybrid", **kwargs)
        if kwargs.get("fused"):
            start = time.perf_counter()
            ours.step()             # the first step compiles the fused kernel (or finds it cached)
            print(f"  fused kernel: first step {time.perf_counter() - start:.1f} s (compilation)")
        report(label, "Metaplastic", paired_ratio(ours.step, baseline.step, args.repeats))
        del ours
    if args.no_iteration:
        return

    ours = build("hybrid")
    x = torch.randn(args.batch, sizes[0])
    y = torch.randint(0, sizes[-1], (args.batch,))

    def iteration(model, opt):
        def run():
            opt.zero_grad(set_to_none=False)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return run

    report(f"iteration (S float32, batch {args.batch})", "Metaplastic",
           paired_ratio(iteration(model_a, ours), iteration(model_b, baseline), args.repeats))


if __name__ == "__main__":
    main()
