"""partitioned: scale-out over NATS JetStream (DESIGN §8) — ``collect`` and ``process``.

Collector (``tradelog collect``, on each trading host): follows the configured files,
parses and cleans them (the same decoders as ``run``, *before* enrich), routes every event
to partition ``xxh3_64(symbol) mod N`` and publishes, per stream piece and partition, one
msgpack message of many events to ``<subject_prefix>.p<k>``. The ``Nats-Msg-Id`` is a hash
of (source, stream, first offset, last offset, partition, part): a publish retried after a
lost PubAck is dropped by JetStream. File positions go to a local checkpoint file only
after every message of a flush was acknowledged, so a crash re-reads (and re-publishes)
at most what was not checkpointed; the processors drop those events by ``event_id``.

Events that carry no symbol (an ``order_ack`` often has only an order id) follow their
order: the collector keeps a bounded ``order id → symbol`` map, saved in its checkpoint.
Rejects and ignored lines travel to the partition of their stream's key.

Processor (``tradelog process --partitions 0-3``): one durable pull consumer per owned
partition (``<durable>-p<k>``), each feeding its own ``PartitionPipeline`` (enrich, mark,
positions: state per partition), live loop and committer; messages are acked after the
store commit (``NatsSource``). On start, a consumer with unacked messages is restarted at
its ack floor, so a worker that takes over a partition after a crash reprocesses the
unacked messages first and in stream order (instead of after ``ack_wait``, behind newer
ones); what was already committed is dropped by ``event_id``. State comes from the
partition's snapshot plus its stored events, so any worker can take over any partition.
A commit that fails on a lost store connection is retried (``RetryingCommits``) while
JetStream holds the data. See docs/adr/0007-partitioned-processing.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

import msgspec
import nats.errors
import nats.js.errors
import psycopg
import xxhash
from nats.aio.client import Client as NatsClient
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

from tradelog.model.events import Event, Reject, RejectReason
from tradelog.model.ids import derived_event_id
from tradelog.model.reference import ReferenceData
from tradelog.pipeline.batch import CleanChunk, StreamInfo
from tradelog.pipeline.ingest import StreamDecoder
from tradelog.pipeline.live import LiveRunner
from tradelog.pipeline.partitioned import PartitionPipeline
from tradelog.pipeline.runner import CommitListener, Committer, PipelineSettings
from tradelog.sources.file_tail import KnownPosition, TailInput
from tradelog.sources.nats_jetstream import (
    API_TIMEOUT_S,
    PUBLISH_TIMEOUT_S,
    ConnectionStats,
    NatsSource,
    _Backoff,
    _close_quietly,
    connect,
    stream_key,
)
from tradelog.sources.settings import NatsSourceSettings, ScaleoutSettings
from tradelog.stages.mark import MarkSettings
from tradelog.storage.base import CommitBatch, Store
from tradelog.surveillance.engine import SurveillanceSettings

log = logging.getLogger("tradelog.sources.partitioned")

WIRE_VERSION: Final = 1
PAYLOAD_FILL: Final = 0.9
"""Messages are split below this share of the server's max payload."""
BACKOFF_START_S: Final = 0.1
BACKOFF_MAX_S: Final = 5.0
PARTITION_CACHE: Final = 1 << 16
"""Routing keys whose partition is remembered (cleared when it grows past this)."""
NO_SYMBOL: Final = ""
"""Routing key of events with neither a symbol nor a known order."""


def partition_of(key: str, partitions: int) -> int:
    """Stable partition of a routing key (XXH3, the same on every host and version).

    >>> partition_of("AAPL", 4) == partition_of("AAPL", 4)
    True
    >>> sorted({partition_of(s, 2) for s in ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG")})
    [0, 1]
    """
    return xxhash.xxh3_64_intdigest(key.encode("utf-8", "surrogatepass")) % partitions


def parse_partitions(spec: str, count: int) -> list[int]:
    """``"0-3"``, ``"1,3"``, ``"0-1,5"`` → sorted partition numbers, each below ``count``.

    >>> parse_partitions("0-2,5", 8)
    [0, 1, 2, 5]
    """
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise ValueError(f"partitions {spec!r}: expected e.g. 0-3 or 0,2; bad part {part!r}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"partitions {spec!r}: {part} is an empty range")
        if hi >= count:
            raise ValueError(f"partitions {spec!r}: {hi} is not below scaleout.partitions={count}")
        out.update(range(lo, hi + 1))
    return sorted(out)


def message_id(source: str, stream: str, start: int, end: int, partition: int, part: int) -> str:
    """The ``Nats-Msg-Id`` of one message: the same bytes re-sent give the same id.

    >>> message_id("s", "fp:1", 0, 10, 2, 0) == message_id("s", "fp:1", 0, 10, 2, 0)
    True
    >>> message_id("s", "fp:1", 0, 10, 2, 0) == message_id("s", "fp:1", 0, 10, 3, 0)
    False
    """
    text = f"{source}\x1f{stream}\x1f{start}\x1f{end}\x1f{partition}\x1f{part}"
    return "tl-" + xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))


class WireEvent(Event, array_like=True):
    """An ``Event`` as it travels between collector and processor: a msgpack array in
    field order (80–200 bytes instead of ~900 with every field name). Decoded events are
    of this subclass; every field and the behaviour of ``Event`` are the same."""


class WireReject(Reject, array_like=True):
    """A ``Reject`` on the wire (see ``WireEvent``)."""


class Piece(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """One message: records of bytes [start, end) of one stream that go to one partition.
    The collector writes the same array (``encode_piece``) without building this struct."""

    version: int
    source: str
    stream: str
    src_ref: str
    partition: int
    start: int
    end: int
    events: list[WireEvent]
    rejects: list[WireReject]
    ignored: int


_astuple = msgspec.structs.astuple


def piece_array(
    source: str,
    stream: str,
    src_ref: str,
    partition: int,
    start: int,
    end: int,
    events: list[Event],
    rejects: list[Reject],
    ignored: int,
) -> tuple[Any, ...]:
    """The array a ``Piece`` decodes from (events and rejects as field-order arrays)."""
    return (WIRE_VERSION, source, stream, src_ref, partition, start, end,
            [_astuple(e) for e in events], [_astuple(r) for r in rejects], ignored)  # fmt: skip


class SymbolRouter:
    """Routing key of each event: its symbol, else the symbol of its order (learnt from
    earlier events of the order), else ``NO_SYMBOL``. Remembers ``limit`` order ids."""

    def __init__(self, limit: int, routes: dict[str, str] | None = None) -> None:
        self.limit = limit
        self.routes: OrderedDict[str, str] = OrderedDict(routes or {})
        self.unrouted = 0

    def _learn(self, order_id: str | None, symbol: str) -> None:
        if order_id is None:
            return
        routes = self.routes
        if order_id not in routes:
            routes[order_id] = symbol
            if len(routes) > self.limit:
                routes.popitem(last=False)

    def key(self, ev: Event) -> str:
        symbol = ev.symbol
        routes = self.routes
        oid = ev.order_id
        if symbol is not None:
            if oid is not None and oid not in routes:
                self._learn(oid, symbol)
            if ev.orig_order_id is not None:
                self._learn(ev.orig_order_id, symbol)
            return symbol
        if oid is not None:
            known = routes.get(oid)
            if known is not None:
                return known
        orig = ev.orig_order_id
        if orig is not None:
            known = routes.get(orig)
            if known is not None:
                self._learn(oid, known)
                return known
        if oid is not None or orig is not None:
            self.unrouted += 1
        return NO_SYMBOL


class Checkpoint(msgspec.Struct, kw_only=True):
    """What a collector saves after its publishes were acknowledged."""

    version: int = 1
    positions: dict[str, list[list[Any]]] = {}
    """source → [[stream, offset, fingerprint, dev, inode], …]."""
    routes: dict[str, str] = {}

    def known(self, source: str) -> list[KnownPosition]:
        return [KnownPosition(str(s), int(o), str(f), int(d), int(i))
                for s, o, f, d, i in self.positions.get(source, [])]  # fmt: skip


def load_checkpoint(path: str) -> Checkpoint:
    """The checkpoint at ``path``; an empty one if there is none yet."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return Checkpoint()
    try:
        return msgspec.msgpack.decode(data, type=Checkpoint)
    except msgspec.DecodeError as exc:
        raise ValueError(f"collector checkpoint {path} is unreadable: {exc}") from None


def save_checkpoint(path: str, ckpt: Checkpoint) -> None:
    """Atomic replace (write, fsync, rename, fsync the folder): never half-written."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(msgspec.msgpack.encode(ckpt))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# ---------------------------------------------------------------------------- collector


@dataclass(slots=True)
class CollectorStats:
    records: int = 0
    events: int = 0
    rejects: int = 0
    ignored: int = 0
    flushes: int = 0
    messages: int = 0
    duplicates: int = 0
    """Messages JetStream already had (same ``Nats-Msg-Id``): dropped, not stored twice."""
    publish_failures: int = 0
    bytes_published: int = 0
    checkpoints: int = 0
    unrouted: int = 0
    """Events with an order id whose symbol was unknown (sent to the no-symbol partition)."""


@dataclass(slots=True)
class _Read:
    """One decoded read of one stream."""

    info: StreamInfo
    start: int
    chunk: CleanChunk
    fingerprint: str
    dev: int
    inode: int


@dataclass(slots=True)
class Outgoing:
    subject: str
    msg_id: str
    payload: bytes
    records: int


class Collector:
    """Follows file sources and publishes their cleaned events to the partitions."""

    def __init__(
        self, settings: ScaleoutSettings, inputs: list[TailInput], checkpoint: Checkpoint
    ) -> None:
        self.settings = settings
        self.inputs = inputs
        self.checkpoint = checkpoint
        self.router = SymbolRouter(settings.route_cache, checkpoint.routes)
        self.stats = CollectorStats()
        self.conn = ConnectionStats()
        self._encode = msgspec.msgpack.Encoder().encode
        self._acked: dict[tuple[str, str], list[Any]] = {
            (src, row[0]): list(row) for src, rows in checkpoint.positions.items() for row in rows
        }
        self._parts: dict[str, int] = {}
        self._last_save = 0.0
        self._dirty = False
        self.max_payload = 1 << 20

    # ---- reading -------------------------------------------------------------
    def read(self, limit: int, linger_s: float) -> list[_Read]:
        """Reads until ``limit`` records or, once something arrived, ``linger_s``."""
        out: list[_Read] = []
        records = 0
        deadline: float | None = None
        while records < limit:
            got = 0
            for inp in self.inputs:
                tailer = inp.tailer
                for t, buf, base, final in tailer.poll():
                    if t.decoder is None:
                        t.decoder = inp.make_decoder(t)
                    decoder: StreamDecoder = t.decoder
                    chunk, consumed = decoder.decode(buf, base, final)
                    tailer.consumed(t, buf, consumed)
                    if consumed == 0:
                        continue
                    out.append(_Read(decoder.info, base, chunk, t.fingerprint or "", t.dev,
                                     t.inode))  # fmt: skip
                    got += chunk.records
            records += got
            if not out:
                return out
            now = time.monotonic()
            if deadline is None:
                deadline = now + linger_s
            if now >= deadline:
                break
            if got == 0:
                time.sleep(min(0.002, max(0.0, deadline - now)))
        return out

    def encode(self, reads: list[_Read]) -> list[Outgoing]:
        """Messages for the reads: per read and partition, split to fit the payload limit."""
        s = self.settings
        n = s.partitions
        key = self.router.key
        parts = self._parts
        if len(parts) > PARTITION_CACHE:
            parts.clear()
        out: list[Outgoing] = []
        for r in reads:
            info, chunk = r.info, r.chunk
            groups: dict[int, list[Event]] = {}
            for ev in chunk.events:
                route = key(ev)
                part = parts.get(route)
                if part is None:
                    part = parts[route] = partition_of(route, n)
                group = groups.get(part)
                if group is None:
                    groups[part] = [ev]
                else:
                    group.append(ev)
            side = partition_of(info.stream, n)
            if (chunk.rejects or chunk.ignored) and side not in groups:
                groups[side] = []
            for k in sorted(groups):
                rejects = chunk.rejects if k == side else []
                ignored = chunk.ignored if k == side else 0
                self._split(out, r, k, groups[k], rejects, ignored)
            self.stats.records += chunk.records
            self.stats.events += len(chunk.events)
            self.stats.rejects += len(chunk.rejects)
            self.stats.ignored += chunk.ignored
        self.stats.unrouted = self.router.unrouted
        return out

    def _split(
        self,
        out: list[Outgoing],
        r: _Read,
        k: int,
        events: list[Event],
        rejects: list[Reject],
        ignored: int,
    ) -> None:
        s = self.settings
        info = r.info
        parts = [events[i : i + s.batch_events] for i in range(0, len(events), s.batch_events)]
        parts = parts or [[]]
        limit = int(self.max_payload * PAYLOAD_FILL)
        queue = list(parts)
        done: list[tuple[list[Event], bytes, int]] = []
        first = True
        while queue:
            evs = queue.pop(0)
            rj = rejects if first else []
            ig = ignored if first else 0
            piece = piece_array(info.source, info.stream, info.src_ref, k, r.start, r.chunk.end,
                                evs, rj, ig)  # fmt: skip
            payload = self._encode(piece)
            if len(payload) > limit and len(evs) > 1:
                half = len(evs) // 2
                queue[:0] = [evs[:half], evs[half:]]
                continue
            done.append((evs, payload, len(evs) + len(rj) + ig))
            first = False
        for part, (_evs, payload, records) in enumerate(done):
            mid = message_id(info.source, info.stream, r.start, r.chunk.end, k, part)
            out.append(Outgoing(s.subject(k), mid, payload, records))

    def advance(self, reads: list[_Read]) -> None:
        """The reads were published and acknowledged: their positions may be saved."""
        for r in reads:
            self._acked[(r.info.source, r.info.stream)] = [
                r.info.stream,
                r.chunk.end,
                r.fingerprint,
                r.dev,
                r.inode,
            ]
        self._dirty = True

    def save(self, force: bool = False) -> bool:
        """Writes the checkpoint if positions moved and the interval passed (or forced)."""
        now = time.monotonic()
        if not self._dirty or (
            not force and now - self._last_save < self.settings.checkpoint_interval_s
        ):
            return False
        positions: dict[str, list[list[Any]]] = {}
        for (source, _stream), row in self._acked.items():
            positions.setdefault(source, []).append(row)
        self.checkpoint = Checkpoint(positions=positions, routes=self.router.routes)
        save_checkpoint(self.settings.checkpoint, self.checkpoint)
        self._last_save = now
        self._dirty = False
        self.stats.checkpoints += 1
        return True

    # ---- publishing ----------------------------------------------------------
    async def publish(
        self, js: JetStreamContext, msgs: list[Outgoing], stop: asyncio.Event
    ) -> bool:
        """Publishes until every message is acknowledged (retrying the failed ones with the
        same ids, so one that did land is dropped as a duplicate). False if stopped first."""
        backoff = _Backoff()
        todo = msgs
        while todo:
            failed: list[Outgoing] = []
            futures: list[tuple[Outgoing, asyncio.Future[PubAck]]] = []
            for m in todo:
                try:
                    fut = await js.publish_async(
                        m.subject, m.payload, headers={Header.MSG_ID: m.msg_id}
                    )
                except nats.errors.Error as exc:
                    self.conn.error(exc)
                    failed.append(m)
                    continue
                futures.append((m, fut))
            if futures:
                await asyncio.wait([f for _, f in futures], timeout=PUBLISH_TIMEOUT_S)
            for m, fut in futures:
                if not fut.done():
                    fut.cancel()
                    failed.append(m)
                    continue
                error = None if fut.cancelled() else fut.exception()
                if fut.cancelled() or error is not None:
                    if error is not None:
                        self.conn.error(error)
                    failed.append(m)
                    continue
                self.stats.messages += 1
                self.stats.bytes_published += len(m.payload)
                if fut.result().duplicate:
                    self.stats.duplicates += 1
            if failed:
                self.stats.publish_failures += len(failed)
                log.warning("collector: %d publishes failed (%s); retrying", len(failed),
                            self.conn.last_error)  # fmt: skip
                if stop.is_set():
                    return False
                await backoff.pause(stop)
                if stop.is_set():
                    return False
            todo = failed
        return True

    async def run(self, stop: threading.Event, idle_exit_s: float = 0.0) -> CollectorStats:
        """Reads, publishes and checkpoints until ``stop`` is set (or, with ``idle_exit_s``,
        once nothing new was read for that long and everything read is checkpointed)."""
        s = self.settings
        astop = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.05)
            astop.set()

        watcher = asyncio.ensure_future(watch())
        nc: NatsClient | None = None
        try:
            nc = await connect(s.url, "tradelog-collector", self.conn, astop)
            if nc is None:
                return self.stats
            self.max_payload = nc.max_payload or self.max_payload
            js = nc.jetstream(timeout=API_TIMEOUT_S, publish_async_max_pending=1024)
            await ensure_partition_stream(js, s)
            limit = s.batch_events * s.partitions
            idle_since = time.monotonic()
            poll_s = min((i.tailer.rotate_wait_s for i in self.inputs), default=0.005)
            poll_s = min(poll_s, 0.005)
            while not astop.is_set():
                reads = await asyncio.to_thread(self.read, limit, s.linger_ms / 1000.0)
                if not reads:
                    self.save(force=True)
                    if idle_exit_s > 0 and time.monotonic() - idle_since >= idle_exit_s:
                        break
                    await asyncio.sleep(poll_s)
                    continue
                idle_since = time.monotonic()
                msgs = self.encode(reads)
                if not await self.publish(js, msgs, astop):
                    break  # not acknowledged: not checkpointed, re-read after a restart
                self.stats.flushes += 1
                self.advance(reads)
                self.save()
            self.save(force=True)
            return self.stats
        finally:
            watcher.cancel()
            if nc is not None:
                with contextlib.suppress(nats.errors.Error, TimeoutError, OSError):
                    await asyncio.wait_for(nc.flush(), API_TIMEOUT_S)
                await _close_quietly(nc, self.conn)
            for inp in self.inputs:
                inp.tailer.close()

    def state(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self.stats), **dataclasses.asdict(self.conn)}


async def ensure_partition_stream(js: JetStreamContext, s: ScaleoutSettings) -> bool:
    """The partitions' stream on ``<subject_prefix>.>`` (created if missing, with the
    configured duplicate window)."""
    try:
        await js.stream_info(s.stream)
        return False
    except nats.js.errors.NotFoundError:
        pass
    config = StreamConfig(
        name=s.stream,
        subjects=[f"{s.subject_prefix}.>"],
        storage=StorageType(s.storage),
        max_age=s.max_age_s if s.max_age_s > 0 else None,
        duplicate_window=s.duplicate_window_s,
    )
    try:
        await js.add_stream(config)
    except nats.js.errors.BadRequestError as exc:
        if exc.err_code == 10058:  # created meanwhile by another process
            return False
        raise
    log.info("created JetStream stream %s on %s.>", s.stream, s.subject_prefix)
    return True


# ---------------------------------------------------------------------------- processor


class EnvelopeDecoder(StreamDecoder):
    """Decodes one partition message into the chunk it carries (``NatsSource`` calls
    ``decode`` once per message). The chunk's stream key is the original stream plus
    ``@p<k>``, so each partition keeps its own position row and counters (no two workers
    update one row); the original stream and source stay on every event and reject.
    A message that is not a partition envelope becomes one ``malformed`` reject."""

    def __init__(self, source: str, settings: ScaleoutSettings, partition: int) -> None:
        self.info = StreamInfo(
            source=source, stream=stream_key(settings.stream), src_ref=settings.subject(partition)
        )
        self.partition = partition
        self._decode = msgspec.msgpack.Decoder(Piece).decode

    def decode(
        self, data: bytes, base: int, final: bool, ts_ingest: int | None = None
    ) -> tuple[CleanChunk, int]:
        now = time.time_ns() if ts_ingest is None else ts_ingest
        try:
            piece = self._decode(data)
        except msgspec.DecodeError as exc:
            return self._malformed(data, base, now, f"not a partition message: {exc}"), len(data)
        if piece.version != WIRE_VERSION or piece.partition != self.partition:
            detail = (
                f"partition message version {piece.version} for partition {piece.partition}; "
                f"expected version {WIRE_VERSION} for partition {self.partition}"
            )
            return self._malformed(data, base, now, detail), len(data)
        info = StreamInfo(piece.source, f"{piece.stream}@p{self.partition}", piece.src_ref)
        events: list[Event] = list(piece.events)
        rejects: list[Reject] = list(piece.rejects)
        chunk = CleanChunk(info, events, rejects, piece.ignored, piece.end)
        return chunk, len(data)

    def _malformed(self, data: bytes, base: int, now: int, detail: str) -> CleanChunk:
        info = self.info
        raw = data[:4096].decode("utf-8", "replace")
        reject = Reject(
            reject_id=derived_event_id(info.source, info.stream, base, raw, prefix="r-"),
            source=info.source,
            src_ref=info.src_ref,
            src_offset=base,
            reason=RejectReason.MALFORMED,
            detail=detail[:300],
            raw=raw,
            ts_ingest=now,
        )
        return CleanChunk(info, [], [reject], 0, base + len(data))


async def prepare_consumers(s: ScaleoutSettings, partitions: list[int]) -> dict[int, int]:
    """Creates the stream and each partition's durable consumer if missing; a consumer
    with unacked messages is recreated at its ack floor so they come first, in order.
    Returns partition → first stream sequence it will deliver (0: from the start)."""
    nc = NatsClient()
    await nc.connect(servers=[s.url], connect_timeout=5, max_reconnect_attempts=3)
    starts: dict[int, int] = {}
    try:
        js = nc.jetstream(timeout=API_TIMEOUT_S)
        await ensure_partition_stream(js, s)
        for k in partitions:
            name = s.consumer(k)
            try:
                info = await js.consumer_info(s.stream, name)
            except nats.js.errors.NotFoundError:
                await js.add_consumer(s.stream, consumer_config(s, k, None))
                starts[k] = 0
                continue
            pending = info.num_ack_pending or 0
            if pending == 0:
                starts[k] = 0
                continue
            floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
            first = (floor or 0) + 1
            await js.delete_consumer(s.stream, name)
            await js.add_consumer(s.stream, consumer_config(s, k, first))
            starts[k] = first
            log.info("partition %d: %d unacked messages; consumer restarted at stream seq %d",
                     k, pending, first)  # fmt: skip
    finally:
        await nc.close()
    return starts


def consumer_config(s: ScaleoutSettings, partition: int, start_seq: int | None) -> ConsumerConfig:
    name = s.consumer(partition)
    return ConsumerConfig(
        name=name,
        durable_name=name,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL if start_seq is None else DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=start_seq,
        ack_wait=s.ack_wait_s,
        max_deliver=-1,
        max_ack_pending=s.max_in_flight_records + s.fetch_batch,
        filter_subject=s.subject(partition),
    )


def transient(exc: BaseException) -> bool:
    """A store failure worth retrying: the connection, not the data (the transaction was
    rolled back, so committing the same batch again is safe)."""
    return isinstance(exc, OSError | psycopg.OperationalError | psycopg.InterfaceError)


class RetryingCommits:
    """The ``commit`` the committers of a processor call: retries transient store failures
    with backoff for up to ``retry_s`` (or until ``stopping``), then re-raises. While it
    waits, the committer's bounded queue fills and the partition stops fetching."""

    def __init__(self, store: Store, retry_s: float, stopping: threading.Event) -> None:
        self.store = store
        self.retry_s = retry_s
        self.stopping = stopping
        self.retries = 0

    def commit(self, batch: CommitBatch) -> None:
        deadline = time.monotonic() + self.retry_s
        delay = BACKOFF_START_S
        while True:
            try:
                self.store.commit(batch)
                return
            except Exception as exc:
                if not transient(exc) or self.stopping.is_set() or time.monotonic() > deadline:
                    raise
                self.retries += 1
                log.warning("store commit failed (%s); retrying in %.1fs", exc, delay)
                self.stopping.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)


class _RetryingStore:
    """A ``Store`` whose ``commit`` retries (``RetryingCommits``); everything else is the
    wrapped store's."""

    def __init__(self, store: Store, commits: RetryingCommits) -> None:
        self._store = store
        self.commit = commits.commit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@dataclass(slots=True)
class PartitionWorker:
    """Everything that serves one partition in a processor."""

    partition: int
    pipeline: PartitionPipeline
    committer: Committer
    runner: LiveRunner
    source: NatsSource
    thread: threading.Thread | None = None


class Processor:
    """Owns a set of partitions: consumer → pipeline → store, acks after commit."""

    def __init__(
        self,
        store: Store,
        settings: ScaleoutSettings,
        partitions: list[int],
        pipeline_settings: PipelineSettings,
        reference: ReferenceData | None = None,
        marks: MarkSettings | None = None,
        listeners: list[CommitListener] | None = None,
        timing: list[Callable[[float], None]] | None = None,
        surveillance: SurveillanceSettings | None = None,
    ) -> None:
        if not partitions:
            raise ValueError("a processor needs at least one partition")
        for k in partitions:
            if not 0 <= k < settings.partitions:
                raise ValueError(
                    f"partition {k} is not below scaleout.partitions={settings.partitions}"
                )
        self.store = store
        self.settings = settings
        self.partitions = partitions
        self.pipeline_settings = pipeline_settings
        self.reference = reference
        self.marks = marks
        self.surveillance = surveillance
        self.listeners = list(listeners or [])
        self.timing = list(timing or [])
        self.workers: list[PartitionWorker] = []
        self._stopping = threading.Event()
        self.commits = RetryingCommits(store, settings.commit_retry_s, self._stopping)

    def start(self) -> None:
        """Recovers each partition's state, prepares its consumer and starts reading."""
        s = self.settings
        asyncio.run(prepare_consumers(s, self.partitions))
        for k in self.partitions:
            pipeline = PartitionPipeline(
                self.store,
                self.pipeline_settings,
                self.reference,
                self.marks,
                partition=k,
                surveillance=self.surveillance,
            )
            pipeline.open()
            committer = Committer(
                cast(Store, _RetryingStore(self.store, self.commits)),
                self.pipeline_settings.max_pending_batches,
            )
            committer.listeners.extend(self.listeners)
            committer.timing.extend(self.timing)
            runner = LiveRunner(pipeline, committer)
            name = f"scaleout-p{k}"
            nsettings = NatsSourceSettings(
                url=s.url,
                stream=s.stream,
                subject=s.subject(k),
                subjects=[f"{s.subject_prefix}.>"],
                durable=s.consumer(k),
                storage=s.storage,
                fetch_batch=s.fetch_batch,
                max_in_flight_records=s.max_in_flight_records,
                ack_wait_s=s.ack_wait_s,
            )
            source = NatsSource(
                name, nsettings, runner, functools.partial(EnvelopeDecoder, name, s, k)
            )
            worker = PartitionWorker(k, pipeline, committer, runner, source)
            worker.thread = threading.Thread(
                target=runner.run, name=f"tradelog-partition-{k}", daemon=True
            )
            worker.thread.start()
            source.start()
            self.workers.append(worker)

    def stop(self) -> None:
        """Stops fetching, lets in-flight batches commit and be acked, commits a snapshot
        per partition. The store stays open (its owner closes it)."""
        self._stopping.set()
        for w in self.workers:
            w.source.stop()
        for w in self.workers:
            w.runner.stop()
        errors: list[BaseException] = []
        for w in self.workers:
            if w.thread is not None:
                w.thread.join()
            try:
                w.committer.close()
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise RuntimeError(f"partition commit failed: {errors[0]}") from errors[0]

    def failed(self) -> str | None:
        """A description of the first partition whose live loop died, else None."""
        for w in self.workers:
            if w.thread is not None and not w.thread.is_alive() and not w.runner.stopping:
                return f"partition {w.partition}: live loop stopped"
        return None

    def state(self) -> dict[str, Any]:
        return {
            "partitions": {
                w.partition: {
                    "seq": w.pipeline.state.seq,
                    "records": w.pipeline.stats.records,
                    "events": w.pipeline.stats.events,
                    "duplicates": w.pipeline.stats.duplicates,
                    "source": w.source.state(),
                }
                for w in self.workers
            }
        }

    def gauges(self) -> dict[str, Any]:
        """Gauges for ``Metrics.add_gauges``: per-partition queue depths and in-flight."""
        return {
            "tradelog_scaleout_in_flight_records": (
                "Records fetched from a partition and waiting for their commit",
                ["partition"],
                [([str(w.partition)], w.source.stats.in_flight_records) for w in self.workers],
            ),
            "tradelog_pipeline_queue_depth": (
                "Items waiting in a queue",
                ["queue"],
                [
                    (["inbox"], sum(w.runner.stats.inbox_depth for w in self.workers)),
                    (["commit"], sum(w.committer.pending for w in self.workers)),
                ],
            ),
        }
