"""clean, fast path for JSON lines with canonical names: msgspec decodes each line straight
into an event (C speed) and only the checks msgspec cannot do run in Python.

A line that does not fit the typed shape exactly (an unknown key, a field that its kind
cannot carry, a number written as a string, an upper-case kind, an empty id…) goes
through the general path (``JsonlParser`` + ``Cleaner``), which gives the same event or
the reject with its reason. The fast path never decides a reject by itself, so both paths
agree by construction; a property test checks it.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any, Final

import msgspec

from tradelog.model.events import ENRICHMENT_FIELDS, KIND_FIELDS, Event, EventKind, Reject
from tradelog.model.ids import derived_event_id
from tradelog.model.timefmt import IsoParser
from tradelog.parsing.base import (
    DEFAULT_MAX_RECORD_BYTES,
    Failure,
    Record,
    Skip,
    iter_lines,
    line_spans,
)
from tradelog.parsing.jsonl import JsonlParser
from tradelog.stages.clean import (
    _LIQUIDITY,
    _NON_NEGATIVE,
    _POSITIVE,
    _PRICES,
    _SIDES,
    _STRING_FIELDS,
    REQUIRED,
    TS_MAX,
    TS_MIN,
    Cleaner,
    CleanSettings,
    _with_upper,
)


class _JsonEvent(Event, kw_only=True, forbid_unknown_fields=True, gc=False):
    """Event as decoded from a canonical JSON line: provenance fields are filled after
    decoding, ``ts``/``event_id``/``side``/``liquidity`` are normalised after decoding, and
    enrichment fields must be absent (checked).

    Provenance fields are typed ``None``: a line that carries one (``"source": "x"``) fails
    to decode here and goes down the general path, which keeps it in ``attrs``."""

    event_id: str | int | None = None  # type: ignore[assignment]
    ts: str | int | float = 0  # type: ignore[assignment]
    ts_ingest: None = None  # type: ignore[assignment]
    source: None = None  # type: ignore[assignment]
    src_ref: None = None  # type: ignore[assignment]
    src_offset: None = None  # type: ignore[assignment]
    raw: None = None  # type: ignore[assignment]
    attrs: None = None
    side: str | None = None  # type: ignore[assignment]
    liquidity: str | None = None  # type: ignore[assignment]
    seq: int | None = None  # type: ignore[assignment]
    context_from_order: bool | None = None  # type: ignore[assignment]


_PROVENANCE: Final = frozenset(
    {"event_id", "kind", "ts", "ts_ingest", "source", "src_ref", "src_offset", "raw", "attrs"}
)


def _kind_checks() -> dict[EventKind, tuple[Callable[[tuple[Any, ...]], Any], int]]:
    """Per kind: a getter of every field the kind may not carry, and how many there are
    (all must be None after decoding)."""
    names = _JsonEvent.__struct_fields__
    out: dict[EventKind, tuple[Callable[[tuple[Any, ...]], Any], int]] = {}
    for kind, fields in KIND_FIELDS.items():
        allowed = (set(fields) - set(ENRICHMENT_FIELDS)) | _PROVENANCE
        idx = [i for i, n in enumerate(names) if n not in allowed]
        out[kind] = (operator.itemgetter(*idx), len(idx))
    return out


def _kind_numbers() -> dict[EventKind, tuple[tuple[str, int], ...]]:
    """Per kind: numeric fields it can carry and their rule (1 > 0, 2 >= 0, 3 price)."""
    out: dict[EventKind, tuple[tuple[str, int], ...]] = {}
    for kind, fields in KIND_FIELDS.items():
        rules = []
        for name in fields:
            if name in _POSITIVE:
                rules.append((name, 1))
            elif name in _NON_NEGATIVE:
                rules.append((name, 2))
            elif name in _PRICES:
                rules.append((name, 3))
        out[kind] = tuple(rules)
    return out


def _kind_strings() -> dict[EventKind, tuple[str, ...]]:
    return {k: tuple(n for n in f if n in _STRING_FIELDS) for k, f in KIND_FIELDS.items()}


class FastJsonl:
    """Parse + clean of one JSON-lines stream (one instance per stream)."""

    @staticmethod
    def applies(settings: CleanSettings) -> bool:
        """The fast path only serves sources without renames, value maps, static fields,
        a fixed kind or a special time format (those need the general path)."""
        s = settings
        return not (s.fields or s.values or s.static or s.kind) and s.time_format in (
            "iso",
            "auto",
        )

    def __init__(self, cleaner: Cleaner, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        if not self.applies(cleaner.settings):
            raise ValueError("the fast JSON path needs canonical names and ISO/epoch times")
        self.cleaner = cleaner
        self.slow = JsonlParser(max_record_bytes)
        self.max_record_bytes = max_record_bytes
        self._decode = msgspec.json.Decoder(_JsonEvent).decode
        self._astuple = msgspec.structs.astuple
        self._checks = _kind_checks()
        self._numbers = _kind_numbers()
        self._strings = _kind_strings()
        self._iso = IsoParser(cleaner.zone)
        self._sides = _with_upper(_SIDES)
        self._liquidity = _with_upper(_LIQUIDITY)
        self._symbol = cleaner.read_symbol
        self._venue = cleaner.read_venue
        self._allow_nonpositive = cleaner.settings.allow_nonpositive_prices

    def parse_clean(
        self, data: bytes, base: int, final: bool, src_ref: str, stream: str, ts_ingest: int
    ) -> tuple[list[Event], list[Reject], int, int]:
        """(events, rejects, ignored, bytes consumed) for the complete lines of ``data``."""
        lines, consumed = iter_lines(data, final)
        events: list[Event] = []
        rejects: list[Reject] = []
        ignored = 0
        limit = base + consumed
        fast = self._fast
        source = self.cleaner.source
        max_bytes = self.max_record_bytes
        for line, start, end in line_spans(lines, base):
            end = min(end, limit)
            too_long = len(line) > max_bytes  # counted with a trailing \r, as decode_line does
            ev = None if too_long else fast(line, start, source, src_ref, stream, ts_ingest)
            if ev is not None:
                events.append(ev)
                continue
            try:
                text = (line[:-1] if line.endswith(b"\r") else line).decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text is None or too_long:
                item: Record | Failure | Skip = self._slow_item(line, start, end)
            elif not text.strip():
                item = Skip("blank", start, end)
            else:
                item = self.slow.parse_line(text, start, end)
            out = self.cleaner.clean(item, src_ref, stream, ts_ingest)
            if out is None:
                ignored += 1
            elif isinstance(out, Reject):
                rejects.append(out)
            else:
                events.append(out)
        return events, rejects, ignored, consumed

    def _slow_item(self, line: bytes, start: int, end: int) -> Record | Failure | Skip:
        items, _ = self.slow.parse(line + b"\n", start, True)
        item = items[0]
        item.end = end
        return item

    def _fast(
        self, line: bytes, start: int, source: str, src_ref: str, stream: str, ts_ingest: int
    ) -> Event | None:
        """The event of a canonical line, or None to send the line down the general path."""
        if not line or line[-1] == 13:  # empty, or ends with \r
            return None
        try:
            ev = self._decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec raises the latter for
            return None  # invalid UTF-8 inside a string value
        kind = ev.kind
        getter, count = self._checks[kind]
        if getter(self._astuple(ev)).count(None) != count:
            return None
        for name in REQUIRED[kind]:
            value = getattr(ev, name)
            if value is None or value == "":
                return None
        for name in self._strings[kind]:
            value = getattr(ev, name)
            if value is not None and (value == "" or value[0].isspace() or value[-1].isspace()):
                return None  # the general path strips (str.strip: any Unicode space)
        allow = self._allow_nonpositive
        for name, rule in self._numbers[kind]:
            value = getattr(ev, name)
            if value is None:
                continue
            if not math.isfinite(value):
                return None
            if rule == 1 and value <= 0:
                return None
            if rule == 2 and value < 0:
                return None
            if rule == 3 and value <= 0 and not allow:
                return None
        if kind is EventKind.QUOTE:
            if ev.bid is None or ev.ask is None:
                if ev.bid is None and ev.ask is None:
                    return None  # a quote needs a bid or an ask
            elif ev.bid > ev.ask:
                return None
        elif kind is EventKind.ORDER_NEW and ev.price is None:
            return None
        side = ev.side
        if side is not None:
            side = self._sides.get(side)
            if side is None:
                return None
            ev.side = side
        liq = ev.liquidity
        if liq is not None:
            liq = self._liquidity.get(liq)
            if liq is None:
                return None
            ev.liquidity = liq
        ts = ev.ts
        try:
            if type(ts) is str and len(ts) > 10 and ts[4] == "-":
                ev.ts = self._iso(ts)
            else:
                return None
        except ValueError:
            return None
        if not TS_MIN <= ev.ts <= TS_MAX:
            return None
        if ev.symbol is not None:
            ev.symbol = self._symbol(ev.symbol)
        if ev.venue is not None:
            ev.venue = self._venue(ev.venue)
        try:
            raw = line.decode("utf-8")
        except UnicodeDecodeError:
            return None
        eid = ev.event_id
        if eid is None:
            ev.event_id = derived_event_id(source, stream, start, raw)
        elif type(eid) is not str:
            ev.event_id = str(eid)
        elif eid == "":
            return None
        ev.seq = 0
        ev.context_from_order = False
        # provenance: typed None above only to keep it out of the JSON line
        ev.ts_ingest = ts_ingest  # type: ignore[assignment]
        ev.source = source  # type: ignore[assignment]
        ev.src_ref = src_ref  # type: ignore[assignment]
        ev.src_offset = start  # type: ignore[assignment]
        ev.raw = raw  # type: ignore[assignment]
        return ev
