"""Figures in the paper's layout, drawn from a results table (never from a live model).

One colour per profile across every figure (Okabe-Ito, colour-blind safe).
Each function takes the records table of a run and returns a matplotlib
Figure; :func:`plot_run` writes every figure of a run folder as PNG and PDF.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from metaplastic.results import final_rows

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
FIXED_COLOURS = {"conventional": "#D55E00", "stable": "#0072B2", "hybrid": "#009E73"}


def colour(profile: str, index: int = 0) -> str:
    return FIXED_COLOURS.get(profile, OKABE_ITO[(index + 3) % len(OKABE_ITO)])


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
    for index, (profile, group) in enumerate(rows.groupby("profile", sort=False)):
        by_item = group.groupby("item")
        mean, sd = by_item["performance"].mean(), by_item["performance"].std().fillna(0)
        memorized = by_item["memorized"].mean() >= 0.5
        c = colour(profile, index)
        ax.plot(mean.index, mean.values, color=c, label=profile)
        ax.fill_between(mean.index, (mean - sd).clip(0), (mean + sd).clip(upper=1), color=c, alpha=0.15)
        ax.scatter(mean.index, mean.values, facecolors=np.where(memorized, c, "white"), edgecolors=c,
                   zorder=3)
    ax.axhline(1 / n_items, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set(xlabel="item position in the sequence", ylabel="memorization performance", ylim=(0, 1.02),
           xticks=range(1, n_items + 1) if n_items <= 15 else None)
    when = "the last presentation" if presentation is None else f"presentation {presentation}"
    ax.set_title(f"Serial position after {when} ({table['trial'].nunique()} trials)")
    ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


def memorized_vs_trained(table: pd.DataFrame):
    """Number of memorized items among the first n, after the n-th presentation (Fig. 2f, 3c)."""
    plt = _pyplot()
    serial = table[(table.presentation > 0) & (table.item <= table.presentation)]
    fig, ax = plt.subplots(figsize=(5, 4.2))
    for index, (profile, group) in enumerate(serial.groupby("profile", sort=False)):
        per_trial = group.groupby(["presentation", "trial"])["memorized"].sum()
        mean = per_trial.groupby("presentation").mean()
        sd = per_trial.groupby("presentation").std().fillna(0)
        ax.errorbar(mean.index, mean.values, yerr=sd.values, color=colour(profile, index),
                    label=profile, marker="o", markersize=4, capsize=2)
    top = int(table["presentation"].max())
    ax.plot([0, top], [0, top], color="grey", linestyle=":", linewidth=1, label="all memorized")
    ax.set(xlabel="items trained", ylabel="memorized items")
    ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


def performance_over_presentations(table: pd.DataFrame, profile: str):
    """Each item's mean performance after every presentation (a heat map, one profile)."""
    plt = _pyplot()
    rows = table[table.profile == profile]
    grid = rows.groupby(["item", "presentation"])["performance"].mean().unstack()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    image = ax.imshow(grid.values, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1,
                      extent=(-0.5, grid.shape[1] - 0.5, 0.5, grid.shape[0] + 0.5))
    fig.colorbar(image, ax=ax, label="performance")
    ax.set(xlabel="presentations trained", ylabel="item", title=f"{profile}: performance over time")
    fig.tight_layout()
    return fig


def figures_for(table: pd.DataFrame) -> dict:
    """Every figure that applies to this table, by file stem."""
    figures = {"serial-position": serial_position(table), "memorized": memorized_vs_trained(table)}
    for profile in table["profile"].unique():
        figures[f"over-time-{profile.replace(':', '-')}"] = performance_over_presentations(table,
                                                                                           profile)
    return figures


def plot_run(run_dir: str | Path) -> list[Path]:
    """Redraw every figure of a run folder from its records (PNG and PDF under figures/)."""
    run_dir = Path(run_dir)
    table = pd.read_parquet(run_dir / "records.parquet")
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
