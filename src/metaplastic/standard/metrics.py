"""The field's measures, from the accuracy matrix R.

``R[i, j]`` is the accuracy on task j's evaluation digits after training task i (rows: tasks
trained, columns: tasks; NaN where not evaluated). With T tasks:

* average accuracy ``ACC = mean_j R[T-1, j]`` (Lopez-Paz & Ranzato);
* backward transfer ``BWT = mean_{j<T-1} (R[T-1, j] - R[j, j])``;
* forgetting as Avalanche defines it (``StreamForgetting``): accuracy right after training a
  task minus its final accuracy, ``mean_{j<T-1} (R[j, j] - R[T-1, j]) = -BWT``;
* forgetting as Chaudhry et al. 2018 define it: best accuracy before the end minus final,
  ``mean_{j<T-1} (max_{j<=i<T-1} R[i, j] - R[T-1, j])``;
* the lowest accuracy of any task over the stream, ``min_{i>=j} R[i, j]`` (entries evaluated).
"""

from __future__ import annotations

import numpy as np


def average_accuracy(R: np.ndarray) -> float:
    return float(np.nanmean(R[-1]))


def backward_transfer(R: np.ndarray) -> float:
    if len(R) < 2:
        return float("nan")
    T = R.shape[1]
    return float(np.nanmean(R[-1, : T - 1] - np.diag(R)[: T - 1]))


def forgetting_avalanche(R: np.ndarray) -> float:
    return -backward_transfer(R)


def forgetting_chaudhry(R: np.ndarray) -> float:
    if len(R) < 2:
        return float("nan")
    T = R.shape[1]
    best = [np.nanmax(R[j: T - 1, j]) for j in range(T - 1)]
    return float(np.nanmean(np.array(best) - R[-1, : T - 1]))


def lowest_accuracy(R: np.ndarray) -> float:
    if len(R) < 2:
        return float(np.nanmin(R[-1]))
    learned = np.tril(np.ones_like(R, dtype=bool))       # i >= j: the task has been trained
    return float(np.nanmin(np.where(learned, R, np.nan)))


def just_learned(R: np.ndarray) -> list[float]:
    """Accuracy on task k right after training it, over k (the diagonal)."""
    return [float(v) for v in np.diag(R)] if len(R) > 1 else []


def summarize(R: np.ndarray) -> dict[str, float]:
    """Every measure of this module from one run's R."""
    return {"acc": average_accuracy(R), "bwt": backward_transfer(R),
            "forgetting_avalanche": forgetting_avalanche(R), "forgetting_chaudhry": forgetting_chaudhry(R),
            "lowest": lowest_accuracy(R)}


def stream_accuracy(R: np.ndarray, sizes: list[int]) -> float:
    """Accuracy over the whole final evaluation stream, weighted by each task's digits (as
    Avalanche's ``Top1_Acc_Stream``, which counts digits, not tasks)."""
    weights = np.asarray(sizes, dtype=float)
    return float(np.sum(R[-1] * weights) / weights.sum())
