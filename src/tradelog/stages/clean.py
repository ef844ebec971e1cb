"""clean: parsed records → validated events, or rejects with a reason.

Normalises names (config renames, a few unambiguous built-in aliases), enum values
(sides, kinds, liquidity), symbols and venues, reads numbers and timestamps strictly
(never 0.0 for junk, never ``now()`` for an unreadable time), checks the fields each kind
requires, and keeps unknown fields in ``attrs``. It never "fixes" a value: a negative
quantity is a reject, not an ``abs()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final, Literal

import msgspec

from tradelog.model.events import (
    KIND_FIELDS,
    Event,
    EventKind,
    Liquidity,
    Reject,
    RejectReason,
    Side,
)
from tradelog.model.ids import derived_event_id
from tradelog.model.timefmt import NS_PER_DAY, LocalZone, build_time_parser, days_from_civil
from tradelog.parsing.base import Failure, Item, Record, Skip

_CANONICAL: Final = frozenset(
    {
        "event_id", "kind", "ts", "symbol", "venue", "account_id", "strategy_id", "order_id",
        "orig_order_id", "venue_order_id", "side", "qty", "price", "order_type", "tif",
        "reason", "exec_id", "last_qty", "last_px", "cum_qty", "leaves_qty", "avg_px",
        "liquidity", "fee", "fee_currency", "counterparty_account", "bid", "ask", "bid_size",
        "ask_size", "position", "realized_pnl", "unrealized_pnl", "severity", "component",
        "message",
    }
)  # fmt: skip

# Aliases applied only when the canonical name is absent and no config rename claims them.
BUILTIN_ALIASES: Final[dict[str, str]] = {
    "event_type": "kind",
    "timestamp": "ts",
    "time": "ts",
    "sym": "symbol",
    "instrument": "symbol",
    "account": "account_id",
    "strategy": "strategy_id",
    "msg": "message",
}

_STRING_FIELDS: Final = frozenset(
    {
        "symbol", "venue", "account_id", "strategy_id", "order_id", "orig_order_id",
        "venue_order_id", "order_type", "tif", "reason", "exec_id", "fee_currency",
        "counterparty_account", "severity", "component", "message",
    }
)  # fmt: skip
_POSITIVE: Final = frozenset({"qty", "last_qty"})  # must be > 0
_NON_NEGATIVE: Final = frozenset({"cum_qty", "leaves_qty", "bid_size", "ask_size"})
_PRICES: Final = frozenset({"price", "last_px", "avg_px", "bid", "ask"})
_SIGNED: Final = frozenset({"fee", "position", "realized_pnl", "unrealized_pnl"})

_SIDES: Final[dict[str, Side]] = {
    "buy": Side.BUY, "b": Side.BUY, "bid": Side.BUY, "1": Side.BUY, "long": Side.BUY,
    "sell": Side.SELL, "s": Side.SELL, "ask": Side.SELL, "offer": Side.SELL, "2": Side.SELL,
    "short": Side.SELL, "sell_short": Side.SELL, "5": Side.SELL, "6": Side.SELL,
}  # fmt: skip
_LIQUIDITY: Final[dict[str, Liquidity]] = {
    "maker": Liquidity.MAKER, "m": Liquidity.MAKER, "added": Liquidity.MAKER,
    "add": Liquidity.MAKER, "passive": Liquidity.MAKER, "1": Liquidity.MAKER,
    "taker": Liquidity.TAKER, "t": Liquidity.TAKER, "removed": Liquidity.TAKER,
    "remove": Liquidity.TAKER, "aggressive": Liquidity.TAKER, "2": Liquidity.TAKER,
}  # fmt: skip
_KINDS: Final[dict[str, EventKind]] = {k.value: k for k in EventKind}
TS_MIN: Final = -(1 << 63)
TS_MAX: Final = (1 << 63) - 1
"""Event times are stored as int64 nanoseconds (1677-09-21 to 2262-04-11)."""

# fields each kind must carry (beyond event time)
REQUIRED: Final[dict[EventKind, tuple[str, ...]]] = {
    EventKind.ORDER_NEW: ("order_id", "symbol", "side", "qty"),
    EventKind.ORDER_ACK: ("order_id",),
    EventKind.ORDER_REPLACE: ("order_id",),
    EventKind.ORDER_CANCEL_REQUEST: ("order_id",),
    EventKind.ORDER_CANCELLED: ("order_id",),
    EventKind.ORDER_REJECTED: ("order_id",),
    EventKind.ORDER_CANCEL_REJECTED: ("order_id",),
    EventKind.ORDER_EXPIRED: ("order_id",),
    EventKind.FILL: ("order_id", "last_qty", "last_px"),
    EventKind.QUOTE: ("symbol",),
    EventKind.MARKET_TRADE: ("symbol", "price", "qty"),
    EventKind.POSITION: ("symbol", "position"),
    EventKind.SYSTEM: ("message",),
}


_ALLOWED: Final[dict[EventKind, frozenset[str]]] = {
    k: frozenset(v) | {"event_id"} for k, v in KIND_FIELDS.items()
}


class CleanSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How one source's records become events (part of a source's config)."""

    fields: dict[str, str] = {}
    """Renames: source field name → canonical name (``px = "price"``)."""
    values: dict[str, dict[str, str | None]] = {}
    """Value maps per canonical field (``side = {BUY = "buy"}``); "" (or null) drops it."""
    static: dict[str, Any] = {}
    """Fields added to every event when the record does not carry them."""
    kind: str | None = None
    """A fixed kind for every record of the source (e.g. a quotes feed)."""
    time_format: str = "iso"
    """iso | epoch_s | epoch_ms | epoch_us | epoch_ns | fix | a strftime-like pattern."""
    time_zone: str | None = None
    """Zone of timestamps that carry no offset (default UTC)."""
    date: str | None = None
    """YYYY-MM-DD for time-only timestamps."""
    builtin_aliases: bool = True
    allow_nonpositive_prices: bool = False


class Normalization(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Global name maps applied to every source (config ``[normalize]``)."""

    symbols: dict[str, str] = {}
    venues: dict[str, str] = {}
    symbol_case: Literal["upper", "lower", "keep"] = "upper"
    venue_case: Literal["upper", "lower", "keep"] = "upper"


class _Invalid(Exception):
    """Internal: a field failed validation (becomes a Reject)."""

    def __init__(self, reason: RejectReason, detail: str, field: str | None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.field = field


def _case(mode: str) -> Callable[[str], str]:
    if mode == "upper":
        return str.upper
    if mode == "lower":
        return str.lower
    return str


class Cleaner:
    """Turns the items of one source into events and rejects (``step_id`` = ``clean``)."""

    step_id: Final = "clean"

    def __init__(
        self, source: str, settings: CleanSettings, normalization: Normalization | None = None
    ) -> None:
        norm = normalization or Normalization()
        self.source = source
        self.settings = settings
        self._renames = dict(settings.fields)
        if settings.builtin_aliases:
            claimed = set(settings.fields.values())
            for alias, canon in BUILTIN_ALIASES.items():
                if alias not in self._renames and canon not in claimed:
                    self._renames[alias] = canon
        self._values = {k: dict(v) for k, v in settings.values.items()}
        self._static = dict(settings.static)
        self._fixed_kind = self._kind_of(settings.kind) if settings.kind else None
        self._parse_time = build_time_parser(settings.time_format, settings.time_zone)
        self._day_ns: int | None = None
        if settings.date:
            y, m, d = (int(p) for p in settings.date.split("-"))
            self._day_ns = days_from_civil(y, m, d) * NS_PER_DAY
        self._symbols = dict(norm.symbols)
        self._venues = dict(norm.venues)
        self._symbol_case = _case(norm.symbol_case)
        self._venue_case = _case(norm.venue_case)
        self._allow_nonpositive = settings.allow_nonpositive_prices
        self.read_rules: dict[str, str] = {}
        self._conv = self._converters()
        self.zone = LocalZone(settings.time_zone) if settings.time_zone else None
        self.read_symbol = self._conv["symbol"]
        self.read_venue = self._conv["venue"]

    @staticmethod
    def _kind_of(value: str) -> EventKind:
        kind = _KINDS.get(value.strip().lower())
        if kind is None:
            raise ValueError(f"unknown event kind {value!r}; expected one of {sorted(_KINDS)}")
        return kind

    # ------------------------------------------------------------------
    def clean(self, item: Item, src_ref: str, stream: str, ts_ingest: int) -> Event | Reject | None:
        """One parsed item → Event, Reject, or None for a Skip."""
        if isinstance(item, Record):
            try:
                return self._event(item, src_ref, stream, ts_ingest)
            except _Invalid as bad:
                return Reject(
                    reject_id=derived_event_id(self.source, stream, item.start, item.raw, "r-"),
                    source=self.source,
                    src_ref=src_ref,
                    src_offset=item.start,
                    reason=bad.reason,
                    detail=bad.detail,
                    raw=item.raw,
                    ts_ingest=ts_ingest,
                    field=bad.field,
                )
        if isinstance(item, Failure):
            return Reject(
                reject_id=derived_event_id(self.source, stream, item.start, item.raw, "r-"),
                source=self.source,
                src_ref=src_ref,
                src_offset=item.start,
                reason=item.reason,
                detail=item.detail,
                raw=item.raw,
                ts_ingest=ts_ingest,
                field=item.field,
            )
        if isinstance(item, Skip):
            return None
        raise TypeError(f"clean expects Record, Failure or Skip; got {type(item).__name__}")

    def _event(self, rec: Record, src_ref: str, stream: str, ts_ingest: int) -> Event:
        kw: dict[str, Any] = {}
        attrs: dict[str, Any] | None = None
        renames = self._renames
        values = self._values
        convs = self._conv
        ts_ns: int | None = None
        raw_ts: Any = None
        raw_kind: Any = None
        event_id: Any = None
        aliased: dict[str, Any] | None = None
        for key, value in rec.fields.items():
            if value is None or value == "":
                continue
            name = renames.get(key, key)
            if values and name in values:
                vmap = values[name]
                vkey = value if isinstance(value, str) else str(value)
                if vkey in vmap:
                    value = vmap[vkey]
                    if value is None or value == "":  # TOML has no null: "" drops too
                        continue
            conv = convs.get(name)
            if conv is not None:
                if key == name:
                    kw[name] = conv(value)
                elif aliased is None:
                    aliased = {name: value}
                else:
                    aliased.setdefault(name, value)
            elif name == "ts":
                if raw_ts is None or key == name:
                    raw_ts = value
            elif name == "kind":
                if raw_kind is None or key == name:
                    raw_kind = value
            elif name == "event_id":
                event_id = value if isinstance(value, str) else str(value)
            elif key == "ts_ns":
                ts_ns = value
            else:
                if attrs is None:
                    attrs = {}
                attrs[key] = value
        if aliased is not None:
            # read after the loop, so the canonical name given by the source wins over an
            # alias (or rename) wherever it is in the record, even if the alias is invalid
            for name, value in aliased.items():
                if name not in kw:
                    kw[name] = convs[name](value)
        if self._static:
            for key, value in self._static.items():
                name = renames.get(key, key)
                if name == "kind":
                    raw_kind = raw_kind if raw_kind is not None else value
                elif name in convs:
                    if name not in kw:
                        kw[name] = convs[name](value)
                elif attrs is None or key not in attrs:
                    attrs = attrs if attrs is not None else {}
                    attrs[key] = value

        kind = self._fixed_kind
        if kind is None:
            if raw_kind is None:
                raise _Invalid(RejectReason.MISSING_FIELD, "kind is required", "kind")
            kind = (_KINDS.get(raw_kind) if type(raw_kind) is str else None) or _KINDS.get(
                str(raw_kind).strip().lower()
            )
            if kind is None:
                raise _Invalid(
                    RejectReason.UNKNOWN_KIND, f"unknown event kind {raw_kind!r}", "kind"
                )
        if ts_ns is None:
            if raw_ts is None:
                raise _Invalid(RejectReason.MISSING_FIELD, "ts is required", "ts")
            try:
                ts_ns = self._parse_time(raw_ts, self._day_ns)
            except (ValueError, OverflowError) as exc:
                raise _Invalid(RejectReason.INVALID_TIMESTAMP, str(exc), "ts") from None
        elif type(ts_ns) is not int:
            raise _Invalid(
                RejectReason.INVALID_TIMESTAMP,
                f"ts_ns must be integer nanoseconds since the epoch; was {ts_ns!r}",
                "ts",
            )
        if not TS_MIN <= ts_ns <= TS_MAX:
            raise _Invalid(
                RejectReason.INVALID_TIMESTAMP,
                f"ts {raw_ts if raw_ts is not None else ts_ns!r} is outside the range of "
                "int64 nanoseconds (1677-09-21 to 2262-04-11)",
                "ts",
            )

        for name in REQUIRED[kind]:
            if name not in kw:
                raise _Invalid(RejectReason.MISSING_FIELD, f"{kind} requires {name}", name)
        if kind is EventKind.QUOTE:
            bid, ask = kw.get("bid"), kw.get("ask")
            if bid is None and ask is None:
                raise _Invalid(RejectReason.MISSING_FIELD, "quote requires bid or ask", "bid")
            if bid is not None and ask is not None and bid > ask:
                raise _Invalid(
                    RejectReason.INVALID_PRICE, f"crossed quote: bid {bid} > ask {ask}", "bid"
                )
        elif kind is EventKind.ORDER_NEW and "price" not in kw:
            order_type = str(kw.get("order_type") or "").lower()
            if order_type not in ("market", "mkt", "1"):
                raise _Invalid(
                    RejectReason.MISSING_FIELD, "order_new requires price unless market", "price"
                )
        allowed = _ALLOWED[kind]
        if not kw.keys() <= allowed:
            for name in [n for n in kw if n not in allowed]:
                if attrs is None:
                    attrs = {}
                attrs[name] = kw.pop(name)
        if event_id is None:
            event_id = derived_event_id(self.source, stream, rec.start, rec.raw)
        return Event(
            event_id=event_id,
            kind=kind,
            ts=ts_ns,
            ts_ingest=ts_ingest,
            source=self.source,
            src_ref=src_ref,
            src_offset=rec.start,
            raw=rec.raw,
            attrs=attrs,
            **kw,
        )

    # ---- value readers ---------------------------------------------------
    def _converters(self) -> dict[str, Callable[[Any], Any]]:
        """canonical field name → reader that returns the typed value or raises _Invalid.

        Also fills ``read_rules``: the rule of each plain number or text reader (what
        ``FastRegex`` checks inline for string values); the others are not listed."""
        convs: dict[str, Callable[[Any], Any]] = {}
        rules: dict[str, str] = {}
        allow_nonpositive = self._allow_nonpositive
        for name in _POSITIVE:
            convs[name] = _number_reader(name, "positive")
            rules[name] = "positive"
        for name in _NON_NEGATIVE:
            convs[name] = _number_reader(name, "non_negative")
            rules[name] = "non_negative"
        for name in _PRICES:
            rules[name] = "any" if allow_nonpositive else "price"
            convs[name] = _number_reader(name, rules[name])
        for name in _SIGNED:
            convs[name] = _number_reader(name, "any")
            rules[name] = "any"
        for name in _STRING_FIELDS:
            convs[name] = _string_reader(name)
            rules[name] = "string"
        convs["side"] = _enum_reader("side", _with_upper(_SIDES))
        convs["liquidity"] = _enum_reader("liquidity", _with_upper(_LIQUIDITY))
        convs["symbol"] = _mapped_reader("symbol", self._symbols, self._symbol_case)
        convs["venue"] = _mapped_reader("venue", self._venues, self._venue_case)
        for name in ("side", "liquidity", "symbol", "venue"):
            rules.pop(name, None)
        self.read_rules = rules
        return convs


def _number_reader(name: str, rule: str) -> Callable[[Any], float]:
    """Strict number reader: numbers and numeric strings; never bools, NaN or infinity."""
    reason = RejectReason.INVALID_PRICE if rule == "price" else RejectReason.INVALID_QUANTITY
    isfinite = math.isfinite

    def read(value: Any) -> float:
        t = type(value)
        if t is float or t is int:
            try:
                number = float(value)
            except OverflowError:  # an integer beyond float64 (JSON allows 400 digits)
                raise _Invalid(
                    RejectReason.INVALID_NUMBER, f"{name} is out of range; was {value!r}", name
                ) from None
        elif t is str:
            try:
                if not value.isascii() or "_" in value:
                    raise ValueError(value)  # float() would read "5_000" and other digits
                number = float(value)
            except ValueError:
                raise _Invalid(
                    RejectReason.INVALID_NUMBER, f"{name} must be a number; was {value!r}", name
                ) from None
        else:
            raise _Invalid(
                RejectReason.INVALID_NUMBER, f"{name} must be a number; was {value!r}", name
            )
        if not isfinite(number):
            raise _Invalid(
                RejectReason.INVALID_NUMBER, f"{name} must be finite; was {value!r}", name
            )
        if rule == "any":
            return number
        if rule == "non_negative":
            if number < 0:
                raise _Invalid(reason, f"{name} must be >= 0; was {value!r}", name)
        elif number <= 0:
            raise _Invalid(reason, f"{name} must be > 0; was {value!r}", name)
        return number

    return read


def _string_reader(name: str) -> Callable[[Any], str]:
    def read(value: Any) -> str:
        t = type(value)
        if t is str:
            text: str = value.strip()
            if not text:
                raise _Invalid(RejectReason.MISSING_FIELD, f"{name} is empty", name)
            return text
        if t is int or t is float:
            return str(value)
        raise _Invalid(RejectReason.INVALID_VALUE, f"{name} must be a string; was {value!r}", name)

    return read


def _enum_reader(name: str, table: dict[str, Any]) -> Callable[[Any], Any]:
    def read(value: Any) -> Any:
        found = table.get(value) if type(value) is str else None
        if found is None:
            found = table.get(str(value).strip().lower())
            if found is None:
                raise _Invalid(RejectReason.INVALID_VALUE, f"unknown {name} {value!r}", name)
        return found

    return read


def _mapped_reader(
    name: str, names: dict[str, str], case: Callable[[str], str]
) -> Callable[[Any], str]:
    as_string = _string_reader(name)

    def read(value: Any) -> str:
        text = as_string(value)
        return case(names.get(text, text))

    return read


def _with_upper(table: dict[str, Any]) -> dict[str, Any]:
    """The table plus upper-case and capitalised keys (common spellings, found without
    a ``lower()`` per event)."""
    out = dict(table)
    for key, value in table.items():
        out.setdefault(key.upper(), value)
        out.setdefault(key.capitalize(), value)
    return out
