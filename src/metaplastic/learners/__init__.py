"""Established continual-learning methods, trained beside the flexibility profiles.

A *learner* is what one stacked network is trained as (docs/architecture.md): a flexibility
profile with :class:`~metaplastic.MetaplasticSGD`, or one of the baseline methods of this
package. The paper argues that its rule needs no extra machinery, unlike EWC (a Fisher
matrix), synaptic intelligence (a path integral) or replay (stored examples); the baselines let
the lab run that comparison on the paper's own protocols (docs/baselines.md).

One module per method (``ewc``, ``si``, ``replay``, ``meta_adam``) holds its settings (a
:class:`~metaplastic.learners.base.Method` with defaults and valid ranges), its math and its
trainer, and registers itself; every module of this package is imported here, so a new
method is one new file (plus its test and docs). EWC, SI and replay take plain SGD steps at the
run's learning rate, as the conventional network does, so they differ from it only by their
method; their quadratic penalties are taken by an implicit step
(:func:`~metaplastic.learners.base.proximal_sgd_step`).
"""

from __future__ import annotations

import importlib
import pkgutil

from metaplastic.learners.base import (
    MetaplasticTrainer,
    Method,
    Range,
    Trainer,
    parameters,
    stacked_losses,
    state_bytes_per_weight,
)
from metaplastic.learners.registry import FAMILIES, is_baseline, parse, register

_INFRASTRUCTURE = {"base", "registry"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["FAMILIES", "MetaplasticTrainer", "Method", "Range", "Trainer", "is_baseline",
           "parameters", "parse", "register", "stacked_losses", "state_bytes_per_weight"]
