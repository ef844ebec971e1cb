"""PnL invariants of the average-cost book (DESIGN §4), for random fill sequences of one
strategy × account × symbol that end flat:

    realized_pnl (net of fees) == Σ round-trip PnL == Σ sell notional − Σ buy notional − Σ fees

and the unrealized PnL of a flat book is 0 whatever the mark. Checked on the model
(many examples) and end to end through the pipeline, the store and the HTTP API (fewer).
``tests/property/test_accounting.py`` covers line accounting, not PnL.

Tolerance: 1e-9 relative to the turnover (Σ |notional|), since the identities subtract
sums of that size."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Replayer
from tradelog.api.app import create_app
from tradelog.model.positions import PositionState


@dataclass(frozen=True)
class Fill:
    sign: int  # +1 buy, −1 sell
    qty: float
    px: float
    fee: float
    liquidity: str


fill = st.builds(
    Fill,
    sign=st.sampled_from([1, -1]),
    qty=st.integers(1, 500).map(float),
    px=st.integers(5_000, 15_000).map(lambda c: c / 100),  # 50.00 … 150.00
    fee=st.integers(0, 200).map(lambda c: c / 100),
    liquidity=st.sampled_from(["maker", "taker"]),
)


@st.composite
def flat_book(draw: st.DrawFn) -> list[Fill]:
    """Random fills, then one that closes whatever is left (the book ends flat)."""
    fills = draw(st.lists(fill, min_size=1, max_size=30))
    pos = sum(f.sign * f.qty for f in fills)
    if pos != 0:
        last = draw(fill)
        fills.append(Fill(-1 if pos > 0 else 1, abs(pos), last.px, last.fee, last.liquidity))
    return fills


def cash(fills: list[Fill]) -> tuple[float, float]:
    """(Σ sell notional − Σ buy notional − Σ fees, turnover)."""
    flow = sum(-f.sign * f.qty * f.px for f in fills) - sum(f.fee for f in fills)
    return flow, sum(f.qty * f.px for f in fills)


def close(a: float, b: float, scale: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, scale)


@settings(max_examples=400, deadline=None)
@given(fills=flat_book(), mark=st.floats(1.0, 1000.0))
def test_flat_book_realized_equals_round_trips_and_cash_flows(
    fills: list[Fill], mark: float
) -> None:
    pos = PositionState()
    trips = []
    for i, f in enumerate(fills):
        trip = pos.apply(f.sign, f.qty, f.px, f.fee, ts=i, liquidity=f.liquidity)
        if trip is not None:
            trips.append(trip)
    flow, turnover = cash(fills)
    assert pos.qty == 0.0
    assert pos.unrealized(mark) == 0.0
    assert close(pos.realized_net, flow, turnover), (pos.realized_net, flow)
    assert close(sum(t.pnl for t in trips), pos.realized_net, turnover)
    assert close(sum(t.gross_pnl for t in trips), pos.realized, turnover)
    assert close(sum(t.fees for t in trips), pos.fees, turnover)
    assert close(pos.fees, sum(f.fee for f in fills), turnover)
    assert close(pos.maker_realized + pos.taker_realized, pos.realized, turnover)
    assert close(pos.turnover, turnover, turnover)
    # trips chain: each opens where (or after) the previous one closed, flat → flat
    for a, b in itertools.pairwise(trips):
        assert a.ts_close <= b.ts_open
    assert sum(t.fills for t in trips) >= len(fills)  # a flip fill counts in two trips


_runs = itertools.count()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fills=flat_book())
def test_flat_book_through_the_pipeline_and_api(replay_into: Replayer, fills: list[Fill]) -> None:
    t0 = 1_705_329_000 * 10**9  # 2024-01-15T14:30:00Z
    lines = []
    for i, f in enumerate(fills):
        ts = t0 + i * 10**9
        side = "buy" if f.sign > 0 else "sell"
        lines.append({"kind": "order_new", "ts": ts, "order_id": f"O{i}", "symbol": "XYZ",
                      "venue": "V", "side": side, "qty": f.qty, "price": f.px,
                      "strategy_id": "S", "account_id": "A"})  # fmt: skip
        lines.append({"kind": "fill", "ts": ts + 1000, "order_id": f"O{i}", "exec_id": f"E{i}",
                      "last_qty": f.qty, "last_px": f.px, "leaves_qty": 0, "fee": f.fee,
                      "liquidity": f.liquidity})  # fmt: skip
    text = "".join(json.dumps(line) + "\n" for line in lines)
    _, store = replay_into({"fills.jsonl": text}, store_name=f"pnl{next(_runs)}")
    flow, turnover = cash(fills)
    with TestClient(create_app(store)) as client:
        pnl = client.get("/log_stream/pnl").json()
        trips = client.get("/log_stream/round_trips").json()["round_trips"]
        positions = client.get("/log_stream/positions").json()["positions"]
    overall = pnl["overall"]
    assert close(overall["realized_pnl"], flow, turnover), (overall, flow)
    assert close(sum(t["pnl"] for t in trips), flow, turnover)
    assert close(pnl["round_trips"]["overall"]["pnl"], flow, turnover)
    assert overall["unrealized_pnl"] == 0.0
    assert close(overall["total_pnl"], flow, turnover)
    assert close(overall["fees"], sum(f.fee for f in fills), turnover)
    (row,) = positions
    assert (row["position"], row["avg_cost"], row["unrealized_pnl"]) == (0.0, None, 0.0)
    liq = {r["liquidity"]: r for r in pnl["by_liquidity"]}
    assert close(
        sum(r["realized_gross"] for r in liq.values()), overall["gross_realized_pnl"], turnover
    )
