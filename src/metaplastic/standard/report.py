"""The report of standard-benchmark run folders: markdown tables beside the published numbers,
the accuracy matrix as a heat map, accuracy per task over the stream, the settings search,
the costs. Paired comparisons are across seeds (the same seed: the same permutations, training
digits and initial weights for every method)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from metaplastic.standard.methods import METHODS  # noqa: E402
from metaplastic.standard.published import NOT_RUN, PUBLISHED, SOURCE  # noqa: E402
from metaplastic.standard.runner import load_results, matrix  # noqa: E402

MEASURES = [("acc", "ACC"), ("bwt", "BWT"), ("forgetting_avalanche", "forgetting (Avalanche)"),
            ("forgetting_chaudhry", "forgetting (Chaudhry)"), ("lowest", "lowest task")]
TITLES = {"permuted": "Permuted MNIST, domain-incremental", "split-task": "Split MNIST, task-incremental",
          "split-class": "Split MNIST, class-incremental"}


def write_report(run_dirs: list[Path], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    sections = [_section(Path(d), out) for d in run_dirs]
    path = out / "report.md"
    path.write_text("# Standard continual-learning benchmarks\n\n" + "\n".join(sections))
    return path


def by_method(results: list[dict]) -> dict[str, dict[int, dict]]:
    grouped: dict[str, dict[int, dict]] = {}
    for r in results:
        grouped.setdefault(r["method"], {})[r["seed"]] = r
    order = list(METHODS)
    return dict(sorted(grouped.items(), key=lambda kv: order.index(kv[0])))


def mean_sem(values) -> tuple[float, float]:
    values = np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan")
    sem = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return float(values.mean()), float(sem)


def paired_p(a: dict[int, dict], b: dict[int, dict]) -> tuple[float, int]:
    """Two-sided paired t-test of ACC over the seeds both methods ran."""
    seeds = sorted(set(a) & set(b))
    x = [a[s]["measures"]["acc"] for s in seeds]
    y = [b[s]["measures"]["acc"] for s in seeds]
    if len(seeds) < 2 or np.allclose(x, y):
        return float("nan"), len(seeds)
    return float(stats.ttest_rel(x, y).pvalue), len(seeds)


def _section(run_dir: Path, out: Path) -> str:
    config = json.loads((run_dir / "config.json").read_text())
    protocol = config["protocol"]
    grouped = by_method(load_results(run_dir))
    name = f"{protocol['scenario']}-{protocol['tasks']}"
    lines = [f"## {TITLES[protocol['scenario']]}, {protocol['tasks']} tasks ({run_dir.name})", "",
             f"Command: `{config['command']}`", "", _protocol_line(protocol), ""]
    lines += _measure_table(protocol, grouped) + [""]
    lines += _cost_table(grouped) + [""]
    if protocol["eval_mode"] == "diagonal":
        _plot_just_learned(grouped, out / f"{name}-just-learned.png")
        lines += _just_learned_table(grouped) + ["", f"![just learned]({name}-just-learned.png)", ""]
    else:
        _plot_heatmaps(grouped, out / f"{name}-matrix.png")
        _plot_per_task(grouped, out / f"{name}-per-task.png")
        lines += [f"![accuracy matrix]({name}-matrix.png)", "",
                  f"![accuracy per task]({name}-per-task.png)", ""]
    search_path = run_dir / "search.json"
    if search_path.exists():
        lines += _search_table(json.loads(search_path.read_text())) + [""]
    return "\n".join(lines)


def _protocol_line(p: dict) -> str:
    evaluation = f"{p['eval_per_task']} test digits per task" if p["eval_per_task"] else "all test digits"
    if p["eval_mode"] == "seen":
        when = "every trained task after each task"
    else:
        when = f"the task just trained after each task, every trained task after each {p['full_every']}th"
    optimizer = ("plain SGD" if p.get("optimizer", "sgd") == "sgd"
                 else "Adam for the baselines, MetaplasticSGD for the rule")
    return (f"Protocol: {p['tasks']} tasks, {p['iterations']} steps of {p['batch']} per task ({optimizer}), "
            f"{evaluation}; evaluated on {when}. "
            f"Published: {SOURCE}, in their longer protocol (see published.py): compare rankings, "
            "not levels.")


def _measure_table(protocol: dict, grouped: dict) -> list[str]:
    published = PUBLISHED.get(protocol["scenario"], {})
    header = ["method", "seeds"] + [label + " (%)" for _, label in MEASURES] + ["published ACC (%)",
                                                                              "p vs naive", "p vs SI"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, runs in grouped.items():
        cells = [method, str(len(runs))]
        for key, _ in MEASURES:
            m, s = mean_sem([100 * r["measures"][key] for r in runs.values()])
            cells.append("-" if np.isnan(m) else f"{m:.2f} ± {s:.2f}")
        cells.append(f"{published[method]:.2f}" if method in published else "-")
        for other in ("naive", "si"):
            p, _ = paired_p(runs, grouped[other]) if other in grouped and other != method else (np.nan, 0)
            cells.append("-" if np.isnan(p) else f"{p:.2g}")
        lines.append("| " + " | ".join(cells) + " |")
    for label, value in NOT_RUN.get(protocol["scenario"], {}).items():
        lines.append(f"| {label} (not run) | - | - | - | - | - | - | {value:.2f} | - | - |")
    lines += ["", "Mean ± SEM over seeds. BWT and both forgettings over the first T-1 tasks; forgetting "
              "(Avalanche) = accuracy right after training a task minus final (= -BWT), forgetting "
              "(Chaudhry) = best accuracy before the end minus final; lowest task = the lowest accuracy "
              "of any trained task at any point of the stream. p: two-sided paired t-test of ACC over "
              "seeds (scipy.stats.ttest_rel). Joint trains once on all tasks: ACC only."]
    return lines


def _cost_table(grouped: dict) -> list[str]:
    lines = ["| method | ms per step | train s per run | eval s per run | state bytes per weight |",
             "|---|---|---|---|---|"]
    for method, runs in grouped.items():
        r = list(runs.values())
        step = np.mean([x["seconds_per_step"] for x in r]) * 1000
        lines.append(f"| {method} | {step:.1f} | {np.mean([x['train_seconds'] for x in r]):.1f} | "
                     f"{np.mean([x['eval_seconds'] for x in r]):.1f} | "
                     f"{np.mean([x['state_bytes_per_weight'] for x in r]):.2f} |")
    lines += ["", "One CPU thread; a step includes the method's own work (EWC's Fisher pass, LwF's "
              "teacher, replay's second batch) averaged over the run. State: what the method keeps "
              "beyond the model, after the last task (replay: its buffer; LwF: the previous model; "
              "EWC: parameters and importances per task)."]
    return lines


def _just_learned_table(grouped: dict) -> list[str]:
    lines = ["| method | just learned, tasks 1-10 (%) | just learned, last 10 tasks (%) | "
             "final ACC (%) |", "|---|---|---|---|"]
    for method, runs in grouped.items():
        diagonals = np.array([np.diag(matrix(r)) for r in runs.values()])
        first, _ = mean_sem(100 * diagonals[:, :10].mean(1))
        last, _ = mean_sem(100 * diagonals[:, -10:].mean(1))
        final, sem = mean_sem([100 * r["measures"]["acc"] for r in runs.values()])
        lines.append(f"| {method} | {first:.2f} | {last:.2f} | {final:.2f} ± {sem:.2f} |")
    return lines


def _search_table(record: dict) -> list[str]:
    p = record["protocol"]
    lines = [f"Settings search: `{record['command']}`; seed {record['seed']} (never reported), "
             f"{p['tasks']} tasks, {p['iterations']} steps per task, validation split (10,000 training "
             f"digits held out of the training pool), chosen by {record['selected_by']}.", "",
             "| method | searched | grid: validation ACC (%) | chosen |", "|---|---|---|---|"]
    for method, values in record["grids"].items():
        knob = METHODS[method].knob
        scores = record["scores"][method]
        grid = "; ".join(f"{_short(v)}: {100 * s:.2f}" for v, s in zip(values, scores))
        chosen = record["chosen"][method]
        lines.append(f"| {method} | {knob} | {grid} | {_short(chosen[knob])}"
                     + (f", lr {chosen['lr']:g}" if method != "naive" else "") + " |")
    for method in record.get("reused", {}):      # --reuse: only fine-tuning's lr was searched
        knob = METHODS[method].knob
        chosen = record["chosen"][method]
        lines.append(f"| {method} | - (kept from the earlier search) | - | {_short(chosen[knob])}, "
                     f"lr {chosen['lr']:g} |")
    if "suggested_alpha" in record:
        suggested = record["suggested_alpha"]
        factors = ", ".join(f"{v / suggested:g}" for v in record["grids"].get("metaplastic", []))
        lines += ["", f"suggest_alpha (f = 0.5, S = 0.5 at the median drift after task 1, lr as "
                  f"chosen): {suggested:.4g}; the alpha grid is that times {factors}."]
    return lines


def _short(value) -> str:
    if isinstance(value, dict):
        return ",".join(f"{v}" for k, v in value.items())
    return f"{value:g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------- figures


def _mean_matrix(runs: dict) -> np.ndarray:
    stacked = np.stack([matrix(r) for r in runs.values()])
    with warnings.catch_warnings():   # entries never evaluated (j > i) stay NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(stacked, axis=0)


def _plot_heatmaps(grouped: dict, path: Path) -> None:
    sequential = {m: r for m, r in grouped.items() if m != "joint"}
    fig, axes = plt.subplots(1, len(sequential), figsize=(2.6 * len(sequential), 2.8), squeeze=False)
    for ax, (method, runs) in zip(axes[0], sequential.items()):
        image = ax.imshow(100 * _mean_matrix(runs), vmin=0, vmax=100, cmap="viridis")
        ax.set_title(method, fontsize=9)
        ax.set_xlabel("task evaluated", fontsize=8)
        if ax is axes[0][0]:
            ax.set_ylabel("after training task", fontsize=8)
        ticks = range(_mean_matrix(runs).shape[1])
        ax.set_xticks(ticks, [str(t + 1) for t in ticks], fontsize=6)
        ax.set_yticks(ticks, [str(t + 1) for t in ticks], fontsize=6)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="accuracy (%), mean over seeds")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _plot_per_task(grouped: dict, path: Path) -> None:
    sequential = {m: r for m, r in grouped.items() if m != "joint"}
    T = next(iter(sequential.values()))[next(iter(next(iter(sequential.values()))))]["protocol"]["tasks"]
    columns = min(T, 5)
    rows = -(-T // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.2 * rows), squeeze=False, sharey=True)
    for j in range(T):
        ax = axes[j // columns][j % columns]
        for method, runs in sequential.items():
            curve = 100 * _mean_matrix(runs)[:, j]
            ax.plot(range(1, T + 1), curve, marker=".", label=method)
        ax.set_title(f"task {j + 1}", fontsize=9)
        ax.set_xlabel("after training task", fontsize=8)
    for k in range(T, rows * columns):
        axes[k // columns][k % columns].axis("off")
    axes[0][0].set_ylabel("accuracy (%)")
    axes[0][0].legend(fontsize=6)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _plot_just_learned(grouped: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for method, runs in grouped.items():
        diagonals = 100 * np.array([np.diag(matrix(r)) for r in runs.values()])
        mean = diagonals.mean(0)
        sem = diagonals.std(0, ddof=1) / np.sqrt(len(diagonals)) if len(diagonals) > 1 else 0 * mean
        k = np.arange(1, len(mean) + 1)
        ax.plot(k, mean, label=method)
        ax.fill_between(k, mean - sem, mean + sem, alpha=0.25)
    ax.set_xlabel("task k")
    ax.set_ylabel("accuracy on task k right after training it (%)")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
