"""Risk alerts out: a real pipeline (surveillance on, a position limit) commits into DuckDB;
the risk publisher, a commit listener, sends the breach to the real NATS server at
127.0.0.1:4222 on ``tradelog.risk.<strategy>`` and POSTs it to a local webhook that fails
once (the retry delivers it). A webhook that hangs costs only its own queue: the commit
listener returns at once, NATS still gets every message, and what the webhook cannot take
is dropped and counted."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest

from tradelog.model.events import Event, EventKind, Side
from tradelog.model.reference import ReferenceData
from tradelog.pipeline.batch import CleanChunk, StreamInfo
from tradelog.pipeline.runner import Committer, Pipeline, PipelineSettings
from tradelog.sources.risk_publisher import RiskPublisher
from tradelog.sources.settings import RiskPublisherSettings
from tradelog.storage.duckdb_store import DuckDBStore
from tradelog.surveillance.engine import SurveillanceSettings
from tradelog.surveillance.risk import PositionLimit, RiskSettings

pytestmark = pytest.mark.integration

URL = "nats://127.0.0.1:4222"
NS = 1_000_000_000
T0 = 1_741_012_200 * NS


class Hook(http.server.BaseHTTPRequestHandler):
    """Fails the first POST with 503, accepts the rest; ``hang`` never answers."""

    received: list[dict[str, Any]]
    calls: list[int]
    hang: threading.Event | None = None

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.hang is not None:
            self.hang.wait(30)
            return
        self.calls.append(1)
        if len(self.calls) == 1:
            self.send_response(503)
            self.end_headers()
            return
        self.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def serve(
    hang: threading.Event | None = None,
) -> tuple[http.server.ThreadingHTTPServer, type[Hook]]:
    handler = type("H", (Hook,), {"received": [], "calls": [], "hang": hang})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    s = DuckDBStore(str(tmp_path / "t.duckdb"))
    yield s
    s.close()


def fills(strategy: str, n: int) -> list[Event]:
    """Buys of 60 each by one account: the position passes 100 at the second fill."""
    out = []
    for i in range(n):
        oid = f"{strategy}-o{i}"
        ts = T0 + i * NS
        out.append(Event(event_id=f"{oid}-n", kind=EventKind.ORDER_NEW, ts=ts, ts_ingest=ts,
                         source="t", order_id=oid, symbol="XYZ", side=Side.BUY, qty=60.0,
                         price=10.0, account_id="A1", strategy_id=strategy))  # fmt: skip
        out.append(Event(event_id=f"{oid}-f", kind=EventKind.FILL, ts=ts + 1000, ts_ingest=ts,
                         source="t", order_id=oid, exec_id=f"{oid}-x", last_qty=60.0,
                         last_px=10.0, cum_qty=60.0, leaves_qty=0.0))  # fmt: skip
    return out


def pipeline(store: DuckDBStore) -> Pipeline:
    surveillance = SurveillanceSettings(
        risk=RiskSettings(position_limits=[PositionLimit(max_abs=100.0)])
    )
    return Pipeline(store, PipelineSettings(), ReferenceData(), surveillance=surveillance)


def chunk(events: list[Event]) -> CleanChunk:
    return CleanChunk(StreamInfo("t", "s", "s"), events, [], 0, len(events))


def test_risk_alert_reaches_nats_and_the_webhook_after_a_retry(store: DuckDBStore) -> None:
    strategy = f"st_{uuid.uuid4().hex[:8]}"
    server, hook = serve()
    url = f"http://127.0.0.1:{server.server_address[1]}/risk"
    publisher = RiskPublisher(RiskPublisherSettings(nats_url=URL, webhook_url=url,
                                                    webhook_backoff_s=0.05))  # fmt: skip

    async def main() -> dict[str, Any]:
        nc = await nats.connect(URL)
        sub = await nc.subscribe("tradelog.risk.>")
        await nc.flush()  # the server knows the subscription before anything is published
        publisher.start()
        p = pipeline(store)
        p.open()
        committer = Committer(store)
        committer.listeners.append(publisher.publish)
        committer.submit(p.process([chunk(fills(strategy, 3))]))
        committer.close()
        while True:  # other tests may publish risk alerts too: ours is the one to check
            msg = await sub.next_msg(timeout=15)
            if msg.subject == f"tradelog.risk.{strategy}":
                break
        await nc.close()
        out: dict[str, Any] = msgspec.json.decode(msg.data)
        return out

    try:
        message = asyncio.run(main())
        assert message["type"] == "risk_position_limit"
        assert message["strategy_id"] == strategy and message["change"] == "new"
        assert message["evidence"]["position"] == 180.0  # the alert as committed: 3 × 60
        assert message["occurrences"] == 2  # breached at 120 and again at 180
        assert message["evidence"]["limit"] == 100.0
        stored = store.alert(message["alert_id"])  # the same alert is stored
        assert stored is not None and stored["type"] == "risk_position_limit"
        publisher.stop(timeout=10)
        assert len(hook.calls) == 2  # 503 first, then accepted
        assert [m["alert_id"] for m in hook.received] == [message["alert_id"]]
        assert publisher.stats.webhook_sent == 1 and publisher.stats.webhook_retries == 1
        assert publisher.stats.nats_published == 1
    finally:
        publisher.stop(timeout=1)
        server.shutdown()


def test_a_hanging_webhook_never_holds_the_pipeline_or_nats(store: DuckDBStore) -> None:
    hang = threading.Event()
    server, _ = serve(hang)
    url = f"http://127.0.0.1:{server.server_address[1]}/risk"
    publisher = RiskPublisher(RiskPublisherSettings(
        nats_url=URL, webhook_url=url, webhook_timeout_s=20.0, webhook_retries=0, max_pending=1,
    ))  # fmt: skip
    strategies = [f"hang_{uuid.uuid4().hex[:6]}_{i}" for i in range(4)]

    async def main() -> list[str]:
        nc = await nats.connect(URL)
        subs = [await nc.subscribe(f"tradelog.risk.{s}") for s in strategies]
        await nc.flush()
        publisher.start()
        p = pipeline(store)
        p.open()
        committer = Committer(store)
        committer.listeners.append(publisher.publish)
        for s in strategies:  # one breach per strategy, one batch each
            committer.submit(p.process([chunk(fills(s, 2))]))
        committer.close()  # returns although the webhook has not answered once
        got = [msgspec.json.decode((await sub.next_msg(timeout=15)).data)["strategy_id"]
               for sub in subs]  # fmt: skip
        await nc.close()
        return got

    try:
        assert asyncio.run(main()) == strategies
        # the webhook thread holds one message, the queue one more; the other two dropped
        assert publisher.stats.webhook_dropped == 2
        assert publisher.stats.webhook_sent == 0
    finally:
        hang.set()
        publisher.stop(timeout=5)
        server.shutdown()
