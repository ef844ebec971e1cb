"""What the simulator knows happened: every order's final status, every fill, and each
engine's final books — written as ``truth_summary.json`` so a replay can be checked
against it (orders by final status, fills per symbol, PnL per strategy × account × symbol).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import msgspec

from tradelog.model.timefmt import ns_to_iso
from tradelog.sources.simulator.venues import Execution, SimOrder

if TYPE_CHECKING:
    from tradelog.sources.simulator.strategies import Engine


class FillRecord(msgspec.Struct, kw_only=True):
    ts: str
    ts_ns: int
    strategy_id: str
    account_id: str
    order_id: str
    """The order's first (root) id; replaces give the order later ids."""
    exec_id: str
    symbol: str
    venue: str
    side: str
    qty: float
    px: float
    fee: float
    liquidity: str
    counterparty_account: str | None


class Recorder:
    """Collects the ground truth as the simulation runs. ``keep_fills`` is off for endless
    runs (the demo), where only counts are kept."""

    def __init__(self, keep_fills: bool = True) -> None:
        self.keep_fills = keep_fills
        self.fills: list[FillRecord] = []
        self.status: Counter[str] = Counter()
        self.status_by_strategy: Counter[tuple[str, str]] = Counter()
        self.sent = 0
        self.fill_count: Counter[str] = Counter()
        self.fill_qty: dict[str, float] = {}

    def order_sent(self, o: SimOrder) -> None:
        self.sent += 1

    def order_done(self, o: SimOrder, t: int) -> None:
        self.status[o.status] += 1
        self.status_by_strategy[(o.strategy_id, o.status)] += 1

    def fill(self, o: SimOrder, x: Execution, qty: float, px: float) -> None:
        self.fill_count[o.symbol] += 1
        self.fill_qty[o.symbol] = self.fill_qty.get(o.symbol, 0.0) + qty
        if self.keep_fills:
            self.fills.append(
                FillRecord(
                    ts=ns_to_iso(x.ts),
                    ts_ns=x.ts,
                    strategy_id=o.strategy_id,
                    account_id=o.account_id,
                    order_id=o.root_id,
                    exec_id=x.exec_id,
                    symbol=o.symbol,
                    venue=o.venue,
                    side=o.side,
                    qty=qty,
                    px=px,
                    fee=x.fee,
                    liquidity=x.liquidity,
                    counterparty_account=x.counterparty,
                )
            )

    def summary(self, engines: list[Engine], marks: dict[str, float]) -> dict[str, Any]:
        """The ``truth_summary.json`` document."""
        positions = []
        for e in engines:
            for (account, symbol), b in sorted(e.books.items()):
                positions.append(
                    {
                        "strategy_id": e.strategy_id,
                        "account_id": account,
                        "symbol": symbol,
                        "position": b.qty,
                        "avg_cost": b.avg_cost if b.qty else None,
                        "realized_gross": b.realized_gross,
                        "fees": b.fees,
                        "realized_pnl": b.realized,
                        "fills": b.fills,
                        "mark": marks[symbol],
                        "unrealized_pnl": b.qty * (marks[symbol] - b.avg_cost) if b.qty else 0.0,
                    }
                )
        open_orders = sum(len(e.open_orders) for e in engines)
        return {
            "orders": {
                "sent": self.sent,
                "open": open_orders,
                "by_status": dict(sorted(self.status.items())),
                "by_strategy": {
                    f"{sid}/{status}": n
                    for (sid, status), n in sorted(self.status_by_strategy.items())
                },
            },
            "fills_by_symbol": {
                s: {"count": self.fill_count[s], "qty": self.fill_qty[s]}
                for s in sorted(self.fill_count)
            },
            "positions": positions,
            "fills": [msgspec.to_builtins(f) for f in self.fills] if self.keep_fills else None,
            "fills_note": None if self.keep_fills else "not kept in endless (demo) runs",
        }
