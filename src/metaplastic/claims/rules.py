"""How a claim's verdict is decided: the verdicts, the margins, and the tests of one part.

A claim is made of *parts*, each one tested statement ("item 3 is above chance", "item 7 is at
chance", "the count does not change"). Each part is judged by one rule below; the claim's
verdict combines its parts (:func:`combine`). Everything here is fixed before any run and printed
in the report; a claim that does not hold is a finding, never a reason to change a rule.

Verdicts
--------
* **holds**: every part is shown. An effect is shown by the paper's test at p < 0.05 in the
  claimed direction; a claimed *absence* of an effect ("NS", "does not change", "converges") is
  shown by an equivalence test: the mean (or the difference) significantly inside a margin fixed
  here (``CHANCE_MARGIN``, ``COUNT_MARGIN``). Absence of evidence is never enough.
* **contradicted**: some part goes the other way significantly: an effect reversed at p < 0.05,
  an item claimed at chance significantly above chance (the paper's test), a change claimed
  absent significantly beyond its margin.
* **not shown**: nothing is contradicted, but some part is not shown; the report gives the trials
  the observed effect would need (power 0.8, alpha 0.05).
* **inconclusive**: fewer than ``MIN_TRIALS`` trials, a missing learner, or a sequence too short.

Tests: items against chance, the paper's one-sided one-sample t-test; two networks, the paper's
two-sample t-test, two-sided (the paper's code uses MATLAB's default) with the direction checked;
within one network (the same trials read twice), the paired t-test, two-sided, direction checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metaplastic import stats

SIGNIFICANCE = 0.05
MIN_TRIALS = 3

#: "At chance" means below chance + CHANCE_MARGIN * chance (one-sided test): for 10 readouts,
#: a performance significantly below 0.15. Also the margin of "does not change" for performances.
CHANCE_MARGIN = 0.5
#: "The memorized count does not change": the change significantly within +-1 item.
COUNT_MARGIN = 1.0

HOLDS, CONTRADICTED, NOT_SHOWN, INCONCLUSIVE = "holds", "contradicted", "not shown", "inconclusive"
VERDICTS = (HOLDS, CONTRADICTED, NOT_SHOWN, INCONCLUSIVE)


@dataclass(frozen=True)
class Effect:
    """A measured effect size with its 95% interval, and what it measures."""

    d: float
    low: float
    high: float
    kind: str            # "one_sample", "paired" or "two_sample" (as stats.implied_d takes it)

    def __str__(self) -> str:
        return f"{self.d:.2f} [{self.low:.2f}, {self.high:.2f}]"


@dataclass(frozen=True)
class Part:
    """One tested statement inside a claim."""

    text: str
    verdict: str
    p_value: float | None = None        # p of a claimed effect; None where no test decides
    trials_needed: int | None = None
    effect: Effect | None = None        # the claimed effect's size (None for claimed absences)


@dataclass(frozen=True)
class Measured:
    statistic: str               # our measured statistic, in words and numbers
    test: str                    # the test(s) behind the verdict
    p_value: float | None        # the deciding p-value (the weakest claimed effect), if any
    verdict: str                 # one of VERDICTS
    trials_needed: int | None = None  # not shown: trials the observed effect would need
    effect: Effect | None = None      # the weakest claimed effect's size


def _mean_sd(x) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    return float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else 0.0


def _needed(effect: float, spread: float, two_sample: bool) -> int | None:
    return stats.trials_for_power(effect / spread, two_sample) if spread > 0 else None


def _two_sided(difference) -> float:
    """Two-sided p of a one-sample t-test of ``difference`` against 0."""
    return min(1.0, 2 * min(stats.one_sample(difference, 0.0, side)[1] for side in ("greater", "less")))


def _effect(result: stats.EffectSize, kind: str) -> Effect:
    return Effect(float(result.d), float(result.low), float(result.high), kind)


# --------------------------------------------------------------------------- claimed effects


def above(samples, value: float, label: str) -> Part:
    """Claimed: the mean over trials lies above ``value`` (one-sided one-sample t-test);
    contradicted when it lies significantly below."""
    mean, sd = _mean_sd(samples)
    p = stats.one_sample(samples, value, "greater")[1]
    effect = _effect(stats.cohens_d_one_sample(samples, value), "one_sample")
    text = f"{label} {mean:.3f} +- {sd:.3f} (vs {value:.3g}: p = {p:.2g})"
    if p < SIGNIFICANCE:
        return Part(text, HOLDS, p, effect=effect)
    if stats.one_sample(samples, value, "less")[1] < SIGNIFICANCE:
        return Part(text + " reversed", CONTRADICTED, p, effect=effect)
    return Part(text, NOT_SHOWN, p, _needed(mean - value, sd, two_sample=False), effect)


def greater(a, b, label: str, paired: bool = False) -> Part:
    """Claimed: ``a`` exceeds ``b``: two-sided t-test (two-sample, or paired over trials) at
    p < 0.05 with ``a``'s mean the larger; the same test with ``b`` larger contradicts."""
    (ma, sa), (mb, sb) = _mean_sd(a), _mean_sd(b)
    if paired:
        difference = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
        p = _two_sided(difference)
        spread, two_sample = _mean_sd(difference)[1], False
        effect = _effect(stats.cohens_d_paired(a, b), "paired")
    else:
        p = stats.compare(a, b, "two-sided")[1]
        spread, two_sample = float(np.sqrt((sa**2 + sb**2) / 2)), True
        effect = _effect(stats.cohens_d_two_sample(a, b), "two_sample")
    test = "paired" if paired else "two-sample"
    text = f"{label}: {ma:.3f} +- {sa:.3f} vs {mb:.3f} +- {sb:.3f} ({test}, two-sided: p = {p:.2g})"
    if p < SIGNIFICANCE and ma > mb:
        return Part(text, HOLDS, p, effect=effect)
    if p < SIGNIFICANCE:
        return Part(text + " reversed", CONTRADICTED, p, effect=effect)
    return Part(text, NOT_SHOWN, p, _needed(ma - mb, spread, two_sample), effect)


# --------------------------------------------------------------------------- claimed absences


def at_chance(samples, chance: float, label: str) -> Part:
    """Claimed NS against chance: shown when the mean is significantly below chance +
    CHANCE_MARGIN * chance (one-sided); contradicted when significantly above chance (the
    paper's one-sided test); else not shown, with the trials the margin test would need."""
    mean, sd = _mean_sd(samples)
    margin = chance * (1 + CHANCE_MARGIN)
    p_above = stats.one_sample(samples, chance, "greater")[1]
    inside = stats.below_margin(samples, margin)
    text = (f"{label} {mean:.3f} +- {sd:.3f} (claimed at chance {chance:.3g}: above chance p = "
            f"{p_above:.2g}; below {margin:.3g} p = {inside.p:.2g})")
    if p_above < SIGNIFICANCE:
        return Part(text, CONTRADICTED)
    if inside.holds:
        return Part(text, HOLDS)
    return Part(text, NOT_SHOWN, trials_needed=stats.trials_needed(samples, margin, "less"))


def unchanged(a, b, margin: float, label: str) -> Part:
    """Claimed: ``a`` and ``b`` (the same trials read twice) do not differ. Shown when the mean
    paired difference lies significantly within +-``margin`` (two one-sided tests); contradicted
    when it lies significantly beyond the nearer margin (one-sided), not merely when it differs
    from 0, since a curve approaching its asymptote always gains a little; else not shown, with
    the trials the binding one-sided test would need."""
    (ma, sa), (mb, sb) = _mean_sd(a), _mean_sd(b)
    difference = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return _within(difference, margin, f"{label}: {ma:.3f} +- {sa:.3f} vs {mb:.3f} +- {sb:.3f}")


def _within(values: np.ndarray, margin: float, text: str, centre: float = 0.0) -> Part:
    """``values`` significantly within ``centre`` +- ``margin``: holds; significantly beyond the
    nearer bound: contradicted; else not shown."""
    inside = stats.within_margin(values - centre, margin)
    high = float(np.mean(values)) >= centre
    bound = centre + margin if high else centre - margin
    beyond = stats.one_sample(values, bound, "greater" if high else "less")[1]
    text = f"{text} (within {centre:g} +- {margin:g}: p = {inside.p:.2g}; beyond {bound:g}: p = {beyond:.2g})"
    if inside.holds:
        return Part(text, HOLDS)
    if beyond < SIGNIFICANCE:
        return Part(text, CONTRADICTED)
    needed = stats.trials_needed(values, bound, "less" if high else "greater")
    return Part(text, NOT_SHOWN, trials_needed=needed)


# --------------------------------------------------------------------------- counts of trials


def every_trial(shortfall, label: str) -> Part:
    """Claimed: a statement true in every trial; ``shortfall`` per trial is 0 where it is true.
    Contradicted when the shortfall is significantly above 0 (one-sided one-sample t-test); not
    shown when it fails in some trials without significance. No test decides when it holds."""
    shortfall = np.asarray(shortfall, dtype=float)
    failing = int((shortfall > 0).sum())
    text = f"{label}: in {len(shortfall) - failing} of {len(shortfall)} trials"
    if failing == 0:
        return Part(text, HOLDS)
    p = stats.one_sample(shortfall, 0.0, "greater")[1]
    return Part(text + f" (shortfall {shortfall.mean():.2f} per trial, p = {p:.2g})",
                CONTRADICTED if p < SIGNIFICANCE else NOT_SHOWN)


def about(counts, target: float, tolerance: float, label: str) -> Part:
    """Claimed "about ``target``": shown when the mean lies significantly within target +-
    tolerance (two one-sided tests); contradicted when significantly beyond the nearer bound."""
    mean, sd = _mean_sd(counts)
    return _within(np.asarray(counts, dtype=float), tolerance, f"{label} {mean:.2f} +- {sd:.2f}",
                   centre=target)


def most_trials(flags, label: str) -> Part:
    """Claimed: true in most (more than half of the) trials; contradicted when an exact binomial
    test puts the rate significantly below one half, which needs at least 5 trials (with n
    trials the smallest p is 0.5^n): fewer cannot contradict it, and the text says so."""
    flags = np.asarray(flags, dtype=bool)
    k, n = int(flags.sum()), len(flags)
    text = f"{label}: {k} of {n} trials"
    if 2 * k > n:
        return Part(text, HOLDS)
    p = stats.binomial_less(k, n, 0.5)
    if 0.5**n >= SIGNIFICANCE:
        text += f" (with {n} trials a rate below 1/2 cannot be significant: p >= {0.5**n:.3g})"
    else:
        text += f" (rate below 1/2: p = {p:.2g})"
    return Part(text, CONTRADICTED if p < SIGNIFICANCE else NOT_SHOWN)


def no_trial(flags, label: str) -> Part:
    """Claimed: true in none of the trials; contradicted when the count significantly exceeds the
    5% that chance alone gives (exact binomial test), not shown for fewer."""
    flags = np.asarray(flags, dtype=bool)
    k, n = int(flags.sum()), len(flags)
    text = f"{label}: {k} of {n} trials"
    if k == 0:
        return Part(text, HOLDS)
    p = stats.binomial_greater(k, n, SIGNIFICANCE)
    return Part(text + f" (above the 5% false-positive rate: p = {p:.2g})",
                CONTRADICTED if p < SIGNIFICANCE else NOT_SHOWN)


def any_of(parts: list[Part], label: str) -> Part:
    """At least one of ``parts`` holds: shown by the first that holds; contradicted when every
    part is contradicted; else not shown (the nearest part's trials)."""
    shown = [part for part in parts if part.verdict == HOLDS]
    if shown:
        best = min(shown, key=lambda part: -1.0 if part.p_value is None else part.p_value)
        return Part(f"{label}: {len(shown)} of {len(parts)} ({best.text})", HOLDS, best.p_value,
                    effect=best.effect)
    if all(part.verdict == CONTRADICTED for part in parts):
        return Part(f"{label}: none of {len(parts)}, each contradicted", CONTRADICTED)
    needed = [part.trials_needed for part in parts if part.trials_needed]
    return Part(f"{label}: none of {len(parts)} shown", NOT_SHOWN,
                trials_needed=min(needed) if needed else None)


# --------------------------------------------------------------------------- a claim from its parts


def combine(parts: Sequence[Part], test: str, trials: int) -> Measured:
    """The claim's verdict from its parts: any contradiction decides, then any part not shown.
    Its p and effect are those of the weakest claimed effect (the largest p)."""
    statistic = _summary(parts)
    tested = [part for part in parts if part.p_value is not None]
    weakest = max(tested, key=lambda part: part.p_value) if tested else None
    p = weakest.p_value if weakest else None
    effects = [part.effect for part in parts if part.effect is not None]
    effect = weakest.effect if weakest and weakest.effect else (effects[0] if effects else None)
    verdicts = {part.verdict for part in parts}
    needed = [part.trials_needed for part in parts if part.verdict == NOT_SHOWN and part.trials_needed]
    if trials < MIN_TRIALS:
        return Measured(statistic, test, p, INCONCLUSIVE, effect=effect)
    if CONTRADICTED in verdicts:
        return Measured(statistic, test, p, CONTRADICTED, effect=effect)
    if NOT_SHOWN in verdicts:
        return Measured(statistic, test, p, NOT_SHOWN, max(needed) if needed else None, effect)
    return Measured(statistic, test, p, HOLDS, effect=effect)


def _summary(parts: Sequence[Part]) -> str:
    """Every part when there are few; else the count met, each part not met, and the weakest met."""
    if len(parts) <= 4:
        return "; ".join(part.text for part in parts)
    met = [part for part in parts if part.verdict == HOLDS]
    text = f"{len(met)} of {len(parts)} tests met"
    unmet = [part.text + f" [{part.verdict}]" for part in parts if part.verdict != HOLDS]
    if unmet:
        text += "; not met: " + "; ".join(unmet)
    if met:
        weakest = max(met, key=lambda part: -1.0 if part.p_value is None else part.p_value)
        text += "; weakest met: " + weakest.text
    return text


def inconclusive(why: str) -> Measured:
    return Measured(why, "-", None, INCONCLUSIVE)


# --------------------------------------------------------------------------- a claim


@dataclass(frozen=True)
class PaperEffect:
    """The effect size the paper's reported p implies at its N (``stats.implied_d``).

    ``bound``: the paper gives "p < x", so its effect is at least the d of x."""

    p: float
    n: int = 100
    kind: str = "one_sample"      # "one_sample" or "two_sample"
    sided: str = "one"            # the paper's test: "one" (one-sided) or "two"
    bound: bool = False

    @property
    def d(self) -> float:
        return stats.implied_d(self.p, self.n, kind=self.kind, sided=self.sided)

    def __str__(self) -> str:
        return f"{'>= ' if self.bound else ''}{self.d:.3g}"


@dataclass(frozen=True)
class Claim:
    name: str                    # a stable name, by which tests and reports refer to it
    statement: str
    paper: str                   # the paper's statistic
    rule: str                    # how the verdict is decided, in words
    check: Callable[[pd.DataFrame], Measured]
    paper_effect: PaperEffect | None = None

    def effect_against_paper(self, measured: Measured) -> str:
        """"as large", "weaker" or "stronger" than the paper's effect; "-" when either is missing."""
        if self.paper_effect is None or measured.effect is None:
            return "-"
        effect = measured.effect
        return stats.compare_effect(effect.low, effect.high, self.paper_effect.d,
                                    paper_is_lower_bound=self.paper_effect.bound)
