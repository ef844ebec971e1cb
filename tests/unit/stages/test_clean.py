"""clean: parsed records → events or rejects with a bounded reason (stages/clean.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tradelog.model.events import (
    KIND_FIELDS,
    Event,
    EventKind,
    Liquidity,
    Reject,
    RejectReason,
    Side,
)
from tradelog.model.ids import derived_event_id
from tradelog.parsing.base import Failure, Record, Skip
from tradelog.stages.clean import REQUIRED, Cleaner, CleanSettings, Normalization

T = "2025-03-03T09:30:00Z"
T_NS = 1_740_994_200 * 1_000_000_000

# a valid record of every kind, with canonical names
VALID: dict[EventKind, dict[str, Any]] = {
    EventKind.ORDER_NEW: {
        "kind": "order_new", "ts": T, "order_id": "O1", "symbol": "AAPL", "side": "buy",
        "qty": 10, "price": 101.5, "order_type": "limit", "tif": "day", "venue": "XNAS",
        "account_id": "A1", "strategy_id": "S1",
    },
    EventKind.ORDER_ACK: {"kind": "order_ack", "ts": T, "order_id": "O1", "venue_order_id": "V1"},
    EventKind.ORDER_REPLACE: {
        "kind": "order_replace", "ts": T, "order_id": "O2", "orig_order_id": "O1", "qty": 8,
        "price": 101.0,
    },
    EventKind.ORDER_CANCEL_REQUEST: {"kind": "order_cancel_request", "ts": T, "order_id": "O1"},
    EventKind.ORDER_CANCELLED: {"kind": "order_cancelled", "ts": T, "order_id": "O1"},
    EventKind.ORDER_REJECTED: {
        "kind": "order_rejected", "ts": T, "order_id": "O1", "reason": "risk",
    },
    EventKind.ORDER_CANCEL_REJECTED: {
        "kind": "order_cancel_rejected", "ts": T, "order_id": "O1", "reason": "too late",
    },
    EventKind.ORDER_EXPIRED: {"kind": "order_expired", "ts": T, "order_id": "O1"},
    EventKind.FILL: {
        "kind": "fill", "ts": T, "order_id": "O1", "exec_id": "E1", "last_qty": 4,
        "last_px": 101.25, "cum_qty": 4, "leaves_qty": 6, "liquidity": "maker", "fee": -0.01,
    },
    EventKind.QUOTE: {
        "kind": "quote", "ts": T, "symbol": "AAPL", "venue": "XNAS", "bid": 101.0, "ask": 101.1,
        "bid_size": 200, "ask_size": 300,
    },
    EventKind.MARKET_TRADE: {
        "kind": "market_trade", "ts": T, "symbol": "AAPL", "price": 101.05, "qty": 50,
        "side": "sell",
    },
    EventKind.POSITION: {
        "kind": "position", "ts": T, "symbol": "AAPL", "strategy_id": "S1", "position": -5,
        "realized_pnl": 12.5, "unrealized_pnl": -3.0,
    },
    EventKind.SYSTEM: {
        "kind": "system", "ts": T, "severity": "warn", "component": "gw", "message": "slow",
    },
}  # fmt: skip


def clean(
    fields: dict[str, Any],
    settings: CleanSettings | None = None,
    norm: Normalization | None = None,
    *,
    source: str = "src",
    stream: str = "fp:1",
    start: int = 100,
) -> Event | Reject:
    cleaner = Cleaner(source, settings or CleanSettings(), norm)
    out = cleaner.clean(Record(dict(fields), "RAW", start, start + 10), "ref", stream, 42)
    assert out is not None
    return out


def event(fields: dict[str, Any], settings: CleanSettings | None = None, **kw: Any) -> Event:
    out = clean(fields, settings, **kw)
    assert isinstance(out, Event), out
    return out


def reject(fields: dict[str, Any], settings: CleanSettings | None = None, **kw: Any) -> Reject:
    out = clean(fields, settings, **kw)
    assert isinstance(out, Reject), out
    return out


def with_(kind_: EventKind, /, **changes: Any) -> dict[str, Any]:
    fields = copy.deepcopy(VALID[kind_])
    for key, value in changes.items():
        if value is _DROP:
            fields.pop(key, None)
        else:
            fields[key] = value
    return fields


_DROP = object()


# ---- valid records ------------------------------------------------------------


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_kind_valid(kind: EventKind) -> None:
    ev = event(VALID[kind])
    assert ev.kind is kind
    assert ev.ts == T_NS
    assert ev.ts_ingest == 42
    assert (ev.source, ev.src_ref, ev.src_offset, ev.raw) == ("src", "ref", 100, "RAW")
    assert ev.attrs is None
    for key, value in VALID[kind].items():
        if key in ("kind", "ts"):
            continue
        got = getattr(ev, key)
        assert got == value, key
        if isinstance(value, (int, float)):
            assert type(got) is float, key  # numbers are float64


def test_typed_values() -> None:
    new = event(VALID[EventKind.ORDER_NEW])
    assert new.side is Side.BUY
    fill = event(VALID[EventKind.FILL])
    assert fill.liquidity is Liquidity.MAKER
    assert fill.fee == -0.01  # signed: a rebate is not an error


# ---- names ---------------------------------------------------------------------


def test_config_renames() -> None:
    settings = CleanSettings(fields={"px": "price", "sz": "qty", "oid": "order_id", "t": "ts"})
    ev = event(
        {"kind": "order_new", "t": T, "oid": "O1", "symbol": "X", "side": "buy", "sz": 5,
         "px": 2.5},
        settings,
    )  # fmt: skip
    assert (ev.order_id, ev.qty, ev.price, ev.ts) == ("O1", 5.0, 2.5, T_NS)
    assert ev.attrs is None


@pytest.mark.parametrize(
    ("alias", "canonical", "value", "expected"),
    [
        ("event_type", "kind", "system", EventKind.SYSTEM),
        ("timestamp", "ts", T, T_NS),
        ("time", "ts", T, T_NS),
        ("sym", "symbol", "ibm", "IBM"),
        ("instrument", "symbol", "ibm", "IBM"),
        ("account", "account_id", "A9", "A9"),
        ("strategy", "strategy_id", "S9", "S9"),
        ("msg", "message", "hello", "hello"),
    ],
)
def test_builtin_aliases(alias: str, canonical: str, value: Any, expected: Any) -> None:
    fields = with_(EventKind.SYSTEM, **{canonical: _DROP, alias: value})
    ev = event(fields)
    assert getattr(ev, canonical) == expected
    assert ev.attrs is None


def test_builtin_aliases_can_be_disabled() -> None:
    fields = with_(EventKind.SYSTEM, msg="hello", message=_DROP)
    r = reject(fields, CleanSettings(builtin_aliases=False))
    assert (r.reason, r.field) == (RejectReason.MISSING_FIELD, "message")


def test_a_config_rename_to_a_canonical_name_disables_its_builtin_aliases() -> None:
    # `t` is the time field: `timestamp` is then an ordinary unknown field
    ev = event(
        {"kind": "system", "t": T, "timestamp": "whatever", "message": "m"},
        CleanSettings(fields={"t": "ts"}),
    )
    assert ev.ts == T_NS
    assert ev.attrs == {"timestamp": "whatever"}


@pytest.mark.parametrize("canonical_first", [True, False])
def test_canonical_key_wins_over_alias_in_any_order(canonical_first: bool) -> None:
    pairs = [
        ("symbol", "AAA"), ("ts", T), ("kind", "quote"), ("account_id", "A1"),
    ]  # fmt: skip
    aliases = [
        ("sym", "BBB"), ("timestamp", "2020-01-01T00:00:00Z"), ("event_type", "fill"),
        ("account", "A2"),
    ]  # fmt: skip
    items = pairs + aliases if canonical_first else aliases + pairs
    fields = dict(items)
    fields.update(bid=1.0, ask=2.0)
    ev = event(fields)
    assert ev.kind is EventKind.QUOTE
    assert ev.symbol == "AAA"
    assert ev.ts == T_NS
    assert ev.account_id == "A1"


@pytest.mark.parametrize("canonical_first", [True, False])
def test_an_invalid_alias_does_not_reject_when_the_canonical_key_is_there(
    canonical_first: bool,
) -> None:
    items = [("account_id", "A1"), ("account", ["not", "a", "string"])]
    if not canonical_first:
        items.reverse()
    fields = with_(EventKind.SYSTEM)
    fields.update(items)
    assert event(fields).account_id == "A1"


def test_first_of_two_aliases_wins() -> None:
    fields = with_(EventKind.QUOTE, symbol=_DROP)
    fields.update(sym="first", instrument="second")
    assert event(fields).symbol == "FIRST"


def test_invalid_alias_without_canonical_key_is_rejected() -> None:
    fields = with_(EventKind.SYSTEM, account=["x"])
    r = reject(fields)
    assert (r.reason, r.field) == (RejectReason.INVALID_VALUE, "account_id")


# ---- value maps, static fields, fixed kind -------------------------------------------


def test_value_maps() -> None:
    settings = CleanSettings(
        values={
            "side": {"BOT": "buy", "SLD": "sell"},
            "kind": {"NEW": "order_new"},
            "liquidity": {"A": "maker", "R": "taker"},
            "order_type": {"2": "limit"},
        }
    )
    ev = event(with_(EventKind.ORDER_NEW, kind="NEW", side="SLD", order_type=2), settings)
    assert ev.kind is EventKind.ORDER_NEW
    assert ev.side is Side.SELL
    assert ev.order_type == "limit"  # the key of a non-string value is its text
    fill = event(with_(EventKind.FILL, liquidity="R"), settings)
    assert fill.liquidity is Liquidity.TAKER


def test_values_not_in_the_map_pass_through() -> None:
    settings = CleanSettings(values={"side": {"BOT": "buy"}})
    assert event(with_(EventKind.ORDER_NEW, side="sell"), settings).side is Side.SELL


@pytest.mark.parametrize("dropped", [None, ""])
def test_value_map_to_null_drops_the_field(dropped: str | None) -> None:
    settings = CleanSettings(values={"venue": {"N/A": dropped}, "order_id": {"-": dropped}})
    ev = event(with_(EventKind.QUOTE, venue="N/A"), settings)
    assert ev.venue is None
    assert ev.attrs is None
    # a required field dropped by the map is missing
    r = reject(with_(EventKind.ORDER_ACK, order_id="-"), settings)
    assert (r.reason, r.field) == (RejectReason.MISSING_FIELD, "order_id")


def test_value_map_output_is_validated() -> None:
    settings = CleanSettings(values={"side": {"X": "sideways"}})
    r = reject(with_(EventKind.ORDER_NEW, side="X"), settings)
    assert (r.reason, r.field) == (RejectReason.INVALID_VALUE, "side")


def test_static_fields_fill_gaps_only() -> None:
    settings = CleanSettings(static={"venue": "xnys", "account_id": "A0"})
    ev = event(with_(EventKind.QUOTE, venue=_DROP), settings)
    assert (ev.venue, ev.account_id) == ("XNYS", "A0")
    ev2 = event(with_(EventKind.QUOTE, venue="arca"), settings)
    assert ev2.venue == "ARCA"


def test_static_fields_are_validated() -> None:
    settings = CleanSettings(static={"qty": -1})
    r = reject(with_(EventKind.ORDER_NEW, qty=_DROP), settings)
    assert (r.reason, r.field) == (RejectReason.INVALID_QUANTITY, "qty")


def test_static_kind() -> None:
    settings = CleanSettings(static={"kind": "quote"})
    assert event(with_(EventKind.QUOTE, kind=_DROP), settings).kind is EventKind.QUOTE
    # the record's own kind wins over the static one
    assert event(with_(EventKind.SYSTEM), settings).kind is EventKind.SYSTEM


def test_fixed_kind() -> None:
    settings = CleanSettings(kind="QUOTE")
    assert event(with_(EventKind.QUOTE, kind=_DROP), settings).kind is EventKind.QUOTE
    # the record's kind cannot change a fixed kind
    assert event(with_(EventKind.QUOTE, kind="fill"), settings).kind is EventKind.QUOTE


def test_unknown_fixed_kind_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        Cleaner("s", CleanSettings(kind="trade"))


# ---- required fields ---------------------------------------------------------------


_REQUIRED_CASES = [(kind, name) for kind in EventKind for name in REQUIRED[kind]]


@pytest.mark.parametrize(("kind", "name"), _REQUIRED_CASES)
@pytest.mark.parametrize("how", ["absent", "null", "empty"])
def test_each_required_field_missing(kind: EventKind, name: str, how: str) -> None:
    value = {"absent": _DROP, "null": None, "empty": ""}[how]
    r = reject(with_(kind, **{name: value}))
    assert r.reason is RejectReason.MISSING_FIELD
    assert r.field == name
    assert name in r.detail
    assert r.raw == "RAW"


def test_required_table_matches_the_valid_samples() -> None:
    for kind, names in REQUIRED.items():
        assert set(names) <= set(VALID[kind]), kind


@pytest.mark.parametrize("name", ["kind", "ts"])
def test_kind_and_ts_are_required(name: str) -> None:
    r = reject(with_(EventKind.SYSTEM, **{name: _DROP}))
    assert (r.reason, r.field) == (RejectReason.MISSING_FIELD, name)


def test_blank_string_in_a_required_string_field_is_missing() -> None:
    r = reject(with_(EventKind.ORDER_ACK, order_id="   "))
    assert (r.reason, r.field) == (RejectReason.MISSING_FIELD, "order_id")


def test_order_new_needs_a_price_unless_market() -> None:
    r = reject(with_(EventKind.ORDER_NEW, price=_DROP))
    assert (r.reason, r.field) == (RejectReason.MISSING_FIELD, "price")
    for market in ("market", "MKT", "1"):
        ev = event(with_(EventKind.ORDER_NEW, price=_DROP, order_type=market))
        assert ev.price is None


def test_quote_needs_a_bid_or_an_ask() -> None:
    r = reject(with_(EventKind.QUOTE, bid=_DROP, ask=_DROP))
    assert (r.reason, r.field) == (RejectReason.MISSING_FIELD, "bid")
    one_sided = event(with_(EventKind.QUOTE, ask=_DROP))
    assert (one_sided.bid, one_sided.ask) == (101.0, None)


# ---- numbers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5", 5.0), ("5.25", 5.25), ("1e3", 1000.0), (" 7 ", 7.0), ("0.000001", 1e-6)],
)
def test_numeric_strings_are_accepted(text: str, expected: float) -> None:
    ev = event(with_(EventKind.FILL, last_qty=text, last_px=text))
    assert ev.last_qty == expected
    assert ev.last_px == expected


@pytest.mark.parametrize("junk", ["abc", "5 lots", "1,5", "0x10", "--1", [5], {"v": 5}])
@pytest.mark.parametrize("name", ["qty", "price", "last_qty", "last_px", "fee", "bid_size"])
def test_junk_numbers_are_invalid_never_zero(junk: Any, name: str) -> None:
    kind = {
        "qty": EventKind.ORDER_NEW, "price": EventKind.ORDER_NEW, "last_qty": EventKind.FILL,
        "last_px": EventKind.FILL, "fee": EventKind.FILL, "bid_size": EventKind.QUOTE,
    }[name]  # fmt: skip
    r = reject(with_(kind, **{name: junk}))
    assert r.reason is RejectReason.INVALID_NUMBER
    assert r.field == name
    assert name in r.detail


@pytest.mark.parametrize("flag", [True, False])
def test_bools_are_not_numbers(flag: bool) -> None:
    r = reject(with_(EventKind.ORDER_NEW, qty=flag))
    assert (r.reason, r.field) == (RejectReason.INVALID_NUMBER, "qty")


@pytest.mark.parametrize(
    "bad", ["NaN", "nan", "inf", "-Infinity", float("nan"), float("inf"), float("-inf")]
)
@pytest.mark.parametrize("name", ["price", "qty", "fee"])
def test_non_finite_numbers_are_rejected(bad: Any, name: str) -> None:
    kind = EventKind.FILL if name == "fee" else EventKind.ORDER_NEW
    r = reject(with_(kind, **{name: bad}))
    assert (r.reason, r.field) == (RejectReason.INVALID_NUMBER, name)


@pytest.mark.parametrize("bad", [0, -1, "-3.5", -1e-9])
@pytest.mark.parametrize(
    ("kind", "name"),
    [(EventKind.ORDER_NEW, "qty"), (EventKind.FILL, "last_qty"), (EventKind.MARKET_TRADE, "qty")],
)
def test_nonpositive_quantity_is_rejected_never_abs(bad: Any, kind: EventKind, name: str) -> None:
    r = reject(with_(kind, **{name: bad}))
    assert (r.reason, r.field) == (RejectReason.INVALID_QUANTITY, name)


@pytest.mark.parametrize("name", ["cum_qty", "leaves_qty"])
def test_non_negative_quantities(name: str) -> None:
    assert getattr(event(with_(EventKind.FILL, **{name: 0})), name) == 0.0
    r = reject(with_(EventKind.FILL, **{name: -1}))
    assert (r.reason, r.field) == (RejectReason.INVALID_QUANTITY, name)


@pytest.mark.parametrize("bad", [0, -0.01, "-5"])
@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (EventKind.ORDER_NEW, "price"),
        (EventKind.FILL, "last_px"),
        (EventKind.QUOTE, "bid"),
        (EventKind.QUOTE, "ask"),
        (EventKind.MARKET_TRADE, "price"),
    ],
)
def test_nonpositive_price_is_rejected(bad: Any, kind: EventKind, name: str) -> None:
    fields = with_(kind, **{name: bad})
    if name == "ask":
        fields["bid"] = -1.0  # keep the quote uncrossed
    r = reject(fields)
    assert r.reason is RejectReason.INVALID_PRICE
    assert r.field in ("bid", name)


def test_nonpositive_prices_allowed_when_configured() -> None:
    settings = CleanSettings(allow_nonpositive_prices=True)  # e.g. spreads, negative oil
    ev = event(with_(EventKind.ORDER_NEW, price=-37.63), settings)
    assert ev.price == -37.63
    fill = event(with_(EventKind.FILL, last_px=0), settings)
    assert fill.last_px == 0.0
    # quantities are still strict
    r = reject(with_(EventKind.ORDER_NEW, qty=-1), settings)
    assert r.reason is RejectReason.INVALID_QUANTITY


def test_crossed_quote_is_an_invalid_price() -> None:
    r = reject(with_(EventKind.QUOTE, bid=101.2, ask=101.1))
    assert (r.reason, r.field) == (RejectReason.INVALID_PRICE, "bid")
    assert "crossed" in r.detail
    locked = event(with_(EventKind.QUOTE, bid=101.1, ask=101.1))
    assert locked.bid == locked.ask == 101.1


def test_signed_fields_accept_negatives() -> None:
    ev = event(with_(EventKind.POSITION, position="-12", realized_pnl=-5, unrealized_pnl=0))
    assert (ev.position, ev.realized_pnl, ev.unrealized_pnl) == (-12.0, -5.0, 0.0)


# ---- enums and kinds -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "side"),
    [("buy", Side.BUY), ("BUY", Side.BUY), ("Buy", Side.BUY), ("b", Side.BUY), (1, Side.BUY),
     ("1", Side.BUY), ("sell", Side.SELL), ("SELL", Side.SELL), ("short", Side.SELL),
     ("sell_short", Side.SELL), (2, Side.SELL), (" Sell ", Side.SELL)],
)  # fmt: skip
def test_side_spellings(raw: Any, side: Side) -> None:
    assert event(with_(EventKind.ORDER_NEW, side=raw)).side is side


@pytest.mark.parametrize("raw", ["up", "x", 3, True])
def test_unknown_side_is_an_invalid_value(raw: Any) -> None:
    r = reject(with_(EventKind.ORDER_NEW, side=raw))
    assert (r.reason, r.field) == (RejectReason.INVALID_VALUE, "side")


@pytest.mark.parametrize("raw", ["FILL", "Fill", " fill "])
def test_kind_case_and_spaces(raw: str) -> None:
    assert event(with_(EventKind.FILL, kind=raw)).kind is EventKind.FILL


@pytest.mark.parametrize("raw", ["trade", "order-new", "fills", 5, ["fill"], {"k": "fill"}])
def test_unknown_kind(raw: Any) -> None:
    r = reject(with_(EventKind.FILL, kind=raw))
    assert (r.reason, r.field) == (RejectReason.UNKNOWN_KIND, "kind")


def test_non_string_text_fields() -> None:
    ev = event(with_(EventKind.ORDER_ACK, order_id=12345))
    assert ev.order_id == "12345"
    r = reject(with_(EventKind.ORDER_ACK, order_id={"id": 1}))
    assert (r.reason, r.field) == (RejectReason.INVALID_VALUE, "order_id")


# ---- timestamps ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["yesterday", "2025-13-01T00:00:00Z", "2025-03-03T24:00:00Z", True, [T], {"t": T},
     "2262-04-12T00:00:00Z", "1677-09-21T00:00:00Z", 1e300, 10**30],
)  # fmt: skip
def test_bad_timestamp_is_rejected_never_now(bad: Any) -> None:
    r = reject(with_(EventKind.SYSTEM, ts=bad))
    assert (r.reason, r.field) == (RejectReason.INVALID_TIMESTAMP, "ts")
    assert r.detail


def test_timestamps_at_the_edges_of_int64_are_kept() -> None:
    last = event(with_(EventKind.SYSTEM, ts="2262-04-11T23:47:16.854775807Z"))
    assert last.ts == (1 << 63) - 1
    first = event(with_(EventKind.SYSTEM, ts="1677-09-21T00:12:43.145224192Z"))
    assert first.ts == -(1 << 63)


@pytest.mark.parametrize("bad", ["1740994200000000000", 1.5, True, (1 << 63)])
def test_ts_ns_from_a_record_must_be_int64(bad: Any) -> None:
    r = reject({"kind": "system", "ts_ns": bad, "message": "m"})
    assert (r.reason, r.field) == (RejectReason.INVALID_TIMESTAMP, "ts")


def test_ts_ns_int_is_taken_as_is() -> None:
    ev = event({"kind": "system", "ts_ns": T_NS + 7, "ts": "junk", "message": "m"})
    assert ev.ts == T_NS + 7


@pytest.mark.parametrize(
    ("settings", "value", "expected"),
    [
        (CleanSettings(), 1_740_994_200_123, T_NS + 123_000_000),
        (CleanSettings(time_format="epoch_s"), "1740994200", T_NS),
        (CleanSettings(time_format="epoch_us"), 1_740_994_200_000_000, T_NS),
        (CleanSettings(time_zone="America/New_York"), "2025-03-03T04:30:00", T_NS),
        (CleanSettings(time_format="%H:%M:%S.%f", date="2025-03-03"), "09:30:00.5",
         T_NS + 500_000_000),
        (CleanSettings(time_format="fix"), "20250303-09:30:00.000000001", T_NS + 1),
    ],
)  # fmt: skip
def test_time_formats(settings: CleanSettings, value: Any, expected: int) -> None:
    assert event(with_(EventKind.SYSTEM, ts=value), settings).ts == expected


def test_time_only_without_a_date_is_rejected() -> None:
    r = reject(with_(EventKind.SYSTEM, ts="09:30:00.5"), CleanSettings(time_format="%H:%M:%S.%f"))
    assert r.reason is RejectReason.INVALID_TIMESTAMP


# ---- attrs ------------------------------------------------------------------------------


def test_unknown_fields_go_to_attrs() -> None:
    ev = event(with_(EventKind.FILL, desk="D1", nested={"a": [1, 2]}, n=3))
    assert ev.attrs == {"desk": "D1", "nested": {"a": [1, 2]}, "n": 3}


def test_enrichment_and_provenance_names_from_a_record_go_to_attrs() -> None:
    ev = event(with_(EventKind.SYSTEM, seq=5, source="evil", raw="x", latency_ms=1.0))
    assert ev.seq == 0
    assert ev.source == "src"
    assert ev.raw == "RAW"
    assert ev.latency_ms is None
    assert ev.attrs == {"seq": 5, "source": "evil", "raw": "x", "latency_ms": 1.0}


def test_canonical_fields_a_kind_cannot_carry_go_to_attrs() -> None:
    ev = event(with_(EventKind.QUOTE, order_id="O1", side="buy", message="hi"))
    assert ev.order_id is None
    assert ev.side is None
    assert ev.message is None
    assert ev.attrs == {"order_id": "O1", "side": "buy", "message": "hi"}
    for kind in EventKind:
        ev = event(VALID[kind])
        for name in VALID[kind]:
            if name not in ("kind", "ts"):
                assert name in KIND_FIELDS[kind], (kind, name)


def test_empty_and_null_fields_are_absent() -> None:
    ev = event(with_(EventKind.QUOTE, venue="", bid_size=None, note=""))
    assert ev.venue is None
    assert ev.bid_size is None
    assert ev.attrs is None


# ---- symbols and venues -------------------------------------------------------------------


def test_symbol_and_venue_normalization() -> None:
    norm = Normalization(
        symbols={"btc-usd": "BTCUSD", "XBT/USD": "btcusd"}, venues={"nyse": "XNYS"}
    )
    ev = event(with_(EventKind.QUOTE, symbol="btc-usd", venue="nyse"), norm=norm)
    assert (ev.symbol, ev.venue) == ("BTCUSD", "XNYS")
    # the map applies first, then the case rule
    assert event(with_(EventKind.QUOTE, symbol="XBT/USD"), norm=norm).symbol == "BTCUSD"
    # surrounding spaces are trimmed before the lookup
    assert event(with_(EventKind.QUOTE, symbol=" btc-usd "), norm=norm).symbol == "BTCUSD"
    # unmapped names only get the case rule
    assert event(with_(EventKind.QUOTE, symbol="eth-usd", venue="arca"), norm=norm).symbol == (
        "ETH-USD"
    )


@pytest.mark.parametrize(
    ("case", "expected"), [("upper", "AAPL.O"), ("lower", "aapl.o"), ("keep", "Aapl.O")]
)
def test_symbol_and_venue_case(case: str, expected: str) -> None:
    norm = Normalization(symbol_case=case, venue_case=case)  # type: ignore[arg-type]
    ev = event(with_(EventKind.QUOTE, symbol="Aapl.O", venue="Aapl.O"), norm=norm)
    assert ev.symbol == expected
    assert ev.venue == expected


def test_symbol_normalization_applies_to_order_events_too() -> None:
    norm = Normalization(symbols={"apple": "AAPL"})
    assert event(with_(EventKind.ORDER_NEW, symbol="apple"), norm=norm).symbol == "AAPL"


# ---- ids ----------------------------------------------------------------------------------


def test_source_event_id_is_kept_and_stringified() -> None:
    assert event(with_(EventKind.SYSTEM, event_id="abc")).event_id == "abc"
    assert event(with_(EventKind.SYSTEM, event_id=123)).event_id == "123"


def test_derived_event_ids_are_stable_by_position() -> None:
    fields = with_(EventKind.SYSTEM)
    a = event(fields, source="s", stream="fp:1", start=10)
    b = event(with_(EventKind.SYSTEM, message="other text"), source="s", stream="fp:1", start=10)
    assert a.event_id == b.event_id == derived_event_id("s", "fp:1", 10, "RAW")
    assert a.event_id.startswith("h-")
    others = {
        event(fields, source="s2", stream="fp:1", start=10).event_id,
        event(fields, source="s", stream="fp:2", start=10).event_id,
        event(fields, source="s", stream="fp:1", start=11).event_id,
    }
    assert a.event_id not in others
    assert len(others) == 3


def test_derived_ids_differ_for_different_bytes_at_the_same_position() -> None:
    """A reused position (another HTTP body, a file rewritten after truncation) with other
    bytes must not look like a duplicate."""
    cleaner = Cleaner("s", CleanSettings())
    fields = with_(EventKind.SYSTEM)
    one = cleaner.clean(Record(dict(fields), "line one", 0, 9), "ref", "http", 0)
    two = cleaner.clean(Record(dict(fields), "line two", 0, 9), "ref", "http", 0)
    assert isinstance(one, Event) and isinstance(two, Event)
    assert one.event_id != two.event_id


def test_empty_event_id_gets_a_derived_one() -> None:
    ev = event(with_(EventKind.SYSTEM, event_id=""), source="s", stream="k", start=5)
    assert ev.event_id == derived_event_id("s", "k", 5, "RAW")


def test_reject_ids() -> None:
    r = reject(with_(EventKind.SYSTEM, ts="bad"), source="s", stream="fp:1", start=10)
    assert r.reject_id == derived_event_id("s", "fp:1", 10, "RAW", "r-")
    assert r.reject_id.startswith("r-")
    ev = event(with_(EventKind.SYSTEM), source="s", stream="fp:1", start=10)
    assert r.reject_id[2:] == ev.event_id[2:]  # same position, distinct namespaces
    assert r.reject_id != ev.event_id
    assert (r.source, r.src_ref, r.src_offset, r.raw, r.ts_ingest) == ("s", "ref", 10, "RAW", 42)
    other = reject(with_(EventKind.SYSTEM, ts="bad"), source="s", stream="fp:1", start=11)
    assert other.reject_id != r.reject_id


def test_reject_keeps_an_event_id_given_by_the_source_out_of_its_id() -> None:
    # rejects are identified by position, so re-reading the same bad bytes is a duplicate
    r1 = reject(with_(EventKind.SYSTEM, ts="bad", event_id="E1"), start=1)
    r2 = reject(with_(EventKind.SYSTEM, ts="bad", event_id="E1"), start=2)
    assert r1.reject_id != r2.reject_id


# ---- parser items ------------------------------------------------------------------------


def test_failure_becomes_a_reject_with_its_reason() -> None:
    cleaner = Cleaner("s", CleanSettings())
    out = cleaner.clean(
        Failure(RejectReason.MALFORMED, "invalid JSON", "{oops", 7, 13, field=None),
        "ref",
        "k",
        9,
    )
    assert isinstance(out, Reject)
    assert (out.reason, out.detail, out.raw, out.src_offset) == (
        RejectReason.MALFORMED,
        "invalid JSON",
        "{oops",
        7,
    )
    assert out.reject_id == derived_event_id("s", "k", 7, "{oops", "r-")


def test_skip_becomes_nothing() -> None:
    assert Cleaner("s", CleanSettings()).clean(Skip("blank", 0, 1), "ref", "k", 0) is None


def test_anything_else_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Cleaner("s", CleanSettings()).clean("line", "ref", "k", 0)  # type: ignore[arg-type]
