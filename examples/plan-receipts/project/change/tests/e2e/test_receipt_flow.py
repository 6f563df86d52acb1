import json
from pathlib import Path

import pytest
from gate.orders import accept_order
from gate.receipts import DirectoryStorage, store_receipt


@pytest.mark.e2e
def test_every_accepted_order_gets_a_receipt(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path)
    orders = [accept_order(f"u-{i}", 100 * i + 1) for i in range(1, 4)]
    keys = [store_receipt(storage, o) for o in orders]
    stored = sorted(json.loads((tmp_path / k).read_text())["order_id"] for k in keys)
    assert stored == sorted(o.order_id for o in orders)
