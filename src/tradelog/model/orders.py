"""The order lifecycle state machine.

    pending ──ack──► acked ──fill──► partially_filled ──fill──► filled
       │               │                  │
       └──────────────►┴──────────────────┴──► cancelled | rejected | expired

``order_replace`` changes qty/price without changing status; ``order_cancel_request`` and
``order_cancel_rejected`` record the request and its refusal. ``apply`` returns an issue
code when the event does not fit the machine (the event is kept and marked, never
dropped): the machine records what the venue said, it does not argue with it.
"""

from __future__ import annotations

from typing import Final

import msgspec

from tradelog.model.events import TERMINAL_STATUSES, Event, EventKind, OrderStatus, Side

QTY_EPSILON: Final = 1e-9

# issue codes returned by OrderState.apply (bounded; used as anomaly mark types)
UNKNOWN_ORDER: Final = "unknown_order"
DUPLICATE_NEW: Final = "duplicate_order_new"
EVENT_AFTER_TERMINAL: Final = "event_after_terminal"
OVERFILL: Final = "overfill"
DUPLICATE_EXEC: Final = "duplicate_exec_id"


def side_sign(side: Side | None) -> int:
    """+1 for buy, -1 for sell, 0 when unknown."""
    if side is Side.BUY:
        return 1
    if side is Side.SELL:
        return -1
    return 0


def latency_ms(start_ns: int | None, end_ns: int) -> float | None:
    """Milliseconds between two event times; negative values are kept (clock skew)."""
    if start_ns is None:
        return None
    return (end_ns - start_ns) / 1e6


class OrderState:
    """Current state of one order (keyed by its root order id)."""

    __slots__ = (
        "account_id",
        "ack_latency_ms",
        "aliases",
        "arrival_mid",
        "arrival_ts",
        "cancel_latency_ms",
        "exec_ids",
        "fees",
        "fill_latency_ms",
        "filled_qty",
        "maker_qty",
        "mid_end",
        "mid_end_ts",
        "n_fills",
        "notional",
        "order_id",
        "order_type",
        "owner_id",
        "pending_replace",
        "price",
        "qty",
        "reject_reason",
        "side",
        "slip_qty",
        "slip_sum",
        "status",
        "strategy_id",
        "symbol",
        "taker_qty",
        "tif",
        "ts_ack",
        "ts_cancel_request",
        "ts_cancelled",
        "ts_first_fill",
        "ts_last",
        "ts_new",
        "venue",
        "venue_order_id",
    )

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        self.aliases: list[str] = []
        self.symbol: str | None = None
        self.venue: str | None = None
        self.side: Side | None = None
        self.qty: float | None = None
        self.price: float | None = None
        self.order_type: str | None = None
        self.tif: str | None = None
        self.account_id: str | None = None
        self.strategy_id: str | None = None
        self.owner_id: str | None = None
        self.venue_order_id: str | None = None
        self.status = OrderStatus.PENDING
        self.ts_new: int | None = None
        self.ts_ack: int | None = None
        self.ts_first_fill: int | None = None
        self.ts_cancel_request: int | None = None
        self.ts_cancelled: int | None = None
        self.ts_last = 0
        self.ack_latency_ms: float | None = None
        self.fill_latency_ms: float | None = None
        self.cancel_latency_ms: float | None = None
        self.filled_qty = 0.0
        self.notional = 0.0
        self.fees = 0.0
        self.n_fills = 0
        self.exec_ids: set[str] | None = None
        self.maker_qty = 0.0
        self.taker_qty = 0.0
        self.arrival_mid: float | None = None
        self.arrival_ts: int | None = None
        # the mid (and its quote's time) of the market context of the order's last event
        # (the latest in event time, then in processing order, that has one): the end
        # benchmark of the unfilled part's opportunity cost
        self.mid_end: float | None = None
        self.mid_end_ts: int | None = None
        self.slip_sum = 0.0  # Σ last_qty × slippage_bps over fills that have one
        self.slip_qty = 0.0
        self.reject_reason: str | None = None
        self.pending_replace: tuple[float | None, float | None] | None = None

    # ---- derived views -------------------------------------------------------
    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def avg_px(self) -> float | None:
        return self.notional / self.filled_qty if self.filled_qty > 0 else None

    @property
    def fill_rate(self) -> float | None:
        if self.qty is None or self.qty <= 0:
            return None
        return self.filled_qty / self.qty

    @property
    def slippage_bps(self) -> float | None:
        """Quantity-weighted arrival slippage over fills (cost-positive bps)."""
        return self.slip_sum / self.slip_qty if self.slip_qty > 0 else None

    # ---- transitions ---------------------------------------------------------
    def absorb_context(self, ev: Event) -> None:
        """Take reference fields the order does not know yet from an event."""
        if self.symbol is None:
            self.symbol = ev.symbol
        if self.venue is None:
            self.venue = ev.venue
        if self.side is None:
            self.side = ev.side
        if self.account_id is None:
            self.account_id = ev.account_id
        if self.strategy_id is None:
            self.strategy_id = ev.strategy_id
        if self.order_type is None:
            self.order_type = ev.order_type
        if self.venue_order_id is None:
            self.venue_order_id = ev.venue_order_id

    def apply(self, ev: Event) -> str | None:
        """Applies one order event; returns an issue code or None. Sets latencies."""
        kind = ev.kind
        ts = ev.ts
        issue: str | None = None
        was_terminal = self.status in TERMINAL_STATUSES
        if ts >= self.ts_last:
            self._note_end_quote(ev, later=ts > self.ts_last)
            self.ts_last = ts
        if kind is EventKind.ORDER_NEW:
            if self.ts_new is not None:
                issue = DUPLICATE_NEW
            else:
                self.ts_new = ts
                self.qty = ev.qty
                self.price = ev.price
                self.tif = ev.tif
                if self.ts_ack is not None and self.ack_latency_ms is None:
                    self.ack_latency_ms = latency_ms(ts, self.ts_ack)
        elif kind is EventKind.ORDER_ACK:
            if self.ts_ack is None:
                self.ts_ack = ts
                self.ack_latency_ms = latency_ms(self.ts_new, ts)
            if self.status is OrderStatus.PENDING:
                self.status = OrderStatus.ACKED
            elif was_terminal:
                issue = EVENT_AFTER_TERMINAL
        elif kind is EventKind.FILL:
            issue = self._apply_fill(ev, was_terminal)
        elif kind is EventKind.ORDER_REPLACE:
            if was_terminal:
                issue = EVENT_AFTER_TERMINAL
            else:
                self.pending_replace = (self.qty, self.price)
                if ev.qty is not None:
                    self.qty = ev.qty
                if ev.price is not None:
                    self.price = ev.price
                if self.qty is not None and self.filled_qty >= self.qty - QTY_EPSILON:
                    self.status = OrderStatus.FILLED
        elif kind is EventKind.ORDER_CANCEL_REQUEST:
            self.ts_cancel_request = ts
            self.pending_replace = None  # a later refusal answers this cancel, not the replace
        elif kind is EventKind.ORDER_CANCEL_REJECTED:
            self.ts_cancel_request = None
            response_to = ev.attrs.get("cxl_rej_response_to") if ev.attrs else None
            if self.pending_replace is not None and str(response_to or "2") == "2":
                self.qty, self.price = self.pending_replace
            self.pending_replace = None
        elif kind is EventKind.ORDER_CANCELLED:
            if was_terminal:
                issue = EVENT_AFTER_TERMINAL
            else:
                self.status = OrderStatus.CANCELLED
                self.ts_cancelled = ts
                if self.ts_cancel_request is not None:
                    self.cancel_latency_ms = latency_ms(self.ts_cancel_request, ts)
        elif kind is EventKind.ORDER_REJECTED:
            if was_terminal:
                issue = EVENT_AFTER_TERMINAL
            else:
                self.status = OrderStatus.REJECTED
                self.reject_reason = ev.reason
        elif kind is EventKind.ORDER_EXPIRED:
            if was_terminal:
                issue = EVENT_AFTER_TERMINAL
            else:
                self.status = OrderStatus.EXPIRED
        return issue

    def _note_end_quote(self, ev: Event, later: bool) -> None:
        """The end mid from the market context of an event at (``later``: after) the
        order's last time: its quote when it has a two-sided one; an event later than
        any before it without one leaves the order with no end mid."""
        bid, ask = ev.mkt_bid, ev.mkt_ask
        if bid is not None and ask is not None:
            self.mid_end = (bid + ask) / 2.0
            self.mid_end_ts = ev.mkt_ts
        elif later:
            self.mid_end = self.mid_end_ts = None

    def _apply_fill(self, ev: Event, was_terminal: bool) -> str | None:
        """A fill whose exec_id the order already has is the same execution logged twice:
        it is kept and marked, and not counted again."""
        exec_id = ev.exec_id
        if exec_id is not None:
            if self.exec_ids is None:
                self.exec_ids = {exec_id}
            elif exec_id in self.exec_ids:
                return DUPLICATE_EXEC
            else:
                self.exec_ids.add(exec_id)
        qty = ev.last_qty or 0.0
        px = ev.last_px or 0.0
        self.filled_qty += qty
        self.notional += qty * px
        self.n_fills += 1
        if ev.fee is not None:
            self.fees += ev.fee
        if ev.liquidity is not None:
            if ev.liquidity == "maker":
                self.maker_qty += qty
            else:
                self.taker_qty += qty
        if self.ts_first_fill is None:
            self.ts_first_fill = ev.ts
            self.fill_latency_ms = latency_ms(self.ts_new, ev.ts)
        issue: str | None = None
        if was_terminal and self.status is not OrderStatus.CANCELLED:
            issue = EVENT_AFTER_TERMINAL
        elif was_terminal:
            # a fill racing a cancel: the fill stands; the order ends filled if complete
            issue = EVENT_AFTER_TERMINAL
        complete = ev.leaves_qty is not None and ev.leaves_qty <= QTY_EPSILON
        if self.qty is not None:
            if self.filled_qty > self.qty + QTY_EPSILON:
                issue = OVERFILL
            if self.filled_qty >= self.qty - QTY_EPSILON:
                complete = True
        if complete:
            self.status = OrderStatus.FILLED
        elif not was_terminal:
            self.status = OrderStatus.PARTIALLY_FILLED
        return issue


class OrderRecord(msgspec.Struct, kw_only=True, gc=False):
    """The stored row of an order that reached a terminal state (stable column names)."""

    order_id: str
    status: OrderStatus
    symbol: str | None
    venue: str | None
    side: Side | None
    qty: float | None
    price: float | None
    order_type: str | None
    tif: str | None
    account_id: str | None
    strategy_id: str | None
    owner_id: str | None
    venue_order_id: str | None
    aliases: str | None
    ts_new: int | None
    ts_ack: int | None
    ts_first_fill: int | None
    ts_done: int
    filled_qty: float
    avg_px: float | None
    fill_rate: float | None
    notional: float
    fees: float
    n_fills: int
    maker_qty: float
    taker_qty: float
    ack_latency_ms: float | None
    fill_latency_ms: float | None
    cancel_latency_ms: float | None
    arrival_mid: float | None
    arrival_ts: int | None
    slippage_bps: float | None
    reject_reason: str | None
    mid_end: float | None
    mid_end_ts: int | None


def order_record(state: OrderState) -> OrderRecord:
    """Snapshot of an order's state as its stored row."""
    return OrderRecord(
        order_id=state.order_id,
        status=state.status,
        symbol=state.symbol,
        venue=state.venue,
        side=state.side,
        qty=state.qty,
        price=state.price,
        order_type=state.order_type,
        tif=state.tif,
        account_id=state.account_id,
        strategy_id=state.strategy_id,
        owner_id=state.owner_id,
        venue_order_id=state.venue_order_id,
        aliases=",".join(state.aliases) if state.aliases else None,
        ts_new=state.ts_new,
        ts_ack=state.ts_ack,
        ts_first_fill=state.ts_first_fill,
        ts_done=state.ts_last,
        filled_qty=state.filled_qty,
        avg_px=state.avg_px,
        fill_rate=state.fill_rate,
        notional=state.notional,
        fees=state.fees,
        n_fills=state.n_fills,
        maker_qty=state.maker_qty,
        taker_qty=state.taker_qty,
        ack_latency_ms=state.ack_latency_ms,
        fill_latency_ms=state.fill_latency_ms,
        cancel_latency_ms=state.cancel_latency_ms,
        arrival_mid=state.arrival_mid,
        arrival_ts=state.arrival_ts,
        slippage_bps=state.slippage_bps,
        reject_reason=state.reject_reason,
        mid_end=state.mid_end,
        mid_end_ts=state.mid_end_ts,
    )
