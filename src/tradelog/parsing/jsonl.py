"""JSON lines: one JSON object per line, canonical field names (renamed by config)."""

from __future__ import annotations

from typing import Any

import msgspec

from tradelog.model.events import RejectReason
from tradelog.parsing.base import DEFAULT_MAX_RECORD_BYTES, Failure, Item, LineParser, Record


class JsonlParser(LineParser):
    """Each non-blank line must be a JSON object; anything else is a ``malformed`` failure.

    >>> items, n = JsonlParser().parse(b'{"kind":"system","message":"hi"}\\n[1]\\n', 0, False)
    >>> [type(i).__name__ for i in items], n
    (['Record', 'Failure'], 37)
    """

    def __init__(self, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        super().__init__(max_record_bytes)
        self._decode = msgspec.json.Decoder().decode

    def parse_line(self, text: str, start: int, end: int) -> Item:
        try:
            value: Any = self._decode(text)
        except msgspec.DecodeError as exc:
            return Failure(RejectReason.MALFORMED, f"invalid JSON: {exc}", text, start, end)
        if not isinstance(value, dict):
            return Failure(
                RejectReason.MALFORMED,
                f"expected a JSON object per line; was {type(value).__name__}",
                text,
                start,
                end,
            )
        return Record(value, text, start, end)
