"""The one-step regex path (FastRegex.parse_clean) and the general path (RegexParser.parse
+ Cleaner via pipeline.ingest.clean_items) give the same events, rejects, ignored count
and consumed bytes for any field values: the fast path must defer whatever it is unsure
about, and read each record's time (which moves the midnight rollover) exactly once."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tradelog.parsing.regex_rules import RegexParser, RegexRule, RegexSettings
from tradelog.pipeline.batch import CleanChunk, StreamInfo
from tradelog.pipeline.ingest import StreamDecoder, clean_items
from tradelog.stages.clean import Cleaner, CleanSettings, Normalization
from tradelog.stages.clean_regex import FastRegex

TS_INGEST = 1_741_100_000_000_000_000
INFO = StreamInfo(source="rx", stream="fp:1", src_ref="/logs/STRAT_desk7_20250308.log")
ABSENT = "~"  # a field written as "~" leaves its group out of the match (None)

# every canonical field the cleaner reads, plus names it keeps in attrs
FIELDS_A = (
    "kind", "event_id", "oid", "symbol", "venue", "side", "qty", "price", "last_qty",
    "last_px", "cum_qty", "leaves_qty", "liquidity", "fee", "bid", "ask", "bid_size",
    "ask_size", "position", "message", "desk", "account_id",
)  # fmt: skip
QUOTE_FIELDS = ("symbol", "bid", "ask", "bid_size", "ask_size", "venue", "desk")


def _group(name: str) -> str:
    return rf"\|(?:{ABSENT}|(?P<{name}>[^|]*))"


RULES = [
    RegexRule(name="heartbeat", pattern=r"^HB\b", skip=True),
    RegexRule(
        name="dated",
        pattern=r"^A" + _group("ts") + "".join(_group(f) for f in FIELDS_A) + r"(\|u)?$",
        kind_from="kind",
        kind_map={"NEW": "order_new", "F": "FILL", "Q": "quote"},
        values={"side": {"B": "buy", "S": "", "X": "bogus"}, "qty": {"lots": "100"}},
        fields={"order_id": "{oid}", "exec_id": "{oid}/{event_id}"},
        static={"tif": "day", "desk": "d0", "fee": 0.5, "note": "n"},
        time_format="%Y-%m-%d %H:%M:%S.%f",
    ),
    RegexRule(
        name="time_only",
        pattern=r"^B" + "".join(_group(f) for f in ("t", *QUOTE_FIELDS)),
        kind="QUOTE",
        time_group="t",
        static={"venue": "xnas", "message": "q", "price": 1, "event_id": 7},
        time_format="%H:%M:%S.%f",
    ),
    RegexRule(
        name="aliased",  # ``sym`` is a built-in alias of symbol: the general path serves it
        pattern=r"^C" + _group("ts") + _group("sym") + _group("price") + _group("qty"),
        kind="market_trade",
        time_format="%Y-%m-%d %H:%M:%S.%f",
    ),
]


def regex_settings(zone: str | None) -> RegexSettings:
    return RegexSettings(
        rules=RULES,
        path_pattern=r"STRAT_(?P<strategy_id>\w+?)_(?P<date>\d{8})\.log$",
        time_zone=zone,
    )


CLEAN_VARIANTS: list[dict[str, Any]] = [
    {},
    {"time_zone": "America/New_York", "allow_nonpositive_prices": True},
    {"kind": "system"},
    {"fields": {"desk": "strategy_id"}},  # a rename: those rules take the general path
    {"builtin_aliases": False},
]
NORMALIZE = Normalization(symbols={"AAPL": "APPLE"}, symbol_case="lower", venue_case="keep")

NUMERIC = frozenset(
    {"qty", "price", "last_qty", "last_px", "cum_qty", "leaves_qty", "fee", "bid", "ask",
     "bid_size", "ask_size", "position"}
)  # fmt: skip
odd_numbers = st.sampled_from(["0", "-1", "-0", "0.0", "1e400", "nan", "-inf", "1_0", "٣", "５"])
numbers = st.one_of(
    odd_numbers,
    odd_numbers,
    st.sampled_from(["1", "100", "1.5", "1e3", " 5", "5 ", "0x1", "+2", ".5", "5.", "", ABSENT]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
)
words = st.one_of(
    st.sampled_from(["AAPL", "aapl", "XNAS", "", " ", " x ", ABSENT, "\u00a0", "O1", "É"]),
    st.sampled_from(["buy", "BUY", "B", "S", "X", "sell", "Sell", "maker", "TAKER", "2"]),
    st.sampled_from(["order_new", "NEW", "F", "Q", "fill", "FILL", " quote", "nope"]),
    st.text(st.characters(blacklist_characters="|\n", blacklist_categories=["Cs"]), max_size=6),
)
dated_times = st.one_of(
    st.builds(
        "2025-03-0{}  {:02d}:{:02d}:{:02d}.{}".format,
        st.integers(1, 9),
        st.integers(0, 25),
        st.integers(0, 2),
        st.integers(0, 61),
        st.sampled_from(["5", "000000001", "123456", "1234567890", "", "x"]),
    ).map(lambda t: t.replace("  ", " ")),
    st.sampled_from(["2025-03-03 09:30:00.5", "2025-03-03 09:30:00.7", "2025-02-30 00:00:00.1"]),
    st.sampled_from(["9999-12-31 23:59:59.9", "1600-01-01 00:00:00.1", ABSENT, ""]),
    words,
)
tod_times = st.one_of(
    st.builds(
        "{:02d}:{:02d}:{:02d}.{}".format,
        st.integers(0, 24),
        st.sampled_from([0, 1, 30, 59]),
        st.integers(0, 60),
        st.sampled_from(["1", "25", "999999999", ""]),
    ),
    st.sampled_from(["23:59:59.9", "00:00:00.1", "02:30:00.5", ABSENT]),
    words,
)
field_value = st.one_of(numbers, words)

# values that clean well, so that most lines of a quiet example become events
GOOD: dict[str, list[str]] = {
    "kind": ["order_new", "NEW", "F", "fill", "Q", "quote", "order_ack", "FILL"],
    "event_id": ["E1", "E2", "E3", ""],
    "oid": ["O1", "O2"],
    "symbol": ["AAPL", "aapl", "MSFT"],
    "sym": ["AAPL", ABSENT],
    "venue": ["XNAS", "arcx", ABSENT],
    "side": ["B", "buy", "SELL", "sell", "S"],
    "qty": ["10", "lots", "2.5"],
    "price": ["101.5", "7"],
    "last_qty": ["5", ABSENT],
    "last_px": ["101.25", ABSENT],
    "cum_qty": ["0", "5", ABSENT],
    "leaves_qty": ["0", "5", ABSENT],
    "liquidity": ["maker", "T", ABSENT],
    "fee": ["-0.01", ABSENT],
    "bid": ["100", "100.5", ABSENT],
    "ask": ["101", "100.5", ABSENT],
    "bid_size": ["200", ABSENT],
    "ask_size": ["300", ABSENT],
    "position": ["-5", ABSENT],
    "message": ["hello", ABSENT],
    "desk": ["d1", "d2", "", ABSENT],
    "account_id": ["A1", ABSENT],
}
good_dated = st.builds(
    "2025-03-03 09:30:0{}.{}".format, st.integers(0, 2), st.sampled_from(["5", "123456789"])
)
good_tod = st.sampled_from(["09:30:00.5", "23:59:59.9", "00:00:00.1", "02:30:00.5", "12:00:00"])


@st.composite
def values_of(draw: st.DrawFn, names: tuple[str, ...]) -> list[str]:
    """Values that clean well, but one field (or, in a noisy line, several) may take any
    value: a line with a single odd value is where a fast path could decide alone."""
    mode = draw(st.sampled_from(["quiet", "one", "one", "noisy"]))
    odd = draw(st.sampled_from([n for n in names if n in NUMERIC] * 3 + list(names)))
    out = []
    for name in names:
        if (mode == "one" and name == odd) or (mode == "noisy" and draw(st.booleans())):
            out.append(draw(numbers if name in NUMERIC else field_value))
        else:
            out.append(draw(st.sampled_from(GOOD[name])))
    return out


@st.composite
def lines(draw: st.DrawFn) -> str:
    tag = draw(st.sampled_from("AAAABBC-H "))
    odd_time = draw(st.integers(0, 4)) == 0
    if tag == "A":
        ts = draw(dated_times if odd_time else good_dated)
        tail = draw(st.sampled_from(["", "|u"]))
        return "A|" + "|".join([ts, *draw(values_of(FIELDS_A))]) + tail
    if tag == "B":
        values = draw(values_of(QUOTE_FIELDS))
        return "B|" + "|".join([draw(tod_times if odd_time else good_tod), *values])
    if tag == "C":
        values = draw(values_of(("sym", "price", "qty")))
        return "C|" + "|".join([draw(dated_times if odd_time else good_dated), *values])
    if tag == "H":
        return "HB"
    if tag == "-":
        return draw(st.sampled_from(["", "   ", "\r", "junk"]))
    return draw(words)


def general(
    rx: RegexSettings, cleaner: Cleaner, data: bytes, cut: int, max_bytes: int
) -> list[Any]:
    parser = RegexParser(rx, INFO.src_ref, max_record_bytes=max_bytes)
    out: list[Any] = []
    base = 0
    for final in (False, True):
        buf = data[base : cut if not final else None]
        items, consumed = parser.parse(buf, base, final)
        chunk = clean_items(items, INFO, cleaner, base + consumed, TS_INGEST)
        out.append(summary(chunk, consumed))
        base += consumed
    return out


def fast(rx: RegexSettings, cleaner: Cleaner, data: bytes, cut: int, max_bytes: int) -> list[Any]:
    parser = RegexParser(rx, INFO.src_ref, max_record_bytes=max_bytes)
    decoder = StreamDecoder(INFO, cleaner, parser, None)
    assert isinstance(decoder.fast, FastRegex)
    out: list[Any] = []
    base = 0
    for final in (False, True):
        buf = data[base : cut if not final else None]
        chunk, consumed = decoder.decode(buf, base, final, TS_INGEST)
        out.append(summary(chunk, consumed))
        base += consumed
    return out


def summary(chunk: CleanChunk, consumed: int) -> tuple[Any, ...]:
    enc = msgspec.json.encode
    return (
        [enc(e) for e in chunk.events],
        [enc(r) for r in chunk.rejects],
        chunk.ignored,
        chunk.end,
        consumed,
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.lists(lines(), min_size=1, max_size=12),
    newline_at_end=st.booleans(),
    cut_at=st.floats(0, 1),
    zone=st.sampled_from([None, "America/New_York"]),
    variant=st.sampled_from(range(len(CLEAN_VARIANTS))),
    max_bytes=st.sampled_from([1 << 20, 120]),
)
@example(
    body=["A|2025-03-03 09:30:00.5|NEW|E1|O1|AAPL|XNAS|B|10|101.5|~|~|~|~|~|~|~|~|~|~|~|~|~|A1"],
    newline_at_end=True,
    cut_at=0.0,
    zone=None,
    variant=0,
    max_bytes=1 << 20,
)
def test_fast_regex_agrees_with_the_general_path(
    body: list[str], newline_at_end: bool, cut_at: float, zone: str | None, variant: int,
    max_bytes: int,
) -> None:  # fmt: skip
    data = ("\n".join(body) + ("\n" if newline_at_end else "")).encode("utf-8", "surrogatepass")
    cut = int(len(data) * cut_at)
    rx = regex_settings(zone)
    clean_settings = msgspec.convert(CLEAN_VARIANTS[variant], CleanSettings)

    def cleaner() -> Cleaner:
        return Cleaner("rx", clean_settings, NORMALIZE)

    assert fast(rx, cleaner(), data, cut, max_bytes) == general(rx, cleaner(), data, cut, max_bytes)


VALID_A: list[dict[str, str]] = [
    {"kind": "NEW", "event_id": "E1", "oid": "O1", "symbol": "AAPL", "venue": "XNAS",
     "side": "B", "qty": "10", "price": "101.5", "desk": "d1", "account_id": "A1"},
    {"kind": "F", "event_id": "E2", "oid": "O1", "last_qty": "5", "last_px": "101.25",
     "cum_qty": "5", "leaves_qty": "5", "liquidity": "maker", "fee": "-0.01", "desk": "d1"},
    {"kind": "Q", "event_id": "", "symbol": "MSFT", "bid": "100", "ask": "101", "oid": "O3",
     "bid_size": "200", "ask_size": "300", "desk": "d2"},
    {"kind": "position", "event_id": "E4", "symbol": "AAPL", "oid": "O4", "position": "-5",
     "desk": "d3"},
]  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(
    base=st.sampled_from(VALID_A),
    name=st.sampled_from(FIELDS_A),
    value=st.one_of(numbers, field_value, st.text(st.characters(blacklist_characters="|\n"))),
    variant=st.sampled_from(range(len(CLEAN_VARIANTS))),
)
@example(base=VALID_A[0], name="qty", value="٣", variant=0)
@example(base=VALID_A[1], name="cum_qty", value="nan", variant=0)
@example(base=VALID_A[2], name="symbol", value=" ", variant=0)
@example(base=VALID_A[0], name="account_id", value=" \t", variant=0)
@example(base=VALID_A[0], name="price", value="-1", variant=1)  # allow_nonpositive_prices
def test_fast_regex_agrees_on_one_arbitrary_value(
    base: dict[str, str], name: str, value: str, variant: int
) -> None:
    """A line that cleans well but for one field, which takes any value: the inline
    readers of the fast path must accept and refuse exactly what Cleaner's readers do."""
    fields = {**base, name: value}
    line = "A|2025-03-03 09:30:00.5|" + "|".join(fields.get(f, ABSENT) for f in FIELDS_A)
    data = (line + "\n").encode("utf-8", "surrogatepass")
    rx = regex_settings(None)
    clean_settings = msgspec.convert(CLEAN_VARIANTS[variant], CleanSettings)
    fast_out = fast(rx, Cleaner("rx", clean_settings, NORMALIZE), data, 0, 1 << 20)
    assert fast_out == general(rx, Cleaner("rx", clean_settings, NORMALIZE), data, 0, 1 << 20)
