"""Regex rules: an unfamiliar text format read by configuration alone, checked on the
records the parser makes and on the events the cleaner makes of them; plus the
configuration errors a user can make, each named with its rule."""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Iterable
from typing import Any

import msgspec
import pytest

from tradelog.model.events import Event, EventKind, Reject, RejectReason, Side
from tradelog.model.timefmt import NS_PER_DAY
from tradelog.parsing.base import Failure, Item, Record, Skip
from tradelog.parsing.regex_rules import RegexParser, RegexRule, RegexSettings
from tradelog.stages.clean import Cleaner, CleanSettings

DAY_NS = 1_740_960_000 * 10**9  # 2025-03-03T00:00:00Z


def at(hour: int, minute: int, second: int, frac_ns: int = 0, day: int = 0) -> int:
    """UTC ns on 2025-03-03 (+ ``day`` days)."""
    return DAY_NS + day * NS_PER_DAY + (hour * 3600 + minute * 60 + second) * 10**9 + frac_ns


def feed(parser: RegexParser, data: bytes, cuts: Iterable[int] = ()) -> list[Item]:
    """All items of ``data`` fed as the caller does: chunks ending at ``cuts``, then the
    rest with ``final=True``, each call re-sending the unconsumed tail."""
    items: list[Item] = []
    base = 0
    pending = b""
    prev = 0
    for cut in [*cuts, len(data)]:
        pending += data[prev:cut]
        prev = cut
        out, consumed = parser.parse(pending, base, final=cut == len(data))
        items.extend(out)
        base += consumed
        pending = pending[consumed:]
    assert pending == b""
    return items


def fields(item: Item) -> dict[str, Any]:
    assert isinstance(item, Record), item
    return item.fields


def clean(items: list[Item]) -> list[Event | Reject]:
    cleaner = Cleaner("kestrel", CleanSettings())
    out: list[Event | Reject] = []
    for item in items:
        result = cleaner.clean(item, "STRAT_MOMO7_20250303.log", "s1", ts_ingest=1)
        if result is not None:
            out.append(result)
    return out


# ---------------------------------------------------------------------------
# THE scenario: a made-up engine ("kestrel") with bracketed time-only timestamps

KESTREL_PATH = "/var/log/kestrel/STRAT_MOMO7_20250303.log"

ORDERS = RegexRule(
    name="orders",
    pattern=(
        r"(?s)^\[(?P<ts>[^\]]+)\] ORD (?P<kind>NEW|ACK|CXL|REJ) (?P<client>\w+)/(?P<oid>\d+)"
        r"(?: (?P<symbol>[A-Z]+) (?P<side>BUY|SELL) (?P<qty>\d+)@(?P<price>\S+))?"
        r"(?: (?P<venue>[A-Z]{4}))?(?: reason=(?P<reason>.+))?$"
    ),
    kind_from="kind",
    kind_map={"NEW": "order_new", "ACK": "order_ack", "CXL": "order_cancelled"},
    values={"side": {"BUY": "buy", "SELL": "sell"}, "price": {"INVALID": None}},
    fields={"order_id": "{client}-{oid}"},
    time_format="%H:%M:%S.%f",
)
FILLS = RegexRule(
    name="fills",
    pattern=(
        r"^\[(?P<ts>[^\]]+)\] FIL (?P<client>\w+)/(?P<oid>\d+) (?P<last_qty>\d+)@"
        r"(?P<last_px>[\d.]+) (?P<venue>[A-Z]{4}) (?P<liquidity>[AR])$"
    ),
    kind="fill",
    values={"liquidity": {"A": "maker", "R": "taker"}},
    fields={"order_id": "{client}-{oid}"},
    static={"account_id": "KESTREL-1"},
    time_format="%H:%M:%S.%f",
)
HEARTBEAT = RegexRule(name="heartbeat", pattern=r"^\[[^\]]+\] HB\b", skip=True)


def kestrel(ignore_unmatched: bool = False) -> RegexSettings:
    return RegexSettings(
        rules=[HEARTBEAT, ORDERS, FILLS],
        record_start=r"\[\d{2}:\d{2}:\d{2}\.\d{1,9}\]",
        path_pattern=r"STRAT_(?P<strategy_id>[A-Z0-9]+)_(?P<date>\d{8})\.log$",
        ignore_unmatched=ignore_unmatched,
    )


KESTREL_LOG = (
    "kestrel engine v2.1 booting\n"  # before the first record start
    "[09:29:59.999999999] HB seq=1\n"  # skip rule
    "[09:30:00.000000123] ORD NEW C7/42 AAPL BUY 300@101.25 XNAS\n"
    # two records glued on one physical line
    "[09:30:00.000100000] ORD ACK C7/42 AAPL BUY 300@INVALID XNAS "
    "[09:30:00.000200500] FIL C7/42 100@101.25 XNAS A\n"
    # one record over two lines, with non-ASCII text
    "[09:30:01.5] ORD CXL C7/42 reason=user request\n"
    "    approuvé par le desk risque\n"
    "[09:30:02.000000000] ??? unknown line type\n"  # no rule matches
    "[23:59:59.999999999] ORD NEW C7/43 MSFT SELL 50@410.5 XNAS\n"
    "[00:00:00.000000001] FIL C7/43 50@410.5 XNAS R\n"  # past midnight
    "[00:00:01.000000000] ORD CXL C7/44 reason=eod\n"
).encode()


def span(marker: str, until: str | None = None) -> tuple[int, int]:
    """Byte span of the record starting at ``marker`` up to ``until`` (or its line's end)."""
    start = KESTREL_LOG.index(marker.encode())
    if until is None:
        end = KESTREL_LOG.index(b"\n", start) + 1
    else:
        end = KESTREL_LOG.index(until.encode(), start)
    return start, end


def test_kestrel_records_exact() -> None:
    items = feed(kestrel().build(KESTREL_PATH), KESTREL_LOG)

    s = span
    new_start, new_end = s("[09:30:00.000000123]")
    ack_start, ack_end = s("[09:30:00.000100000]", "[09:30:00.000200500]")
    cxl_start, cxl_end = s("[09:30:01.5]", "[09:30:02")
    assert items == [
        Failure(
            RejectReason.NO_RULE_MATCHED,
            "text before the first record start",
            "kestrel engine v2.1 booting",
            *s("kestrel"),
        ),
        Skip("rule_skip", *s("[09:29:59")),
        Record(
            {
                "kind": "order_new",
                "client": "C7",
                "oid": "42",
                "symbol": "AAPL",
                "side": "buy",
                "qty": "300",
                "price": "101.25",
                "venue": "XNAS",
                "order_id": "C7-42",
                "strategy_id": "MOMO7",
                "ts_ns": at(9, 30, 0, 123),
            },
            "[09:30:00.000000123] ORD NEW C7/42 AAPL BUY 300@101.25 XNAS",
            new_start,
            new_end,
        ),
        Record(
            {  # price INVALID → removed
                "kind": "order_ack",
                "client": "C7",
                "oid": "42",
                "symbol": "AAPL",
                "side": "buy",
                "qty": "300",
                "venue": "XNAS",
                "order_id": "C7-42",
                "strategy_id": "MOMO7",
                "ts_ns": at(9, 30, 0, 100_000),
            },
            "[09:30:00.000100000] ORD ACK C7/42 AAPL BUY 300@INVALID XNAS",
            ack_start,
            ack_end,
        ),
        Record(
            {
                "kind": "fill",
                "client": "C7",
                "oid": "42",
                "last_qty": "100",
                "last_px": "101.25",
                "venue": "XNAS",
                "liquidity": "maker",
                "order_id": "C7-42",
                "account_id": "KESTREL-1",
                "strategy_id": "MOMO7",
                "ts_ns": at(9, 30, 0, 200_500),
            },
            "[09:30:00.000200500] FIL C7/42 100@101.25 XNAS A",
            *s("[09:30:00.000200500]"),
        ),
        Record(
            {
                "kind": "order_cancelled",
                "client": "C7",
                "oid": "42",
                "reason": "user request\n    approuvé par le desk risque",
                "order_id": "C7-42",
                "strategy_id": "MOMO7",
                "ts_ns": at(9, 30, 1, 500_000_000),
            },
            "[09:30:01.5] ORD CXL C7/42 reason=user request\n    approuvé par le desk risque",
            cxl_start,
            cxl_end,
        ),
        Failure(
            RejectReason.NO_RULE_MATCHED,
            "none of the 3 rules matched",
            "[09:30:02.000000000] ??? unknown line type",
            *s("[09:30:02"),
        ),
        Record(
            {
                "kind": "order_new",
                "client": "C7",
                "oid": "43",
                "symbol": "MSFT",
                "side": "sell",
                "qty": "50",
                "price": "410.5",
                "venue": "XNAS",
                "order_id": "C7-43",
                "strategy_id": "MOMO7",
                "ts_ns": at(23, 59, 59, 999_999_999),
            },
            "[23:59:59.999999999] ORD NEW C7/43 MSFT SELL 50@410.5 XNAS",
            *s("[23:59:59"),
        ),
        Record(
            {  # midnight rollover: the next day
                "kind": "fill",
                "client": "C7",
                "oid": "43",
                "last_qty": "50",
                "last_px": "410.5",
                "venue": "XNAS",
                "liquidity": "taker",
                "order_id": "C7-43",
                "account_id": "KESTREL-1",
                "strategy_id": "MOMO7",
                "ts_ns": at(0, 0, 0, 1, day=1),
            },
            "[00:00:00.000000001] FIL C7/43 50@410.5 XNAS R",
            *s("[00:00:00.000000001]"),
        ),
        Record(
            {  # and stays on the next day
                "kind": "order_cancelled",
                "client": "C7",
                "oid": "44",
                "reason": "eod",
                "order_id": "C7-44",
                "strategy_id": "MOMO7",
                "ts_ns": at(0, 0, 1, day=1),
            },
            "[00:00:01.000000000] ORD CXL C7/44 reason=eod",
            *s("[00:00:01"),
        ),
    ]
    # spans tile the stream exactly, in bytes (the é is two bytes)
    assert [(i.start, i.end) for i in items] == sorted((i.start, i.end) for i in items)
    assert all(a.end == b.start for a, b in itertools.pairwise(items))
    assert items[-1].end == len(KESTREL_LOG)
    cxl = items[5]
    assert isinstance(cxl, Record)
    assert KESTREL_LOG[cxl.start : cxl.end].decode().rstrip() == cxl.raw


def test_kestrel_events() -> None:
    out = clean(feed(kestrel().build(KESTREL_PATH), KESTREL_LOG))
    events = [e for e in out if isinstance(e, Event)]
    rejects = [r for r in out if isinstance(r, Reject)]
    assert [r.reason for r in rejects] == [RejectReason.NO_RULE_MATCHED] * 2
    summary = [
        (e.kind, e.ts, e.order_id, e.side, e.qty, e.price, e.last_qty, e.last_px) for e in events
    ]
    K, B, S = EventKind, Side.BUY, Side.SELL
    assert summary == [
        (K.ORDER_NEW, at(9, 30, 0, 123), "C7-42", B, 300.0, 101.25, None, None),
        (K.ORDER_ACK, at(9, 30, 0, 100_000), "C7-42", B, 300.0, None, None, None),
        (K.FILL, at(9, 30, 0, 200_500), "C7-42", None, None, None, 100.0, 101.25),
        (K.ORDER_CANCELLED, at(9, 30, 1, 500_000_000), "C7-42", None, None, None, None, None),
        (K.ORDER_NEW, at(23, 59, 59, 999_999_999), "C7-43", S, 50.0, 410.5, None, None),
        (K.FILL, at(0, 0, 0, 1, day=1), "C7-43", None, None, None, 50.0, 410.5),
        (K.ORDER_CANCELLED, at(0, 0, 1, day=1), "C7-44", None, None, None, None, None),
    ]
    assert [e.strategy_id for e in events] == ["MOMO7"] * 7
    fill = events[2]
    assert fill.liquidity == "maker"
    assert fill.account_id == "KESTREL-1"
    assert fill.venue == "XNAS"
    assert fill.attrs == {"client": "C7", "oid": "42"}
    assert events[3].reason == "user request\n    approuvé par le desk risque"
    assert fill.src_offset == KESTREL_LOG.index(b"[09:30:00.000200500]")


def test_kestrel_unmatched_counted_as_ignored_when_configured() -> None:
    strict = feed(kestrel().build(KESTREL_PATH), KESTREL_LOG)
    lenient = feed(kestrel(ignore_unmatched=True).build(KESTREL_PATH), KESTREL_LOG)
    assert sum(isinstance(i, Failure) for i in strict) == 2
    assert sum(isinstance(i, Failure) for i in lenient) == 0
    assert [i.why for i in lenient if isinstance(i, Skip)] == [
        "unmatched",
        "rule_skip",
        "unmatched",
    ]
    # everything else is the same, item for item
    assert [i for i in strict if isinstance(i, Record)] == [
        i for i in lenient if isinstance(i, Record)
    ]
    assert [(i.start, i.end) for i in strict] == [(i.start, i.end) for i in lenient]


@pytest.mark.parametrize("step", [1, 2, 3, 7, 13, 64])
def test_kestrel_any_chunking_gives_the_same_items(step: int) -> None:
    whole = feed(kestrel().build(KESTREL_PATH), KESTREL_LOG)
    chunked = feed(kestrel().build(KESTREL_PATH), KESTREL_LOG, range(step, len(KESTREL_LOG), step))
    assert chunked == whole


def test_kestrel_incomplete_last_record_is_held() -> None:
    parser = kestrel().build(KESTREL_PATH)
    data = b"[09:30:00.1] ORD CXL C7/1 reason=first line\n    second line\n"
    items, consumed = parser.parse(data, 0, final=False)
    assert (items, consumed) == ([], 0)  # another continuation line may follow
    # a record start on a line still being written is not trusted yet
    assert parser.parse(data + b"[09:30:00.2] ORD", 0, final=False) == ([], 0)
    items, consumed = parser.parse(data + b"[09:30:00.2] ORD ACK C7/1\n[09:3", 0, final=False)
    assert consumed == len(data)
    assert [i.raw for i in items if isinstance(i, Record)] == [
        "[09:30:00.1] ORD CXL C7/1 reason=first line\n    second line"
    ]
    items, consumed = parser.parse(b"[09:30:00.2] ORD ACK C7/1", len(data), final=True)
    assert consumed == len(b"[09:30:00.2] ORD ACK C7/1")
    assert [(i.start, i.end) for i in items] == [(len(data), len(data) + consumed)]


def test_kestrel_from_toml() -> None:
    """The user-facing form: the whole kestrel config in TOML (no null in TOML: "" drops)."""
    text = r"""
    [parser]
    record_start = '\[\d{2}:\d{2}:\d{2}\.\d{1,9}\]'
    path_pattern = 'STRAT_(?P<strategy_id>[A-Z0-9]+)_(?P<date>\d{8})\.log$'

    [[parser.rules]]
    name = "heartbeat"
    pattern = '^\[[^\]]+\] HB\b'
    skip = true

    [[parser.rules]]
    name = "orders"
    pattern = '''(?sx)
        ^\[(?P<ts>[^\]]+)\]\ ORD\ (?P<kind>NEW|ACK|CXL|REJ)\ (?P<client>\w+)/(?P<oid>\d+)
        (?:\ (?P<symbol>[A-Z]+)\ (?P<side>BUY|SELL)\ (?P<qty>\d+)@(?P<price>\S+))?
        (?:\ (?P<venue>[A-Z]{4}))?
        (?:\ reason=(?P<reason>.+))?$'''
    kind_from = "kind"
    kind_map = { NEW = "order_new", ACK = "order_ack", CXL = "order_cancelled" }
    values = { side = { BUY = "buy", SELL = "sell" }, price = { INVALID = "" } }
    fields = { order_id = "{client}-{oid}" }
    time_format = "%H:%M:%S.%f"

    [[parser.rules]]
    name = "fills"
    pattern = '''(?x)
        ^\[(?P<ts>[^\]]+)\]\ FIL\ (?P<client>\w+)/(?P<oid>\d+)
        \ (?P<last_qty>\d+)@(?P<last_px>[\d.]+)\ (?P<venue>[A-Z]{4})\ (?P<liquidity>[AR])$'''
    kind = "fill"
    values = { liquidity = { A = "maker", R = "taker" } }
    fields = { order_id = "{client}-{oid}" }
    static = { account_id = "KESTREL-1" }
    time_format = "%H:%M:%S.%f"
    """
    settings = msgspec.convert(tomllib.loads(text)["parser"], RegexSettings)
    assert settings.rules[1].values["price"] == {"INVALID": ""}
    from_toml = feed(settings.build(KESTREL_PATH), KESTREL_LOG)
    assert from_toml == feed(kestrel().build(KESTREL_PATH), KESTREL_LOG)


def test_toml_rejects_unknown_keys() -> None:
    text = """
    [[rules]]
    pattern = "x"
    kind = "system"
    time_fromat = "%H:%M"
    """
    with pytest.raises(msgspec.ValidationError, match="time_fromat"):
        msgspec.convert(tomllib.loads(text), RegexSettings)


# ---------------------------------------------------------------------------
# one record per line

SYSTEM = RegexRule(
    pattern=r"^(?P<ts>\S+) (?P<severity>[A-Z]+) (?P<message>.*)$",
    kind="system",
    time_format="%Y-%m-%dT%H:%M:%S.%f",
)


def lines(*rules: RegexRule, path: str = "", **options: Any) -> RegexParser:
    return RegexSettings(rules=list(rules), **options).build(path)


def test_lines_blank_crlf_and_encoding() -> None:
    data = (
        b"2025-03-03T09:30:00.5 INFO started\r\n\n   \n"
        b"2025-03-03T09:30:01.000000001 WARN caf\xc3\xa9\n\xff\xfe oops\n"
    )
    items = feed(lines(SYSTEM), data)
    assert items == [
        Record(
            {
                "severity": "INFO",
                "message": "started",
                "kind": "system",
                "ts_ns": at(9, 30, 0, 500_000_000),
            },
            "2025-03-03T09:30:00.5 INFO started",
            0,
            36,
        ),
        Skip("blank", 36, 37),
        Skip("blank", 37, 41),
        Record(
            {"severity": "WARN", "message": "café", "kind": "system", "ts_ns": at(9, 30, 1, 1)},
            "2025-03-03T09:30:01.000000001 WARN café",
            41,
            82,
        ),
        Failure(RejectReason.ENCODING, "not valid UTF-8 at byte 0", "\\xff\\xfe oops", 82, 90),
    ]


def test_lines_last_line_without_newline_only_when_final() -> None:
    parser = lines(SYSTEM)
    data = b"2025-03-03T09:30:00.5 INFO a\n2025-03-03T09:30:00.6 INFO b"
    items, consumed = parser.parse(data, 100, final=False)
    assert consumed == 29
    assert [(i.start, i.end) for i in items] == [(100, 129)]
    items, consumed = parser.parse(data[29:], 129, final=True)
    assert consumed == len(data) - 29
    assert [(i.start, i.end) for i in items] == [(129, 100 + len(data))]


def test_unmatched_lines_fail_or_are_skipped() -> None:
    data = b"what is this\n"
    assert feed(lines(SYSTEM), data) == [
        Failure(RejectReason.NO_RULE_MATCHED, "none of the 1 rules matched", "what is this", 0, 13)
    ]
    assert feed(lines(SYSTEM, ignore_unmatched=True), data) == [Skip("unmatched", 0, 13)]


def test_first_matching_rule_wins_and_skip_rules_skip() -> None:
    noisy = RegexRule(name="noise", pattern=r"DEBUG", skip=True)
    items = feed(
        lines(noisy, SYSTEM), b"2025-03-03T09:30:00.5 DEBUG x\n2025-03-03T09:30:00.5 INFO y\n"
    )
    assert items[0] == Skip("rule_skip", 0, 30)
    assert isinstance(items[1], Record)
    assert items[1].fields["message"] == "y"


def test_invalid_timestamp_names_the_time_group() -> None:
    rule = RegexRule(
        pattern=r"^(?P<when>\S+) (?P<message>.*)$",
        kind="system",
        time_group="when",
        time_format="%H:%M:%S.%f",
    )
    items = feed(lines(rule, date="2025-03-03"), b"25:00:00.1 late\n9h30 bad\n")
    assert items == [
        Failure(
            RejectReason.INVALID_TIMESTAMP,
            "time of day out of range in '25:00:00.1'",
            "25:00:00.1 late",
            0,
            16,
            "when",
        ),
        Failure(
            RejectReason.INVALID_TIMESTAMP,
            "timestamp '9h30' does not match format '%H:%M:%S.%f'",
            "9h30 bad",
            16,
            25,
            "when",
        ),
    ]


def test_time_group_that_did_not_match_is_missing() -> None:
    rule = RegexRule(
        pattern=r"^(?:@(?P<ts>\S+) )?(?P<message>.*)$", kind="system", time_format="%H:%M:%S"
    )
    items = feed(lines(rule, date="2025-03-03"), b"@09:30:00 a\nno time\n")
    assert isinstance(items[0], Record)
    assert items[0].fields == {"message": "a", "kind": "system", "ts_ns": at(9, 30, 0)}
    assert items[1] == Failure(
        RejectReason.MISSING_FIELD,
        "rules[0]: time group 'ts' did not match",
        "no time",
        12,
        20,
        "ts",
    )


def test_template_with_a_group_that_did_not_take_part_is_missing_field() -> None:
    rule = RegexRule(
        name="acks",
        pattern=r"^(?P<ts>\S+) ACK (?:(?P<client>\w+)/)?(?P<oid>\d+)$",
        kind="order_ack",
        fields={"order_id": "{client}-{oid}"},
        time_format="%H:%M:%S",
    )
    items = feed(lines(rule, date="2025-03-03"), b"09:30:00 ACK C1/7\n09:30:01 ACK 8\n")
    assert isinstance(items[0], Record)
    assert items[0].fields["order_id"] == "C1-7"
    assert items[1] == Failure(
        RejectReason.MISSING_FIELD,
        "rules[0] ('acks'): order_id needs group 'client', which did not match",
        "09:30:01 ACK 8",
        18,
        33,
        "order_id",
    )


def test_groups_that_did_not_take_part_are_absent_and_empty_ones_kept() -> None:
    rule = RegexRule(
        pattern=r"^(?P<ts>\S+) (?P<a>x)?(?P<b>y*)$", kind="system", time_format="%H:%M"
    )
    items = feed(lines(rule, date="2025-03-03"), b"09:30 \n09:30 xyy\n")
    assert [i.fields for i in items if isinstance(i, Record)] == [
        {"b": "", "kind": "system", "ts_ns": at(9, 30, 0)},
        {"a": "x", "b": "yy", "kind": "system", "ts_ns": at(9, 30, 0)},
    ]


def test_kind_from_unmapped_passes_through_and_the_cleaner_rejects_it() -> None:
    rule = RegexRule(
        pattern=r"^(?P<ts>\S+) (?P<evt>\w+) (?P<message>.*)$",
        kind_from="evt",
        kind_map={"LOG": "system"},
        time_format="%H:%M:%S",
    )
    items = feed(
        lines(rule, date="2025-03-03"), b"09:30:00 LOG hello\n09:30:00 system hi\n09:30:00 BOOM x\n"
    )
    assert [i.fields["kind"] for i in items if isinstance(i, Record)] == [
        "system",
        "system",
        "BOOM",
    ]
    assert fields(items[0])["evt"] == "LOG"
    out = clean(items)
    assert [type(o).__name__ for o in out] == ["Event", "Event", "Reject"]
    reject = out[2]
    assert isinstance(reject, Reject)
    assert reject.reason == RejectReason.UNKNOWN_KIND


def test_value_maps_templates_static_and_path_fields_precedence() -> None:
    rule = RegexRule(
        pattern=r"^(?P<ts>\S+) (?P<symbol>\w+) (?P<side>\w) (?P<venue>\w+)?$",
        kind="quote",
        values={"side": {"B": "buy", "X": None}, "venue": {"-": "ignored"}},
        fields={"message": "{symbol}@{venue}"},
        static={"venue": "XLON", "bid": 1.5, "bid_size": 3, "strategy_id": "from-static"},
        time_format="%H:%M:%S",
    )
    parser = lines(
        rule,
        date="2025-03-03",
        path="/logs/desk=FX/strategy_id=S9/run.log",
        path_pattern=r"desk=(?P<desk>\w+)/strategy_id=(?P<strategy_id>\w+)/",
    )
    items = feed(parser, b"09:30:00 EURUSD B XPAR\n09:30:00 GBPUSD X \n")
    assert isinstance(items[0], Record)
    assert items[0].fields == {
        "symbol": "EURUSD",
        "side": "buy",
        "venue": "XPAR",  # the group wins over static
        "message": "EURUSD@XPAR",
        "bid": 1.5,
        "bid_size": 3,
        "strategy_id": "from-static",  # static wins over the path
        "desk": "FX",  # path fields fill in
        "kind": "quote",
        "ts_ns": at(9, 30, 0),
    }
    # the template needs venue, which did not take part in the second line
    assert isinstance(items[1], Failure)
    assert items[1].field == "message"


def test_path_date_from_y_m_d_groups_wins_over_config_date() -> None:
    rule = RegexRule(pattern=r"^(?P<ts>\S+) (?P<message>.*)$", kind="system", time_format="%H:%M")
    parser = lines(
        rule,
        date="2020-01-01",
        path="/logs/2025/03/04/engine.log",
        path_pattern=r"/(?P<Y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/",
    )
    items = feed(parser, b"10:00 x\n")
    assert isinstance(items[0], Record)
    assert items[0].fields == {"message": "x", "kind": "system", "ts_ns": at(10, 0, 0, day=1)}


def test_config_date_used_when_the_path_does_not_match() -> None:
    rule = RegexRule(pattern=r"^(?P<ts>\S+) (?P<message>.*)$", kind="system", time_format="%H:%M")
    parser = lines(rule, date="2025-03-03", path="/x.log", path_pattern=r"(?P<date>\d{8})")
    items = feed(parser, b"10:00 x\n")
    assert fields(items[0])["ts_ns"] == at(10, 0, 0)


def test_time_zone_applies_to_time_only_and_dated_timestamps() -> None:
    # New York is UTC-5 on 2025-03-03 (DST starts 2025-03-09)
    time_only = RegexRule(
        pattern=r"^T (?P<ts>\S+)$",
        kind="system",
        time_format="%H:%M:%S.%f",
        static={"message": "t"},
    )
    dated = RegexRule(
        pattern=r"^D (?P<ts>\S+ \S+)$",
        kind="system",
        time_format="%Y-%m-%d %H:%M:%S.%f",
        static={"message": "d"},
    )
    offset = RegexRule(
        pattern=r"^O (?P<ts>\S+)$", kind="system", time_format="%H:%M:%S%z", static={"message": "o"}
    )
    parser = lines(time_only, dated, offset, date="2025-03-03", time_zone="America/New_York")
    items = feed(parser, b"T 09:30:00.25\nD 2025-03-10 09:30:00.5\nO 09:30:00+01:00\n")
    assert [fields(i)["ts_ns"] for i in items] == [
        at(14, 30, 0, 250_000_000),
        at(13, 30, 0, 500_000_000, day=7),  # EDT, UTC-4
        at(8, 30, 0),  # an explicit offset wins over the zone
    ]


def test_dated_timestamps_do_not_roll_over() -> None:
    parser = lines(SYSTEM)
    items = feed(parser, b"2025-03-03T23:59:59.9 INFO a\n2025-03-03T00:00:00.1 INFO b\n")
    assert [fields(i)["ts_ns"] for i in items] == [
        at(23, 59, 59, 900_000_000),
        at(0, 0, 0, 100_000_000),
    ]


def test_rollover_is_per_instance_and_ignores_small_steps_back() -> None:
    rule = RegexRule(
        pattern=r"^(?P<ts>\S+) (?P<message>.*)$", kind="system", time_format="%H:%M:%S"
    )
    data = b"23:00:00 a\n22:59:00 b\n01:00:00 c\n12:30:00 d\n00:10:00 e\n"
    day = [
        (fields(i)["ts_ns"] - DAY_NS) // NS_PER_DAY
        for i in feed(lines(rule, date="2025-03-03"), data)
    ]
    assert day == [0, 0, 1, 1, 2]
    # a new parser (a new stream) starts again on the configured date
    items = feed(lines(rule, date="2025-03-03"), b"00:10:00 e\n")
    assert fields(items[0])["ts_ns"] == at(0, 10, 0)


def test_rollover_is_not_advanced_by_unparsed_or_skipped_records() -> None:
    rule = RegexRule(
        pattern=r"^(?P<ts>\S+) (?P<message>.*)$", kind="system", time_format="%H:%M:%S"
    )
    skip = RegexRule(pattern=r"^\S+ skip", skip=True)
    data = b"23:00:00 a\n01:00:00 skip\n99:00:00 bad\n23:30:00 b\n"
    items = feed(lines(skip, rule, date="2025-03-03"), data)
    assert fields(items[-1])["ts_ns"] == at(23, 30, 0)


def test_line_too_long() -> None:
    parser = RegexSettings(rules=[SYSTEM]).build(max_record_bytes=40)
    items = feed(parser, b"2025-03-03T09:30:00.5 INFO " + b"x" * 40 + b"\nshort\n")
    assert isinstance(items[0], Failure)
    assert items[0].reason == RejectReason.LINE_TOO_LONG
    assert (items[0].start, items[0].end) == (0, 68)
    assert items[1] == Failure(
        RejectReason.NO_RULE_MATCHED, "none of the 1 rules matched", "short", 68, 74
    )


# ---------------------------------------------------------------------------
# record_start details


def multi(**options: Any) -> RegexParser:
    rule = RegexRule(
        pattern=r"(?s)^#(?P<ts>\d\d:\d\d) (?P<message>.*)$", kind="system", time_format="%H:%M"
    )
    return RegexSettings(
        rules=[rule], record_start=r"#\d\d:\d\d ", date="2025-03-03", **options
    ).build()


def test_record_start_blank_preamble_and_trailing_whitespace() -> None:
    data = b"\n\n#09:30 a\n\n  b  \n#09:31 c#09:32 d  \r\n"
    items = feed(multi(), data)
    assert items == [
        Skip("blank", 0, 1),
        Skip("blank", 1, 2),
        Record(
            {"message": "a\n\n  b", "kind": "system", "ts_ns": at(9, 30, 0)},
            "#09:30 a\n\n  b",
            2,
            18,
        ),
        Record({"message": "c", "kind": "system", "ts_ns": at(9, 31, 0)}, "#09:31 c", 18, 26),
        Record({"message": "d", "kind": "system", "ts_ns": at(9, 32, 0)}, "#09:32 d", 26, 38),
    ]


def test_record_start_encoding_errors_and_exact_byte_spans() -> None:
    data = "#09:30 é\n#09:31 ".encode() + b"\xff\xfe\n" + "#09:32 ü\n".encode()
    items = feed(multi(), data)
    assert [(type(i).__name__, i.start, i.end) for i in items] == [
        ("Record", 0, 10),
        ("Failure", 10, 20),
        ("Record", 20, 30),
    ]
    bad = items[1]
    assert isinstance(bad, Failure)
    assert bad.reason == RejectReason.ENCODING
    assert bad.raw == "#09:31 \\xff\\xfe"
    assert fields(items[2])["message"] == "ü"


def test_record_start_preamble_is_passed_on_line_by_line() -> None:
    """A stream whose record start never matches (a typo in the config) is not held."""
    data = b"no records here\nat all\npartial"
    parser = multi()
    before = "text before the first record start"
    assert parser.parse(data, 0, final=False) == (
        [
            Failure(RejectReason.NO_RULE_MATCHED, before, "no records here", 0, 16),
            Failure(RejectReason.NO_RULE_MATCHED, before, "at all", 16, 23),
        ],
        23,
    )
    # the next chunk still continues the text before the first record start
    assert parser.parse(b"partial line #09:30 x\n#09:31 y", 23, final=True) == (
        [
            Failure(RejectReason.NO_RULE_MATCHED, before, "partial line", 23, 36),
            Record({"message": "x", "kind": "system", "ts_ns": at(9, 30, 0)}, "#09:30 x", 36, 45),
            Record({"message": "y", "kind": "system", "ts_ns": at(9, 31, 0)}, "#09:31 y", 45, 53),
        ],
        30,
    )
    assert feed(multi(ignore_unmatched=True), data) == [
        Skip("unmatched", 0, 16),
        Skip("unmatched", 16, 23),
        Skip("unmatched", 23, 30),
    ]


def test_record_start_resumed_stream_begins_at_a_record() -> None:
    items, consumed = multi().parse(b"#09:30 a\n#09:31 b\n", 1000, final=True)
    assert [(i.start, i.end) for i in items] == [(1000, 1009), (1009, 1018)]
    assert consumed == 18


def test_record_start_too_long() -> None:
    parser = RegexSettings(rules=[SYSTEM], record_start=r"(?m)^\d{4}-").build(max_record_bytes=20)
    items = feed(parser, b"2025-03-03T09:30:00.5 INFO long\n  more\n")
    assert len(items) == 1
    assert isinstance(items[0], Failure)
    assert items[0].reason == RejectReason.LINE_TOO_LONG


# ---------------------------------------------------------------------------
# configuration errors: found once, at build, naming the rule

OK_RULE = RegexRule(
    name="ok",
    pattern=r"^(?P<ts>\S+) (?P<message>.*)$",
    kind="system",
    time_format="%Y-%m-%dT%H:%M:%S",
)


def bad(**changes: object) -> RegexSettings:
    rule = msgspec.structs.replace(OK_RULE, name="broken", **changes)
    return RegexSettings(rules=[OK_RULE, rule])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (bad(pattern="(?P<ts>["), r"rules\[1\] \('broken'\): invalid pattern"),
        (bad(time_group="when"), r"rules\[1\] \('broken'\): time_group names group 'when'"),
        (bad(kind=None), r"rules\[1\] \('broken'\): set `kind` or `kind_from`"),
        (bad(kind_from="message"), r"rules\[1\] \('broken'\): set either `kind` or `kind_from`"),
        (bad(kind=None, kind_from="evt"), r"rules\[1\] \('broken'\): kind_from names group 'evt'"),
        (bad(kind="trade"), r"rules\[1\] \('broken'\): kind = 'trade' is not an event kind"),
        (
            bad(kind=None, kind_from="message", kind_map={"X": "fil"}),
            r"rules\[1\] \('broken'\): kind_map\['X'\] = 'fil' is not an event kind",
        ),
        (
            bad(fields={"order_id": "{client}-{oid}"}),
            r"rules\[1\] \('broken'\): fields.order_id = '\{client\}-\{oid\}' names group 'client'",
        ),
        (bad(fields={"order_id": "{message"}), r"rules\[1\] \('broken'\): fields.order_id"),
        (bad(fields={"order_id": "{message:d}"}), r"rules\[1\] \('broken'\): fields.order_id"),
        (
            bad(values={"sid": {"B": "buy"}}),
            r"rules\[1\] \('broken'\): values.sid names group 'sid'",
        ),
        (bad(time_format="%H:%Q"), r"rules\[1\] \('broken'\): bad time_format"),
        (bad(time_format="%d %H:%M"), r"rules\[1\] \('broken'\): bad time_format.*partial date"),
        (bad(time_format=None), r"rules\[1\] \('broken'\): time_format is required"),
        (
            bad(time_format="%H:%M:%S"),
            r"rules\[1\] \('broken'\): time_format '%H:%M:%S' has no date",
        ),
        (RegexSettings(rules=[]), "at least one rule"),
        (RegexSettings(rules=[OK_RULE], record_start="("), "record_start: invalid pattern"),
        (RegexSettings(rules=[OK_RULE], path_pattern="(?P<x"), "path_pattern: invalid pattern"),
        (RegexSettings(rules=[OK_RULE], date="03/03/2025"), "date: '03/03/2025' is not a date"),
        (
            RegexSettings(rules=[OK_RULE], date="2025-02-30"),
            "date: '2025-02-30' is not a valid date",
        ),
        (RegexSettings(rules=[OK_RULE], time_zone="Mars/Olympus"), "unknown time zone"),
    ],
)
def test_config_errors(settings: RegexSettings, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings.build("/logs/engine.log")


def test_unnamed_rule_is_named_by_index() -> None:
    rule = RegexRule(pattern=r"(?P<ts>\S+)", kind="system", time_format="%H:%M")
    with pytest.raises(ValueError, match=r"^rules\[0\]: time_format '%H:%M' has no date"):
        RegexSettings(rules=[rule]).build()


def test_time_only_needs_a_date_from_the_path_that_is_actually_there() -> None:
    rule = RegexRule(pattern=r"(?P<ts>\S+)", kind="system", time_format="%H:%M")
    settings = RegexSettings(rules=[rule], path_pattern=r"_(?P<date>\d{8})\.log$")
    assert isinstance(settings.build("/logs/engine_20250303.log"), RegexParser)
    with pytest.raises(ValueError, match="has no date"):
        settings.build("/logs/engine.log")
    with pytest.raises(ValueError, match=r"path_pattern date of .*'20251399' is not a valid date"):
        settings.build("/logs/engine_20251399.log")


def test_skip_rules_need_no_kind_time_or_groups() -> None:
    skip = RegexRule(pattern=r"^HB", skip=True)
    parser = RegexSettings(rules=[skip, OK_RULE]).build()
    assert feed(parser, b"HB 1\n") == [Skip("rule_skip", 0, 5)]


def test_record_start_is_decided_on_complete_lines_only() -> None:
    """``09:30`` alone on a line is a header, but a line still being written that reads
    ``09:30`` so far may turn out to be ``09:300 …``: a continuation line."""
    rule = RegexRule(
        pattern=r"(?s)^(?P<ts>\d\d:\d\d)\n(?P<message>.*)$", kind="system", time_format="%H:%M"
    )
    settings = RegexSettings(rules=[rule], record_start=r"(?m)^\d\d:\d\d$", date="2025-03-03")
    data = b"09:30\nfirst\n09:300 is not a header\n09:31\nsecond\n"
    whole = feed(settings.build(), data)
    assert [fields(i)["message"] for i in whole] == ["first\n09:300 is not a header", "second"]
    cut = len(b"09:30\nfirst\n09:30")
    assert feed(settings.build(), data, [cut]) == whole


def test_time_beyond_the_calendar_is_an_invalid_timestamp_not_a_crash() -> None:
    rule = RegexRule(pattern=r"(?P<ts>\S+) (?P<message>.*)", kind="system", time_format="%H:%M")
    parser = RegexSettings(rules=[rule], date="9999-12-31", time_zone="Europe/Paris").build()
    items = feed(parser, b"23:00 a\n01:00 b\n")  # the second line rolls over into year 10000
    assert isinstance(items[0], Record)
    assert isinstance(items[1], Failure)
    assert (items[1].reason, items[1].field) == (RejectReason.INVALID_TIMESTAMP, "ts")


def test_rollover_cannot_tell_a_late_record_from_a_new_day() -> None:
    """The documented limit of the forward-only rule, pinned so a change is deliberate."""
    rule = RegexRule(
        pattern=r"(?P<ts>\S+) (?P<message>.*)", kind="system", time_format="%H:%M:%S.%f"
    )
    data = b"23:59:59.9 a\n00:00:00.1 b\n23:59:59.95 c\n00:00:00.2 d\n"
    items = feed(lines(rule, date="2025-03-03"), data)
    assert [fields(i)["ts_ns"] for i in items] == [
        at(23, 59, 59, 900_000_000),
        at(0, 0, 0, 100_000_000, day=1),
        at(23, 59, 59, 950_000_000, day=1),
        at(0, 0, 0, 200_000_000, day=2),
    ]
