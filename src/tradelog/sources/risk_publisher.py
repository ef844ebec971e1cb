"""risk_publisher: publishes new and escalated risk alerts (``risk_*``) of each committed
batch to NATS ``<subject_prefix>.<strategy>`` (default ``tradelog.risk.<strategy>``) and,
if configured, POSTs them to a webhook. It only publishes: tradelog never acts on a breach.

``publish`` is a commit listener (committer thread) and never blocks: it puts messages on
bounded queues (full: dropped and counted). NATS publishing runs on its own asyncio loop
and thread (connect with backoff, the client reconnects by itself); the webhook on its own
thread, with a timeout per request and retries with exponential backoff, so a webhook that
hangs delays only the webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import queue
import re
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from tradelog.model.alerts import Alert
from tradelog.sources.nats_jetstream import (
    ConnectionStats,
    _close_quietly,
    _LoopThread,
    _wait,
    connect,
)
from tradelog.sources.settings import RiskPublisherSettings
from tradelog.storage.base import CommitBatch

log = logging.getLogger("tradelog.sources.risk")

_TOKEN_BAD: Final = re.compile(r"[^A-Za-z0-9_-]")
FLUSH_TIMEOUT_S: Final = 2


@dataclass(slots=True)
class RiskPublisherStats:
    nats_published: int = 0
    nats_dropped: int = 0
    nats_failed: int = 0
    webhook_sent: int = 0
    webhook_retries: int = 0
    webhook_failed: int = 0
    webhook_dropped: int = 0
    last_failure: str = ""


def subject_token(strategy: str | None) -> str:
    """A strategy name as one NATS subject token.

    >>> subject_token("mm.eu 1"), subject_token(None)
    ('mm_eu_1', 'unknown')
    """
    return _TOKEN_BAD.sub("_", strategy) if strategy else "unknown"


def risk_message(alert: Alert) -> bytes:
    """The JSON published for one risk alert."""
    return msgspec.json.encode(
        {
            "alert_id": alert.alert_id,
            "type": alert.type,
            "change": alert.change,
            "level": alert.level,
            "risk_score": alert.risk_score,
            "strategy_id": alert.strategy_id,
            "symbol": alert.symbol,
            "window_start": alert.window_start,
            "window_end": alert.window_end,
            "occurrences": alert.occurrences,
            "evidence": alert.evidence,
        }
    )


class RiskPublisher:
    def __init__(self, settings: RiskPublisherSettings) -> None:
        self.settings = settings
        self.stats = RiskPublisherStats()
        self.conn = ConnectionStats()
        self._nats_q: queue.Queue[tuple[str, bytes]] = queue.Queue(settings.max_pending)
        self._hook_q: queue.Queue[bytes | None] = queue.Queue(settings.max_pending)
        self._wake: asyncio.Event | None = None
        self._stopping = threading.Event()
        self._loop = _LoopThread("tradelog-risk-nats", self._main) if settings.nats_url else None
        self._hook_thread = (
            threading.Thread(target=self._hook_run, name="tradelog-risk-webhook", daemon=True)
            if settings.webhook_url
            else None
        )

    # ---- control -------------------------------------------------------------
    def start(self) -> None:
        if self._loop is not None:
            self._loop.start()
        if self._hook_thread is not None:
            self._hook_thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Sends what is queued for up to ``timeout`` seconds, then stops."""
        if self._loop is not None:
            self._loop.stop(timeout)
        if self._hook_thread is not None:
            with contextlib.suppress(queue.Full):
                self._hook_q.put_nowait(None)
            self._hook_thread.join(timeout)
        self._stopping.set()  # past the timeout: no more retry pauses

    def state(self) -> dict[str, Any]:
        return {
            "nats_url": self.settings.nats_url,
            "webhook_url": self.settings.webhook_url,
            "nats_pending": self._nats_q.qsize(),
            "webhook_pending": self._hook_q.qsize(),
            **dataclasses.asdict(self.conn),
            **dataclasses.asdict(self.stats),
        }

    # ---- commit listener (committer thread) ----------------------------------------
    def publish(self, batch: CommitBatch) -> None:
        """Queues the batch's new or escalated risk alerts; never blocks."""
        for alert in batch.alerts:
            if not alert.type.startswith("risk_") or alert.change == "update":
                continue
            body = risk_message(alert)
            if self._loop is not None:
                subject = f"{self.settings.subject_prefix}.{subject_token(alert.strategy_id)}"
                try:
                    self._nats_q.put_nowait((subject, body))
                except queue.Full:
                    self.stats.nats_dropped += 1
            if self._hook_thread is not None:
                try:
                    self._hook_q.put_nowait(body)
                except queue.Full:
                    self.stats.webhook_dropped += 1
        wake = self._wake
        if wake is not None and self._loop is not None:
            self._loop.call(wake.set)

    # ---- NATS (own loop) --------------------------------------------------------
    async def _main(self, stop: asyncio.Event) -> None:
        self._wake = wake = asyncio.Event()
        url = self.settings.nats_url
        assert url is not None
        nc = await connect(url, "tradelog-risk", self.conn, stop)
        if nc is None:
            return
        try:
            while True:
                sent = 0
                while True:
                    try:
                        subject, body = self._nats_q.get_nowait()
                    except queue.Empty:
                        break
                    try:
                        await nc.publish(subject, body)
                        self.stats.nats_published += 1
                        sent += 1
                    except Exception as exc:  # the client's errors are many; count them all
                        self.stats.nats_failed += 1
                        self.stats.last_failure = f"{type(exc).__name__}: {exc}"[:300]
                if sent:
                    with contextlib.suppress(Exception):
                        await nc.flush(timeout=FLUSH_TIMEOUT_S)
                if stop.is_set():
                    return
                wake.clear()
                await _wait(wake, 0.5)
                if stop.is_set() and self._nats_q.empty():
                    return
        finally:
            await _close_quietly(nc, self.conn)

    # ---- webhook (own thread) ------------------------------------------------------
    def _hook_run(self) -> None:
        while True:
            body = self._hook_q.get()
            if body is None:
                return
            self._post(body)

    def _post(self, body: bytes) -> None:
        s = self.settings
        assert s.webhook_url is not None
        delay = s.webhook_backoff_s
        for attempt in range(s.webhook_retries + 1):
            if attempt:
                self.stats.webhook_retries += 1
                if self._stopping.wait(delay):
                    break
                delay *= 2
            req = urllib.request.Request(
                s.webhook_url,
                data=body,
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(req, timeout=s.webhook_timeout_s) as resp:
                    if 200 <= resp.status < 300:
                        self.stats.webhook_sent += 1
                        return
                    self.stats.last_failure = f"webhook status {resp.status}"
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                self.stats.last_failure = f"{type(exc).__name__}: {exc}"[:300]
        self.stats.webhook_failed += 1
        log.warning("risk webhook: giving up on a message (%s)", self.stats.last_failure)
