"""Nothing lost, nothing invented (DESIGN §6): for any JSON-lines file, every line read is an
event, a reject, a duplicate or ignored, per source, and the store holds exactly the
distinct valid events and the invalid lines. Replaying the same file stores nothing new."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Replayer

T = "2025-03-03T09:30:{:02d}Z"

# a source config that forces the general path (a rename disables the fast JSON path)
GENERAL_PATH_CONFIG = """
[[sources]]
name = "jsonl"
format = "jsonl"
[sources.fields]
not_in_any_line = "message"
"""


@dataclass(frozen=True)
class Line:
    text: bytes
    valid: bool = False
    event_id: str | None = None  # for valid lines with an id from the source
    blank: bool = False


def _valid(kind: int, second: int, event_id: str | None) -> bytes:
    ts = T.format(second)
    obj: dict[str, object] = [
        {"kind": "system", "ts": ts, "message": "hello", "severity": "info"},
        {"kind": "quote", "ts": ts, "symbol": "AAPL", "bid": 100.0, "ask": 100.5},
        {"kind": "market_trade", "ts": ts, "symbol": "AAPL", "price": 100.2, "qty": 3},
        {"kind": "order_new", "ts": ts, "order_id": f"O{second}", "symbol": "AAPL",
         "side": "buy", "qty": 10, "price": 100.1},
        {"kind": "fill", "ts": ts, "order_id": f"O{second}", "last_qty": 2, "last_px": 100.1,
         "exec_id": f"X{second}"},
        {"kind": "position", "ts": ts, "symbol": "AAPL", "position": -4},
    ][kind]  # fmt: skip
    if event_id is not None:
        obj = {"event_id": event_id, **obj}
    return json.dumps(obj).encode()


@st.composite
def valid_line(draw: st.DrawFn) -> Line:
    event_id = draw(st.one_of(st.none(), st.sampled_from(["E1", "E2", "E3", "E4"])))
    text = _valid(draw(st.integers(0, 5)), draw(st.integers(0, 59)), event_id)
    if draw(st.booleans()) and draw(st.booleans()):
        text += b"\r"
    return Line(text, valid=True, event_id=event_id)


invalid_line = st.sampled_from(
    [
        b"{not json",
        b"[1, 2]",
        b'{"kind": "fill", "ts": "2025-03-03T09:30:00Z", "order_id": "O1"}',  # no last_qty
        b'{"kind": "quote", "ts": "2025-03-03T09:30:00Z", "symbol": "X", "bid": 2, "ask": 1}',
        b'{"kind": "market_trade", "ts": "2025-03-03T09:30:00Z", "symbol": "X", "price": 1, '
        b'"qty": -5}',
        b'{"kind": "order_new", "ts": "yesterday", "order_id": "O", "symbol": "X", '
        b'"side": "buy", "qty": 1, "price": 1}',
        b'{"kind": "teleport", "ts": "2025-03-03T09:30:00Z"}',
        b'{"kind": "system", "ts": "2025-03-03T09:30:00Z", "message": "\xff\xfe"}',
        b'{"event_id": "E1", "kind": "system", "message": "no time"}',
        b'{"kind": "system", "ts": "9999-01-01T00:00:00Z", "message": "far future"}',
    ]
).map(Line)

blank_line = st.sampled_from([b"", b"   ", b"\t", b"\r"]).map(lambda b: Line(b, blank=True))

lines_strategy = st.lists(
    st.one_of(valid_line(), valid_line(), invalid_line, blank_line), min_size=1, max_size=25
)

_names = itertools.count()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    lines=lines_strategy,
    trailing_newline=st.booleans(),
    general_path=st.booleans(),
    repeat_whole_file=st.booleans(),
)
def test_every_line_is_accounted_for(
    replay_into: Replayer,
    lines: list[Line],
    trailing_newline: bool,
    general_path: bool,
    repeat_whole_file: bool,
) -> None:
    if repeat_whole_file:  # the same lines again at other offsets: derived ids differ
        lines = lines + lines
    data = b"\n".join(line.text for line in lines) + (b"\n" if trailing_newline else b"")
    # an empty last line without a newline after it is not a line
    counted = lines if trailing_newline or lines[-1].text else lines[:-1]

    n_lines = len(counted)
    n_ignored = sum(1 for line in counted if line.blank)
    n_invalid = sum(1 for line in counted if not line.valid and not line.blank)
    valid = [line for line in counted if line.valid]
    explicit = {line.event_id for line in valid if line.event_id is not None}
    n_distinct = len(explicit) + sum(1 for line in valid if line.event_id is None)
    n_duplicates = len(valid) - n_distinct

    n = next(_names)
    files: dict[str, str | bytes] = {f"f{n}.jsonl": data}
    config = GENERAL_PATH_CONFIG if general_path else None
    summary, store = replay_into(files, config_text=config, store_name=f"s{n}")

    sources = store.statistics()["sources"]
    if not data:  # an empty file is a stream with nothing read: the source shows zeros
        assert {k: v for k, v in sources["jsonl"].items() if k != "last_commit_ns"} == {
            "lines_read": 0, "events": 0, "rejects": 0, "duplicates": 0, "ignored": 0,
            "reconciled": True, "streams": 1,
        }  # fmt: skip
        return
    assert list(sources) == ["jsonl"]
    src = sources["jsonl"]
    assert src["lines_read"] == n_lines
    assert src["ignored"] == n_ignored
    assert src["rejects"] == n_invalid
    assert src["events"] == n_distinct
    assert src["duplicates"] == n_duplicates
    assert src["events"] + src["rejects"] + src["duplicates"] + src["ignored"] == n_lines
    assert src["reconciled"]
    assert (summary.records, summary.events, summary.rejects, summary.duplicates) == (
        n_lines,
        n_distinct,
        n_invalid,
        n_duplicates,
    )

    def count(table: str) -> int:
        return int(store.query(f"SELECT count(*) AS n FROM {table}").column("n")[0].as_py())

    assert count("events") == n_distinct
    assert count("rejects") == n_invalid
    stored_ids = set(store.query("SELECT event_id FROM events").column("event_id").to_pylist())
    assert explicit <= stored_ids
    assert len(stored_ids) == n_distinct  # event ids are unique in the store

    # the same file again (same bytes, so the same stream and the same derived ids)
    summary2, store2 = replay_into(files, config_text=config, store_name=f"s{n}")
    assert (summary2.events, summary2.rejects) == (0, 0)
    src2 = store2.statistics()["sources"]["jsonl"]
    assert count_in(store2, "events") == n_distinct
    assert count_in(store2, "rejects") == n_invalid
    assert src2["lines_read"] == 2 * n_lines
    assert src2["events"] == n_distinct
    assert src2["rejects"] == n_invalid
    assert src2["ignored"] == 2 * n_ignored
    assert src2["duplicates"] == n_duplicates + len(valid) + n_invalid
    assert src2["reconciled"]


def count_in(store: object, table: str) -> int:
    result = store.query(f"SELECT count(*) AS n FROM {table}")  # type: ignore[attr-defined]
    return int(result.column("n")[0].as_py())
