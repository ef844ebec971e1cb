"""The live loop: follow sources, batch what arrived, process, commit — continuously.

One thread runs the loop: it polls the file tailers and drains the inbox (chunks pushed by
HTTP ingest, NATS, market data), forms a micro-batch of whatever arrived (up to
``batch_events`` records: under load batches grow, idle they are a few events, so the same
code gives throughput and low latency), runs the stages and hands the commit batch to the
committer. Callbacks attached to a submission run after its batch is committed (an HTTP
response, a NATS ack) or with the error if the commit failed. The inbox is bounded: a full
inbox refuses new submissions (HTTP answers 503) instead of growing memory, and a slow
store blocks the loop through the committer's bounded queue, which stops reading files.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from tradelog.pipeline.batch import CleanChunk
from tradelog.pipeline.runner import Committer, Pipeline
from tradelog.storage.base import CommitBatch

log = logging.getLogger("tradelog.pipeline.live")

IDLE_POLL_S: Final = 0.005


class Input(Protocol):
    """Something the loop polls (file tailers): returns cleaned chunks, never blocks."""

    def poll(self) -> list[CleanChunk]: ...


@dataclass(slots=True)
class Submission:
    """Chunks pushed by an asynchronous source, with what to do once they are committed."""

    chunks: list[CleanChunk]
    on_commit: Callable[[CommitBatch], None] | None = None
    on_error: Callable[[BaseException], None] | None = None


@dataclass(slots=True)
class LiveStats:
    loops: int = 0
    batches: int = 0
    records: int = 0
    refused: int = 0
    last_batch_s: float = 0.0
    inbox_depth: int = 0
    started: float = field(default_factory=time.time)


class LiveRunner:
    """Runs a pipeline over live inputs until ``stop()``; the last batch carries a state
    snapshot and is flushed before ``run`` returns."""

    def __init__(
        self,
        pipeline: Pipeline,
        committer: Committer,
        inputs: list[Input] | None = None,
        max_inbox: int = 256,
        idle_poll_s: float = IDLE_POLL_S,
    ) -> None:
        self.pipeline = pipeline
        self.committer = committer
        self.inputs: list[Input] = list(inputs or [])
        self.inbox: queue.Queue[Submission] = queue.Queue(maxsize=max_inbox)
        self.idle_poll_s = idle_poll_s
        self.stats = LiveStats()
        self.processed: list[Callable[[CommitBatch], None]] = []
        """Called with each batch once processed, before it is handed to the committer
        (the live tape in ``processed`` push mode); a failure is logged, never fatal."""
        self._stop = threading.Event()
        self._wake = threading.Event()

    def submit(self, sub: Submission, timeout: float = 0.0) -> bool:
        """Queues a submission; False when the inbox stays full for ``timeout`` seconds."""
        try:
            if timeout > 0:
                self.inbox.put(sub, timeout=timeout)
            else:
                self.inbox.put_nowait(sub)
        except queue.Full:
            self.stats.refused += 1
            return False
        self._wake.set()
        return True

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """The loop (call in its own thread).

        Group commit: while the committer is busy with the previous batch, what arrives is
        gathered into the next one (up to ``batch_events``) instead of queueing many small
        batches behind it, so latency stays near one commit and batches grow with load
        (see ``_can_process`` for the early-push mode).
        """
        limit = self.pipeline.settings.batch_events
        chunks: list[CleanChunk] = []
        subs: list[Submission] = []
        size = 0
        try:
            while not self._stop.is_set():
                more, more_subs = self._gather(limit - size)
                chunks.extend(more)
                subs.extend(more_subs)
                size += sum(c.records for c in more)
                self.stats.loops += 1
                if chunks and (size >= limit or self._can_process()):
                    self._process(chunks, subs, force_snapshot=False)
                    chunks, subs, size = [], [], 0
                    continue
                self._wake.wait(self.idle_poll_s)
                self._wake.clear()
            more, more_subs = self._gather(limit)  # what arrived while stopping
            self._process(chunks + more, subs + more_subs, force_snapshot=True)
            self.committer.flush()
        except BaseException as exc:
            log.exception("live loop failed")
            self._fail_pending(exc)
            raise

    def _can_process(self) -> bool:
        """Group commit: process what was gathered once the committer is idle — or, when
        processed batches are pushed before their commit (``processed`` listeners), as soon
        as the committer's queue has room, so the push does not wait for a commit."""
        pending = self.committer.pending
        return pending == 0 or (bool(self.processed) and pending < self.committer.max_pending)

    def _gather(self, limit: int) -> tuple[list[CleanChunk], list[Submission]]:
        chunks: list[CleanChunk] = []
        subs: list[Submission] = []
        size = 0
        if limit <= 0:
            return chunks, subs
        for inp in self.inputs:
            for chunk in inp.poll():
                chunks.append(chunk)
                size += chunk.records
        while size < limit:
            try:
                sub = self.inbox.get_nowait()
            except queue.Empty:
                break
            subs.append(sub)
            for chunk in sub.chunks:
                chunks.append(chunk)
                size += chunk.records
        self.stats.inbox_depth = self.inbox.qsize()
        return chunks, subs

    def _process(
        self, chunks: list[CleanChunk], subs: list[Submission], force_snapshot: bool
    ) -> None:
        t0 = time.perf_counter()
        try:
            batch = self.pipeline.process(chunks, force_snapshot=force_snapshot)
        except BaseException as exc:
            for sub in subs:
                if sub.on_error is not None:
                    sub.on_error(exc)
            raise
        callbacks = [s.on_commit for s in subs if s.on_commit is not None]
        errbacks = [s.on_error for s in subs if s.on_error is not None]
        if callbacks:
            batch.on_commit.extend(callbacks)
        if errbacks:
            batch.on_error.extend(errbacks)
        for listener in self.processed:
            try:
                listener(batch)
            except Exception:
                log.exception("processed-batch listener %r failed", listener)
        self.committer.submit(batch)
        self.stats.batches += 1
        self.stats.records += sum(c.records for c in chunks)
        self.stats.last_batch_s = time.perf_counter() - t0

    def _fail_pending(self, exc: BaseException) -> None:
        while True:
            try:
                sub = self.inbox.get_nowait()
            except queue.Empty:
                return
            if sub.on_error is not None:
                sub.on_error(exc)
