"""The store layer's errors: each message says what is wrong and what to do."""

from __future__ import annotations


class StoreError(RuntimeError):
    """A store cannot be opened or used; the message says why and what to do."""


class StoreLockedError(StoreError):
    """Another process holds the DuckDB file open for writing."""


class StoreVersionError(StoreError):
    """The store was written by a newer driftscope than this one."""
