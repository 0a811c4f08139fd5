"""What the report says, as plain data: one :class:`RunReport` per run folder.

:func:`evaluate` reads a run folder through :func:`metaplastic.reader.read_run` and judges it:
its provenance (as :class:`Fact` lines of styled :class:`Text`), every claim of its experiment
with its verdict, the learners compared (a run with baselines) and its figures as PNG bytes.
Everything is decided here; the renderers (:mod:`.markdown`, :mod:`.html`) only set it.
Nothing here trains: a learner's costs are those its run measured while it trained
(:attr:`metaplastic.reader.Run.costs`), or "not recorded".
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from metaplastic import tables
from metaplastic.calibration import in_sample
from metaplastic.claims import (
    CHANCE_MARGIN,
    COUNT_MARGIN,
    MIN_TRIALS,
    SIGNIFICANCE,
    VERDICTS,
    Claim,
    Measured,
)
from metaplastic.experiments import EXPERIMENTS
from metaplastic.features import calibrated_features
from metaplastic.reader import Run, read_run
from metaplastic.results import RunFolderError
from metaplastic.stats import spearman

NOT_RECORDED = "not recorded"
COST_COLUMNS = ("state bytes per weight", "stored examples (MiB)", "s per presentation")
FIGURE_DPI = 110


@dataclass(frozen=True)
class Text:
    """A run of text and how it is set: ``plain``, ``strong`` (a value to notice), ``code``
    (a name, a path, a setting), ``em`` (a claim quoted) or ``verdict`` (a verdict's name)."""

    text: str
    style: str = "plain"


Rich = tuple[Text, ...]


@dataclass(frozen=True)
class Fact:
    """One line of a run's provenance: ``label: value``."""

    label: str
    value: Rich


@dataclass(frozen=True)
class ClaimRow:
    """One claim of one run, every cell as text."""

    experiment: str
    statement: str
    paper: str
    measured: str
    test: str
    p: str
    trials: str
    verdict: str
    needed: str
    rule: str
    effect: str          # measured effect size with its 95% interval, or "-"
    paper_effect: str    # the effect the paper's p and N imply, or "-"
    against_paper: str   # "as large", "weaker", "stronger" or "-"


@dataclass(frozen=True)
class Rule:
    experiment: str
    statement: str
    rule: str


@dataclass(frozen=True)
class Comparison:
    """The learners of a run with baselines: ``columns[0]`` is "learner", one row per learner."""

    settings: tuple[str, ...]          # each baseline's every setting, spelled out
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    costs_recorded: bool               # False: the run was trained before costs were recorded
    device: str


@dataclass(frozen=True)
class FigureImage:
    stem: str
    png: bytes


@dataclass
class RunReport:
    """One run folder, judged."""

    folder: Path
    experiment: str
    paper: str                         # the figure of the paper it reproduces
    seed: int | None
    trials: list[int]
    seconds: float | None
    provenance: list[Fact]
    rows: list[tuple[Claim, Measured]]
    comparison: Comparison | None = None
    figures: list[FigureImage] = field(default_factory=list)
    figure_dir: str = ""               # relative to the report folder; figures/<experiment> by default

    def __post_init__(self):
        self.figure_dir = self.figure_dir or f"figures/{self.experiment}"

    def figure_path(self, figure: FigureImage) -> str:
        return f"{self.figure_dir}/{figure.stem}.png"

    @property
    def claim_rows(self) -> list[ClaimRow]:
        marked = ", in-sample" if in_sample(self.seed, self.trials) else ""
        trials = f"{len(self.trials)} (seed {self.seed}{marked})"
        return [ClaimRow(self.experiment, claim.statement, claim.paper, m.statistic, m.test,
                         "-" if m.p_value is None else f"{m.p_value:.3g}", trials, m.verdict,
                         "-" if m.trials_needed is None else str(m.trials_needed), claim.rule,
                         _effect(m), "-" if claim.paper_effect is None else f"d {claim.paper_effect}",
                         claim.effect_against_paper(m))
                for claim, m in self.rows]

    @property
    def counts(self) -> dict[str, int]:
        """How many of this run's claims got each verdict (every verdict, zeros included)."""
        verdicts = [m.verdict for _, m in self.rows]
        return {v: verdicts.count(v) for v in VERDICTS}


def _effect(measured: Measured) -> str:
    """The weakest claimed effect: Cohen's d (one-sample vs the tested value, paired d_z, or
    two-sample with the pooled SD) and its 95% interval."""
    if measured.effect is None:
        return "-"
    names = {"one_sample": "d", "paired": "d_z", "two_sample": "d"}
    return f"{names.get(measured.effect.kind, 'd')} {measured.effect}"


def evaluate(run_dir: str | Path, figures: bool = False, first_trials: int | None = None) -> RunReport:
    """Judge one run folder: its claims, provenance, learners compared and (``figures``) figures;
    with ``first_trials`` N, on its trials 0..N-1 alone (runs compared at the same power)."""
    run = read_run(run_dir)
    if first_trials is not None:
        run = replace(run, records=run.records[run.records["trial"] < first_trials])
        if len(run.trials) < first_trials:
            raise RunFolderError(f"{run.folder} has fewer than {first_trials} trials")
    if run.experiment not in EXPERIMENTS:
        raise RunFolderError(f"{run.folder} holds an experiment this version does not know "
                             f"({run.experiment!r}; known: {', '.join(EXPERIMENTS)})")
    spec = EXPERIMENTS[run.experiment]
    rows = [(claim, claim.check(run.records)) for claim in spec.claims]
    comparison = comparison_of(run) if run.config.get("learner_settings") else None
    return RunReport(run.folder, run.experiment, spec.paper, run.config.get("seed"), run.trials,
                     run.seconds, provenance(run), rows, comparison,
                     draw_figures(run) if figures else [])


# --------------------------------------------------------------------------- across runs


def verdict_counts(reports: list[RunReport]) -> dict[str, int]:
    """How many claims of all runs got each verdict."""
    return {v: sum(r.counts[v] for r in reports) for v in VERDICTS}


def in_sample_sentence(reports: list[RunReport]) -> str:
    """A warning naming the runs whose trials a calibration saw; "" when every run is held out."""
    marked = [f"{r.experiment} (seed {r.seed})" for r in reports if in_sample(r.seed, r.trials)]
    if not marked:
        return ""
    return ("In-sample: " + ", ".join(marked) + " overlap the trials a calibration used "
            "(metaplastic.calibration); their verdicts are not held-out evidence.")


def verdict_sentence(reports: list[RunReport]) -> str:
    """One sentence: how many claims got each verdict, and how many of those that hold do so
    with an effect weaker than the paper's (its d above our 95% interval)."""
    counts = verdict_counts(reports)
    parts = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    weaker = sum(1 for r in reports for claim, m in r.rows
                 if m.verdict == VERDICTS[0] and claim.effect_against_paper(m) == "weaker")
    compared = sum(1 for r in reports for claim, m in r.rows
                   if m.verdict == VERDICTS[0] and claim.effect_against_paper(m) != "-")
    note = (f" Of the {compared} that hold and have a paper's effect size to compare, {weaker} hold "
            "with an effect weaker than the paper's." if compared else "")
    return f"{sum(counts.values())} claims: {parts}.{note}"


def rules_intro() -> Rich:
    """How verdicts are decided, as fixed in :mod:`metaplastic.claims`."""
    holds, contradicted, not_shown, inconclusive = VERDICTS
    return (Text("Fixed in "), Text("metaplastic.claims", "code"),
            Text(f" before any run. Significance p < {SIGNIFICANCE}. "),
            Text(holds, "verdict"), Text(": every part of the claim shown: an effect by the paper's "
                                         "test in the claimed direction; a claimed absence (\"NS\", "
                                         "\"does not change\", \"converges\") by an equivalence test, "
                                         "the mean significantly inside a margin fixed in advance: "
                                         f"an item is at chance when significantly below "
                                         f"{1 + CHANCE_MARGIN:g} x chance; a count does not change "
                                         f"when significantly within +-{COUNT_MARGIN:g}; "
                                         "a performance does not change when within +-chance/2. "),
            Text(contradicted, "verdict"), Text(": some part goes the other way significantly (an "
                                                "effect reversed, an item claimed at chance "
                                                "significantly above chance, a change claimed absent "
                                                "significant); "),
            Text(not_shown, "verdict"), Text(": nothing contradicted, some part not shown (\"trials "
                                             "needed\": the trials the observed effect would need "
                                             "for power 0.8); "),
            Text(inconclusive, "verdict"), Text(f": fewer than {MIN_TRIALS} trials, a missing profile "
                                                "or too short a sequence. "),
            Text("Effect sizes: the weakest claimed effect's Cohen's d with its 95% interval, beside "
                 "the d the paper's p-value implies at its N (\">=\" where the paper gives p as a "
                 "bound); \"vs paper\" says whether ours is as large (the paper's d inside our "
                 "interval), weaker or stronger."))


def rules(reports: list[RunReport]) -> list[Rule]:
    """Each claim's verdict rule, once per experiment and claim."""
    seen: dict[tuple[str, str], Rule] = {}
    for r in reports:
        for claim, _ in r.rows:
            seen.setdefault((r.experiment, claim.statement), Rule(r.experiment, claim.statement, claim.rule))
    return list(seen.values())


# --------------------------------------------------------------------------- one run


def provenance(run: Run) -> list[Fact]:
    """Where a run's numbers come from: folder, backbone, MNIST, sizes, device, versions, time."""
    backbone, mnist, c = run.provenance.get("backbone", {}), run.provenance.get("mnist", {}), run.config
    weights: list[Text] = [Text(str(backbone.get("weights")), "strong")]
    if backbone.get("architecture"):
        weights.append(Text(f" ({backbone['architecture']})"))
    if backbone.get("weights") == "untrained":
        weights.append(Text(f", drawn from seed {backbone.get('seed', 0)}"))   # older runs: seed 0
    if backbone.get("mean_image"):
        weights.append(Text(f", mean image {backbone['mean_image'].get('file')}"))
    if not calibrated_features(backbone):
        weights.append(Text("; NOT the features the presets were calibrated on (untrained Table S1, "
                            "seed 0)"))
    source: list[Text] = [Text(str(mnist.get("source")), "strong")]
    if mnist.get("location"):
        source.append(Text(f" ({mnist['location']})"))
    source.append(Text(f"; image set: dataset seed {c.get('dataset_seed', 0)}"))
    sizes = (f"{c.get('scale')}; {c.get('items')} items, width {c.get('width')}, "
             f"{c.get('train_per_class')} positives, {c.get('test_per_class')} test images per item, "
             f"{c.get('epochs')} epochs, batch {c.get('batch_size')}, lr {_g(c.get('lr'))}, "
             f"alpha {_g(c.get('alpha'))}, feature scale {_g(c.get('feature_scale'))}"
             + (" (centred)" if c.get("center_features") else ""))
    time = "unknown" if run.seconds is None else f"{run.seconds:.0f} s"
    return [Fact("run folder", (Text(run.folder.name, "code"),)),
            Fact("backbone weights", tuple(weights)),
            Fact("MNIST source", tuple(source)),
            Fact("scale", (Text(sizes),)),
            Fact("device", (Text(f"{c.get('device', 'cpu')}, precision {c.get('precision', 'float32')}"),)),
            Fact("versions", (Text(", ".join(f"{k} {v}" for k, v in run.versions.items()) or "unknown"),)),
            Fact("trials", (Text(f"{len(run.trials)} (run seed {c.get('seed')}), run time: {time}"),)),
            Fact("calibration", calibration_fact(c.get("seed"), run.trials))]


def calibration_fact(seed, trials) -> Rich:
    """Held out, or which of the run's trials a calibration saw (metaplastic.calibration)."""
    seen = in_sample(seed, trials)
    if not seen:
        return (Text("held out"), Text(": no calibration used these trials"))
    return (Text("IN-SAMPLE", "strong"),
            Text(f": trials {_spans(seen.trials)} of run seed {seed} were used by "
                 + "; ".join(seen.uses) + ", so these verdicts are not held-out evidence"))


def _spans(numbers: list[int]) -> str:
    """[0, 1, 2, 4] -> "0-2, 4"."""
    spans, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            spans.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ", ".join(spans)


def _g(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def _mean_sd(values) -> str:
    values = np.asarray(values, dtype=float)
    if len(values) == 0 or np.all(np.isnan(values)):
        return "-"
    sd = np.nanstd(values, ddof=1) if np.sum(~np.isnan(values)) > 1 else 0.0
    return f"{np.nanmean(values):.2f} ± {sd:.2f}"


def learner_measures(table: pd.DataFrame, learner: str, kind: str) -> dict[str, str]:
    """Per learner, over trials (mean ± SD): memorized items, gross memory and the lowest item
    after the last presentation; for poisoning, average performance before and after the
    poisoned pass; for frequency, Spearman of final performance with order and frequency."""
    mine = table[table.learner == learner]
    by_trial = tables.final_rows(mine).groupby("trial")
    out = {"memorized items": _mean_sd(by_trial["memorized"].sum()),
           "gross memory": _mean_sd(by_trial["performance"].sum()),
           "lowest item": _mean_sd(by_trial["performance"].min())}
    if kind == "poisoning":
        n, last = tables.n_items(table), int(table["presentation"].max())
        before = mine[mine.presentation == last - n].groupby("trial")["performance"].mean()
        after = mine[mine.presentation == last].groupby("trial")["performance"].mean()
        out["performance before / after poisoning"] = f"{_mean_sd(before)} / {_mean_sd(after)}"
    if kind == "frequency":
        order, frequency = [], []
        for _, trial in mine.groupby("trial"):
            schedule = tables.item_schedule(trial)
            performance = tables.final_performance(trial).reindex(schedule.index)
            order.append(spearman(schedule["last_position"], performance)[0])
            frequency.append(spearman(schedule["frequency"], performance)[0])
        out["Spearman with order"] = _mean_sd(order)
        out["Spearman with frequency"] = _mean_sd(frequency)
    return out


def cost_cells(cost: dict | None) -> tuple[str, str, str]:
    """A learner's costs as the comparison table shows them; "not recorded" where unknown."""
    if not cost:
        return (NOT_RECORDED,) * 3
    stored = int(round(cost["stored_examples"]))
    return (f"{cost['state_bytes_per_weight']:.1f}",
            f"{stored} ({cost['stored_bytes'] / 2**20:.1f} MiB)" if stored else "0",
            f"{cost['seconds_per_presentation']:.2f}")


def comparison_of(run: Run) -> Comparison:
    """One row per learner of a run: what it remembers (:func:`learner_measures`) and what it
    cost while the run trained (:attr:`Run.costs`)."""
    kind = EXPERIMENTS[run.experiment].kind
    measures = {name: learner_measures(run.records, name, kind) for name in run.learners}
    columns = list(next(iter(measures.values())))
    rows = tuple((name, *(measures[name][c] for c in columns), *cost_cells(run.costs.get(name)))
                 for name in run.learners)
    return Comparison(tuple(run.config.get("learner_settings", ())), ("learner", *columns, *COST_COLUMNS),
                      rows, bool(run.costs), str(run.config.get("device", "cpu")))


def comparison_note(comparison: Comparison) -> str:
    """How the comparison table was measured."""
    costs = ("Costs, measured while the run trained (device " + comparison.device + "), mean over "
             "trials: the state each learner's method keeps beyond its weights, in bytes per "
             "parameter (the profiles of one stacked model share its optimizer's); the training "
             "examples it stores per network (features, fp32, with labels); its seconds per "
             "presentation: its share of the stacked model's training time per network.")
    if not comparison.costs_recorded:
        costs += (f" This run was trained before costs were recorded: those cells say "
                  f"{NOT_RECORDED} (the report never trains to measure them).")
    return "After the last presentation, mean ± SD over trials. " + costs


def draw_figures(run: Run) -> list[FigureImage]:
    """Every figure that applies to the run, as PNG bytes."""
    from metaplastic.plots import _pyplot, figures_for

    plt = _pyplot()
    images = []
    for stem, fig in figures_for(run.records).items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=FIGURE_DPI)
        plt.close(fig)
        images.append(FigureImage(stem, buffer.getvalue()))
    return images
