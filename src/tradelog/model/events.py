"""The canonical event that flows through the pipeline, and the reject that replaces it
when a record cannot be read.

Times are UTC nanoseconds since the epoch. Prices and quantities are float64. Source
fields are set once by parsing/cleaning; the enrichment fields (after ``seq``) are filled
by the stages and never overwrite what the source said.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

import msgspec


class EventKind(StrEnum):
    ORDER_NEW = "order_new"
    ORDER_ACK = "order_ack"
    ORDER_REPLACE = "order_replace"
    ORDER_CANCEL_REQUEST = "order_cancel_request"
    ORDER_CANCELLED = "order_cancelled"
    ORDER_REJECTED = "order_rejected"
    ORDER_CANCEL_REJECTED = "order_cancel_rejected"
    ORDER_EXPIRED = "order_expired"
    FILL = "fill"
    QUOTE = "quote"
    MARKET_TRADE = "market_trade"
    POSITION = "position"
    SYSTEM = "system"


ORDER_KINDS: Final = frozenset(
    {
        EventKind.ORDER_NEW,
        EventKind.ORDER_ACK,
        EventKind.ORDER_REPLACE,
        EventKind.ORDER_CANCEL_REQUEST,
        EventKind.ORDER_CANCELLED,
        EventKind.ORDER_REJECTED,
        EventKind.ORDER_CANCEL_REJECTED,
        EventKind.ORDER_EXPIRED,
        EventKind.FILL,
    }
)


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class OrderStatus(StrEnum):
    PENDING = "pending"  # submitted, not yet acknowledged
    ACKED = "acked"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


TERMINAL_STATUSES: Final = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class Severity(StrEnum):
    """Anomaly and system severities, ordered by rank."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_RANK: Final[dict[str, int]] = {"low": 1, "medium": 2, "high": 3, "critical": 4}


class RejectReason(StrEnum):
    """Bounded set of reasons a record is quarantined instead of becoming an event."""

    MALFORMED = "malformed"  # the record's syntax cannot be read (bad JSON, no key=value...)
    ENCODING = "encoding"  # bytes are not valid UTF-8
    LINE_TOO_LONG = "line_too_long"
    NO_RULE_MATCHED = "no_rule_matched"
    UNKNOWN_KIND = "unknown_kind"
    MISSING_FIELD = "missing_field"
    INVALID_NUMBER = "invalid_number"
    INVALID_VALUE = "invalid_value"  # an enum-like field with a value we do not know
    INVALID_QUANTITY = "invalid_quantity"  # zero, negative or non-finite where > 0 is required
    INVALID_PRICE = "invalid_price"
    INVALID_TIMESTAMP = "invalid_timestamp"
    BAD_CHECKSUM = "bad_checksum"
    BAD_BODY_LENGTH = "bad_body_length"
    UNSUPPORTED_MESSAGE = "unsupported_message"


class Event(msgspec.Struct, kw_only=True, gc=False):
    """One normalised event. See DESIGN §3 for the meaning of each kind."""

    # identity and provenance
    event_id: str
    kind: EventKind
    ts: int
    ts_ingest: int
    source: str
    src_ref: str = ""
    src_offset: int = 0
    raw: str = ""
    attrs: dict[str, Any] | None = None
    # reference
    symbol: str | None = None
    venue: str | None = None
    account_id: str | None = None
    strategy_id: str | None = None
    # orders
    order_id: str | None = None
    orig_order_id: str | None = None
    venue_order_id: str | None = None
    side: Side | None = None
    qty: float | None = None
    price: float | None = None
    order_type: str | None = None
    tif: str | None = None
    reason: str | None = None
    # fills (market_trade reuses exec_id, price, qty and side = aggressor side)
    exec_id: str | None = None
    last_qty: float | None = None
    last_px: float | None = None
    cum_qty: float | None = None
    leaves_qty: float | None = None
    avg_px: float | None = None
    liquidity: Liquidity | None = None
    fee: float | None = None
    fee_currency: str | None = None
    counterparty_account: str | None = None
    # quotes
    bid: float | None = None
    ask: float | None = None
    bid_size: float | None = None
    ask_size: float | None = None
    # engine-reported position
    position: float | None = None
    realized_pnl: float | None = None
    unrealized_pnl: float | None = None
    # system
    severity: str | None = None
    component: str | None = None
    message: str | None = None
    # ---- enrichment (stages only) ----
    seq: int = 0
    owner_id: str | None = None
    root_order_id: str | None = None
    context_from_order: bool = False
    order_status: OrderStatus | None = None
    latency_ms: float | None = None
    mkt_bid: float | None = None
    mkt_ask: float | None = None
    mkt_ts: int | None = None
    arrival_mid: float | None = None
    arrival_ts: int | None = None
    slippage_bps: float | None = None
    anomaly_severity: Severity | None = None
    anomaly_types: str | None = None
    # position of strategy × account × symbol after a fill (for ``position`` events: ours,
    # beside what the engine reported, for reconciliation)
    pos_after: float | None = None
    avg_cost_after: float | None = None
    realized_after: float | None = None
    """Cumulative gross realised PnL of the key (fees are in ``fees_after``)."""
    fees_after: float | None = None


SOURCE_FIELDS: Final[tuple[str, ...]] = Event.__struct_fields__[
    : Event.__struct_fields__.index("seq")
]
ENRICHMENT_FIELDS: Final[tuple[str, ...]] = Event.__struct_fields__[
    Event.__struct_fields__.index("seq") :
]


class Reject(msgspec.Struct, kw_only=True, gc=False):
    """A record that could not become an event: kept verbatim with a bounded reason."""

    reject_id: str
    source: str
    src_ref: str
    src_offset: int
    reason: RejectReason
    detail: str
    raw: str
    ts_ingest: int
    field: str | None = None


class AnomalyMark(msgspec.Struct, kw_only=True, gc=False):
    """One rule that fired on one event (DESIGN §4 anomaly rules)."""

    event_id: str
    ts: int
    kind: EventKind
    type: str
    severity: Severity
    value: float | None
    threshold: float | None
    symbol: str | None = None
    venue: str | None = None
    strategy_id: str | None = None
    account_id: str | None = None
    order_id: str | None = None
    detail: str | None = None


_REF: Final = ("symbol", "venue", "account_id", "strategy_id")
_ORDER_REF: Final = ("order_id", "orig_order_id", "venue_order_id", "side", "qty", "price")
_ORDER_ENRICH: Final = (
    "root_order_id", "context_from_order", "order_status", "latency_ms", "mkt_bid", "mkt_ask",
    "mkt_ts",
)  # fmt: skip
_ARRIVAL: Final = ("arrival_mid", "arrival_ts")
_POSITION: Final = ("pos_after", "avg_cost_after", "realized_after", "fees_after")

KIND_FIELDS: Final[dict[EventKind, tuple[str, ...]]] = {
    EventKind.ORDER_NEW: (*_REF, *_ORDER_REF, "order_type", "tif", *_ORDER_ENRICH, *_ARRIVAL),
    EventKind.ORDER_ACK: (*_REF, *_ORDER_REF, "order_type", "tif", *_ORDER_ENRICH),
    EventKind.ORDER_REPLACE: (*_REF, *_ORDER_REF, "order_type", "tif", *_ORDER_ENRICH),
    EventKind.ORDER_CANCEL_REQUEST: (*_REF, *_ORDER_REF, "order_type", *_ORDER_ENRICH),
    EventKind.ORDER_CANCELLED: (
        *_REF, *_ORDER_REF, "order_type", "reason", "cum_qty", "leaves_qty", *_ORDER_ENRICH,
    ),
    EventKind.ORDER_REJECTED: (*_REF, *_ORDER_REF, "order_type", "tif", "reason", *_ORDER_ENRICH),
    EventKind.ORDER_CANCEL_REJECTED: (*_REF, *_ORDER_REF, "order_type", "reason", *_ORDER_ENRICH),
    EventKind.ORDER_EXPIRED: (
        *_REF, *_ORDER_REF, "order_type", "tif", "reason", "cum_qty", "leaves_qty", *_ORDER_ENRICH,
    ),
    EventKind.FILL: (
        *_REF, *_ORDER_REF, "order_type", "tif", "exec_id", "last_qty", "last_px", "cum_qty",
        "leaves_qty", "avg_px", "liquidity", "fee", "fee_currency", "counterparty_account",
        *_ORDER_ENRICH, *_ARRIVAL, "slippage_bps", *_POSITION,
    ),
    EventKind.QUOTE: (*_REF, "bid", "ask", "bid_size", "ask_size"),
    EventKind.MARKET_TRADE: (*_REF, "price", "qty", "side", "exec_id"),
    EventKind.POSITION: (*_REF, "position", "realized_pnl", "unrealized_pnl", *_POSITION),
    EventKind.SYSTEM: (*_REF, "severity", "component", "message"),
}  # fmt: skip
"""Source and enrichment fields that can be set on each kind (beyond identity, provenance
and the fields every event has); the cleaner moves other canonical fields into attrs."""

COMMON_FIELDS: Final[tuple[str, ...]] = (
    "event_id", "kind", "ts", "ts_ingest", "source", "src_ref", "src_offset", "raw", "attrs",
    "seq", "owner_id", "anomaly_severity", "anomaly_types",
)  # fmt: skip
