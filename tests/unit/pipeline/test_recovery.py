"""Crash and restart: a pipeline that dies after some commits (no final state snapshot) and
is reopened on the same store (snapshot restored, stored events after it replayed) ends
with exactly the store of one uninterrupted run; and everything committed before the
crash is recognised as a duplicate when fed again, also once the dedup index has moved
ids from its recent dict into sorted runs."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from tradelog.model.events import Event, EventKind, Reject, RejectReason, Side
from tradelog.model.ids import id_hash
from tradelog.model.reference import AccountInfo, ReferenceData, VenueInfo
from tradelog.pipeline.batch import CleanChunk, StreamInfo
from tradelog.pipeline.runner import Committer, Pipeline, PipelineSettings
from tradelog.stages.dedup import IdIndex
from tradelog.storage.duckdb_store import DuckDBStore

MS = 1_000_000
T0 = 1_741_012_200 * 1_000_000_000  # Monday 2025-03-03 14:30:00Z = 09:30 in New York
HORIZON_MS = 60_000
TS_INGEST = T0 + 3_600_000 * MS  # after every event: no "future" clock skew
SYMBOLS = {"AAPL": 100.0, "MSFT": 400.0}
VENUES = ("XNAS", "BATS")
CHUNK_EVENTS = 13
CHUNKS_PER_BATCH = 2

REFERENCE = ReferenceData(
    venues={
        "XNAS": VenueInfo(time_zone="America/New_York", open="09:30", close="16:00"),
        "BATS": VenueInfo(time_zone="UTC", open="00:00", close="14:31"),  # closes early
    },
    accounts={"A1": AccountInfo(owner="W"), "A2": AccountInfo(owner="W"), "A3": AccountInfo()},
)
SETTINGS = dict(batch_events=CHUNK_EVENTS * CHUNKS_PER_BATCH + 4, snapshot_interval_s=1e9)


# ---- the stream ---------------------------------------------------------------------------


def build_stream(seed: int = 11, n_orders: int = 72) -> list[Event]:
    """A deterministic day of quotes, trades and order lifecycles with every oddity the
    stages mark: negative latencies, big slippage, large sizes after enough observations,
    duplicate exec ids, overfills, fills racing cancels, late events after the end, orders
    replaced under a new id, cancel rejects, unknown orders, off-session activity."""
    rnd = random.Random(seed)
    plan: list[tuple[float, int, dict[str, Any]]] = []
    tick = itertools.count()

    def at(t_ms: float, kind: str, ts_ms: float | None = None, **fields: Any) -> None:
        ts = T0 + int((t_ms if ts_ms is None else ts_ms) * MS)
        plan.append((t_ms, next(tick), {"kind": EventKind(kind), "ts": ts, **fields}))

    for sym, mid in SYMBOLS.items():
        for venue in VENUES:
            t = rnd.uniform(0, 50)
            while t < HORIZON_MS:
                m = mid * (1 + rnd.uniform(-0.003, 0.003))
                at(t, "quote", symbol=sym, venue=venue, bid=round(m - 0.05, 2),
                   ask=round(m + 0.05, 2), bid_size=float(rnd.randint(1, 9) * 100))  # fmt: skip
                t += rnd.uniform(200, 900)
        for _ in range(12):
            at(rnd.uniform(0, HORIZON_MS), "market_trade", symbol=sym, venue="XNAS",
               price=round(mid * (1 + rnd.uniform(-0.002, 0.002)), 2),
               qty=float(rnd.randint(1, 50)), side=rnd.choice([Side.BUY, Side.SELL]))  # fmt: skip

    for n in range(n_orders):
        oid = f"O{n}"
        sym = rnd.choice(list(SYMBOLS))
        mid = SYMBOLS[sym]
        venue = rnd.choice(VENUES)
        side = rnd.choice([Side.BUY, Side.SELL])
        qty = 100_000.0 if n in (50, 66) else float(rnd.choice([100, 200, 300, 500]))
        price = round(mid * (1 + rnd.uniform(-0.002, 0.002)), 2)
        # orders start in order of n, so the large ones come after 20+ sizes of a symbol
        t = 200 + n * (HORIZON_MS - 10_000) / n_orders + rnd.uniform(0, 300)
        at(t, "order_new", order_id=oid, symbol=sym, venue=venue, side=side, qty=qty,
           price=price, order_type="limit", tif="day", account_id=rnd.choice(["A1", "A2", "A3"]),
           strategy_id=rnd.choice(["S1", "S2"]))  # fmt: skip
        skewed = n % 9 == 4
        at(t + rnd.uniform(0.3, 3), "order_ack", ts_ms=t - 1.5 if skewed else None,
           order_id=oid, venue_order_id=f"V{n}")  # fmt: skip
        sign = 1 if side is Side.BUY else -1
        px_cost = round(mid * (1 + sign * 0.012), 2)  # ~120 bps of slippage
        scenario = n % 8
        t1 = t + rnd.uniform(5, 400)
        if scenario == 0:  # two fills, the second at a costly price
            at(t1, "fill", order_id=oid, exec_id=f"X{n}a", last_qty=qty / 2, last_px=price,
               liquidity="maker", fee=0.1)  # fmt: skip
            at(t1 + 50, "fill", order_id=oid, exec_id=f"X{n}b", last_qty=qty / 2,
               last_px=px_cost, leaves_qty=0.0, liquidity="taker", fee=0.2)  # fmt: skip
        elif scenario == 1:  # partial fill, then cancelled
            at(t1, "fill", order_id=oid, exec_id=f"X{n}a", last_qty=qty / 4, last_px=price)
            at(t1 + 20, "order_cancel_request", order_id=oid)
            at(t1 + 27, "order_cancelled", order_id=oid)
        elif scenario == 2:  # cancelled unfilled; a very late duplicate cancel after the end
            at(t1, "order_cancel_request", order_id=oid)
            at(t1 + 4, "order_cancelled", order_id=oid)
            at(t1 + 9_000, "order_cancelled", order_id=oid)
        elif scenario == 3:
            at(t1, "order_rejected", order_id=oid, reason="risk limit")
        elif scenario == 4:  # replaced under a new id, then filled under the new id
            at(t1, "order_replace", order_id=f"{oid}r", orig_order_id=oid, qty=qty / 2,
               price=price)  # fmt: skip
            at(t1 + 30, "fill", order_id=f"{oid}r", exec_id=f"X{n}a", last_qty=qty / 2,
               last_px=price)  # fmt: skip
        elif scenario == 5:  # replace refused, then expired
            at(t1, "order_replace", order_id=oid, qty=qty * 2, price=price)
            at(t1 + 5, "order_cancel_rejected", order_id=oid, reason="too late")
            at(t1 + 8_000, "order_expired", order_id=oid)
        elif scenario == 6:  # the same execution logged twice, then an overfill
            at(t1, "fill", order_id=oid, exec_id=f"X{n}a", last_qty=qty / 2, last_px=price)
            at(t1 + 1, "fill", order_id=oid, exec_id=f"X{n}a", last_qty=qty / 2, last_px=price)
            at(t1 + 40, "fill", order_id=oid, exec_id=f"X{n}b", last_qty=qty, last_px=price)
        else:  # a fill racing the cancel, and a late ack long after the end
            at(t1, "order_cancel_request", order_id=oid)
            at(t1 + 3, "order_cancelled", order_id=oid)
            at(t1 + 5, "fill", order_id=oid, exec_id=f"X{n}a", last_qty=qty, last_px=price)
            at(t1 + 7_000, "order_ack", order_id=oid)
        if n % 10 == 3:  # an execution report for an order we never saw
            at(t1 + 2, "fill", order_id=f"GHOST{n}", symbol=sym, last_qty=5.0, last_px=mid,
               leaves_qty=0.0)  # fmt: skip
    at(HORIZON_MS - 5, "system", message="eod", severity="info", account_id="A1")
    at(HORIZON_MS - 4, "position", symbol="AAPL", position=-3.0, account_id="A2")
    # off session: 21:00Z is 16:00 in New York
    at(HORIZON_MS, "order_new", ts_ms=6.5 * 3_600_000, order_id="LATE", symbol="AAPL",
       venue="XNAS", side=Side.BUY, qty=100.0, price=100.0)  # fmt: skip

    plan.sort(key=lambda p: (p[0], p[1]))
    return [
        Event(
            event_id=f"ev{i}",
            ts_ingest=TS_INGEST,
            source="sim",
            src_ref="sim.log",
            src_offset=i * 100,
            raw=f"line {i}",
            **fields,
        )
        for i, (_, _, fields) in enumerate(plan)
    ]


STREAM = StreamInfo(source="sim", stream="fp:sim", src_ref="sim.log")


def build_batches(seed: int = 11) -> list[list[CleanChunk]]:
    """Fresh events (the stages enrich them in place) in chunks with a reject now and then,
    grouped into batches."""
    events = build_stream(seed)
    chunks = []
    for c, i in enumerate(range(0, len(events), CHUNK_EVENTS)):
        part = events[i : i + CHUNK_EVENTS]
        end = part[-1].src_offset + 100
        rejects = []
        if c % 3 == 1:
            rejects.append(
                Reject(reject_id=f"r-{c}", source="sim", src_ref="sim.log", src_offset=end - 50,
                       reason=RejectReason.MALFORMED, detail="bad", raw="{", ts_ingest=TS_INGEST)
            )  # fmt: skip
        chunks.append(CleanChunk(STREAM, part, rejects, ignored=c % 2, end=end))
    return [chunks[i : i + CHUNKS_PER_BATCH] for i in range(0, len(chunks), CHUNKS_PER_BATCH)]


N_BATCHES = len(build_batches())


# ---- running ---------------------------------------------------------------------------------


class SmallIndexPipeline(Pipeline):
    """The runner's own sizing rule (recent ids > ids in flight to the store) without its
    16 Ki floor, so the dedup index moves ids into sorted runs every few batches."""

    def _new_index(self, hashes: npt.NDArray[np.int64] | None) -> IdIndex:
        s = self.settings
        keep = (s.max_pending_batches + 2) * s.batch_events
        return IdIndex(hashes, recent_limit=2 * keep, keep_recent=keep)


def feed(
    pipeline: Pipeline, store: DuckDBStore, batches: list[list[CleanChunk]], snapshot_at: int = -1
) -> None:
    """Processes and commits the batches (through the real Committer thread); a state
    snapshot only with batch ``snapshot_at``."""
    committer = Committer(store, pipeline.settings.max_pending_batches)
    try:
        for i, chunks in enumerate(batches):
            committer.submit(pipeline.process(chunks, force_snapshot=i == snapshot_at))
        committer.flush()
    finally:
        committer.close()


def open_pipeline(path: str, cls: type[Pipeline] = Pipeline) -> tuple[Pipeline, DuckDBStore]:
    store = DuckDBStore(path)
    pipeline = cls(store, PipelineSettings(**SETTINGS), reference=REFERENCE)  # type: ignore[arg-type]
    pipeline.open()
    return pipeline, store


def crash(store: DuckDBStore) -> None:
    """Drops the store the way a killed process does: no CHECKPOINT, no final snapshot."""
    store._con.close()


def dump(store: DuckDBStore) -> dict[str, list[dict[str, Any]]]:
    q = store.query
    return {
        "events": q("SELECT * EXCLUDE (ts_ingest) FROM events ORDER BY seq").to_pylist(),
        "orders": q("SELECT * FROM orders ORDER BY order_id").to_pylist(),
        "anomalies": q("SELECT * FROM anomalies ORDER BY event_id, type").to_pylist(),
        "rejects": q("SELECT * EXCLUDE (ts_ingest) FROM rejects ORDER BY reject_id").to_pylist(),
        "positions": q(
            "SELECT * EXCLUDE (updated_ns) FROM source_positions ORDER BY stream"
        ).to_pylist(),
    }


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """The store of one uninterrupted run over the whole stream."""
    path = str(tmp_path_factory.mktemp("baseline") / "base.duckdb")
    pipeline, store = open_pipeline(path)
    feed(pipeline, store, build_batches())
    result = dump(store)
    store.close()
    return result


def assert_same_store(got: dict[str, list[dict[str, Any]]], want: dict[str, Any]) -> None:
    for table, rows in want.items():
        assert len(got[table]) == len(rows), table
        for g, w in zip(got[table], rows, strict=True):
            assert g == w, table


# ---- the baseline exercises what recovery must restore -------------------------------------


def test_the_stream_exercises_the_stateful_stages(baseline: dict[str, Any]) -> None:
    types = {a["type"] for a in baseline["anomalies"]}
    assert {
        "clock_skew", "slippage", "large_size", "duplicate_exec_id", "overfill",
        "event_after_terminal", "unknown_order", "order_rejected", "cancel_rejected",
        "off_session",
    } <= types  # fmt: skip
    statuses = {o["status"] for o in baseline["orders"]}
    assert statuses == {"filled", "cancelled", "rejected", "expired"}
    events = baseline["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert any(e["latency_ms"] is not None and e["latency_ms"] < 0 for e in events)
    assert any(e["slippage_bps"] is not None for e in events)
    assert any(e["arrival_mid"] is not None for e in events if e["kind"] == "order_new")
    assert any(e["owner_id"] == "W" for e in events)
    assert any(o["aliases"] == "O4r" for o in baseline["orders"])
    assert any(o["slippage_bps"] is not None for o in baseline["orders"])


# ---- crash and restart ------------------------------------------------------------------------


CRASH_CASES = [
    pytest.param(N_BATCHES // 3, -1, id="no-snapshot-at-all"),
    pytest.param(N_BATCHES // 2, 2, id="old-snapshot"),
    pytest.param(2 * N_BATCHES // 3, 2 * N_BATCHES // 3 - 2, id="recent-snapshot"),
    pytest.param(N_BATCHES // 2, N_BATCHES // 2 - 1, id="snapshot-at-last-commit"),
    pytest.param(1, -1, id="crash-after-first-batch"),
]


@pytest.mark.parametrize(("crash_after", "snapshot_at"), CRASH_CASES)
def test_restart_gives_the_store_of_an_uninterrupted_run(
    tmp_path: Path, baseline: dict[str, Any], crash_after: int, snapshot_at: int
) -> None:
    path = str(tmp_path / "crash.duckdb")
    batches = build_batches()
    pipeline, store = open_pipeline(path)
    feed(pipeline, store, batches[:crash_after], snapshot_at=snapshot_at)
    seq_before = pipeline.state.seq
    open_orders = {
        oid for oid, o in pipeline.state.orders.items() if not o.is_terminal and o.ts_new
    }
    crash(store)
    del pipeline

    pipeline, store = open_pipeline(path)
    try:
        assert pipeline.state.seq == seq_before  # caught up to the last commit
        restored_open = {
            oid for oid, o in pipeline.state.orders.items() if not o.is_terminal and o.ts_new
        }
        assert restored_open == open_orders
        feed(pipeline, store, build_batches()[crash_after:])
        assert_same_store(dump(store), baseline)
    finally:
        store.close()


def test_orders_open_across_the_crash_point() -> None:
    """The crash points above cut through order lifecycles (else recovery is trivial)."""
    batches = build_batches()
    for crash_after, *_ in (c.values for c in CRASH_CASES):
        if crash_after == 1:
            continue
        before = {e.order_id for b in batches[:crash_after] for c in b for e in c.events}
        after = {e.order_id for b in batches[crash_after:] for c in b for e in c.events}
        assert len((before & after) - {None}) >= 2, crash_after


def test_restart_twice(tmp_path: Path, baseline: dict[str, Any]) -> None:
    path = str(tmp_path / "twice.duckdb")
    cuts = [0, N_BATCHES // 4, N_BATCHES // 2, N_BATCHES]
    for i, (lo, hi) in enumerate(itertools.pairwise(cuts)):
        pipeline, store = open_pipeline(path)
        feed(pipeline, store, build_batches()[lo:hi], snapshot_at=0 if i == 1 else -1)
        if hi < N_BATCHES:
            crash(store)
        else:
            assert_same_store(dump(store), baseline)
            store.close()


def test_restart_after_a_killed_process(tmp_path: Path, baseline: dict[str, Any]) -> None:
    """The first run is a real process killed with os._exit right after its commits."""
    path = str(tmp_path / "killed.duckdb")
    crash_after = N_BATCHES // 2
    script = textwrap.dedent(
        f"""
        import os
        from tests.unit.pipeline.test_recovery import build_batches, feed, open_pipeline
        pipeline, store = open_pipeline({path!r})
        feed(pipeline, store, build_batches()[:{crash_after}], snapshot_at=3)
        os._exit(0)
        """
    )
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, timeout=120, check=False
    )
    assert done.returncode == 0
    pipeline, store = open_pipeline(path)
    try:
        assert store.max_seq() == pipeline.state.seq > 0
        feed(pipeline, store, build_batches()[crash_after:])
        assert_same_store(dump(store), baseline)
    finally:
        store.close()


# ---- dedup after a restart ------------------------------------------------------------------


def _ids(batches: list[list[CleanChunk]]) -> tuple[int, int]:
    events = sum(len(c.events) for b in batches for c in b)
    rejects = sum(len(c.rejects) for b in batches for c in b)
    return events, rejects


def test_refed_events_are_duplicates_after_restart_and_index_flushes(
    tmp_path: Path, baseline: dict[str, Any]
) -> None:
    path = str(tmp_path / "dedup.duckdb")
    crash_after = N_BATCHES // 2
    pipeline, store = open_pipeline(path, SmallIndexPipeline)
    index = pipeline.index
    assert index.recent_limit * 3 < _ids(build_batches())[0]  # it will flush several times
    feed(pipeline, store, build_batches()[:crash_after])
    # within the first run: batch 0 again, its ids long moved from the dict to the runs
    assert all(
        id_hash(e.event_id) not in index.recent for c in build_batches()[0] for e in c.events
    )
    assert len(index) >= _ids(build_batches()[:crash_after])[0]
    feed(pipeline, store, build_batches()[:1])
    first_events, first_rejects = _ids(build_batches()[:1])
    assert pipeline.stats.duplicates == first_events + first_rejects
    crash(store)

    pipeline, store = open_pipeline(path, SmallIndexPipeline)
    try:
        stored = len(store.query("SELECT event_id FROM events"))
        stored_rejects = len(store.query("SELECT reject_id FROM rejects"))
        # everything committed before the crash, fed again: all duplicates, nothing stored
        feed(pipeline, store, build_batches()[:crash_after])
        n_events, n_rejects = _ids(build_batches()[:crash_after])
        assert pipeline.stats.duplicates == n_events + n_rejects
        assert (pipeline.stats.events, pipeline.stats.rejects) == (0, 0)
        assert len(store.query("SELECT event_id FROM events")) == stored
        assert len(store.query("SELECT reject_id FROM rejects")) == stored_rejects

        # the rest is new; then part of it again, after the index flushed it to a run
        feed(pipeline, store, build_batches()[crash_after:])
        assert pipeline.stats.events == _ids(build_batches()[crash_after:])[0]
        early_new = [e.event_id for c in build_batches()[crash_after] for e in c.events]
        assert all(id_hash(i) not in pipeline.index.recent for i in early_new)
        again = build_batches()[crash_after : crash_after + 3]
        before = pipeline.stats.duplicates
        feed(pipeline, store, again)
        assert pipeline.stats.duplicates - before == sum(_ids(again))

        got = dump(store)
        for table in ("events", "orders", "anomalies", "rejects"):
            assert got[table] == baseline[table], table
        (pos,) = got["positions"]
        (base_pos,) = baseline["positions"]
        refed = first_events + first_rejects + n_events + n_rejects + sum(_ids(again))
        assert pos["duplicates"] == base_pos["duplicates"] + refed
        assert (pos["events"], pos["rejects"]) == (base_pos["events"], base_pos["rejects"])
        assert (
            pos["lines_read"] == pos["events"] + pos["rejects"] + pos["duplicates"] + pos["ignored"]
        )
    finally:
        store.close()
