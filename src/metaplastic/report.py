"""The reproduction report: every claim of the paper beside what a run measured.

``write_report(run_dirs, out)`` reads each run folder (config, records), checks
the claims its experiment lists in the registry, draws its figures, and
writes ``report.md`` and a self-contained ``report.html`` (figures embedded).
A claim that does not hold is reported as such.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from metaplastic.claims import MIN_TRIALS, SIGNIFICANCE, VERDICTS, Claim, Measured
from metaplastic.experiments import EXPERIMENTS


@dataclass
class RunReport:
    folder: Path
    experiment: str
    config: dict
    provenance: dict
    versions: dict
    trials: list[int]
    seconds: float | None
    rows: list[tuple[Claim, Measured]]
    table: pd.DataFrame


def evaluate(run_dir: str | Path) -> RunReport:
    folder = Path(run_dir)
    saved = json.loads((folder / "config.json").read_text())
    table = pd.read_parquet(folder / "records.parquet")
    experiment = saved["config"]["experiment"]
    summary_path = folder / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    rows = [(claim, claim.check(table)) for claim in EXPERIMENTS[experiment].claims]
    return RunReport(folder, experiment, saved["config"], saved["provenance"], saved["versions"],
                     sorted(int(t) for t in table["trial"].unique()), summary.get("seconds"), rows,
                     table)


def claims_table(reports: list[RunReport]) -> str:
    """The markdown table of every claim of every run."""
    lines = ["| experiment | paper's claim | paper's statistic | measured | test | p | trials (seed) "
             "| verdict | trials needed |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in reports:
        trials = f"{len(r.trials)} (seed {r.config['seed']})"
        for claim, m in r.rows:
            p = "-" if m.p_value is None else f"{m.p_value:.3g}"
            needed = "-" if m.trials_needed is None else str(m.trials_needed)
            lines.append(f"| {r.experiment} | {claim.statement} | {claim.paper} | {_cell(m.statistic)} | "
                         f"{m.test} | {p} | {trials} | **{m.verdict}** | {needed} |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "/")


def verdict_counts(reports: list[RunReport]) -> str:
    """One sentence: how many claims got each verdict."""
    verdicts = [m.verdict for r in reports for _, m in r.rows]
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in VERDICTS if verdicts.count(v))
    return f"{len(verdicts)} claims: {counts}."


def rules_section(reports: list[RunReport]) -> list[str]:
    """Each claim's verdict rule, as fixed in code before any run."""
    lines = ["## Rules", "",
             f"Fixed in `metaplastic.claims` before any run. Significance p < {SIGNIFICANCE}. "
             "**holds**: every part of the claim met; **contradicted**: some part goes the other way "
             "significantly (or a claimed NS is significant); **not shown**: right direction but not "
             "significant (\"trials needed\": the trials the observed effect size would need for "
             f"power 0.8, one-sided t-test); **inconclusive**: fewer than {MIN_TRIALS} trials, a "
             "missing profile or too short a sequence.", ""]
    seen = set()
    for r in reports:
        for claim, _ in r.rows:
            if (r.experiment, claim.statement) not in seen:
                seen.add((r.experiment, claim.statement))
                lines.append(f"- {r.experiment}: *{claim.statement}*: {claim.rule}")
    return lines + [""]


def _provenance_lines(r: RunReport) -> list[str]:
    backbone, mnist = r.provenance.get("backbone", {}), r.provenance.get("mnist", {})
    c = r.config
    return [f"- run folder: `{r.folder.name}`",
            f"- backbone weights: **{backbone.get('weights')}** ({backbone.get('architecture', '')})",
            f"- MNIST source: **{mnist.get('source')}** ({mnist.get('location')})",
            f"- scale: {c['scale']}; {c['items']} items, width {c['width']}, {c['train_per_class']} "
            f"positives, {c['test_per_class']} test images per item, {c['epochs']} epochs, batch "
            f"{c['batch_size']}, lr {c['lr']:g}, alpha {c['alpha']:g}, feature scale "
            f"{c['feature_scale']:g}{' (centred)' if c.get('center_features') else ''}",
            f"- device: {c['device']}; versions: "
            + ", ".join(f"{k} {v}" for k, v in r.versions.items()),
            f"- trials: {len(r.trials)} (run seed {c['seed']}), run time: "
            + ("unknown" if r.seconds is None else f"{r.seconds:.0f} s")]


def write_report(run_dirs: list[str | Path], out: str | Path) -> tuple[Path, Path]:
    from metaplastic.plots import _pyplot, figures_for

    reports = [evaluate(d) for d in run_dirs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = ["# Reproduction report", "",
          "Every claim listed in the experiment registry, checked on the runs below by the rule "
          "given for it under *Rules*. " + verdict_counts(reports), "", claims_table(reports), ""]
    md += rules_section(reports)
    html_parts = [f"<h1>Reproduction report</h1><p>{html.escape(verdict_counts(reports))}</p>"
                  f"{_md_table_to_html(claims_table(reports))}"
                  + "".join(f"<p>{html.escape(line)}</p>" for line in rules_section(reports) if line)]
    plt = _pyplot()
    for r in reports:
        md += [f"## {r.experiment} ({EXPERIMENTS[r.experiment].paper})", ""] + _provenance_lines(r) + [""]
        html_parts.append(f"<h2>{html.escape(r.experiment)}</h2><ul>"
                          + "".join(f"<li>{html.escape(line[2:])}</li>" for line in _provenance_lines(r))
                          + "</ul>")
        figure_dir = out / "figures" / r.experiment
        figure_dir.mkdir(parents=True, exist_ok=True)
        for stem, fig in figures_for(r.table).items():
            png = figure_dir / f"{stem}.png"
            fig.savefig(png, dpi=110)
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=110)
            plt.close(fig)
            md.append(f"![{stem}](figures/{r.experiment}/{stem}.png)")
            encoded = base64.b64encode(buffer.getvalue()).decode()
            html_parts.append(f'<img alt="{stem}" src="data:image/png;base64,{encoded}" width="560">')
        md.append("")
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text("\n".join(md))
    html_path.write_text("<!doctype html><meta charset='utf-8'><title>metaplastic report</title>"
                         "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}"
                         "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px}"
                         "</style>" + "".join(html_parts))
    return md_path, html_path


def _md_table_to_html(table: str) -> str:
    rows = [line.strip("|").split(" | ") for line in table.splitlines() if not line.startswith("| ---")]
    head, body = rows[0], rows[1:]
    cell = lambda text: html.escape(text.strip()).replace("**", "")  # noqa: E731
    return ("<table><tr>" + "".join(f"<th>{cell(h)}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in body)
            + "</table>")
