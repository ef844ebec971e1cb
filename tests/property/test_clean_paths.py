"""The fast JSON-lines path (FastJsonl.parse_clean) and the general path (JsonlParser +
Cleaner via pipeline.ingest.clean_items) give the same events, rejects, ignored count and
consumed bytes for any input: the fast path must defer whatever it is unsure about."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tradelog.model.events import Event, Reject
from tradelog.parsing.jsonl import JsonlParser
from tradelog.pipeline.batch import StreamInfo
from tradelog.pipeline.ingest import clean_items
from tradelog.stages.clean import Cleaner, CleanSettings, Normalization
from tradelog.stages.clean_jsonl import FastJsonl

T = "2025-03-03T09:30:00.123456789Z"
MAX_BYTES = 160  # small, so some generated lines are too long

BASE: list[dict[str, Any]] = [
    {"kind": "order_new", "ts": T, "order_id": "O1", "symbol": "aapl", "side": "buy", "qty": 10,
     "price": 101.5, "order_type": "limit", "tif": "day", "venue": "xnas", "account_id": "A1",
     "strategy_id": "S1"},
    {"kind": "order_ack", "ts": T, "order_id": "O1", "venue_order_id": "V1"},
    {"kind": "order_replace", "ts": T, "order_id": "O2", "orig_order_id": "O1", "qty": 8,
     "price": 101.0},
    {"kind": "order_cancel_request", "ts": T, "order_id": "O1"},
    {"kind": "order_cancelled", "ts": T, "order_id": "O1", "cum_qty": 0, "leaves_qty": 0},
    {"kind": "order_rejected", "ts": T, "order_id": "O1", "reason": "risk"},
    {"kind": "order_cancel_rejected", "ts": T, "order_id": "O1", "reason": "late"},
    {"kind": "order_expired", "ts": T, "order_id": "O1"},
    {"kind": "fill", "ts": T, "order_id": "O1", "exec_id": "E1", "last_qty": 4, "last_px": 101.25,
     "cum_qty": 4, "leaves_qty": 6, "liquidity": "maker", "fee": -0.01, "avg_px": 101.25},
    {"kind": "quote", "ts": T, "symbol": "aapl", "venue": "xnas", "bid": 101.0, "ask": 101.1,
     "bid_size": 200, "ask_size": 300},
    {"kind": "market_trade", "ts": T, "symbol": "AAPL", "price": 101.05, "qty": 50,
     "side": "sell", "exec_id": "T1"},
    {"kind": "position", "ts": T, "symbol": "AAPL", "strategy_id": "S1", "position": -5,
     "realized_pnl": 12.5, "unrealized_pnl": -3.0},
    {"kind": "system", "ts": T, "severity": "warn", "component": "gw", "message": "slow"},
]  # fmt: skip

NUMERIC = (
    "qty", "price", "last_qty", "last_px", "cum_qty", "leaves_qty", "avg_px", "fee", "bid", "ask",
    "bid_size", "ask_size", "position", "realized_pnl", "unrealized_pnl",
)  # fmt: skip
TEXT = (
    "order_id", "symbol", "venue", "account_id", "strategy_id", "exec_id", "reason", "message",
    "order_type", "tif", "component", "severity", "orig_order_id", "venue_order_id",
)  # fmt: skip
EXTRA_KEYS = (
    "desk", "seq", "attrs", "source", "raw", "ts_ingest", "src_offset", "src_ref", "latency_ms",
    "order_status", "root_order_id", "owner_id", "context_from_order", "anomaly_types", "ts_ns",
    "sym", "timestamp", "event_type", "time", "msg", "mkt_ts", "slippage_bps",
    # canonical fields that some kinds cannot carry
    "bid", "ask", "side", "liquidity", "order_id", "message", "position", "last_px", "qty",
    "exec_id", "symbol", "reason",
)  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(["", " ", "0", "-1", "1e3", "buy", "BUY", T, "NaN"]),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=2),
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
)

bad_times = st.sampled_from(
    [
        "2025-13-03T09:30:00Z", "yesterday", "2025-03-03T24:00:00Z",
        "2025-03-03T09:30:00.1234567890Z", "2025-03-03 09:30:00+01:00", "2025-03-03T09:30:00",
        "2025-03-03T09:30:00.5", "2025-03-03T09:30:00,5Z", "2262-04-12T00:00:00Z",
        "9999-12-31T23:59:59Z", "1677-09-21T00:00:00Z", 1740994200, 1740994200123.5,
        "1740994200", "", None, True, [T], "2025-03-03t09:30:00Z", " 2025-03-03T09:30:00Z",
        "2025-03-03T09:30:00Z ", "2025-03-09T02:30:00", "2025-03-03T09:30:00.٣Z",
    ]
)  # fmt: skip


@st.composite
def event_object(draw: st.DrawFn) -> dict[str, Any]:
    obj = dict(draw(st.sampled_from(BASE)))
    mutations = draw(st.lists(st.integers(0, 12), max_size=3))
    for m in mutations:
        keys = list(obj)
        if m == 0 and "side" in obj:  # side spellings
            obj["side"] = draw(st.sampled_from(["BUY", "Sell", "b", "S", "bUy", " buy", 1, "x"]))
        elif m == 1:  # string numbers, odd numbers
            name = draw(st.sampled_from([k for k in keys if k in NUMERIC] or ["qty"]))
            obj[name] = draw(
                st.one_of(
                    st.sampled_from(["5", " 5", "1e3", "abc", "", "-1", "inf", True, 0, -0.0,
                                     -1, -2.5, 1e308, 10**30]),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.integers(-5, 5),
                )
            )  # fmt: skip
        elif m == 2:  # extra keys
            obj[draw(st.sampled_from(EXTRA_KEYS))] = draw(values)
        elif m == 3:  # event ids
            obj["event_id"] = draw(st.sampled_from(["", " ", "E1", "e-2", 7, -1, None, 1.5, True]))
        elif m == 4:  # missing field
            obj.pop(draw(st.sampled_from(keys)), None)
        elif m == 5:  # bad or unusual timestamps
            obj["ts"] = draw(bad_times)
        elif m == 6:  # text fields with spaces, empty, non-strings
            name = draw(st.sampled_from([k for k in keys if k in TEXT] or ["order_id"]))
            obj[name] = draw(
                st.sampled_from(["", " ", " O1", "O1 ", "O1\t", "\u00a0O1", "O\u00a01", 12, None,
                                 "x y"])
            )  # fmt: skip
        elif m == 7:  # kind spellings
            obj["kind"] = draw(st.sampled_from(["FILL", "Quote", " fill", "fills", "", None, 3]))
        elif m == 8:  # null a field
            obj[draw(st.sampled_from(keys))] = None
        elif m == 9 and "bid" in obj:  # quote shapes
            obj["bid"], obj["ask"] = draw(
                st.sampled_from(
                    [(None, None), (2.0, 1.0), (1.0, 1.0), (None, 1.0), (0, 1), (1, None)]
                )
            )
        elif m == 10:  # liquidity spellings
            obj["liquidity"] = draw(st.sampled_from(["MAKER", "Taker", "m", "T", "added", "x", 1]))
        elif m == 11:  # arbitrary value in a canonical field
            obj[draw(st.sampled_from(keys))] = draw(values)
        elif m == 12:  # symbol and venue spellings (normalisation maps)
            obj["symbol"] = draw(st.sampled_from(["btc-usd", "BTC-USD", " eth", "Xbt/Usd", "aapl"]))
    return obj


def encode(obj: dict[str, Any], style: int) -> bytes:
    if style == 0:
        return msgspec.json.encode(obj)
    if style == 1:
        return json.dumps(obj, ensure_ascii=False).encode()
    if style == 2 and obj:
        # a duplicated key: JSON decoders keep the last value
        key = next(iter(obj))
        text = json.dumps(obj)
        return ("{" + json.dumps(key) + ': "dup", ' + text[1:]).encode()
    return b"  " + msgspec.json.encode(obj) + b" "


SYSTEM = b'{"kind":"system","ts":"' + T.encode() + b'","message":'
FILL = b'{"kind":"fill","ts":"' + T.encode() + b'","order_id":"O","last_qty":1,"last_px":'
raw_lines = st.sampled_from(
    [
        b"", b"   ", b"\t", b"[1]", b"5", b'"x"', b"null", b"{", b"{'a': 1}", b"{}",
        b"\xff\xfe", b"\x80",
        SYSTEM + b'"\xff"}',  # invalid UTF-8 inside a JSON string
        FILL + b"1" + b"0" * 400 + b"}",  # an integer beyond float64
        SYSTEM + b'"' + b"m" * 200 + b'"}',  # too long
        SYSTEM + b'"' + b"m" * (MAX_BYTES - 51) + b'"}',  # about the limit
        SYSTEM + b'"\\u00e9\\n"}',  # ends with an escaped newline (whitespace)
        SYSTEM + b'"\\ud800"}',  # a lone surrogate
        b'{"kind":"system","ts":1e400,"message":"m"}',
    ]
)  # fmt: skip


@st.composite
def line(draw: st.DrawFn) -> bytes:
    which = draw(st.integers(0, 9))
    if which <= 6:
        body = encode(draw(event_object()), draw(st.integers(0, 3)))
    elif which == 7:
        body = draw(raw_lines)
    elif which == 8:
        body = draw(st.binary(max_size=30))
    else:
        body = msgspec.json.encode(
            draw(st.dictionaries(st.sampled_from((*EXTRA_KEYS, "kind", "ts")), values, max_size=4))
        )
    body = body.replace(b"\n", b"")
    if draw(st.booleans()) and draw(st.booleans()):
        body += b"\r"
    return body


@st.composite
def clean_settings(draw: st.DrawFn) -> tuple[CleanSettings, Normalization | None]:
    s = CleanSettings(
        time_zone=draw(st.sampled_from([None, None, "UTC", "America/New_York"])),
        allow_nonpositive_prices=draw(st.booleans()),
        builtin_aliases=draw(st.booleans()),
    )
    mapped = Normalization(
        symbols={"btc-usd": "BTCUSD", "Xbt/Usd": "xbtusd"},
        symbol_case="keep",
        venues={"xnas": "NASDAQ"},
        venue_case="lower",
    )
    norm = draw(st.sampled_from([None, mapped, Normalization(symbol_case="lower")]))
    return s, norm


def as_fields(ev: Event) -> dict[str, tuple[type, Any]]:
    """Every field with its value and type (the fast path's event subclass normalised)."""
    return {k: (type(v), v) for k, v in msgspec.structs.asdict(ev).items()}


def run_both(
    data: bytes, base: int, final: bool, s: CleanSettings, norm: Normalization | None
) -> None:
    source, stream, src_ref, now = "src", "fp:abc", "/logs/a.jsonl", 1_700_000_000_000_000_000
    fast = FastJsonl(Cleaner(source, s, norm), MAX_BYTES)
    f_events, f_rejects, f_ignored, f_consumed = fast.parse_clean(
        data, base, final, src_ref, stream, now
    )
    items, consumed = JsonlParser(MAX_BYTES).parse(data, base, final)
    chunk = clean_items(
        items, StreamInfo(source, stream, src_ref), Cleaner(source, s, norm), base + consumed, now
    )
    assert f_consumed == consumed
    assert f_ignored == chunk.ignored
    assert [as_fields(e) for e in f_events] == [as_fields(e) for e in chunk.events]
    assert [msgspec.structs.asdict(r) for r in f_rejects] == [
        msgspec.structs.asdict(r) for r in chunk.rejects
    ]
    for r in f_rejects:
        assert isinstance(r, Reject)
    # every complete line became exactly one event, reject or ignored record
    assert len(f_events) + len(f_rejects) + f_ignored == len(items)


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    lines=st.lists(line(), max_size=12),
    trailing_newline=st.booleans(),
    final=st.booleans(),
    base=st.sampled_from([0, 7, 1 << 40]),
    config=clean_settings(),
)
@example(
    lines=[b'{"kind":"quote","ts":"2025-03-03T09:30:00Z","symbol":"X"}'],
    trailing_newline=True,
    final=True,
    base=0,
    config=(CleanSettings(), None),
)
@example(
    lines=[b'{"kind":"system","ts":"2025-03-03T09:30:00Z","message":"m","attrs":{"a":1}}',
           b'{"kind":"system","ts":"2025-03-03T09:30:00Z","message":"m","source":"x"}',
           b'{"kind":"system","ts":"2025-03-03T09:30:00Z","message":"m","ts_ingest":0}',
           b'{"kind":"system","ts":"2025-03-03T09:30:00Z","message":"m","src_offset":0}',
           b'{"kind":"system","ts":"2025-03-03T09:30:00Z","message":"m","raw":"r"}'],
    trailing_newline=True,
    final=False,
    base=0,
    config=(CleanSettings(), None),
)  # fmt: skip
@example(
    lines=[b'{"kind":"order_ack","ts":"2025-03-03T09:30:00Z","order_id":"O1\\t"}',
           b'{"kind":"quote","ts":"2025-03-03T09:30:00Z","symbol":"\\u00a0X","bid":1}'],
    trailing_newline=False,
    final=True,
    base=0,
    config=(CleanSettings(), None),
)  # fmt: skip
@example(
    lines=[b'{"kind":"system","ts":"2025-03-03T09:30:00Z","message":"'
           + b"m" * (MAX_BYTES - 58) + b'"}\r'],
    trailing_newline=True,
    final=True,
    base=0,
    config=(CleanSettings(), None),
)  # fmt: skip
def test_fast_and_general_paths_agree(
    lines: list[bytes],
    trailing_newline: bool,
    final: bool,
    base: int,
    config: tuple[CleanSettings, Normalization | None],
) -> None:
    data = b"\n".join(lines) + (b"\n" if trailing_newline and lines else b"")
    run_both(data, base, final, *config)


def test_the_example_lines_are_what_they_claim() -> None:
    """Guards the explicit examples above against drifting into trivial inputs."""
    long_cr = (
        b'{"kind":"system","ts":"2025-03-03T09:30:00Z","message":"'
        + b"m" * (MAX_BYTES - 58)
        + b'"}\r'
    )
    assert len(long_cr) == MAX_BYTES + 1  # too long only when the \r is counted
    items, _ = JsonlParser(MAX_BYTES).parse(long_cr + b"\n", 0, False)
    assert items[0].reason == "line_too_long"  # type: ignore[union-attr]
