"""enrich: rebuild each order's lifecycle and add context to events.

For order events: resolve the order (following replace/cancel id chains), run the
lifecycle state machine, set latencies on the event that completes them, copy the
order's reference fields onto events that lack them (``context_from_order``), take the
arrival mid at ``order_new`` and compute arrival slippage on fills. For every event:
market context (bid/ask of the as-of quote) and the account's beneficial owner.

Formulas (DESIGN §4): ``slippage_bps = side × (last_px − arrival_mid) / arrival_mid × 1e4``
(positive = cost); arrival mid = mid of the last two-sided quote of the symbol at or
before ``order_new.ts``, on the order's venue when that venue has quotes. No quote → null.
"""

from __future__ import annotations

from typing import Final

from tradelog.model.events import (
    ORDER_KINDS,
    TERMINAL_STATUSES,
    Event,
    EventKind,
)
from tradelog.model.orders import DUPLICATE_EXEC, OrderState, side_sign
from tradelog.model.reference import ReferenceData
from tradelog.pipeline.batch import Batch
from tradelog.pipeline.state import PartitionState

_NEW: Final = EventKind.ORDER_NEW
_ACK: Final = EventKind.ORDER_ACK
_FILL: Final = EventKind.FILL
_CANCELLED: Final = EventKind.ORDER_CANCELLED
_QUOTE: Final = EventKind.QUOTE
_TRADE: Final = EventKind.MARKET_TRADE
_POSITION_REPORT: Final = EventKind.POSITION


class Enrich:
    """Stage ``enrich``. Lifecycle issues go to ``batch.issues`` for the mark stage."""

    step_id: Final = "enrich"

    def __init__(self, reference: ReferenceData | None = None) -> None:
        self.owners = (reference or ReferenceData()).owners()

    def __call__(self, batch: Batch, state: PartitionState) -> None:
        issues = batch.issues
        owners = self.owners
        finished = batch.finished_orders
        for i, ev in enumerate(batch.events):
            state.seq += 1
            ev.seq = state.seq
            kind = ev.kind
            if kind is _QUOTE:
                if ev.symbol is not None:
                    state.symbol(ev.symbol).add_quote(ev)
                continue
            if kind is _POSITION_REPORT:
                ours = state.positions.get((ev.strategy_id, ev.account_id, ev.symbol))
                if ours is not None:
                    ev.pos_after = ours.qty
                    ev.avg_cost_after = ours.avg_cost
                    ev.realized_after = ours.realized
                    ev.fees_after = ours.fees
                else:
                    ev.pos_after = 0.0
                    ev.realized_after = 0.0
                    ev.fees_after = 0.0
                continue
            if kind is _TRADE:
                if ev.symbol is not None:
                    sym = state.symbol(ev.symbol)
                    if sym.last_trade_ts is None or ev.ts >= sym.last_trade_ts:
                        sym.last_trade_px = ev.price
                        sym.last_trade_ts = ev.ts
                continue
            if kind not in ORDER_KINDS:
                if ev.account_id is not None and owners:
                    ev.owner_id = owners.get(ev.account_id)
                continue
            order, known = state.resolve(ev)
            was_terminal = order.status in TERMINAL_STATUSES
            self._context(ev, order)
            if ev.account_id is not None and owners:
                ev.owner_id = owners.get(ev.account_id)
                if order.owner_id is None:
                    order.owner_id = ev.owner_id
            symbol = ev.symbol
            quote = state.symbol(symbol).quote_asof(ev.venue, ev.ts) if symbol is not None else None
            if quote is not None:
                ev.mkt_ts, ev.mkt_bid, ev.mkt_ask = quote
            if kind is _NEW and order.ts_new is None and quote is not None:
                order.arrival_ts = quote[0]
                order.arrival_mid = (quote[1] + quote[2]) / 2.0
            first_ack = kind is _ACK and order.ts_ack is None
            first_fill = kind is _FILL and order.ts_first_fill is None
            first_cancel = kind is _CANCELLED and not was_terminal
            issue = order.apply(ev)
            if not known and kind is not _NEW:
                issue = issue or "unknown_order"
            if issue is not None:
                issues[i] = issue
            ev.order_status = order.status
            if first_ack:
                ev.latency_ms = order.ack_latency_ms
            elif first_fill:
                ev.latency_ms = order.fill_latency_ms
            elif first_cancel:
                ev.latency_ms = order.cancel_latency_ms
            if kind is _NEW:
                ev.arrival_mid = order.arrival_mid
                ev.arrival_ts = order.arrival_ts
            elif kind is _FILL:
                counted = issue != DUPLICATE_EXEC
                self._slippage(ev, order, counted=counted)
                if counted:
                    self._position(ev, state, batch)
            if order.status in TERMINAL_STATUSES:
                finished[order.order_id] = order
                if order.ts_new is None:
                    batch.order_placeholders.add(order.order_id)
                elif was_terminal:
                    batch.order_rewrites.add(order.order_id)
                if not was_terminal:
                    state.note_terminal(order)

    @staticmethod
    def _context(ev: Event, order: OrderState) -> None:
        """Order ↔ event reference fields: each fills the other's gaps, never overwrites."""
        order.absorb_context(ev)
        ev.root_order_id = order.order_id
        filled = False
        if ev.symbol is None and order.symbol is not None:
            ev.symbol = order.symbol
            filled = True
        if ev.venue is None and order.venue is not None:
            ev.venue = order.venue
            filled = True
        if ev.side is None and order.side is not None:
            ev.side = order.side
            filled = True
        if ev.account_id is None and order.account_id is not None:
            ev.account_id = order.account_id
            filled = True
        if ev.strategy_id is None and order.strategy_id is not None:
            ev.strategy_id = order.strategy_id
            filled = True
        if ev.order_type is None and order.order_type is not None:
            ev.order_type = order.order_type
            filled = True
        ev.context_from_order = filled

    @staticmethod
    def _position(ev: Event, state: PartitionState, batch: Batch) -> None:
        """Average-cost position of strategy × account × symbol after this fill."""
        pos = state.position(ev.strategy_id, ev.account_id, ev.symbol)
        trip = pos.apply(
            side_sign(ev.side),
            ev.last_qty or 0.0,
            ev.last_px or 0.0,
            ev.fee or 0.0,
            ev.ts,
            ev.liquidity,
        )
        ev.pos_after = pos.qty
        ev.avg_cost_after = pos.avg_cost if pos.qty else None
        ev.realized_after = pos.realized
        ev.fees_after = pos.fees
        if trip is not None:
            trip.strategy_id = ev.strategy_id
            trip.account_id = ev.account_id
            trip.symbol = ev.symbol
            batch.round_trips.append(trip)

    @staticmethod
    def _slippage(ev: Event, order: OrderState, counted: bool) -> None:
        mid = order.arrival_mid
        ev.arrival_mid = mid
        ev.arrival_ts = order.arrival_ts
        px = ev.last_px
        sign = side_sign(order.side)
        if mid is None or px is None or sign == 0 or mid <= 0:
            return
        slip = sign * (px - mid) / mid * 1e4
        ev.slippage_bps = slip
        if not counted:
            return
        qty = ev.last_qty or 0.0
        order.slip_sum += qty * slip
        order.slip_qty += qty
