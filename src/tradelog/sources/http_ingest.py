"""http: ``POST /log_stream/events`` bodies into the live pipeline.

A body is a JSON array (one event per element) or text in the source's format (NDJSON
by default). It is decoded and cleaned as one chunk of the stream ``http`` of its source,
submitted to the live loop, and answered once committed: how many events were accepted,
how many were duplicates (a retried request is recognised: ids derived from a record's
position and bytes are the same), and the rejects by index with their reason.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable
from typing import Any, Final

import msgspec

from tradelog.api.deps import IngestResult
from tradelog.model.events import Reject
from tradelog.pipeline.batch import CleanChunk
from tradelog.pipeline.ingest import StreamDecoder
from tradelog.pipeline.live import LiveRunner, Submission
from tradelog.storage.base import CommitBatch

DEFAULT_MAX_BODY: Final = 8 << 20
COMMIT_TIMEOUT_S: Final = 30.0


class HttpIngest:
    """Implements the API's ``Ingestor`` over the live runner."""

    def __init__(
        self,
        runner: LiveRunner,
        decoders: dict[str, Callable[[], StreamDecoder]],
        default_source: str,
        max_body_bytes: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.runner = runner
        self.decoders = decoders
        self.default_source = default_source
        self.max_body_bytes = max_body_bytes
        self._array = msgspec.json.Decoder(list[Any])
        self._encode = msgspec.json.Encoder().encode

    def _lines(self, body: bytes, content_type: str) -> bytes | str:
        """The body as newline-separated records, or an error message."""
        stripped = body.lstrip()
        if stripped.startswith(b"["):
            try:
                items = self._array.decode(body)
            except msgspec.DecodeError as exc:
                return f"invalid JSON array: {exc}"
            return b"".join(self._encode(item) + b"\n" for item in items)
        if (
            "json" in content_type
            and not content_type.endswith("x-ndjson")
            and stripped[:1] == b"{"
        ):
            # a single JSON object
            try:
                item = msgspec.json.decode(body)
            except msgspec.DecodeError as exc:
                return f"invalid JSON: {exc}"
            return self._encode(item) + b"\n"
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"body is not UTF-8 (byte {exc.start})"
        return body

    async def ingest(
        self, body: bytes, content_type: str, fmt: str | None, source: str | None
    ) -> IngestResult:
        name = source or self.default_source
        make = self.decoders.get(name)
        if make is None:
            return IngestResult(
                400, {"error": f"unknown http source {name!r}; have {sorted(self.decoders)}"}
            )
        if fmt is not None:
            return IngestResult(
                400, {"error": "format is fixed by the source's config; use ?source=NAME"}
            )
        if not body.strip():
            return IngestResult(400, {"error": "empty body"})
        lines = self._lines(body, content_type.lower())
        if isinstance(lines, str):
            return IngestResult(400, {"error": lines})
        data = lines if lines.endswith(b"\n") else lines + b"\n"
        decoder = make()
        chunk, _ = decoder.decode(data, 0, True)
        starts = _line_starts(data)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[CommitBatch] = loop.create_future()

        def committed(batch: CommitBatch) -> None:
            loop.call_soon_threadsafe(_resolve, done, batch, None)

        def failed(exc: BaseException) -> None:
            loop.call_soon_threadsafe(_resolve, done, None, exc)

        if not self.runner.submit(Submission([chunk], committed, failed)):
            return IngestResult(503, {"error": "pipeline saturated; retry later"})
        try:
            await asyncio.wait_for(done, COMMIT_TIMEOUT_S)
        except TimeoutError:
            return IngestResult(503, {"error": "commit did not finish in time; retry later"})
        except Exception as exc:
            return IngestResult(503, {"error": f"store commit failed: {exc}"})
        return IngestResult(200, _summary(chunk, starts))


def _resolve(
    fut: asyncio.Future[CommitBatch], batch: CommitBatch | None, exc: BaseException | None
) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        assert batch is not None
        fut.set_result(batch)


def _line_starts(data: bytes) -> list[int]:
    starts = [0]
    pos = data.find(b"\n")
    while pos != -1 and pos + 1 < len(data):
        starts.append(pos + 1)
        pos = data.find(b"\n", pos + 1)
    return starts


def _summary(chunk: CleanChunk, starts: list[int]) -> dict[str, Any]:
    def index(offset: int) -> int:
        return bisect.bisect_right(starts, offset) - 1

    rejected = [_reject_entry(rj, index(rj.src_offset)) for rj in chunk.rejects]
    return {
        "records": chunk.records,
        "accepted": len(chunk.events) - chunk.dup_events,
        "duplicates": chunk.duplicates,
        "ignored": chunk.ignored,
        "rejected": rejected,
    }


def _reject_entry(rj: Reject, idx: int) -> dict[str, Any]:
    return {"index": idx, "reason": rj.reason.value, "detail": rj.detail, "field": rj.field}
