"""The methods compared, as Avalanche strategies, and the grids their settings are searched on.

Every method trains with plain SGD (no momentum) at a learning rate from the search, on the
same batches; they differ only in their plugin (or, for the rule, the optimizer). Under
``--optimizer adam`` the baselines train with Adam instead; the rule stays MetaplasticSGD. The grids
all have the same number of points (:data:`GRID_POINTS`): the same search budget per method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from avalanche.training.plugins import (
    EWCPlugin,
    LwFPlugin,
    ReplayPlugin,
    SupervisedPlugin,
    SynapticIntelligencePlugin,
)
from avalanche.training.supervised import JointTraining, Naive

from metaplastic import MetaplasticSGD
from metaplastic.avalanche import MetaplasticPlugin
from metaplastic.plasticity import describe_profile, resolve_profile

#: Points in every method's grid: the same search budget for each.
GRID_POINTS = 4
#: Fine-tuning's lr grid under ``--optimizer adam`` (as many points as the SGD grid).
ADAM_LRS = (1e-4, 3e-4, 1e-3, 3e-3)
# Grid ranges, from a first search whose EWC grid (1e2..1e5) diverged at the chosen lr and whose
# SI grid (0.1..100) left SI equal to fine-tuning: Avalanche's EWC uses the squared gradient of
# each batch's mean loss (smaller than a per-digit Fisher), and its SI clips importances at 1e-3
# after scaling them by c = 0.0015, so both need other ranges than the papers' own lambda and c.
#: Online EWC's decay of old importances (van de Ven & Tolias use gamma = 1); fixed, not searched.
ONLINE_EWC_DECAY = 1.0
#: Factors of suggest_alpha's value that the rule's alpha is searched over.
ALPHA_FACTORS = (0.3, 1.0, 3.0, 10.0)
#: The stable-and-flexible mixes searched at the hybrid's alpha (profile descriptions).
MIX_PROFILES = (
    {"profile": "beta", "a": 0.5, "b": 0.5},           # U-shaped: most synapses near f = 0 or 1
    {"profile": "beta", "a": 0.25, "b": 0.25},         # more strongly two-sided
    {"profile": "biased", "a": 0.2, "toward": "stable"},
    {"profile": "biased", "a": 0.2, "toward": "flexible"},
)


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    knob: str | None                 # the setting searched (None: none; joint takes the lr)
    grid: Callable[[dict], list]     # the values tried, from the settings chosen so far
    published: str | None = None     # the row of van de Ven & Tolias's tables it corresponds to
    defaults: dict = field(default_factory=dict)


def _fixed(values):
    return lambda chosen: list(values)


def _alphas(chosen: dict) -> list[float]:
    return [chosen["suggested_alpha"] * k for k in ALPHA_FACTORS]


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("naive", "fine-tuning (no protection)", "lr", _fixed([0.01, 0.03, 0.1, 0.3]), "fine-tuning"),
    Method("ewc", "EWC, one penalty per task (Avalanche EWCPlugin, mode separate)", "ewc_lambda",
           _fixed([1.0, 10.0, 100.0, 1000.0]), "EWC"),
    Method("online-ewc", f"online EWC (EWCPlugin mode online, decay {ONLINE_EWC_DECAY:g})", "ewc_lambda",
           _fixed([1.0, 10.0, 100.0, 1000.0]), "online EWC"),
    Method("si", "synaptic intelligence (SynapticIntelligencePlugin, snapshots copied)", "si_lambda",
           _fixed([10.0, 100.0, 1e3, 1e4]), "SI"),
    Method("lwf", "learning without forgetting (LwFPlugin, alpha 1)", "temperature",
           _fixed([1.0, 2.0, 4.0, 8.0]), "LwF"),
    Method("replay", "experience replay, class-balanced buffer (ReplayPlugin)", "mem_size",
           _fixed([50, 100, 200, 500]), None),
    Method("joint", "joint training on all tasks at once (upper bound)", None, _fixed([]),
           "offline upper bound"),
    Method("metaplastic", "Naive + MetaplasticSGD, hybrid profile (MetaplasticPlugin)", "alpha", _alphas,
           None, {"flexibility": {"profile": "uniform", "low": 0.0, "high": 1.0}}),
    Method("metaplastic-mix", "Naive + MetaplasticSGD, the searched stable-and-flexible mix", "flexibility",
           _fixed(MIX_PROFILES), None),
]}


def make_strategy(method: str, model: torch.nn.Module, settings: dict, batch: int, evaluator,
                  seed: int, optimizer: str = "sgd"):
    """The Avalanche strategy of ``method`` with its ``settings`` (lr and the method's knob).

    ``optimizer`` ("sgd" or "adam") is the baselines' optimizer; the rule (``metaplastic*``)
    is MetaplasticSGD whatever it says, since the rule is an SGD update.
    """
    lr = settings["lr"]
    common = dict(criterion=torch.nn.CrossEntropyLoss(), train_mb_size=batch, train_epochs=1,
                  eval_mb_size=1000, device="cpu", evaluator=evaluator)
    if method.startswith("metaplastic"):
        flexibility = resolve_profile(settings["flexibility"])
        rule = MetaplasticSGD(model.parameters(), lr=lr, alpha=settings["alpha"],
                              flexibility=flexibility, generator=torch.Generator().manual_seed(seed))
        return Naive(model=model, optimizer=rule, plugins=[MetaplasticPlugin()], **common)
    baseline = baseline_optimizer(optimizer, model.parameters(), lr)
    if method == "joint":
        return JointTraining(model=model, optimizer=baseline, **common)
    return Naive(model=model, optimizer=baseline, plugins=_plugins(method, settings), **common)


def baseline_optimizer(name: str, parameters, lr: float) -> torch.optim.Optimizer:
    """Plain SGD (no momentum) or Adam (torch's defaults: betas 0.9, 0.999) at ``lr``."""
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr)
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}; known: sgd, adam")


class CopyingSynapticIntelligence(SynapticIntelligencePlugin):
    """Avalanche 0.6's SI with its two weight snapshots copied, so that it works on the CPU.

    The plugin snapshots weights as ``param.detach().cpu().flatten()``, which on the CPU is a
    view of the live weights, not a copy: the weights before each step (for the path integral)
    and the anchor of the penalty then move with training, the path integral stays 0 and the
    penalty ``(w - anchor)^2`` is 0, so SI trains exactly as fine-tuning (measured: equal
    accuracies at every c). Copying the two snapshots after the plugin takes them restores SI.
    """

    def before_training_exp(self, strategy, **kwargs):
        super().before_training_exp(strategy, **kwargs)
        _copy_in_place(self.ewc_data[0])             # the penalty's anchor: this task's start

    def before_training_iteration(self, strategy, **kwargs):
        super().before_training_iteration(strategy, **kwargs)
        _copy_in_place(self.syn_data["old_theta"])   # the weights before this step


def _copy_in_place(snapshots: dict) -> None:
    for value in snapshots.values():
        value.data = value.data.clone()


def _plugins(method: str, settings: dict) -> list[SupervisedPlugin]:
    if method == "naive":
        return []
    if method == "ewc":
        return [EWCPlugin(settings["ewc_lambda"], mode="separate")]
    if method == "online-ewc":
        return [EWCPlugin(settings["ewc_lambda"], mode="online", decay_factor=ONLINE_EWC_DECAY)]
    if method == "si":
        return [CopyingSynapticIntelligence(si_lambda=settings["si_lambda"])]
    if method == "lwf":
        return [LwFPlugin(alpha=1.0, temperature=settings["temperature"])]
    if method == "replay":
        return [ReplayPlugin(mem_size=int(settings["mem_size"]))]
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def describe_settings(settings: dict) -> dict:
    """Settings as plain data (profiles as their descriptions) for the JSON records."""
    out = dict(settings)
    if "flexibility" in out and not isinstance(out["flexibility"], dict):
        out["flexibility"] = describe_profile(resolve_profile(out["flexibility"]))
    return out


# ---------------------------------------------------------------------- costs


def state_bytes(method: str, strategy) -> int:
    """Bytes the method keeps beyond the model and plain SGD, measured after the stream."""
    if method.startswith("metaplastic"):
        return sum(_tensor_bytes(v) for s in strategy.optimizer.state.values()
                   for k, v in s.items() if k != "momentum_buffer")
    plugin = next((p for p in strategy.plugins if not _is_evaluation(p)), None)
    if isinstance(plugin, EWCPlugin):
        return sum(_tensor_bytes(pd) for store in (plugin.saved_params, plugin.importances)
                   for per_exp in store.values() for pd in per_exp.values())
    if isinstance(plugin, SynapticIntelligencePlugin):
        tensors = [t for d in plugin.ewc_data for t in d.values()]
        tensors += [t for d in plugin.syn_data.values() for t in d.values()]
        return sum(_tensor_bytes(t) for t in tensors)
    if isinstance(plugin, LwFPlugin):
        previous = plugin.lwf.prev_model
        return 0 if previous is None else sum(_tensor_bytes(p) for p in previous.parameters())
    if isinstance(plugin, ReplayPlugin):
        buffer = plugin.storage_policy.buffer
        x, *_ = buffer[0]
        return len(buffer) * (_tensor_bytes(x) + 8)      # the stored inputs and int64 labels
    return 0


def _is_evaluation(plugin) -> bool:
    return type(plugin).__name__ in ("EvaluationPlugin", "MetaplasticPlugin")


def _tensor_bytes(t) -> int:
    if not isinstance(t, torch.Tensor):
        t = getattr(t, "data", None)       # Avalanche's ParamData wraps its tensor
    return t.numel() * t.element_size() if isinstance(t, torch.Tensor) else 0
