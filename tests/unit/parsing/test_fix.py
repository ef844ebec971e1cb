"""FIX tag=value parser: golden session logs (QuickFIX C++/J, quickfixgo) and edge cases,
checked on the parsed records and on the events the cleaner makes of them."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest

from tradelog.model.events import Event, EventKind, Liquidity, Reject, RejectReason, Side
from tradelog.parsing.base import Failure, Item, Record, Skip
from tradelog.parsing.fix import FixParser, FixSettings
from tradelog.stages.clean import Cleaner, CleanSettings

FIXTURES = Path(__file__).parents[2] / "fixtures" / "fix"
SOH = "\x01"
DAY_NS = 1_705_276_800 * 10**9  # 2024-01-15T00:00:00Z


def at(hour: int, minute: int, second: int, frac_ns: int = 0) -> int:
    """UTC ns on 2024-01-15."""
    return DAY_NS + (hour * 3600 + minute * 60 + second) * 10**9 + frac_ns


def fix_message(
    fields: Sequence[tuple[int | str, object]], *, begin: str = "FIX.4.4", sep: str = "|"
) -> str:
    """A message with correct BodyLength(9) and CheckSum(10), computed with SOH separators."""
    body = "".join(f"{tag}={value}{SOH}" for tag, value in fields)
    head = f"8={begin}{SOH}9={len(body.encode())}{SOH}"
    checksum = sum((head + body).encode()) % 256
    return f"{head}{body}10={checksum:03d}{SOH}".replace(SOH, sep)


def exec_report(
    *extra: tuple[int | str, object], exec_type: str = "F"
) -> list[tuple[int | str, object]]:
    return [
        (35, "8"), (34, 10), (49, "VENUE"), (52, "20240115-14:30:00.000"), (56, "CLIENT"),
        (11, "O1"), (17, "X1"), (31, "10.5"), (32, "2"), (37, "V1"), (39, "1"), (54, "1"),
        (55, "IBM"), (60, "20240115-14:30:01.000"), (150, exec_type), *extra,
    ]  # fmt: skip


def parse_one(line: str, settings: FixSettings | None = None) -> Item:
    items, consumed = FixParser(settings).parse(line.encode(), 0, final=True)
    assert consumed == len(line.encode())
    assert len(items) == 1
    return items[0]


def parse_file(name: str) -> list[Item]:
    data = (FIXTURES / name).read_bytes()
    items, consumed = FixParser().parse(data, 0, final=False)
    assert consumed == len(data)
    offsets = [0]
    for line in data.split(b"\n")[:-1]:
        offsets.append(offsets[-1] + len(line) + 1)
    assert [(i.start, i.end) for i in items] == list(itertools.pairwise(offsets))
    return items


def clean(item: Item) -> Event | Reject | None:
    return Cleaner("fix", CleanSettings()).clean(item, "fix.log", "s1", 0)


def event(item: Item) -> Event:
    out = clean(item)
    assert isinstance(out, Event), out
    return out


def record(item: Item) -> Record:
    assert isinstance(item, Record), item
    return item


def failure(item: Item, reason: RejectReason) -> Failure:
    assert isinstance(item, Failure), item
    assert item.reason is reason, item
    return item


def skip(item: Item) -> str:
    assert isinstance(item, Skip), item
    return item.why


# ---------------------------------------------------------------------------
# QuickFIX C++ session log (`|` separators, "YYYYMMDD-HH:MM:SS.sss : " prefix)


@pytest.fixture(scope="module")
def session() -> list[Item]:
    items = parse_file("quickfix_cpp_session.log")
    assert len(items) == 25
    return items


def test_session_messages_are_skipped(session: list[Item]) -> None:
    assert [skip(session[i]) for i in (0, 1, 2, 24)] == ["fix_session"] * 4
    assert all(clean(session[i]) is None for i in (0, 1, 2, 24))


def test_new_order_single(session: list[Item]) -> None:
    rec = record(session[3])
    assert rec.fields == {
        "kind": "order_new",
        "ts_ns": at(14, 30, 1, 123_456),
        "order_id": "ORD1",
        "symbol": "AAPL",
        "qty": "100",
        "price": "50.25",
        "account_id": "ACC1",
        "side": "buy",
        "order_type": "limit",
        "tif": "day",
        "fix_msg_type": "D",
        "fix_sender": "CLIENT",
        "fix_target": "VENUE",
        "fix_seq": 2,
    }
    assert rec.raw.startswith("20240115-14:30:01.000 : 8=FIX.4.4|9=156|35=D|")
    ev = event(rec)
    assert ev.kind is EventKind.ORDER_NEW
    assert ev.ts == at(14, 30, 1, 123_456)
    assert (ev.order_id, ev.symbol, ev.side, ev.qty, ev.price) == (
        "ORD1",
        "AAPL",
        Side.BUY,
        100.0,
        50.25,
    )
    assert (ev.order_type, ev.tif, ev.account_id, ev.venue) == ("limit", "day", "ACC1", None)
    assert ev.strategy_id is None  # tag 7928 is not standard: ignored
    assert ev.event_id.startswith("h-")  # derived from the byte position
    assert ev.attrs == {
        "fix_msg_type": "D",
        "fix_sender": "CLIENT",
        "fix_target": "VENUE",
        "fix_seq": 2,
    }


def test_execution_report_new_is_an_ack(session: list[Item]) -> None:
    rec = record(session[4])
    assert rec.fields["kind"] == "order_ack"
    assert rec.fields["event_id"] == "fix:VENUE:CLIENT:EX1"
    assert (rec.fields["exec_type"], rec.fields["ord_status"]) == ("0", "0")
    ev = event(rec)
    assert ev.kind is EventKind.ORDER_ACK
    assert ev.ts == at(14, 30, 1, 2_000_000)
    assert (ev.order_id, ev.venue_order_id, ev.event_id) == ("ORD1", "V1", "fix:VENUE:CLIENT:EX1")
    assert ev.attrs is not None
    assert ev.attrs["exec_id"] == "EX1"  # not a field of acks: kept in attrs by the cleaner


def test_partial_fills_then_fill(session: list[Item]) -> None:
    fills = [event(session[i]) for i in (5, 6, 7)]
    assert [f.kind for f in fills] == [EventKind.FILL] * 3
    assert [f.ts for f in fills] == [at(14, 30, 2), at(14, 30, 3), at(14, 30, 4)]
    assert [f.exec_id for f in fills] == ["EX2", "EX3", "EX4"]
    assert [f.event_id for f in fills] == [f"fix:VENUE:CLIENT:EX{n}" for n in (2, 3, 4)]
    assert [(f.last_qty, f.last_px) for f in fills] == [(30.0, 50.25), (30.0, 50.26), (40.0, 50.25)]
    assert [(f.cum_qty, f.leaves_qty) for f in fills] == [(30.0, 70.0), (60.0, 40.0), (100.0, 0.0)]
    assert [f.avg_px for f in fills] == [50.25, 50.255, 50.253]
    assert [f.liquidity for f in fills] == [Liquidity.MAKER, Liquidity.TAKER, Liquidity.TAKER]
    assert [f.fee for f in fills] == [0.15, 0.3, 0.4]  # 13 absent or 3 (absolute)
    assert [f.fee_currency for f in fills] == ["USD", None, None]
    assert {f.venue for f in fills} == {"XNAS"}
    assert {(f.order_id, f.venue_order_id, f.side, f.qty) for f in fills} == {
        ("ORD1", "V1", Side.BUY, 100.0)
    }
    assert [f.attrs["ord_status"] for f in fills if f.attrs] == ["1", "1", "2"]


def test_possdup_resend_has_the_same_event_id(session: list[Item]) -> None:
    first, resend = event(session[5]), event(session[8])
    assert resend.event_id == first.event_id == "fix:VENUE:CLIENT:EX2"
    assert resend.ts == first.ts
    assert resend.attrs is not None
    assert resend.attrs["poss_dup"] is True
    assert first.attrs is not None
    assert "poss_dup" not in first.attrs


def test_cancel_chain(session: list[Item]) -> None:
    request, confirm = record(session[11]), record(session[12])
    assert request.fields["kind"] == "order_cancel_request"
    assert "event_id" not in request.fields
    req = event(request)
    assert req.kind is EventKind.ORDER_CANCEL_REQUEST
    assert (req.order_id, req.orig_order_id, req.venue_order_id) == ("CXL2", "ORD2", "V2")
    assert (req.side, req.qty, req.ts) == (Side.SELL, 200.0, at(14, 30, 6))
    done = event(confirm)
    assert done.kind is EventKind.ORDER_CANCELLED
    assert (done.order_id, done.orig_order_id, done.venue_order_id) == ("CXL2", "ORD2", "V2")
    assert (done.reason, done.cum_qty, done.leaves_qty) == ("Canceled by user", 0.0, 0.0)
    assert done.event_id == "fix:VENUE:CLIENT:EX6"
    assert done.ts == at(14, 30, 6, 4_000_000)


def test_replace_request_and_confirmation(session: list[Item]) -> None:
    request, confirm = event(session[15]), event(session[16])
    for ev in (request, confirm):
        assert ev.kind is EventKind.ORDER_REPLACE
        assert (ev.order_id, ev.orig_order_id, ev.qty, ev.price) == ("REP3", "ORD3", 300.0, 49.5)
    assert request.event_id.startswith("h-")
    assert confirm.event_id == "fix:VENUE:CLIENT:EX8"
    assert (request.ts, confirm.ts) == (at(14, 30, 8), at(14, 30, 8, 3_000_000))


def test_market_order_and_reject(session: list[Item]) -> None:
    order = event(session[17])
    assert (order.kind, order.order_type, order.price) == (EventKind.ORDER_NEW, "market", None)
    rejected = event(session[18])
    assert rejected.kind is EventKind.ORDER_REJECTED
    assert (rejected.order_id, rejected.reason) == ("ORD4", "Unknown symbol")
    assert rejected.event_id == "fix:VENUE:CLIENT:EX9"
    assert rejected.attrs is not None
    assert (rejected.attrs["text"], rejected.attrs["ord_rej_reason"]) == ("Unknown symbol", "1")


def test_order_cancel_reject(session: list[Item]) -> None:
    rec = record(session[20])
    assert rec.fields["kind"] == "order_cancel_rejected"
    assert "event_id" not in rec.fields
    ev = event(rec)
    assert ev.kind is EventKind.ORDER_CANCEL_REJECTED
    assert (ev.order_id, ev.orig_order_id, ev.venue_order_id) == ("CXL5", "ORD1", "V1")
    assert ev.reason == "too late to cancel (CxlRejReason(102)=0)"  # no 58: from 102
    assert ev.attrs is not None
    assert (ev.attrs["cxl_rej_response_to"], ev.attrs["ord_status"]) == ("1", "2")


def test_corrupt_message_fails_its_checksum(session: list[Item]) -> None:
    bad = failure(session[21], RejectReason.BAD_CHECKSUM)
    assert "expected" in bad.detail
    assert "found '" in bad.detail
    assert bad.raw.startswith("20240115-14:30:11.002 : 8=FIX.4.4|")
    rej = clean(bad)
    assert isinstance(rej, Reject)
    assert (rej.reason, rej.src_offset) == (RejectReason.BAD_CHECKSUM, bad.start)


def test_bad_body_length(session: list[Item]) -> None:
    bad = failure(session[22], RejectReason.BAD_BODY_LENGTH)
    assert bad.detail == "BodyLength(9) mismatch: expected 107 (bytes counted), found '106'"


def test_pending_cancel_is_skipped(session: list[Item]) -> None:
    assert skip(session[23]) == "fix_status_pending_cancel"


def test_checks_can_be_turned_off() -> None:
    lines = (FIXTURES / "quickfix_cpp_session.log").read_text().splitlines()
    unchecked = FixSettings(validate_checksum=False, validate_body_length=False)
    assert record(parse_one(lines[21], unchecked)).fields["last_qty"] == "41"
    assert record(parse_one(lines[22], unchecked)).fields["exec_id"] == "EX11"
    failure(
        parse_one(lines[22], FixSettings(validate_checksum=False)), RejectReason.BAD_BODY_LENGTH
    )
    failure(
        parse_one(lines[21], FixSettings(validate_body_length=False)), RejectReason.BAD_CHECKSUM
    )


# ---------------------------------------------------------------------------
# QuickFIX/J (": " prefix, real SOH), no prefix, quickfixgo market data (`^A`)


def test_quickfixj_prefix_and_soh() -> None:
    items = parse_file("quickfixj_soh.log")
    assert skip(items[0]) == "fix_session"
    order = event(items[1])
    assert order.kind is EventKind.ORDER_NEW
    assert order.ts == at(14, 31, 0, 999_000_000)  # no 60: SendingTime
    assert (order.side, order.order_type, order.tif, order.price) == (
        Side.SELL,
        "market",
        "ioc",
        None,
    )
    ack = event(items[2])
    assert ack.ts == at(14, 31, 1, 250_000_000)  # no 60 or 52: the log prefix time
    assert ack.event_id == "fix:VENUE:CLIENT:JX1"
    assert skip(items[3]) == "fix_status_order_status"


def test_no_prefix_and_no_time_is_invalid_timestamp() -> None:
    items = parse_file("no_prefix_soh.log")
    assert event(items[0]).ts == at(14, 33, 0, 500_000)
    bad = failure(items[1], RejectReason.INVALID_TIMESTAMP)
    assert bad.detail == "no TransactTime, SendingTime or log timestamp"
    assert bad.field == "ts"


def test_market_data_snapshot_and_increments() -> None:
    items = parse_file("quickfixgo_md.log")
    quotes = [event(items[i]) for i in (0, 1, 2, 4)]
    assert {q.kind for q in quotes} == {EventKind.QUOTE}
    assert {q.symbol for q in quotes} == {"AAPL"}
    top = [(q.bid, q.bid_size, q.ask, q.ask_size) for q in quotes]
    assert top == [
        (100.0, 5.0, 100.1, 7.0),  # W
        (100.05, 2.0, 100.2, 3.0),  # change 100.00, delete ask 100.10, new bid 100.05
        (100.0, 6.0, 100.2, 3.0),  # delete bid 100.05
        (100.0, 9.0, 100.15, 4.0),  # the two-symbol X before it still updated the book
    ]
    assert quotes[0].ts == at(14, 32, 0, 99_000_000)
    assert quotes[2].ts == at(14, 32, 0, 300_001_000)  # quickfixgo prefix, µs, UTC
    spanning = failure(items[3], RejectReason.UNSUPPORTED_MESSAGE)
    assert "several symbols" in spanning.detail
    assert skip(items[5]) == "fix_md_no_book_entries"  # only a trade entry
    assert skip(items[6]) == "fix_md_empty_book"  # W with no entries
    assert skip(items[7]) == "fix_session"
    rec = record(items[0])
    assert rec.fields["fix_msg_type"] == "W"
    assert "event_id" not in rec.fields


# ---------------------------------------------------------------------------
# edge cases built with fix_message


def test_caret_a_separator_and_unknown_prefix() -> None:
    line = "some engine said: " + fix_message(exec_report(), sep="^A")
    ev = event(parse_one(line))
    assert (ev.kind, ev.ts, ev.last_qty) == (EventKind.FILL, at(14, 30, 1), 2.0)


def test_pipe_inside_a_value_of_an_soh_message() -> None:
    line = fix_message(exec_report((58, "a|b=c"), exec_type="4"), sep=SOH)
    ev = event(parse_one(line))
    assert (ev.kind, ev.reason) == (EventKind.ORDER_CANCELLED, "a|b=c")


def test_non_ascii_text_counts_bytes() -> None:
    ev = event(
        parse_one(fix_message(exec_report((58, "Prix invalide – réessayez"), exec_type="8")))
    )
    assert ev.reason == "Prix invalide – réessayez"


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        ("hello world", "no FIX message ('8=FIX') in line"),
        ("8=FIX.4.4", "no field separator (SOH, '|' or '^A')"),
        (fix_message([(34, 1), (49, "A")]), "no MsgType(35)"),
        (
            fix_message([(35, "D"), ("x1", "2")]),
            "field 'x1=2' is not tag=value (tags must be digits)",
        ),
        (fix_message([(35, "D"), (11, "A")]).replace("|11=A|", "||11=A|"), "empty field"),
    ],
)
def test_malformed(line: str, detail: str) -> None:
    settings = FixSettings(validate_checksum=False, validate_body_length=False)
    assert failure(parse_one(line, settings), RejectReason.MALFORMED).detail.startswith(detail)


def test_truncated_message_fails_body_length() -> None:
    line = fix_message(exec_report())
    bad = failure(parse_one(line[: line.index("|60=")]), RejectReason.BAD_BODY_LENGTH)
    assert "expected" in bad.detail


def test_fields_after_checksum_are_malformed() -> None:
    failure(parse_one(fix_message(exec_report()) + "58=late|"), RejectReason.MALFORMED)


@pytest.mark.parametrize(
    ("exec_type", "kind"),
    [("0", "order_ack"), ("1", "fill"), ("2", "fill"), ("F", "fill"), ("3", "order_expired"),
     ("4", "order_cancelled"), ("5", "order_replace"), ("8", "order_rejected"),
     ("C", "order_expired")],
)  # fmt: skip
def test_exec_type_kinds(exec_type: str, kind: str) -> None:
    rec = record(parse_one(fix_message(exec_report(exec_type=exec_type), begin="FIX.4.2")))
    assert rec.fields["kind"] == kind
    assert event(rec).kind == kind


@pytest.mark.parametrize(
    ("exec_type", "why"),
    [("A", "fix_status_pending_new"), ("6", "fix_status_pending_cancel"),
     ("E", "fix_status_pending_replace"), ("I", "fix_status_order_status"),
     ("D", "fix_status_restated")],
)  # fmt: skip
def test_status_reports_are_skipped(exec_type: str, why: str) -> None:
    assert skip(parse_one(fix_message(exec_report(exec_type=exec_type)))) == why


@pytest.mark.parametrize(
    ("exec_type", "name"),
    [("G", "TradeCorrect"), ("H", "TradeCancel"), ("7", "Stopped"), ("9", "Suspended"),
     ("B", "Calculated"), ("Z", "unknown")],
)  # fmt: skip
def test_unsupported_exec_types(exec_type: str, name: str) -> None:
    bad = failure(
        parse_one(fix_message(exec_report(exec_type=exec_type))), RejectReason.UNSUPPORTED_MESSAGE
    )
    assert f"ExecType(150)={exec_type} ({name})" in bad.detail


def test_fix42_trade_bust_is_unsupported_and_status_skipped() -> None:
    bust = fix_message(exec_report((20, "1"), exec_type="2"), begin="FIX.4.2")
    assert (
        "ExecTransType(20)=1" in failure(parse_one(bust), RejectReason.UNSUPPORTED_MESSAGE).detail
    )
    status = fix_message(exec_report((20, "3"), exec_type="2"), begin="FIX.4.2")
    assert skip(parse_one(status)) == "fix_status_exec_trans_status"


def test_execution_report_without_exec_type() -> None:
    fields = [f for f in exec_report() if f[0] != 150]
    failure(parse_one(fix_message(fields)), RejectReason.MISSING_FIELD)


def test_unsupported_message_type() -> None:
    line = fix_message([(35, "AE"), (52, "20240115-14:30:00.000")])
    assert "MsgType(35)=AE" in failure(parse_one(line), RejectReason.UNSUPPORTED_MESSAGE).detail


@pytest.mark.parametrize(
    ("side", "mapped"), [("1", "buy"), ("2", "sell"), ("5", "sell"), ("6", "sell"), ("7", "7")]
)
def test_sides(side: str, mapped: str) -> None:
    rec = record(parse_one(fix_message(exec_report((54, side)))))
    assert rec.fields["side"] == mapped
    if mapped == "7":
        rej = clean(rec)
        assert isinstance(rej, Reject)
        assert (rej.reason, rej.field) == (RejectReason.INVALID_VALUE, "side")


def test_order_type_and_tif_mapping() -> None:
    order = [
        (35, "D"),
        (60, "20240115-14:30:00.000"),
        (11, "O"),
        (55, "X"),
        (54, "1"),
        (38, "1"),
        (44, "1"),
    ]
    fields = record(parse_one(fix_message([*order, (40, "4"), (59, "6")]))).fields
    assert (fields["order_type"], fields["tif"]) == ("stop_limit", "gtd")
    fields = record(parse_one(fix_message([*order, (40, "P"), (59, "7"), (99, "0.9")]))).fields
    assert (fields["order_type"], fields["tif"], fields["stop_px"]) == ("P", "cls", "0.9")


def test_routed_liquidity_is_kept_as_an_extra() -> None:
    rec = record(parse_one(fix_message(exec_report((851, "3")))))
    assert "liquidity" not in rec.fields
    ev = event(rec)
    assert ev.liquidity is None
    assert ev.attrs is not None
    assert ev.attrs["last_liquidity_ind"] == "3"


def test_aggressor_indicator_when_no_last_liquidity_ind() -> None:
    assert event(parse_one(fix_message(exec_report((1057, "Y"))))).liquidity is Liquidity.TAKER
    assert event(parse_one(fix_message(exec_report((1057, "N"))))).liquidity is Liquidity.MAKER


def test_non_absolute_commission_is_not_a_fee() -> None:
    ev = event(parse_one(fix_message(exec_report((12, "2.5"), (13, "2")))))
    assert ev.fee is None
    assert ev.attrs is not None
    assert (ev.attrs["commission"], ev.attrs["comm_type"]) == ("2.5", "2")


def test_session_venue_unless_last_mkt() -> None:
    settings = FixSettings(venue="XLON")
    assert event(parse_one(fix_message(exec_report()), settings)).venue == "XLON"
    assert event(parse_one(fix_message(exec_report((30, "BATE"))), settings)).venue == "BATE"


def test_settings_reject_unknown_keys() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field `vneue`"):
        msgspec.convert({"vneue": "X"}, FixSettings)


def test_reject_reason_from_code_when_no_text() -> None:
    ev = event(parse_one(fix_message(exec_report((103, "2"), exec_type="8"))))
    assert ev.reason == "exchange closed (OrdRejReason(103)=2)"


def test_no_exec_id_no_event_id() -> None:
    fields = [f for f in exec_report() if f[0] != 17]
    assert "event_id" not in record(parse_one(fix_message(fields))).fields


@pytest.mark.parametrize(
    ("extra", "detail"),
    [
        ([(60, "2024-01-15 14:30")], "TransactTime(60)"),
        ([(60, "20240230-14:30:00")], "TransactTime(60)"),  # no such date
    ],
)
def test_unreadable_times(extra: list[tuple[int, str]], detail: str) -> None:
    fields = [f for f in exec_report() if f[0] != 60] + extra
    bad = failure(parse_one(fix_message(fields)), RejectReason.INVALID_TIMESTAMP)
    assert bad.detail.startswith(detail)
    assert bad.field == "ts"


def test_unreadable_prefix_time_when_the_message_has_none() -> None:
    fields = [f for f in exec_report() if f[0] not in (52, 60)]
    line = "20241345-10:00:00.000 : " + fix_message(fields)
    bad = failure(parse_one(line), RejectReason.INVALID_TIMESTAMP)
    assert bad.detail.startswith("log timestamp:")


def test_raw_data_field_may_hold_separators() -> None:
    data = "x\x01y=1"
    line = fix_message(exec_report((95, len(data.encode())), (96, data)), sep=SOH)
    rec = record(parse_one(line))
    assert rec.fields["last_qty"] == "2"
    assert event(rec).kind is EventKind.FILL


def test_wrong_raw_data_length_is_malformed() -> None:
    line = fix_message(exec_report((95, 9), (96, "ab\x01cd")), sep=SOH)
    failure(parse_one(line), RejectReason.MALFORMED)


def _md(
    msg_type: str,
    *entries: tuple[int, object],
    symbol: str | None = "AAPL",
    count: int | None = None,
) -> str:
    head: list[tuple[int | str, object]] = [(35, msg_type), (52, "20240115-14:30:00.000")]
    if symbol is not None:
        head.append((55, symbol))
    delimiter = 269 if msg_type == "W" else 279
    if count is None:
        count = sum(1 for tag, _ in entries if tag == delimiter)
    return fix_message([*head, (268, count), *entries])


def test_book_by_entry_id_and_one_sided_quote() -> None:
    parser = FixParser()

    def run(line: str) -> Item:
        items, _ = parser.parse(line.encode() + b"\n", 0, final=False)
        return items[0]

    quote = record(
        run(
            _md(
                "W",
                (269, 0),
                (278, "b1"),
                (270, "10"),
                (271, "1"),
                (269, 0),
                (278, "b2"),
                (270, "10"),
                (271, "2"),
            )
        )
    )
    assert (quote.fields["bid"], quote.fields["bid_size"]) == (
        10.0,
        3.0,
    )  # size summed at the best price
    assert "ask" not in quote.fields
    assert "ask_size" not in quote.fields
    assert event(quote).ask is None
    quote = record(run(_md("X", (279, 2), (269, 0), (278, "b1"), (55, "AAPL"), symbol=None)))
    assert (quote.fields["bid"], quote.fields["bid_size"]) == (10.0, 2.0)
    quote = record(
        run(_md("X", (279, 1), (269, 0), (278, "b2"), (270, "10.5"), (55, "AAPL"), symbol=None))
    )
    assert (quote.fields["bid"], quote.fields["bid_size"]) == (10.5, 2.0)  # size kept on change


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (_md("W", (269, 0), (270, "10"), count=2), RejectReason.MALFORMED),
        (_md("W", (269, 0), (270, "nan")), RejectReason.INVALID_NUMBER),
        (_md("W", (269, 1), (270, "abc")), RejectReason.INVALID_NUMBER),
        (_md("W", (269, 0), (271, "5")), RejectReason.MISSING_FIELD),
        (_md("W", (269, 0), (270, "10"), symbol=None), RejectReason.MISSING_FIELD),
        (_md("X", (279, 2), (269, 0), (55, "A"), symbol=None), RejectReason.MISSING_FIELD),
        (
            _md("X", (279, 3), (269, 0), (55, "A"), (270, "1"), symbol=None),
            RejectReason.UNSUPPORTED_MESSAGE,
        ),
        (
            fix_message([(35, "W"), (52, "20240115-14:30:00.000"), (55, "A")]),
            RejectReason.MALFORMED,
        ),
    ],
)
def test_bad_market_data(line: str, reason: RejectReason) -> None:
    failure(parse_one(line), reason)


def test_crossed_book_is_rejected_by_the_cleaner() -> None:
    rec = record(parse_one(_md("W", (269, 0), (270, "11"), (269, 1), (270, "10"))))
    rej = clean(rec)
    assert isinstance(rej, Reject)
    assert rej.reason is RejectReason.INVALID_PRICE


def test_chunked_input_gives_the_same_items() -> None:
    data = (FIXTURES / "quickfix_cpp_session.log").read_bytes()
    whole, _ = FixParser().parse(data, 0, final=True)
    parser, items, pos = FixParser(), [], 0
    for cut in range(97, len(data) + 97, 97):
        chunk, consumed = parser.parse(data[pos:cut], pos, final=cut >= len(data))
        items.extend(chunk)
        pos += consumed
    assert items == whole


def test_fix_zero_placeholders_are_left_out() -> None:
    ack = [f for f in exec_report(exec_type="0") if f[0] not in (31, 32)]
    ack += [(31, "0"), (32, "0"), (6, "0.0"), (40, "1"), (44, "0")]
    rec = record(parse_one(fix_message(ack, begin="FIX.4.2")))
    assert not {"last_px", "last_qty", "avg_px", "price"} & set(rec.fields)
    assert event(rec).kind is EventKind.ORDER_ACK
    limit = [f for f in exec_report(exec_type="0") if f[0] not in (31, 32)] + [(40, "2"), (44, "0")]
    rej = clean(
        parse_one(fix_message(limit))
    )  # a zero limit price is bad data: the cleaner says so
    assert isinstance(rej, Reject)
    assert (rej.reason, rej.field) == (RejectReason.INVALID_PRICE, "price")
