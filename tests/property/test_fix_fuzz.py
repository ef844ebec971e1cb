"""FIX parser never raises: arbitrary bytes, FIX-shaped noise, and byte mutations of valid
messages all become Record / Failure / Skip items with sane spans."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tradelog.parsing.base import Failure, Item, Record, Skip
from tradelog.parsing.fix import FixParser, FixSettings

SOH = "\x01"
# raw-data length tags and their data tags (a value must then have the declared length)
DATA_TAGS = frozenset(
    str(tag)
    for tag in (89, 90, 91, 93, 95, 96, 212, 213, *range(348, 366), 445, 446, 618, 619, 621, 622)
)
UNCHECKED = FixSettings(validate_checksum=False, validate_body_length=False)


def fix_message(fields: list[tuple[str, str]], sep: str = SOH) -> str:
    """A message with correct BodyLength(9) and CheckSum(10), computed with SOH separators."""
    body = "".join(f"{tag}={value}{SOH}" for tag, value in fields)
    head = f"8=FIX.4.4{SOH}9={len(body.encode())}{SOH}"
    checksum = sum((head + body).encode()) % 256
    return f"{head}{body}10={checksum:03d}{SOH}".replace(SOH, sep)


VALID = [
    fix_message(
        [
            ("35", "D"),
            ("34", "2"),
            ("49", "C"),
            ("56", "V"),
            ("11", "O1"),
            ("38", "5"),
            ("40", "2"),
            ("44", "1.5"),
            ("54", "1"),
            ("55", "X"),
            ("60", "20240115-14:30:01.5"),
        ]
    ),
    fix_message(
        [
            ("35", "8"),
            ("49", "V"),
            ("56", "C"),
            ("11", "O1"),
            ("17", "E1"),
            ("31", "1.5"),
            ("32", "5"),
            ("150", "F"),
            ("851", "1"),
            ("12", "0.1"),
            ("52", "20240115-14:30:02"),
        ]
    ),
    fix_message(
        [
            ("35", "W"),
            ("52", "20240115-14:30:02"),
            ("55", "X"),
            ("268", "2"),
            ("269", "0"),
            ("270", "1.4"),
            ("271", "3"),
            ("269", "1"),
            ("270", "1.6"),
            ("271", "4"),
        ]
    ),
    fix_message(
        [
            ("35", "X"),
            ("52", "20240115-14:30:03"),
            ("268", "2"),
            ("279", "1"),
            ("269", "0"),
            ("55", "X"),
            ("270", "1.4"),
            ("271", "9"),
            ("279", "2"),
            ("269", "1"),
            ("278", "a"),
        ]
    ),
    fix_message(
        [
            ("35", "8"),
            ("60", "20240115-14:30:04"),
            ("11", "O1"),
            ("95", "3"),
            ("96", "a\x01b"),
            ("150", "4"),
        ]
    ),
    "20240115-14:30:01.123 : "
    + fix_message([("35", "9"), ("11", "C1"), ("41", "O1"), ("102", "0")], "|"),
    "2024/01/15 14:30:01.123456 " + fix_message([("35", "0"), ("34", "3")], "^A"),
]


def check(items: list[Item], consumed: int, data: bytes, base: int) -> None:
    assert 0 <= consumed <= len(data)
    previous_end = base
    for item in items:
        assert isinstance(item, (Record, Failure, Skip))
        assert previous_end <= item.start < item.end <= base + consumed
        previous_end = item.end
        if isinstance(item, Record):
            assert isinstance(item.fields.get("kind"), str)
            assert isinstance(item.fields.get("ts_ns"), int)


@settings(max_examples=400)
@given(st.binary(max_size=1500), st.booleans(), st.integers(0, 1 << 40))
def test_arbitrary_bytes(data: bytes, final: bool, base: int) -> None:
    for parser in (FixParser(), FixParser(UNCHECKED)):
        items, consumed = parser.parse(data, base, final)
        check(items, consumed, data, base)


_TAGS = st.sampled_from(
    ["8", "9", "10", "35", "34", "49", "56", "52", "60", "11", "41", "17", "150", "20", "54", "38",
     "40", "44", "31", "32", "6", "851", "12", "13", "268", "269", "270", "271", "278", "279",
     "55", "95", "96", "212", "213", "43", "58", "102", "103", "x", ""]
)  # fmt: skip
_VALUES = st.one_of(
    st.sampled_from(["8", "W", "X", "D", "F", "G", "9", "0", "1", "2", "3", "4", "5", "A", "I",
                     "Y", "-1", "1e400", "nan", "20240115-14:30:01.000", "20249999-99:99:99"]),
    st.text(alphabet="0123456789.-=|^A\x01 é", max_size=8),
)  # fmt: skip


@settings(max_examples=400)
@given(
    st.lists(st.tuples(_TAGS, _VALUES), max_size=25),
    st.sampled_from([SOH, "|", "^A"]),
    st.sampled_from(["", "20240115-14:30:01.123 : ", "2024/01/15 14:30:01.1 ", "junk "]),
    st.booleans(),
)
def test_fix_shaped_noise(
    fields: list[tuple[str, str]], sep: str, prefix: str, valid: bool
) -> None:
    body = sep.join(f"{tag}={value}" for tag, value in fields)
    line = prefix + (fix_message(fields, sep) if valid else f"8=FIX.4.4{sep}{body}{sep}")
    data = line.encode() + b"\n"
    parser = FixParser(UNCHECKED if not valid else None)
    for _ in range(2):  # the second pass runs against the books the first one built
        items, consumed = parser.parse(data, 0, final=False)
        check(items, consumed, data, 0)
        assert consumed == len(data)
        assert len(items) == 1


@settings(max_examples=600)
@given(
    st.sampled_from(VALID),
    st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.sampled_from("sid")), max_size=6
    ),
    st.booleans(),
)
def test_mutated_valid_messages(line: str, edits: list[tuple[int, int, str]], final: bool) -> None:
    data = bytearray(line.encode() + b"\n")
    for index, byte, op in edits:
        pos = index % (len(data) + 1)
        if op == "s" and pos < len(data):
            data[pos] = byte
        elif op == "i":
            data[pos:pos] = bytes([byte])
        elif pos < len(data):
            del data[pos]
    for parser in (FixParser(), FixParser(UNCHECKED)):
        items, consumed = parser.parse(bytes(data), 7, final)
        check(items, consumed, bytes(data), 7)


@given(
    st.lists(
        st.tuples(
            st.integers(11, 9999).map(str).filter(lambda tag: tag != "35" and tag not in DATA_TAGS),
            st.text(
                st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="|^"),
                min_size=1,
                max_size=12,
            ),
        ),
        max_size=10,
    ),
    st.sampled_from([SOH, "|", "^A"]),
)
def test_valid_framing_is_accepted_with_any_separator(
    fields: list[tuple[str, str]], sep: str
) -> None:
    line = fix_message([("35", "0"), *fields], sep)
    items, _ = FixParser().parse(line.encode(), 0, final=True)
    assert items == [Skip("fix_session", 0, len(line.encode()))]


def test_valid_messages_parse() -> None:
    parser = FixParser()
    items, _ = parser.parse("\n".join(VALID).encode() + b"\n", 0, final=False)
    assert [type(i).__name__ for i in items] == ["Record"] * 4 + ["Record", "Record", "Skip"]
