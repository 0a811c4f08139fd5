"""The reproduction report: every claim of the paper beside what a run measured.

``write_report(run_dirs, out)`` is a pure function of its run folders: it reads each through
:func:`metaplastic.reader.read_run`, judges the claims its experiment lists in the registry,
draws its figures (:mod:`.evaluation`, plain data), and writes ``report.md`` (:mod:`.markdown`)
and a self-contained ``report.html`` (:mod:`.html`, figures embedded) from that same data, with
the figures under ``out/figures/<experiment>/`` (a second run of an experiment: under
``out/figures/<run folder>/``). A claim that does not hold is reported as such.
A run that trains baseline learners beside the profiles (``--learners``, docs/baselines.md) also
gets a comparison table: what each learner remembers, and what it cost beyond its weights (state,
stored examples, time) as measured while the run trained. Nothing here trains or imports the
engine: a run trained before costs were recorded says "not recorded".
"""

from __future__ import annotations

import os
from pathlib import Path

from metaplastic.report import html, markdown
from metaplastic.report.evaluation import (
    Comparison,
    Fact,
    FigureImage,
    RunReport,
    Text,
    evaluate,
    learner_measures,
    verdict_counts,
    verdict_sentence,
)

__all__ = ["Comparison", "Fact", "FigureImage", "RunReport", "Text", "evaluate", "learner_measures",
           "verdict_counts", "verdict_sentence", "write_report"]


def write_report(run_dirs: list[str | os.PathLike], out: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html`` and ``figures/`` under ``out``; their paths.
    :class:`~metaplastic.results.RunFolderError` if a run folder cannot be read."""
    reports = [evaluate(folder, figures=True) for folder in run_dirs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    for report in reports:
        if report.experiment in seen:    # a second run of an experiment: its figures beside the first's
            report.figure_dir = f"figures/{report.folder.name}"
        seen.add(report.experiment)
        (out / report.figure_dir).mkdir(parents=True, exist_ok=True)
        for figure in report.figures:
            (out / report.figure_path(figure)).write_bytes(figure.png)
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text(markdown.render(reports), encoding="utf-8")
    html_path.write_text(html.render(reports), encoding="utf-8")
    return md_path, html_path
