"""MetaplasticSGD on the field's standard benchmarks, with Avalanche (docs/standard-benchmarks.md).

Permuted MNIST (domain-incremental) and Split MNIST (task- and class-incremental) in the
sizes of van de Ven & Tolias 2018, built from the local MNIST folder with Avalanche's
benchmark generators; Avalanche's strategies (fine-tuning, EWC, online EWC, SI, LwF, replay,
joint training) against Naive + :class:`~metaplastic.MetaplasticSGD` with
:class:`~metaplastic.avalanche.MetaplasticPlugin`. Run as ``python -m metaplastic.standard``:
``search`` (settings on a validation split), ``run`` (methods x seeds, resumable) and
``report`` (markdown tables and figures). Needs the ``lab`` and ``avalanche`` extras.
"""
