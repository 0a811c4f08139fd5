"""``python -m metaplastic.standard {search,run,report}``: the standard benchmarks' commands."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import warnings
from pathlib import Path


def _seeds(text: str) -> list[int]:
    """``0-4`` or ``0,1,7``."""
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m metaplastic.standard", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in [("search", "search every method's settings on the validation split"),
                       ("run", "train methods x seeds into a resumable run folder")]:
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--scenario", required=True, choices=("permuted", "split-task", "split-class"))
        sub.add_argument("--tasks", type=int, required=True)
        sub.add_argument("--iterations", type=int, required=True, help="training steps per task")
        sub.add_argument("--batch", type=int, default=128)
        sub.add_argument("--eval-per-task", type=int, help="evaluation digits per task (default: all)")
        sub.add_argument("--eval-mode", default="seen", choices=("seen", "diagonal"),
                         help="seen: every trained task after each; diagonal: the task just trained, "
                              "and every trained one after each --full-every-th task")
        sub.add_argument("--full-every", type=int, default=10)
        sub.add_argument("--out", required=True, help="run folder (outside the repository)")
        sub.add_argument("--data-dir", default="../shared/data", help="folder holding MNIST/raw")
        sub.add_argument("--threads", type=int, default=1, help="torch CPU threads")
        sub.add_argument("--methods", help="comma-separated (default: all)")
        sub.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"),
                         help="the baselines' optimizer: plain SGD (no momentum) or Adam (torch defaults); "
                              "the rule (metaplastic, metaplastic-mix) is MetaplasticSGD whatever this says. "
                              "Recorded in the run folder's protocol (default: sgd)")
    commands.choices["search"].add_argument("--seed", type=int, default=100, help="a seed never reported")
    commands.choices["search"].add_argument(
        "--reuse", help="settings.json of an earlier search: re-search fine-tuning's lr only, and keep "
                        "every other method's setting from that search at the new lr")
    run = commands.choices["run"]
    run.add_argument("--seeds", default="0-4", help="e.g. 0-4 or 0,1,2")
    run.add_argument("--settings", help="settings.json of a search (default: untuned smoke-test settings)")
    report = commands.add_parser("report", help="write report.md and its figures from run folders")
    report.add_argument("run_dirs", nargs="+")
    report.add_argument("--out", required=True, help="report folder")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", module="qpsolvers")
    command = "python -m metaplastic.standard " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.command == "report":
        from metaplastic.standard.report import write_report

        print(write_report([Path(d) for d in args.run_dirs], Path(args.out)))
        return
    import torch

    torch.set_num_threads(args.threads)
    from metaplastic.standard.methods import METHODS
    from metaplastic.standard.scenarios import Protocol

    protocol = Protocol(args.scenario, args.tasks, args.iterations, args.batch, args.eval_per_task,
                        "validation" if args.command == "search" else "test", args.eval_mode, args.full_every,
                        args.optimizer)
    methods = args.methods.split(",") if args.methods else None
    unknown = set(methods or []) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; known: {', '.join(METHODS)}")
    log = _printer()
    if args.command == "search":
        from metaplastic.standard.search import ORDER, search

        reuse = json.loads(Path(args.reuse).read_text()) if args.reuse else None
        search(Path(args.out), protocol, args.seed, args.data_dir, methods or list(ORDER), command, log,
               reuse)
        return
    _run(args, protocol, methods or list(METHODS), command, log)


def _run(args, protocol, methods, command, log) -> None:
    from metaplastic.standard.runner import DEFAULT_SETTINGS, run_many, write_json

    if args.settings:
        search_record = json.loads(Path(args.settings).read_text())
        missing = [m for m in methods if m not in search_record["chosen"]]
        if missing:
            raise SystemExit(f"{args.settings} has no settings for {missing}")
        settings = search_record["chosen"]
        write_json(Path(args.out) / "search.json", search_record)   # the report shows the search
    else:
        log("warning: no --settings: untuned smoke-test settings")
        settings = {m: DEFAULT_SETTINGS for m in methods}
    run_many(Path(args.out), protocol, methods, _seeds(args.seeds), settings, args.data_dir, command, log)


def _printer():
    def log(text: str) -> None:
        print(text, flush=True)
    return log


if __name__ == "__main__":
    main()
