"""metaplastic.standard: tiny runs of each scenario from the local MNIST folder, the measures
from R against Avalanche's metrics, resuming, the search and the report."""

import json
import warnings

import numpy as np
import pytest

pytest.importorskip("avalanche")
warnings.filterwarnings("ignore", module="qpsolvers")

from metaplastic.standard import metrics  # noqa: E402
from metaplastic.standard.__main__ import main  # noqa: E402
from metaplastic.standard.data import load_mnist, to_inputs  # noqa: E402
from metaplastic.standard.runner import load_results, matrix, result_path  # noqa: E402
from metaplastic.standard.scenarios import Protocol, build_benchmark  # noqa: E402

# 2 x 64 digits per task: every digit appears in each Permuted task (Avalanche needs all ten).
TINY = ["--tasks", "2", "--iterations", "2", "--batch", "64", "--eval-per-task", "200"]


def _run(tmp_path, shared_data, scenario, methods, seeds="0,1", extra=()):
    out = tmp_path / scenario
    main(["run", "--scenario", scenario, *TINY, *extra, "--methods", methods, "--seeds", seeds,
          "--out", str(out), "--data-dir", str(shared_data)])
    return out


@pytest.mark.parametrize("scenario", ["permuted", "split-task", "split-class"])
def test_tiny_run_writes_the_matrix_and_the_measures(tmp_path, shared_data, scenario):
    out = _run(tmp_path, shared_data, scenario, "naive,metaplastic")
    results = load_results(out)
    assert sorted((r["method"], r["seed"]) for r in results) == [
        ("metaplastic", 0), ("metaplastic", 1), ("naive", 0), ("naive", 1)]
    for r in results:
        R = matrix(r)
        assert R.shape == (2, 2) and np.isnan(R[0, 1]) and not np.isnan(R[np.tril_indices(2)]).any()
        assert set(r["measures"]) == {"acc", "bwt", "forgetting_avalanche", "forgetting_chaudhry", "lowest"}
        assert r["measures"]["acc"] == pytest.approx(np.mean(R[-1]))
        assert r["steps"] == 4 and r["seconds_per_step"] > 0
    by_seed = {(r["method"], r["seed"]): r for r in results}
    assert by_seed["metaplastic", 0]["state_bytes_per_weight"] > 0
    assert by_seed["naive", 0]["state_bytes_per_weight"] == 0


def test_measures_from_R_equal_avalanches(tmp_path, shared_data):
    # Three tasks so that forgetting averages over two; replay makes it differ from fine-tuning.
    out = _run(tmp_path, shared_data, "split-class", "naive,replay", seeds="0",
               extra=["--tasks", "3", "--iterations", "6"])
    for r in load_results(out):
        R, avalanche = matrix(r), r["avalanche"]
        assert avalanche["StreamForgetting/eval_phase/test_stream"] == pytest.approx(
            metrics.forgetting_avalanche(R))
        assert avalanche["StreamBWT/eval_phase/test_stream"] == pytest.approx(metrics.backward_transfer(R))
        assert avalanche["Top1_Acc_Stream/eval_phase/test_stream/Task000"] == pytest.approx(
            metrics.stream_accuracy(R, r["eval_sizes"]))
        for j in range(2):
            key = f"ExperienceForgetting/eval_phase/test_stream/Task000/Exp{j:03d}"
            assert avalanche[key] == pytest.approx(R[j, j] - R[-1, j])


def test_measures_on_a_known_matrix():
    R = np.array([[0.9, np.nan, np.nan], [0.7, 0.8, np.nan], [0.8, 0.5, 0.95]])
    assert metrics.average_accuracy(R) == pytest.approx((0.8 + 0.5 + 0.95) / 3)
    assert metrics.backward_transfer(R) == pytest.approx(((0.8 - 0.9) + (0.5 - 0.8)) / 2)
    assert metrics.forgetting_avalanche(R) == pytest.approx(0.2)
    assert metrics.forgetting_chaudhry(R) == pytest.approx(((0.9 - 0.8) + (0.8 - 0.5)) / 2)
    assert metrics.lowest_accuracy(R) == pytest.approx(0.5)
    assert metrics.just_learned(R) == pytest.approx([0.9, 0.8, 0.95])


def test_a_finished_run_is_skipped_and_another_protocol_refused(tmp_path, shared_data):
    out = _run(tmp_path, shared_data, "split-task", "naive", seeds="0")
    path = result_path(out, "naive", 0)
    before = path.stat().st_mtime_ns
    _run(tmp_path, shared_data, "split-task", "naive", seeds="0")
    assert path.stat().st_mtime_ns == before
    with pytest.raises(SystemExit, match="another protocol"):
        _run(tmp_path, shared_data, "split-task", "naive", seeds="0", extra=["--iterations", "3"])
    with pytest.raises(SystemExit, match="another protocol"):    # the optimizer is part of the protocol
        _run(tmp_path, shared_data, "split-task", "naive", seeds="0", extra=["--optimizer", "adam"])


def test_same_seed_same_permutations_and_labels_kept(shared_data):
    # Avalanche needs every digit in each task's training and evaluation digits: 128 and 200 suffice.
    protocol = Protocol("permuted", tasks=2, iterations=2, batch=64, eval_per_task=200)
    a, b = (build_benchmark(protocol, 5, str(shared_data)) for _ in range(2))
    x_a = a.train_stream[1].dataset[0][0]
    assert (x_a == b.train_stream[1].dataset[0][0]).all()
    assert not (x_a == build_benchmark(protocol, 6, str(shared_data)).train_stream[1].dataset[0][0]).all()
    # Domain-incremental: every task keeps the digits' own labels on the shared ten outputs.
    # Avalanche regroups the digits by class: find each digit of unpermuted task 0 by its pixels.
    held = load_mnist(str(shared_data), train=False)
    originals = to_inputs(held.images[:200], pad_to=32)
    test = a.test_stream[0].dataset
    for i in range(0, 200, 23):
        x, y, *_ = test[i]
        match = int((originals == x).all(1).nonzero()[0, 0])
        assert int(y) == int(held.labels[match])


@pytest.mark.slow
def test_search_and_report(tmp_path, shared_data):
    search_dir = tmp_path / "search"
    main(["search", "--scenario", "split-class", *TINY, "--out", str(search_dir),
          "--data-dir", str(shared_data), "--methods", "naive,si,metaplastic,metaplastic-mix"])
    record = json.loads((search_dir / "settings.json").read_text())
    assert record["protocol"]["split"] == "validation" and record["seed"] == 100
    assert all(len(record["grids"][m]) == 4 for m in record["grids"])
    assert record["chosen"]["si"]["lr"] == record["chosen"]["naive"]["lr"]
    # Adam for the baselines: only fine-tuning's lr is searched, the rest kept from the SGD search.
    adam_dir = tmp_path / "search-adam"
    adam = ["search", "--scenario", "split-class", *TINY, "--optimizer", "adam", "--out", str(adam_dir),
            "--data-dir", str(shared_data), "--reuse", str(search_dir / "settings.json")]
    main([*adam, "--methods", "naive,si"])
    again = json.loads((adam_dir / "settings.json").read_text())
    assert again["protocol"]["optimizer"] == "adam" and again["grids"]["naive"] == [1e-4, 3e-4, 1e-3, 3e-3]
    assert again["chosen"]["si"] == {"lr": again["chosen"]["naive"]["lr"],
                                     "si_lambda": record["chosen"]["si"]["si_lambda"]}
    with pytest.raises(SystemExit, match="MetaplasticSGD"):
        main([*adam, "--methods", "naive,metaplastic"])
    run_dir = tmp_path / "run"
    main(["run", "--scenario", "split-class", *TINY, "--methods", "naive,si,metaplastic", "--seeds", "0,1",
          "--settings", str(search_dir / "settings.json"), "--out", str(run_dir),
          "--data-dir", str(shared_data)])
    main(["report", str(run_dir), "--out", str(tmp_path / "report")])
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| si |" in text and "19.90" in text and "Settings search" in text
    assert (tmp_path / "report" / "split-class-2-matrix.png").exists()


def test_si_learns_importances_on_the_cpu(shared_data):
    # Avalanche 0.6's own SI snapshots views of the weights on the CPU: importances stay 0.
    import torch

    from metaplastic.standard.methods import CopyingSynapticIntelligence, make_strategy
    from metaplastic.standard.runner import evaluator
    from metaplastic.standard.scenarios import make_model

    benchmark = build_benchmark(Protocol("split-task", tasks=1, iterations=3, batch=64, eval_per_task=50),
                                0, str(shared_data))
    torch.manual_seed(0)
    strategy = make_strategy("si", make_model("split-task"), {"lr": 0.1, "si_lambda": 100.0}, 64,
                             evaluator(), 0)
    strategy.train(benchmark.train_stream[0])
    si = next(p for p in strategy.plugins if isinstance(p, CopyingSynapticIntelligence))
    assert all(v.data.abs().sum() > 0 for v in si.ewc_data[1].values())


def test_the_metaplastic_command_hands_standard_to_its_own_parser(capsys):
    from metaplastic.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["standard", "run", "--help"])
    assert stop.value.code == 0
    assert "--scenario" in capsys.readouterr().out


def test_optimizer_adam_is_for_the_baselines_only():
    import torch

    from metaplastic import MetaplasticSGD
    from metaplastic.standard.__main__ import build_parser
    from metaplastic.standard.methods import make_strategy
    from metaplastic.standard.runner import evaluator
    from metaplastic.standard.scenarios import make_model

    args = build_parser().parse_args(["run", "--scenario", "split-task", "--tasks", "2", "--iterations", "2",
                                      "--out", "x", "--optimizer", "adam"])
    settings = {"lr": 1e-3, "alpha": 10.0, "flexibility": "hybrid"}
    for method in ("naive", "joint"):
        strategy = make_strategy(method, make_model("split-task"), settings, 64, evaluator(), 0,
                                 args.optimizer)
        assert type(strategy.optimizer) is torch.optim.Adam
        assert strategy.optimizer.param_groups[0]["lr"] == 1e-3
    rule = make_strategy("metaplastic", make_model("split-task"), settings, 64, evaluator(), 0,
                         args.optimizer)
    assert isinstance(rule.optimizer, MetaplasticSGD)
    sgd = make_strategy("naive", make_model("split-task"), settings, 64, evaluator(), 0)
    assert type(sgd.optimizer) is torch.optim.SGD
    with pytest.raises(ValueError):
        Protocol("split-task", tasks=2, iterations=2, optimizer="rmsprop")
