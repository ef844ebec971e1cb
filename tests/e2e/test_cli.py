"""The real ``tradelog`` console script, run as a subprocess: exit codes, one-line errors,
the replay summary, config files and environment overrides.

Exit codes: 0 ok, 2 usage (bad arguments, missing files), 3 config, 4 runtime.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tradelog.storage.duckdb_store import DuckDBStore

pytestmark = pytest.mark.e2e

TRADELOG = Path(sys.executable).parent / "tradelog"

# 4 events (quote, order_new, ack, fill), 1 malformed line, 1 negative quantity
ENGINE = """\
{"kind":"quote","ts":"2024-01-15T14:30:00Z","symbol":"AAPL","venue":"XNAS","bid":100.00,"ask":100.02}
{"kind":"order_new","ts":"2024-01-15T14:30:01Z","order_id":"O1","symbol":"AAPL","venue":"XNAS","side":"buy","qty":10,"price":100.02}
{"kind":"order_ack","ts":"2024-01-15T14:30:01.004Z","order_id":"O1"}
{"kind":"fill","ts":"2024-01-15T14:30:01.050Z","order_id":"O1","exec_id":"E1","last_qty":10,"last_px":100.02,"leaves_qty":0}
{"kind":"fill", "oops
{"kind":"order_new","ts":"2024-01-15T14:30:02Z","order_id":"O2","symbol":"AAPL","side":"buy","qty":-1,"price":100.0}
"""

# 3 events of another order, key=value
KV = """\
ts=2024-01-15T14:31:00Z kind=order_new order_id=K1 symbol=MSFT side=sell qty=5 price=400
ts=2024-01-15T14:31:00.002Z kind=order_ack order_id=K1
ts=2024-01-15T14:31:00.500Z kind=order_cancelled order_id=K1
"""


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``tradelog args…`` in ``cwd`` with a clean environment (no TRADELOG_* variables, no
    terminal width hints) plus ``env``."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TRADELOG_") and k not in ("COLUMNS", "LINES")
    }
    base.update(env or {})
    return subprocess.run(
        [str(TRADELOG), *args],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The stderr of a failed command: exactly one line starting with ``error:``."""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def summary_count(stdout: str, label: str) -> int:
    """The number on the summary row ``label`` (box characters vary with the encoding)."""
    m = re.search(rf"{re.escape(label)}\W+([\d,]+)\b", stdout)
    assert m is not None, f"no {label!r} row in:\n{stdout}"
    return int(m.group(1).replace(",", ""))


def store_counts(path: Path) -> dict[str, int]:
    store = DuckDBStore(str(path), read_only=True)
    try:
        row = store.query(
            "SELECT (SELECT count(*) FROM events) AS events, "
            "(SELECT count(*) FROM rejects) AS rejects, (SELECT count(*) FROM orders) AS orders"
        ).to_pylist()[0]
    finally:
        store.close()
    return {k: int(v) for k, v in row.items()}


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "engine.jsonl").write_text(ENGINE, encoding="utf-8")
    (tmp_path / "logs" / "kv.log").write_text(KV, encoding="utf-8")
    return tmp_path


# ---- replay ----------------------------------------------------------------


def test_replay_prints_the_summary_and_exits_0_despite_rejects(logs: Path) -> None:
    db = logs / "out" / "t.duckdb"
    proc = run(
        "replay", "--format", "jsonl", "--store", f"duckdb:///{db}", "logs/engine.jsonl", cwd=logs
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert summary_count(out, "files") == 1
    assert summary_count(out, "lines read") == 6
    assert summary_count(out, "events stored") == 4
    assert summary_count(out, "rejects stored") == 2
    assert summary_count(out, "rejects: malformed") == 1
    assert summary_count(out, "rejects: invalid_quantity") == 1
    assert summary_count(out, "events: fill") == 1
    assert summary_count(out, "duplicates dropped") == 0
    assert summary_count(out, "ignored") == 0
    assert "accounting mismatch" not in out
    assert store_counts(db) == {"events": 4, "rejects": 2, "orders": 1}


def test_replay_missing_file_is_a_usage_error(logs: Path) -> None:
    proc = run("replay", "--format", "jsonl", "missing.jsonl", cwd=logs)
    assert proc.returncode == 2
    assert one_line_error(proc) == "error: missing.jsonl: no such file"
    assert not (logs / "tradelog-data").exists()  # nothing was created


def test_replay_missing_file_with_a_long_path_is_still_one_line(logs: Path) -> None:
    deep = logs / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    proc = run("replay", "--format", "jsonl", str(deep / "missing.jsonl"), cwd=logs)
    assert proc.returncode == 2
    assert one_line_error(proc) == f"error: {deep / 'missing.jsonl'}: no such file"


def test_error_messages_are_not_rich_markup(logs: Path) -> None:
    proc = run("replay", "--format", "jsonl", "logs/x[/]y.jsonl", cwd=logs)
    assert proc.returncode == 2
    assert "x[/]y.jsonl" in one_line_error(proc)


def test_replay_unknown_format_is_a_usage_error(logs: Path) -> None:
    proc = run("replay", "--format", "xml", "logs/engine.jsonl", cwd=logs)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert line.startswith("error: --format xml: expected one of ")
    for fmt in ("jsonl", "logfmt", "csv", "fix", "regex"):
        assert fmt in line


def test_replay_format_and_source_together_is_a_usage_error(logs: Path) -> None:
    proc = run("replay", "--format", "jsonl", "--source", "engine", "logs/engine.jsonl", cwd=logs)
    assert proc.returncode == 2
    assert "not both" in one_line_error(proc)


def test_replay_without_format_or_config_is_a_usage_error(logs: Path) -> None:
    proc = run("replay", "logs/engine.jsonl", cwd=logs)
    assert proc.returncode == 2
    assert "--format" in one_line_error(proc)


# ---- config ----------------------------------------------------------------


def test_check_config_names_the_bad_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[sources]]\nname = "engine"\npth = "logs/*.jsonl"\n', encoding="utf-8")
    proc = run("check-config", "-c", str(cfg), cwd=tmp_path)
    assert proc.returncode == 3
    assert "sources[0].pth: unknown key" in one_line_error(proc)


def test_check_config_with_a_bad_value_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[sources]]\nname = "engine"\nformat = "xml"\n', encoding="utf-8")
    proc = run("check-config", "-c", str(cfg), cwd=tmp_path)
    assert proc.returncode == 3
    assert "sources[0].format" in one_line_error(proc)


def test_check_config_bad_value_message_is_clean(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[sources]]\nname = "engine"\nformat = "xml"\n', encoding="utf-8")
    proc = run("check-config", "-c", str(cfg), cwd=tmp_path)
    assert one_line_error(proc) == "error: config: sources[0].format: invalid enum value 'xml'"


def test_check_config_missing_file(tmp_path: Path) -> None:
    proc = run("check-config", "-c", "nope.toml", cwd=tmp_path)
    assert proc.returncode == 3
    assert "nope.toml" in one_line_error(proc)


def test_check_config_good(tmp_path: Path) -> None:
    cfg = tmp_path / "good.toml"
    cfg.write_text(
        '[[sources]]\nname = "engine"\nformat = "jsonl"\npath = "logs/*.jsonl"\n',
        encoding="utf-8",
    )
    proc = run("check-config", "-c", str(cfg), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok ")
    assert "1 source(s)" in proc.stdout
    assert "engine" in proc.stdout


GLOB_CONFIG = """
[store]
url = "duckdb:///./data/cfg.duckdb"

[[sources]]
name = "engine"
format = "jsonl"
path = "logs/*.jsonl"

[[sources]]
name = "kv"
format = "logfmt"
path = "logs/*.log"
"""


def test_replay_with_a_config_maps_files_to_sources_by_glob(logs: Path) -> None:
    (logs / "cfg.toml").write_text(GLOB_CONFIG, encoding="utf-8")
    # run from elsewhere: globs and the store path are relative to the config file
    elsewhere = logs / "elsewhere"
    elsewhere.mkdir()
    proc = run(
        "replay", "-c", "../cfg.toml", "../logs/kv.log", "../logs/engine.jsonl", cwd=elsewhere
    )
    assert proc.returncode == 0, proc.stderr
    assert summary_count(proc.stdout, "files") == 2
    assert summary_count(proc.stdout, "lines read") == 9
    db = logs / "data" / "cfg.duckdb"
    assert store_counts(db) == {"events": 7, "rejects": 2, "orders": 2}
    store = DuckDBStore(str(db), read_only=True)
    try:
        sources = store.statistics()["sources"]
        by_source = store.query(
            "SELECT source, list(DISTINCT order_id ORDER BY order_id) AS orders FROM events "
            "WHERE order_id IS NOT NULL GROUP BY source ORDER BY source"
        ).to_pylist()
    finally:
        store.close()
    assert {k: (v["lines_read"], v["events"], v["rejects"]) for k, v in sources.items()} == {
        "engine": (6, 4, 2),
        "kv": (3, 3, 0),
    }
    assert all(v["reconciled"] for v in sources.values())
    assert by_source == [
        {"source": "engine", "orders": ["O1"]},
        {"source": "kv", "orders": ["K1"]},
    ]


def test_replay_file_matching_no_source_glob_is_an_error(logs: Path) -> None:
    (logs / "cfg.toml").write_text(GLOB_CONFIG, encoding="utf-8")
    (logs / "other.txt").write_text("x\n", encoding="utf-8")
    proc = run("replay", "-c", "cfg.toml", "other.txt", cwd=logs)
    assert proc.returncode == 2
    assert "other.txt" in one_line_error(proc)
    assert "--source" in proc.stderr


# ---- environment -------------------------------------------------------------


def test_store_url_from_the_environment(logs: Path) -> None:
    db = logs / "env" / "from_env.duckdb"
    proc = run(
        "replay",
        "--format",
        "jsonl",
        "logs/engine.jsonl",
        cwd=logs,
        env={"TRADELOG_STORE_URL": f"duckdb:///{db}"},
    )
    assert proc.returncode == 0, proc.stderr
    assert store_counts(db) == {"events": 4, "rejects": 2, "orders": 1}
    assert not (logs / "tradelog-data").exists()  # the default store was not used


def test_store_option_wins_over_the_environment(logs: Path) -> None:
    env_db = logs / "env.duckdb"
    opt_db = logs / "opt.duckdb"
    proc = run(
        "replay",
        "--format",
        "jsonl",
        "--store",
        f"duckdb:///{opt_db}",
        "logs/engine.jsonl",
        cwd=logs,
        env={"TRADELOG_STORE_URL": f"duckdb:///{env_db}"},
    )
    assert proc.returncode == 0, proc.stderr
    assert store_counts(opt_db)["events"] == 4
    assert not env_db.exists()


def test_unknown_environment_variable_is_a_config_error(logs: Path) -> None:
    proc = run(
        "replay",
        "--format",
        "jsonl",
        "logs/engine.jsonl",
        cwd=logs,
        env={"TRADELOG_NO_SUCH_KEY": "1"},
    )
    assert proc.returncode == 3
    assert "TRADELOG_NO_SUCH_KEY" in one_line_error(proc)


SERVICE_LIBRARIES = ("fastapi", "nats", "prometheus_client", "psycopg", "uvicorn", "websockets")


def loaded_libraries(modules: str, cwd: Path) -> list[str]:
    """Which of ``SERVICE_LIBRARIES`` a fresh interpreter has loaded after importing
    ``modules`` (a comma-separated import list)."""
    probe = (
        f"import json, sys, {modules}\n"
        f"print(json.dumps(sorted(m for m in {SERVICE_LIBRARIES!r} if m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded: list[str] = json.loads(out.stdout)
    return loaded


def test_replay_and_check_config_do_not_load_the_service_libraries(tmp_path: Path) -> None:
    """The CLI and the replay path import no web framework or network client: ``--help``,
    ``check-config`` and ``replay`` start without paying for them (cli.py's docstring)."""
    assert loaded_libraries("tradelog.app, tradelog.cli, tradelog.config", tmp_path) == []


def test_the_service_wiring_loads_them(tmp_path: Path) -> None:
    """The other side of the test above: the probe sees them once ``run``'s wiring is
    imported (so an empty list there means something)."""
    assert loaded_libraries("tradelog.service", tmp_path) == sorted(SERVICE_LIBRARIES)
