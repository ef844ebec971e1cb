"""``tradelog simulate --fast`` then ``tradelog replay -c samples/simulator.toml``: the store
holds the same orders (by final status), fills (count and quantity per symbol) and
realized PnL per strategy × account × symbol as the simulator's own ground truth."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.e2e.test_run_crash import tradelog

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).parents[2] / "src" / "tradelog" / "samples" / "simulator.toml"


def test_replay_matches_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    subprocess.run(
        [tradelog(), "simulate", "--out", str(out), "--duration", "30", "--seed", "5",
         "--fast", "--inject", "all"],
        check=True, capture_output=True,
    )  # fmt: skip
    logs = sorted(str(p) for p in out.iterdir() if p.suffix in (".jsonl", ".log"))
    assert len(logs) == 3
    store = tmp_path / "t.duckdb"
    subprocess.run(
        [tradelog(), "replay", "-q", "-c", str(CONFIG), "--store", f"duckdb://{store}", *logs],
        check=True, capture_output=True,
    )  # fmt: skip
    truth = json.loads((out / "truth_summary.json").read_text())
    ground = json.loads((out / "ground_truth.json").read_text())
    con = duckdb.connect(str(store), read_only=True)

    by_status = dict(con.execute("SELECT status, count(*) FROM orders GROUP BY 1").fetchall())
    assert by_status == truth["orders"]["by_status"]

    fills = {
        sym: (n, qty)
        for sym, n, qty in con.execute(
            "SELECT symbol, count(*), sum(last_qty) FROM events WHERE kind = 'fill' GROUP BY 1"
        ).fetchall()
    }
    assert set(fills) == set(truth["fills_by_symbol"])
    for sym, agg in truth["fills_by_symbol"].items():
        assert fills[sym][0] == agg["count"], sym
        assert fills[sym][1] == pytest.approx(agg["qty"], rel=1e-12), sym

    last = con.execute(
        """SELECT strategy_id, account_id, symbol, pos_after, realized_after - fees_after
           FROM events WHERE kind = 'fill'
           QUALIFY row_number() OVER (PARTITION BY strategy_id, account_id, symbol
                                      ORDER BY seq DESC) = 1"""
    ).fetchall()
    ours = {(s, a, y): (pos, pnl) for s, a, y, pos, pnl in last}
    assert len(ours) == len(truth["positions"])
    for p in truth["positions"]:
        pos, pnl = ours[(p["strategy_id"], p["account_id"], p["symbol"])]
        assert pos == pytest.approx(p["position"], abs=1e-9)
        assert pnl == pytest.approx(p["realized_pnl"], abs=1e-6)

    rejects = con.execute("SELECT count(*) FROM rejects").fetchone()
    expected = sum(1 for b in ground["bad_lines"] if b["expected"] == "reject")
    assert rejects is not None and rejects[0] == expected
