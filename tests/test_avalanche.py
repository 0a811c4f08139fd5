import warnings
from collections import defaultdict

import pytest
import torch

from metaplastic import MetaplasticSGD, plasticity_scale
from metaplastic.avalanche import MetaplasticPlugin


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 6))


def make_optimizer(model, seed=0):
    return MetaplasticSGD(model.parameters(), lr=0.2, alpha=20.0, flexibility="hybrid",
                          generator=torch.Generator().manual_seed(seed))


def experiences(n=3):
    """n experiences of two classes each: (inputs, labels)."""
    g = torch.Generator().manual_seed(1)
    out = []
    for e in range(n):
        y = torch.arange(2 * e, 2 * e + 2).repeat(30)
        out.append((torch.randn(60, 8, generator=g) + y[:, None].float(), y))
    return out


class StandIn:
    """The strategy protocol as Avalanche 0.6's BatchObservation runs it, reduced to its bones.

    ``train(experience)`` triggers ``before_training``, rebuilds the optimizer's
    state (``make_optimizer``: always the first time, then as ``reset`` says),
    triggers ``before_training_exp``, trains, triggers ``after_training_exp``.
    ``reset="recreate"`` builds a new optimizer for every experience instead.
    """

    def __init__(self, model, optimizer, plugins, reset=False):
        self.model, self.optimizer, self.plugins, self.reset = model, optimizer, plugins, reset
        self.first = True

    def _trigger(self, event):
        for plugin in self.plugins:
            getattr(plugin, event)(self)

    def train(self, experience):
        self._trigger("before_training")
        if self.reset == "recreate" and not self.first:
            self.optimizer = make_optimizer(self.model, seed=99)
        elif self.first or self.reset:
            self.optimizer.state = defaultdict(dict)          # what update_optimizer(reset_state=True) does
        self.first = False
        self._trigger("before_training_exp")
        x, y = experience
        for start in range(0, len(y), 10):
            self.optimizer.zero_grad()
            torch.nn.functional.cross_entropy(self.model(x[start:start + 10]),
                                              y[start:start + 10]).backward()
            self.optimizer.step()
        self._trigger("after_training_exp")


def check_rule_survived(strategy, model, start, flexibility):
    weight = model[0].weight
    state = strategy.optimizer.state[weight]
    assert torch.equal(state["initial"], start)               # w_0: before the first experience
    assert torch.equal(strategy.optimizer.flexibility_of(weight), flexibility)
    strategy.optimizer.consolidate()
    expected = plasticity_scale(flexibility, weight.detach() - start, 20.0)
    assert torch.equal(state["scale"], expected)
    assert state["scale"].min() < 0.9                          # the rule is on: some S shrank


@pytest.mark.parametrize("reset", [False, True, "recreate"])
def test_plugin_keeps_the_rule_through_optimizer_resets_of_the_strategy_protocol(reset):
    model = make_model()
    optimizer = make_optimizer(model)
    flexibility = optimizer.flexibility_of(model[0].weight)
    start = model[0].weight.detach().clone()
    plugin = MetaplasticPlugin()
    strategy = StandIn(model, optimizer, [plugin], reset=reset)
    for experience in experiences():
        strategy.train(experience)
    assert plugin.boundaries == 3
    check_rule_survived(strategy, model, start, flexibility)


def test_without_the_plugin_a_reset_silently_moves_the_initial_weights():
    # The failure the plugin exists for: after a reset, w_0 becomes the trained weights.
    model = make_model()
    strategy = StandIn(model, make_optimizer(model), [], reset=True)
    start = model[0].weight.detach().clone()
    for experience in experiences():
        strategy.optimizer.consolidate()
        strategy.train(experience)
    assert not torch.equal(strategy.optimizer.state[model[0].weight]["initial"], start)


def test_plugin_refuses_another_optimizer():
    model = make_model()
    strategy = StandIn(model, torch.optim.SGD(model.parameters(), lr=0.1), [MetaplasticPlugin()])
    with pytest.raises(TypeError, match="needs the strategy's optimizer to be a MetaplasticSGD"):
        strategy.train(experiences(1)[0])


# ------------------------------------------------------------------ the real Avalanche


def avalanche_benchmark():
    from avalanche.benchmarks import nc_benchmark

    class Tensors(torch.utils.data.TensorDataset):
        def __init__(self, x, y):
            super().__init__(x, y)
            self.targets = y.tolist()

    x = torch.cat([e[0] for e in experiences()])
    y = torch.cat([e[1] for e in experiences()])
    return nc_benchmark(Tensors(x, y), Tensors(x, y), n_experiences=3, task_labels=False,
                        fixed_class_order=list(range(6)))


@pytest.mark.parametrize("reset", [False, True, "recreate"])
def test_plugin_with_avalanche_naive(reset):
    warnings.filterwarnings("ignore", module="qpsolvers")
    pytest.importorskip("avalanche")
    from avalanche.training.supervised import Naive

    class Strategy(Naive):
        def make_optimizer(self, **kwargs):
            if reset == "recreate" and self.optimized_param_id is not None:
                self.optimizer = make_optimizer(self.model, seed=99)
            kwargs["reset_optimizer_state"] = bool(reset) or kwargs.get("reset_optimizer_state", False)
            super().make_optimizer(**kwargs)

    model = make_model()
    optimizer = make_optimizer(model)
    flexibility = optimizer.flexibility_of(model[0].weight)
    start = model[0].weight.detach().clone()
    plugin = MetaplasticPlugin()
    strategy = Strategy(model=model, optimizer=optimizer, train_mb_size=10, train_epochs=1,
                        plugins=[plugin], evaluator=None)
    for experience in avalanche_benchmark().train_stream:
        strategy.train(experience)
    assert plugin.boundaries == 3
    check_rule_survived(strategy, model, start, flexibility)
