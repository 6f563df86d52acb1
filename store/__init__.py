"""The store layer: every table driftscope keeps, behind named functions.

One package owns the database: connections and the writer (``connection``), the schema of
every table family and its forward migrations, run once when a store is opened
(``schema_raw``, ``schema_rollups``, ``schema_state``, ``migrations``), the one definition
of end-of-data (``raw``), findings with the one severity order (``findings``), invariants,
job runs, dispatch decisions, investigations and the reports index, time conversions
(``timeconv``) and the SQL that differs per backend (``dialect_duckdb``; the ClickHouse
backend adds its own dialect module beside it). The stages above read frozen values,
dicts or Arrow tables from here; they do not write SQL against these tables themselves.
"""

from store.connection import Store, fetch_arrow, open_readonly, query_readonly
from store.errors import StoreError, StoreLockedError, StoreVersionError

__all__ = [
    "Store", "StoreError", "StoreLockedError", "StoreVersionError", "fetch_arrow", "open_readonly", "query_readonly",
]  # fmt: skip
