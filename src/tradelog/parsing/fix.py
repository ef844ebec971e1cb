"""FIX 4.2/4.4 tag=value messages, one per line → order, fill and quote records.

Accepts the message logs of QuickFIX C++ (``20240115-14:30:01.123 : 8=FIX…``), QuickFIX/J
(``20240115-14:30:01.123: 8=FIX…`` or no prefix) and quickfixgo
(``2016/08/27 08:41:27.251195 8=FIX…``), with SOH, ``|`` or ``^A`` between fields (detected
per line). Text before ``8=FIX`` that is none of these prefixes is ignored. BodyLength(9)
and CheckSum(10) are verified on the message with SOH separators, so a damaged line
becomes a reject instead of a wrong event.

Event time is TransactTime(60), else SendingTime(52), else the log prefix time (UTC).
Session messages are skipped; pending and status execution reports are skipped; trade
busts and corrections (ExecType G/H, FIX 4.2 ExecTransType 1/2) are rejected as
``unsupported_message`` because the event model has no kind for them.

Orders: the parser reports ClOrdID(11) as ``order_id`` and OrigClOrdID(41) as
``orig_order_id`` and does not resolve cancel/replace chains; the enrich stage links them
to one order. ExecutionReports with an ExecID get ``event_id = fix:<49>:<56>:<17>`` so a
PossDup resend of an execution is dropped as a duplicate. Numbers stay strings for the
cleaner to read, except FIX's zero placeholders (AvgPx before any fill, LastPx/LastQty on
FIX 4.2 non-fill reports, Price echoed on market orders), which are left out rather than
reported as a zero price or quantity. Liquidity comes from LastLiquidityInd(851), else
AggressorIndicator(1057: Y taker, N maker).

Market data: W (snapshot) and X (incremental) keep a per-symbol book in the parser (one
instance per stream) and emit the top of book as a ``quote``. Because that book lives in
memory, increments read after a restart are applied to an empty book until the next W. An
X whose bid/offer entries span several symbols updates every book but is rejected as
``unsupported_message``: one record carries one quote. A book left without bids or offers
is skipped (``fix_md_empty_book``): a quote needs a bid or an ask.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

import msgspec

from tradelog.model.events import EventKind, RejectReason
from tradelog.model.timefmt import NS_PER_S, parse_fix_time
from tradelog.parsing.base import DEFAULT_MAX_RECORD_BYTES, Failure, Item, LineParser, Record, Skip

SOH: Final = "\x01"
_BEGIN: Final = "8=FIX"

_SESSION_TYPES: Final = frozenset({"0", "1", "2", "3", "4", "5", "A"})
_ORDER_TYPES: Final[dict[str, EventKind]] = {
    "D": EventKind.ORDER_NEW,
    "F": EventKind.ORDER_CANCEL_REQUEST,
    "G": EventKind.ORDER_REPLACE,
    "9": EventKind.ORDER_CANCEL_REJECTED,
}
_EXEC_KINDS: Final[dict[str, EventKind]] = {
    "0": EventKind.ORDER_ACK,
    "1": EventKind.FILL,  # FIX 4.2 PartialFill
    "2": EventKind.FILL,  # FIX 4.2 Fill
    "F": EventKind.FILL,
    "3": EventKind.ORDER_EXPIRED,  # DoneForDay
    "4": EventKind.ORDER_CANCELLED,
    "5": EventKind.ORDER_REPLACE,
    "8": EventKind.ORDER_REJECTED,
    "C": EventKind.ORDER_EXPIRED,
}
_EXEC_SKIPS: Final[dict[str, str]] = {
    "A": "fix_status_pending_new",
    "6": "fix_status_pending_cancel",
    "E": "fix_status_pending_replace",
    "I": "fix_status_order_status",
    "D": "fix_status_restated",
}
_EXEC_TYPE_NAMES: Final[dict[str, str]] = {
    "7": "Stopped",
    "9": "Suspended",
    "B": "Calculated",
    "G": "TradeCorrect",
    "H": "TradeCancel",
    "J": "TradeInAClearingHold",
    "K": "TradeReleasedToClearing",
    "L": "TriggeredOrActivatedBySystem",
}
_EXEC_TRANS_NAMES: Final[dict[str, str]] = {"1": "Cancel", "2": "Correct"}
_REASON_KINDS: Final = frozenset(
    {
        EventKind.ORDER_REJECTED,
        EventKind.ORDER_CANCEL_REJECTED,
        EventKind.ORDER_CANCELLED,
        EventKind.ORDER_EXPIRED,
    }
)

# tag → canonical field, copied as the source wrote it (the cleaner reads numbers)
_PLAIN_TAGS: Final[tuple[tuple[str, str], ...]] = (
    ("11", "order_id"),
    ("41", "orig_order_id"),
    ("37", "venue_order_id"),
    ("55", "symbol"),
    ("38", "qty"),
    ("1", "account_id"),
    ("17", "exec_id"),
    ("14", "cum_qty"),
    ("151", "leaves_qty"),
)
# tag → extra field (lands in attrs)
_EXTRA_TAGS: Final[tuple[tuple[str, str], ...]] = (
    ("35", "fix_msg_type"),
    ("49", "fix_sender"),
    ("56", "fix_target"),
    ("150", "exec_type"),
    ("39", "ord_status"),
    ("58", "text"),
    ("99", "stop_px"),
    ("102", "cxl_rej_reason"),
    ("103", "ord_rej_reason"),
    ("434", "cxl_rej_response_to"),
)
_SIDES: Final[dict[str, str]] = {"1": "buy", "2": "sell", "5": "sell", "6": "sell"}
_ORD_TYPES: Final[dict[str, str]] = {"1": "market", "2": "limit", "3": "stop", "4": "stop_limit"}
_TIFS: Final[dict[str, str]] = {
    "0": "day",
    "1": "gtc",
    "2": "opg",
    "3": "ioc",
    "4": "fok",
    "6": "gtd",
    "7": "cls",
}
_LIQUIDITY: Final[dict[str, str]] = {"1": "maker", "2": "taker"}
_AGGRESSOR: Final[dict[str, str]] = {"Y": "taker", "N": "maker"}
_ORD_REJ_REASONS: Final[dict[str, str]] = {
    "0": "broker / exchange option",
    "1": "unknown symbol",
    "2": "exchange closed",
    "3": "order exceeds limit",
    "4": "too late to enter",
    "5": "unknown order",
    "6": "duplicate order",
    "7": "duplicate of a verbally communicated order",
    "8": "stale order",
    "9": "trade along required",
    "10": "invalid investor id",
    "11": "unsupported order characteristic",
    "12": "surveillance option",
    "13": "incorrect quantity",
    "14": "incorrect allocated quantity",
    "15": "unknown account(s)",
    "18": "invalid price increment",
    "99": "other",
}
_CXL_REJ_REASONS: Final[dict[str, str]] = {
    "0": "too late to cancel",
    "1": "unknown order",
    "2": "broker / exchange option",
    "3": "order already in pending cancel or pending replace status",
    "4": "unable to process order mass cancel request",
    "5": "OrigOrdModTime did not match last TransactTime of order",
    "6": "duplicate ClOrdID received",
    "99": "other",
}
# length tag → the data tag whose value has that many bytes (and may contain SOH)
_DATA_TAGS: Final[dict[str, str]] = {
    "90": "91",
    "93": "89",
    "95": "96",
    "212": "213",
    "348": "349",
    "350": "351",
    "352": "353",
    "354": "355",
    "356": "357",
    "358": "359",
    "360": "361",
    "362": "363",
    "364": "365",
    "445": "446",
    "618": "619",
    "621": "622",
}
_QUICKFIX_PREFIX: Final = re.compile(r"[0-9]{8}-[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?")
_GO_PREFIX: Final = re.compile(
    r"([0-9]{4})/([0-9]{2})/([0-9]{2}) ([0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?)"
)
_MD_ACTIONS: Final = frozenset({"0", "1", "2", "5"})  # new, change, delete, overlay
_FRACTION_SCALE: Final = tuple(10 ** (9 - n) for n in range(10))
_TIME_CACHE_SIZE: Final = 4096


class FixSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How one FIX source is read (part of a source's config)."""

    validate_checksum: bool = True
    """Reject messages whose CheckSum(10) does not match their bytes."""
    validate_body_length: bool = True
    """Reject messages whose BodyLength(9) does not match their bytes."""
    venue: str | None = None
    """Venue of the session, used when a message has no LastMkt(30)."""


class _Invalid(Exception):
    """Internal: the message cannot become a record (becomes a Failure)."""

    def __init__(self, reason: RejectReason, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.field = field


class _Book:
    """One symbol's bid and offer levels, keyed by MDEntryID when given, else by price."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids: dict[str | float, tuple[float, float | None]] = {}
        self.asks: dict[str | float, tuple[float, float | None]] = {}


class _Entry(msgspec.Struct, gc=False):
    """One validated bid/offer entry of a market-data message."""

    symbol: str
    bid: bool
    action: str
    key: str | float
    price: float | None
    size: float | None


def _small_int(text: str) -> int | None:
    """A non-negative integer of at most 9 ASCII digits, else None (never raises)."""
    if 0 < len(text) <= 9 and text.isascii() and text.isdigit():
        return int(text)
    return None


def _is_zero(text: str) -> bool:
    """Whether a FIX number is zero, which FIX uses for "not applicable" in some fields."""
    try:
        return float(text) == 0.0
    except ValueError:
        return False


def _number(text: str | None, what: str) -> float | None:
    """A finite float read from a market-data field, None when absent."""
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise _Invalid(
            RejectReason.INVALID_NUMBER, f"{what} must be a number; was {text!r}"
        ) from None
    if not math.isfinite(value):
        raise _Invalid(RejectReason.INVALID_NUMBER, f"{what} must be finite; was {text!r}")
    return value


def _prefix_time(prefix: str) -> tuple[int | None, str | None]:
    """UTC ns of a QuickFIX C++/J or quickfixgo log prefix, and why it failed if it did.

    An unrecognised prefix gives ``(None, None)``: it carries no time we can trust.
    """
    text = prefix.strip()
    if text.endswith(":"):
        text = text[:-1].rstrip()  # QuickFIX C++ " : ", QuickFIX/J ": "
    if _QUICKFIX_PREFIX.fullmatch(text) is not None:
        try:
            return parse_fix_time(text), None
        except (ValueError, OverflowError) as exc:
            return None, f"log timestamp: {exc}"
    m = _GO_PREFIX.fullmatch(text)
    if m is not None:
        y, mo, d, clock = m.groups()
        try:
            return parse_fix_time(f"{y}{mo}{d}-{clock}"), None
        except (ValueError, OverflowError) as exc:
            return None, f"log timestamp: {exc}"
    return None, None


def _separator(msg: str) -> str | None:
    """The field separator of a message: SOH if present, else the first of ``|``/``^A``."""
    if SOH in msg:
        return SOH
    bar = msg.find("|")
    if bar < 0:
        return "^A" if "^A" in msg else None
    return "^A" if "^A" in msg[:bar] else "|"


def _check_body_length(data: bytes, trailer: int) -> None:
    """BodyLength(9) must be the second field and count the bytes up to ``10=``."""
    first = data.find(b"\x01")
    if not data.startswith(b"9=", first + 1):
        raise _Invalid(RejectReason.BAD_BODY_LENGTH, "BodyLength(9) is not the second field")
    second = data.find(b"\x01", first + 1)
    if second < 0:
        second = len(data)
    declared = data[first + 3 : second]
    body_end = trailer + 1 if trailer >= 0 else len(data)
    found = max(0, body_end - (second + 1))
    if not (0 < len(declared) <= 9 and declared.isdigit()) or int(declared) != found:
        shown = declared.decode("ascii", "backslashreplace")
        raise _Invalid(
            RejectReason.BAD_BODY_LENGTH,
            f"BodyLength(9) mismatch: expected {found} (bytes counted), found {shown!r}",
        )


def _check_checksum(data: bytes, trailer: int) -> None:
    """CheckSum(10) must be the sum of the bytes before ``10=`` mod 256."""
    if trailer < 0:
        raise _Invalid(RejectReason.BAD_CHECKSUM, "no CheckSum(10) field")
    value_end = data.find(b"\x01", trailer + 4)
    if value_end < 0:
        value_end = len(data)
    elif value_end + 1 < len(data):
        raise _Invalid(RejectReason.MALFORMED, "fields after CheckSum(10)")
    declared = data[trailer + 4 : value_end]
    expected = sum(data[: trailer + 1]) % 256
    if not (0 < len(declared) <= 3 and declared.isdigit()) or int(declared) != expected:
        shown = declared.decode("ascii", "backslashreplace")
        raise _Invalid(
            RejectReason.BAD_CHECKSUM,
            f"CheckSum(10) mismatch: expected {expected:03d} (computed), found {shown!r}",
        )


def _split_with_data(data: bytes) -> list[tuple[str, str]]:
    """Fields of a message that has raw-data fields, whose values may contain SOH."""
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(data)
    data_tag: str | None = None
    data_len = 0
    while i < n:
        eq = data.find(b"=", i)
        raw_tag = data[i:eq] if eq >= 0 else b""
        if not raw_tag.isdigit():
            raise _Invalid(RejectReason.MALFORMED, f"no numeric tag=value at byte {i}")
        tag = raw_tag.decode("ascii")
        if tag == data_tag:
            j = eq + 1 + data_len
            if j > n or (j < n and data[j] != 1):
                raise _Invalid(RejectReason.MALFORMED, f"data field {tag} has the wrong length")
        else:
            j = data.find(b"\x01", eq + 1)
            if j < 0:
                j = n
        value = data[eq + 1 : j].decode("utf-8", "replace")
        data_tag = None
        if tag in _DATA_TAGS:
            length = _small_int(value)
            if length is None:
                raise _Invalid(RejectReason.MALFORMED, f"length field {tag} is not a count")
            data_tag, data_len = _DATA_TAGS[tag], length
        pairs.append((tag, value))
        i = j + 1
    return pairs


def _fast_tags(msg: str) -> dict[str, str] | None:
    """Tag → value of a well-formed message without raw-data fields (a repeated tag keeps
    its last value), or None when the message needs the careful ``_pairs`` split."""
    parts = msg.split(SOH)
    if parts[-1] == "":
        parts.pop()
    try:
        tags: dict[str, str] = dict(part.split("=", 1) for part in parts)
    except ValueError:  # a field without '='
        return None
    joined = "".join(tags)
    if not (joined.isdigit() and joined.isascii()) or "" in tags:
        return None
    if not _DATA_TAGS.keys().isdisjoint(tags):
        return None
    return tags


def _pairs(msg: str, data: bytes) -> list[tuple[str, str]]:
    """Fields of a message with SOH separators, in order, or a MALFORMED _Invalid."""
    parts = msg.split(SOH)
    if parts[-1] == "":
        parts.pop()
    pairs: list[tuple[str, str]] = []
    bad: str | None = None
    for part in parts:
        tag, eq, value = part.partition("=")
        if not eq or not tag.isdigit() or not tag.isascii():
            bad = part
            break
        pairs.append((tag, value))
    if not _DATA_TAGS.keys().isdisjoint(tag for tag, _ in pairs):
        return _split_with_data(data)
    if bad is not None:
        shown = bad if len(bad) <= 40 else bad[:40] + "…"
        what = "empty field" if bad == "" else f"field {shown!r} is not tag=value"
        raise _Invalid(RejectReason.MALFORMED, f"{what} (tags must be digits)")
    return pairs


def _best(
    side: dict[str | float, tuple[float, float | None]], bid: bool
) -> tuple[float, float | None]:
    """Best price of one side and the total size at it (None when no level has a size)."""
    prices = [price for price, _ in side.values()]
    best = max(prices) if bid else min(prices)
    total: float | None = None
    for price, size in side.values():
        if price == best and size is not None:
            total = size if total is None else total + size
    return best, total


class FixParser(LineParser):
    """One FIX message per line → Record / Failure / Skip; keeps market-data books per symbol.

    >>> unchecked = FixSettings(validate_checksum=False, validate_body_length=False)
    >>> FixParser(unchecked).parse_line("8=FIX.4.4|35=0|", 0, 16)
    Skip(why='fix_session', start=0, end=16)
    """

    def __init__(
        self,
        settings: FixSettings | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        super().__init__(max_record_bytes)
        self.settings = settings or FixSettings()
        self._books: dict[str, _Book] = {}
        self._seconds: dict[str, int] = {}

    def parse_line(self, text: str, start: int, end: int) -> Item:
        """One line → one item; unreadable input becomes a Failure, never an exception."""
        try:
            return self._parse(text, start, end)
        except _Invalid as bad:
            return Failure(bad.reason, bad.detail, text, start, end, bad.field)

    # ------------------------------------------------------------------
    def _parse(self, text: str, start: int, end: int) -> Item:
        at = text.find(_BEGIN)
        if at < 0:
            raise _Invalid(RejectReason.MALFORMED, "no FIX message ('8=FIX') in line")
        prefix = text[:at]
        msg = text[at:].rstrip()
        sep = _separator(msg)
        if sep is None:
            raise _Invalid(RejectReason.MALFORMED, "no field separator (SOH, '|' or '^A')")
        if sep != SOH:
            msg = msg.replace(sep, SOH)
        data = msg.encode("utf-8", "surrogatepass")
        settings = self.settings
        if settings.validate_body_length or settings.validate_checksum:
            trailer = data.rfind(b"\x0110=")
            if settings.validate_body_length:
                _check_body_length(data, trailer)
            if settings.validate_checksum:
                _check_checksum(data, trailer)
        pairs: list[tuple[str, str]] | None = None
        tags = _fast_tags(msg)
        if tags is None:
            pairs = _pairs(msg, data)
            tags = dict(pairs)
        msg_type = tags.get("35")
        if not msg_type:
            raise _Invalid(RejectReason.MALFORMED, "no MsgType(35)")
        if msg_type in _SESSION_TYPES:
            return Skip("fix_session", start, end)

        if msg_type == "8":
            kind_or_skip = self._exec_kind(tags)
            if not isinstance(kind_or_skip, EventKind):
                return Skip(kind_or_skip, start, end)
            kind = kind_or_skip
        elif msg_type in ("W", "X"):
            if pairs is None:
                pairs = _pairs(msg, data)
            return self._quote(msg_type, pairs, tags, text, start, end, prefix)
        else:
            found = _ORDER_TYPES.get(msg_type)
            if found is None:
                raise _Invalid(
                    RejectReason.UNSUPPORTED_MESSAGE, f"MsgType(35)={msg_type} is not supported"
                )
            kind = found

        fields: dict[str, Any] = {
            "kind": kind.value,
            "ts_ns": self._time(tags, prefix),
        }
        self._order_fields(kind, tags, fields)
        return Record(fields, text, start, end)

    @staticmethod
    def _exec_kind(tags: dict[str, str]) -> EventKind | str:
        """Kind of an ExecutionReport, or the ``why`` of a Skip for status reports."""
        trans = tags.get("20")
        if trans in _EXEC_TRANS_NAMES:
            raise _Invalid(
                RejectReason.UNSUPPORTED_MESSAGE,
                f"ExecutionReport ExecTransType(20)={trans} ({_EXEC_TRANS_NAMES[trans]}) "
                "is not supported",
            )
        if trans == "3":
            return "fix_status_exec_trans_status"
        exec_type = tags.get("150")
        if not exec_type:
            raise _Invalid(
                RejectReason.MISSING_FIELD, "ExecutionReport without ExecType(150)", "exec_type"
            )
        kind = _EXEC_KINDS.get(exec_type)
        if kind is not None:
            return kind
        skip = _EXEC_SKIPS.get(exec_type)
        if skip is not None:
            return skip
        name = _EXEC_TYPE_NAMES.get(exec_type, "unknown")
        raise _Invalid(
            RejectReason.UNSUPPORTED_MESSAGE,
            f"ExecutionReport ExecType(150)={exec_type} ({name}) is not supported",
        )

    def _time(self, tags: dict[str, str], prefix: str) -> int:
        """TransactTime(60), else SendingTime(52), else the log prefix time, in UTC ns."""
        for tag, name in (("60", "TransactTime(60)"), ("52", "SendingTime(52)")):
            raw = tags.get(tag)
            if raw:
                try:
                    return self._fix_time(raw)
                except (ValueError, OverflowError) as exc:
                    raise _Invalid(RejectReason.INVALID_TIMESTAMP, f"{name}: {exc}", "ts") from None
        prefix_ns, prefix_error = _prefix_time(prefix) if prefix else (None, None)
        if prefix_ns is not None:
            return prefix_ns
        raise _Invalid(
            RejectReason.INVALID_TIMESTAMP,
            prefix_error or "no TransactTime, SendingTime or log timestamp",
            "ts",
        )

    def _fix_time(self, text: str) -> int:
        """``parse_fix_time`` with a cache of whole seconds: messages share seconds, so most
        times cost a dict lookup and the fraction."""
        rest = text[17:]
        if rest == "":
            frac_ns = 0
        elif rest[0] == "." and 1 < len(rest) <= 10 and rest.isascii() and rest[1:].isdigit():
            frac_ns = int(rest[1:]) * _FRACTION_SCALE[len(rest) - 1]
        else:
            return parse_fix_time(text)
        key = text[:17]
        seconds = self._seconds.get(key)
        if seconds is None:
            if len(self._seconds) >= _TIME_CACHE_SIZE:
                self._seconds.clear()
            seconds = self._seconds[key] = parse_fix_time(key) // NS_PER_S
        return seconds * NS_PER_S + frac_ns

    def _common(self, tags: dict[str, str], fields: dict[str, Any]) -> None:
        """Venue and the header extras every record carries."""
        venue = tags.get("30") or self.settings.venue
        if venue:
            fields["venue"] = venue
        for tag, name in _EXTRA_TAGS:
            value = tags.get(tag)
            if value:
                fields[name] = value
        seq = tags.get("34")
        if seq:
            number = _small_int(seq)
            fields["fix_seq"] = seq if number is None else number
        if tags.get("43") == "Y":
            fields["poss_dup"] = True

    def _order_fields(self, kind: EventKind, tags: dict[str, str], fields: dict[str, Any]) -> None:
        """Canonical fields of an order message or ExecutionReport, plus FIX extras."""
        get = tags.get
        for tag, name in _PLAIN_TAGS:
            value = get(tag)
            if value:
                fields[name] = value
        # FIX fills "not applicable" numbers with 0: AvgPx before any fill, LastPx and
        # LastQty on FIX 4.2 non-fill reports, Price echoed on market orders. They are left
        # out rather than passed on as a zero price or quantity.
        if kind is EventKind.FILL:
            for tag, name in (("31", "last_px"), ("32", "last_qty")):
                value = get(tag)
                if value:
                    fields[name] = value
        avg_px = get("6")
        if avg_px and not _is_zero(avg_px):
            fields["avg_px"] = avg_px
        ord_type = get("40")
        price = get("44")
        if price and not (ord_type == "1" and _is_zero(price)):
            fields["price"] = price
        if ord_type:
            fields["order_type"] = _ORD_TYPES.get(ord_type, ord_type)
        side = get("54")
        if side:
            fields["side"] = _SIDES.get(side, side)
        tif = get("59")
        if tif:
            fields["tif"] = _TIFS.get(tif, tif)
        liquidity = get("851")
        if liquidity:
            mapped = _LIQUIDITY.get(liquidity)
            if mapped is None:
                fields["last_liquidity_ind"] = liquidity
            else:
                fields["liquidity"] = mapped
        else:
            aggressor = _AGGRESSOR.get(get("1057") or "")
            if aggressor is not None:
                fields["liquidity"] = aggressor
        commission = get("12")
        if commission:
            comm_type = get("13")
            if comm_type is None or comm_type == "3":
                fields["fee"] = commission
                currency = get("479")
                if currency:
                    fields["fee_currency"] = currency
            else:
                fields["commission"] = commission
                fields["comm_type"] = comm_type
        self._common(tags, fields)
        if kind in _REASON_KINDS:
            reason = get("58")
            if not reason:
                if kind is EventKind.ORDER_REJECTED:
                    reason = self._coded(get("103"), "OrdRejReason(103)", _ORD_REJ_REASONS)
                elif kind is EventKind.ORDER_CANCEL_REJECTED:
                    reason = self._coded(get("102"), "CxlRejReason(102)", _CXL_REJ_REASONS)
            if reason:
                fields["reason"] = reason
        if tags.get("35") == "8":
            exec_id = get("17")
            if exec_id:
                fields["event_id"] = f"fix:{get('49', '')}:{get('56', '')}:{exec_id}"

    @staticmethod
    def _coded(code: str | None, name: str, table: dict[str, str]) -> str | None:
        """A reject reason from its FIX code: ``unknown symbol (OrdRejReason(103)=1)``."""
        if not code:
            return None
        meaning = table.get(code)
        return f"{meaning} ({name}={code})" if meaning else f"{name}={code}"

    # ---- market data -------------------------------------------------------
    def _quote(
        self,
        msg_type: str,
        pairs: list[tuple[str, str]],
        tags: dict[str, str],
        text: str,
        start: int,
        end: int,
        prefix: str,
    ) -> Item:
        """Applies a W or X to the books and emits the symbol's top of book."""
        snapshot = msg_type == "W"
        entries = self._md_entries(pairs, snapshot)
        symbols = list(dict.fromkeys(e.symbol for e in entries))
        if snapshot:
            if len(symbols) > 1:
                raise _Invalid(
                    RejectReason.UNSUPPORTED_MESSAGE,
                    f"snapshot spanning several symbols ({', '.join(symbols[:5])})",
                )
            symbol = symbols[0] if symbols else next((v for t, v in pairs if t == "55"), "")
            if not symbol:
                raise _Invalid(RejectReason.MISSING_FIELD, "snapshot without Symbol(55)", "symbol")
            self._books[symbol] = _Book()
        elif not symbols:
            return Skip("fix_md_no_book_entries", start, end)
        for entry in entries:
            self._apply(entry)
        if not snapshot:
            if len(symbols) > 1:
                raise _Invalid(
                    RejectReason.UNSUPPORTED_MESSAGE,
                    f"incremental refresh spanning several symbols ({', '.join(symbols[:5])}); "
                    "the books were updated but one record carries one quote",
                )
            symbol = symbols[0]
        book = self._books.get(symbol)
        if book is None or (not book.bids and not book.asks):
            return Skip("fix_md_empty_book", start, end)
        fields: dict[str, Any] = {
            "kind": EventKind.QUOTE.value,
            "ts_ns": self._time(tags, prefix),
            "symbol": symbol,
        }
        if book.bids:
            fields["bid"], size = _best(book.bids, bid=True)
            if size is not None:
                fields["bid_size"] = size
        if book.asks:
            fields["ask"], size = _best(book.asks, bid=False)
            if size is not None:
                fields["ask_size"] = size
        self._common(tags, fields)
        return Record(fields, text, start, end)

    @staticmethod
    def _md_entries(pairs: list[tuple[str, str]], snapshot: bool) -> list[_Entry]:
        """The bid/offer entries of the NoMDEntries(268) group, validated before any is
        applied (other entry types, e.g. trades, are ignored)."""
        at = next((i for i, (tag, _) in enumerate(pairs) if tag == "268"), -1)
        if at < 0:
            raise _Invalid(RejectReason.MALFORMED, "market data without NoMDEntries(268)")
        declared = _small_int(pairs[at][1])
        if declared is None:
            raise _Invalid(RejectReason.MALFORMED, "NoMDEntries(268) is not a count")
        body_symbol = next((v for t, v in pairs[:at] if t == "55"), "")
        groups: list[dict[str, str]] = []
        if declared:
            delimiter = ""
            for tag, value in pairs[at + 1 :]:
                if tag == "10":
                    break
                if not delimiter:
                    delimiter = tag
                if tag == delimiter:
                    groups.append({})
                groups[-1][tag] = value
        if len(groups) != declared:
            raise _Invalid(
                RejectReason.MALFORMED,
                f"NoMDEntries(268)={declared} but the message has {len(groups)} entries",
            )
        entries: list[_Entry] = []
        symbol = body_symbol
        for group in groups:
            symbol = group.get("55") or symbol
            entry_type = group.get("269")
            if entry_type not in ("0", "1"):
                continue
            bid = entry_type == "0"
            what = "bid" if bid else "ask"
            action = "0" if snapshot else group.get("279", "0")
            if action not in _MD_ACTIONS:
                raise _Invalid(
                    RejectReason.UNSUPPORTED_MESSAGE,
                    f"MDUpdateAction(279)={action} is not supported",
                )
            if not symbol:
                raise _Invalid(
                    RejectReason.MISSING_FIELD, "market-data entry without Symbol(55)", "symbol"
                )
            price = _number(group.get("270"), f"{what} MDEntryPx(270)")
            size = _number(group.get("271"), f"{what} MDEntrySize(271)")
            entry_id = group.get("278")
            if price is None and action != "2":
                raise _Invalid(
                    RejectReason.MISSING_FIELD, f"{what} entry without MDEntryPx(270)", what
                )
            key: str | float
            if entry_id:
                key = entry_id
            elif price is not None:
                key = price
            else:
                raise _Invalid(
                    RejectReason.MISSING_FIELD,
                    f"{what} delete without MDEntryPx(270) or MDEntryID(278)",
                    what,
                )
            entries.append(_Entry(symbol, bid, action, key, price, size))
        return entries

    def _apply(self, entry: _Entry) -> None:
        """One validated entry → the symbol's book (new/change/overlay set, delete removes)."""
        book = self._books.get(entry.symbol)
        if book is None:
            book = self._books[entry.symbol] = _Book()
        side = book.bids if entry.bid else book.asks
        if entry.action == "2":
            side.pop(entry.key, None)
            return
        price = entry.price
        size = entry.size
        if entry.action != "0":
            previous = side.get(entry.key)
            if previous is not None and size is None:
                size = previous[1]
        if price is not None:
            side[entry.key] = (price, size)
