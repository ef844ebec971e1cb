"""The partition state's snapshot: written in pieces into a streaming compressor
(``PartitionState.snapshot``), it must decode to exactly the map a one-piece encoding of
the same state gives, whatever the number of orders relative to the chunk size."""

from __future__ import annotations

import msgspec
import pytest

from tradelog.model.events import OrderStatus, Side
from tradelog.model.orders import OrderState
from tradelog.pipeline.snapshot_codec import SNAPSHOT_MAGIC, unpack_snapshot
from tradelog.pipeline.state import SNAPSHOT_ORDER_CHUNK, PartitionState


def state_with(n: int) -> PartitionState:
    state = PartitionState(2, max_terminal_orders=50)
    for i in range(n):
        order = OrderState(f"O{i:07d}")
        order.symbol = ("AAPL", "MSFT")[i % 2]
        order.side = Side.BUY if i % 3 else Side.SELL
        order.qty, order.filled_qty = 100.0 + i, float(i % 7)
        order.status = OrderStatus.PARTIALLY_FILLED if i % 2 else OrderStatus.ACKED
        order.exec_ids = {f"E{i}"} if i % 5 == 0 else None
        state.orders[order.order_id] = order
    state.seq = 10_000 + n
    return state


@pytest.mark.parametrize(
    "n", [0, 1, 15, 16, SNAPSHOT_ORDER_CHUNK, SNAPSHOT_ORDER_CHUNK + 5, 3 * SNAPSHOT_ORDER_CHUNK]
)
def test_the_streamed_snapshot_holds_every_order_in_order(n: int) -> None:
    state = state_with(n)
    blob = state.snapshot()
    assert blob.startswith(SNAPSHOT_MAGIC)
    payload = msgspec.msgpack.decode(unpack_snapshot(blob))
    slots = payload["slots"]
    assert slots == list(OrderState.__slots__)
    assert [row[slots.index("order_id")] for row in payload["orders"]] == list(state.orders)
    first = state.orders.get("O0000000")
    if first is not None:  # a row is the order's slots, encoded as msgspec encodes them
        expected = msgspec.msgpack.decode(
            msgspec.msgpack.encode([getattr(first, s) for s in slots])
        )
        assert payload["orders"][0] == expected
    assert payload["seq"] == 10_000 + n and payload["partition"] == 2


@pytest.mark.parametrize("n", [0, 7, SNAPSHOT_ORDER_CHUNK + 1])
def test_restore_gives_back_the_same_state(n: int) -> None:
    state = state_with(n)
    restored = PartitionState(2)
    restored.restore(state.snapshot())
    assert restored.snapshot() == state.snapshot()
    assert restored.seq == state.seq and list(restored.orders) == list(state.orders)
    for oid, order in state.orders.items():
        again = restored.orders[oid]
        assert all(getattr(again, s) == getattr(order, s) for s in OrderState.__slots__)


def test_a_plain_msgpack_snapshot_still_restores() -> None:
    """Stores written before snapshots were compressed hold the msgpack itself."""
    state = state_with(20)
    plain = unpack_snapshot(state.snapshot())
    restored = PartitionState(2)
    restored.restore(plain)
    assert restored.snapshot() == state.snapshot()
