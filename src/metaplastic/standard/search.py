"""The settings search: every method's grid, on the validation split, on a seed never reported.

Stage 1 picks fine-tuning's learning rate; every method then trains at that rate (plain SGD,
as the paper compares methods at one optimizer setting) and stage 2 searches each method's
own setting over :data:`~metaplastic.standard.methods.GRID_POINTS` values: EWC's and online
EWC's lambda, SI's c, LwF's temperature, replay's buffer size, the rule's alpha (factors of
:func:`metaplastic.suggest_alpha`'s value, read after the first task). The stable-and-flexible
mix is then searched over four profiles at the hybrid's alpha. A setting is chosen by the
average accuracy on the validation digits at the end of the stream (ties: the first).

Under ``--optimizer adam`` (the baselines only; the rule is MetaplasticSGD) stage 1 searches
Adam's lr over :data:`~metaplastic.standard.methods.ADAM_LRS`; with ``--reuse SETTINGS`` only
that lr is searched, and every other baseline keeps the setting an earlier search chose, at the
new lr (a cheaper budget than a full search).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from avalanche.training.supervised import Naive

from metaplastic import MetaplasticSGD, suggest_alpha
from metaplastic.avalanche import MetaplasticPlugin
from metaplastic.standard.methods import ADAM_LRS, METHODS, describe_settings
from metaplastic.standard.runner import run_one, write_json
from metaplastic.standard.scenarios import Protocol, build_benchmark, make_model

HYBRID = {"profile": "uniform", "low": 0.0, "high": 1.0}
#: The order of the search: each stage may read what the earlier ones chose.
ORDER = ("naive", "ewc", "online-ewc", "si", "lwf", "replay", "metaplastic", "metaplastic-mix")


def pilot_alpha(protocol: Protocol, seed: int, lr: float, data_root: str) -> float:
    """suggest_alpha from the drifts of one model trained on the first task with S = 1."""
    benchmark = build_benchmark(protocol, seed, data_root)
    torch.manual_seed(seed)
    model = make_model(protocol.scenario)
    optimizer = MetaplasticSGD(model.parameters(), lr=lr, alpha=0.0, flexibility="hybrid")
    strategy = Naive(model=model, optimizer=optimizer, criterion=torch.nn.CrossEntropyLoss(),
                     train_mb_size=protocol.batch, plugins=[MetaplasticPlugin()], evaluator=None)
    strategy.train(benchmark.train_stream[0])
    return suggest_alpha(optimizer.drifts(), flexibility=0.5, scale=0.5)


def search(out_dir: Path, protocol: Protocol, seed: int, data_root: str, methods=ORDER,
           command: str = "", log=print, reuse: dict | None = None) -> dict:
    """Run every grid point not yet in ``out_dir``; write and return ``settings.json``.

    ``reuse`` (an earlier search's settings.json record): search fine-tuning's lr only, and give
    every other method in ``methods`` that record's choice at the new lr.
    """
    out_dir = Path(out_dir)
    if protocol.optimizer != "sgd" and any(m.startswith("metaplastic") for m in methods):
        raise SystemExit("the rule is MetaplasticSGD whatever --optimizer says: "
                         "search it with --optimizer sgd")
    if reuse is not None and "naive" not in methods:
        raise SystemExit("--reuse re-searches fine-tuning's lr: include naive in --methods")
    record = {"protocol": protocol.as_dict(), "seed": seed, "command": command, "selected_by":
              "average accuracy on the validation split after the last task", "grids": {}, "scores": {},
              "chosen": {}}
    chosen: dict = {}
    for method in methods:
        if reuse is not None and method != "naive":
            chosen[method] = describe_settings(reuse["chosen"][method]) | {"lr": chosen["lr"]}
            record.setdefault("reused", {})[method] = reuse["chosen"][method]
            log(f"{method}: {METHODS[method].knob} kept from the earlier search, lr {chosen['lr']}")
            continue
        base = _base_settings(method, chosen)
        adam_lr = method == "naive" and protocol.optimizer == "adam"
        values = list(ADAM_LRS) if adam_lr else METHODS[method].grid(chosen)
        scores = []
        for index, value in enumerate(values):
            settings = base | {METHODS[method].knob: value}
            result = _grid_point(out_dir, protocol, method, index, seed, settings, data_root, log)
            scores.append(result["measures"]["acc"])
        best = max(range(len(values)), key=lambda k: (scores[k], -k))
        chosen[method] = base | {METHODS[method].knob: values[best]}
        if method == "naive":
            chosen["lr"] = values[best]
            if protocol.optimizer == "sgd":     # the rule's alpha pilot, at the rule's (SGD) lr
                chosen["suggested_alpha"] = pilot_alpha(protocol, seed, values[best], data_root)
                record["suggested_alpha"] = chosen["suggested_alpha"]
        record["grids"][method] = values
        record["scores"][method] = scores
        log(f"{method}: {METHODS[method].knob} = {values[best]} (validation ACC {scores[best]:.4f})")
    record["chosen"] = {m: describe_settings(chosen[m]) for m in methods}
    if "lr" in chosen:
        record["chosen"]["joint"] = {"lr": chosen["lr"]}
    write_json(out_dir / "settings.json", record)
    return record


def _base_settings(method: str, chosen: dict) -> dict:
    if method == "naive":
        return {}
    base = {"lr": chosen["lr"]}
    if method == "metaplastic":
        base["flexibility"] = HYBRID
    if method == "metaplastic-mix":
        base["alpha"] = chosen["metaplastic"]["alpha"]
    return base


def _grid_point(out_dir, protocol, method, index, seed, settings, data_root, log) -> dict:
    path = out_dir / "results" / f"{method}-{index}.json"
    if path.exists():
        return json.loads(path.read_text())
    result = run_one(protocol, method, seed, settings, data_root)
    write_json(path, result)
    log(f"  {method} {describe_settings(settings)}: validation ACC {result['measures']['acc']:.4f} "
        f"({result['train_seconds'] + result['eval_seconds']:.0f} s)")
    return result


def load_settings(path: Path) -> dict[str, dict]:
    """The chosen settings per method from a search's settings.json."""
    return json.loads(Path(path).read_text())["chosen"]
