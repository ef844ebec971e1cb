"""One order's view from its stored events: the lifecycle state machine folded over the
timeline, with the enrichment the pipeline stored (arrival mid, per-fill slippage)."""

from __future__ import annotations

from typing import Any, Final

from tradelog.model.events import Event, EventKind
from tradelog.model.orders import DUPLICATE_EXEC, OrderState
from tradelog.model.timefmt import ns_to_iso

SLIPPAGE_CONVENTION: Final = (
    "slippage_bps = side × (fill px − arrival mid) / arrival mid × 10^4; positive = cost"
)

_TIMELINE_FIELDS: Final = (
    "seq", "event_id", "kind", "ts", "order_id", "orig_order_id", "qty", "price", "exec_id",
    "last_qty", "last_px", "cum_qty", "leaves_qty", "liquidity", "fee", "reason", "latency_ms",
    "order_status", "mkt_bid", "mkt_ask", "slippage_bps", "anomaly_severity", "anomaly_types",
    "source", "src_ref", "src_offset",
)  # fmt: skip


def order_view(events: list[Event]) -> dict[str, Any] | None:
    """The order whose events these are (in seq order), or None for no events."""
    if not events:
        return None
    root = events[0].root_order_id or events[0].order_id
    assert root is not None
    order = OrderState(root)
    timeline: list[dict[str, Any]] = []
    for ev in events:
        order.absorb_context(ev)
        if ev.kind is EventKind.ORDER_NEW and order.ts_new is None:
            order.arrival_mid = ev.arrival_mid
            order.arrival_ts = ev.arrival_ts
        if ev.order_id is not None and ev.order_id != root and ev.order_id not in order.aliases:
            order.aliases.append(ev.order_id)
        issue = order.apply(ev)
        if ev.kind is EventKind.FILL and ev.slippage_bps is not None and issue != DUPLICATE_EXEC:
            qty = ev.last_qty or 0.0
            order.slip_sum += qty * ev.slippage_bps
            order.slip_qty += qty
        item = {name: getattr(ev, name) for name in _TIMELINE_FIELDS}
        item["ts_iso"] = ns_to_iso(ev.ts)
        timeline.append(item)
    return {
        "order_id": order.order_id,
        "aliases": order.aliases,
        "status": order.status.value,
        "symbol": order.symbol,
        "venue": order.venue,
        "side": order.side.value if order.side is not None else None,
        "order_type": order.order_type,
        "account_id": order.account_id,
        "strategy_id": order.strategy_id,
        "qty": order.qty,
        "price": order.price,
        "filled_qty": order.filled_qty,
        "avg_px": order.avg_px,
        "fill_rate": order.fill_rate,
        "fees": order.fees,
        "n_fills": order.n_fills,
        "ack_latency_ms": order.ack_latency_ms,
        "fill_latency_ms": order.fill_latency_ms,
        "cancel_latency_ms": order.cancel_latency_ms,
        "arrival_mid": order.arrival_mid,
        "arrival_ts": order.arrival_ts,
        "slippage_bps": order.slippage_bps,
        "slippage_convention": SLIPPAGE_CONVENTION,
        "mid_end": order.mid_end,
        "mid_end_ts": order.mid_end_ts,
        "reject_reason": order.reject_reason,
        "ts_new": order.ts_new,
        "ts_last": order.ts_last,
        "timeline": timeline,
    }
