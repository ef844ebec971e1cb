"""Partition state: everything that depends on history (open orders, recent quotes,
rolling statistics), in one object per partition. Nothing else in the pipeline keeps
history. All of it is keyed by symbol (orders by id, each order having one symbol), so
splitting symbols across partitions gives the same results.

The state can be written as a snapshot and restored; after a crash, the events stored
after the snapshot are replayed through the stages to catch up (see runner.py).
"""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections import deque
from itertools import islice
from typing import Any, Final

import msgspec

from tradelog.model.events import TERMINAL_STATUSES, Event, OrderStatus, Side
from tradelog.model.orders import OrderState
from tradelog.model.positions import PositionState
from tradelog.pipeline.snapshot_codec import SnapshotWriter, unpack_snapshot
from tradelog.surveillance.engine import SurveillanceState

QUOTE_HISTORY: Final = 256
_ORDER_FIELDS: Final = operator.attrgetter(*OrderState.__slots__)
"""An order's slots as a tuple, in ``__slots__`` order (the snapshot's row layout)."""
SNAPSHOT_ORDER_CHUNK: Final = 4096
"""Orders encoded at a time into the snapshot's compressor."""


def _array_header(n: int) -> bytes:
    """The msgpack header of an array of ``n`` items, in the shortest form (as msgspec
    writes it).

    >>> [_array_header(n).hex() for n in (3, 16, 70_000)]
    ['93', 'dc0010', 'dd00011170']
    """
    if n <= 15:
        return bytes((0x90 | n,))
    if n <= 0xFFFF:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def _map_header(n: int) -> bytes:
    """The msgpack header of a map of ``n`` (at most 15) entries.

    >>> _map_header(11).hex()
    '8b'
    """
    if n > 15:
        raise ValueError("a snapshot map has at most 15 keys")
    return bytes((0x80 | n,))


class QuoteHistory:
    """Recent two-sided quotes of one book, for as-of lookups (at or before a time)."""

    __slots__ = ("ask", "bid", "ts")

    def __init__(self) -> None:
        self.ts: list[int] = []
        self.bid: list[float] = []
        self.ask: list[float] = []

    def add(self, ts: int, bid: float, ask: float) -> None:
        times = self.ts
        if not times or ts >= times[-1]:
            times.append(ts)
            self.bid.append(bid)
            self.ask.append(ask)
        else:  # out of order: keep sorted by time
            i = bisect_right(times, ts)
            times.insert(i, ts)
            self.bid.insert(i, bid)
            self.ask.insert(i, ask)
        if len(times) > QUOTE_HISTORY:
            del times[: len(times) - QUOTE_HISTORY]
            del self.bid[: len(self.bid) - QUOTE_HISTORY]
            del self.ask[: len(self.ask) - QUOTE_HISTORY]

    def asof(self, ts: int) -> tuple[int, float, float] | None:
        """The latest quote at or before ``ts``, or None."""
        times = self.ts
        if not times:
            return None
        if ts >= times[-1]:
            return times[-1], self.bid[-1], self.ask[-1]
        i = bisect_right(times, ts) - 1
        if i < 0:
            return None
        return times[i], self.bid[i], self.ask[i]


class RollingMean:
    """Mean of the last ``window`` observations, with the count seen so far."""

    __slots__ = ("count", "total", "values", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self.values: deque[float] = deque()
        self.total = 0.0
        self.count = 0

    def add(self, value: float) -> None:
        self.values.append(value)
        self.total += value
        self.count += 1
        if len(self.values) > self.window:
            self.total -= self.values.popleft()

    @property
    def mean(self) -> float | None:
        n = len(self.values)
        return self.total / n if n else None


class SymbolState:
    """Market context of one symbol: quotes per venue and across venues, sizes, marks."""

    __slots__ = ("any_venue", "by_venue", "last_trade_px", "last_trade_ts", "sizes")

    def __init__(self, size_window: int) -> None:
        self.by_venue: dict[str, QuoteHistory] = {}
        self.any_venue = QuoteHistory()
        self.sizes = RollingMean(size_window)
        self.last_trade_px: float | None = None
        self.last_trade_ts: int | None = None

    def add_quote(self, ev: Event) -> None:
        bid, ask = ev.bid, ev.ask
        if bid is None or ask is None:
            return  # a one-sided quote has no mid; the previous one stays in force
        if ev.venue is not None:
            book = self.by_venue.get(ev.venue)
            if book is None:
                book = self.by_venue[ev.venue] = QuoteHistory()
            book.add(ev.ts, bid, ask)
        self.any_venue.add(ev.ts, bid, ask)

    def quote_asof(self, venue: str | None, ts: int) -> tuple[int, float, float] | None:
        """As-of quote on the venue's own book when it has one, else across venues."""
        if venue is not None:
            book = self.by_venue.get(venue)
            if book is not None:
                return book.asof(ts)
        return self.any_venue.asof(ts)


class PartitionState:
    """All history-dependent state of one partition."""

    def __init__(
        self,
        partition: int = 0,
        size_window: int = 100,
        max_terminal_orders: int = 100_000,
        max_open_orders: int = 2_000_000,
    ) -> None:
        self.partition = partition
        self.size_window = size_window
        self.max_terminal_orders = max_terminal_orders
        self.max_open_orders = max_open_orders
        self.seq = 0
        self.orders: dict[str, OrderState] = {}
        self.aliases: dict[str, str] = {}
        self.symbols: dict[str, SymbolState] = {}
        self.positions: dict[tuple[str | None, str | None, str | None], PositionState] = {}
        """Average-cost positions by (strategy, account, symbol)."""
        self._terminal: deque[str] = deque()
        self.surveillance = SurveillanceState()
        """Detector windows, account profiles, risk state and open alerts (stage surveil)."""

    def symbol(self, name: str) -> SymbolState:
        st = self.symbols.get(name)
        if st is None:
            st = self.symbols[name] = SymbolState(self.size_window)
        return st

    def position(
        self, strategy: str | None, account: str | None, symbol: str | None
    ) -> PositionState:
        key = (strategy, account, symbol)
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = PositionState()
        return pos

    def find_order(self, order_id: str | None) -> OrderState | None:
        if order_id is None:
            return None
        order = self.orders.get(order_id)
        if order is None:
            root = self.aliases.get(order_id)
            if root is not None:
                order = self.orders.get(root)
        return order

    def resolve(self, ev: Event) -> tuple[OrderState, bool]:
        """The order an event belongs to, following replace/cancel id chains; creates it
        when unknown. Returns (order, known) where known is False for a new placeholder."""
        order = self.find_order(ev.order_id)
        if order is None:
            order = self.find_order(ev.orig_order_id)
            if order is not None and ev.order_id is not None and ev.order_id != order.order_id:
                self.aliases[ev.order_id] = order.order_id
                order.aliases.append(ev.order_id)
        if order is not None:
            return order, True
        key = ev.order_id if ev.order_id is not None else ev.orig_order_id
        assert key is not None, "order events carry order_id (checked by clean)"
        order = OrderState(key)
        self.orders[key] = order
        if len(self.orders) > self.max_open_orders + self.max_terminal_orders:
            self._evict_oldest_open()
        return order, False

    def note_terminal(self, order: OrderState) -> None:
        """Keeps a bounded number of finished orders for late events, evicting the oldest."""
        self._terminal.append(order.order_id)
        while len(self._terminal) > self.max_terminal_orders:
            old = self._terminal.popleft()
            evicted = self.orders.get(old)
            if evicted is not None and evicted.status in TERMINAL_STATUSES:
                self._drop(evicted)

    def _evict_oldest_open(self) -> None:
        for order in self.orders.values():
            if order.status not in TERMINAL_STATUSES:
                self._drop(order)
                return

    def _drop(self, order: OrderState) -> None:
        self.orders.pop(order.order_id, None)
        for alias in order.aliases:
            self.aliases.pop(alias, None)

    # ---- snapshots -------------------------------------------------------
    def snapshot(self) -> bytes:
        """The state in its stored form (``pipeline/snapshot_codec.py``: zstd-compressed
        msgpack of a map), restored by ``restore``. The orders, most of it (~43 MB of
        msgpack after a million replayed events), are encoded ``SNAPSHOT_ORDER_CHUNK`` at a
        time straight into the compressor: neither a tuple per order nor the whole msgpack
        is held (they were ~100 MB of replay's peak memory at each snapshot)."""
        symbols = {
            name: {
                "by_venue": {v: [q.ts, q.bid, q.ask] for v, q in st.by_venue.items()},
                "any": [st.any_venue.ts, st.any_venue.bid, st.any_venue.ask],
                "sizes": [list(st.sizes.values), st.sizes.count],
                "last_trade": [st.last_trade_px, st.last_trade_ts],
            }
            for name, st in self.symbols.items()
        }
        payload: dict[str, Any] = {
            "version": 1,
            "partition": self.partition,
            "seq": self.seq,
            "slots": list(OrderState.__slots__),
            "terminal": list(self._terminal),
            "symbols": symbols,
            "position_slots": list(PositionState.__slots__),
            "positions": [
                [list(key), [getattr(p, n) for n in PositionState.__slots__]]
                for key, p in self.positions.items()
            ],
        }
        enc = msgspec.msgpack.Encoder()
        out = SnapshotWriter()
        out.write(_map_header(len(payload) + 2))
        for key, value in payload.items():
            out.write(enc.encode(key))
            out.write(enc.encode(value))
        # the detectors' state (~18 MB after a million events) as a msgpack bin, written
        # as is rather than copied into a second encoding
        surveillance = self.surveillance.to_bytes()
        out.write(enc.encode("surveillance"))
        out.write(b"\xc6" + len(surveillance).to_bytes(4, "big"))
        out.write(surveillance)
        del surveillance
        out.write(enc.encode("orders"))
        out.write(_array_header(len(self.orders)))
        values = iter(self.orders.values())
        while chunk := list(islice(values, SNAPSHOT_ORDER_CHUNK)):
            # one C-level attrgetter per order (a nested comprehension took ~0.7 s per
            # 100k); the chunk's own array header is cut, its items continue the array
            rows = enc.encode(list(map(_ORDER_FIELDS, chunk)))
            head = _array_header(len(chunk))
            if not rows.startswith(head):  # msgspec writes the shortest header
                raise RuntimeError("unexpected msgpack array header in a state snapshot")
            out.write(memoryview(rows)[len(head) :])
        return out.finish()

    def restore(self, data: bytes) -> None:
        """From ``snapshot``'s form, or the plain msgpack older stores hold."""
        payload: dict[str, Any] = msgspec.msgpack.decode(unpack_snapshot(data))
        if payload.get("version") != 1:
            raise ValueError(f"unknown state snapshot version {payload.get('version')!r}")
        slots: list[str] = payload["slots"]
        self.seq = payload["seq"]
        self.orders.clear()
        self.aliases.clear()
        for values in payload["orders"]:
            order = OrderState("")
            for name, value in zip(slots, values, strict=True):
                if name == "status":
                    value = OrderStatus(value)
                elif name == "side" and value is not None:
                    value = Side(value)
                elif name == "pending_replace" and value is not None:
                    value = tuple(value)
                elif name == "exec_ids" and value is not None:
                    value = set(value)
                setattr(order, name, value)
            self.orders[order.order_id] = order
            for alias in order.aliases:
                self.aliases[alias] = order.order_id
        self._terminal = deque(payload["terminal"])
        self.positions.clear()
        pos_slots: list[str] = payload.get("position_slots", [])
        for key, values in payload.get("positions", []):
            pos = PositionState()
            for name, value in zip(pos_slots, values, strict=True):
                setattr(pos, name, value)
            self.positions[(key[0], key[1], key[2])] = pos
        self.symbols.clear()
        for name, data_ in payload["symbols"].items():
            st = self.symbol(name)
            for venue, (ts, bid, ask) in data_["by_venue"].items():
                q = st.by_venue[venue] = QuoteHistory()
                q.ts, q.bid, q.ask = list(ts), list(bid), list(ask)
            st.any_venue.ts, st.any_venue.bid, st.any_venue.ask = (list(x) for x in data_["any"])
            sizes, count = data_["sizes"]
            for v in sizes:
                st.sizes.add(v)
            st.sizes.count = count
            st.last_trade_px, st.last_trade_ts = data_["last_trade"]
        surv = payload.get("surveillance")
        self.surveillance = (
            SurveillanceState.from_bytes(surv) if surv is not None else SurveillanceState()
        )
