"""``report.md``: the evaluated runs (:mod:`.evaluation`) set as markdown."""

from __future__ import annotations

from metaplastic.claims import VERDICTS
from metaplastic.report.evaluation import (
    Comparison,
    Rich,
    RunReport,
    comparison_note,
    in_sample_sentence,
    rules,
    rules_intro,
    verdict_sentence,
)

CLAIM_COLUMNS = ("experiment", "paper's claim", "paper's statistic", "measured", "test", "p",
                 "trials (seed)", "verdict", "trials needed", "effect (95% CI)", "paper's effect",
                 "vs paper")

_MARKS = {"plain": "{}", "strong": "**{}**", "code": "`{}`", "em": "*{}*", "verdict": "**{}**"}


def rich(value: Rich) -> str:
    return "".join(_MARKS[t.style].format(t.text) for t in value)


def cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "/").replace("\n", " ")


def table(head, rows) -> list[str]:
    return (["| " + " | ".join(cell(h) for h in head) + " |", "|" + " --- |" * len(head)]
            + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows])


def summary_table(reports: list[RunReport]) -> list[str]:
    """Per run, how many claims got each verdict."""
    rows = [(r.experiment, r.paper, str(len(r.trials)), *(str(r.counts[v]) for v in VERDICTS),
             str(len(r.rows))) for r in reports]
    return table(("experiment", "paper", "trials", *VERDICTS, "claims"), rows)


def claims_table(reports: list[RunReport]) -> list[str]:
    """Every claim of every run."""
    rows = [(c.experiment, c.statement, c.paper, c.measured, c.test, c.p, c.trials, f"**{c.verdict}**",
             c.needed, c.effect, c.paper_effect, c.against_paper) for r in reports for c in r.claim_rows]
    return table(CLAIM_COLUMNS, rows)


def rules_section(reports: list[RunReport]) -> list[str]:
    return (["## Rules", "", rich(rules_intro()), ""]
            + [f"- {rule.experiment}: *{rule.statement}*: {rule.rule}" for rule in rules(reports)] + [""])


def comparison_section(comparison: Comparison) -> list[str]:
    return (["### Learners compared", "",
             "Settings of the baselines: " + "; ".join(f"`{s}`" for s in comparison.settings) + ". "
             + comparison_note(comparison), ""]
            + table(comparison.columns, comparison.rows) + [""])


def run_section(r: RunReport) -> list[str]:
    lines = [f"## {r.experiment} ({r.paper})", ""]
    lines += [f"- {fact.label}: {rich(fact.value)}" for fact in r.provenance] + [""]
    if r.comparison is not None:
        lines += comparison_section(r.comparison)
    lines += [f"![{figure.stem}]({r.figure_path(figure)})" for figure in r.figures]
    return lines + [""]


def render(reports: list[RunReport]) -> str:
    lines = ["# Reproduction report", "",
             "Every claim listed in the experiment registry, checked on the runs below by the rule "
             "given for it under *Rules*. " + verdict_sentence(reports), ""]
    if in_sample_sentence(reports):
        lines += [f"**{in_sample_sentence(reports)}**", ""]
    lines += summary_table(reports) + [""] + claims_table(reports) + [""] + rules_section(reports)
    for r in reports:
        lines += run_section(r)
    return "\n".join(lines)
