"""Receipts: rendered for each accepted order and stored in the receipts bucket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from gate.orders import Order


class Storage(Protocol):
    def put_object(self, key: str, body: bytes) -> None: ...


def render_receipt(order: Order) -> bytes:
    """The receipt of ``order`` as JSON bytes (amount in cents, no personal data beyond the user id)."""
    return json.dumps({"order_id": order.order_id, "user": order.user, "amount_cents": order.amount_cents}).encode()


def receipt_key(order: Order) -> str:
    """Where the receipt lives in the bucket."""
    return f"receipts/{order.order_id}.json"


def store_receipt(storage: Storage, order: Order) -> str:
    """Render and store the receipt; return its key."""
    key = receipt_key(order)
    storage.put_object(key, render_receipt(order))
    return key


class DirectoryStorage:
    """Object storage on a local directory (integration tests, local runs)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put_object(self, key: str, body: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
