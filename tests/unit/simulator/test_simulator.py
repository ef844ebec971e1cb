"""The simulator: same bytes for the same seed, every line readable by the bundled config
except the lines it breaks on purpose, and a ground truth that adds up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tradelog.app import make_decoder
from tradelog.config import load_config
from tradelog.model.events import Reject
from tradelog.sources.file_replay import identify
from tradelog.sources.simulator import FILES, PATTERNS, Simulator
from tradelog.sources.simulator.strategies import Book

CONFIG = Path(__file__).parents[3] / "src" / "tradelog" / "samples" / "simulator.toml"
OUTPUTS = (*FILES.values(), "ground_truth.json", "truth_summary.json")


@pytest.fixture(scope="module")
def run_a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("a")
    Simulator(inject=list(PATTERNS)).run(out, duration_s=20, rate=320, seed=11, realtime=False)
    return out


def test_same_seed_same_bytes(run_a: Path, tmp_path: Path) -> None:
    Simulator(inject=list(PATTERNS)).run(tmp_path, duration_s=20, rate=320, seed=11)
    for name in OUTPUTS:
        assert (tmp_path / name).read_bytes() == (run_a / name).read_bytes(), name


def test_other_seed_other_market(run_a: Path, tmp_path: Path) -> None:
    Simulator(inject=list(PATTERNS)).run(tmp_path, duration_s=20, rate=320, seed=12)
    assert (tmp_path / FILES["mm_engine"]).read_bytes() != (run_a / FILES["mm_engine"]).read_bytes()


def _decode(path: Path, source: str) -> tuple[list[Any], list[Reject], int]:
    cfg = load_config(CONFIG, environ={})
    src = next(s for s in cfg.sources if s.name == source)
    decoder = make_decoder(cfg, src, identify(str(path)))
    chunk, _ = decoder.decode(path.read_bytes(), 0, final=True, ts_ingest=0)
    return chunk.events, chunk.rejects, chunk.ignored


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def test_every_line_reads_except_the_broken_ones(run_a: Path) -> None:
    truth = json.loads((run_a / "ground_truth.json").read_text())
    bad = truth["bad_lines"]
    assert bad, "a 20 s run breaks a few lines on purpose"
    for source, name in FILES.items():
        path = run_a / name
        data = path.read_bytes()
        events, rejects, ignored = _decode(path, source)
        expected = {
            (b["line"], b["reason"]) for b in bad if b["file"] == name and b["expected"] == "reject"
        }
        got = {(_line_of(data, r.src_offset), str(r.reason)) for r in rejects}
        assert got == expected, name
        lines = data.count(b"\n")
        skipped = sum(1 for b in bad if b["file"] == name and b["expected"] == "ignored")
        if source == "dropcopy":  # logon, heartbeats and logout are session messages
            text = data.decode()
            skipped += sum(text.count(f"|35={t}|") for t in ("A", "0", "5"))
            skipped -= len(expected)  # the damaged heartbeats are rejects, not session skips
        assert ignored == skipped, name
        assert len(events) + len(rejects) + ignored == lines, name


def test_ground_truth_adds_up(run_a: Path) -> None:
    truth = json.loads((run_a / "ground_truth.json").read_text())
    summary = json.loads((run_a / "truth_summary.json").read_text())
    assert [i["type"] for i in truth["injections"]] == list(PATTERNS)
    for inj in truth["injections"]:
        assert inj["start_ns"] <= inj["end_ns"]
        assert truth["start_ns"] <= inj["start_ns"] <= truth["end_ns"]
        if inj["type"] not in ("latency_spike", "volume_spike"):
            assert inj["order_ids"], inj["type"]
    wash = next(i for i in truth["injections"] if i["type"] == "wash_trades")
    assert sorted(wash["accounts"]) == ["ACC-T1", "ACC-T2"]
    orders = summary["orders"]
    assert orders["open"] == 0
    assert sum(orders["by_status"].values()) == orders["sent"]
    fills = summary["fills"]
    for symbol, agg in summary["fills_by_symbol"].items():
        mine = [f for f in fills if f["symbol"] == symbol]
        assert len(mine) == agg["count"]
        assert sum(f["qty"] for f in mine) == pytest.approx(agg["qty"])
    for pos in summary["positions"]:
        mine = [
            f
            for f in fills
            if (f["strategy_id"], f["account_id"], f["symbol"])
            == (pos["strategy_id"], pos["account_id"], pos["symbol"])
        ]
        signed = sum(f["qty"] if f["side"] == "buy" else -f["qty"] for f in mine)
        assert signed == pytest.approx(pos["position"], abs=1e-9)
        assert sum(f["fee"] for f in mine) == pytest.approx(pos["fees"], abs=1e-9)
        assert pos["realized_pnl"] == pytest.approx(pos["realized_gross"] - pos["fees"])
    makers = [f for f in fills if f["liquidity"] == "maker"]
    assert makers and all(f["fee"] <= 0 for f in makers)  # maker rebates
    assert all(f["fee"] >= 0 for f in fills if f["liquidity"] == "taker")


def test_book_average_cost_golden() -> None:
    b = Book()
    b.apply(+1, 10, 100.0, 1.0)
    b.apply(-1, 4, 110.0, 0.5)  # closes 4: +40
    assert (b.qty, b.avg_cost, b.realized_gross) == (6, 100.0, 40.0)
    b.apply(-1, 10, 90.0, 0.25)  # closes 6 at -10 each (-60), opens 4 short at 90
    assert (b.qty, b.avg_cost, b.realized_gross, b.fees) == (-4, 90.0, -20.0, 1.75)
    assert b.realized == -21.75


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rate"):
        Simulator().run(tmp_path, duration_s=1, rate=0)
