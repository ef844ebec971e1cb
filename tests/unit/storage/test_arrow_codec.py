"""Events → Arrow: the sliced conversion gives the table of a single pass, row for row."""

from __future__ import annotations

import numpy as np

from tradelog.model.events import Event, EventKind, Side
from tradelog.model.ids import id_hashes
from tradelog.storage.arrow_codec import EVENT_SCHEMA, EVENT_SLICE, _events_slice, events_to_arrow

KINDS = (EventKind.ORDER_NEW, EventKind.QUOTE, EventKind.FILL, EventKind.SYSTEM)


def _event(i: int) -> Event:
    kind = KINDS[(i * 7) % len(KINDS)]  # kinds interleaved, so every slice regroups rows
    ev = Event(event_id=f"E{i}", kind=kind, ts=1_000 + i, ts_ingest=2_000 + i, source="s",
               seq=i + 1, symbol="AAPL", attrs={"n": i} if i % 5 == 0 else None)  # fmt: skip
    if kind is EventKind.QUOTE:
        ev.bid, ev.ask = 100.0 + i, 100.5 + i
    elif kind is EventKind.FILL:
        ev.order_id, ev.side, ev.last_qty, ev.last_px = f"O{i}", Side.BUY, 1.0 + i, 99.0
    elif kind is EventKind.ORDER_NEW:
        ev.order_id, ev.side, ev.qty, ev.price = f"O{i}", Side.SELL, 10.0, 101.25
    else:
        ev.message = f"m{i}"
    return ev


def test_sliced_conversion_equals_one_pass_in_event_order() -> None:
    events = [_event(i) for i in range(2 * EVENT_SLICE + 37)]
    hashes = id_hashes([e.event_id for e in events])
    table = events_to_arrow(events, hashes)
    assert table.schema == EVENT_SCHEMA
    assert table.num_rows == len(events)
    assert table.to_pylist() == _events_slice(events, hashes).to_pylist()
    assert table.column("seq").to_pylist() == list(range(1, len(events) + 1))
    assert np.array_equal(table.column("id_hash").to_numpy(), hashes)
    assert table.column("attrs")[5].as_py() == '{"n":5}'
    assert events[1].kind is EventKind.SYSTEM
    assert table.column("message")[1].as_py() == "m1"
    assert table.column("bid")[1].as_py() is None  # a column the kind cannot carry
