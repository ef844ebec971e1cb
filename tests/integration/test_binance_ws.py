"""Binance market data: the client against a local combined-stream WebSocket server and a
local REST depth endpoint, feeding a real pipeline, committer and DuckDB store.

The server speaks Binance's wire format (messages hand-written after the payloads in
domain-facts §7): ``{"stream": …, "data": …}`` wrappers, server pings, drops, refused
handshakes, ``serverShutdown``. The order book and its sync rules, the normaliser, the
output buffer and the backoff are also tested without sockets.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from tradelog.model.events import Event, Reject, RejectReason
from tradelog.parsing.base import Record
from tradelog.pipeline.live import LiveRunner, Submission
from tradelog.pipeline.runner import Committer, Pipeline
from tradelog.sources.binance_ws import (
    Backoff,
    BinanceClient,
    BinanceNormalizer,
    DepthSnapshot,
    DepthUpdate,
    OrderBook,
    Output,
    OutputBuffer,
    StepKind,
    combined_stream_url,
    parse_depth_snapshot,
)
from tradelog.sources.settings import BinanceSettings
from tradelog.stages.clean import Cleaner, CleanSettings
from tradelog.storage.duckdb_store import DuckDBStore

pytestmark = pytest.mark.integration

T = TypeVar("T")
SOURCE = "binance"
T0 = 1_700_000_000_000  # ms
STREAMS4 = ["trade", "aggTrade", "bookTicker", "depth"]


def wait_until(pred: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# ---------------------------------------------------------------- Binance-format messages


def trade(
    t: int, price: str = "16850.12", qty: str = "0.015", maker: bool = True
) -> dict[str, Any]:
    return {"e": "trade", "E": T0 + t, "s": "BTCUSDT", "t": t, "p": price, "q": qty,
            "T": T0 + t, "m": maker, "M": True}  # fmt: skip


def agg_trade(
    a: int, price: str = "16850.10", qty: str = "0.5", maker: bool = False
) -> dict[str, Any]:
    return {"e": "aggTrade", "E": T0 + a, "s": "BTCUSDT", "a": a, "p": price, "q": qty,
            "f": 100 * a, "l": 100 * a + 5, "T": T0 + a, "m": maker, "M": True}  # fmt: skip


def book_ticker(u: int, bid: str = "16850.10", ask: str = "16850.20") -> dict[str, Any]:
    return {"u": u, "s": "BTCUSDT", "b": bid, "B": "1.50000000", "a": ask, "A": "2.25000000"}


def depth(first: int, last: int, bids: list[list[str]] | None = None,
          asks: list[list[str]] | None = None) -> dict[str, Any]:  # fmt: skip
    return {"e": "depthUpdate", "E": T0 + last, "s": "BTCUSDT", "U": first, "u": last,
            "b": bids or [], "a": asks or []}  # fmt: skip


def book_id(client: BinanceClient) -> int | None:
    book = client.book("BTCUSDT")
    return book.last_update_id if book is not None else None


def snapshot(last: int, bids: list[list[str]], asks: list[list[str]]) -> dict[str, Any]:
    return {"lastUpdateId": last, "bids": bids, "asks": asks}


def wrap(stream: str, data: dict[str, Any]) -> str:
    return json.dumps({"stream": stream, "data": data})


# ---------------------------------------------------------------- local servers


@dataclass
class Conn:
    ws: ServerConnection
    path: str
    opened: float
    closed: float | None = None
    close_code: int | None = None


class FakeBinance:
    """A combined-stream WebSocket server on 127.0.0.1 (random port) on its own loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.conns: list[Conn] = []
        self.attempts: list[float] = []
        self.refuse_next = 0
        """Handshakes still to answer with 503 (a flapping endpoint)."""
        self.server: Server = self.call(self._start())
        self.port = self.server.sockets[0].getsockname()[1]

    async def _start(self) -> Server:
        return await serve(
            self._handler, "127.0.0.1", 0, ping_interval=None, process_request=self._process
        )

    def _process(self, conn: ServerConnection, request: Request) -> Response | None:
        self.attempts.append(time.monotonic())
        if self.refuse_next > 0:
            self.refuse_next -= 1
            return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "try later\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        conn = Conn(ws, ws.request.path if ws.request else "", time.monotonic())
        self.conns.append(conn)
        await ws.wait_closed()
        conn.closed = time.monotonic()
        conn.close_code = ws.close_code

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def current(self) -> Conn:
        open_ = [c for c in self.conns if c.closed is None]
        assert open_, "no open connection"
        return open_[-1]

    def wait_connections(self, n: int, timeout: float = 5.0) -> list[Conn]:
        wait_until(lambda: len(self.conns) >= n, timeout, f"{n} connection(s)")
        return self.conns

    def send(self, stream: str, data: dict[str, Any]) -> None:
        self.send_text(wrap(stream, data))

    def send_text(self, text: str) -> None:
        self.call(self.current().ws.send(text))

    def ping(self, payload: bytes) -> float:
        """Sends a ping and returns the latency once the matching pong came back."""

        async def go(ws: ServerConnection) -> float:
            waiter = await ws.ping(payload)
            return await asyncio.wait_for(waiter, 5)

        return self.call(go(self.current().ws))

    def drop(self) -> None:
        """Abrupt loss of the TCP connection (no close frame)."""
        ws = self.current().ws

        async def abort() -> None:
            ws.transport.abort()

        self.call(abort())

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()

        self.call(close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class DepthEndpoint:
    """``GET /api/v3/depth`` on 127.0.0.1: serves the snapshots in order (the last repeats)."""

    def __init__(self, snapshots: list[dict[str, Any]]) -> None:
        self.snapshots = list(snapshots)
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                snap = outer.snapshots.pop(0) if len(outer.snapshots) > 1 else outer.snapshots[0]
                body = json.dumps(snap).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class MaxRandom(random.Random):
    """Backoff always takes its full bound (so waits are known lower bounds)."""

    def uniform(self, a: float, b: float) -> float:
        return b


# ---------------------------------------------------------------- pipeline harness


@dataclass
class Live:
    """Real pipeline + committer + live runner on a DuckDB store; the loop in a thread."""

    store: DuckDBStore
    runner: LiveRunner
    committer: Committer
    thread: threading.Thread | None = None

    @classmethod
    def open(cls, path: Path, max_inbox: int = 256) -> Live:
        store = DuckDBStore(str(path))
        pipeline = Pipeline(store)
        pipeline.open()
        committer = Committer(store)
        return cls(store, LiveRunner(pipeline, committer, [], max_inbox=max_inbox), committer)

    def start(self) -> None:
        self.thread = threading.Thread(target=self.runner.run, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.runner.stop()
        if self.thread is not None:
            self.thread.join(10)
        self.committer.close()
        self.store.close()

    def rows(self, sql: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.store.query(sql).to_pylist()
        return result

    def events(self, kind: str) -> list[dict[str, Any]]:
        return self.rows(f"SELECT * FROM events WHERE kind = '{kind}' ORDER BY event_id")

    def position(self, stream: str) -> dict[str, Any] | None:
        rows = self.rows(f"SELECT * FROM source_positions WHERE stream = 'binance:{stream}'")
        return rows[0] if rows else None

    def wait_records(self, stream: str, n: int, timeout: float = 5.0) -> dict[str, Any]:
        pos: dict[str, Any] = wait_until(
            lambda: (p := self.position(stream)) is not None and p["lines_read"] >= n and p,
            timeout,
            f"{n} records of {stream}",
        )
        return pos


@dataclass
class Env:
    server: FakeBinance
    depth: DepthEndpoint
    live: Live
    clients: list[BinanceClient] = field(default_factory=list)

    def settings(self, **kw: Any) -> BinanceSettings:
        base: dict[str, Any] = {
            "symbols": ["BTCUSDT"],
            "ws_url": f"ws://127.0.0.1:{self.server.port}",
            "rest_url": f"http://127.0.0.1:{self.depth.port}",
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.2,
            "flush_interval_ms": 2.0,
        }
        base.update(kw)
        return BinanceSettings(**base)

    def client(self, rng: random.Random | None = None, **kw: Any) -> BinanceClient:
        client = BinanceClient(
            self.settings(**kw), Cleaner(SOURCE, CleanSettings()), self.live.runner, rng
        )
        self.clients.append(client)
        client.start()
        return client


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    server = FakeBinance()
    depth_ep = DepthEndpoint([snapshot(100, [["100.00", "1.0"]], [["101.00", "1.0"]])])
    live = Live.open(tmp_path / "store.duckdb")
    live.start()
    e = Env(server, depth_ep, live)
    try:
        yield e
    finally:
        for c in e.clients:  # clients first: what they hold reaches the runner
            c.stop()
        live.close()
        server.stop()
        depth_ep.stop()


# ---------------------------------------------------------------- over the wire


def test_trades_and_agg_trades_become_market_trades(env: Env) -> None:
    client = env.client(streams=["trade", "aggTrade"])
    (conn,) = env.server.wait_connections(1)
    assert conn.path == "/stream?streams=btcusdt@trade/btcusdt@aggTrade"
    env.server.send("btcusdt@trade", trade(1, maker=True))
    env.server.send("btcusdt@trade", trade(2, price="16851.00", maker=False))
    env.server.send("btcusdt@aggTrade", agg_trade(7, maker=True))
    env.server.send("btcusdt@trade", trade(1, maker=True))  # received again: a duplicate

    pos = env.live.wait_records("btcusdt@trade", 3)
    assert (pos["events"], pos["duplicates"], pos["rejects"]) == (2, 1, 0)
    env.live.wait_records("btcusdt@aggTrade", 1)
    rows = {r["event_id"]: r for r in env.live.events("market_trade")}
    assert sorted(rows) == ["binance:BTCUSDT:agg:7", "binance:BTCUSDT:trade:1",
                            "binance:BTCUSDT:trade:2"]  # fmt: skip
    t1, t2, a7 = (rows["binance:BTCUSDT:trade:1"], rows["binance:BTCUSDT:trade:2"],
                  rows["binance:BTCUSDT:agg:7"])  # fmt: skip
    assert (t1["side"], t1["exec_id"], t1["price"], t1["qty"]) == ("sell", "1", 16850.12, 0.015)
    assert (t2["side"], t2["exec_id"], t2["price"]) == ("buy", "2", 16851.0)
    assert (a7["side"], a7["exec_id"], a7["qty"]) == ("sell", "7", 0.5)
    assert t1["ts"] == (T0 + 1) * 1_000_000
    assert (t1["symbol"], t1["venue"], t1["source"]) == ("BTCUSDT", "BINANCE", SOURCE)
    assert json.loads(t1["raw"]) == {"stream": "btcusdt@trade", "data": trade(1)}
    state = client.state()
    assert state.messages["btcusdt@trade"] == 3 and state.messages["btcusdt@aggTrade"] == 1
    assert state.state == "connected" and state.errors == 0


def test_book_ticker_becomes_quotes_and_bad_messages_become_rejects(env: Env) -> None:
    env.client(streams=["bookTicker"])
    env.server.wait_connections(1)
    before = time.time_ns()
    env.server.send("btcusdt@bookTicker", book_ticker(400900217))
    env.server.send("btcusdt@bookTicker", book_ticker(400900218, bid="16851", ask="16850"))
    env.server.send("ethusdt@trade", trade(5))  # a stream we did not subscribe to
    env.server.send_text("{not json")

    pos = env.live.wait_records("btcusdt@bookTicker", 2)
    after = time.time_ns()
    assert (pos["events"], pos["rejects"]) == (1, 1)
    (q,) = env.live.events("quote")
    assert q["event_id"] == "binance:BTCUSDT:bt:400900217"
    assert (q["bid"], q["ask"], q["bid_size"], q["ask_size"]) == (16850.1, 16850.2, 1.5, 2.25)
    assert before <= q["ts"] <= after  # no event time on spot: stamped on receipt
    env.live.wait_records("other", 2)
    reasons = sorted(r["reason"] for r in env.live.rows("SELECT reason FROM rejects"))
    assert reasons == ["invalid_price", "malformed", "unsupported_message"]


def test_server_ping_is_answered_with_a_pong(env: Env) -> None:
    client = env.client(ping_interval_s=None)  # only the server pings
    env.server.wait_connections(1)
    latency = env.server.ping(b"binance-ping-1")  # resolves only on a pong with this payload
    assert latency >= 0
    assert client.state().state == "connected"


def test_reconnects_with_backoff_after_a_drop(env: Env) -> None:
    client = env.client(rng=MaxRandom())
    env.server.wait_connections(1)
    env.server.send("btcusdt@trade", trade(1))
    env.live.wait_records("btcusdt@trade", 1)

    env.server.refuse_next = 2  # the endpoint flaps: two handshakes refused
    dropped = time.monotonic()
    env.server.drop()
    env.server.wait_connections(2)
    env.server.send("btcusdt@trade", trade(2))
    env.server.send("btcusdt@trade", trade(1))  # re-sent after the reconnect
    pos = env.live.wait_records("btcusdt@trade", 3)
    assert (pos["events"], pos["duplicates"]) == (2, 1)

    # three attempts after the drop, spaced by the doubling bound: 0.05, 0.1, 0.2 s
    retries = [t for t in env.server.attempts if t > dropped]
    assert len(retries) == 3
    assert retries[0] - dropped >= 0.05
    assert retries[1] - retries[0] >= 0.1 and retries[2] - retries[1] >= 0.2
    state = client.state()
    assert (state.state, state.connects, state.reconnects) == ("connected", 2, 1)
    assert state.errors == 3  # the drop and two refused handshakes
    assert state.last_error is not None and "503" in state.last_error


def test_server_shutdown_reconnects_at_once(env: Env) -> None:
    # with this backoff a reconnect through the backoff path would take 30 s
    client = env.client(rng=MaxRandom(), backoff_initial_s=30.0, backoff_max_s=60.0)
    env.server.wait_connections(1)
    env.server.send_text(json.dumps({"stream": "!serverShutdown",
                                     "data": {"e": "serverShutdown", "E": T0}}))  # fmt: skip
    first, second = env.server.wait_connections(2, timeout=3.0)
    wait_until(lambda: first.closed is not None, 3.0, "the old connection to close")
    assert first.close_code == 1000  # closed by the client…
    assert first.closed is not None and first.closed >= second.opened  # …after the new one
    env.server.send("btcusdt@trade", trade(3))
    env.live.wait_records("btcusdt@trade", 1)
    state = client.state()
    assert (state.server_shutdowns, state.reconnects, state.errors) == (1, 1, 0)


def test_connection_is_renewed_before_the_cut(env: Env) -> None:
    client = env.client(reconnect_after_s=0.3)
    first, second = env.server.wait_connections(2)[:2]
    wait_until(lambda: first.closed is not None, 3.0, "the old connection to close")
    assert first.close_code == 1000
    assert first.closed is not None and first.closed >= second.opened  # make before break
    assert client.state().renewals >= 1
    env.server.send("btcusdt@trade", trade(9))
    env.live.wait_records("btcusdt@trade", 1)
    assert [r["event_id"] for r in env.live.events("market_trade")] == ["binance:BTCUSDT:trade:9"]


def test_depth_book_syncs_drops_stale_updates_and_deletes_levels(env: Env) -> None:
    env.depth.snapshots = [snapshot(100, [["100.00", "1.0"], ["99.50", "2.0"]],
                                    [["100.50", "1.0"], ["101.00", "3.0"]])]  # fmt: skip
    client = env.client(streams=["depth"], depth_snapshot_limit=500)
    env.server.wait_connections(1)
    name = "btcusdt@depth@100ms"
    env.server.send(name, depth(95, 99, bids=[["98.00", "5.0"]]))  # already in the snapshot
    env.server.send(name, depth(100, 101, bids=[["100.00", "1.5"]]))  # covers 101
    env.server.send(name, depth(102, 102, asks=[["100.50", "0.00000000"]]))  # deletes
    env.server.send(name, depth(103, 103, bids=[["99.00", "4.0"]]))  # below the top

    book = wait_until(
        lambda: (b := client.book("btcusdt")) is not None and b.last_update_id == 103 and b,
        what="the book at update 103",
    )
    assert book.synced
    assert book.bids == ((100.0, 1.5), (99.5, 2.0), (99.0, 4.0))
    assert book.asks == ((101.0, 3.0),)
    assert env.depth.requests == ["/api/v3/depth?symbol=BTCUSDT&limit=500"]

    pos = env.live.wait_records(name, 4)
    assert (pos["events"], pos["ignored"]) == (2, 2)  # stale one and a top-unchanged one
    quotes = env.live.events("quote")
    assert [q["event_id"] for q in quotes] == ["binance:BTCUSDT:depth:101",
                                               "binance:BTCUSDT:depth:102"]  # fmt: skip
    assert [(q["bid"], q["bid_size"], q["ask"], q["ask_size"]) for q in quotes] == [
        (100.0, 1.5, 100.5, 1.0),
        (100.0, 1.5, 101.0, 3.0),
    ]
    assert quotes[0]["ts"] == (T0 + 101) * 1_000_000
    state = client.state()
    assert (state.depth_snapshots, state.gaps, state.depth_resyncs) == (1, 0, 0)


def test_depth_gap_resyncs_from_a_new_snapshot(env: Env) -> None:
    env.depth.snapshots = [
        snapshot(100, [["100.00", "1.0"]], [["101.00", "1.0"]]),
        snapshot(200, [["100.00", "2.0"]], [["101.00", "2.0"]]),
    ]
    client = env.client(streams=["depth"])
    env.server.wait_connections(1)
    name = "btcusdt@depth@100ms"
    env.server.send(name, depth(101, 101, bids=[["100.00", "1.5"]]))
    wait_until(lambda: book_id(client) == 101, what="update 101")
    env.server.send(name, depth(105, 106, bids=[["100.00", "9.0"]]))  # 102..104 missed
    wait_until(lambda: book_id(client) == 200, what="the resync")
    env.server.send(name, depth(201, 201, asks=[["101.00", "0"]]))
    book = wait_until(
        lambda: (b := client.book("BTCUSDT")) is not None and b.last_update_id == 201 and b,
        what="update 201",
    )
    assert book.bids == ((100.0, 2.0),) and book.asks == ()
    assert len(env.depth.requests) == 2
    state = client.state()
    assert (state.gaps, state.depth_resyncs, state.depth_snapshots) == (1, 1, 2)

    env.live.wait_records(name, 3)
    quotes = env.live.events("quote")
    assert [(q["event_id"], q["bid"], q["bid_size"], q["ask"]) for q in quotes] == [
        ("binance:BTCUSDT:depth:101", 100.0, 1.5, 101.0),
        ("binance:BTCUSDT:depth:201", 100.0, 2.0, None),
    ]


def test_full_inbox_buffers_then_drops_oldest_quotes_first(env: Env, tmp_path: Path) -> None:
    live = Live.open(tmp_path / "slow.duckdb", max_inbox=1)  # its loop is not running yet
    settings = env.settings(streams=["trade", "bookTicker"], flush_max_records=2,
                            max_buffered_records=4)  # fmt: skip
    client = BinanceClient(settings, Cleaner(SOURCE, CleanSettings()), live.runner)
    client.start()
    try:
        env.server.wait_connections(1)
        env.server.send("btcusdt@bookTicker", book_ticker(1))
        wait_until(lambda: live.runner.inbox.qsize() == 1, what="the first submission")
        # B = bookTicker, T = trade; buffer bound 4: quotes B2..B5 then trade T1 are dropped
        sequence = ["B2", "B3", "T1", "B4", "T2", "B5", "T3", "T4", "T5"]
        for code in sequence:
            n = int(code[1])
            if code[0] == "B":
                env.server.send("btcusdt@bookTicker", book_ticker(n))
            else:
                env.server.send("btcusdt@trade", trade(n))
        wait_until(lambda: sum(client.state().messages.values()) == 10, what="10 messages")
        state = client.state()
        assert (state.buffered, state.dropped_quotes, state.dropped_trades) == (4, 4, 1)
        assert state.refused_submissions >= 1 and live.runner.stats.refused >= 1

        live.start()  # the runner catches up: what was kept is submitted on the next retry
        wait_until(lambda: len(live.events("market_trade")) == 4, what="the kept trades")
        assert [r["event_id"] for r in live.events("market_trade")] == [
            f"binance:BTCUSDT:trade:{i}" for i in (2, 3, 4, 5)
        ]
        assert [r["event_id"] for r in live.events("quote")] == ["binance:BTCUSDT:bt:1"]
        wait_until(lambda: client.state().buffered == 0, what="an empty buffer")
    finally:
        client.stop()
        live.close()


def test_stop_submits_what_is_buffered(env: Env) -> None:
    client = env.client(flush_interval_ms=10_000.0)  # nothing leaves on its own
    env.server.wait_connections(1)
    env.server.send("btcusdt@trade", trade(1))
    wait_until(lambda: client.state().buffered == 1, what="a buffered trade")
    client.stop()
    assert client.state().state == "stopped"
    env.live.wait_records("btcusdt@trade", 1)
    assert len(env.live.events("market_trade")) == 1


def test_stop_interrupts_a_handshake_that_never_completes() -> None:
    """A server that accepts TCP but never answers: stop does not wait for open_timeout_s."""

    class Target:
        def submit(self, sub: Submission, timeout: float = 0.0) -> bool:
            return True

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        settings = BinanceSettings(symbols=["BTCUSDT"], ws_url=f"ws://127.0.0.1:{port}",
                                   open_timeout_s=60.0)  # fmt: skip
        client = BinanceClient(settings, Cleaner(SOURCE, CleanSettings()), Target())
        client.start()
        wait_until(lambda: client.state().state == "connecting", what="a handshake in progress")
        client.stop(timeout=5.0)
        assert client.state().state == "stopped"
        assert client.state().connects == 0


# ---------------------------------------------------------------- without sockets


def upd(first: int, last: int, bids: list[tuple[float, float]] | None = None,
        asks: list[tuple[float, float]] | None = None) -> DepthUpdate:  # fmt: skip
    return DepthUpdate(first_id=first, last_id=last, event_time_ms=T0 + last,
                       bids=bids or [], asks=asks or [], seq=last)  # fmt: skip


def snap(
    last: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]]
) -> DepthSnapshot:
    return DepthSnapshot(last_update_id=last, bids=bids, asks=asks)


def test_book_buffers_until_a_snapshot_then_applies_in_order() -> None:
    book = OrderBook("BTCUSDT", levels_kept=5)
    assert not book.wants_snapshot()  # nothing buffered yet: too early for a snapshot
    assert book.feed(upd(8, 10, bids=[(99.0, 7.0)])) == []
    assert book.feed(upd(11, 12, bids=[(100.0, 2.0)], asks=[(101.0, 0.0)])) == []
    assert book.wants_snapshot()
    steps = book.apply_snapshot(snap(10, [(100.0, 1.0), (99.0, 1.0)], [(101.0, 1.0), (102.0, 1.0)]))
    assert [s.kind for s in steps] == [StepKind.STALE, StepKind.APPLIED]
    assert book.synced and book.last_update_id == 12 and not book.wants_snapshot()
    assert book.bids == {100.0: 2.0, 99.0: 1.0}  # the stale update (99 → 7) was not applied
    assert book.asks == {102.0: 1.0}  # qty 0 deleted 101
    assert book.top.bids == ((100.0, 2.0), (99.0, 1.0)) and book.top.asks == ((102.0, 1.0),)
    top = steps[1].top
    assert top is not None and (top.bid, top.bid_size, top.ask, top.ask_size) == (
        100.0,
        2.0,
        102.0,
        1.0,
    )

    (dup,) = book.feed(upd(12, 12, bids=[(100.0, 50.0)]))  # u <= the book's id
    assert dup.kind is StepKind.STALE and book.bids[100.0] == 2.0
    (deeper,) = book.feed(upd(13, 13, bids=[(98.0, 1.0)], asks=[(150.0, 0.0)]))
    assert deeper.kind is StepKind.APPLIED and not deeper.changed  # top unchanged
    assert 150.0 not in book.asks  # deleting an unknown level is harmless


def test_book_gap_discards_and_resyncs() -> None:
    book = OrderBook("BTCUSDT")
    book.feed(upd(5, 5))
    book.apply_snapshot(snap(5, [(10.0, 1.0)], [(11.0, 1.0)]))
    assert book.synced
    assert book.feed(upd(6, 7, bids=[(10.0, 2.0)]))[0].kind is StepKind.APPLIED
    assert book.feed(upd(9, 9, bids=[(10.0, 3.0)])) == []  # 8 is missing: a gap
    assert (book.gaps, book.resyncs, book.synced) == (1, 1, False)
    assert book.wants_snapshot() and [u.first_id for u in book.buffer] == [9]
    assert not book.top.synced and book.top.bids == ()
    steps = book.apply_snapshot(snap(8, [(10.0, 4.0)], [(11.0, 1.0)]))
    assert [s.kind for s in steps] == [StepKind.APPLIED]
    assert book.bids == {10.0: 3.0} and book.last_update_id == 9 and book.snapshots == 2


def test_book_refetches_a_snapshot_older_than_the_stream() -> None:
    book = OrderBook("BTCUSDT")
    book.feed(upd(101, 103))
    assert book.apply_snapshot(snap(50, [(1.0, 1.0)], [])) == []
    assert (book.synced, book.stale_snapshots, book.gaps) == (False, 1, 0)
    assert book.wants_snapshot()  # the buffer is kept for the next snapshot
    (step,) = book.apply_snapshot(snap(100, [(1.0, 1.0)], []))
    assert step.kind is StepKind.APPLIED and book.last_update_id == 103


def test_book_bounds_its_buffer_and_levels() -> None:
    book = OrderBook("BTCUSDT", levels_kept=2, max_levels=10, max_buffer=2)
    book.feed(upd(1, 1))
    book.feed(upd(2, 2))
    (gone,) = book.feed(upd(3, 3))
    assert gone.kind is StepKind.DISCARDED and gone.update.last_id == 1
    book.apply_snapshot(snap(3, [(float(p), 1.0) for p in range(1, 12)], []))
    assert len(book.bids) <= 10 and max(book.bids) == 11.0  # the far levels were trimmed
    assert book.top.bids == ((11.0, 1.0), (10.0, 1.0))


def normalizer(**kw: Any) -> BinanceNormalizer:
    settings = BinanceSettings(symbols=["btcusdt"], **kw)
    return BinanceNormalizer(settings, Cleaner(SOURCE, CleanSettings()), "ws://test")


def only(outputs: list[Output]) -> Event | Reject:
    (out,) = outputs
    assert out.outcome is not None
    return out.outcome


def test_normalizer_trades_and_ticker() -> None:
    norm = normalizer(streams=["trade", "aggTrade", "bookTicker"])
    ev = only(norm.decode(wrap("btcusdt@trade", trade(12345, maker=True)), 1).outputs)
    assert isinstance(ev, Event)
    assert (ev.kind, ev.event_id, ev.side, ev.exec_id, ev.ts) == (
        "market_trade", "binance:BTCUSDT:trade:12345", "sell", "12345", (T0 + 12345) * 1_000_000
    )  # fmt: skip
    ev = only(norm.decode(wrap("btcusdt@aggTrade", agg_trade(3, maker=False)), 1).outputs)
    assert isinstance(ev, Event) and (ev.event_id, ev.side) == ("binance:BTCUSDT:agg:3", "buy")
    ticker = book_ticker(77) | {"B": "0.00000000"}  # an empty bid side
    ev = only(norm.decode(wrap("btcusdt@bookTicker", ticker).encode(), 42).outputs)
    assert isinstance(ev, Event)
    assert (ev.kind, ev.ts, ev.bid, ev.ask, ev.ask_size) == ("quote", 42, None, 16850.2, 2.25)
    assert norm.counts == {"btcusdt@trade": 1, "btcusdt@aggTrade": 1,
                           "btcusdt@bookTicker": 1, "other": 0}  # fmt: skip


@pytest.mark.parametrize(
    ("message", "reason", "stream"),
    [
        (b"\xff\xfe", RejectReason.ENCODING, "other"),
        ("[1, 2]", RejectReason.UNSUPPORTED_MESSAGE, "other"),
        ('{"result": null, "id": 1}', RejectReason.UNSUPPORTED_MESSAGE, "other"),
        (wrap("btcusdt@trade", {k: v for k, v in trade(1).items() if k != "T"}),
         RejectReason.MISSING_FIELD, "btcusdt@trade"),
        (wrap("btcusdt@trade", trade(1) | {"T": "soon"}), RejectReason.INVALID_TIMESTAMP,
         "btcusdt@trade"),
        (wrap("btcusdt@trade", trade(1, qty="-1")), RejectReason.INVALID_QUANTITY,
         "btcusdt@trade"),
        (wrap("btcusdt@depth@100ms", depth(1, 2, bids=[["x", "1"]])), RejectReason.INVALID_NUMBER,
         "btcusdt@depth@100ms"),
        (wrap("btcusdt@depth@100ms", {"e": "depthUpdate", "U": 1}), RejectReason.MALFORMED,
         "btcusdt@depth@100ms"),
    ],
)  # fmt: skip
def test_normalizer_rejects_bad_messages(
    message: str | bytes, reason: RejectReason, stream: str
) -> None:
    norm = normalizer(streams=["trade", "depth"])
    decoded = norm.decode(message, 1)
    (out,) = decoded.outputs
    assert out.stream == stream
    assert isinstance(out.outcome, Reject) and out.outcome.reason == reason


def test_normalizer_recognises_server_shutdown() -> None:
    norm = normalizer()
    combined = json.dumps({"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": 1}})
    assert norm.decode(combined, 1).server_shutdown
    assert norm.decode(json.dumps({"e": "serverShutdown", "E": 1}), 1).server_shutdown
    assert not norm.decode(wrap("btcusdt@trade", trade(1)), 1).server_shutdown


def test_normalizer_depth_asks_for_a_snapshot_and_emits_quotes() -> None:
    norm = normalizer(streams=["depth"], depth_quotes="every_update")
    name = "btcusdt@depth@100ms"
    decoded = norm.decode(wrap(name, depth(10, 11, bids=[["5", "1"]])), 1)
    assert decoded.outputs == [] and decoded.wants_snapshot == "BTCUSDT"
    body = json.dumps(snapshot(10, [["5", "3"]], [["6", "1"]])).encode()
    (out,) = norm.apply_snapshot("BTCUSDT", parse_depth_snapshot(body))
    assert isinstance(out.outcome, Event) and out.outcome.event_id == "binance:BTCUSDT:depth:11"
    assert (out.outcome.bid, out.outcome.bid_size, out.outcome.ask) == (5.0, 1.0, 6.0)
    # every_update: a quote even when the top did not change
    (again,) = norm.decode(wrap(name, depth(12, 12, bids=[["4", "1"]])), 2).outputs
    assert isinstance(again.outcome, Event) and again.outcome.bid == 5.0
    with pytest.raises(ValueError, match="depth snapshot"):
        parse_depth_snapshot(b'{"bids": []}')


def test_output_buffer_sheds_quotes_before_trades() -> None:
    cleaner = Cleaner(SOURCE, CleanSettings())
    buf = OutputBuffer(SOURCE, "ws://test", ["q"], max_records=3)

    def out(stream: str, seq: int, kind: str | None, t: int = 0) -> Output:
        if kind is None:
            return Output(stream, seq, None)
        fields = {"kind": kind, "symbol": "X", "ts_ns": t, "price": 1, "qty": 1, "bid": 1}
        ev = cleaner.clean(Record(fields, "", seq, seq + 1), "", stream, ts_ingest=t)
        assert isinstance(ev, Event)
        return Output(stream, seq, ev)

    buf.extend([out("q", 0, "quote", 0), out("t", 0, "market_trade", 1),
                out("q", 1, "quote", 2), out("q", 2, None)])  # fmt: skip
    buf.extend([out("t", 1, "market_trade", 3)])
    assert (buf.size, buf.dropped_quotes, buf.dropped_trades) == (3, 1, 0)
    buf.extend([out("t", 2, "market_trade", 4), out("t", 3, "market_trade", 5)])
    assert (buf.dropped_quotes, buf.dropped_trades) == (2, 1)  # no quote left: oldest trade

    taken = buf.take(2)
    assert taken is not None
    by_stream = {c.stream.stream: c for c in taken.chunks}
    assert by_stream["binance:q"].ignored == 1 and by_stream["binance:q"].events == []
    assert [e.ts for e in by_stream["binance:t"].events] == [3, 4]
    assert by_stream["binance:t"].end == 3  # right after the last record taken
    buf.commit(taken)
    assert buf.size == 1 and buf.has_pending()


def test_backoff_is_exponential_with_full_jitter() -> None:
    b = Backoff(0.5, 4.0, MaxRandom())
    assert [b.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    b.reset()
    assert b.next() == 0.5
    jittered = Backoff(1.0, 8.0, random.Random(7))
    delays = [jittered.next() for _ in range(50)]
    assert all(0 <= d <= 8.0 for d in delays) and len(set(delays)) == 50


def test_settings_are_validated_with_the_key_named() -> None:
    s = msgspec.convert({"symbols": ["BTCUSDT", "ethusdt"], "streams": ["depth"]}, BinanceSettings)
    assert combined_stream_url(s) == (
        "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms"
    )
    assert s.reconnect_after_s < 24 * 3600
    bad = [
        ({"symbols": []}, "symbols"),
        ({"symbols": ["BTC-USDT"]}, "symbols"),
        ({"symbols": ["A1"], "streams": ["kline"]}, "streams"),
        ({"symbols": ["A1"], "reconnect_after_s": 86400}, "reconnect_after_s"),
        ({"symbols": ["A1"], "backoff_initial_s": 5, "backoff_max_s": 1}, "backoff"),
        ({"symbols": ["A1"], "depth_levels_kept": 0}, "depth_levels_kept"),
        ({"symbols": ["A1"], "ws_url": "http://x"}, "ws_url"),
        ({"symbols": [f"S{i}" for i in range(300)], "streams": STREAMS4}, "1024"),
        ({"symbols": ["A1"], "reconnect": 5}, "reconnect"),
    ]
    for data, key in bad:
        with pytest.raises(msgspec.ValidationError, match=key):
            msgspec.convert(data, BinanceSettings)


def test_client_before_start() -> None:
    """A client that was never started: idle, no book without a depth stream, stop is a no-op."""

    class Target:
        def submit(self, sub: Submission, timeout: float = 0.0) -> bool:
            return True

    settings = BinanceSettings(symbols=["BTCUSDT"], ws_url="ws://127.0.0.1:9")
    client = BinanceClient(settings, Cleaner(SOURCE, CleanSettings()), Target())
    assert client.book("BTCUSDT") is None
    assert client.state().state == "idle"
    client.stop()
