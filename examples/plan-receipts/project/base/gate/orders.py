"""Order acceptance: validate, assign an id, and say who ordered."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

_IDS = itertools.count(1000)


@dataclass(frozen=True)
class Order:
    """An accepted order: id, end user and amount in cents."""

    order_id: int
    user: str
    amount_cents: int


def accept_order(user: str, amount_cents: int) -> Order:
    """An accepted order; ValueError for an order nobody should accept."""
    if not user:
        raise ValueError("an order needs an end user")
    if amount_cents <= 0:
        raise ValueError("an order needs a positive amount")
    return Order(next(_IDS), user, amount_cents)
