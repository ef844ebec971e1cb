"""Live push: processed events, anomaly marks and metric snapshots to WebSocket clients.

The live loop calls ``publish`` with each processed batch (or the committer thread after
each commit, in ``committed`` push mode; ADR 0009); the hub hands the batch to the event
loop, which fans it out to every client's bounded queue. A client that cannot keep
up loses its oldest messages (it is told how many) and is disconnected if it stays
behind, so a slow client never grows server memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from tradelog.model.events import Event
from tradelog.storage.base import CommitBatch

log = logging.getLogger("tradelog.api.live")


class LiveRow(msgspec.Struct, gc=False):
    """The fields of an event the tape shows (``LIVE_FIELDS``), built from the event in one
    positional call and encoded as a JSON object."""

    seq: int
    event_id: str
    kind: str
    ts: int
    ts_ingest: int
    source: str
    symbol: str | None
    venue: str | None
    account_id: str | None
    strategy_id: str | None
    order_id: str | None
    root_order_id: str | None
    side: str | None
    qty: float | None
    price: float | None
    last_qty: float | None
    last_px: float | None
    liquidity: str | None
    fee: float | None
    bid: float | None
    ask: float | None
    bid_size: float | None
    ask_size: float | None
    order_status: str | None
    latency_ms: float | None
    slippage_bps: float | None
    anomaly_severity: str | None
    anomaly_types: str | None
    reason: str | None
    message: str | None


LIVE_FIELDS: Final[tuple[str, ...]] = LiveRow.__struct_fields__
_LIVE_GETTER: Final = operator.attrgetter(*LIVE_FIELDS)
CLIENT_QUEUE: Final = 256
MAX_DROPS_BEFORE_DISCONNECT: Final = 10_000


@dataclass
class LiveFilter:
    kinds: frozenset[str] = frozenset()
    symbols: frozenset[str] = frozenset()
    strategies: frozenset[str] = frozenset()

    def accepts(self, row: LiveRow) -> bool:
        if self.kinds and row.kind not in self.kinds:
            return False
        if self.symbols and row.symbol not in self.symbols:
            return False
        return not (self.strategies and row.strategy_id not in self.strategies)


@dataclass(eq=False)
class Client:
    """One WebSocket client (hashed by identity: it lives in the hub's set)."""

    flt: LiveFilter
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    dropped: int = 0
    sent: int = 0


def event_row(ev: Event) -> LiveRow:
    return LiveRow(*_LIVE_GETTER(ev))


class LiveHub:
    """Fan-out of committed batches to WebSocket clients (thread-safe ``publish``)."""

    def __init__(self, metrics: Callable[[], dict[str, Any]] | None = None) -> None:
        self.clients: set[Client] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.metrics = metrics
        self._encode = msgspec.json.Encoder().encode
        self.published = 0
        self.dropped = 0

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def publish(self, batch: CommitBatch) -> None:
        """Called by the live loop with a processed batch (or by the committer thread
        after the commit, in ``committed`` push mode); thread-safe."""
        loop = self.loop
        if loop is None or not self.clients or loop.is_closed():
            return
        make = LiveRow
        getter = _LIVE_GETTER
        rows = [make(*getter(ev)) for ev in batch.events]
        marks = [msgspec.structs.asdict(m) for m in batch.marks]
        loop.call_soon_threadsafe(self._fanout, rows, marks)

    def _fanout(self, rows: list[LiveRow], marks: list[dict[str, Any]]) -> None:
        now = time.time_ns()
        for client in list(self.clients):
            picked = [r for r in rows if client.flt.accepts(r)]
            if picked:
                self._offer(client, {"type": "events", "sent_ns": now, "events": picked})
            if marks:
                self._offer(client, {"type": "anomalies", "sent_ns": now, "marks": marks})
        self.published += len(rows)

    def broadcast(self, message: dict[str, Any]) -> None:
        """Sends a message to every client (event-loop thread only)."""
        for client in list(self.clients):
            self._offer(client, message)

    def _offer(self, client: Client, message: dict[str, Any]) -> None:
        data = self._encode(message)
        q = client.queue
        if q.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                q.get_nowait()  # drop the oldest message for this slow client
            client.dropped += 1
            self.dropped += 1
        q.put_nowait(data)
