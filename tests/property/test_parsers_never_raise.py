"""Line parsers (JSON lines, logfmt, CSV) never raise on arbitrary bytes, account for every
byte they consume with contiguous spans, and give the same items whether the data arrives
at once or in pieces (the unconsumed tail re-sent with more data)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tradelog.parsing.base import Failure, Item, LineParser, Record, Skip
from tradelog.parsing.csv import CsvParser, CsvSettings
from tradelog.parsing.jsonl import JsonlParser
from tradelog.parsing.logfmt import LogfmtParser

MAX = 48  # small record limit, so some lines are too long

PARSERS: dict[str, Callable[[], LineParser]] = {
    "jsonl": lambda: JsonlParser(MAX),
    "logfmt": lambda: LogfmtParser(MAX),
    "csv-header-line": lambda: CsvParser(CsvSettings(), max_record_bytes=MAX),
    "csv-header-given": lambda: CsvParser(
        CsvSettings(), header="kind,qty,px", max_record_bytes=MAX
    ),
    "csv-columns": lambda: CsvParser(
        CsvSettings(has_header=False, columns=["kind", "qty", "px"]), max_record_bytes=MAX
    ),
    "csv-columns-semicolon": lambda: CsvParser(
        CsvSettings(delimiter=";", quotechar="'", has_header=False, columns=["a", "b"]),
        max_record_bytes=MAX,
    ),
    "csv-no-columns": lambda: CsvParser(CsvSettings(has_header=False), max_record_bytes=MAX),
}

TOKENS = [
    b"\n", b"\n", b"\r\n", b"\r", b" ", b"\t", b",", b";", b'"', b"'", b"=", b"\\", b"{", b"}",
    b"[", b"]", b":", b"a", b"kind", b"fill", b"qty", b"5", b"-1.5", b"\xff", b"\xc3\xa9",
    b"\xe2\x82", b"\x00", b'"k"', b'{"a":1}', b"k=v", b'k="x y"', b'k="open', b"x" * 60,
    b"[" * 300,
]  # fmt: skip

data_strategy = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(TOKENS), max_size=40).map(b"".join),
)


def check_items(items: list[Item], consumed: int, data: bytes, base: int) -> None:
    assert 0 <= consumed <= len(data)
    position = base
    for item in items:
        assert type(item) in (Record, Failure, Skip)
        # contiguous, increasing spans covering exactly the consumed bytes
        assert item.start == position
        assert item.end > item.start
        position = item.end
        if isinstance(item, Record):
            assert isinstance(item.fields, dict)
            assert isinstance(item.raw, str)
        elif isinstance(item, Failure):
            assert item.detail
            assert isinstance(item.raw, str)
    assert position == base + consumed
    assert base <= position <= base + len(data)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=data_strategy, base=st.sampled_from([0, 1, 4096]), final=st.booleans())
@example(data=b"[" * 5000 + b"\n", base=0, final=True)
@example(data=b"a\r\nb\rc\n\n\nlast", base=0, final=False)
@example(data=b'a,"b\nc",d\n', base=0, final=True)
def test_never_raises_and_spans_cover_what_was_consumed(
    name: str, data: bytes, base: int, final: bool
) -> None:
    items, consumed = PARSERS[name]().parse(data, base, final)
    check_items(items, consumed, data, base)
    if final:
        assert consumed == len(data)  # at the end of a file every byte is an item
    else:
        # without final, only complete lines are consumed
        assert consumed == data.rfind(b"\n") + 1


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=data_strategy,
    cuts=st.lists(st.integers(0, 300), max_size=3),
    base=st.sampled_from([0, 4096]),
)
@example(data=b"kind,qty\nfill,5\n", cuts=[3], base=0)
@example(data=b"kind,qty\nfill,5\n", cuts=[9], base=0)
def test_pieces_give_the_same_items_as_all_at_once(
    name: str, data: bytes, cuts: list[int], base: int
) -> None:
    whole, whole_consumed = PARSERS[name]().parse(data, base, True)
    assert whole_consumed == len(data)

    parser = PARSERS[name]()  # one instance per stream: it keeps state between calls
    items: list[Item] = []
    offset = 0  # stream position relative to base of the first unconsumed byte
    arrived = 0  # bytes that have arrived so far
    for cut in [*sorted(c for c in cuts if c <= len(data)), len(data)]:
        arrived = max(arrived, cut)
        final = arrived == len(data)
        piece = data[offset:arrived]  # the unconsumed tail plus what is new
        got, consumed = parser.parse(piece, base + offset, final)
        check_items(got, consumed, piece, base + offset)
        items.extend(got)
        offset += consumed
    assert offset == len(data)
    assert items == whole
