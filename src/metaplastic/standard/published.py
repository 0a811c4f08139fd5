"""The published numbers the tables are set beside.

van de Ven & Tolias 2018, *Three scenarios for continual learning* (arXiv 1809.10635),
Tables 3-4: average test accuracy (%) over all tasks after the last one, 20 seeds, in their
protocol (Adam, lr 1e-4; Permuted MNIST 5,000 and Split MNIST 2,000 iterations of batch 128
per task; full test sets), which this package reduces (see each table).
"""

#: Published average accuracy (%) per scenario and method name of this package.
PUBLISHED: dict[str, dict[str, float]] = {
    "permuted": {"naive": 78.51, "ewc": 94.31, "online-ewc": 94.42, "si": 95.33, "lwf": 72.64,
                 "joint": 97.59},
    "split-task": {"naive": 85.15, "ewc": 85.48, "si": 99.14, "lwf": 99.60, "joint": 99.64},
    "split-class": {"naive": 19.90, "ewc": 19.90, "si": 20.04, "lwf": 24.17, "joint": 97.93},
}

#: Published rows with no counterpart run here.
NOT_RUN: dict[str, dict[str, float]] = {"split-class": {"DGR (generative replay)": 91.24}}

SOURCE = "van de Ven & Tolias 2018 (arXiv 1809.10635), Tables 3-4, 20 seeds"
