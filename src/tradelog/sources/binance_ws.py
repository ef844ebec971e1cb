"""binance: Binance spot market data over WebSocket, as ``market_trade`` and ``quote`` events.

One connection carries every configured stream (combined streams,
``<ws_url>/stream?streams=btcusdt@trade/btcusdt@bookTicker/…``); each message arrives
wrapped as ``{"stream": name, "data": payload}``. Payloads become ``Record``s with
canonical field names and go through the source's ``Cleaner``, so they are validated like
every other source, and keep the message text as ``raw``:

- ``trade`` / ``aggTrade`` → ``market_trade`` (side = aggressor: ``sell`` when the buyer
  is the maker), ts = trade time ``T``; event ids come from the trade / aggregate id, so a
  trade received twice (a reconnect, a renewal overlap) is a duplicate, never a new event;
- ``bookTicker`` → ``quote``; spot book tickers carry no time, so ts = receive time;
- ``depthUpdate`` → a local order book kept in sync by Binance's documented procedure
  (buffer, REST snapshot, drop ``u ≤ lastUpdateId``, resync on a gap), which emits a
  ``quote`` when its top of book changes and publishes its top levels for the dashboard.

Connection rules (domain-facts §7): server pings are answered by the websockets protocol
layer itself (every Ping frame gets a Pong with the same payload; it cannot be turned
off), the connection is renewed before Binance's 24 h cut, ``serverShutdown`` triggers an
immediate reconnect, and drops reconnect with exponential backoff and full jitter.
Renewals open the new connection before closing the old one, so nothing is missed (what
both deliver is dropped downstream by event id). Depth update ids belong to the symbol,
not to the connection, so a book carries on across connections: if a reconnect missed
updates, the next one shows a gap and the book resyncs.

The client runs in its own thread with its own event loop and pushes micro-batches to the
live runner. Market data is lossy by nature: when the runner's inbox stays full, records
wait in a bounded buffer, and beyond its bound the oldest quotes are dropped (then, only
if no quote is left, the oldest trades), every drop counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from itertools import islice
from typing import Any, Final, Literal, NamedTuple, Protocol

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from tradelog.model.events import Event, Reject, RejectReason
from tradelog.parsing.base import Failure, Record
from tradelog.pipeline.batch import CleanChunk, StreamInfo
from tradelog.pipeline.live import Submission
from tradelog.sources.settings import BinanceSettings, StreamType
from tradelog.stages.clean import Cleaner

log = logging.getLogger("tradelog.sources.binance_ws")

OTHER_STREAM: Final = "other"
"""Stream name for messages of no subscribed stream (errors, unknown wrappers)."""
SHUTDOWN_STREAM: Final = "!serverShutdown"
USER_AGENT: Final = "tradelog"
CLOSE_TIMEOUT_S: Final = 5.0
REFUSED_RETRY_S: Final = 0.02
"""Wait before offering a refused batch again (each refusal is counted by the runner)."""
FINAL_FLUSH_S: Final = 2.0
"""How long ``stop`` waits for the runner to take what is still buffered."""
MAX_SNAPSHOT_BYTES: Final = 16 << 20
DEPTH_BUFFER_LIMIT: Final = 2000
"""Depth updates buffered per symbol while waiting for a snapshot (200 s at 100 ms)."""
_MS_TO_NS: Final = 1_000_000


def stream_name(symbol: str, kind: StreamType) -> str:
    """Binance's name of one stream of one symbol.

    >>> stream_name("BTCUSDT", "bookTicker"), stream_name("BTCUSDT", "depth")
    ('btcusdt@bookTicker', 'btcusdt@depth@100ms')
    """
    sym = symbol.lower()
    return f"{sym}@depth@100ms" if kind == "depth" else f"{sym}@{kind}"


def combined_stream_url(settings: BinanceSettings) -> str:
    """The URL of the one connection that carries every configured stream.

    >>> combined_stream_url(BinanceSettings(symbols=["BTCUSDT"], ws_url="ws://h:1/"))
    'ws://h:1/stream?streams=btcusdt@trade/btcusdt@bookTicker'
    """
    names = [stream_name(s, k) for s in settings.symbols for k in settings.streams]
    return f"{settings.ws_url.rstrip('/')}/stream?streams={'/'.join(names)}"


def snapshot_url(settings: BinanceSettings, symbol: str) -> str:
    """REST depth snapshot URL of one symbol.

    >>> snapshot_url(BinanceSettings(symbols=["x1"], rest_url="http://h"), "BTCUSDT")
    'http://h/api/v3/depth?symbol=BTCUSDT&limit=1000'
    """
    query = urllib.parse.urlencode(
        {"symbol": symbol.upper(), "limit": settings.depth_snapshot_limit}
    )
    return f"{settings.rest_url.rstrip('/')}/api/v3/depth?{query}"


# --------------------------------------------------------------------------- order book


class TopOfBook(msgspec.Struct, frozen=True):
    """Best bid and ask with their sizes (None for an empty side)."""

    bid: float | None
    bid_size: float | None
    ask: float | None
    ask_size: float | None


class BookTop(msgspec.Struct, frozen=True, kw_only=True):
    """The published top levels of one local book (immutable: safe to read from any thread)."""

    symbol: str
    synced: bool
    """False while (re)syncing: the levels are then empty."""
    last_update_id: int | None
    ts: int | None
    """Event time (ns) of the last applied update."""
    bids: tuple[tuple[float, float], ...] = ()
    """(price, qty), best first."""
    asks: tuple[tuple[float, float], ...] = ()


class DepthUpdate(msgspec.Struct, kw_only=True):
    """One ``depthUpdate`` message, read: update ids ``[first_id, last_id]`` = ``[U, u]``."""

    first_id: int
    last_id: int
    event_time_ms: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    raw: str = ""
    seq: int = 0
    """Position of the message in its stream (the record's offset)."""
    ts_ingest: int = 0


class DepthSnapshot(msgspec.Struct, kw_only=True):
    """A REST depth snapshot, read."""

    last_update_id: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


class StepKind(Enum):
    APPLIED = "applied"
    """Applied to the book."""
    STALE = "stale"
    """Dropped: ``u`` is not beyond the book's update id (already in the snapshot)."""
    DISCARDED = "discarded"
    """Dropped from a full sync buffer."""


class BookStep(NamedTuple):
    """What became of one depth update, with the top of book right after it."""

    update: DepthUpdate
    kind: StepKind
    top: TopOfBook | None = None
    changed: bool = False
    """The top of book differs from the one after the previous applied update."""


class OrderBook:
    """One symbol's local order book, synced with the diff depth stream as Binance documents:

    1. buffer the updates; once one is buffered, fetch a REST snapshot;
    2. drop buffered updates with ``u <= lastUpdateId``; if the first one left starts after
       ``lastUpdateId + 1`` the snapshot is older than the stream: fetch another;
    3. apply the rest in order: an update with ``u <=`` the book's id is dropped, one with
       ``U >`` the book's id + 1 is a gap (counted) and the book resyncs from a new
       snapshot; a quantity of 0 deletes the level.

    Pure logic (no I/O, no clock): the caller feeds updates and snapshots and acts on
    ``wants_snapshot()``.
    """

    def __init__(
        self,
        symbol: str,
        levels_kept: int = 20,
        max_levels: int = 2000,
        max_buffer: int = DEPTH_BUFFER_LIMIT,
    ) -> None:
        if levels_kept < 1 or max_levels < levels_kept or max_buffer < 1:
            raise ValueError(
                "need 1 <= levels_kept <= max_levels and max_buffer >= 1; was "
                f"{levels_kept}, {max_levels}, {max_buffer}"
            )
        self.symbol = symbol
        self.levels_kept = levels_kept
        self.max_levels = max_levels
        """Levels per side beyond which the farthest are trimmed (they are not in the
        snapshot's range, so they are incomplete anyway)."""
        self.max_buffer = max_buffer
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.last_update_id: int | None = None
        """Id of the last update in the book; None while not synced."""
        self.buffer: deque[DepthUpdate] = deque()
        self.snapshots = 0
        """Snapshots the book was (re)built from."""
        self.stale_snapshots = 0
        self.gaps = 0
        self.resyncs = 0
        """Times a synced book was discarded to resync (after a gap)."""
        self.discarded = 0
        self._best: TopOfBook | None = None
        self.top = BookTop(symbol=symbol, synced=False, last_update_id=None, ts=None)

    @property
    def synced(self) -> bool:
        return self.last_update_id is not None

    def wants_snapshot(self) -> bool:
        """Not synced and the stream is buffered: a snapshot can now be taken."""
        return self.last_update_id is None and bool(self.buffer)

    def feed(self, update: DepthUpdate) -> list[BookStep]:
        """One update from the stream: applied, dropped, or buffered (no step yet)."""
        if self.last_update_id is None:
            self.buffer.append(update)
            if len(self.buffer) > self.max_buffer:
                self.discarded += 1
                return [BookStep(self.buffer.popleft(), StepKind.DISCARDED)]
            return []
        return self._apply([update])

    def apply_snapshot(self, snap: DepthSnapshot) -> list[BookStep]:
        """Builds the book from a snapshot and applies the buffered updates after it.

        If the snapshot is older than the buffered stream, the book stays unsynced and
        ``wants_snapshot()`` asks for another one.
        """
        if self.last_update_id is not None:
            raise RuntimeError(
                f"{self.symbol}: snapshot offered to a synced book (id {self.last_update_id})"
            )
        last = snap.last_update_id
        steps: list[BookStep] = []
        buffer = self.buffer
        while buffer and buffer[0].last_id <= last:
            steps.append(BookStep(buffer.popleft(), StepKind.STALE))
        if buffer and buffer[0].first_id > last + 1:
            self.stale_snapshots += 1
            return steps
        self.bids = {p: q for p, q in snap.bids if q > 0}
        self.asks = {p: q for p, q in snap.asks if q > 0}
        self.last_update_id = last
        self.snapshots += 1
        self._best = None
        self._trim()
        pending = list(buffer)
        buffer.clear()
        self._publish(None)
        steps.extend(self._apply(pending))
        return steps

    def drain(self) -> list[BookStep]:
        """Gives up the buffered updates (when the client stops)."""
        steps = [BookStep(u, StepKind.DISCARDED) for u in self.buffer]
        self.discarded += len(steps)
        self.buffer.clear()
        return steps

    def _apply(self, updates: list[DepthUpdate]) -> list[BookStep]:
        steps: list[BookStep] = []
        for i, upd in enumerate(updates):
            current = self.last_update_id
            assert current is not None
            if upd.last_id <= current:
                steps.append(BookStep(upd, StepKind.STALE))
                continue
            if upd.first_id > current + 1:
                self.gaps += 1
                self.resyncs += 1
                self._unsync()
                self.buffer.extend(updates[i:])
                while len(self.buffer) > self.max_buffer:
                    self.discarded += 1
                    steps.append(BookStep(self.buffer.popleft(), StepKind.DISCARDED))
                return steps
            _set_levels(self.bids, upd.bids)
            _set_levels(self.asks, upd.asks)
            self.last_update_id = upd.last_id
            if len(self.bids) > self.max_levels or len(self.asks) > self.max_levels:
                self._trim()
            top = self._publish(upd.event_time_ms * _MS_TO_NS)
            changed = top != self._best
            self._best = top
            steps.append(BookStep(upd, StepKind.APPLIED, top, changed))
        return steps

    def _unsync(self) -> None:
        self.bids = {}
        self.asks = {}
        self.last_update_id = None
        self._best = None
        self.top = BookTop(symbol=self.symbol, synced=False, last_update_id=None, ts=None)

    def _trim(self) -> None:
        """Keeps the best ``max_levels`` per side (90% of it, so trimming is amortised)."""
        keep = max(self.levels_kept, self.max_levels * 9 // 10)
        if len(self.bids) > self.max_levels:
            self.bids = {p: self.bids[p] for p in heapq.nlargest(keep, self.bids)}
        if len(self.asks) > self.max_levels:
            self.asks = {p: self.asks[p] for p in heapq.nsmallest(keep, self.asks)}

    def _publish(self, ts: int | None) -> TopOfBook:
        n = self.levels_kept
        bids, asks = self.bids, self.asks
        top_bids = tuple((p, bids[p]) for p in heapq.nlargest(n, bids))
        top_asks = tuple((p, asks[p]) for p in heapq.nsmallest(n, asks))
        self.top = BookTop(
            symbol=self.symbol,
            synced=True,
            last_update_id=self.last_update_id,
            ts=ts if ts is not None else self.top.ts,
            bids=top_bids,
            asks=top_asks,
        )
        bid = top_bids[0] if top_bids else (None, None)
        ask = top_asks[0] if top_asks else (None, None)
        return TopOfBook(bid[0], bid[1], ask[0], ask[1])


def _set_levels(side: dict[float, float], levels: list[tuple[float, float]]) -> None:
    for price, qty in levels:
        if qty == 0:
            side.pop(price, None)  # removing an unknown level is normal (Binance docs)
        else:
            side[price] = qty


class _DepthPayload(msgspec.Struct):
    first_id: int = msgspec.field(name="U")
    last_id: int = msgspec.field(name="u")
    event_time_ms: int = msgspec.field(name="E")
    bids: list[tuple[str, str]] = msgspec.field(name="b")
    asks: list[tuple[str, str]] = msgspec.field(name="a")


class _SnapshotPayload(msgspec.Struct):
    last_update_id: int = msgspec.field(name="lastUpdateId")
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]


def _read_levels(levels: list[tuple[str, str]], what: str) -> list[tuple[float, float]]:
    """Price/quantity strings → floats; raises ValueError naming the bad level."""
    out: list[tuple[float, float]] = []
    for p, q in levels:
        try:
            price, qty = float(p), float(q)
        except ValueError:
            raise ValueError(f"{what} level [{p!r}, {q!r}] is not numeric") from None
        if not (math.isfinite(price) and math.isfinite(qty)) or price <= 0 or qty < 0:
            raise ValueError(f"{what} level [{p!r}, {q!r}] needs price > 0 and qty >= 0")
        out.append((price, qty))
    return out


def parse_depth_snapshot(body: bytes) -> DepthSnapshot:
    """A ``/api/v3/depth`` response body, read; raises ValueError saying what is wrong."""
    try:
        payload = msgspec.json.decode(body, type=_SnapshotPayload)
    except msgspec.DecodeError as exc:
        raise ValueError(f"depth snapshot: {exc}") from None
    return DepthSnapshot(
        last_update_id=payload.last_update_id,
        bids=_read_levels(payload.bids, "bid"),
        asks=_read_levels(payload.asks, "ask"),
    )


# --------------------------------------------------------------------------- normalisation

Outcome = Event | Reject | None
"""What a record became: an event, a reject, or None (counted as ignored)."""


class Output(NamedTuple):
    stream: str
    """Binance stream name (``btcusdt@trade``) or ``other``."""
    seq: int
    """Position of the record in its stream."""
    outcome: Outcome


@dataclass(slots=True)
class Decoded:
    """What one message produced."""

    outputs: list[Output] = field(default_factory=list)
    server_shutdown: bool = False
    wants_snapshot: str | None = None
    """Symbol whose depth book now waits for a snapshot."""


class _Spec(NamedTuple):
    symbol: str
    kind: StreamType
    key: str
    """The pipeline's stream key: ``binance:<name>``."""


class BinanceNormalizer:
    """Messages of the combined stream → cleaned events per stream (no I/O).

    Owns the depth books. Records carry canonical fields and the message text as ``raw``;
    the source's ``Cleaner`` validates them, so a bad price is a reject with a reason.
    """

    def __init__(self, settings: BinanceSettings, cleaner: Cleaner, src_ref: str) -> None:
        self.settings = settings
        self.cleaner = cleaner
        self.src_ref = src_ref
        self.venue = settings.venue
        self.specs: dict[str, _Spec] = {}
        for sym in settings.symbols:
            for kind in settings.streams:
                name = stream_name(sym, kind)
                self.specs[name] = _Spec(sym.upper(), kind, stream_key(name))
        self.books: dict[str, OrderBook] = {}
        if "depth" in settings.streams:
            max_levels = 2 * max(settings.depth_snapshot_limit, settings.depth_levels_kept)
            for sym in settings.symbols:
                self.books[sym.upper()] = OrderBook(
                    sym.upper(), settings.depth_levels_kept, max_levels
                )
        self._depth_names = {s.symbol: name for name, s in self.specs.items() if s.kind == "depth"}
        self.counts: dict[str, int] = dict.fromkeys([*self.specs, OTHER_STREAM], 0)
        """Messages received per stream (keys fixed at start, so copying is thread-safe)."""
        self._json = msgspec.json.Decoder()
        self._every_update = settings.depth_quotes == "every_update"

    # ---- messages ----------------------------------------------------------
    def decode(self, message: str | bytes, ts_ingest: int) -> Decoded:
        """One WebSocket message → its outputs (and control signals)."""
        if isinstance(message, bytes):
            try:
                text = message.decode("utf-8")
            except UnicodeDecodeError as exc:
                raw = message.decode("utf-8", "backslashreplace")
                return self._other(
                    RejectReason.ENCODING, f"not valid UTF-8 at byte {exc.start}", raw, ts_ingest
                )
        else:
            text = message
        try:
            msg = self._json.decode(text)
        except msgspec.DecodeError as exc:
            return self._other(RejectReason.MALFORMED, f"invalid JSON: {exc}", text, ts_ingest)
        if not isinstance(msg, dict):
            return self._other(
                RejectReason.UNSUPPORTED_MESSAGE, "expected a JSON object", text, ts_ingest
            )
        name = msg.get("stream")
        data = msg.get("data")
        if name == SHUTDOWN_STREAM or _is_shutdown(data) or (name is None and _is_shutdown(msg)):
            self.counts[OTHER_STREAM] += 1
            return Decoded(server_shutdown=True)
        spec = self.specs.get(name) if isinstance(name, str) else None
        if spec is None:
            detail = (
                "no combined-stream wrapper {stream, data}"
                if name is None
                else f"message of stream {str(name)[:80]!r}, which is not subscribed"
            )
            return self._other(RejectReason.UNSUPPORTED_MESSAGE, detail, text, ts_ingest)
        assert isinstance(name, str)
        seq = self.counts[name]
        self.counts[name] = seq + 1
        if not isinstance(data, dict):
            failure = Failure(
                RejectReason.MALFORMED, "data must be a JSON object", text, seq, seq + 1
            )
            return Decoded([Output(name, seq, self._clean(failure, spec.key, ts_ingest))])
        kind = spec.kind
        if kind == "depth":
            return self._depth(name, spec, data, text, seq, ts_ingest)
        if kind == "bookTicker":
            item: Record | Failure = self._book_ticker(spec, data, text, seq, ts_ingest)
        else:
            item = self._trade(spec, data, text, seq, agg=kind == "aggTrade")
        return Decoded([Output(name, seq, self._clean(item, spec.key, ts_ingest))])

    def apply_snapshot(self, symbol: str, snap: DepthSnapshot) -> list[Output]:
        """Gives a depth snapshot to a book; returns the outputs of the updates it settled."""
        book = self.books[symbol]
        name = self._depth_names[symbol]
        spec = self.specs[name]
        return [self._depth_output(name, spec, step) for step in book.apply_snapshot(snap)]

    def drain(self) -> list[Output]:
        """Outputs (ignored) for the depth updates still buffered (when stopping)."""
        out: list[Output] = []
        for symbol, book in self.books.items():
            name = self._depth_names[symbol]
            out.extend(Output(name, step.update.seq, None) for step in book.drain())
        return out

    # ---- per stream --------------------------------------------------------
    def _trade(
        self, spec: _Spec, data: dict[str, Any], text: str, seq: int, agg: bool
    ) -> Record | Failure:
        sym = spec.symbol
        fields: dict[str, Any] = {"kind": "market_trade", "venue": self.venue}
        fields["symbol"] = data.get("s") or sym
        id_field = "a" if agg else "t"
        ident = data.get(id_field)
        if type(ident) is int:
            fields["event_id"] = f"binance:{sym}:{'agg' if agg else 'trade'}:{ident}"
            fields["exec_id"] = str(ident)
        elif ident is not None:
            fields["exec_id"] = ident
        trade_time = data.get("T")
        if trade_time is None:
            return Failure(
                RejectReason.MISSING_FIELD,
                "trade requires T (trade time)",
                text,
                seq,
                seq + 1,
                "ts",
            )
        if type(trade_time) is not int:
            return Failure(
                RejectReason.INVALID_TIMESTAMP,
                f"T (trade time) must be integer milliseconds; was {trade_time!r}",
                text, seq, seq + 1, "ts",
            )  # fmt: skip
        fields["ts_ns"] = trade_time * _MS_TO_NS
        fields["price"] = data.get("p")
        fields["qty"] = data.get("q")
        maker = data.get("m")
        if maker is True:
            fields["side"] = "sell"  # the buyer was the maker: the seller hit the bid
        elif maker is False:
            fields["side"] = "buy"
        elif maker is not None:
            return Failure(
                RejectReason.INVALID_VALUE,
                f"m (buyer is maker) must be true or false; was {maker!r}",
                text, seq, seq + 1, "side",
            )  # fmt: skip
        return Record(fields, text, seq, seq + 1)

    def _book_ticker(
        self, spec: _Spec, data: dict[str, Any], text: str, seq: int, ts_ingest: int
    ) -> Record:
        sym = spec.symbol
        fields: dict[str, Any] = {
            "kind": "quote",
            "venue": self.venue,
            "symbol": data.get("s") or sym,
            "ts_ns": ts_ingest,  # spot book tickers carry no time: stamp the receive time
        }
        update_id = data.get("u")
        if type(update_id) is int:
            fields["event_id"] = f"binance:{sym}:bt:{update_id}"
        if not _is_zero(data.get("B")):
            fields["bid"] = data.get("b")
            fields["bid_size"] = data.get("B")
        if not _is_zero(data.get("A")):
            fields["ask"] = data.get("a")
            fields["ask_size"] = data.get("A")
        return Record(fields, text, seq, seq + 1)

    def _depth(
        self, name: str, spec: _Spec, data: dict[str, Any], text: str, seq: int, ts_ingest: int
    ) -> Decoded:
        try:
            payload = msgspec.convert(data, _DepthPayload)
            bids = _read_levels(payload.bids, "bid")
            asks = _read_levels(payload.asks, "ask")
        except msgspec.ValidationError as exc:
            reason, detail = RejectReason.MALFORMED, f"depthUpdate: {exc}"
        except ValueError as exc:
            reason, detail = RejectReason.INVALID_NUMBER, f"depthUpdate: {exc}"
        else:
            upd = DepthUpdate(
                first_id=payload.first_id,
                last_id=payload.last_id,
                event_time_ms=payload.event_time_ms,
                bids=bids,
                asks=asks,
                raw=text,
                seq=seq,
                ts_ingest=ts_ingest,
            )
            book = self.books[spec.symbol]
            outputs = [self._depth_output(name, spec, step) for step in book.feed(upd)]
            wants = spec.symbol if book.wants_snapshot() else None
            return Decoded(outputs, wants_snapshot=wants)
        # an unreadable update is skipped: the next one shows a gap and the book resyncs
        failure = Failure(reason, detail, text, seq, seq + 1)
        return Decoded([Output(name, seq, self._clean(failure, spec.key, ts_ingest))])

    def _depth_output(self, name: str, spec: _Spec, step: BookStep) -> Output:
        upd = step.update
        top = step.top
        if (
            step.kind is not StepKind.APPLIED
            or top is None
            or not (step.changed or self._every_update)
            or (top.bid is None and top.ask is None)
        ):
            return Output(name, upd.seq, None)
        fields: dict[str, Any] = {
            "kind": "quote",
            "event_id": f"binance:{spec.symbol}:depth:{upd.last_id}",
            "ts_ns": upd.event_time_ms * _MS_TO_NS,
            "symbol": spec.symbol,
            "venue": self.venue,
        }
        if top.bid is not None:
            fields["bid"] = top.bid
            fields["bid_size"] = top.bid_size
        if top.ask is not None:
            fields["ask"] = top.ask
            fields["ask_size"] = top.ask_size
        record = Record(fields, upd.raw, upd.seq, upd.seq + 1)
        return Output(name, upd.seq, self._clean(record, spec.key, upd.ts_ingest))

    # ---- helpers -----------------------------------------------------------
    def _clean(self, item: Record | Failure, key: str, ts_ingest: int) -> Outcome:
        return self.cleaner.clean(item, self.src_ref, key, ts_ingest)

    def _other(self, reason: RejectReason, detail: str, raw: str, ts_ingest: int) -> Decoded:
        seq = self.counts[OTHER_STREAM]
        self.counts[OTHER_STREAM] = seq + 1
        failure = Failure(reason, detail, raw, seq, seq + 1)
        outcome = self._clean(failure, stream_key(OTHER_STREAM), ts_ingest)
        return Decoded([Output(OTHER_STREAM, seq, outcome)])


def stream_key(name: str) -> str:
    """The pipeline's stream key of a Binance stream (``binance:btcusdt@trade``)."""
    return f"binance:{name}"


def _is_shutdown(value: Any) -> bool:
    return isinstance(value, dict) and value.get("e") == "serverShutdown"


def _is_zero(value: Any) -> bool:
    """A size Binance sends as zero (an empty side of a book ticker)."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return False
    try:
        return float(value) == 0.0
    except ValueError:
        return False


# --------------------------------------------------------------------------- output buffer


class _Box:
    """Records of one stream waiting for the runner."""

    __slots__ = ("ignored", "info", "items", "lossy", "position")

    def __init__(self, info: StreamInfo, lossy: bool) -> None:
        self.info = info
        self.lossy = lossy
        self.items: deque[Event | Reject] = deque()
        self.ignored = 0
        self.position = 0
        """Position right after the last record seen."""


@dataclass(slots=True)
class Taken:
    """Chunks offered to the runner, and what to remove from the buffer once accepted."""

    chunks: list[CleanChunk]
    counts: list[tuple[_Box, int, int]]


class OutputBuffer:
    """Cleaned records per stream until the runner takes them; bounded.

    Beyond ``max_records`` waiting events and rejects, the oldest record of a lossy
    (quote) stream is dropped; only when no quote is left, the oldest of another stream.
    Ignored records are only counts and take no room.
    """

    def __init__(
        self, source: str, src_ref: str, lossy_streams: Iterable[str], max_records: int
    ) -> None:
        self.source = source
        self.src_ref = src_ref
        self.lossy_streams = frozenset(lossy_streams)
        self.max_records = max_records
        self.size = 0
        """Events and rejects waiting."""
        self.dropped_quotes = 0
        self.dropped_trades = 0
        """Records of non-quote streams dropped (trades, and rejects of such streams)."""
        self._boxes: dict[str, _Box] = {}
        self._lossy: list[_Box] = []
        self._lossless: list[_Box] = []

    def _box(self, stream: str) -> _Box:
        box = self._boxes.get(stream)
        if box is None:
            lossy = stream in self.lossy_streams
            info = StreamInfo(self.source, stream_key(stream), self.src_ref)
            box = self._boxes[stream] = _Box(info, lossy)
            (self._lossy if lossy else self._lossless).append(box)
        return box

    def extend(self, outputs: Iterable[Output]) -> None:
        for stream, seq, outcome in outputs:
            box = self._box(stream)
            box.position = max(box.position, seq + 1)
            if outcome is None:
                box.ignored += 1
            else:
                box.items.append(outcome)
                self.size += 1
        if self.size > self.max_records:
            self._shed(self.size - self.max_records)

    def has_pending(self) -> bool:
        return self.size > 0 or any(b.ignored for b in self._boxes.values())

    def take(self, limit: int) -> Taken | None:
        """Up to ``limit`` records as chunks (one per stream), without removing them."""
        chunks: list[CleanChunk] = []
        counts: list[tuple[_Box, int, int]] = []
        budget = limit
        for box in self._boxes.values():
            n = min(len(box.items), budget)
            if n == 0 and not box.ignored:
                continue
            items = list(islice(box.items, n))
            events = [x for x in items if isinstance(x, Event)]
            rejects = [x for x in items if isinstance(x, Reject)]
            end = box.position if n == len(box.items) else items[-1].src_offset + 1
            chunks.append(CleanChunk(box.info, events, rejects, box.ignored, end))
            counts.append((box, n, box.ignored))
            budget -= n
            if budget <= 0:
                break
        return Taken(chunks, counts) if chunks else None

    def commit(self, taken: Taken) -> None:
        """Removes what the runner accepted."""
        for box, n, ignored in taken.counts:
            for _ in range(n):
                box.items.popleft()
            box.ignored -= ignored
            self.size -= n

    def drop_all(self) -> int:
        """Drops everything still waiting (counted); returns how many records."""
        dropped = 0
        for box in self._boxes.values():
            n = len(box.items)
            if box.lossy:
                self.dropped_quotes += n
            else:
                self.dropped_trades += n
            dropped += n
            box.items.clear()
            box.ignored = 0
        self.size = 0
        return dropped

    def _shed(self, excess: int) -> None:
        for _ in range(excess):
            box = _oldest(self._lossy) or _oldest(self._lossless)
            if box is None:
                return
            box.items.popleft()
            self.size -= 1
            if box.lossy:
                self.dropped_quotes += 1
            else:
                self.dropped_trades += 1


def _oldest(boxes: list[_Box]) -> _Box | None:
    """The box whose first waiting record was received first."""
    best: _Box | None = None
    best_ts = 0
    for box in boxes:
        if box.items:
            ts = box.items[0].ts_ingest
            if best is None or ts < best_ts:
                best, best_ts = box, ts
    return best


# --------------------------------------------------------------------------- client


class SubmitTarget(Protocol):
    """Where chunks go (the ``LiveRunner``): False when its bounded inbox is full."""

    def submit(self, sub: Submission, timeout: float = 0.0) -> bool: ...


class Backoff:
    """Exponential backoff with full jitter: the n-th delay is uniform in
    ``[0, min(maximum, initial · 2ⁿ)]``, so many clients do not reconnect in step.

    >>> b = Backoff(1.0, 8.0, random.Random(1))
    >>> all(0 <= b.next() <= cap for cap in (1, 2, 4, 8, 8))
    True
    """

    def __init__(self, initial: float, maximum: float, rng: random.Random) -> None:
        self.initial = initial
        self.maximum = maximum
        self.rng = rng
        self.attempt = 0

    def next(self) -> float:
        cap = min(self.maximum, self.initial * 2.0 ** min(self.attempt, 60))
        self.attempt += 1
        return self.rng.uniform(0.0, cap)

    def reset(self) -> None:
        self.attempt = 0


ConnectionState = Literal["idle", "connecting", "connected", "backoff", "stopped", "failed"]


class ClientState(msgspec.Struct, kw_only=True, frozen=True):
    """A snapshot of the client's connection and counters (for /statistics and metrics)."""

    state: ConnectionState
    since: float
    """When ``state`` was entered (epoch seconds)."""
    url: str
    connects: int
    """Connections opened."""
    reconnects: int
    """Connections opened after the first (drops, renewals, server shutdowns)."""
    renewals: int
    """Proactive renewals before the 24 h cut."""
    server_shutdowns: int
    last_message_at: float | None
    """When the last message arrived (epoch seconds)."""
    messages: dict[str, int]
    """Messages received per stream (``other`` for unsubscribed or unreadable ones)."""
    depth_snapshots: int
    """Depth snapshots a book was (re)built from."""
    depth_resyncs: int
    gaps: int
    errors: int
    """Connection failures, unexpected closes and failed snapshot requests."""
    last_error: str | None
    buffered: int
    """Records waiting for the runner."""
    dropped_quotes: int
    dropped_trades: int
    refused_submissions: int
    """Submissions the runner refused (inbox full); they were retried."""


class SnapshotError(Exception):
    """A depth snapshot request failed; ``retry_after`` from the server, if it said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def http_get(url: str, timeout: float, limit: int = MAX_SNAPSHOT_BYTES) -> bytes:
    """GET ``url`` (blocking; run in an executor); raises SnapshotError saying why not."""
    req = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": USER_AGENT}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body: bytes = resp.read(limit + 1)
    except urllib.error.HTTPError as exc:
        retry = exc.headers.get("Retry-After") if exc.headers else None
        try:
            retry_after = float(retry) if retry else None
        except ValueError:
            retry_after = None
        try:
            text = exc.read(300).decode("utf-8", "replace") if exc.fp else ""
        except OSError:
            text = ""
        raise SnapshotError(f"HTTP {exc.code} from {url}: {text}", retry_after) from None
    except urllib.error.URLError as exc:
        raise SnapshotError(f"{url}: {exc.reason}") from None
    except (OSError, TimeoutError) as exc:
        raise SnapshotError(f"{url}: {exc}") from None
    if len(body) > limit:
        raise SnapshotError(f"{url}: response larger than {limit} bytes")
    return body


@dataclass(slots=True, eq=False)
class _Session:
    ws: ClientConnection
    number: int
    opened: float
    """monotonic time of the opening."""
    shutdown: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None


class BinanceClient:
    """Follows Binance spot streams and submits cleaned market data to the live runner.

    Runs on its own thread and event loop (``start`` / ``stop``); ``state()`` and
    ``book()`` may be called from any thread. Stop the client before the runner, so
    what it still holds is submitted.
    """

    def __init__(
        self,
        settings: BinanceSettings,
        cleaner: Cleaner,
        runner: SubmitTarget,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.source = cleaner.source
        self.url = combined_stream_url(settings)
        self.runner = runner
        self.normalizer = BinanceNormalizer(settings, cleaner, self.url)
        lossy = [n for n, s in self.normalizer.specs.items() if s.kind in ("bookTicker", "depth")]
        self.buffer = OutputBuffer(self.source, self.url, lossy, settings.max_buffered_records)
        self._rng = rng or random.Random()
        self._backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s, self._rng)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop_requested = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_async: asyncio.Event | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._syncs: dict[str, asyncio.Task[None]] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self._blocked = False
        # state (written on the client's loop; read by state() under the lock)
        self._state: ConnectionState = "idle"
        self._since = time.time()
        self._connects = 0
        self._renewals = 0
        self._server_shutdowns = 0
        self._last_message_ns: int | None = None
        self._errors = 0
        self._last_error: str | None = None
        self._refused = 0

    # ---- public --------------------------------------------------------------
    def start(self) -> None:
        """Starts the client thread (once)."""
        if self._thread is not None:
            raise RuntimeError("BinanceClient.start: already started")
        self._thread = threading.Thread(
            target=self._thread_main, name=f"binance-{self.source}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Closes the connection, submits what is buffered (up to a short wait), and joins."""
        self._stop_requested.set()
        loop, stop_async = self._loop, self._stop_async
        if loop is not None and stop_async is not None:
            with contextlib.suppress(RuntimeError):  # the loop already finished
                loop.call_soon_threadsafe(stop_async.set)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("binance client %s did not stop within %.1fs", self.source, timeout)

    def state(self) -> ClientState:
        """Connection state and counters, as of now."""
        books = self.normalizer.books.values()
        with self._lock:
            last = self._last_message_ns
            return ClientState(
                state=self._state,
                since=self._since,
                url=self.url,
                connects=self._connects,
                reconnects=max(0, self._connects - 1),
                renewals=self._renewals,
                server_shutdowns=self._server_shutdowns,
                last_message_at=last / 1e9 if last is not None else None,
                messages=dict(self.normalizer.counts),
                depth_snapshots=sum(b.snapshots for b in books),
                depth_resyncs=sum(b.resyncs for b in books),
                gaps=sum(b.gaps for b in books),
                errors=self._errors,
                last_error=self._last_error,
                buffered=self.buffer.size,
                dropped_quotes=self.buffer.dropped_quotes,
                dropped_trades=self.buffer.dropped_trades,
                refused_submissions=self._refused,
            )

    def book(self, symbol: str) -> BookTop | None:
        """The published top levels of a symbol's depth book (None without a depth stream)."""
        book = self.normalizer.books.get(symbol.upper())
        return book.top if book is not None else None

    # ---- thread and loop -------------------------------------------------------
    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            log.exception("binance client %s failed", self.source)
            self._set_state("failed", f"client failed: {exc!r}")
        else:
            self._set_state("stopped")

    async def _main(self) -> None:
        self._stop_async = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self._stop_requested.is_set():
            return
        workers = max(1, min(4, len(self.normalizer.books)))
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=f"binance-{self.source}-rest")
        try:
            await self._supervise()
        finally:
            syncs = list(self._syncs.values())
            for task in syncs:
                task.cancel()
            await asyncio.gather(*syncs, return_exceptions=True)
            if self._flush_handle is not None:
                self._flush_handle.cancel()
                self._flush_handle = None
            self._final_flush()
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _stopping(self) -> bool:
        return self._stop_requested.is_set()

    async def _sleep(self, delay: float) -> bool:
        """Waits ``delay`` seconds; True if the client was stopped meanwhile."""
        assert self._stop_async is not None
        try:
            await asyncio.wait_for(self._stop_async.wait(), delay)
        except TimeoutError:
            return self._stopping()
        return True

    # ---- connections -------------------------------------------------------------
    async def _supervise(self) -> None:
        """Keeps one connection open: reconnects after drops (with backoff), renews it
        before the 24 h cut and on ``serverShutdown`` (new one first, then close the old)."""
        current: _Session | None = None
        delay_first = False
        try:
            while not self._stopping():
                if current is None:
                    current = await self._open(None, delay_first)
                    if current is None:
                        return
                outcome = await self._watch(current)
                if outcome == "stop":
                    return
                if time.monotonic() - current.opened >= self.settings.backoff_max_s:
                    self._backoff.reset()  # it was stable: earlier failures are history
                if outcome == "closed":
                    self._closed(current)
                    current = None
                    delay_first = True
                    continue
                if outcome == "renew":
                    with self._lock:
                        self._renewals += 1
                    log.info("binance %s: renewing connection %d", self.source, current.number)
                successor = await self._open(current, delay_first=False)
                old, current = current, successor
                await self._close(old)
        finally:
            if current is not None:
                await self._close(current)

    async def _open(self, keep: _Session | None, delay_first: bool) -> _Session | None:
        """Opens a connection, retrying with backoff; None if stopped first. While ``keep``
        (the connection being replaced) is alive, the reported state stays connected."""
        s = self.settings
        delay = delay_first
        while not self._stopping():
            alive = keep is not None and keep.reader is not None and not keep.reader.done()
            if delay:
                wait = self._backoff.next()
                if not alive:
                    self._set_state("backoff")
                if await self._sleep(wait):
                    return None
            delay = True
            if not alive:
                self._set_state("connecting")
            try:
                ws = await self._connect()
            except (OSError, TimeoutError, WebSocketException) as exc:
                self._error(f"connect to {s.ws_url} failed: {exc}")
                continue
            if ws is None:
                return None
            with self._lock:
                self._connects += 1
                number = self._connects
            session = _Session(ws, number, time.monotonic())
            session.reader = asyncio.create_task(self._read(session))
            self._set_state("connected")
            log.info("binance %s: connection %d open (%s)", self.source, number, self.url)
            return session
        return None

    async def _connect(self) -> ClientConnection | None:
        """One opening handshake; None if the client is stopped meanwhile."""
        assert self._stop_async is not None
        s = self.settings
        attempt = asyncio.ensure_future(
            connect(
                self.url,
                open_timeout=s.open_timeout_s,
                ping_interval=s.ping_interval_s,
                ping_timeout=s.ping_timeout_s,
                close_timeout=CLOSE_TIMEOUT_S,
                user_agent_header=USER_AGENT,
            )
        )
        stop = asyncio.ensure_future(self._stop_async.wait())
        try:
            await asyncio.wait({attempt, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not attempt.done():
            attempt.cancel()
            await asyncio.gather(attempt, return_exceptions=True)
            return None
        return attempt.result()

    async def _watch(self, session: _Session) -> str:
        """Waits for what ends a connection's turn: stop, closed, shutdown or renew."""
        assert self._stop_async is not None and session.reader is not None
        stop = asyncio.ensure_future(self._stop_async.wait())
        shutdown = asyncio.ensure_future(session.shutdown.wait())
        remaining = session.opened + self.settings.reconnect_after_s - time.monotonic()
        try:
            done, _ = await asyncio.wait(
                {session.reader, stop, shutdown},
                timeout=max(0.0, remaining),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stop.cancel()
            shutdown.cancel()
        if stop in done or self._stopping():
            return "stop"
        if shutdown in done:
            return "shutdown"
        if session.reader in done:
            return "closed"
        return "renew"

    async def _read(self, session: _Session) -> None:
        try:
            async for message in session.ws:
                self._on_message(session, message)
        except ConnectionClosed:
            pass  # close code and reason are read from the connection by _closed
        except Exception as exc:  # a bug in handling: drop this connection, reconnect
            log.exception("binance %s: handling a message failed", self.source)
            self._error(f"message handling failed: {exc!r}")
            await session.ws.close(1011, "client error")

    def _closed(self, session: _Session) -> None:
        """An unexpected end of a connection. The backoff was reset only if it had been
        stable for ``backoff_max_s``, so a flapping server keeps backing off."""
        lived = time.monotonic() - session.opened
        ws = session.ws
        self._error(
            f"connection {session.number} closed after {lived:.1f}s: "
            f"code {ws.close_code} {ws.close_reason or ''}".rstrip()
        )

    async def _close(self, session: _Session) -> None:
        await session.ws.close()
        if session.reader is not None:
            await asyncio.gather(session.reader, return_exceptions=True)
        log.info("binance %s: connection %d closed by us", self.source, session.number)

    # ---- messages ----------------------------------------------------------------
    def _on_message(self, session: _Session, message: str | bytes) -> None:
        now = time.time_ns()
        self._last_message_ns = now
        decoded = self.normalizer.decode(message, now)
        if decoded.server_shutdown:
            with self._lock:
                self._server_shutdowns += 1
            log.info("binance %s: serverShutdown on connection %d", self.source, session.number)
            session.shutdown.set()
        if decoded.outputs:
            self.buffer.extend(decoded.outputs)
            self._schedule_flush()
        if decoded.wants_snapshot is not None:
            self._ensure_sync(decoded.wants_snapshot)

    def _schedule_flush(self) -> None:
        if self.buffer.size >= self.settings.flush_max_records and not self._blocked:
            self._flush()
        elif self._flush_handle is None and self.buffer.has_pending():
            assert self._loop is not None
            delay = self.settings.flush_interval_ms / 1000.0
            self._flush_handle = self._loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        """Submits what is waiting, in submissions of at most ``flush_max_records``; a
        refused one is offered again shortly (the buffer holds it meanwhile)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        limit = self.settings.flush_max_records
        while (taken := self.buffer.take(limit)) is not None:
            if not self.runner.submit(Submission(taken.chunks), 0.0):
                self._refused += 1
                self._blocked = True
                assert self._loop is not None
                self._flush_handle = self._loop.call_later(REFUSED_RETRY_S, self._flush)
                return
            self.buffer.commit(taken)
        self._blocked = False

    def _final_flush(self) -> None:
        """At stop: buffered depth updates count as ignored; everything waiting gets a
        short, blocking chance to reach the runner; the rest is counted as dropped."""
        self.buffer.extend(self.normalizer.drain())
        deadline = time.monotonic() + FINAL_FLUSH_S
        limit = self.settings.flush_max_records
        while (taken := self.buffer.take(limit)) is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.runner.submit(Submission(taken.chunks), remaining):
                break
            self.buffer.commit(taken)
        lost = self.buffer.drop_all()
        if lost:
            log.warning("binance %s: %d records dropped at stop (runner full)", self.source, lost)

    # ---- depth snapshots -----------------------------------------------------------
    def _ensure_sync(self, symbol: str) -> None:
        if symbol in self._syncs or self._stopping():
            return
        assert self._loop is not None
        self._syncs[symbol] = self._loop.create_task(self._sync_depth(symbol))

    async def _sync_depth(self, symbol: str) -> None:
        """Fetches snapshots until the symbol's book is synced (retrying with backoff on
        errors, stale snapshots and gaps among the buffered updates)."""
        assert self._loop is not None and self._pool is not None
        book = self.normalizer.books[symbol]
        backoff = Backoff(self.settings.backoff_initial_s, self.settings.backoff_max_s, self._rng)
        url = snapshot_url(self.settings, symbol)
        timeout = self.settings.snapshot_timeout_s
        log.info(
            "binance %s: syncing the %s book (gaps so far: %d)", self.source, symbol, book.gaps
        )
        try:
            while book.wants_snapshot() and not self._stopping():
                try:
                    body = await self._loop.run_in_executor(self._pool, http_get, url, timeout)
                    snap = parse_depth_snapshot(body)
                except (SnapshotError, ValueError) as exc:
                    self._error(f"depth snapshot {symbol}: {exc}")
                    retry = exc.retry_after if isinstance(exc, SnapshotError) else None
                    if await self._sleep(max(backoff.next(), retry or 0.0)):
                        return
                    continue
                if not book.wants_snapshot():  # defensive: only this task syncs the book
                    return
                outputs = self.normalizer.apply_snapshot(symbol, snap)
                if outputs:
                    self.buffer.extend(outputs)
                    self._schedule_flush()
                if book.synced:
                    log.info(
                        "binance %s: %s book synced at update %d",
                        self.source, symbol, book.last_update_id,
                    )  # fmt: skip
                elif book.wants_snapshot() and await self._sleep(backoff.next()):
                    return
        finally:
            self._syncs.pop(symbol, None)

    # ---- state -----------------------------------------------------------------------
    def _set_state(self, state: ConnectionState, error: str | None = None) -> None:
        with self._lock:
            if state != self._state:
                self._state = state
                self._since = time.time()
            if error is not None:
                self._errors += 1
                self._last_error = error

    def _error(self, message: str) -> None:
        log.warning("binance %s: %s", self.source, message)
        with self._lock:
            self._errors += 1
            self._last_error = message
