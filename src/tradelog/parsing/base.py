"""What every parser produces, and the line splitting they share.

A parser turns bytes of one stream into items, in stream order:

- ``Record``: the fields of one record (names and values as the source wrote them, or
  canonical names where the format defines them), its raw text and its byte span;
- ``Failure``: a record that could not be read, with a bounded reason;
- ``Skip``: a record deliberately ignored (FIX session messages, blank lines, lines the
  config says to skip), counted but not stored.

Parsers never raise on bad input. They keep whatever they need between calls (e.g. a
partial record, a FIX session's context) in their own instance: one instance per stream.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, Final, Protocol

import msgspec

from tradelog.model.events import RejectReason

DEFAULT_MAX_RECORD_BYTES: Final = 1 << 20


class Record(msgspec.Struct, gc=False):
    """One readable record: its fields, raw text and [start, end) byte span."""

    fields: dict[str, Any]
    raw: str
    start: int
    end: int


class Failure(msgspec.Struct, gc=False):
    """One unreadable record: why, what it looked like, where it was."""

    reason: RejectReason
    detail: str
    raw: str
    start: int
    end: int
    field: str | None = None


class Skip(msgspec.Struct, gc=False):
    """One record deliberately not turned into an event (counted as ignored)."""

    why: str
    start: int
    end: int


Item = Record | Failure | Skip


class Parser(Protocol):
    """Bytes of one stream → items. ``data`` starts at stream offset ``base``.

    Returns the items for every complete record in ``data`` and how many bytes were
    consumed; the caller passes the unconsumed tail again with more data. With
    ``final=True`` (end of a finished file), a last record without newline is complete.
    """

    def parse(self, data: bytes, base: int, final: bool) -> tuple[list[Item], int]: ...


def iter_lines(data: bytes, final: bool) -> tuple[list[bytes], int]:
    """Complete lines of ``data`` (without ``\\n``) and the number of bytes they span.

    >>> iter_lines(b"a\\nbb\\ncc", final=False)
    ([b'a', b'bb'], 5)
    >>> iter_lines(b"a\\nbb\\ncc", final=True)
    ([b'a', b'bb', b'cc'], 7)
    """
    cut = data.rfind(b"\n") + 1
    if final and cut < len(data):
        lines = data.split(b"\n")
        return lines, len(data)
    if cut == 0:
        return [], 0
    lines = data[: cut - 1].split(b"\n")
    return lines, cut


def line_spans(lines: list[bytes], base: int) -> Iterator[tuple[bytes, int, int]]:
    """Each line with its [start, end) span, ``end`` counting the newline."""
    start = base
    for line in lines:
        end = start + len(line) + 1
        yield line, start, end
        start = end


def decode_line(line: bytes, start: int, end: int, max_bytes: int) -> str | Failure:
    """UTF-8 text of a line without its trailing ``\\r``, or a Failure saying why not."""
    if len(line) > max_bytes:
        head = line[:200].decode("utf-8", "backslashreplace")
        return Failure(
            RejectReason.LINE_TOO_LONG,
            f"record of {len(line)} bytes exceeds the limit of {max_bytes} bytes",
            head,
            start,
            end,
        )
    if line.endswith(b"\r"):
        line = line[:-1]
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Failure(
            RejectReason.ENCODING,
            f"not valid UTF-8 at byte {exc.start}",
            line.decode("utf-8", "backslashreplace"),
            start,
            end,
        )


class LineParser(ABC):
    """Base for one-record-per-line formats: subclasses implement ``parse_line``."""

    def __init__(self, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        self.max_record_bytes = max_record_bytes

    def parse(self, data: bytes, base: int, final: bool) -> tuple[list[Item], int]:
        lines, consumed = iter_lines(data, final)
        out: list[Item] = []
        append = out.append
        parse_line = self.parse_line
        max_bytes = self.max_record_bytes
        limit = base + consumed
        for line, start, end in line_spans(lines, base):
            end = min(end, limit)
            text = decode_line(line, start, end, max_bytes)
            if isinstance(text, Failure):
                append(text)
            elif not text.strip():
                append(Skip("blank", start, end))
            else:
                append(parse_line(text, start, end))
        return out, consumed

    @abstractmethod
    def parse_line(self, text: str, start: int, end: int) -> Item:
        """One non-blank line of text → one item."""
