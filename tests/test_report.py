"""The report (metaplastic.report) and the figures it embeds: a pure function of finished run folders.

Every test reads run folders made once per module by tiny runs (synthetic features, no backbone):
one per experiment, and one with baselines whose trial notes hold the costs the engine measured.
"""

import json
import shutil
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import pytest

from metaplastic import plots
from metaplastic.claims import VERDICTS
from metaplastic.experiments import EXPERIMENTS
from metaplastic.lab import run_experiment
from metaplastic.reader import read_run
from metaplastic.report import evaluate, write_report
from metaplastic.results import RunFolderError

REPO = Path(__file__).resolve().parents[1]
BASELINE_LEARNERS = ("hybrid", "conventional", "ewc:lam=0.5", "replay:buffer=8")
KIND_FIGURE = {"serial": "capacity", "repetition": "lowest-per-repetition", "poisoning": "attack",
               "frequency": "frequency"}
#: The experiments of the report over several runs (with the baseline run, a second serial-position).
REPORTED = ("serial-position", "poisoning")


class Runs(dict):
    """Run folders by experiment, each trained on first use."""

    def __init__(self, build):
        super().__init__()
        self.build = build

    def __missing__(self, name):
        self[name] = self.build(name)
        return self[name]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_config, fake_lab):
    """``runs[experiment]``: its tiny run's folder (3 trials, seed 2)."""
    out = tmp_path_factory.mktemp("runs")
    return Runs(lambda name: run_experiment(tiny_config(name, trials=3, seed=2, epochs=1), fake_lab, out,
                                            progress=False).store.path)


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory, tiny_config, fake_lab):
    out = tmp_path_factory.mktemp("baselines")
    config = tiny_config("serial-position", trials=2, epochs=1, learners=",".join(BASELINE_LEARNERS))
    return run_experiment(config, fake_lab, out, progress=False).store.path


@pytest.fixture(scope="module")
def old_baseline_run(baseline_run, tmp_path_factory):
    """The baseline run as a folder trained before costs were recorded: notes without costs."""
    folder = tmp_path_factory.mktemp("old") / baseline_run.name
    shutil.copytree(baseline_run, folder)
    for note in (folder / "trials").glob("trial-*.json"):
        values = json.loads(note.read_text())
        values.pop("costs")
        note.write_text(json.dumps(values))
    return folder


@pytest.fixture(scope="module")
def everything(runs, baseline_run, tmp_path_factory):
    """One report over the runs of :data:`REPORTED` and the baseline run."""
    folders = [*(runs[name] for name in REPORTED), baseline_run]
    md, page = write_report(folders, tmp_path_factory.mktemp("report"))
    return folders, md, page


class Page(HTMLParser):
    """report.html parsed: every text node, every element with its attributes and its ancestors."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self, text: str):
        super().__init__()
        self.texts, self.elements, self.stack = [], [], []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "classes": set((dict(attrs).get("class") or "").split()),
                   "ancestors": list(self.stack), "text": []}
        self.elements.append(element)
        if tag not in self.VOID:
            self.stack.append(element)

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        self.texts.append(data)
        for element in self.stack:
            element["text"].append(data)

    def find(self, tag=None, cls=None, inside=None):
        return [e for e in self.elements if (tag is None or e["tag"] == tag)
                and (cls is None or cls in e["classes"])
                and (inside is None or any(a is inside for a in e["ancestors"]))]


def text_of(element) -> str:
    return "".join(element["text"]).strip()


def markdown_row(text: str, first_cells: str) -> str:
    (row,) = [line for line in text.splitlines() if line.startswith(first_cells)]
    return row


# --------------------------------------------------------------------------- markdown


@pytest.mark.parametrize("name", [name if name in REPORTED else pytest.param(name, marks=pytest.mark.slow)
                                  for name in EXPERIMENTS])
def test_every_experiment_runs_through_stats_plots_and_report(runs, name, tmp_path):
    records = read_run(runs[name]).records
    report = evaluate(runs[name])
    assert [claim.statement for claim, _ in report.rows] == [c.statement for c in EXPERIMENTS[name].claims]
    md, page = write_report([runs[name]], tmp_path)
    text = md.read_text()
    for claim in EXPERIMENTS[name].claims:        # one row per claim, with the verdict of its rule
        expected = claim.check(records)
        row = markdown_row(text, f"| {name} | {claim.statement} |")
        assert f"| **{expected.verdict}** |" in row and f"| {expected.statistic.replace('|', '/')} |" in row
        assert "| 3 (seed 2, in-sample) |" in row     # seed 2 was seen by the quick calibration
    assert "backbone weights: **synthetic**" in text and f"- run folder: `{runs[name].name}`" in text
    assert "data:image/png;base64," in page.read_text()
    figure = tmp_path / "figures" / name / f"{KIND_FIGURE[EXPERIMENTS[name].kind]}.png"
    assert figure.read_bytes().startswith(b"\x89PNG") and f"](figures/{name}/{figure.name})" in text


def test_markdown_has_the_claims_table_the_counts_and_the_rules(everything):
    folders, md, _ = everything
    text = md.read_text()
    reports = [evaluate(folder) for folder in folders]
    assert text.count("| experiment | paper's claim | paper's statistic | measured | test | p | "
                      "trials (seed) | verdict | trials needed |") == 1
    starts = tuple(f"| {r.experiment} | {claim.statement} |" for r in reports for claim, _ in r.rows)
    claim_rows = [line for line in text.splitlines() if line.startswith(starts)]
    assert len(claim_rows) == sum(len(r.rows) for r in reports)
    verdicts = [m.verdict for r in reports for _, m in r.rows]
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in VERDICTS if verdicts.count(v))
    assert f"{len(verdicts)} claims: {counts}." in text
    rules = text.split("\n## Rules\n", 1)[1].split("\n## ", 1)[0]
    assert "Fixed in `metaplastic.claims` before any run." in rules
    for name in REPORTED:
        for claim in EXPERIMENTS[name].claims:
            assert rules.count(f"- {name}: *{claim.statement}*: {claim.rule}") == 1
    for r in reports:
        assert f"## {r.experiment} ({EXPERIMENTS[r.experiment].paper})" in text


def test_an_unreadable_folder_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError) as error:
        write_report([tmp_path / "empty"], tmp_path / "report")
    assert str(tmp_path / "empty") in str(error.value) and "\n" not in str(error.value)


# --------------------------------------------------------------------------- learners compared


def comparison_rows(text: str) -> dict[str, dict[str, str]]:
    section = text.split("\n| learner |", 1)[1].split("\n\n", 1)[0]
    lines = ["| learner |" + section.splitlines()[0], *section.splitlines()[2:]]
    header = lines[0].strip("| ").split(" | ")
    rows = [line.strip("| ").split(" | ") for line in lines[1:]]
    return {cells[0]: dict(zip(header, cells)) for cells in rows}


def test_learners_compared_show_the_costs_the_run_measured(baseline_run, tmp_path):
    run = read_run(baseline_run)
    assert set(run.costs) == set(BASELINE_LEARNERS)
    md, page = write_report([baseline_run], tmp_path)
    text = md.read_text()
    assert "`ewc:lam=0.5 = ewc:lam=0.5,decay=0.9`" in text and "measured while the run trained" in text
    rows = comparison_rows(text)
    assert list(rows) == list(BASELINE_LEARNERS)
    for name, cells in rows.items():
        cost = run.costs[name]
        assert cells["s per presentation"] == f"{cost['seconds_per_presentation']:.2f}"
        assert cells["state bytes per weight"] == f"{cost['state_bytes_per_weight']:.1f}"
        assert " ± " in cells["memorized items"] and " ± " in cells["lowest item"]
    assert rows["replay:buffer=8"]["stored examples (MiB)"].startswith("8 (")
    assert rows["hybrid"]["stored examples (MiB)"] == "0"
    assert "not recorded" not in text and "Learners compared" in page.read_text()


def test_a_run_trained_before_costs_were_recorded_says_so(old_baseline_run, tmp_path):
    assert read_run(old_baseline_run).costs == {}
    md, page = write_report([old_baseline_run], tmp_path)
    rows = comparison_rows(md.read_text())
    assert list(rows) == list(BASELINE_LEARNERS)
    for cells in rows.values():
        assert [cells[c] for c in ("state bytes per weight", "stored examples (MiB)", "s per presentation")] \
            == ["not recorded"] * 3
        assert " ± " in cells["gross memory"]            # what it remembers is still there
    parsed = Page(page.read_text())
    assert len(parsed.find("td", "missing")) == 3 * len(BASELINE_LEARNERS)


@pytest.mark.slow   # compiles a kernel / starts a fresh interpreter: about 10-20 s
def test_the_report_never_imports_the_engine_or_the_lab(baseline_run, old_baseline_run, tmp_path):
    """A fresh interpreter in which importing metaplastic.engine or metaplastic.lab fails writes the
    report of finished folders, one of them trained before costs were recorded."""
    script = textwrap.dedent(f"""
        import sys
        BLOCKED = ("metaplastic.engine", "metaplastic.lab")
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name in BLOCKED:
                    raise ImportError(f"the report imported {{name}}")
        sys.meta_path.insert(0, Blocker())
        from metaplastic.report import write_report
        md, page = write_report([{str(baseline_run)!r}, {str(old_baseline_run)!r}], {str(tmp_path)!r})
        assert not [m for m in BLOCKED if m in sys.modules]
        print("written", md)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "report.md").read_text()
    assert text.count("### Learners compared") == 2 and "| not recorded | not recorded |" in text
    assert f"| {read_run(baseline_run).costs['hybrid']['seconds_per_presentation']:.2f} |" in text


def test_the_report_imports_afresh_with_the_engine_blocked(baseline_run, old_baseline_run, tmp_path,
                                                         monkeypatch):
    """In this interpreter: the engine, the modules that import it (the lab, the executors) and the
    report taken out of sys.modules, the engine made unimportable; the report, imported afresh,
    still writes the report of finished folders."""
    import importlib

    import metaplastic

    dropped = [name for name in list(sys.modules)
               if name in ("metaplastic.engine", "metaplastic.lab", "metaplastic.executors")
               or name == "metaplastic.report" or name.startswith("metaplastic.report.")]
    assert "metaplastic.report" in dropped
    for name in dropped:
        monkeypatch.delitem(sys.modules, name)
    for attribute in ("engine", "lab", "executors", "report"):
        if hasattr(metaplastic, attribute):
            monkeypatch.delattr(metaplastic, attribute)
    monkeypatch.setitem(sys.modules, "metaplastic.engine", None)
    with pytest.raises(ImportError):
        importlib.import_module("metaplastic.engine")
    fresh = importlib.import_module("metaplastic.report")
    assert fresh.write_report is not write_report                 # really imported again
    md, page = fresh.write_report([baseline_run, old_baseline_run], tmp_path)
    assert "metaplastic.lab" not in sys.modules and sys.modules["metaplastic.engine"] is None
    text = md.read_text()
    assert text.count("### Learners compared") == 2 and "| not recorded | not recorded |" in text
    assert "Learners compared" in page.read_text()


# --------------------------------------------------------------------------- the page


def test_the_page_has_no_markdown_left_and_coloured_verdicts(everything):
    folders, _, page = everything
    text = page.read_text()
    parsed = Page(text)
    for node in parsed.texts:
        assert "**" not in node and "`" not in node and "| ---" not in node, node[:200]
    reports = [evaluate(folder) for folder in folders]
    # Every claim's verdict in its own coloured cell, in the order of the runs and their claims.
    cells = [td for table in parsed.find("table", "claims")
             for td in parsed.find("td", "verdict", inside=table)]
    assert [text_of(c) for c in cells] == [m.verdict for r in reports for _, m in r.rows]
    for cell in cells:
        assert "verdict-" + text_of(cell).replace(" ", "-") in cell["classes"]
    # Each verdict appears with its class (the rules' legend names all four), and has its colour.
    for verdict in VERDICTS:
        cls = "verdict-" + verdict.replace(" ", "-")
        assert any(text_of(e) == verdict for e in parsed.find("span", cls)), verdict
        assert f".{cls}{{" in text
    assert not parsed.find("link") and not parsed.find("script")
    assert all(img["attrs"]["src"].startswith("data:image/png;base64,") for img in parsed.find("img"))
    # Markup rendered as tags: the provenance's values and names.
    assert any(text_of(e) == "synthetic" for e in parsed.find("strong"))
    assert {text_of(e) for e in parsed.find("code")} >= {f.name for f in folders}


def test_the_page_opens_with_the_verdicts_per_experiment(everything):
    folders, _, page = everything
    parsed = Page(page.read_text())
    reports = [evaluate(folder) for folder in folders]
    first_table = parsed.find("table")[0]
    assert first_table["ancestors"][-1]["attrs"].get("id") == "summary"
    assert parsed.elements.index(first_table) < parsed.elements.index(parsed.find("section", "experiment")[0])
    header = [text_of(th) for th in parsed.find("th", inside=first_table)]
    assert header == ["experiment", "paper", "trials", *VERDICTS, "claims"]
    rows = parsed.find("tr", inside=first_table)[1:]
    assert len(rows) == len(reports) + 1                 # one per run, and all of them
    for row, r in zip(rows, reports):
        cells = [text_of(td) for td in parsed.find("td", inside=row)]
        verdicts = [m.verdict for _, m in r.rows]
        assert cells == [r.experiment, EXPERIMENTS[r.experiment].paper, str(len(r.trials)),
                         *(str(verdicts.count(v)) for v in VERDICTS), str(len(r.rows))]
    total = [text_of(td) for td in parsed.find("td", inside=rows[-1])]
    assert total[-1] == str(sum(len(r.rows) for r in reports))
    for row in rows:                      # a count is coloured by its verdict, a zero is not
        for verdict, td in zip(VERDICTS, parsed.find("td", inside=row)[3:]):
            coloured = "verdict-" + verdict.replace(" ", "-") in td["classes"]
            assert coloured == (text_of(td) != "0"), (verdict, text_of(td))


def test_each_experiment_shows_its_figures_beside_its_claims(everything):
    folders, md, page = everything
    parsed, text = Page(page.read_text()), md.read_text()
    assert ".body{display:grid" in page.read_text()
    sections = parsed.find("section", "experiment")[:-1]              # the last one is the rules
    assert len(sections) == len(folders)
    # Two runs of serial-position: the second's figures go beside the first's, not over them.
    directories = [f"figures/{name}" for name in REPORTED] + [f"figures/{folders[-1].name}"]
    for section, folder, directory in zip(sections, folders, directories):
        run = read_run(folder)
        (body,) = parsed.find("div", "body", inside=section)
        (claims,) = parsed.find("table", "claims", inside=body)
        assert len(parsed.find("td", "verdict", inside=claims)) == len(EXPERIMENTS[run.experiment].claims)
        (figures,) = parsed.find("div", "figures", inside=body)
        stems = [img["attrs"]["alt"] for img in parsed.find("img", inside=figures)]
        assert {f"over-time-{plots.file_stem(learner)}" for learner in run.learners} <= set(stems)
        assert KIND_FIGURE[EXPERIMENTS[run.experiment].kind] in stems
        assert sorted(stems) == sorted(p.stem for p in (md.parent / directory).glob("*.png"))
        assert all(f"![{stem}]({directory}/{stem}.png)" in text for stem in stems)
        compared = parsed.find("div", "comparison", inside=section)
        assert len(compared) == (1 if run.config["learner_settings"] else 0)


# --------------------------------------------------------------------------- figures


def test_plot_functions_draw_from_a_table(runs):
    table = read_run(runs["serial-position"]).records
    for figure in (plots.serial_position(table), plots.memorized_vs_trained(table),
                   plots.performance_over_presentations(table, "hybrid")):
        assert figure.axes and figure.axes[0].has_data()
    written = plots.plot_run(runs["serial-position"])
    assert {p.suffix for p in written} == {".png", ".pdf"} and all(p.stat().st_size > 0 for p in written)


def test_profile_colours_are_single_hex_strings():
    for profile in [p for e in EXPERIMENTS.values() for p in e.profiles]:
        assert plots.colour(profile).startswith("#") and len(plots.colour(profile)) == 7


def test_long_sequences_plot(tmp_path, tiny_config, fake_lab):
    config = tiny_config("sequence-length", trials=1, seed=0, items=16, train_per_class=15,
                         test_per_class=4, epochs=1, batch_size=16)
    store = run_experiment(config, fake_lab, tmp_path, progress=False).store
    assert plots.plot_run(store.path)


def test_the_verdict_sentence_counts_claims_holding_with_weaker_effects():
    from pathlib import Path

    from metaplastic.claims import HOLDS, NOT_SHOWN, Claim, Effect, Measured, PaperEffect
    from metaplastic.report.evaluation import RunReport, verdict_sentence

    paper = PaperEffect(1e-50, 100, "two_sample", "two")          # d about 2.3
    claim = Claim("x", "x", "p", "rule", lambda table: None, paper)
    weak = Measured("s", "t", 0.01, HOLDS, effect=Effect(0.9, 0.2, 1.6, "two_sample"))
    large = Measured("s", "t", 0.01, HOLDS, effect=Effect(2.5, 1.5, 3.5, "two_sample"))
    unshown = Measured("s", "t", 0.2, NOT_SHOWN, effect=Effect(0.1, -0.5, 0.7, "two_sample"))
    report = RunReport(Path("r"), "serial-position", "Fig. 2", 0, [0, 1, 2], None, [],
                       [(claim, weak), (claim, large), (claim, unshown)])
    sentence = verdict_sentence([report])
    assert sentence.startswith("3 claims: 2 holds, 1 not shown.")
    assert "Of the 2 that hold and have a paper's effect size to compare, 1 hold with an effect " \
           "weaker than the paper's." in sentence


def test_a_run_on_calibration_trials_is_marked_in_sample(tmp_path, fake_lab, tiny_config):
    """Seed 0's first trials were seen by the calibrations: the report says so in its header and
    beside each verdict; a seed no calibration used is held out."""
    from metaplastic.calibration import CALIBRATION_USES, in_sample, is_held_out
    from metaplastic.lab import run_experiment

    assert in_sample(0, [0, 1]).trials == [0, 1] and not in_sample(0, [7, 8])
    assert is_held_out(101) and not is_held_out(0)
    assert all(use.overlap(use.seed, use.trials) == list(use.trials) for use in CALIBRATION_USES)
    texts = {}
    for seed in (0, 101):
        run = run_experiment(tiny_config(seed=seed, learners="hybrid,conventional,stable"), fake_lab,
                             tmp_path / f"runs{seed}", progress=False)
        md, page = write_report([run.store.path], tmp_path / f"report{seed}")
        texts[seed] = (md.read_text(), page.read_text())
    md, page = texts[0]
    assert "**In-sample: serial-position (seed 0)" in md and "IN-SAMPLE" in md
    assert "(seed 0, in-sample)" in md and 'class="warning"' in page
    md, page = texts[101]
    assert "In-sample" not in md and "in-sample" not in md and "held out" in md
    assert 'class="warning"' not in page


def test_claims_table_script_judges_a_run_whole_and_on_its_first_trials(runs, capsys):
    """scripts/claims_table.py: one run gives a row per claim with the report's verdicts; runs side
    by side on fewer trials than the judge wants are all inconclusive; asking for more
    trials than a run has, or runs of two experiments side by side, is one line and exit code 2."""
    import importlib.util

    from metaplastic.claims import MIN_TRIALS

    spec = importlib.util.spec_from_file_location("claims_table", REPO / "scripts" / "claims_table.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    folder = runs["serial-position"]
    report = evaluate(folder)
    assert script.main([str(folder)]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][2:]
    assert len(table) == len(report.rows)
    assert [line.split(" | ")[3] for line in table] == [f"**{m.verdict}**" for _, m in report.rows]

    too_few = str(MIN_TRIALS - 1)
    assert script.main([f"{folder}:first", f"{folder}:second", "--first-trials", too_few]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert rows[0] == "| claim | first | second |"
    assert all(line.endswith("| inconclusive | inconclusive |") for line in rows[2:])

    assert script.main([str(folder), "--first-trials", "5"]) == 2
    assert "fewer than 5 trials" in capsys.readouterr().err
    assert script.main([str(folder), str(runs["poisoning"])]) == 2
    assert "of one experiment" in capsys.readouterr().err

    records = read_run(folder).records
    last = records[records["presentation"] == records["presentation"].max()]
    assert script.main([str(folder), "--final"]) == 0
    out = capsys.readouterr().out
    for learner, rows in last.groupby("learner"):
        counts = ", ".join(str(int(c)) for c in rows.groupby("trial")["memorized"].sum())
        assert f"| {learner} | {counts} |" in out
