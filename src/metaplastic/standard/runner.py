"""Train one method on one seed of a benchmark, and many of them into a resumable run folder.

A run folder holds ``config.json`` (the protocol, methods, seeds and settings) and one
``results/<method>-seed<seed>.json`` per finished (method, seed), written atomically; running
the same command again skips the finished ones, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from avalanche.evaluation.metrics import accuracy_metrics, bwt_metrics, forgetting_metrics
from avalanche.training.plugins import EvaluationPlugin

from metaplastic.standard.methods import describe_settings, make_strategy, state_bytes
from metaplastic.standard.metrics import summarize
from metaplastic.standard.scenarios import Protocol, build_benchmark, make_model

#: Untuned settings, for smoke tests only; real runs take theirs from a search (settings.json).
DEFAULT_SETTINGS = {"lr": 0.1, "ewc_lambda": 1e3, "si_lambda": 1.0, "temperature": 2.0, "mem_size": 200,
                    "alpha": 30.0, "flexibility": {"profile": "uniform", "low": 0.0, "high": 1.0}}


def evaluator() -> EvaluationPlugin:
    return EvaluationPlugin(accuracy_metrics(experience=True, stream=True),
                            forgetting_metrics(experience=True, stream=True),
                            bwt_metrics(experience=True, stream=True), loggers=[])


def accuracy_key(experience_id: int, task_label: int) -> str:
    return f"Top1_Acc_Exp/eval_phase/test_stream/Task{task_label:03d}/Exp{experience_id:03d}"


def run_one(protocol: Protocol, method: str, seed: int, settings: dict, data_root: str,
            progress=None) -> dict:
    """Train ``method`` on the stream of ``seed``; return R, the measures and the costs."""
    benchmark = build_benchmark(protocol, seed, data_root)
    torch.manual_seed(seed)      # the same initial weights and batch order for every method
    model = make_model(protocol.scenario)
    strategy = make_strategy(method, model, settings, protocol.batch, evaluator(), seed,
                             protocol.optimizer)
    test = benchmark.test_stream
    labels = [test[j].task_label for j in range(protocol.tasks)]
    T = protocol.tasks
    clock = {"train": 0.0, "eval": 0.0}

    def timed(phase, call, *args):
        start = time.perf_counter()
        call(*args)
        clock[phase] += time.perf_counter() - start

    def row(tasks: list[int]) -> np.ndarray:
        timed("eval", strategy.eval, [test[j] for j in tasks])
        values = np.full(T, np.nan)
        metrics = strategy.evaluator.get_last_metrics()
        values[tasks] = [metrics[accuracy_key(j, labels[j])] for j in tasks]
        return values

    if method == "joint":     # one pass over all tasks' digits: as many steps as the whole stream
        timed("train", strategy.train, benchmark.train_stream)
        R = row(list(range(T)))[None, :]
    else:
        rows = []
        for i, experience in enumerate(benchmark.train_stream):
            timed("train", strategy.train, experience)
            rows.append(row(protocol.evaluated_after(i)))
            if progress:
                progress(f"task {i + 1}/{T}: just learned {rows[-1][i]:.3f}")
        R = np.stack(rows)
    metrics = strategy.evaluator.get_last_metrics()
    n_weights = sum(p.numel() for p in model.parameters())
    kept = state_bytes(method, strategy)
    steps = T * protocol.iterations
    return {"method": method, "seed": seed, "protocol": protocol.as_dict(),
            "settings": describe_settings(settings), "R": _plain(R), "measures": summarize(R),
            "eval_sizes": [len(test[j].dataset) for j in range(T)],
            "avalanche": {k: float(v) for k, v in metrics.items()
                          if k.startswith(("Stream", "Top1_Acc_Stream", "ExperienceForgetting",
                                           "ExperienceBWT")) and isinstance(v, (int, float))},
            "train_seconds": clock["train"], "eval_seconds": clock["eval"], "steps": steps,
            "seconds_per_step": clock["train"] / steps, "n_weights": n_weights,
            "state_bytes": kept, "state_bytes_per_weight": kept / n_weights}


def _plain(R: np.ndarray) -> list[list[float | None]]:
    return [[None if math.isnan(v) else float(v) for v in r] for r in R]


def matrix(result: dict) -> np.ndarray:
    """A result's R as an array (NaN where not evaluated)."""
    return np.array([[np.nan if v is None else v for v in r] for r in result["R"]], dtype=float)


# ---------------------------------------------------------------------- run folders


def result_path(run_dir: Path, method: str, seed: int) -> Path:
    return Path(run_dir) / "results" / f"{method}-seed{seed}.json"


def write_json(path: Path, data) -> None:
    """Write atomically: a killed run leaves the old file or none, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=1))
    os.replace(temporary, path)


def run_many(run_dir: Path, protocol: Protocol, methods: list[str], seeds: list[int],
             settings: dict[str, dict], data_root: str, command: str = "", log=print) -> list[dict]:
    """Every (method, seed) not yet in ``run_dir``; returns all results, old and new."""
    run_dir = Path(run_dir)
    _check_config(run_dir, protocol, command)
    jobs = [(m, s) for m in methods for s in seeds]
    todo = [(m, s) for m, s in jobs if not result_path(run_dir, m, s).exists()]
    log(f"{run_dir}: {len(jobs)} runs, {len(jobs) - len(todo)} already done, {len(todo)} to go")
    started = time.perf_counter()
    for done, (method, seed) in enumerate(todo, 1):
        begin = time.perf_counter()
        result = run_one(protocol, method, seed, settings[method], data_root,
                         progress=lambda text, m=method, s=seed: log(f"  {m} seed {s}: {text}"))
        result["wall_seconds"] = time.perf_counter() - begin
        write_json(result_path(run_dir, method, seed), result)
        left = (time.perf_counter() - started) / done * (len(todo) - done)
        log(f"[{done}/{len(todo)}] {method} seed {seed}: ACC {result['measures']['acc']:.4f} "
            f"({result['wall_seconds']:.0f} s; about {left / 60:.0f} min left)")
    return [json.loads(result_path(run_dir, m, s).read_text()) for m, s in jobs]


def _check_config(run_dir: Path, protocol: Protocol, command: str) -> None:
    path = run_dir / "config.json"
    if path.exists():
        kept = {"optimizer": "sgd"} | json.loads(path.read_text())["protocol"]   # older folders: SGD
        if kept != protocol.as_dict():
            raise SystemExit(f"{run_dir} holds runs of another protocol ({kept}); use another --out")
        return
    write_json(path, {"protocol": protocol.as_dict(), "command": command,
                      "torch": torch.__version__, "avalanche": _avalanche_version()})


def _avalanche_version() -> str:
    from importlib.metadata import version

    return version("avalanche-lib")


def load_results(run_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((Path(run_dir) / "results").glob("*.json"))]
