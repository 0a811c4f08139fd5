"""The paper's claims, judged on a records table as strictly as the paper states them.

* :mod:`.rules`: the verdicts, the margins, the test of one part of a claim, ``Claim`` itself;
* :mod:`.judging`: the bookkeeping written once (``judged``), the positions a claim names;
* :mod:`.checks`: what each claim measures;
* :mod:`.catalogue`: every statement of the paper's results, named, experiment by experiment.
"""

from metaplastic.claims.catalogue import (
    ALL_CLAIMS,
    BIASED_CLAIMS,
    BY_NAME,
    FREQUENCY_CLAIMS,
    POISONING_CLAIMS,
    REPETITION_CLAIMS,
    SEQUENCE_LENGTH_CLAIMS,
    SERIAL_POSITION_CLAIMS,
    SINGLE_VALUE_CLAIMS,
)
from metaplastic.claims.rules import (
    CHANCE_MARGIN,
    CONTRADICTED,
    COUNT_MARGIN,
    HOLDS,
    INCONCLUSIVE,
    MIN_TRIALS,
    NOT_SHOWN,
    SIGNIFICANCE,
    VERDICTS,
    Claim,
    Effect,
    Measured,
    PaperEffect,
    Part,
)

__all__ = [
    "ALL_CLAIMS", "BIASED_CLAIMS", "BY_NAME", "CHANCE_MARGIN", "CONTRADICTED", "COUNT_MARGIN",
    "FREQUENCY_CLAIMS", "HOLDS", "INCONCLUSIVE", "MIN_TRIALS", "NOT_SHOWN", "POISONING_CLAIMS",
    "REPETITION_CLAIMS", "SEQUENCE_LENGTH_CLAIMS", "SERIAL_POSITION_CLAIMS", "SIGNIFICANCE",
    "SINGLE_VALUE_CLAIMS", "VERDICTS", "Claim", "Effect", "Measured", "PaperEffect", "Part",
]
