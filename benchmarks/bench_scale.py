"""One training step of the lab against the device's limit (a roofline), for each scale preset.

For the quick and the paper preset it builds the lab's stacked head (B networks,
``[9216, W, W, N]``) and its MetaplasticSGD, and measures in this run:

* the time of one training step (gradients set to None, forward, backward, step),
  as the engine does it;
* the FLOPs of that step (forward and backward products; the first layer needs
  no input gradient because the features are constants) and its bytes of memory
  traffic (weights read in the forward and the backward pass, weight gradients
  written, the optimizer reading gradient, S and weight and
  writing the weight, and the activations);
* the device's FLOP/s (a plain large matrix product) and bytes/s (a plain large
  elementwise ``addcmul_``: three reads and one write);
* the roofline time, max(FLOPs / FLOP/s, bytes / bytes/s), which says whether
  arithmetic or memory traffic sets the limit, and its ratio to the measured time
  (1.0 = at the limit).

It also prints the time per trial-network: steps per trial (presentations x
epochs x mini-batches) times the step time, divided by B.

With ``--products`` it also times, per preset, the two FC6 products that make most of a step,
each as a fraction of the device's plain product: the forward ``baddbmm`` of the B networks, and
the weight gradient ``x^T dY`` as one batched ``bmm`` (what autograd runs) and as a loop of one
``mm`` per network (the form a custom autograd function could choose where it is faster), and
whether the two forms give the same bits.

    python benchmarks/bench_scale.py [--device cpu] [--scales quick,paper] [--steps 5]
                                     [--networks 3] [--precision float32|bfloat16] [--products]
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F

from metaplastic._memory import keep_freed_memory
from metaplastic.classifier import StackedMLP
from metaplastic.config import SCALES
from metaplastic.features import FEATURE_DIM
from metaplastic.optim import MetaplasticSGD

FLOAT = 4   # bytes of a float32


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs after one warm-up run."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def device_flops(device, n: int, repeats: int, dtype: torch.dtype = torch.float32) -> float:
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    return 2 * n**3 / _timed(lambda: torch.mm(a, b), device, repeats)


def device_bandwidth(device, n: int, repeats: int) -> float:
    a, b, c = (torch.randn(n, device=device) for _ in range(3))
    return 4 * n * FLOAT / _timed(lambda: a.addcmul_(b, c, value=1e-9), device, repeats)


def step_cost(widths: list[int], networks: int, batch: int,
              precision: str = "float32") -> tuple[float, float]:
    """(FLOPs, bytes) of one training step of ``networks`` stacked MLPs on ``batch`` examples.

    The gradients are set to None before the backward pass (as the lab's trainer does), so
    nothing zeroes them. With bfloat16 products the operands of the products are 2-byte words,
    and each step also casts W to bfloat16 (read 4, write 2 bytes a weight) and dW back to
    float32 (read 2, write 4); the optimizer works on float32 as before.
    """
    word = 2 if precision == "bfloat16" else FLOAT
    sizes = [i * o for i, o in zip(widths[:-1], widths[1:])]
    weights = networks * sum(sizes)
    flops = networks * 2 * batch * (2 * sum(sizes) + sum(sizes[1:]))  # forward, dW, dX (not layer 1)
    weight_bytes = (word * weights                        # forward reads W
                    + word * networks * sum(sizes[1:])    # backward dX reads W (layers 2..)
                    + word * weights                      # dW written
                    + FLOAT * 4 * weights)                # step: read dW, S, W; write W
    if precision == "bfloat16":
        weight_bytes += (FLOAT + 2) * weights * 2         # W to bfloat16, dW to float32
    activations = networks * batch * sum(widths) * word * 4   # write + read, forward and backward
    return flops, weight_bytes + activations


def measure_step(scale, device, steps: int, networks: int, precision: str = "float32") -> float:
    widths = [FEATURE_DIM, scale.width, scale.width, 10]
    generators = [torch.Generator().manual_seed(k) for k in range(networks)]
    model = StackedMLP(widths, generators, list(range(networks))).to(device)
    groups = [{"params": [w], "flexibility": torch.rand(w.shape, generator=generators[0]).to(device)}
              for w in model.weights] + [{"params": list(model.biases), "scaled": False}]
    optimizer = MetaplasticSGD(groups, lr=scale.lr, alpha=scale.alpha, flexibility=1.0)
    x = torch.randn(networks, scale.batch_size, FEATURE_DIM, device=device)
    y = torch.randint(0, 10, (networks, scale.batch_size), device=device)
    optimizer.consolidate()

    def step():   # as the lab's MetaplasticTrainer steps (metaplastic.engine.forward_precision)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            loss = F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten())
        loss.backward()
        optimizer.step()

    return _timed(step, device, steps)


def measure_products(scale, device, repeats: int, networks: int, flops_s: float) -> str:
    """The FC6 forward product and its weight gradient (as one bmm and as a loop of mm), each
    as GFLOP/s and as a fraction of the device's plain product ``flops_s``."""
    x = torch.randn(networks, scale.batch_size, FEATURE_DIM, device=device)
    weight = torch.randn(networks, FEATURE_DIM, scale.width, device=device)
    bias = torch.randn(networks, 1, scale.width, device=device)
    grad = torch.randn(networks, scale.batch_size, scale.width, device=device)
    out = torch.empty_like(weight)

    def loop():
        for k in range(networks):
            torch.mm(x[k].t(), grad[k], out=out[k])

    flops = 2 * networks * scale.batch_size * FEATURE_DIM * scale.width
    parts = []
    for name, fn in [("forward baddbmm", lambda: torch.baddbmm(bias, x, weight)),
                     ("dW one bmm", lambda: torch.bmm(x.transpose(1, 2), grad, out=out)),
                     ("dW mm per network", loop)]:
        rate = flops / _timed(fn, device, repeats)
        parts.append(f"{name} {rate / 1e9:.1f} GFLOP/s ({rate / flops_s:.2f})")
    loop()
    same = torch.equal(out, torch.bmm(x.transpose(1, 2), grad))
    return "; ".join(parts) + f"; the two dW forms {'bit for bit equal' if same else 'differ'}"


def steps_per_trial(scale, items: int = 10) -> int:
    examples = scale.train_per_class + (items - 1) * round(scale.train_per_class / (items - 1))
    return items * scale.epochs * math.ceil(examples / scale.batch_size)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--scales", default="quick,paper", help="comma-separated presets")
    parser.add_argument("--networks", type=int, default=3, help="networks stacked (default 3: "
                        "conventional, stable, hybrid of one trial)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per preset (median)")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                        help="the products' precision, as the lab's --precision (bfloat16: float32 "
                             "weights; the device's FLOP/s then measured in bfloat16 too)")
    parser.add_argument("--products", action="store_true",
                        help="also time FC6's forward product and its weight gradient (one bmm "
                             "and one mm per network) against the device's plain product")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cpu":
        keep_freed_memory()   # as the lab does on the CPU (metaplastic._memory)
    big = 4096 if device.type == "cpu" else 8192
    product = torch.bfloat16 if args.precision == "bfloat16" else torch.float32
    flops_s = device_flops(device, big, 5, product)
    bytes_s = device_bandwidth(device, 2**25, 9)
    print(f"device {device} ({torch.get_num_threads()} threads): matmul {flops_s / 1e9:.1f} GFLOP/s "
          f"({args.precision}), addcmul_ {bytes_s / 1e9:.1f} GB/s")
    # The products are timed in float32, so they are compared with the float32 product.
    float32_flops_s = flops_s if product == torch.float32 else device_flops(device, big, 5)
    for name in args.scales.split(","):
        scale = SCALES[name]
        widths = [FEATURE_DIM, scale.width, scale.width, 10]
        flops, traffic = step_cost(widths, args.networks, scale.batch_size, args.precision)
        measured = measure_step(scale, device, args.steps, args.networks, args.precision)
        compute, memory = flops / flops_s, traffic / bytes_s
        roofline = max(compute, memory)
        per_trial_network = measured * steps_per_trial(scale) / args.networks
        print(f"{name:<6} B={args.networks} batch {scale.batch_size} width {scale.width}: step "
              f"{measured * 1e3:.1f} ms; {flops / 1e9:.2f} GFLOP, {traffic / 1e9:.3f} GB; roofline "
              f"{roofline * 1e3:.1f} ms ({'compute' if compute >= memory else 'memory'}-bound: "
              f"compute {compute * 1e3:.1f} ms, memory {memory * 1e3:.1f} ms); roofline/measured "
              f"{roofline / measured:.2f}; {steps_per_trial(scale)} steps a trial: "
              f"{per_trial_network:.1f} s per trial-network")
        if args.products:
            print(f"{'':<6} FC6 products, float32: "
                  f"{measure_products(scale, device, max(args.steps, 5), args.networks, float32_flops_s)}")


if __name__ == "__main__":
    main()
