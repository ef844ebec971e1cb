"""Synthetic engine logs for the benchmarks: the same events as JSON lines and as a text
log read by a regex config (benchmarks/text_log.toml).

Mix per order: new, ack, then a full fill (50%), two partial fills (20%) or a cancel
request + cancel (30%); a two-sided quote for roughly every second order. Deterministic
for a seed.

    python benchmarks/gen.py --events 1000000 --out benchmarks/data
"""

from __future__ import annotations

import argparse
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "JPM", "V", "XOM"]
VENUES = ["XNAS", "XNYS", "ARCX", "BATS"]
STRATEGIES = ["MM-1", "MM-2", "TK-1", "TK-2"]
ACCOUNTS = [f"ACC-{i:02d}" for i in range(8)]
START_NS = 1_741_008_600_000_000_000  # 2025-03-03 13:30:00 UTC


@dataclass(slots=True)
class Ev:
    ts: int
    kind: str
    f: dict[str, object]


def events(n: int, seed: int) -> Iterator[Ev]:
    """About ``n`` events in time order."""
    rng = random.Random(seed)
    mids = {s: 50.0 + 40 * i for i, s in enumerate(SYMBOLS)}
    ts = START_NS
    produced = 0
    oid = 0
    pending: list[Ev] = []
    while produced < n:
        ts += rng.randint(20_000, 200_000)
        sym = rng.choice(SYMBOLS)
        venue = rng.choice(VENUES)
        mid = mids[sym] = max(1.0, mids[sym] * (1 + rng.gauss(0, 0.0002)))
        if rng.random() < 0.5:
            half = mid * 0.0001 * rng.randint(1, 5)
            pending.append(
                Ev(ts, "quote", {"symbol": sym, "venue": venue, "bid": round(mid - half, 4),
                                 "ask": round(mid + half, 4), "bid_size": rng.randint(1, 50) * 100,
                                 "ask_size": rng.randint(1, 50) * 100})
            )  # fmt: skip
        oid += 1
        order_id = f"ORD-{oid:09d}"
        strat = rng.choice(STRATEGIES)
        side = rng.choice(("BUY", "SELL"))
        qty = rng.randint(1, 20) * 100
        px = round(mid * (1 + (0.0005 if side == "BUY" else -0.0005)), 2)
        common = {"order_id": order_id, "strategy_id": strat, "account_id": rng.choice(ACCOUNTS),
                  "symbol": sym, "venue": venue, "side": side}  # fmt: skip
        pending.append(Ev(ts, "order_new", {**common, "price": px, "qty": qty}))
        t_ack = ts + int(rng.lognormvariate(12.5, 0.6))
        pending.append(Ev(t_ack, "order_ack", {"order_id": order_id, "strategy_id": strat}))
        r = rng.random()
        t = t_ack + int(rng.lognormvariate(14, 1.0))
        if r < 0.5:
            pending.append(Ev(t, "fill", _fill(rng, order_id, strat, qty, qty, px, 0)))
        elif r < 0.7:
            first = qty // 2
            pending.append(
                Ev(t, "fill", _fill(rng, order_id, strat, first, first, px, qty - first))
            )
            t2 = t + int(rng.lognormvariate(14, 1.0))
            pending.append(Ev(t2, "fill", _fill(rng, order_id, strat, qty - first, qty, px, 0)))
        else:
            pending.append(
                Ev(t, "order_cancel_request", {"order_id": order_id, "strategy_id": strat})
            )
            t2 = t + int(rng.lognormvariate(12.5, 0.5))
            pending.append(Ev(t2, "order_cancelled", {"order_id": order_id, "strategy_id": strat}))
        # release what is due, in time order
        pending.sort(key=lambda e: e.ts)
        while pending and pending[0].ts <= ts and produced < n:
            yield pending.pop(0)
            produced += 1
    pending.sort(key=lambda e: e.ts)
    yield from pending[: max(0, n - produced)]


def _fill(
    rng: random.Random, oid: str, strat: str, q: int, cum: int, px: float, leaves: int
) -> dict[str, object]:
    liq = rng.choice(("maker", "taker"))
    last_px = round(px * (1 + rng.gauss(0, 0.0002)), 2)
    return {"order_id": oid, "strategy_id": strat, "exec_id": f"X{oid[4:]}-{cum}", "last_qty": q,
            "last_px": last_px, "cum_qty": cum, "leaves_qty": leaves, "liquidity": liq,
            "fee": round(q * last_px * 0.00002, 4)}  # fmt: skip


def iso(ns: int) -> str:
    s, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def jsonl_line(i: int, ev: Ev) -> str:
    f = ev.f
    parts = [f'"ts":"{iso(ev.ts)}"', f'"kind":"{ev.kind}"', f'"event_id":"E{i:010d}"']
    for k, v in f.items():
        parts.append(f'"{k}":"{v}"' if isinstance(v, str) else f'"{k}":{v}')
    return "{" + ",".join(parts) + "}\n"


def text_line(i: int, ev: Ev) -> str:
    """``2025-03-03 13:30:00.000123456 INFO [MM-1] fill E0000000001 ORD-… k=v …``"""
    s, frac = divmod(ev.ts, 1_000_000_000)
    stamp = datetime.fromtimestamp(s, tz=UTC).strftime("%Y-%m-%d %H:%M:%S") + f".{frac:09d}"
    f = ev.f
    k = ev.kind
    if k == "quote":
        return (f"{stamp} INFO [md] quote E{i:010d} {f['symbol']}@{f['venue']} "
                f"{f['bid_size']}x{f['bid']} / {f['ask']}x{f['ask_size']}\n")  # fmt: skip
    head = f"{stamp} INFO [{f['strategy_id']}] {k} E{i:010d} {f['order_id']}"
    if k == "order_new":
        return (f"{head} {f['side']} {f['qty']} {f['symbol']} @ {f['price']} on {f['venue']} "
                f"acct={f['account_id']}\n")  # fmt: skip
    if k == "fill":
        return (f"{head} exec={f['exec_id']} {f['last_qty']}@{f['last_px']} cum={f['cum_qty']} "
                f"leaves={f['leaves_qty']} liq={f['liquidity']} fee={f['fee']}\n")  # fmt: skip
    return head + "\n"


def write(n: int, out: str, seed: int = 7) -> tuple[str, str]:
    os.makedirs(out, exist_ok=True)
    jpath = os.path.join(out, f"events_{n}.jsonl")
    tpath = os.path.join(out, f"events_{n}.log")
    with open(jpath, "w") as fj, open(tpath, "w") as ft:
        for i, ev in enumerate(events(n, seed)):
            fj.write(jsonl_line(i, ev))
            ft.write(text_line(i, ev))
    return jpath, tpath


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--out", default="benchmarks/data")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    for p in write(a.events, a.out, a.seed):
        print(p, os.path.getsize(p))


if __name__ == "__main__":
    main()
