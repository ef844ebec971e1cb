"""From a source's parsed items to cleaned chunks, and the time-ordered merge of several
streams used by ``replay`` (so quotes from one file precede the orders of another that
they came before, and arrival mids are right)."""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from tradelog.model.events import Event, Reject
from tradelog.parsing.base import Item, Parser
from tradelog.parsing.regex_rules import RegexParser
from tradelog.pipeline.batch import CleanChunk, StreamInfo
from tradelog.stages.clean import Cleaner
from tradelog.stages.clean_jsonl import FastJsonl
from tradelog.stages.clean_regex import FastRegex


def clean_items(
    items: list[Item], stream: StreamInfo, cleaner: Cleaner, end: int, ts_ingest: int
) -> CleanChunk:
    """Runs the clean stage over one parsed chunk of a stream."""
    events: list[Event] = []
    rejects: list[Reject] = []
    ignored = 0
    clean = cleaner.clean
    src_ref = stream.src_ref
    key = stream.stream
    for item in items:
        out = clean(item, src_ref, key, ts_ingest)
        if out is None:
            ignored += 1
        elif isinstance(out, Reject):
            rejects.append(out)
        else:
            events.append(out)
    return CleanChunk(stream, events, rejects, ignored, end)


class StreamDecoder:
    """Bytes of one stream → cleaned chunk: a parser + the source's cleaner, or a fast
    path that parses and cleans in one step (JSON lines; regex text logs, taken here for
    a line-record ``RegexParser`` whose cleaner has no value maps or static fields of its
    own). One instance per stream (parsers keep per-stream state)."""

    def __init__(
        self,
        info: StreamInfo,
        cleaner: Cleaner,
        parser: Parser | None,
        fast: FastJsonl | FastRegex | None,
    ) -> None:
        if (parser is None) == (fast is None):
            raise ValueError("a stream decoder needs exactly one of parser and fast path")
        if isinstance(parser, RegexParser) and FastRegex.applies(parser, cleaner.settings):
            fast = FastRegex(parser, cleaner)
            parser = None
        self.info = info
        self.cleaner = cleaner
        self.parser = parser
        self.fast = fast

    def decode(
        self, data: bytes, base: int, final: bool, ts_ingest: int | None = None
    ) -> tuple[CleanChunk, int]:
        now = time.time_ns() if ts_ingest is None else ts_ingest
        info = self.info
        if self.fast is not None:
            events, rejects, ignored, consumed = self.fast.parse_clean(
                data, base, final, info.src_ref, info.stream, now
            )
            return CleanChunk(info, events, rejects, ignored, base + consumed), consumed
        assert self.parser is not None
        items, consumed = self.parser.parse(data, base, final)
        return clean_items(items, info, self.cleaner, base + consumed, now), consumed


@dataclass
class _Cursor:
    """Merge state of one stream: its current chunk and how far it was emitted."""

    chunks: Iterator[CleanChunk]
    chunk: CleanChunk | None = None
    pos: int = 0
    committed_end: int = 0
    side_emitted: bool = False


def merge_by_time(streams: Sequence[Iterable[CleanChunk]]) -> Iterator[CleanChunk]:
    """Interleaves the events of several streams by event time, keeping each stream's own
    order. Rejects and ignored counts travel with the first piece of their chunk. A piece's
    ``end`` advances to its source chunk's end only with the piece that finishes the
    chunk (positions are conservative; replay relies on dedup, not on positions)."""
    if len(streams) == 1:
        yield from streams[0]
        return
    cursors = [_Cursor(iter(s)) for s in streams]
    heap: list[tuple[int, int]] = []

    def advance(i: int) -> None:
        cur = cursors[i]
        while True:
            chunk = next(cur.chunks, None)
            if chunk is None:
                cur.chunk = None
                return
            cur.chunk, cur.pos, cur.side_emitted = chunk, 0, False
            if chunk.events:
                heapq.heappush(heap, (chunk.events[0].ts, i))
                return
            # a chunk with only rejects/ignored records: emit it at once
            cur.committed_end = chunk.end
            pending.append(chunk)

    pending: list[CleanChunk] = []
    for i in range(len(cursors)):
        advance(i)
    while pending or heap:
        if pending:
            yield from pending
            pending.clear()
            continue
        _, i = heapq.heappop(heap)
        cur = cursors[i]
        chunk = cur.chunk
        assert chunk is not None
        limit = heap[0][0] if heap else None
        events = chunk.events
        start = cur.pos
        stop = start + 1
        n = len(events)
        while stop < n and (limit is None or events[stop].ts <= limit):
            stop += 1
        finished = stop == n
        piece = CleanChunk(
            chunk.stream,
            events[start:stop],
            [] if cur.side_emitted else chunk.rejects,
            0 if cur.side_emitted else chunk.ignored,
            chunk.end if finished else cur.committed_end,
        )
        cur.side_emitted = True
        cur.pos = stop
        yield piece
        if finished:
            cur.committed_end = chunk.end
            advance(i)
        else:
            heapq.heappush(heap, (events[stop].ts, i))
