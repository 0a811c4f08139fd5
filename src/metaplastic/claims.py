"""The paper's claims as checks over a results table.

Each :class:`Claim` carries the paper's statement and statistic, and a check
that computes our statistic, its test and p-value from a records table, and a
plain verdict. The verdict rule is fixed here, before any run: a claim
*holds* when the measured effect has the claimed direction and its test gives
p < 0.05 (or, for "all items" claims, when the mean count reaches 95% of
the items); it *does not hold* when the test says otherwise with enough trials;
it is *inconclusive* with fewer than 3 trials or a missing profile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metaplastic import stats
from metaplastic.results import final_rows

SIGNIFICANCE = 0.05
MIN_TRIALS = 3


@dataclass(frozen=True)
class Measured:
    statistic: str        # our measured statistic, in words and numbers
    test: str             # the test behind the p-value
    p_value: float | None
    verdict: str          # "holds", "does not hold", "inconclusive"


@dataclass(frozen=True)
class Claim:
    statement: str
    paper: str            # the paper's statistic
    check: Callable[[pd.DataFrame], Measured]


def _verdict(direction_ok: bool, p: float | None, trials: int) -> str:
    if trials < MIN_TRIALS or p is None or np.isnan(p):
        return "inconclusive"
    return "holds" if direction_ok and p < SIGNIFICANCE else "does not hold"


def _final(table: pd.DataFrame, profile: str) -> pd.DataFrame:
    return final_rows(table[table.profile == profile])


def _memorized(table: pd.DataFrame, profile: str) -> np.ndarray:
    return _final(table, profile).groupby("trial")["memorized"].sum().to_numpy(dtype=float)


def _item_performance(table: pd.DataFrame, profile: str) -> pd.DataFrame:
    """trials x items of final performance."""
    return _final(table, profile).pivot(index="trial", columns="item", values="performance")


def _missing(table, *profiles) -> Measured | None:
    absent = [p for p in profiles if p not in set(table["profile"])]
    if absent:
        return Measured(f"profile(s) {', '.join(absent)} not in this run", "-", None, "inconclusive")
    return None


def memorizes_all(profile: str) -> Callable[[pd.DataFrame], Measured]:
    def check(table):
        if (gap := _missing(table, profile)) is not None:
            return gap
        counts, n = _memorized(table, profile), int(table["n_items"].iloc[0])
        ok = counts.mean() >= 0.95 * n
        trials = len(counts)
        sd = counts.std(ddof=1) if trials > 1 else 0.0
        return Measured(f"{profile} memorizes {counts.mean():.2f} +- {sd:.2f} of {n} items "
                        f"(per trial: {', '.join(str(int(c)) for c in counts)})",
                        "mean count >= 95% of items", None,
                        "inconclusive" if trials < MIN_TRIALS else ("holds" if ok else "does not hold"))
    return check


def partial_memory(profile: str, at_most: int, first_above_last: bool) -> Callable:
    """A profile memorizes at most ``at_most`` items, with primacy (first > last) or recency."""

    def check(table):
        if (gap := _missing(table, profile)) is not None:
            return gap
        counts = _memorized(table, profile)
        perf = _item_performance(table, profile)
        first, last = perf[perf.columns[0]].to_numpy(), perf[perf.columns[-1]].to_numpy()
        difference = first - last if first_above_last else last - first
        t, p = stats.above_chance(difference, 0.0) if len(difference) > 1 else (np.nan, None)
        shape = "primacy (first > last)" if first_above_last else "recency (last > first)"
        ok = counts.mean() <= at_most and difference.mean() > 0
        return Measured(f"{profile} memorizes {counts.mean():.2f} items; first item "
                        f"{first.mean():.2f}, last item {last.mean():.2f}",
                        f"{shape}: one-sided paired t-test", p,
                        _verdict(ok, p, len(counts)))
    return check


def more_memorized(better: str, worse: str) -> Callable:
    def check(table):
        if (gap := _missing(table, better, worse)) is not None:
            return gap
        a, b = _memorized(table, better), _memorized(table, worse)
        p = stats.compare(a, b, alternative="greater")[1] if np.ptp(np.r_[a, b]) > 0 else None
        if p is None and a.mean() > b.mean():
            p = 0.0  # every trial of one profile beats every trial of the other, no variance
        return Measured(f"memorized: {better} {a.mean():.2f}, {worse} {b.mean():.2f}",
                        "one-sided two-sample t-test", p,
                        _verdict(a.mean() > b.mean(), p, min(len(a), len(b))))
    return check


SERIAL_POSITION_CLAIMS = (
    Claim("hybrid memorizes all 10 items", "Fig. 2l: 10 of 10 memorized (N_trial = 100)",
          memorizes_all("hybrid")),
    Claim("conventional memorizes about 6 items, with recency",
          "Fig. 2e-f: last six items above chance, up to 6 of 10 memorized",
          partial_memory("conventional", at_most=7, first_above_last=False)),
    Claim("stable memorizes about 4 items, with primacy",
          "Fig. 2h-i: first three items high, about 4 of 10 memorized",
          partial_memory("stable", at_most=6, first_above_last=True)),
    Claim("hybrid memorizes more items than conventional", "Fig. 2f, 2l",
          more_memorized("hybrid", "conventional")),
)


def _per_trial(table: pd.DataFrame, profile: str, fn: Callable[[pd.DataFrame], float]) -> np.ndarray:
    rows = table[table.profile == profile]
    return np.array([fn(group) for _, group in rows.groupby("trial")], dtype=float)


def compare_per_trial(what: str, better: str, worse: str,
                      fn: Callable[[pd.DataFrame], float]) -> Callable:
    """``fn`` per trial for two profiles; holds when ``better`` exceeds ``worse`` (one-sided)."""

    def check(table):
        if (gap := _missing(table, better, worse)) is not None:
            return gap
        a, b = _per_trial(table, better, fn), _per_trial(table, worse, fn)
        spread = np.ptp(np.r_[a, b]) > 0
        p = stats.compare(a, b, alternative="greater")[1] if spread else None
        sd = lambda x: x.std(ddof=1) if len(x) > 1 else 0.0  # noqa: E731
        return Measured(f"{what}: {better} {a.mean():.3f} +- {sd(a):.3f}, "
                        f"{worse} {b.mean():.3f} +- {sd(b):.3f}",
                        "one-sided two-sample t-test", p,
                        _verdict(a.mean() > b.mean(), p, min(len(a), len(b))))
    return check


def final_performance(trial: pd.DataFrame) -> pd.Series:
    last = trial[trial.presentation == trial.presentation.max()]
    return last.set_index("item")["performance"].sort_index()


def _gross_memory(trial):
    return float(stats.gross_memory(final_performance(trial).to_numpy()))


def _repetition_rows(trial: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Final performance by item after the first and after the last pass over the sequence."""
    n = int(trial["n_items"].iloc[0])
    first = trial[trial.presentation == n].set_index("item")["performance"]
    return first, final_performance(trial)


def _lowest_rise(trial):
    first, last = _repetition_rows(trial)
    return float(stats.lowest_performance(last.to_numpy()) - stats.lowest_performance(first.to_numpy()))


def _negative_range(trial):
    return -float(stats.performance_range(final_performance(trial).to_numpy()))


def item_schedule(trial: pd.DataFrame) -> pd.DataFrame:
    """Per item: how often it was presented, and the position of its last presentation."""
    shown = trial[(trial.presentation > 0)].drop_duplicates("presentation")
    frequency = shown.groupby("presented_item").size()
    last = shown.groupby("presented_item")["presentation"].max()
    return pd.DataFrame({"frequency": frequency, "last_position": last})


def _spearman_with(column: str) -> Callable[[pd.DataFrame], float]:
    def rho(trial):
        schedule = item_schedule(trial)
        performance = final_performance(trial).reindex(schedule.index)
        value = stats.spearman(schedule[column].to_numpy(), performance.to_numpy())[0]
        return 0.0 if np.isnan(value) else value
    return rho


def _primacy(trial):
    performance = final_performance(trial)
    return float(performance.iloc[0] - performance.iloc[-1])


def _recency(trial):
    return -_primacy(trial)


def all_items_above_chance_after_attack(table: pd.DataFrame) -> Measured:
    if (gap := _missing(table, "hybrid", "conventional")) is not None:
        return gap
    chance = 1.0 / int(table["n_items"].iloc[0])
    worst = {}
    for profile in ("hybrid", "conventional"):
        perf = _item_performance(table, profile)
        worst[profile] = max(stats.above_chance(perf[i].to_numpy(), chance)[1] for i in perf.columns)
    trials = table["trial"].nunique()
    ok = worst["hybrid"] < SIGNIFICANCE <= worst["conventional"]
    return Measured(f"largest per-item p (above chance): hybrid {worst['hybrid']:.3g}, "
                    f"conventional {worst['conventional']:.3g}",
                    "one-sided one-sample t-test per item vs 1/N", worst["hybrid"],
                    "inconclusive" if trials < MIN_TRIALS else ("holds" if ok else "does not hold"))


SEQUENCE_LENGTH_CLAIMS = (
    Claim("hybrid memorizes more of 30 items than conventional", "Fig. 3c: p = 3.70e-63",
          more_memorized("hybrid", "conventional")),
    Claim("hybrid's gross memory is higher than conventional's", "Fig. 3e: p = 2.03e-57",
          compare_per_trial("gross memory", "hybrid", "conventional", _gross_memory)),
)

REPETITION_CLAIMS = (
    Claim("hybrid's lowest performance rises with repetition more than conventional's",
          "Fig. 4d: p = 7.32e-91",
          compare_per_trial("rise of the lowest item performance, pass 1 to last pass", "hybrid",
                            "conventional", _lowest_rise)),
    Claim("hybrid's highest-minus-lowest performance is smaller than conventional's",
          "Supp. Fig. 4c: p = 2.65e-144",
          compare_per_trial("minus (highest - lowest) after the last pass", "hybrid",
                            "conventional", _negative_range)),
)

POISONING_CLAIMS = (
    Claim("after poisoning hybrid keeps all items above chance, conventional does not",
          "Fig. 4f: hybrid p < 2.23e-308, conventional NS p > 0.14",
          all_items_above_chance_after_attack),
    Claim("after poisoning hybrid memorizes more items than conventional", "Fig. 4h: p = 2.32e-38",
          more_memorized("hybrid", "conventional")),
)

FREQUENCY_CLAIMS = (
    Claim("conventional's performance correlates with order more than hybrid's",
          "Fig. 5c left: p = 2.29e-21",
          compare_per_trial("Spearman(performance, position of last presentation)", "conventional",
                            "hybrid", _spearman_with("last_position"))),
    Claim("hybrid's performance correlates with frequency more than conventional's",
          "Fig. 5c right: p = 2.51e-56",
          compare_per_trial("Spearman(performance, presentation frequency)", "hybrid",
                            "conventional", _spearman_with("frequency"))),
)

SINGLE_VALUE_CLAIMS = (
    Claim("a single value of 0.8 memorizes all 10 items", "Supp. Fig. 3a: all ten memorized",
          memorizes_all("constant:0.8")),
)

BIASED_CLAIMS = (
    Claim("bias toward stable strengthens primacy", "Supp. Fig. 3b left",
          compare_per_trial("first - last item performance", "biased-stable:0.1", "hybrid", _primacy)),
    Claim("bias toward flexible strengthens recency", "Supp. Fig. 3b right",
          compare_per_trial("last - first item performance", "biased-flexible:0.1", "hybrid",
                            _recency)),
)
