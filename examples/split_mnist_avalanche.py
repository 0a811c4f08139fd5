"""Split MNIST with Avalanche: Naive + MetaplasticSGD vs Naive + SGD vs EWC.

Five experiences of two digits each (0-1, 2-3, 4-5, 6-7, 8-9), class-incremental
with one ten-way head, built from a local MNIST folder (no download):

    pip install -e ".[lab,avalanche]"
    python examples/split_mnist_avalanche.py --data-dir ../shared/data

Every strategy trains the same MLP (784-256-256-10, same initial weights) for
the same epochs with plain SGD steps at the same learning rate; they differ
only in the rule. The metaplastic run takes its alpha from a pilot: one copy of
the model trains on the first experience with S = 1 (alpha = 0), and
:func:`metaplastic.suggest_alpha` reads the drifts. At the end it prints
Avalanche's accuracy on the whole test stream and its forgetting.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore", module="qpsolvers")  # avalanche imports it, we need no QP solver

from avalanche.benchmarks import nc_benchmark  # noqa: E402
from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics  # noqa: E402
from avalanche.training.plugins import EvaluationPlugin  # noqa: E402
from avalanche.training.supervised import EWC, Naive  # noqa: E402

from metaplastic import MetaplasticSGD, suggest_alpha  # noqa: E402
from metaplastic.avalanche import MetaplasticPlugin  # noqa: E402
from metaplastic.data.mnist import load_digits  # noqa: E402


class Digits(torch.utils.data.TensorDataset):
    """Flattened digits in [0, 1] with the ``targets`` list Avalanche reads."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        x = torch.from_numpy(images).float().div(255).flatten(1)
        y = torch.from_numpy(labels).long()
        super().__init__(x, y)
        self.targets = y.tolist()


def subset(images, labels, per_class, seed):
    if per_class is None:
        return images, labels
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.permutation(np.flatnonzero(labels == d))[:per_class] for d in range(10)])
    return images[keep], labels[keep]


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                               torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))


def evaluator():
    return EvaluationPlugin(accuracy_metrics(experience=True, stream=True),
                            forgetting_metrics(experience=True, stream=True), loggers=[])


def pilot_drifts(model, experience, args) -> list[torch.Tensor]:
    """Train a copy on the first experience with S = 1 and return its drifts."""
    pilot = copy.deepcopy(model)
    opt = MetaplasticSGD(pilot.parameters(), lr=args.lr, alpha=0.0, flexibility="hybrid")
    strategy = Naive(model=pilot, optimizer=opt, train_mb_size=args.batch,
                     train_epochs=args.epochs, plugins=[MetaplasticPlugin()], evaluator=None)
    strategy.train(experience)
    return opt.drifts()


def run(name, strategy, benchmark):
    start = time.perf_counter()
    for experience in benchmark.train_stream:
        strategy.train(experience)
        strategy.eval(benchmark.test_stream)
    metrics = strategy.evaluator.get_last_metrics()
    accuracy = metrics["Top1_Acc_Stream/eval_phase/test_stream/Task000"]
    forgetting = metrics["StreamForgetting/eval_phase/test_stream"]
    per_exp = [metrics[f"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp{e:03d}"] for e in range(5)]
    print(f"{name}\n    stream accuracy {accuracy:.3f}   stream forgetting {forgetting:.3f}   "
          f"per experience {' '.join(f'{a:.2f}' for a in per_exp)}   ({time.perf_counter() - start:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="folder holding MNIST/raw")
    parser.add_argument("--train-per-class", type=int, default=None,
                        help="training digits per class (default: all, about 6,000)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--target-scales", type=float, nargs="+", default=[0.5, 0.01],
                        help="S of a median-drift f = 0.5 weight after experience 1; each value "
                             "sets one alpha and one metaplastic run")
    parser.add_argument("--ewc-lambda", type=float, default=1000.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    digits = load_digits(args.data_dir, download=False)
    if digits.is_fallback:
        print(f"warning: MNIST not found under {args.data_dir}; using {digits.source}")
    train = Digits(*subset(digits.train_images, digits.train_labels, args.train_per_class, args.seed))
    test = Digits(digits.test_images, digits.test_labels)
    benchmark = nc_benchmark(train, test, n_experiences=5, task_labels=False,
                             fixed_class_order=list(range(10)))
    torch.manual_seed(args.seed)
    model = mlp()
    common = dict(criterion=torch.nn.CrossEntropyLoss(), train_mb_size=args.batch,
                  train_epochs=args.epochs, eval_mb_size=1024)

    drifts = pilot_drifts(model, benchmark.train_stream[0], args)
    print(f"{len(train)} training digits, {len(test)} test digits, 5 experiences, "
          f"{args.epochs} epoch(s) each, lr {args.lr:g}, batch {args.batch}")

    for target in args.target_scales:
        alpha = suggest_alpha(drifts, flexibility=0.5, scale=target)
        torch.manual_seed(args.seed + 1)                  # same shuffles for every strategy
        metaplastic_model = copy.deepcopy(model)
        opt = MetaplasticSGD(metaplastic_model.parameters(), lr=args.lr, alpha=alpha,
                             flexibility="hybrid", generator=torch.Generator().manual_seed(args.seed))
        run(f"Naive + MetaplasticSGD (hybrid, alpha {alpha:.3g}: S {target:g} at the median drift)",
            Naive(model=metaplastic_model, optimizer=opt, plugins=[MetaplasticPlugin()],
                  evaluator=evaluator(), **common), benchmark)

    torch.manual_seed(args.seed + 1)
    sgd_model = copy.deepcopy(model)
    run("Naive + SGD", Naive(model=sgd_model, optimizer=torch.optim.SGD(sgd_model.parameters(), lr=args.lr),
                             evaluator=evaluator(), **common), benchmark)

    torch.manual_seed(args.seed + 1)
    ewc_model = copy.deepcopy(model)
    run(f"EWC (lambda {args.ewc_lambda:g}) + SGD",
        EWC(model=ewc_model, optimizer=torch.optim.SGD(ewc_model.parameters(), lr=args.lr),
            ewc_lambda=args.ewc_lambda, evaluator=evaluator(), **common), benchmark)


if __name__ == "__main__":
    main()
