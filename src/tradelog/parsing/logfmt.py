"""logfmt / key=value lines: ``ts=2025-03-03T09:30:00Z kind=fill order_id=O1 last_qty=5``.

Values may be double-quoted with backslash escapes; a bare key means ``true`` (logfmt
convention). A line with an unterminated quote or no ``key=value`` pair is malformed.
"""

from __future__ import annotations

from typing import Any

from tradelog.model.events import RejectReason
from tradelog.parsing.base import Failure, Item, LineParser, Record

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def split_logfmt(text: str) -> dict[str, Any] | str:
    """Pairs of a logfmt line, or an error message.

    >>> split_logfmt('a=1 b="x y" c')
    {'a': '1', 'b': 'x y', 'c': True}
    >>> split_logfmt('a="open')
    'unterminated quoted value for key a'
    """
    out: dict[str, Any] = {}
    i, n = 0, len(text)
    pairs = 0
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        start = i
        while i < n and text[i] not in "= \t":
            i += 1
        key = text[start:i]
        if not key:
            return f"empty key at column {start + 1}"
        if i >= n or text[i] != "=":
            out[key] = True
            continue
        i += 1  # past '='
        if i < n and text[i] == '"':
            i += 1
            chars: list[str] = []
            closed = False
            while i < n:
                ch = text[i]
                if ch == "\\" and i + 1 < n:
                    chars.append(_ESCAPES.get(text[i + 1], text[i + 1]))
                    i += 2
                    continue
                if ch == '"':
                    closed = True
                    i += 1
                    break
                chars.append(ch)
                i += 1
            if not closed:
                return f"unterminated quoted value for key {key}"
            out[key] = "".join(chars)
        else:
            start = i
            while i < n and text[i] not in " \t":
                i += 1
            out[key] = text[start:i]
        pairs += 1
    if pairs == 0:
        return "no key=value pair"
    return out


class LogfmtParser(LineParser):
    """One logfmt record per line; field names are renamed by the source's config."""

    def parse_line(self, text: str, start: int, end: int) -> Item:
        fields = split_logfmt(text)
        if isinstance(fields, str):
            return Failure(RejectReason.MALFORMED, f"logfmt: {fields}", text, start, end)
        return Record(fields, text, start, end)
