"""Regex-rules parser never raises: arbitrary bytes and log-shaped noise, one record per
line or split by ``record_start``, all become items with increasing spans inside what was
consumed; and feeding a stream in any chunks gives the same items as feeding it at once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tradelog.parsing.base import Item
from tradelog.parsing.regex_rules import RegexParser, RegexRule, RegexSettings

RULES = [
    RegexRule(name="noise", pattern=r"^\[[^\]]*\] HB", skip=True),
    RegexRule(
        name="orders",
        pattern=(
            r"(?s)^\[(?P<ts>[^\]]*)\] (?P<kind>N|A|X|\w+) (?:(?P<client>\w+)/)?(?P<oid>\d+)"
            r"(?: (?P<side>B|S|\w+))?(?: (?P<price>\S+))?(?P<rest>.*)$"
        ),
        kind_from="kind",
        kind_map={"N": "order_new", "A": "order_ack", "X": "order_cancelled"},
        values={"side": {"B": "buy", "S": "sell"}, "price": {"BAD": None, "0": ""}},
        fields={"order_id": "{client}-{oid}"},
        static={"venue": "XNAS", "qty": 1},
        time_format="%H:%M:%S.%f",
    ),
    RegexRule(
        name="dated",
        pattern=r"^(?P<stamp>\d{4}-\d\d-\d\d \S+) (?P<message>.*)",
        kind="system",
        time_group="stamp",
        time_format="%Y-%m-%d %H:%M:%S",
    ),
]
START = r"\[\d\d:\d\d"


def parser(record_start: str | None, ignore: bool, max_bytes: int) -> RegexParser:
    config = RegexSettings(
        rules=RULES,
        record_start=record_start,
        ignore_unmatched=ignore,
        path_pattern=r"(?P<strategy_id>S\d)_(?P<date>\d{8})",
        time_zone="Europe/London",
    )
    return config.build("/logs/S1_20250330.log", max_record_bytes=max_bytes)


TOKENS = st.sampled_from(
    [
        b"[",
        b"]",
        b"[09:30:00.5] ",
        b"[23:59:59.999999999] ",
        b"[00:00:00.1] ",
        b"[01:30:00.000000001] ",
        b"[25:61",
        b"N ",
        b"A ",
        b"X ",
        b"HB",
        b"C7/",
        b"42",
        b" B",
        b" S",
        b" BAD",
        b" 0",
        b" 101.25",
        b"2025-03-30 01:30:00 ",
        b"\n",
        b"\r\n",
        b"  ",
        b"\xc3\xa9",
        b"\xc3",
        b"\xff",
        b"\x00",
        b"x",
    ]
)
TIMES = [b"09:30:00.5", b"23:59:59.999999999", b"00:00:00.1", b"01:30:00.000000001"]
ORDER_LINES = st.builds(
    lambda *parts: b"".join(parts),
    st.sampled_from([b"[", b"[", b"[", b""]),
    st.sampled_from([*TIMES, *TIMES, b"12:00:00.1234567890", b"25:00:00.1", b"x"]),
    st.sampled_from([b"] N ", b"] A ", b"] X ", b"] HB ", b"] FOO ", b" N "]),
    st.sampled_from([b"C7/", b"C7/", b"C7/", b""]),
    st.sampled_from([b"42", b"7", b""]),
    st.sampled_from([b"", b" B", b" S", b" Q"]),
    st.sampled_from([b"", b" BAD", b" 0", b" 101.25", b" 101.25"]),
    st.sampled_from(
        [b"", b"", b"", b"\n  more", b" \xc3\xa9", b"\xff", b" [00:00:01.0] N 1", b"\r"]
    ),
)
DATED_LINES = st.builds(
    lambda *parts: b"".join(parts),
    st.sampled_from([b"2025-03-30 ", b"2025-02-30 ", b"2025-03-30"]),
    st.sampled_from([b"01:30:00", b"00:59:59", b"23:00:00.5"]),
    st.sampled_from([b" started", b" \xc3\xa9t\xc3\xa9", b""]),
)
STREAMS = st.one_of(
    st.binary(max_size=300),
    st.lists(TOKENS, max_size=60).map(b"".join),
    st.lists(st.one_of(ORDER_LINES, ORDER_LINES, DATED_LINES, TOKENS), max_size=16).map(b"\n".join),
)
OPTIONS = st.tuples(
    st.sampled_from([None, START, r"(?m)^\[", r"(?m)^", r"\d\d:\d\d"]),
    st.booleans(),
    st.sampled_from([1 << 20, 1 << 20, 1 << 20, 40]),
)


def feed(p: RegexParser, data: bytes, cuts: list[int]) -> list[Item]:
    """Items of ``data`` fed in chunks ending at ``cuts`` (the last call final), checking
    every call's spans against what it consumed."""
    items: list[Item] = []
    base = 0
    pending = b""
    prev = 0
    for cut in [*sorted(cuts), len(data)]:
        pending += data[prev:cut]
        prev = cut
        final = cut == len(data)
        out, consumed = p.parse(pending, base, final)
        assert 0 <= consumed <= len(pending)
        if final:
            assert consumed == len(pending)
        position = base
        for item in out:
            assert position <= item.start < item.end <= base + consumed
            position = item.end
        items.extend(out)
        base += consumed
        pending = pending[consumed:]
    return items


@settings(max_examples=400, deadline=None)
@given(data=STREAMS, options=OPTIONS)
def test_never_raises_and_spans_are_sane(
    data: bytes, options: tuple[str | None, bool, int]
) -> None:
    items = feed(parser(*options), data, [])
    if data.strip():
        assert items
    if items:
        assert items[-1].end == len(data)


@settings(max_examples=400, deadline=None)
@given(
    data=STREAMS,
    options=OPTIONS,
    cuts=st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=3),
)
def test_any_chunking_gives_the_same_items(
    data: bytes, options: tuple[str | None, bool, int], cuts: list[int]
) -> None:
    whole = feed(parser(*options), data, [])
    chunked = feed(parser(*options), data, [min(c, len(data)) for c in cuts])
    assert chunked == whole
