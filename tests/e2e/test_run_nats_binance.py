"""``tradelog run`` wired from config alone: a ``nats`` source (JetStream durable consumer), a
``nats`` sink (committed events republished with ``Nats-Msg-Id``) and a ``binance`` source
(pointed at a local WebSocket server speaking Binance's combined-stream format), with their
connection states in ``/log_stream/statistics``; restart reads nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from websockets.asyncio.server import ServerConnection, serve

from tests.e2e.test_run_crash import free_port, start
from tests.e2e.test_run_http_live import get

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

NATS_URL = "nats://127.0.0.1:4222"
T0 = 1_741_012_200_000  # 2025-03-03T14:30:00Z in ms


def wait_until(check: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def nats_call(work: Callable[[Any], Any]) -> Any:
    async def main() -> Any:
        nc = await nats.connect(NATS_URL)
        try:
            return await work(nc)
        finally:
            await nc.close()

    return asyncio.run(main())


class FakeBinance:
    """A local WebSocket server that sends each connection a book ticker and two trades."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", self.port):
            self._ready.set()
            await self._stop.wait()

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        messages = [
            {"stream": "btcusdt@bookTicker", "data": {"u": 1, "s": "BTCUSDT", "b": "100.0",
             "B": "1.5", "a": "100.2", "A": "2.0"}},
            {"stream": "btcusdt@trade", "data": {"e": "trade", "E": T0, "s": "BTCUSDT", "t": 7,
             "p": "100.1", "q": "0.5", "T": T0, "m": True, "M": True}},
            {"stream": "btcusdt@trade", "data": {"e": "trade", "E": T0 + 1, "s": "BTCUSDT",
             "t": 8, "p": "100.2", "q": "0.25", "T": T0 + 1, "m": False, "M": True}},
        ]  # fmt: skip
        for m in messages:
            await ws.send(json.dumps(m))
        await ws.wait_closed()

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture
def names() -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:10]
    n = {"stream": f"TLE_{tag}", "subject": f"tle.{tag}.in", "sink": f"TLE_OUT_{tag}",
         "prefix": f"tle.{tag}.out"}  # fmt: skip
    yield n

    async def cleanup(nc: Any) -> None:
        js = nc.jetstream()
        for s in (n["stream"], n["sink"]):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(s)

    nats_call(cleanup)


def write_config(tmp_path: Path, n: dict[str, str], ws_port: int) -> Path:
    cfg = tmp_path / "tradelog.toml"
    cfg.write_text(
        f"""
[store]
url = "duckdb:///{tmp_path / "store.duckdb"}"

[[sources]]
name = "bus"
type = "nats"
[sources.nats]
url = "{NATS_URL}"
stream = "{n["stream"]}"
subject = "{n["subject"]}"
durable = "tl"
storage = "memory"
fetch_wait_s = 0.2

[[sources]]
name = "bn"
type = "binance"
[sources.binance]
symbols = ["BTCUSDT"]
streams = ["trade", "bookTicker"]
ws_url = "ws://127.0.0.1:{ws_port}"
rest_url = "http://127.0.0.1:1"

[[sinks]]
name = "out"
[sinks.nats]
url = "{NATS_URL}"
stream = "{n["sink"]}"
subject_prefix = "{n["prefix"]}"
storage = "memory"
""",
        encoding="utf-8",
    )
    return cfg


def events(i: int) -> bytes:
    lines = [
        {"ts": f"2025-03-03T14:30:01.{i:06d}Z", "kind": "system", "message": f"m{i}"},
        {"ts": f"2025-03-03T14:30:02.{i:06d}Z", "kind": "order_new", "order_id": f"o{i}",
         "symbol": "BTCUSDT", "side": "buy", "qty": 1, "price": 100.0, "venue": "BINANCE",
         "strategy_id": "s1", "account_id": "a1"},
    ]  # fmt: skip
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


def publish(subject: str, bodies: list[bytes]) -> None:
    async def work(nc: Any) -> None:
        js = nc.jetstream()
        for b in bodies:
            await js.publish(subject, b)

    nats_call(work)


def sink_messages(stream: str) -> int:
    async def work(nc: Any) -> int:
        try:
            info = await nc.jetstream().stream_info(stream)
        except nats.js.errors.NotFoundError:
            return 0
        return int(info.state.messages)

    return int(nats_call(work))


def counts(port: int) -> dict[str, int]:
    stats = get(port, "/log_stream/statistics")
    return {str(k): int(v) for k, v in stats["events_by_kind"].items()}


def test_nats_binance_and_sink_from_config(tmp_path: Path, names: dict[str, str]) -> None:
    fake = FakeBinance()
    cfg = write_config(tmp_path, names, fake.port)
    port = free_port()
    proc = start(cfg, port)
    try:
        publish(names["subject"], [events(1), events(2), b"{not json\n"])
        wait_until(
            lambda: (
                counts(port).get("order_new", 0) == 2 and counts(port).get("market_trade", 0) == 2
            ),
            what="NATS and Binance events stored",
        )
        c = counts(port)
        assert c["system"] == 2 and c["quote"] == 1
        stats = get(port, "/log_stream/statistics")
        conns = {x.get("source") or x.get("sink"): x for x in stats["live"]["connections"]}
        assert conns["bus"]["type"] == "nats" and conns["bus"]["state"] == "connected"
        assert conns["bn"]["type"] == "binance" and conns["bn"]["state"] == "connected"
        assert conns["out"]["type"] == "nats"
        # every committed event is republished once (2 system + 2 order_new + quote + 2 trades)
        wait_until(lambda: sink_messages(names["sink"]) == 7, what="sink publishes")
        assert stats["sources"]["bus"]["rejects"] == 1  # the unreadable message, not redelivered
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0

    # restart: the durable consumer resumes after the acked messages, Binance trades seen
    # again on the new connection are duplicates, and the sink republishes nothing twice
    proc = start(cfg, port)
    try:
        publish(names["subject"], [events(3)])
        wait_until(lambda: counts(port).get("order_new", 0) == 3, what="the new message")
        wait_until(lambda: fake.connections >= 2, what="the Binance reconnect")
        time.sleep(1.0)
        c = counts(port)
        assert c["market_trade"] == 2 and c["system"] == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        fake.close()
