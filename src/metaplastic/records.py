"""The record schema: one row per (trial, learner, presentation, item), shared by the engine that
writes records, the store that keeps them and the reader that reads them.

The schema is a contract: columns are added, never dropped. ``learner`` names what the row's
network was trained as (a flexibility profile or a baseline; written ``profile`` by run folders
before the rename, read through :data:`LEGACY_COLUMNS`). ``schedule`` names the frequency
schedule a trial used ("published row 3", "generated"); empty for other sequences.
"""

from __future__ import annotations

import pandas as pd

RECORD_COLUMNS = ["experiment", "learner", "trial", "seed", "presentation", "item", "item_class",
                  "performance", "p_value", "memorized", "presented_item", "poisoned", "n_items",
                  "schedule"]

#: Columns that later versions added, with the value they mean for older records.
LATER_COLUMNS = {"schedule": ""}

#: Old column names, read as their current ones.
LEGACY_COLUMNS = {"profile": "learner"}

#: The order of a run's records: one writer's table, whatever the trial batches were.
SORT_COLUMNS = ["trial", "learner", "presentation", "item"]


def upgrade(table: pd.DataFrame) -> pd.DataFrame:
    """Records of any version in the current schema: legacy names renamed, later columns filled."""
    table = table.rename(columns={old: new for old, new in LEGACY_COLUMNS.items() if old in table})
    for column, value in LATER_COLUMNS.items():
        if column not in table:
            table[column] = value
    return table


def missing_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in RECORD_COLUMNS if c not in table.columns]
