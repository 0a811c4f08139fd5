"""``report.html``: the evaluated runs (:mod:`.evaluation`) as one self-contained page.

The page a researcher reads first: the verdicts per experiment at the top, then each experiment
with its provenance, its claims (verdicts coloured) beside its figures (embedded PNG), the
learners compared, and the rules last. Built from the same data as the markdown, every text
escaped, markup as tags.
"""

from __future__ import annotations

import base64
from html import escape

from metaplastic.claims import VERDICTS
from metaplastic.report.evaluation import (
    NOT_RECORDED,
    Comparison,
    FigureImage,
    Rich,
    RunReport,
    comparison_note,
    in_sample_sentence,
    rules,
    rules_intro,
    verdict_counts,
    verdict_sentence,
)

STYLE = """
:root{--holds:#1a7f37;--holds-bg:#dafbe1;--contradicted:#b3261e;--contradicted-bg:#ffe1de;
--not-shown:#8a5a00;--not-shown-bg:#fff1c2;--inconclusive:#57606a;--inconclusive-bg:#e8ebef}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:14px;line-height:1.45;
color:#1f2328;max-width:1800px;margin:0 auto;padding:0 24px 48px}
h1{margin:24px 0 4px}h2{margin:0 0 8px;font-size:22px}h3{margin:20px 0 6px;font-size:17px}
.lead{font-size:15px;margin:0 0 16px}
table{border-collapse:collapse;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f6f8fa;font-weight:600}
td.number{text-align:right;font-variant-numeric:tabular-nums}
td.zero{color:#8c959f;text-align:right}
td.missing{color:#8c959f;font-style:italic}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px;background:#f6f8fa;
padding:1px 4px;border-radius:4px}
.verdict{font-weight:600;white-space:nowrap}
.verdict-holds{color:var(--holds);background:var(--holds-bg)}
.verdict-contradicted{color:var(--contradicted);background:var(--contradicted-bg)}
.verdict-not-shown{color:var(--not-shown);background:var(--not-shown-bg)}
.verdict-inconclusive{color:var(--inconclusive);background:var(--inconclusive-bg)}
span.verdict{padding:1px 6px;border-radius:10px}
td.verdict{text-align:center}
section.experiment{border-top:3px solid #d0d7de;margin-top:32px;padding-top:16px}
.paper{color:#57606a;font-weight:400}
.tally span.verdict{margin-right:6px}
ul.provenance{columns:2 480px;font-size:12.5px;color:#424a53;margin:8px 0 12px;padding-left:18px}
.body{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:20px;align-items:start}
@media (max-width:1100px){.body{grid-template-columns:minmax(0,1fr)}}
table.claims{width:100%;font-size:13px}
p.warning{background:#fff3cd;border-left:4px solid #c9a227;padding:6px 10px}
table.claims td.statement{min-width:200px;font-weight:500}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:10px}
figure{margin:0;border:1px solid #d0d7de;border-radius:6px;padding:4px;background:#fff}
figure img{width:100%;height:auto;display:block}
figcaption{font-size:12px;color:#57606a;text-align:center}
.comparison{overflow-x:auto}
.note{font-size:13px;color:#424a53;max-width:1200px}
#rules li{margin:3px 0}
"""

_TAGS = {"strong": "strong", "code": "code", "em": "em"}


def verdict_class(verdict: str) -> str:
    """The CSS class of a verdict: ``not shown`` -> ``verdict-not-shown``."""
    return "verdict-" + verdict.replace(" ", "-")


def rich(value: Rich) -> str:
    parts = []
    for t in value:
        text = escape(t.text)
        if t.style == "verdict":
            parts.append(f'<span class="verdict {verdict_class(t.text)}">{text}</span>')
        elif t.style in _TAGS:
            parts.append(f"<{_TAGS[t.style]}>{text}</{_TAGS[t.style]}>")
        else:
            parts.append(text)
    return "".join(parts)


def _row(cells: list[str], tag: str = "td") -> str:
    """``cells``: each either plain text or ``(html, class)``."""
    out = []
    for c in cells:
        body, cls = c if isinstance(c, tuple) else (escape(c), "")
        out.append(f'<{tag} class="{cls}">{body}</{tag}>' if cls else f"<{tag}>{body}</{tag}>")
    return "<tr>" + "".join(out) + "</tr>"


def _head(columns) -> str:
    return "<thead>" + _row(list(columns), "th") + "</thead>"


def anchor(index: int, r: RunReport) -> str:
    return f"run-{index}-{r.experiment}"


def _count_cell(verdict: str, n: int) -> tuple[str, str]:
    return (str(n), f"verdict number {verdict_class(verdict)}") if n else ("0", "zero")


def summary(reports: list[RunReport]) -> str:
    """Experiment x verdict: how many claims of each run got each verdict, and in all."""
    rows = []
    for i, r in enumerate(reports):
        link = f'<a href="#{escape(anchor(i, r), quote=True)}">{escape(r.experiment)}</a>'
        rows.append(_row([(link, ""), r.paper, (str(len(r.trials)), "number"),
                          *(_count_cell(v, r.counts[v]) for v in VERDICTS), (str(len(r.rows)), "number")]))
    total = verdict_counts(reports)
    rows.append(_row([("<strong>all</strong>", ""), "", "", *(_count_cell(v, total[v]) for v in VERDICTS),
                      (str(sum(total.values())), "number")]))
    return ('<section id="summary"><h2>Verdicts per experiment</h2><table class="summary">'
            + _head(["experiment", "paper", "trials", *VERDICTS, "claims"])
            + "<tbody>" + "".join(rows) + "</tbody></table></section>")


def claims(r: RunReport) -> str:
    rows = [_row([(escape(c.statement), "statement"), c.paper, c.measured, c.test, (escape(c.p), "number"),
                  (escape(c.verdict), f"verdict {verdict_class(c.verdict)}"), (escape(c.needed), "number"),
                  (escape(c.effect), "number"), (escape(c.paper_effect), "number"), c.against_paper])
            for c in r.claim_rows]
    return ('<table class="claims">'
            + _head(["paper's claim", "paper's statistic", "measured", "test", "p", "verdict",
                     "trials needed", "effect (95% CI)", "paper's effect", "vs paper"])
            + "<tbody>" + "".join(rows) + "</tbody></table>")


def figures(images: list[FigureImage]) -> str:
    items = []
    for f in images:
        data = base64.b64encode(f.png).decode()
        items.append(f'<figure><img alt="{escape(f.stem, quote=True)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{escape(f.stem)}</figcaption></figure>")
    return '<div class="figures">' + "".join(items) + "</div>"


def comparison(c: Comparison) -> str:
    settings = "; ".join(f"<code>{escape(s)}</code>" for s in c.settings)
    rows = [_row([(escape(v), "missing") if v == NOT_RECORDED else v for v in row]) for row in c.rows]
    return ('<div class="comparison"><h3>Learners compared</h3>'
            f'<p class="note">Settings of the baselines: {settings}. {escape(comparison_note(c))}</p>'
            "<table>" + _head(c.columns) + "<tbody>" + "".join(rows) + "</tbody></table></div>")


def run_section(index: int, r: RunReport) -> str:
    tally = " ".join(f'<span class="verdict {verdict_class(v)}">{n} {escape(v)}</span>'
                     for v, n in r.counts.items() if n)
    facts = "".join(f"<li>{escape(f.label)}: {rich(f.value)}</li>" for f in r.provenance)
    return (f'<section class="experiment" id="{escape(anchor(index, r), quote=True)}">'
            f'<h2>{escape(r.experiment)} <span class="paper">({escape(r.paper)})</span></h2>'
            f'<div class="tally">{escape(f"{len(r.trials)} trials (seed {r.seed}):")} {tally}</div>'
            f'<ul class="provenance">{facts}</ul>'
            f'<div class="body"><div>{claims(r)}</div>{figures(r.figures)}</div>'
            + (comparison(r.comparison) if r.comparison is not None else "") + "</section>")


def rules_section(reports: list[RunReport]) -> str:
    items = "".join(f"<li>{escape(rule.experiment)}: <em>{escape(rule.statement)}</em>: "
                    f"{escape(rule.rule)}</li>" for rule in rules(reports))
    return (f'<section id="rules" class="experiment"><h2>Rules</h2><p>{rich(rules_intro())}</p>'
            f"<ul>{items}</ul></section>")


def render(reports: list[RunReport]) -> str:
    warning = in_sample_sentence(reports)
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>Reproduction report</title><style>{STYLE}</style></head><body>"
            "<h1>Reproduction report</h1>"
            '<p class="lead">Every claim listed in the experiment registry, checked on the runs below by '
            f'the rule given for it under <a href="#rules">Rules</a>. {escape(verdict_sentence(reports))}</p>'
            + (f'<p class="warning">{escape(warning)}</p>' if warning else "")
            + summary(reports) + "".join(run_section(i, r) for i, r in enumerate(reports))
            + rules_section(reports) + "</body></html>\n")
