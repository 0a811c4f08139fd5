"""Which seeds and trials the calibrations used, so that reported results can be held out.

Trial t of run seed s draws its items, data, initial weights and flexibilities from (s, t)
alone (:mod:`metaplastic.trials`), the same in every experiment: a trial that any calibration
saw is in-sample for every experiment and scale, and its verdicts cannot count as evidence for
the choice that calibration made. Every recorded sweep of docs/calibration.md is listed here;
a new sweep adds its line in the same commit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CalibrationUse:
    """Trials ``trials`` of run seed ``seed`` were seen by the calibration ``what``."""

    what: str
    seed: int
    trials: range

    def overlap(self, seed: int, trials) -> list[int]:
        return sorted(t for t in trials if seed == self.seed and t in self.trials)


#: Every calibration so far (docs/calibration.md).
CALIBRATION_USES: tuple[CalibrationUse, ...] = (
    CalibrationUse("quick preset: lr and alpha sweep, epochs decision, protocol-2 check", 0, range(5)),
    CalibrationUse("quick preset: lr and alpha sweep, epochs decision, protocol-2 check", 1, range(5)),
    CalibrationUse("quick preset: unseen-seed check, epochs decision", 2, range(5)),
    CalibrationUse("paper preset: lr and centring sweep", 0, range(1)),
    CalibrationUse("baselines: settings sweep (scripts/sweep_learners.py)", 0, range(2)),
)


@dataclass(frozen=True)
class InSample:
    """The trials of a run that calibrations saw, and which calibrations."""

    trials: list[int]
    uses: list[str]

    def __bool__(self) -> bool:
        return bool(self.trials)


def in_sample(seed: int | None, trials) -> InSample:
    """The trials of run seed ``seed`` among ``trials`` that any calibration used."""
    if seed is None:
        return InSample([], [])
    hits = {use.what: use.overlap(seed, trials) for use in CALIBRATION_USES}
    hits = {what: found for what, found in hits.items() if found}
    return InSample(sorted({t for found in hits.values() for t in found}), list(hits))


#: A held-out seed for reported results: no calibration used it.
def is_held_out(seed: int) -> bool:
    return all(use.seed != seed for use in CALIBRATION_USES)
