"""The reproduction report: every claim of the paper beside what a run measured.

``write_report(run_dirs, out)`` reads each run folder (config, records), checks
the claims its experiment lists in the registry, draws its figures, and
writes ``report.md`` and a self-contained ``report.html`` (figures embedded).
A claim that does not hold is reported as such. A run that trains baseline
learners beside the profiles (``--learners``, docs/baselines.md) also gets a
comparison table: what each learner remembers, and what it costs beyond its
weights (state, stored examples, time), measured.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from metaplastic import tables
from metaplastic.claims import MIN_TRIALS, SIGNIFICANCE, VERDICTS, Claim, Measured
from metaplastic.experiments import EXPERIMENTS
from metaplastic.features import calibrated_features
from metaplastic.stats import spearman


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
            f"- backbone weights: **{backbone.get('weights')}** ({backbone.get('architecture', '')})"
            + ("" if calibrated_features(backbone) else
               "; NOT the features the presets were calibrated on (untrained Table S1)"),
            f"- MNIST source: **{mnist.get('source')}** ({mnist.get('location')})",
            f"- scale: {c['scale']}; {c['items']} items, width {c['width']}, {c['train_per_class']} "
            f"positives, {c['test_per_class']} test images per item, {c['epochs']} epochs, batch "
            f"{c['batch_size']}, lr {c['lr']:g}, alpha {c['alpha']:g}, feature scale "
            f"{c['feature_scale']:g}{' (centred)' if c.get('center_features') else ''}",
            f"- device: {c['device']}; versions: "
            + ", ".join(f"{k} {v}" for k, v in r.versions.items()),
            f"- trials: {len(r.trials)} (run seed {c['seed']}), run time: "
            + ("unknown" if r.seconds is None else f"{r.seconds:.0f} s")]


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
    rows = tables.final_rows(table[table.profile == learner])
    by_trial = rows.groupby("trial")
    out = {"memorized items": _mean_sd(by_trial["memorized"].sum()),
           "gross memory": _mean_sd(by_trial["performance"].sum()),
           "lowest item": _mean_sd(by_trial["performance"].min())}
    if kind == "poisoning":
        n, last = tables.n_items(table), int(table["presentation"].max())
        mine = table[table.profile == learner]
        before = mine[mine.presentation == last - n].groupby("trial")["performance"].mean()
        after = mine[mine.presentation == last].groupby("trial")["performance"].mean()
        out["performance before / after poisoning"] = f"{_mean_sd(before)} / {_mean_sd(after)}"
    if kind == "frequency":
        order, frequency = [], []
        for _, trial in table[table.profile == learner].groupby("trial"):
            schedule = tables.item_schedule(trial)
            performance = tables.final_performance(trial).reindex(schedule.index)
            order.append(spearman(schedule["last_position"], performance)[0])
            frequency.append(spearman(schedule["frequency"], performance)[0])
        out["Spearman with order"] = _mean_sd(order)
        out["Spearman with frequency"] = _mean_sd(frequency)
    return out


def comparison_table(r: RunReport, costs: dict[str, dict] | None = None) -> str:
    """One row per learner of a run: what it remembers (:func:`learner_measures`) and, if
    measured (:func:`metaplastic.engine.measure_costs`), what it costs beyond its weights."""
    kind = EXPERIMENTS[r.experiment].kind
    learners = list(r.config["profiles"])
    measures = {name: learner_measures(r.table, name, kind) for name in learners}
    columns = list(next(iter(measures.values())))
    cost_columns = ["state bytes per weight", "stored examples (bytes)", "s per presentation"]
    head = ["learner"] + columns + (cost_columns if costs else [])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name in learners:
        cells = [name] + [measures[name][c] for c in columns]
        if costs:
            cost = costs[name]
            stored = cost["stored_examples"]
            cells += [f"{cost['state_bytes_per_weight']:.1f}",
                      f"{stored} ({cost['stored_bytes'] / 2**20:.1f} MiB)" if stored else "0",
                      f"{cost['seconds_per_presentation']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _measure_costs(r: RunReport) -> dict[str, dict]:
    import dataclasses

    import torch

    from metaplastic.config import RunConfig
    from metaplastic.engine import measure_costs

    saved = {f.name: r.config[f.name] for f in dataclasses.fields(RunConfig) if f.name in r.config}
    saved.update(profiles=tuple(saved["profiles"]),
                 learner_settings=tuple(saved.get("learner_settings", ())))
    if str(saved.get("device", "cpu")).startswith("cuda") and not torch.cuda.is_available():
        saved["device"] = "cpu"
    return measure_costs(RunConfig(**saved))


def comparison_section(r: RunReport, measure: bool = True) -> list[str]:
    """The learners compared in a run with baselines: settings, the table, how it was measured."""
    costs = _measure_costs(r) if measure else None
    return ["### Learners compared", "",
            "Settings of the baselines: " + "; ".join(f"`{s}`" for s in r.config["learner_settings"])
            + ". After the last presentation, mean ± SD over trials. Costs: the state each "
            "learner's method keeps beyond its weights, in bytes per parameter; the training "
            "examples it stores (features, fp32, with labels); the seconds it takes to train one "
            "network on one presentation at this run's sizes, measured on random features on the "
            f"machine that wrote this report (device {r.config.get('device', 'cpu')}), one "
            "network at a time.", "", comparison_table(r, costs), ""]


def write_report(run_dirs: list[str | Path], out: str | Path,
                 measure_costs: bool = True) -> tuple[Path, Path]:
    """``measure_costs``: time the learners of runs with baselines (a few seconds each)."""
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
        if r.config.get("learner_settings"):
            section = comparison_section(r, measure_costs)
            md += section
            html_parts.append(f"<h3>Learners compared</h3><p>{html.escape(section[2])}</p>"
                              + _md_table_to_html(section[4]))
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
