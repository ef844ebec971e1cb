"""nats_jetstream: JetStream as a source (records in) and as a sink (committed events out).

Source: a durable pull consumer. Each fetched batch of messages is decoded (one message
may hold many records, NDJSON or the source's format) into one chunk per message and
submitted to the live loop as one ``Submission``; every message of the batch is acked
only after the store committed it (DESIGN §8: acks after the commit). A failed commit
NAKs the batch, a crash leaves it unacked: JetStream redelivers, and because derived
event ids come from (source, ``nats:<stream>``, ``stream_sequence << 24`` + byte offset,
bytes), a redelivered record that had been committed is a duplicate the store drops.
An unreadable message becomes rejects (the decoder's job) and is acked like any other,
so it is never redelivered forever.

Sink: a commit listener that hands committed events to its own loop through a bounded
queue (full: counted and dropped, the committer never waits) and publishes each event as
JSON to ``<subject_prefix>.<kind>`` with ``Nats-Msg-Id`` = event id, so JetStream drops
the duplicates of a retried publish (within the stream's duplicate window, 2 min by
default).

Both run an asyncio loop on their own thread, connect with backoff (the client then
reconnects by itself) and create their stream if it is missing, never changing one that
exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    Header,
    PubAck,
    StorageType,
    StreamConfig,
)

from tradelog.model.events import Event
from tradelog.pipeline.batch import CleanChunk, StreamInfo
from tradelog.pipeline.ingest import StreamDecoder
from tradelog.pipeline.live import LiveRunner, Submission
from tradelog.sources.settings import NatsSinkSettings, NatsSourceSettings, Storage
from tradelog.storage.base import CommitBatch

log = logging.getLogger("tradelog.sources.nats")

STREAM_SEQ_SHIFT: Final = 24
"""A record's stream offset is ``stream_sequence << 24`` + its byte offset in the message
(NATS payloads are at most 64 MiB by configuration, 1 MiB by default; offsets of
different messages only meet past 16 MiB, and ids also hash the bytes)."""
BACKOFF_MIN_S: Final = 0.1
BACKOFF_MAX_S: Final = 5.0
CONNECT_TIMEOUT_S: Final = 5.0
"""One connection round (the client retries inside it) before backing off."""
RECONNECT_WAIT_S: Final = 1
"""Pause of the client between its own reconnection attempts."""
API_TIMEOUT_S: Final = 5.0
"""JetStream API requests (stream and consumer info, creation)."""
SUBMIT_WAIT_S: Final = 0.2
"""While the live loop's inbox is full, each blocking retry waits this long."""
NAK_DELAY_S: Final = 1.0
"""Redelivery delay after a failed commit (a failing store is not hammered)."""
PUBLISH_TIMEOUT_S: Final = 5.0
"""How long the sink waits for the PubAcks of one group of publishes."""


def stream_key(stream: str) -> str:
    """The pipeline's stream key of a JetStream stream (part of every derived event id).

    >>> stream_key("TRADES")
    'nats:TRADES'
    """
    return f"nats:{stream}"


def nats_stream_info(source: str, settings: NatsSourceSettings) -> StreamInfo:
    """The ``StreamInfo`` the decoders of a ``nats`` source must carry."""
    return StreamInfo(source=source, stream=stream_key(settings.stream), src_ref=settings.subject)


async def ensure_stream(
    js: JetStreamContext,
    name: str,
    subjects: list[str],
    storage: Storage,
    max_age_s: float,
    max_bytes: int,
) -> bool:
    """Creates stream ``name`` on ``subjects`` unless it exists; an existing stream is left
    exactly as it is (its owner may have tuned it). True when this call created it."""
    try:
        await js.stream_info(name)
        return False
    except nats.js.errors.NotFoundError:
        pass
    config = StreamConfig(
        name=name,
        subjects=list(subjects),
        storage=StorageType(storage),
        max_age=max_age_s if max_age_s > 0 else None,
        max_bytes=max_bytes if max_bytes > 0 else None,
    )
    try:
        await js.add_stream(config)
    except nats.js.errors.BadRequestError as exc:
        if exc.err_code == 10058:  # created meanwhile by another process, differently
            return False
        raise
    log.info("created JetStream stream %s on %s (%s storage)", name, subjects, storage)
    return True


# ---------------------------------------------------------------------------- shared parts


@dataclass(slots=True)
class ConnectionStats:
    """Connection state and counters of one NATS client (for ``/log_stream/statistics``)."""

    state: str = "stopped"
    """stopped | connecting | connected | disconnected | closed."""
    connects: int = 0
    disconnects: int = 0
    reconnects: int = 0
    errors: int = 0
    last_error: str = ""

    def error(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Returns when ``event`` is set or after ``seconds``, whichever comes first."""
    if seconds <= 0 or event.is_set():
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


async def _until_stop(work: Awaitable[None], stop: asyncio.Event, timeout: float) -> bool:
    """Runs ``work``; True once done, False (work cancelled) on timeout or stop. Errors of
    ``work`` propagate."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
    if task.cancelled():
        return False
    task.result()
    return True


class _Backoff:
    """Exponential pause between failed attempts, reset by a success."""

    def __init__(self) -> None:
        self.delay = BACKOFF_MIN_S

    def reset(self) -> None:
        self.delay = BACKOFF_MIN_S

    async def pause(self, stop: asyncio.Event) -> None:
        await _wait(stop, self.delay)
        self.delay = min(self.delay * 2, BACKOFF_MAX_S)


async def connect(
    url: str, client_name: str, conn: ConnectionStats, stop: asyncio.Event
) -> NatsClient | None:
    """A connected client, retrying with exponential backoff until connected or ``stop``
    (then None). Once connected, the client reconnects by itself after a disconnection,
    keeping its subscriptions; ``conn`` follows its state."""

    async def on_error(exc: Exception) -> None:
        conn.error(exc)

    async def on_disconnect() -> None:
        if conn.state == "connected":
            conn.disconnects += 1
            conn.state = "disconnected"
            log.warning("%s: disconnected from %s; reconnecting", client_name, url)

    async def on_reconnect() -> None:
        conn.reconnects += 1
        conn.state = "connected"
        log.info("%s: reconnected to %s", client_name, url)

    async def on_closed() -> None:
        conn.state = "closed"

    backoff = _Backoff()
    while not stop.is_set():
        conn.state = "connecting"
        nc = NatsClient()
        attempt = nc.connect(
            servers=[url],
            name=client_name,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            closed_cb=on_closed,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=RECONNECT_WAIT_S,
            connect_timeout=2,
            drain_timeout=5,
        )
        try:
            if await _until_stop(attempt, stop, CONNECT_TIMEOUT_S):
                conn.connects += 1
                conn.state = "connected"
                log.info("%s: connected to %s", client_name, url)
                return nc
        except (OSError, nats.errors.Error) as exc:
            conn.error(exc)
        await _close_quietly(nc, conn)
        if not stop.is_set():
            conn.state = "disconnected"
            log.debug("%s: cannot connect to %s (%s); retry in %.1fs", client_name, url,
                      conn.last_error, backoff.delay)  # fmt: skip
        await backoff.pause(stop)
    conn.state = "stopped"
    return None


async def _close_quietly(nc: NatsClient, conn: ConnectionStats) -> None:
    """Closes a client (``conn.state`` first leaves "connected", so closing is not
    counted as a disconnection)."""
    conn.state = "closing"
    try:
        await nc.close()
    except Exception as exc:  # closing a half-open client may fail in many ways
        log.debug("closing a NATS client: %r", exc)


class _LoopThread:
    """One coroutine on its own asyncio loop and thread; other threads schedule calls on
    it, request a graceful stop (an event the coroutine watches) or cancel it."""

    def __init__(self, name: str, main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]):
        self.name = name
        self._main = main
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[Any] | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} was already started")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        try:
            with asyncio.Runner() as runner:
                runner.run(self._entry())
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("%s failed", self.name)
        finally:
            self._ready.set()  # never leave start() waiting

    async def _entry(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._task = asyncio.current_task()
        self._ready.set()
        await self._main(self._stop)

    def call(self, fn: Callable[..., object], *args: object) -> bool:
        """Runs ``fn(*args)`` on the loop; False when the loop is not (or no longer) running."""
        loop = self._loop
        if loop is None:
            return False
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed
            return False
        return True

    def stop(self, timeout: float) -> bool:
        """Asks the coroutine to finish and waits; True when the thread ended in time."""
        if self._stop is not None:
            self.call(self._stop.set)
        return self._join(timeout)

    def cancel(self, timeout: float) -> bool:
        """Cancels the coroutine at its current await; True when the thread ended in time."""
        if self._task is not None:
            self.call(self._task.cancel)
        return self._join(timeout)

    def _join(self, timeout: float) -> bool:
        if self._thread is None:
            return True
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()


# ---------------------------------------------------------------------------- source


@dataclass(slots=True)
class NatsSourceStats:
    """Counters of a NATS source (messages are JetStream messages, records are lines)."""

    bound: bool = False
    """The stream exists and the durable consumer is bound: fetching."""
    fetched_msgs: int = 0
    fetched_bytes: int = 0
    redelivered_msgs: int = 0
    records: int = 0
    batches: int = 0
    committed_batches: int = 0
    commit_failures: int = 0
    acked_msgs: int = 0
    naked_msgs: int = 0
    ack_failures: int = 0
    inbox_full: int = 0
    """Times a batch found the live loop's inbox full and waited (backpressure)."""
    in_flight_batches: int = 0
    in_flight_msgs: int = 0
    in_flight_records: int = 0


@dataclass(slots=True)
class _InFlight:
    msgs: list[Msg]
    records: int


class NatsSource:
    """Reads a JetStream stream through a durable pull consumer into the live loop.

    ``make_decoder`` builds the decoder of the stream (parser + cleaner of the source);
    its ``StreamInfo`` must be ``nats_stream_info(name, settings)``. One decoder reads
    every message, each as a complete piece (a last line without newline is a record),
    so a message should hold whole records. Stop this source before the live loop, so
    its in-flight batches are committed and acked.
    """

    def __init__(
        self,
        name: str,
        settings: NatsSourceSettings,
        runner: LiveRunner,
        make_decoder: Callable[[], StreamDecoder],
    ) -> None:
        self.name = name
        self.settings = settings
        self.runner = runner
        self._decoder = make_decoder()
        expected = stream_key(settings.stream)
        if self._decoder.info.stream != expected:
            raise ValueError(
                f"source {name}: the decoder's stream key must be {expected!r} (derived ids "
                f"depend on it); was {self._decoder.info.stream!r}"
            )
        self.conn = ConnectionStats()
        self.stats = NatsSourceStats()
        self._in_flight: dict[int, _InFlight] = {}
        self._next_batch = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._progress: asyncio.Event | None = None
        self._aborted = threading.Event()
        self._thread = _LoopThread(f"tradelog-nats-{name}", self._main)

    # ---- control (any thread) ---------------------------------------------
    def start(self) -> None:
        """Starts the source's thread: connect, bind the consumer, fetch."""
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stops fetching, lets in-flight batches commit and be acked (up to
        ``drain_timeout_s``), NAKs what did not commit, closes. True if it ended in time."""
        s = self.settings
        wait = (
            s.drain_timeout_s + s.fetch_wait_s + 2 * API_TIMEOUT_S if timeout is None else timeout
        )
        return self._thread.stop(wait)

    def abort(self, timeout: float = 5.0) -> bool:
        """Stops at once without acking or NAKing anything, as a crash would: JetStream
        redelivers the unacked messages after ``ack_wait_s`` (to a new source with the
        same durable). Safe to call from a commit listener."""
        self._aborted.set()
        return self._thread.cancel(timeout)

    def state(self) -> dict[str, Any]:
        """Connection state and counters, for ``/log_stream/statistics``."""
        s = self.settings
        return {
            "source": self.name,
            "type": "nats",
            "url": s.url,
            "stream": s.stream,
            "subject": s.subject,
            "durable": s.durable,
            **dataclasses.asdict(self.conn),
            **dataclasses.asdict(self.stats),
        }

    # ---- commit callbacks (committer thread) --------------------------------
    def _committed(self, batch_id: int, _batch: CommitBatch) -> None:
        if not self._aborted.is_set():
            self._thread.call(self._settle, batch_id, None)

    def _failed(self, batch_id: int, exc: BaseException) -> None:
        if not self._aborted.is_set():
            self._thread.call(self._settle, batch_id, exc)

    # ---- the loop (source thread) -------------------------------------------
    async def _main(self, stop: asyncio.Event) -> None:
        self._progress = asyncio.Event()
        client = f"tradelog-{self.name}"
        backoff = _Backoff()
        while not stop.is_set():
            nc = await connect(self.settings.url, client, self.conn, stop)
            if nc is None:
                break
            try:
                while not stop.is_set() and not nc.is_closed:
                    try:
                        await self._session(nc, stop, backoff)
                    except Exception as exc:
                        self.conn.error(exc)
                        expected = isinstance(exc, OSError | TimeoutError | nats.errors.Error)
                        log.warning(
                            "nats source %s: %s; retrying", self.name, self.conn.last_error,
                            exc_info=not expected,
                        )  # fmt: skip
                        await backoff.pause(stop)
            except asyncio.CancelledError:
                await _close_quietly(nc, self.conn)
                raise
            await self._finish(nc)
        self.conn.state = "stopped"

    async def _session(self, nc: NatsClient, stop: asyncio.Event, backoff: _Backoff) -> None:
        """Ensures the stream, binds the durable consumer and fetches until stop."""
        s = self.settings
        js = nc.jetstream(timeout=API_TIMEOUT_S)
        await ensure_stream(js, s.stream, s.stream_subjects, s.storage, s.max_age_s, s.max_bytes)
        config = ConsumerConfig(
            durable_name=s.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=s.ack_wait_s,
            max_deliver=s.max_deliver,
            max_ack_pending=s.max_in_flight_records + s.fetch_batch,
            filter_subject=s.subject,
        )
        psub = await js.pull_subscribe(s.subject, durable=s.durable, stream=s.stream, config=config)
        self.stats.bound = True
        try:
            while not stop.is_set():
                if self.stats.in_flight_records >= s.max_in_flight_records:
                    await self._wait_progress()
                    continue
                if self.runner.stopping:  # nothing would commit: leave the messages queued
                    await _wait(stop, s.fetch_wait_s)
                    continue
                try:
                    msgs = await psub.fetch(s.fetch_batch, timeout=s.fetch_wait_s)
                except TimeoutError:
                    if nc.is_closed:
                        return
                    continue
                backoff.reset()
                if not msgs:  # nats-py ≥ 2.16: an expired long poll returns no messages
                    continue
                await self._handle(msgs, stop)
        finally:
            self.stats.bound = False
            if not nc.is_closed:
                try:
                    await psub.unsubscribe()
                except nats.errors.Error as exc:
                    log.debug("unsubscribe: %r", exc)

    async def _wait_progress(self) -> None:
        """Returns when an in-flight batch settled, or after 0.1 s."""
        progress = self._progress
        assert progress is not None
        progress.clear()
        await _wait(progress, 0.1)

    async def _handle(self, msgs: list[Msg], stop: asyncio.Event) -> None:
        """Decodes one fetched batch and submits it; acks follow its commit."""
        stats = self.stats
        decode = self._decoder.decode
        now = time.time_ns()
        chunks: list[CleanChunk] = []
        records = 0
        stats.fetched_msgs += len(msgs)
        try:
            for msg in msgs:
                meta = msg.metadata
                if meta.num_delivered > 1:
                    stats.redelivered_msgs += 1
                data = msg.data
                stats.fetched_bytes += len(data)
                chunk, _ = decode(data, meta.sequence.stream << STREAM_SEQ_SHIFT, True, now)
                chunks.append(chunk)
                records += chunk.records
        except Exception as exc:  # decoders do not raise on bad data: this is a bug
            log.exception("nats source %s: decoding a batch failed; NAKed", self.name)
            self.conn.error(exc)
            await self._nak(msgs, NAK_DELAY_S)
            return
        batch_id = self._next_batch
        self._next_batch += 1
        self._in_flight[batch_id] = _InFlight(msgs, records)
        stats.in_flight_batches = len(self._in_flight)
        stats.in_flight_msgs += len(msgs)
        stats.in_flight_records += records
        sub = Submission(
            chunks,
            functools.partial(self._committed, batch_id),
            functools.partial(self._failed, batch_id),
        )
        if await self._submit(sub, stop):
            stats.batches += 1
            stats.records += records
        else:  # stopping while the live loop was full or gone: let another reader have it
            self._forget(batch_id)
            await self._nak(msgs, None)

    async def _submit(self, sub: Submission, stop: asyncio.Event) -> bool:
        """Hands a batch to the live loop, waiting while its inbox is full (backpressure:
        nothing more is fetched meanwhile). False if stopping first."""
        runner = self.runner
        if runner.stopping:
            return False
        if runner.submit(sub):
            return True
        self.stats.inbox_full += 1
        while not stop.is_set() and not runner.stopping:
            if await asyncio.to_thread(runner.submit, sub, SUBMIT_WAIT_S):
                return True
        return False

    def _forget(self, batch_id: int) -> _InFlight | None:
        flight = self._in_flight.pop(batch_id, None)
        if flight is not None:
            self.stats.in_flight_batches = len(self._in_flight)
            self.stats.in_flight_msgs -= len(flight.msgs)
            self.stats.in_flight_records -= flight.records
            if self._progress is not None:
                self._progress.set()
        return flight

    def _settle(self, batch_id: int, exc: BaseException | None) -> None:
        """A batch's commit finished (in the loop): ack its messages, or NAK on failure."""
        flight = self._forget(batch_id)
        if flight is None:  # already NAKed by stop
            return
        if exc is None:
            self.stats.committed_batches += 1
            self._spawn(self._ack(flight.msgs))
        else:
            self.stats.commit_failures += 1
            log.warning(
                "nats source %s: commit failed (%s); %d messages NAKed for redelivery",
                self.name, exc, len(flight.msgs),
            )  # fmt: skip
            self._spawn(self._nak(flight.msgs, NAK_DELAY_S))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ack(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            try:
                await msg.ack()
                self.stats.acked_msgs += 1
            except nats.errors.Error as exc:  # closed connection: redelivered, then a duplicate
                self.stats.ack_failures += 1
                self.conn.error(exc)

    async def _nak(self, msgs: list[Msg], delay: float | None) -> None:
        for msg in msgs:
            try:
                await msg.nak(delay)
                self.stats.naked_msgs += 1
            except nats.errors.Error as exc:
                self.stats.ack_failures += 1
                self.conn.error(exc)

    async def _finish(self, nc: NatsClient) -> None:
        """Waits (bounded) for in-flight batches to commit and be acked, NAKs the rest,
        then drains and closes the connection."""
        if not nc.is_closed:
            deadline = time.monotonic() + self.settings.drain_timeout_s
            while self._in_flight and time.monotonic() < deadline:
                await self._wait_progress()
        leftovers = [self._forget(b) for b in list(self._in_flight)]
        msgs = [m for f in leftovers if f is not None for m in f.msgs]
        if msgs:
            log.warning(
                "nats source %s: %d messages not committed in time; NAKed", self.name, len(msgs)
            )
            if not nc.is_closed:
                await self._nak(msgs, None)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if not nc.is_closed:
            self.conn.state = "closing"
            try:
                await asyncio.wait_for(nc.drain(), API_TIMEOUT_S)
            except (TimeoutError, nats.errors.Error) as exc:
                log.debug("drain: %r", exc)
        await _close_quietly(nc, self.conn)


# ---------------------------------------------------------------------------- sink


@dataclass(slots=True)
class NatsSinkStats:
    """Counters of a NATS sink (one message per event)."""

    ready: bool = False
    """Connected and the stream exists: publishing."""
    batches: int = 0
    published: int = 0
    duplicates: int = 0
    """Publishes JetStream recognised by ``Nats-Msg-Id`` and did not store again."""
    failed: int = 0
    dropped: int = 0
    """Events never published: the queue was full, or the sink stopped first."""
    dropped_batches: int = 0
    last_failure: str = ""


class NatsSink:
    """Publishes committed events to JetStream; ``publish`` is a commit listener."""

    def __init__(self, settings: NatsSinkSettings, name: str = "nats") -> None:
        self.name = name
        self.settings = settings
        self.conn = ConnectionStats()
        self.stats = NatsSinkStats()
        self._queue: queue.Queue[list[Event]] = queue.Queue(maxsize=settings.max_pending)
        self._wake: asyncio.Event | None = None
        self._drain_until = 0.0
        self._encode = msgspec.json.Encoder().encode
        self._thread = _LoopThread(f"tradelog-nats-sink-{name}", self._main)

    # ---- control (any thread) ---------------------------------------------
    def start(self) -> None:
        """Starts the sink's thread: connect, ensure the stream, publish what is queued."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Publishes what is queued for up to ``timeout`` seconds (the rest is counted as
        dropped) and closes. Call after the committer closed. True if it ended in time."""
        self._drain_until = time.monotonic() + timeout
        return self._thread.stop(timeout + PUBLISH_TIMEOUT_S + API_TIMEOUT_S)

    def state(self) -> dict[str, Any]:
        """Connection state and counters, for ``/log_stream/statistics``."""
        s = self.settings
        return {
            "sink": self.name,
            "type": "nats",
            "url": s.url,
            "stream": s.stream,
            "subject_prefix": s.subject_prefix,
            "pending_batches": self._queue.qsize(),
            **dataclasses.asdict(self.conn),
            **dataclasses.asdict(self.stats),
        }

    def publish(self, batch: CommitBatch) -> None:
        """Commit listener (committer thread): queues the batch's events, never blocks."""
        events = batch.events
        if not events:
            return
        try:
            self._queue.put_nowait(events)
        except queue.Full:
            self.stats.dropped += len(events)
            self.stats.dropped_batches += 1
            log.warning(
                "nats sink %s: %d batches waiting; dropped a batch of %d events",
                self.name, self._queue.qsize(), len(events),
            )  # fmt: skip
            return
        wake = self._wake
        if wake is not None:
            self._thread.call(wake.set)

    def payload(self, event: Event) -> bytes:
        """The JSON of one event as published: every field, ``raw`` only if configured."""
        if self.settings.include_raw:
            return self._encode(event)
        fields = msgspec.structs.asdict(event)
        del fields["raw"]
        return self._encode(fields)

    # ---- the loop (sink thread) ---------------------------------------------
    async def _main(self, stop: asyncio.Event) -> None:
        self._wake = asyncio.Event()
        s = self.settings
        client = f"tradelog-sink-{self.name}"
        backoff = _Backoff()
        try:
            while not stop.is_set():
                nc = await connect(s.url, client, self.conn, stop)
                if nc is None:
                    break
                try:
                    js = nc.jetstream(
                        timeout=API_TIMEOUT_S, publish_async_max_pending=s.max_in_flight
                    )
                    await ensure_stream(
                        js, s.stream, [f"{s.subject_prefix}.>"], s.storage, s.max_age_s, -1
                    )
                    backoff.reset()
                    self.stats.ready = True
                    await self._pump(js, stop)
                except Exception as exc:
                    self.conn.error(exc)
                    log.warning("nats sink %s: %s; retrying", self.name, self.conn.last_error)
                    await backoff.pause(stop)
                finally:
                    self.stats.ready = False
                    await _close_quietly(nc, self.conn)
        finally:
            self._drop_queued()
            self.conn.state = "stopped"

    def _drop_queued(self) -> None:
        lost = 0
        while True:
            try:
                lost += len(self._queue.get_nowait())
            except queue.Empty:
                break
        if lost:
            self.stats.dropped += lost
            log.warning("nats sink %s: stopped with %d events unpublished", self.name, lost)

    async def _pump(self, js: JetStreamContext, stop: asyncio.Event) -> None:
        """Publishes queued batches until stopped and drained (or past the drain time)."""
        wake = self._wake
        assert wake is not None
        while not (stop.is_set() and time.monotonic() > self._drain_until):
            try:
                events = self._queue.get_nowait()
            except queue.Empty:
                if stop.is_set():
                    return
                wake.clear()
                await _wait(wake, 1.0)
                continue
            await self._publish_events(js, events)
            self.stats.batches += 1

    async def _publish_events(self, js: JetStreamContext, events: list[Event]) -> None:
        """Publishes in groups of ``max_in_flight``, awaiting each group's PubAcks."""
        s = self.settings
        prefix = s.subject_prefix
        payload = self.payload
        step = s.max_in_flight
        for start in range(0, len(events), step):
            futures: list[asyncio.Future[PubAck]] = []
            failures: list[BaseException] = []
            for ev in events[start : start + step]:
                try:
                    fut = await js.publish_async(
                        f"{prefix}.{ev.kind.value}",
                        payload(ev),
                        headers={Header.MSG_ID: ev.event_id},
                    )
                except nats.errors.Error as error:  # e.g. the outbound buffer is full
                    failures.append(error)
                    continue
                futures.append(fut)
            if futures:
                done, late = await asyncio.wait(futures, timeout=PUBLISH_TIMEOUT_S)
                for fut in late:
                    fut.cancel()
                    failures.append(TimeoutError("no PubAck in time"))
                for fut in done:
                    failure = CancelledPublish() if fut.cancelled() else fut.exception()
                    if failure is not None:
                        failures.append(failure)
                        continue
                    self.stats.published += 1
                    if fut.result().duplicate:
                        self.stats.duplicates += 1
            if failures:
                last = failures[-1]
                self.stats.failed += len(failures)
                self.stats.last_failure = f"{type(last).__name__}: {last}"[:300]
                log.warning(
                    "nats sink %s: %d publishes failed (%s)",
                    self.name, len(failures), self.stats.last_failure,
                )  # fmt: skip


class CancelledPublish(nats.errors.Error):
    """A publish whose PubAck future was cancelled (connection closed meanwhile)."""

    def __str__(self) -> str:
        return "publish cancelled"
