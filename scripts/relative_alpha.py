"""Does one alpha, relative to the drift after the first item, carry from preset to preset?

Eq. 2 depends on alpha only through alpha * |dw|, and the drift dw after an item has a scale
that moves with the width, the learning rate, the batch size and the features (issue 9). This
trains the first presentation of trial 0 of serial-position at each preset (one conventional
network: during the first item S = 1 for every f > 0, so every profile drifts alike), measures
|dw| = |w - w0| over the weights of FC6, FC7 and the output layer, and prints per preset the
median drift and the *relative alpha* alpha * median|dw| of the preset's calibrated alpha; then
the alpha that the quick preset's relative alpha implies at every other preset.

    python scripts/relative_alpha.py --data-dir ../shared/data [--scales quick,paper] \\
        [--set paper:lr=3e-4 paper:center_features=true]

``--set`` measures a preset with some settings changed (a candidate of a calibration sweep).
"""

from __future__ import annotations

import argparse
import time

import torch

from metaplastic import engine, trials
from metaplastic.config import RunConfig, parse_setting
from metaplastic.experiments import make_config
from metaplastic.lab import Lab


def parse_settings(entries: list[str]) -> dict[str, dict]:
    """``["paper:lr=3e-4", "paper:center_features=true"]`` -> ``{"paper": {"lr": 3e-4, ...}}``."""
    settings: dict[str, dict] = {}
    for entry in entries:
        scale, _, assignment = entry.partition(":")
        name, _, value = assignment.partition("=")
        if not name or not value:
            raise SystemExit(f"--set wants SCALE:NAME=VALUE, got {entry!r}")
        settings.setdefault(scale, {})[name] = parse_setting(name, value)
    return settings


def drift_after_first_item(lab: Lab, scale: str, seed: int,
                           settings: dict) -> tuple[RunConfig, float, list[float], float]:
    """The preset's configuration, the median |dw| over all weights, per layer, and the seconds
    it took (features included)."""
    start = time.perf_counter()
    config = make_config("serial-position", scale, trials=1, seed=seed, learners="conventional",
                         **{**settings, "test_per_class": 1})     # no test images are needed
    wanted = [key for key in trials.required_features(config, [0]) if key[1] == "train"]
    cached = lab.cache.ensure(lab.digits, wanted, seed=config.dataset_seed)
    empty = torch.zeros(0, 9216, dtype=torch.float16).numpy()
    source = lambda name, split, n: cached[(name, split)] if split == "train" else empty  # noqa: E731
    trial = trials.prepare_trial(config, source, 0)
    (group,) = engine.build_groups(config, [trial])
    initial = [w.detach().clone() for w in group.model.weights]
    engine._train_presentation(config, [group], [trial], 0)
    drifts = [(w.detach() - w0).abs().flatten() for w, w0 in zip(group.model.weights, initial)]
    per_layer = [d.median().item() for d in drifts]
    everything = torch.cat(drifts)
    sample = everything[:: everything.numel() // 1_000_000 + 1]      # the median of a large sample
    return config, sample.median().item(), per_layer, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir")
    parser.add_argument("--cache-dir")
    parser.add_argument("--scales", default="quick,paper")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], metavar="SCALE:NAME=VALUE",
                        help="change a preset's setting (lr, alpha, batch_size, epochs, width, "
                             "feature_scale, center_features, train_per_class)")
    args = parser.parse_args()
    settings = parse_settings(args.set)
    lab = Lab(data_dir=args.data_dir, cache_dir=args.cache_dir)
    scales = args.scales.split(",")
    measured = {}
    print("| preset | width | lr | batch | alpha | median abs(dw), FC6 / FC7 / out | median abs(dw) | "
          "alpha x median abs(dw) | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for scale in scales:
        config, median, per_layer, seconds = drift_after_first_item(lab, scale, args.seed,
                                                                    settings.get(scale, {}))
        measured[scale] = (config, median)
        layers = " / ".join(f"{m:.2e}" for m in per_layer)
        print(f"| {scale} | {config.width} | {config.lr:g} | {config.batch_size} | {config.alpha:g} | "
              f"{layers} | {median:.3e} | {config.alpha * median:.3g} | {seconds:.0f} |")
    reference, base = scales[0], measured[scales[0]]
    relative = base[0].alpha * base[1]
    print(f"\nrelative alpha of the {reference} preset: {relative:.3g}")
    for scale in scales[1:]:
        config, median = measured[scale]
        print(f"  implies alpha {relative / median:.3g} at the {scale} preset (its preset: "
              f"{config.alpha:g}; ratio {relative / median / config.alpha:.2f})")


if __name__ == "__main__":
    main()
