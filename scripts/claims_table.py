"""Markdown tables of the report's verdicts, for the results pages (docs/results-*.md).

Two shapes, from run folders judged exactly as ``metaplastic report`` judges them:

    # one run: every claim with its p, verdict, trials needed and effect against the paper's
    python scripts/claims_table.py runs/serial-position-quick-XXXX

    # several runs of one experiment side by side (claim x run: verdict), e.g. one per feature
    # setting; --first-trials N judges each on its trials 0..N-1 only, so that runs with more
    # trials are compared at the same power
    python scripts/claims_table.py RUN_A:"default" RUN_B:"backbone draw 1" --first-trials 5

    # and, for one run, what each learner ends with: memorized items per trial, final
    # performance of every item (after the last presentation, mean over trials)
    python scripts/claims_table.py runs/serial-position-quick-XXXX --final

A run is ``FOLDER`` or ``FOLDER:LABEL``. Nothing is written; the tables go to standard output.
"""

from __future__ import annotations

import argparse
import sys

from metaplastic.report.evaluation import RunReport, evaluate, verdict_sentence
from metaplastic.results import RunFolderError

CLAIM_COLUMNS = ("figure", "paper's claim", "p", "verdict", "trials needed", "effect (95% CI)",
                 "paper's effect", "vs paper")


def _row(cells) -> str:
    return "| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |"


def claims_table(report: RunReport) -> list[str]:
    lines = [_row(CLAIM_COLUMNS), _row(["---"] * len(CLAIM_COLUMNS))]
    for row in report.claim_rows:
        lines.append(_row([row.paper.split(":")[0], row.statement, row.p, f"**{row.verdict}**",
                           row.needed, row.effect, row.paper_effect, row.against_paper]))
    return lines


def verdict_table(reports: list[RunReport], labels: list[str]) -> list[str]:
    lines = [_row(["claim", *labels]), _row(["---"] * (len(labels) + 1))]
    for i, (claim, _) in enumerate(reports[0].rows):
        lines.append(_row([claim.statement, *(r.rows[i][1].verdict for r in reports)]))
    return lines


def final_tables(report: RunReport) -> list[str]:
    """Memorized items per trial and final performance by item, per learner, after the last
    presentation (the records' own ``memorized``: label-shuffle test at p < 0.05)."""
    from metaplastic.reader import read_run

    records = read_run(report.folder).records
    records = records[records["trial"].isin(report.trials)]
    last = records[records["presentation"] == records["presentation"].max()]
    items = sorted(last["item"].unique())
    lines = [_row(["learner", "memorized items (per trial)", "mean +- SD"]), _row(["---"] * 3)]
    by_item = [_row(["learner", *(int(i) for i in items)]), _row(["---"] * (len(items) + 1))]
    for learner, rows in last.groupby("learner", sort=False):
        counts = rows.groupby("trial")["memorized"].sum()
        lines.append(_row([learner, ", ".join(str(int(c)) for c in counts),
                           f"{counts.mean():.1f} +- {counts.std(ddof=1):.1f}"]))
        means = rows.groupby("item")["performance"].mean()
        by_item.append(_row([learner, *(f"{means[i]:.2f}" for i in items)]))
    return lines + [""] + by_item


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders, each FOLDER or FOLDER:LABEL")
    parser.add_argument("--first-trials", type=int, default=None,
                        help="judge each run on its trials 0..N-1 only")
    parser.add_argument("--final", action="store_true",
                        help="also print each learner's memorized items and final performance by item")
    args = parser.parse_args(argv)
    if args.first_trials is not None and args.first_trials < 1:
        parser.error("--first-trials must be at least 1")
    folders = [run.partition(":")[0] for run in args.runs]
    labels = [run.partition(":")[2] or run for run in args.runs]
    try:
        reports = [evaluate(folder, first_trials=args.first_trials) for folder in folders]
        if len({r.experiment for r in reports}) > 1:
            raise RunFolderError("runs side by side must be of one experiment")
    except RunFolderError as error:
        print(f"claims_table.py: {error}", file=sys.stderr)
        return 2
    for label, report in zip(labels, reports):
        print(f"{label}: {report.experiment}, seed {report.seed}, trials {len(report.trials)}: "
              f"{verdict_sentence([report])}")
    print()
    table = claims_table(reports[0]) if len(reports) == 1 else verdict_table(reports, list(labels))
    print("\n".join(table))
    for label, report in zip(labels, reports) if args.final else ():
        print(f"\n{label}, after the last presentation:\n")
        print("\n".join(final_tables(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
