import json
from pathlib import Path

import pytest
from gate.orders import accept_order
from gate.receipts import DirectoryStorage, store_receipt


@pytest.mark.integration
def test_receipt_is_written_to_storage(tmp_path: Path) -> None:
    order = accept_order("u-7", 4200)
    key = store_receipt(DirectoryStorage(tmp_path), order)
    assert json.loads((tmp_path / key).read_text())["order_id"] == order.order_id
