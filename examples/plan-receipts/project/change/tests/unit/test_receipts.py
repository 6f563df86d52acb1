import json

import pytest
from gate.orders import Order
from gate.receipts import receipt_key, render_receipt


@pytest.mark.unit
def test_receipt_renders_the_order() -> None:
    body = json.loads(render_receipt(Order(1001, "u-1", 990)))
    assert body == {"order_id": 1001, "user": "u-1", "amount_cents": 990}


@pytest.mark.unit
def test_receipt_key_is_per_order() -> None:
    assert receipt_key(Order(1001, "u-1", 990)) != receipt_key(Order(1002, "u-1", 990))
