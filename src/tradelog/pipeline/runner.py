"""The batch runner: stages over micro-batches, and the committer that writes them.

``Pipeline.process`` runs dedup → enrich → mark on a batch of cleaned chunks and returns a
``CommitBatch`` (events, rejects, marks, finished orders, the positions and counters of
every stream in the batch, and now and then a state snapshot). The ``Committer`` writes
commit batches on its own thread through a bounded queue: a slow store blocks the
producer (backpressure), never grows memory. A batch is committed with its source
positions in one transaction; restarting resumes from the last commit.

Recovery (``Pipeline.open``): the dedup index is loaded from the store's id hashes, the
partition state from its last snapshot, and the events stored after that snapshot are
replayed through enrich and mark so the state is exactly what it was at the last commit
(the kdb+ tickerplant idea: a journal, a position, replay to it).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from tradelog.model.events import Event
from tradelog.model.orders import order_record
from tradelog.model.reference import ReferenceData
from tradelog.pipeline.batch import Batch, CleanChunk
from tradelog.pipeline.state import PartitionState
from tradelog.stages.dedup import Dedup, IdIndex
from tradelog.stages.enrich import Enrich
from tradelog.stages.mark import Mark, MarkSettings
from tradelog.stages.surveil import Surveil
from tradelog.storage.base import CommitBatch, Store, StreamPosition
from tradelog.surveillance.engine import SurveillanceSettings

log = logging.getLogger("tradelog.pipeline")

CATCH_UP_PAGE: Final = 50_000


class Stage(Protocol):
    """A pipeline step: a function of (batch, state) with a ``step_id`` for errors/metrics."""

    @property
    def step_id(self) -> str: ...

    def __call__(self, batch: Batch, state: PartitionState) -> None: ...


@dataclass(slots=True)
class PipelineSettings:
    batch_events: int = 4096
    """Records per micro-batch (upper bound; live batches close earlier on linger)."""
    max_pending_batches: int = 2
    """Commit batches queued for the store before producers block."""
    snapshot_interval_s: float = 30.0
    size_window: int = 100
    max_terminal_orders: int = 100_000


@dataclass(slots=True)
class RunStats:
    """Running totals of one process (for progress bars and summaries)."""

    records: int = 0
    events: int = 0
    rejects: int = 0
    duplicates: int = 0
    ignored: int = 0
    batches: int = 0
    events_by_kind: dict[str, int] = field(default_factory=dict)
    rejects_by_reason: dict[str, int] = field(default_factory=dict)


class Pipeline:
    """One partition's stages and state (one process runs all partitions by default)."""

    def __init__(
        self,
        store: Store,
        settings: PipelineSettings | None = None,
        reference: ReferenceData | None = None,
        marks: MarkSettings | None = None,
        partition: int = 0,
        surveillance: SurveillanceSettings | None = None,
    ) -> None:
        self.settings = settings or PipelineSettings()
        self.store = store
        self.partition = partition
        s = self.settings
        self.state = PartitionState(partition, s.size_window, s.max_terminal_orders)
        self.index = self._new_index(None)
        self.dedup = Dedup(self.index, store.stored_event_ids)
        self.enrich = Enrich(reference)
        self.mark = Mark(marks, reference)
        self.stages: list[Stage] = [self.dedup, self.enrich, self.mark]
        self.surveil: Surveil | None = None
        """Runs when surveillance settings are given and enabled (off by default here; the
        composition root passes the config's, which default to on)."""
        if surveillance is not None and surveillance.enabled:
            self.surveil = Surveil(surveillance, reference)
            self.stages.append(self.surveil)
        self.stats = RunStats()
        self._last_snapshot = time.monotonic()

    def _new_index(self, hashes: npt.NDArray[np.int64] | None) -> IdIndex:
        """The dedup index keeps more recent ids than can be in flight to the store."""
        s = self.settings
        in_flight = (s.max_pending_batches + 2) * s.batch_events
        keep = max(in_flight, 1 << 14)
        return IdIndex(hashes, recent_limit=keep * 4, keep_recent=keep)

    # ---- recovery ----------------------------------------------------------
    def open(self) -> None:
        """Loads the dedup index and the state as of the last commit."""
        self.index = self._new_index(self.store.load_id_hashes())
        self.dedup.index = self.index
        snap = self.store.load_snapshot(self.partition)
        if snap is not None:
            self.state.restore(snap[1])
        replayed = 0
        while True:
            events = self.store.events_after(self.state.seq, CATCH_UP_PAGE)
            if not events:
                break
            self.replay_stored(events)
            replayed += len(events)
        if replayed:
            log.info("caught up %d events after snapshot seq %s", replayed, snap and snap[0])

    def replay_stored(self, events: list[Event]) -> None:
        """Rebuilds state from already-stored events (catch-up after a snapshot): enrich,
        mark and surveil run again, their outputs were committed already and are dropped;
        the renumbered ``seq`` must match the stored one."""
        batch = Batch(chunks=[], events=events)
        expected = events[0].seq
        self.enrich(batch, self.state)
        self.mark(batch, self.state)
        if self.surveil is not None:
            self.surveil(batch, self.state)
        if events[0].seq != expected:
            raise RuntimeError(
                f"partition {self.partition}: catch-up replay out of step: stored seq "
                f"{expected}, replayed as {events[0].seq}; the store's seq is not contiguous"
            )

    # ---- processing --------------------------------------------------------
    def process(self, chunks: list[CleanChunk], force_snapshot: bool = False) -> CommitBatch:
        batch = Batch(chunks=chunks)
        state = self.state
        for stage in self.stages:
            try:
                stage(batch, state)
            except Exception as exc:
                raise RuntimeError(f"stage {stage.step_id} failed: {exc}") from exc
        positions: dict[tuple[str, str], StreamPosition] = {}
        stats = self.stats
        for chunk in chunks:
            info = chunk.stream
            key = (info.source, info.stream)
            pos = positions.get(key)
            if pos is None:
                pos = positions[key] = StreamPosition(
                    source=info.source,
                    stream=info.stream,
                    src_ref=info.src_ref,
                    offset=chunk.end,
                    fingerprint=info.fingerprint,
                    dev=info.dev,
                    inode=info.inode,
                )
            pos.offset = chunk.end
            pos.src_ref = info.src_ref
            records = chunk.records
            pos.lines_read += records
            pos.events += len(chunk.events) - chunk.dup_events
            pos.rejects += len(chunk.rejects) - chunk.dup_rejects
            pos.duplicates += chunk.duplicates
            pos.ignored += chunk.ignored
            stats.records += records
            stats.ignored += chunk.ignored
            stats.duplicates += chunk.duplicates
        stats.events += len(batch.events)
        stats.rejects += len(batch.rejects)
        stats.batches += 1
        by_kind = stats.events_by_kind
        for ev in batch.events:
            by_kind[ev.kind] = by_kind.get(ev.kind, 0) + 1
        by_reason = stats.rejects_by_reason
        for rj in batch.rejects:
            by_reason[rj.reason] = by_reason.get(rj.reason, 0) + 1
        snapshot = None
        now = time.monotonic()
        if force_snapshot or now - self._last_snapshot >= self.settings.snapshot_interval_s:
            snapshot = (self.partition, state.seq, state.snapshot())
            self._last_snapshot = now
        return CommitBatch(
            events=batch.events,
            id_hashes=batch.id_hashes,
            rejects=batch.rejects,
            reject_hashes=batch.reject_hashes,
            marks=batch.marks,
            orders=[order_record(o) for o in batch.finished_orders.values()],
            round_trips=batch.round_trips,
            order_rewrites=batch.order_rewrites,
            order_placeholders=batch.order_placeholders,
            positions=list(positions.values()),
            snapshot=snapshot,
            alerts=batch.alerts,
            profiles=batch.profiles,
        )


CommitListener = Callable[[CommitBatch], None]


def _guarded(fn: CommitListener, batch: CommitBatch) -> None:
    """A listener's failure is logged; it never fails the commit that already happened."""
    try:
        fn(batch)
    except Exception:
        log.exception("commit listener %r failed", fn)


def _call_all(fns: list[Callable[[BaseException], None]], exc: BaseException) -> None:
    for fn in fns:
        try:
            fn(exc)
        except Exception:
            log.exception("error callback %r failed", fn)


class Committer:
    """Writes commit batches on a background thread, in order, with a bounded queue."""

    def __init__(self, store: Store, max_pending: int = 2) -> None:
        self.store = store
        self.max_pending = max_pending
        self._queue: queue.Queue[CommitBatch | None] = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self.listeners: list[CommitListener] = []
        self.timing: list[Callable[[float], None]] = []
        """Called with each commit's duration in seconds."""
        self.commit_seconds: list[float] = []
        self._thread = threading.Thread(target=self._run, name="tradelog-committer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.task_done()
                return
            try:
                if self._error is not None:
                    _call_all(item.on_error, self._error)
                    continue
                t0 = time.perf_counter()
                self.store.commit(item)
                took = time.perf_counter() - t0
                self.commit_seconds.append(took)
                if len(self.commit_seconds) > 10_000:
                    del self.commit_seconds[:5_000]
                for observe in self.timing:
                    observe(took)
                for listener in self.listeners:
                    _guarded(listener, item)
                for callback in item.on_commit:
                    _guarded(callback, item)
            except BaseException as exc:  # surfaced to the producer on its next call
                self._error = exc
                log.exception("store commit failed")
                _call_all(item.on_error, exc)
            finally:
                self._queue.task_done()

    @property
    def pending(self) -> int:
        """Batches queued or being committed."""
        return self._queue.unfinished_tasks

    def _check(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"store commit failed: {self._error}") from self._error

    def submit(self, batch: CommitBatch) -> None:
        """Queues a batch; blocks while the queue is full (backpressure)."""
        self._check()
        self._queue.put(batch)

    def flush(self) -> None:
        """Waits until every queued batch is committed."""
        self._queue.join()
        self._check()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._check()


def run_batches(
    pipeline: Pipeline,
    committer: Committer,
    chunks: Iterable[CleanChunk],
    on_batch: Callable[[list[CleanChunk]], Any] | None = None,
) -> None:
    """Groups chunks into micro-batches of about ``batch_events`` records, processes and
    commits them; the last batch carries a state snapshot."""
    limit = pipeline.settings.batch_events
    prepare = pipeline.store.prepare
    pending: list[CleanChunk] = []
    size = 0
    it: Iterator[CleanChunk] = iter(chunks)
    for chunk in it:
        pending.append(chunk)
        size += chunk.records
        if size >= limit:
            batch = pipeline.process(pending)
            prepare(batch)  # here, not on the committer: see Store.prepare
            committer.submit(batch)
            if on_batch is not None:
                on_batch(pending)
            pending = []
            size = 0
    last = pipeline.process(pending, force_snapshot=True)
    prepare(last)
    committer.submit(last)
    if on_batch is not None and pending:
        on_batch(pending)
    committer.flush()
