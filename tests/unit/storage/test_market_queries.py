"""Market-data queries (storage/queries/market.py) over a real DuckDB store filled by the
real pipeline (replay of JSON lines).

Trades of AAA (2024-01-15, UTC), worked out by hand:

    14:30:00.100  X  10.0 × 1
    14:30:00.500  Y  12.0 × 3
    14:30:00.900  X  11.0 × 2
                                  (14:30:01: a quote and a BBB trade, no AAA trade → no bar)
    14:30:02.000  X   9.0 × 4
    14:30:59.999  Y  10.0 × 1
    14:31:00.000  X  13.0 × 2     } same timestamp: the file order (seq) decides
    14:31:00.000  X  12.5 × 2     } open 13.0, close 12.5
    14:35:00.000  X  14.0 × 5

1 s bars: 14:30:00 O10 H12 L10 C11 V6 notional 68 vwap 11.333… n3;
          14:30:02 9/9/9/9 V4 n1; 14:30:59 10 V1 n1; 14:31:00 O13 H13 L12.5 C12.5 V4
          notional 51 vwap 12.75 n2; 14:35:00 14 V5 n1.
1 m bars: 14:30 O10 H12 L9 C10 V11 notional 114 n5; 14:31 O13 C12.5 V4 n2; 14:35 14 V5 —
          and nothing for 14:32–14:34.
5 m bars: 14:30 O10 H13 L9 C12.5 V15 notional 165 n7; 14:35 14 V5 n1.
Venue X, 1 m: 14:30 O10 H11 L9 C9 V7 notional 68 n3.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.pg import fresh_database
from tradelog.app import plan_replay, replay
from tradelog.config import Config, SourceConfig
from tradelog.storage.base import EventFilter
from tradelog.storage.duckdb_store import DuckDBStore
from tradelog.storage.postgres_store import PostgresStore
from tradelog.storage.queries import market

DAY_NS = 1_705_276_800 * 10**9  # 2024-01-15T00:00:00Z
S = 10**9
MIN = 60 * S


def at(hour: int, minute: int, second: int, ms: int = 0) -> int:
    return DAY_NS + (hour * 3600 + minute * 60 + second) * S + ms * 10**6


def iso(hour: int, minute: int, second: int, ms: int = 0) -> str:
    return f"2024-01-15T{hour:02d}:{minute:02d}:{second:02d}.{ms:03d}Z"


def trade(eid: str, t: str, sym: str, venue: str, price: float, qty: float) -> str:
    return json.dumps({"event_id": eid, "kind": "market_trade", "ts": t, "symbol": sym,
                       "venue": venue, "price": price, "qty": qty, "side": "buy"})  # fmt: skip


def quote(eid: str, t: str, sym: str, venue: str, **sides: float) -> str:
    return json.dumps({"event_id": eid, "kind": "quote", "ts": t, "symbol": sym,
                       "venue": venue, **sides})  # fmt: skip


LINES = [
    trade("t1", iso(14, 30, 0, 100), "AAA", "X", 10.0, 1),
    trade("t2", iso(14, 30, 0, 500), "AAA", "Y", 12.0, 3),
    trade("t3", iso(14, 30, 0, 900), "AAA", "X", 11.0, 2),
    quote("q1", iso(14, 30, 1, 200), "AAA", "X", bid=10.9, ask=11.1, bid_size=5, ask_size=6),
    trade("b1", iso(14, 30, 1, 500), "BBB", "X", 50.0, 1),
    trade("t4", iso(14, 30, 2), "AAA", "X", 9.0, 4),
    quote("q2", iso(14, 30, 40), "AAA", "X", bid=10.95, ask=11.05, bid_size=7, ask_size=8),
    quote("q3", iso(14, 30, 50), "AAA", "Y", bid=10.8, ask=11.0, bid_size=1, ask_size=2),
    trade("t5", iso(14, 30, 59, 999), "AAA", "Y", 10.0, 1),
    trade("t6", iso(14, 31, 0), "AAA", "X", 13.0, 2),
    trade("t7", iso(14, 31, 0), "AAA", "X", 12.5, 2),
    quote("z1", iso(14, 31, 5), "ZZZ", "X", bid=3.0),
    trade("t8", iso(14, 35, 0), "AAA", "X", 14.0, 5),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    """One store for the module's read-only tests, filled by the real pipeline."""
    log = tmp_path_factory.mktemp("market") / "md.jsonl"
    log.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    cfg = Config()
    cfg.sources = [SourceConfig(name="jsonl", format="jsonl")]
    st = DuckDBStore(str(log.with_suffix(".duckdb")))
    try:
        summary = replay(cfg, plan_replay(cfg, [str(log)], "jsonl"), st)
        assert summary.events == len(LINES)
        yield st
    finally:
        st.close()


def bar(ts: int, o: float, h: float, lo: float, c: float, v: float, notional: float,
        n: int) -> dict[str, Any]:  # fmt: skip
    return {"ts_ns": ts, "open": o, "high": h, "low": lo, "close": c, "volume": v,
            "notional": notional, "vwap": notional / v, "trades": n}  # fmt: skip


def approx_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: pytest.approx(v) if isinstance(v, float) else v for k, v in r.items()}
            for r in rows]  # fmt: skip


def test_one_second_bars_are_never_backfilled(store: DuckDBStore) -> None:
    rows, truncated = market.bars(store, "AAA", S, EventFilter(), 1000)
    assert not truncated
    assert rows == approx_rows([
        bar(at(14, 30, 0), 10.0, 12.0, 10.0, 11.0, 6.0, 68.0, 3),
        bar(at(14, 30, 2), 9.0, 9.0, 9.0, 9.0, 4.0, 36.0, 1),
        bar(at(14, 30, 59), 10.0, 10.0, 10.0, 10.0, 1.0, 10.0, 1),
        bar(at(14, 31, 0), 13.0, 13.0, 12.5, 12.5, 4.0, 51.0, 2),
        bar(at(14, 35, 0), 14.0, 14.0, 14.0, 14.0, 5.0, 70.0, 1),
    ])  # fmt: skip
    assert at(14, 30, 1) not in [r["ts_ns"] for r in rows]  # quote + other symbol only
    assert rows[0]["vwap"] == pytest.approx(68 / 6)
    assert rows[3]["vwap"] == pytest.approx(12.75)


def test_one_minute_and_five_minute_bars(store: DuckDBStore) -> None:
    rows, _ = market.bars(store, "AAA", MIN, EventFilter(), 1000)
    assert rows == approx_rows([
        bar(at(14, 30, 0), 10.0, 12.0, 9.0, 10.0, 11.0, 114.0, 5),
        bar(at(14, 31, 0), 13.0, 13.0, 12.5, 12.5, 4.0, 51.0, 2),
        bar(at(14, 35, 0), 14.0, 14.0, 14.0, 14.0, 5.0, 70.0, 1),
    ])  # fmt: skip
    rows, _ = market.bars(store, "AAA", 5 * MIN, EventFilter(), 1000)
    assert rows == approx_rows([
        bar(at(14, 30, 0), 10.0, 13.0, 9.0, 12.5, 15.0, 165.0, 7),
        bar(at(14, 35, 0), 14.0, 14.0, 14.0, 14.0, 5.0, 70.0, 1),
    ])  # fmt: skip


def test_venue_filter_and_other_symbol(store: DuckDBStore) -> None:
    rows, _ = market.bars(store, "AAA", MIN, EventFilter(venue="X"), 1000)
    assert rows[0] == approx_rows([bar(at(14, 30, 0), 10.0, 11.0, 9.0, 9.0, 7.0, 68.0, 3)])[0]
    assert [r["ts_ns"] for r in rows] == [at(14, 30, 0), at(14, 31, 0), at(14, 35, 0)]
    rows, _ = market.bars(store, "BBB", S, EventFilter(), 1000)
    assert rows == approx_rows([bar(at(14, 30, 1), 50.0, 50.0, 50.0, 50.0, 1.0, 50.0, 1)])
    assert market.bars(store, "NOPE", S, EventFilter(), 1000) == ([], False)


def test_window_is_widened_to_whole_bars(store: DuckDBStore) -> None:
    """from 14:30:00.600 to 14:30:02.500 at 1 s → bars 14:30:00 (complete, all three
    trades, also the one at .100) and 14:30:02; at 1 m the 14:30 bar is complete."""
    flt = EventFilter(start=at(14, 30, 0, 600), end=at(14, 30, 2, 500))
    aligned = market.align_window(flt, S)
    assert (aligned.start, aligned.end) == (at(14, 30, 0), at(14, 30, 3))
    rows, _ = market.bars(store, "AAA", S, flt, 1000)
    assert [(r["ts_ns"], r["trades"]) for r in rows] == [(at(14, 30, 0), 3), (at(14, 30, 2), 1)]
    rows, _ = market.bars(store, "AAA", MIN, flt, 1000)
    assert [(r["ts_ns"], r["trades"]) for r in rows] == [(at(14, 30, 0), 5)]
    # an aligned end is exclusive: [14:31, 14:35) has only the 14:31 bar
    rows, _ = market.bars(store, "AAA", MIN, EventFilter(start=at(14, 31, 0),
                                                        end=at(14, 35, 0)), 1000)  # fmt: skip
    assert [r["ts_ns"] for r in rows] == [at(14, 31, 0)]


def test_limit_keeps_the_latest_bars(store: DuckDBStore) -> None:
    rows, truncated = market.bars(store, "AAA", S, EventFilter(), 2)
    assert truncated
    assert [r["ts_ns"] for r in rows] == [at(14, 31, 0), at(14, 35, 0)]
    rows, truncated = market.bars(store, "AAA", S, EventFilter(), 5)
    assert not truncated and len(rows) == 5


def test_pair_closes_on_common_bar_times(store: DuckDBStore) -> None:
    """AAA and BBB trade in the same minute only at 14:30: close AAA 10.0 (t5), BBB 50."""
    assert market.pair_closes(store, "AAA", "BBB", MIN, EventFilter(), 100) == [
        {"ts_ns": at(14, 30, 0), "a_close": 10.0, "b_close": 50.0}
    ]
    assert market.pair_closes(store, "AAA", "BBB", S, EventFilter(), 100) == []
    assert market.pair_closes(store, "BBB", "AAA", 5 * MIN, EventFilter(), 100) == [
        {"ts_ns": at(14, 30, 0), "a_close": 50.0, "b_close": 12.5}
    ]


def test_top_of_book(store: DuckDBStore) -> None:
    q = market.top_of_book(store, "AAA")
    assert q == {"ts": at(14, 30, 50), "venue": "Y", "bid": 10.8, "ask": 11.0, "bid_size": 1.0,
                 "ask_size": 2.0, "event_id": "q3"}  # fmt: skip
    q = market.top_of_book(store, "AAA", "X")
    assert q is not None and (q["ts"], q["bid"], q["ask"], q["event_id"]) == (
        at(14, 30, 40), 10.95, 11.05, "q2")  # fmt: skip
    assert market.top_of_book(store, "AAA", "Q") is None
    assert market.top_of_book(store, "NOPE") is None
    venues = market.book_by_venue(store, "AAA")
    assert [(v["venue"], v["event_id"]) for v in venues] == [("X", "q2"), ("Y", "q3")]


class _Tee:
    """Commits every batch of the pipeline to both stores; reads from DuckDB."""

    def __init__(self, duck: DuckDBStore, pg: PostgresStore) -> None:
        self.duck, self.pg = duck, pg
        self.url, self.sql = duck.url, duck.sql

    def commit(self, batch: Any) -> None:
        self.pg.commit(batch)
        self.duck.commit(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.duck, name)


FILTERS = (
    EventFilter(),
    EventFilter(venue="X"),
    EventFilter(start=at(14, 30, 0, 600), end=at(14, 30, 2, 500)),
)


@pytest.mark.integration
def test_same_answers_on_postgresql(tmp_path: Path) -> None:
    """The same SQL on PostgreSQL (real server) gives the same bars, closes and books."""
    log = tmp_path / "md.jsonl"
    log.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    cfg = Config()
    cfg.sources = [SourceConfig(name="jsonl", format="jsonl")]
    with fresh_database() as url:
        duck = DuckDBStore(str(tmp_path / "t.duckdb"))
        pg = PostgresStore(url)
        try:
            replay(cfg, plan_replay(cfg, [str(log)], "jsonl"), _Tee(duck, pg))  # type: ignore[arg-type]
            for width in (S, MIN, 5 * MIN):
                for flt in FILTERS:
                    d = market.bars(duck, "AAA", width, flt, 1000)
                    assert market.bars(pg, "AAA", width, flt, 1000) == (approx_rows(d[0]), d[1])
                d_pairs = market.pair_closes(duck, "AAA", "BBB", width, EventFilter(), 100)
                assert market.pair_closes(pg, "AAA", "BBB", width, EventFilter(), 100) == d_pairs
            assert market.bars(pg, "AAA", S, EventFilter(), 2) == (
                approx_rows(market.bars(duck, "AAA", S, EventFilter(), 2)[0]), True)  # fmt: skip
            for venue in (None, "X", "Q"):
                assert market.top_of_book(pg, "AAA", venue) == market.top_of_book(
                    duck, "AAA", venue
                )
            assert market.book_by_venue(pg, "AAA") == market.book_by_venue(duck, "AAA")
        finally:
            duck.close()
            pg.close()
