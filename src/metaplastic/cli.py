"""The ``metaplastic`` command: parse, validate, call; nothing else lives here."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

try:
    from metaplastic import learners
    from metaplastic.config import DEFAULT_BACKBONE, FREQUENCY_SCHEDULE_SOURCES, MAX_SEED, PRECISIONS
    from metaplastic.experiments import BASELINES, EXPERIMENTS, SCALES, make_config
    _MISSING_LAB = None
except ModuleNotFoundError as _error:   # the optimizer alone installed: the lab's extra is missing
    _MISSING_LAB = _error.name


class _Parser(argparse.ArgumentParser):
    """Errors as one line (no usage block): ``metaplastic: error: ...``, exit status 2."""

    def error(self, message):
        self.exit(2, f"metaplastic: error: {message} (see {self.prog} --help)\n")


#: Images per class in a sample grid: one row of the PNG.
MAX_SAMPLES_PER_CLASS = 200


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="metaplastic",
        description="Neuromimetic metaplasticity for continual learning: run the paper's experiments.",
        epilog="Example: metaplastic run serial-position --scale quick --data-dir ../shared/data")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    commands.add_parser("list", help="list the experiments and the scale presets")

    run = commands.add_parser(
        "run", help="run one experiment (resumes a finished or interrupted run of the same settings)",
        description="Train every flexibility profile of an experiment on its item sequences, test "
                    "after every presentation, and write records.parquet, summary.json and "
                    "config.json into a run folder under --out. Re-running the same command skips "
                    "the trials already finished.")
    run.add_argument("experiment", help=f"experiment name: {', '.join(EXPERIMENTS)}")
    run.add_argument("--items", type=int, help="items in the sequence, 3..45 (default: the experiment's)")
    _add_run_options(run)
    for name, kind, text in [("lr", float, "learning rate"), ("alpha", float, "alpha of Eq. 2"),
                             ("feature-scale", float, "features are divided by their global SD "
                                                      "and multiplied by this"),
                             ("width", int, "FC6/FC7 width"), ("epochs", int, "epochs per item"),
                             ("batch-size", int, "mini-batch size"),
                             ("train-per-class", int, "positives per presentation"),
                             ("test-per-class", int, "test images per item")]:
        run.add_argument(f"--{name}", type=kind, help=f"{text} (default: the scale's)")
    run.add_argument("--learners",
                     help="comma-separated learners to train instead of the experiment's profiles: "
                          "profiles (hybrid, conventional, stable, sgd) and baselines ("
                          + "; ".join(f"{name}: {method.summary}"
                                      for name, method in learners.FAMILIES.items())
                          + "; settings as in ewc:lam=1e4,decay=1); 'baselines' stands for "
                          + ",".join(BASELINES) + " (docs/baselines.md)")
    run.add_argument("--center-features", choices=("on", "off"),
                     help="subtract the trial's mean training feature before scaling (default: "
                          "the scale's: " + ", ".join(
                              f"{s.name}: {'on' if s.center_features else 'off'}"
                              for s in SCALES.values()) + ")")

    reproduce = commands.add_parser(
        "reproduce", help="run every experiment of the paper, then write the report",
        description="Run every experiment of the registry in turn (each resumable, finished runs "
                    "are skipped), then write report.md and report.html under OUT/report.")
    _add_run_options(reproduce)

    plot = commands.add_parser("plot", help="redraw the figures of a run folder from its records")
    plot.add_argument("run_dir", help="a run folder (holds records.parquet)")

    commands.add_parser("standard", add_help=False,
                        help="the field's benchmarks (Permuted and Split MNIST) with Avalanche: "
                             "metaplastic standard {search,run,report} ... (docs/standard-benchmarks.md)")
    samples = commands.add_parser("samples", help="save a PNG grid of two-digit MNIST samples",
                                  description="One row per class, a few sample images each.")
    samples.add_argument("--out", default="two-digit-samples.png", help="PNG path to write")
    samples.add_argument("--classes", help="comma-separated classes, e.g. 01,38 (default: all 45)")
    samples.add_argument("--per-class", type=int, default=8, help="images per class (default 8)")
    samples.add_argument("--split", choices=("train", "test"), default="train")
    samples.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    samples.add_argument("--data-dir", help="folder holding MNIST/raw/")

    report = commands.add_parser("report", help="write report.md and report.html for run folders")
    report.add_argument("run_dirs", nargs="+", help="run folders to report on")
    report.add_argument("--out", default="report", help="report folder (default: ./report)")
    return parser


def _add_run_options(command) -> None:
    command.add_argument("--scale", default="quick", help="size preset: " + "; ".join(
        f"{s.name} ({s.description})" for s in SCALES.values()) + " (default: quick)")
    command.add_argument("--trials", type=int, help="independent trials (default: the scale's)")
    command.add_argument("--seed", type=int, default=0,
                         help="run seed; trial t uses (seed, t) (default 0)")
    command.add_argument("--data-dir", help="folder holding MNIST/raw/ (default: $METAPLASTIC_DATA "
                                            "or ~/.cache/metaplastic); downloaded or replaced by a "
                                            "small fallback if missing")
    command.add_argument("--cache-dir", help="feature cache folder (default: $METAPLASTIC_CACHE or "
                                             "~/.cache/metaplastic/features)")
    command.add_argument("--out", default="runs", help="folder for run folders (default: ./runs)")
    command.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    command.add_argument("--backbone", default=DEFAULT_BACKBONE,
                         help="AlexNet conv1..pool5: untrained-s1 (the paper's Table S1 network, "
                              "untrained, seed 0: the same on every machine, and what the presets "
                              "are calibrated on); untrained-s1:seed=K (another draw of it); "
                              "PATH.npy (BVLC's ImageNet weights, the paper's, in the Table S1 network: "
                              "a pickled dict {'conv1': [W, b], ...} as bvlc_alexnet.npy, W "
                              "[kh, kw, in/groups, out], input B, G, R; unpickled, so the file must be "
                              "trusted); PATH.pth (a state dict of the Table S1 network, "
                              "metaplastic.alexnet, or of torchvision's AlexNet, told by its keys); "
                              "imagenet (torchvision's "
                              "variant with its ImageNet weights); untrained or untrained:seed=K "
                              "(torchvision's variant); auto (imagenet if obtainable, else untrained). "
                              "The weights' fingerprint enters the run folder's name; every choice but "
                              "the default warns that the presets were not calibrated for it "
                              "(docs/features.md) (default: untrained-s1)")
    command.add_argument("--mean-image",
                         help="a .npy mean image subtracted from the Table S1 network's 0-255 input "
                              "instead of the mean pixel (123.68, 116.78, 103.94): [3, H, W] B, G, R "
                              "(Caffe's ilsvrc_2012_mean.npy, [3, 256, 256]; its centre 227x227 is "
                              "used), [H, W, 3] R, G, B (MATLAB's averageImage, [227, 227, 3]) or [3] "
                              "a mean pixel B, G, R; it enters the run's identity (default: none)")
    command.add_argument("--dataset-seed", type=int, default=0,
                         help="seed of the two-digit images: which MNIST digits each class's "
                              "images are drawn from (every trial of a run draws from this one image "
                              "set); enters the run folder's name and the feature cache key (default 0)")
    command.add_argument("--frequency-schedules", choices=FREQUENCY_SCHEDULE_SOURCES, default="published",
                         help="frequency experiment (Fig. 5): 'published' takes trial t's schedule from "
                              "the authors' schedules (DATA_DIR/frequency_profiles.csv, rows where "
                              "item i is shown i times; generated instead, with a warning, if absent); "
                              "'generated' draws schedules with the same property (default: published)")
    command.add_argument("--precision", choices=PRECISIONS, default="float32",
                         help="arithmetic of the networks: float32; float64 (the reference float32 is "
                              "checked against; slower); tf32 (float32 weights, TF32 matrix products: "
                              "CUDA only); bfloat16 (float32 weights, bfloat16 matrix products: "
                              "faster on a GPU and on CPUs with bfloat16 instructions, see "
                              "docs/benchmarks.md) (default: float32)")
    command.add_argument("--trial-batch", type=int,
                         help="trials trained at once, stacked in one model; each batch is saved when "
                              "it ends and a trial's records do not depend on its batch (default: as "
                              "many as --memory-budget allows; on the CPU at most 8 networks)")
    command.add_argument("--memory-budget", type=float,
                         help="GiB the trials of one batch may take (default: a quarter of the "
                              "machine's memory on the CPU, 80%% of the GPU's free memory)")
    command.add_argument("--quiet", action="store_true", help="no progress bars")
    command.add_argument("--executor", choices=("local", "ray"), default="local",
                         help="where trials run: in this process (local) or as Ray tasks, one per trial "
                              "batch (--trial-batch), each writing into the run folder (needs "
                              "metaplastic[ray]; docs/cluster.md) (default: local)")
    command.add_argument("--address", help="--executor ray: the Ray cluster to join (auto, HOST:PORT or "
                                           "ray://HOST:PORT; one that does not answer within 10 s is "
                                           "an error); default: start a local cluster")
    command.add_argument("--workers", type=int, help="--executor ray without --address: CPUs of the local "
                                                     "cluster, i.e. trial batches at once (default: all "
                                                     "cores)")
    command.add_argument("--gpus-per-task", type=float,
                         help="--executor ray with --device cuda: GPU share of one trial, in (0, 1] "
                              "(default 1)")


def main(argv: list[str] | None = None) -> int:
    if _MISSING_LAB is not None:
        return _fail(f"the laboratory needs packages that are not installed ({_MISSING_LAB} is "
                     "missing): pip install 'metaplastic[lab]'. The optimizer alone needs only "
                     "torch: from metaplastic import MetaplasticSGD")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["standard"]:          # its own parser: python -m metaplastic.standard
        return _standard(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        return _list()
    if args.command in ("run", "reproduce"):
        try:
            return _run(args) if args.command == "run" else _reproduce(args)
        except KeyboardInterrupt:
            print("interrupted: finished trials are saved; run the same command to resume",
                  file=sys.stderr)
            return 130
    if args.command == "plot":
        return _plot(args)
    if args.command == "report":
        return _report_command(args)
    if args.command == "samples":
        return _samples(args)
    parser.print_help()
    return 2


def _standard(argv: list[str]) -> int:
    try:
        from metaplastic.standard.__main__ import main as standard_main
    except ImportError as error:
        return _fail(f"the standard benchmarks need Avalanche ({error.name} is missing): "
                     "pip install 'metaplastic[lab,avalanche]'")
    standard_main(argv)
    return 0


def _list() -> int:
    print("experiments:")
    for e in EXPERIMENTS.values():
        print(f"  {e.name:<18} {e.paper:<8} {e.description}")
    print("scales:")
    for s in SCALES.values():
        print(f"  {s.name:<8} {s.description}: width {s.width}, {s.train_per_class} train / "
              f"{s.test_per_class} test images per item, {s.epochs} epochs, batch {s.batch_size}, "
              f"lr {s.lr:g}, alpha {s.alpha:g}, feature scale {s.feature_scale:g}, {s.trials} trials")
    return 0


def _fail(message: str) -> int:
    print(f"metaplastic: error: {message}", file=sys.stderr)
    return 2


def _config(args, experiment: str, **sizes):
    return make_config(experiment, args.scale, trials=args.trials, seed=args.seed,
                       device=args.device, backbone=args.backbone, precision=args.precision,
                       frequency_schedules=args.frequency_schedules, dataset_seed=args.dataset_seed,
                       **sizes)


def _run(args) -> int:
    sizes = dict(items=args.items, lr=args.lr, alpha=args.alpha, feature_scale=args.feature_scale,
                 width=args.width, epochs=args.epochs, batch_size=args.batch_size,
                 train_per_class=args.train_per_class, test_per_class=args.test_per_class,
                 center_features=None if args.center_features is None else args.center_features == "on",
                 learners=args.learners)
    return _run_experiments(args, [args.experiment], sizes)


def _reproduce(args) -> int:
    folders: list[Path] = []
    status = _run_experiments(args, list(EXPERIMENTS), {}, folders)
    if status != 0:
        return status
    from metaplastic.report import write_report

    # Exactly the runs of this configuration and seed, not every folder under --out.
    md, page = write_report(folders, Path(args.out) / "report")
    print(f"report: {md} and {page}")
    return 0


def _run_experiments(args, experiments: list[str], sizes: dict, folders: list | None = None) -> int:
    from metaplastic.data.mnist import DataError
    from metaplastic.engine import TrainingDiverged
    from metaplastic.executors import ExecutorError, make_executor
    from metaplastic.feature_cache import CacheError
    from metaplastic.features import BackboneError
    from metaplastic.lab import Lab, run_experiment
    from metaplastic.resources import ResourceError, check_resources
    from metaplastic.results import RunFolderError

    try:
        configs = [_config(args, name, **sizes) for name in experiments]
        executor = make_executor(args.executor, address=args.address, workers=args.workers,
                                 gpus_per_task=args.gpus_per_task)
        for config in configs:
            check_resources(config, None)   # memory, before anything is loaded
        if args.trial_batch is not None and args.trial_batch < 1:
            raise ValueError(f"--trial-batch must be at least 1, got {args.trial_batch}")
        if args.memory_budget is not None and not 0 < args.memory_budget < float("inf"):
            raise ValueError(f"--memory-budget must be a positive number of GiB, got {args.memory_budget}")
    except (ValueError, ResourceError) as error:
        return _fail(str(error))
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return _fail("--device cuda was asked for but no CUDA device is available; use --device cpu")
        index = int(args.device[5:]) if args.device.startswith("cuda:") else 0
        if index >= torch.cuda.device_count():
            return _fail(f"--device {args.device}: this machine has {torch.cuda.device_count()} CUDA "
                         f"device(s), cuda:0..cuda:{torch.cuda.device_count() - 1}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")   # each distinct warning once, as one line
            warnings.showwarning = _show_warning
            lab = Lab(data_dir=args.data_dir, cache_dir=args.cache_dir, backbone=args.backbone,
                      device=args.device, mean_image=args.mean_image)
            for config in configs:
                budget = None if args.memory_budget is None else args.memory_budget * 2**30
                result = run_experiment(config, lab, args.out, progress=not args.quiet,
                                        executor=executor, trial_batch=args.trial_batch,
                                        memory_budget=budget)
                _report(result)
                if folders is not None:
                    folders.append(result.store.path)
    except (DataError, BackboneError, CacheError, RunFolderError, TrainingDiverged, ResourceError,
            ExecutorError) as error:
        return _fail(str(error))
    return 0


def _plot(args) -> int:
    from metaplastic.plots import plot_run
    from metaplastic.results import RunFolderError

    try:
        paths = plot_run(args.run_dir)
    except RunFolderError as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"cannot write the figures into {args.run_dir} ({error.strerror or error})")
    for path in paths:
        print(path)
    return 0


def _samples(args) -> int:
    from metaplastic.data.mnist import DataError, load_digits
    from metaplastic.data.two_digit import CLASSES, save_sample_grid

    classes = tuple(args.classes.split(",")) if args.classes is not None else CLASSES
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        return _fail(f"unknown class(es) {', '.join(map(repr, unknown))}; classes are 'ij' with "
                     "i < j, e.g. 38")
    if not 1 <= args.per_class <= MAX_SAMPLES_PER_CLASS:
        return _fail(f"--per-class must be between 1 and {MAX_SAMPLES_PER_CLASS} (images in one row "
                     f"of the grid), got {args.per_class}")
    if not 0 <= args.seed <= MAX_SEED:
        return _fail(f"--seed must be between 0 and 2**63-1, got {args.seed}")
    if Path(args.out).suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"):
        return _fail(f"--out {args.out}: give an image file name ending in .png (or .jpg, .tif, ...)")
    try:
        digits = load_digits(args.data_dir)
        path = save_sample_grid(digits, args.out, classes=classes, per_class=args.per_class,
                                split=args.split, seed=args.seed)
    except DataError as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"cannot write {args.out} ({error.strerror or error})")
    print(path)
    return 0


def _report_command(args) -> int:
    from metaplastic.report import write_report
    from metaplastic.results import RunFolderError

    if Path(args.out).exists() and not Path(args.out).is_dir():
        return _fail(f"--out {args.out} is a file; the report needs a folder")
    try:
        md, page = write_report(args.run_dirs, args.out)
    except RunFolderError as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"cannot write the report into {args.out} ({error.strerror or error})")
    print(f"report: {md} and {page}")
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"WARNING: {message}", file=sys.stderr)


def _report(result) -> None:
    summary = result.summary or {}
    print(f"{result.store.config.experiment}: run folder {result.store.path}")
    print(f"trained {len(result.trained)} new trial(s) in {result.seconds:.0f} s; "
          f"{len(summary.get('trials', []))} trial(s) in the folder")
    for learner, values in summary.get("learners", {}).items():
        performance = " ".join(f"{v:.2f}" for v in values["final_performance_mean"])
        print(f"  {learner:<14} memorized {values['memorized_mean']:.1f} +- {values['memorized_sd']:.1f}"
              f" of {summary['n_items']}   final performance by item: {performance}")
    if summary.get("comparisons"):
        print("  " + json.dumps(summary["comparisons"]))


if __name__ == "__main__":
    sys.exit(main())
