import pytest
from gate.orders import accept_order


@pytest.mark.unit
def test_an_order_gets_an_id_and_keeps_its_user() -> None:
    order = accept_order("u-1", 1250)
    assert order.user == "u-1" and order.amount_cents == 1250 and order.order_id >= 1000


@pytest.mark.unit
def test_an_order_without_a_user_is_refused() -> None:
    with pytest.raises(ValueError, match="end user"):
        accept_order("", 1250)
