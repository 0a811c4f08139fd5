"""Figures in the paper's layout, drawn from a results table (never from a live model).

One colour per learner (profile or baseline method) across every figure
(Okabe-Ito, colour-blind safe; a baseline's colour is registered with its method,
:mod:`metaplastic.learners`).
Each function takes the records table of a run and returns a matplotlib
Figure; :func:`plot_run` writes every figure of a run folder as PNG and PDF.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from metaplastic.tables import final_performance, final_rows, item_schedule, pass_ends, trained_so_far

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
FIXED_COLOURS = {"conventional": "#D55E00", "stable": "#0072B2", "hybrid": "#009E73"}


#: ``sgd``: plain SGD, the conventional network under its own name (metaplastic.experiments).
ALIAS_COLOURS = {"sgd": "#8C564B"}

BIASED_COLOURS = {"biased-stable:0.5": "#56B4E9", "biased-stable:0.1": "#000000",
                  "biased-flexible:0.5": "#E69F00", "biased-flexible:0.1": "#CC79A7"}


def colour(learner: str, index: int = 0) -> str:
    """The same colour for a learner in every figure.

    Named profiles and the biased ones have fixed Okabe-Ito colours, baselines the colour
    their method registers; other constant profiles (single values, Supp. Fig. 2) take
    viridis at their flexibility, so their order reads off the colour; anything else falls
    back to the palette by index.
    """
    for fixed in (FIXED_COLOURS, BIASED_COLOURS, ALIAS_COLOURS):
        if learner in fixed:
            return fixed[learner]
    from metaplastic.learners import FAMILIES

    family = learner.partition(":")[0]   # ``ewc:lam=10`` is drawn as ``ewc`` is
    if family in FAMILIES:
        return FAMILIES[family].colour
    value = _constant_value(learner)
    if value is not None:
        from matplotlib import colormaps, colors

        return colors.to_hex(colormaps["viridis"](0.9 * value))
    return OKABE_ITO[(index + 3) % len(OKABE_ITO)]


def _constant_value(profile: str) -> float | None:
    """The flexibility of a constant profile in the registry, by its record name."""
    from metaplastic.experiments import EXPERIMENTS
    from metaplastic.plasticity import Constant

    for spec in EXPERIMENTS.values():
        if isinstance(spec.profiles.get(profile), Constant):
            return spec.profiles[profile].value
    return None


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 11, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def serial_position(table: pd.DataFrame, presentation: int | None = None):
    """Performance of every item after a presentation (default: the last), mean +- SD over trials.

    Filled markers: items memorized in most trials; open markers: forgotten.
    """
    plt = _pyplot()
    rows = final_rows(table) if presentation is None else table[table.presentation == presentation]
    n_items = int(table["n_items"].iloc[0])
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for index, (learner, group) in enumerate(rows.groupby("learner", sort=False)):
        by_item = group.groupby("item")
        mean, sd = by_item["performance"].mean(), by_item["performance"].std().fillna(0)
        memorized = by_item["memorized"].mean() >= 0.5
        c = colour(learner, index)
        ax.plot(mean.index, mean.values, color=c, label=learner)
        ax.fill_between(mean.index, (mean - sd).clip(0), (mean + sd).clip(upper=1), color=c, alpha=0.15)
        ax.scatter(mean.index, mean.values, facecolors=np.where(memorized, c, "white"), edgecolors=c,
                   zorder=3)
    ax.axhline(1 / n_items, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set(xlabel="item position in the sequence", ylabel="memorization performance", ylim=(0, 1.02))
    if n_items <= 15:
        ax.set_xticks(range(1, n_items + 1))
    when = "the last presentation" if presentation is None else f"presentation {presentation}"
    ax.set_title(f"Serial position after {when} ({table['trial'].nunique()} trials)")
    ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


def memorized_vs_trained(table: pd.DataFrame):
    """Number of memorized items among the first n, after the n-th presentation (Fig. 2f, 3c)."""
    plt = _pyplot()
    serial = trained_so_far(table)
    fig, ax = plt.subplots(figsize=(5, 4.2))
    for index, (learner, group) in enumerate(serial.groupby("learner", sort=False)):
        per_trial = group.groupby(["presentation", "trial"])["memorized"].sum()
        mean = per_trial.groupby("presentation").mean()
        sd = per_trial.groupby("presentation").std().fillna(0)
        ax.errorbar(mean.index, mean.values, yerr=sd.values, color=colour(learner, index),
                    label=learner, marker="o", markersize=4, capsize=2)
    top = int(table["presentation"].max())
    ax.plot([0, top], [0, top], color="grey", linestyle=":", linewidth=1, label="all memorized")
    ax.set(xlabel="items trained", ylabel="memorized items")
    ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


def performance_over_presentations(table: pd.DataFrame, learner: str):
    """Each item's mean performance after every presentation (a heat map, one learner)."""
    plt = _pyplot()
    rows = table[table.learner == learner]
    grid = rows.groupby(["item", "presentation"])["performance"].mean().unstack()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    image = ax.imshow(grid.values, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1,
                      extent=(-0.5, grid.shape[1] - 0.5, 0.5, grid.shape[0] + 0.5))
    fig.colorbar(image, ax=ax, label="performance")
    ax.set(xlabel="presentations trained", ylabel="item", title=f"{learner}: performance over time")
    fig.tight_layout()
    return fig


def _per_trial_curve(ax, table, value, label_suffix=""):
    """Plot mean +- SD over trials of ``value(group) -> float`` per presentation, per learner."""
    for index, (learner, rows) in enumerate(table[table.presentation > 0].groupby("learner", sort=False)):
        per = rows.groupby(["presentation", "trial"]).apply(value, include_groups=False)
        mean, sd = per.groupby("presentation").mean(), per.groupby("presentation").std().fillna(0)
        c = colour(learner, index)
        ax.plot(mean.index, mean.values, color=c, label=learner + label_suffix)
        ax.fill_between(mean.index, mean - sd, mean + sd, color=c, alpha=0.15)


def capacity_curves(table: pd.DataFrame):
    """Average performance and gross memory over the items trained so far (Fig. 3d-e)."""
    plt = _pyplot()
    seen = trained_so_far(table)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    _per_trial_curve(left, seen, lambda g: g["performance"].mean())
    _per_trial_curve(right, seen, lambda g: g["performance"].sum())
    left.set(xlabel="items trained", ylabel="average performance")
    right.set(xlabel="items trained", ylabel="gross memory (sum of performances)")
    left.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


def lowest_per_repetition(table: pd.DataFrame):
    """Lowest item performance after each pass over the sequence (Fig. 4d)."""
    plt = _pyplot()
    n = int(table["n_items"].iloc[0])
    ends = table[table.presentation.isin(pass_ends(table))].copy()
    ends["presentation"] = ends["presentation"] // n
    fig, ax = plt.subplots(figsize=(5, 4))
    _per_trial_curve(ax, ends, lambda g: g["performance"].min())
    ax.set(xlabel="repetition", ylabel="lowest item performance")
    ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


def attack_bars(table: pd.DataFrame):
    """Average performance before (after the clean passes) and after the poisoned pass (Fig. 4g)."""
    plt = _pyplot()
    n, last = int(table["n_items"].iloc[0]), int(table["presentation"].max())
    fig, ax = plt.subplots(figsize=(5, 4))
    learners = list(table["learner"].unique())
    for index, learner in enumerate(learners):
        rows = table[table.learner == learner]
        for offset, (when, label) in enumerate([(last - n, "before"), (last, "after")]):
            per_trial = rows[rows.presentation == when].groupby("trial")["performance"].mean()
            ax.bar(index + 0.2 * (2 * offset - 1), per_trial.mean(), width=0.38,
                   yerr=per_trial.std() if len(per_trial) > 1 else 0, color=colour(learner, index),
                   alpha=1.0 if offset else 0.45, label=f"{learner} {label} attack")
    ax.axhline(1 / n, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(learners)), learners)
    ax.set(ylabel="average performance", ylim=(0, 1))
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def frequency_scatter(table: pd.DataFrame):
    """Final performance against order (last presentation) and against frequency (Fig. 5b)."""
    from metaplastic.stats import spearman

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for index, (learner, rows) in enumerate(table.groupby("learner", sort=False)):
        points = []
        for _, trial in rows.groupby("trial"):
            schedule = item_schedule(trial)
            schedule["performance"] = final_performance(trial).reindex(schedule.index)
            points.append(schedule)
        data = pd.concat(points)
        for ax, column in zip(axes, ("last_position", "frequency")):
            rho = spearman(data[column], data["performance"])[0]
            ax.scatter(data[column], data["performance"], color=colour(learner, index), alpha=0.6,
                       label=f"{learner} (Spearman r = {rho:.2f})")
    axes[0].set(xlabel="position of the item's last presentation", ylabel="final performance")
    axes[1].set(xlabel="presentation frequency", ylabel="final performance")
    for ax in axes:
        ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def figures_for(table: pd.DataFrame) -> dict:
    """Every figure that applies to this table, by file stem."""
    from metaplastic.experiments import EXPERIMENTS

    figures = {"serial-position": serial_position(table), "memorized": memorized_vs_trained(table)}
    spec = EXPERIMENTS.get(str(table["experiment"].iloc[0]))
    kind = spec.kind if spec else "serial"
    if kind == "serial":
        figures["capacity"] = capacity_curves(table)
    if kind in ("repetition", "poisoning"):
        figures["lowest-per-repetition"] = lowest_per_repetition(table)
    if kind == "poisoning":
        figures["attack"] = attack_bars(table)
    if kind == "frequency":
        figures["frequency"] = frequency_scatter(table)
    for learner in table["learner"].unique():
        figures[f"over-time-{file_stem(learner)}"] = performance_over_presentations(table, learner)
    return figures


def file_stem(learner: str) -> str:
    """A learner name as part of a file name: ``ewc:lam=1e4,decay=1`` -> ``ewc-lam-1e4-decay-1``."""
    return "".join(ch if ch.isalnum() or ch in ".-_" else "-" for ch in learner)


def plot_run(run_dir: str | Path) -> list[Path]:
    """Redraw every figure of a run folder from its records (PNG and PDF under figures/)."""
    from metaplastic.reader import read_run

    run_dir = Path(run_dir)
    table = read_run(run_dir).records
    out = run_dir / "figures"
    out.mkdir(exist_ok=True)
    written = []
    plt = _pyplot()
    for stem, fig in figures_for(table).items():
        for suffix in (".png", ".pdf"):
            path = out / f"{stem}{suffix}"
            fig.savefig(path, dpi=120)
            written.append(path)
        plt.close(fig)
    return written


__all__ = ["serial_position", "memorized_vs_trained", "performance_over_presentations", "plot_run"]
