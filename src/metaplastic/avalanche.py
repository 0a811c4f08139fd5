"""Train any Avalanche strategy with the paper's rule: ``MetaplasticPlugin``.

Avalanche (``pip install "metaplastic[avalanche]"``) runs continual-learning
strategies over a stream of experiences. With :class:`MetaplasticSGD` as the
strategy's optimizer and this plugin among its plugins, every experience is
one item of the paper: the plugin calls :meth:`MetaplasticSGD.consolidate` at
each experience boundary, and keeps the rule's per-weight state (initial
weights, flexibilities, S) alive across what Avalanche does to the optimizer
between experiences:

* Avalanche 0.6's ``make_optimizer`` (``BatchObservation``) wipes the whole
  state (``optimizer.state = defaultdict(dict)``) before the first experience,
  and again before each experience when ``reset_optimizer_state=True``; it also
  drops the state of a parameter that model adaptation replaced;
* a strategy may build a new optimizer for each experience.

Without the plugin, the first of those after an experience would make the
next boundary take the trained weights as the initial weights: every drift
would read zero and S would be 1 everywhere, silently turning the rule off.
The plugin remembers the rule's entries (:data:`METAPLASTIC_STATE_KEYS`) by
parameter name, without copying them, and puts them back before each
boundary; momentum buffers are left to Avalanche's reset.

Example (see ``examples/split_mnist_avalanche.py`` for a full script)::

    from avalanche.training.supervised import Naive
    from metaplastic import MetaplasticSGD
    from metaplastic.avalanche import MetaplasticPlugin

    opt = MetaplasticSGD(model.parameters(), lr=0.05, alpha=alpha, flexibility="hybrid")
    strategy = Naive(model=model, optimizer=opt, plugins=[MetaplasticPlugin()])
    for experience in benchmark.train_stream:
        strategy.train(experience)

This module imports without Avalanche (the plugin then is a plain object with
the same callbacks), so the library's tests can exercise it either way.
"""

from __future__ import annotations

from typing import Any

from metaplastic.optim import METAPLASTIC_STATE_KEYS, MetaplasticSGD

try:  # the plugin base class of Avalanche, when it is installed
    from avalanche.core import SupervisedPlugin as _PluginBase
except ImportError:  # pragma: no cover - exercised where avalanche-lib is absent
    _PluginBase = object

__all__ = ["MetaplasticPlugin"]


class MetaplasticPlugin(_PluginBase):
    """Consolidate at each experience boundary; keep the rule's state across optimizer resets.

    The strategy's optimizer must be a :class:`~metaplastic.MetaplasticSGD`
    (a ``TypeError`` says so otherwise). The plugin holds references to the
    optimizer's per-weight tensors, keyed by the model's parameter names, so
    it costs no memory of its own. If a parameter is replaced by one of another
    shape (a growing classifier head), it starts afresh: it draws its
    flexibility and takes its initial weights at the next boundary.

    Attributes:
        boundaries: how many experience boundaries the plugin has marked.
    """

    def __init__(self) -> None:
        super().__init__()
        self.boundaries = 0
        self._kept: dict[str, dict[str, Any]] = {}

    # Avalanche callbacks ------------------------------------------------------------

    def before_training(self, strategy, *args, **kwargs) -> None:
        # Before make_optimizer's first reset: remember what construction drew.
        self._remember(strategy)

    def before_training_exp(self, strategy, *args, **kwargs) -> None:
        # Runs after Avalanche's model adaptation and make_optimizer for this experience.
        optimizer = _metaplastic_optimizer(strategy)
        self._restore(strategy, optimizer)
        optimizer.consolidate()            # experience boundary: S from the drift so far (Eq. 2)
        self.boundaries += 1
        self._remember(strategy)

    def after_training_exp(self, strategy, *args, **kwargs) -> None:
        self._remember(strategy)

    # ------------------------------------------------------------------------------

    def _remember(self, strategy) -> None:
        optimizer = _metaplastic_optimizer(strategy)
        for name, p in strategy.model.named_parameters():
            state = optimizer.state.get(p)
            entries = {k: state[k] for k in METAPLASTIC_STATE_KEYS if state and k in state}
            if entries:
                self._kept[name] = {"shape": tuple(p.shape), "entries": entries}

    def _restore(self, strategy, optimizer: MetaplasticSGD) -> None:
        for name, p in strategy.model.named_parameters():
            kept = self._kept.get(name)
            if kept is None:
                continue
            if kept["shape"] != tuple(p.shape):
                del self._kept[name]          # replaced by a parameter of another shape
                continue
            state = optimizer.state[p]
            for key, value in kept["entries"].items():
                if state.get(key) is not value:
                    state[key] = value


def _metaplastic_optimizer(strategy) -> MetaplasticSGD:
    optimizer = getattr(strategy, "optimizer", None)
    if not isinstance(optimizer, MetaplasticSGD):
        raise TypeError(f"MetaplasticPlugin needs the strategy's optimizer to be a MetaplasticSGD, "
                        f"got {type(optimizer).__name__}; build the strategy with "
                        "optimizer=MetaplasticSGD(model.parameters(), ...)")
    return optimizer
