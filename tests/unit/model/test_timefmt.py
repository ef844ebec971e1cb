"""Timestamp parsing to UTC nanoseconds (model/timefmt.py).

Expected values are computed by hand from two anchors:
2025-03-03T00:00:00Z = 1_740_960_000 s and 2025-03-09T00:00:00Z = 1_741_478_400 s.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tradelog.model.timefmt import (
    NS_PER_S,
    IsoParser,
    LocalZone,
    TimePattern,
    build_time_parser,
    epoch_to_ns,
    fraction_to_ns,
    ns_to_iso,
    ns_to_iso_many,
    parse_fix_time,
    parse_iso_ns,
)

S = NS_PER_S
MAR03 = 1_740_960_000  # 2025-03-03T00:00:00Z in seconds
MAR09 = 1_741_478_400  # 2025-03-09T00:00:00Z (US DST starts at 02:00 local)
T0930 = MAR03 + 9 * 3600 + 30 * 60  # 2025-03-03T09:30:00Z
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

NY = "America/New_York"


# ---------------------------------------------------------------------------
# ISO-8601


@pytest.mark.parametrize("digits", ["", *("123456789"[:n] for n in range(1, 10))])
def test_iso_fraction_of_0_to_9_digits(digits: str) -> None:
    text = "2025-03-03T09:30:00" + (f".{digits}" if digits else "") + "Z"
    expected = T0930 * S + (int(digits.ljust(9, "0")) if digits else 0)
    assert parse_iso_ns(text) == expected
    assert IsoParser()(text) == expected


def test_iso_fraction_digits_are_not_microseconds() -> None:
    # one digit is tenths, not µs; nine digits are exact nanoseconds
    assert parse_iso_ns("2025-03-03T09:30:00.5Z") == T0930 * S + 500_000_000
    assert parse_iso_ns("2025-03-03T09:30:00.000000001Z") == T0930 * S + 1
    assert parse_iso_ns("2025-03-03T09:30:00,25Z") == T0930 * S + 250_000_000


@pytest.mark.parametrize(
    ("text", "expected_s"),
    [
        ("2025-03-03T09:30:00Z", T0930),
        ("2025-03-03T09:30:00z", T0930),
        ("2025-03-03T09:30:00UTC", T0930),
        ("2025-03-03T09:30:00+00:00", T0930),
        ("2025-03-03T10:30:00+01:00", T0930),
        ("2025-03-03T10:30:00+0100", T0930),
        ("2025-03-03T10:30:00+01", T0930),
        ("2025-03-03T04:00:00-0530", T0930),
        ("2025-03-03T04:00:00-05:30", T0930),
        ("2025-03-03T00:30:00-09:00", T0930),
        ("2025-03-03 09:30:00Z", T0930),
        ("2025-03-03 10:30:00 +01:00", T0930),
        ("  2025-03-03T09:30:00Z  ", T0930),
        ("2025-03-03T09:30:00", T0930),  # no offset and no zone configured: UTC
        ("2025-03-04T01:00:00+15:30", T0930),  # a day boundary crossed by the offset
    ],
)
def test_iso_offsets_and_separators(text: str, expected_s: int) -> None:
    assert parse_iso_ns(text) == expected_s * S
    assert IsoParser()(text) == expected_s * S


def test_iso_fraction_with_offset() -> None:
    assert parse_iso_ns("2025-03-03 10:30:00.5+01:00") == T0930 * S + 500_000_000
    assert parse_iso_ns("2025-03-03T04:00:00.000000007-0530") == T0930 * S + 7
    assert IsoParser()("2025-03-03T04:00:00.000000007-0530") == T0930 * S + 7


def test_iso_leap_day_and_year_end() -> None:
    assert parse_iso_ns("2024-02-29T00:00:00Z") == 1_709_164_800 * S
    assert parse_iso_ns("1970-01-01T00:00:00Z") == 0
    assert parse_iso_ns("1969-12-31T23:59:59.999999999Z") == -1


# naive local times in America/New_York around the 2025-03-09 DST change (EST -5 → EDT -4
# at 02:00 local): before it, local + 5 h; after it, local + 4 h.
DST_CASES = [
    ("2025-03-08T12:00:00", MAR09 - 86_400 + 17 * 3600),  # EST: 17:00Z
    ("2025-03-09T00:30:00", MAR09 + 5 * 3600 + 1800),  # EST: 05:30Z
    ("2025-03-09T01:59:59", MAR09 + 6 * 3600 + 3599),  # EST: 06:59:59Z
    ("2025-03-09T03:00:00", MAR09 + 7 * 3600),  # EDT: 07:00Z, one second after the above
    ("2025-03-09T03:30:00", MAR09 + 7 * 3600 + 1800),  # EDT: 07:30Z
    ("2025-03-10T12:00:00", MAR09 + 86_400 + 16 * 3600),  # EDT: 16:00Z
]


@pytest.mark.parametrize(("text", "expected_s"), DST_CASES)
def test_naive_time_in_configured_zone_across_dst(text: str, expected_s: int) -> None:
    zone = LocalZone(NY)
    assert parse_iso_ns(text, zone) == expected_s * S
    assert parse_iso_ns(text + ".25", zone) == expected_s * S + 250_000_000
    assert IsoParser(zone)(text + ".25") == expected_s * S + 250_000_000
    # an explicit offset wins over the configured zone
    assert parse_iso_ns(text + "Z", zone) == parse_iso_ns(text + "Z")


def test_dst_gap_spans_one_real_second() -> None:
    zone = LocalZone(NY)
    before = parse_iso_ns("2025-03-09T01:59:59", zone)
    after = parse_iso_ns("2025-03-09T03:00:00", zone)
    assert after - before == 1 * S


def test_one_zone_cache_used_across_the_change_in_any_order() -> None:
    """The per-hour offset cache must not leak between hours, nor between the UTC and
    local readings of the same wall-clock text."""
    zone = LocalZone(NY)
    parser = IsoParser(zone)
    for text, expected_s in [*DST_CASES, *reversed(DST_CASES)]:
        assert parser(text) == expected_s * S
        assert parser(text + "Z") == parse_iso_ns(text + "Z")
        assert parser(text) == expected_s * S


def test_zone_utc_means_no_conversion() -> None:
    parse = build_time_parser("iso", "UTC")
    assert parse("2025-03-03T09:30:00", None) == T0930 * S


def test_zone_with_transition_inside_an_hour() -> None:
    """St. John's (Newfoundland) changed clocks at 00:01 local until 2011: on 2010-03-14
    00:01 NST (-3:30) became 01:01 NDT (-2:30). 01:30 local is NDT → 04:00Z. On
    2010-11-07 00:01 NDT became 23:01 NST; 00:30 local then exists only in NST → 04:00Z."""
    zone = LocalZone("America/St_Johns")
    mar14 = int(datetime(2010, 3, 14, tzinfo=UTC).timestamp())
    nov07 = int(datetime(2010, 11, 7, tzinfo=UTC).timestamp())
    assert parse_iso_ns("2010-03-14T01:30:00", zone) == (mar14 + 4 * 3600) * S
    assert parse_iso_ns("2010-11-07T00:30:00", zone) == (nov07 + 4 * 3600) * S
    # the hour before each change, unaffected
    assert parse_iso_ns("2010-03-13T23:30:00", zone) == (mar14 + 3 * 3600) * S
    assert parse_iso_ns("2010-11-06T22:30:00", zone) == (nov07 + 3600) * S


_LOCAL_ZONES = {name: LocalZone(name) for name in (NY, "America/St_Johns", "Europe/London")}


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(_LOCAL_ZONES)),
    anchor=st.sampled_from(
        [
            datetime(2025, 3, 9, 2),
            datetime(2025, 11, 2, 1),
            datetime(2010, 3, 14, 0, 1),
            datetime(2010, 11, 7, 0, 1),
            datetime(2025, 3, 30, 1),
            datetime(2025, 10, 26, 1),
        ]
    ),
    delta=st.integers(-3 * 3600, 3 * 3600),
)
def test_local_zone_agrees_with_zoneinfo(name: str, anchor: datetime, delta: int) -> None:
    """LocalZone (cached per hour, shared across examples) gives what zoneinfo gives for the
    same wall-clock time (fold=0 for ambiguous and skipped times)."""
    local = anchor + timedelta(seconds=delta)
    local_seconds = int((local - datetime(1970, 1, 1)).total_seconds())
    expected = int(local.replace(tzinfo=ZoneInfo(name)).timestamp())
    assert _LOCAL_ZONES[name].utc_seconds(local_seconds) == expected


def test_unknown_zone_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        LocalZone("Mars/Olympus")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2025-13-03T09:30:00Z", "invalid date"),
        ("2025-00-03T09:30:00Z", "invalid date"),
        ("2025-02-30T09:30:00Z", "invalid date"),
        ("2025-03-03T24:00:00Z", "time of day out of range"),
        ("2025-03-03T09:60:00Z", "time of day out of range"),
        ("2025-03-03T09:30:61Z", "time of day out of range"),
        ("2025-03-03T09:30:00.1234567890Z", "1-9 digits"),
        ("2025-03-03T09:30:00+24:00", "UTC offset out of range"),
        ("2025-03-03T09:30:00+01:60", "UTC offset out of range"),
        ("2025-03-03T09:30:00.Z", "expected ISO-8601"),
        ("2025-03-03", "expected ISO-8601"),
        ("2025-3-3T09:30:00Z", "expected ISO-8601"),
        ("2025-03-03t09:30:00Z", "expected ISO-8601"),
        ("2025-03-03T09:30:00ZZ", "expected ISO-8601"),
        ("2025-03-03T09:30:00 EST", "expected ISO-8601"),
        ("yesterday at noon", "expected ISO-8601"),
        ("", "expected ISO-8601"),
        ("2025-03-03T09:30:00.²Z", "expected ISO-8601"),
        ("２０２５-03-03T09:30:00Z", "expected ISO-8601"),  # full-width digits
        ("2025-03-03T09:30:00.٣Z", "expected ISO-8601"),  # Arabic-Indic digit
    ],
)
def test_iso_errors_are_value_errors_naming_the_problem(text: str, message: str) -> None:
    for parse in (parse_iso_ns, IsoParser(), IsoParser(LocalZone(NY))):
        with pytest.raises(ValueError, match=message) as info:
            parse(text)
        # the message quotes what was wrong (never a bare int() error)
        assert "invalid literal" not in str(info.value)


def test_leap_second_is_accepted() -> None:
    # second 60 is the next minute's second 0 (no wrong day, no error)
    assert parse_iso_ns("2016-12-31T23:59:60Z") == parse_iso_ns("2017-01-01T00:00:00Z")


def test_fraction_to_ns() -> None:
    assert fraction_to_ns("") == 0
    assert fraction_to_ns("5") == 500_000_000
    assert fraction_to_ns("000000001") == 1
    with pytest.raises(ValueError, match="1-9 digits"):
        fraction_to_ns("1234567890")
    with pytest.raises(ValueError, match="1-9 digits"):
        fraction_to_ns("12a")


# ---------------------------------------------------------------------------
# epoch numbers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_740_994_200, T0930 * S),
        (1_740_994_200.5, T0930 * S + 500_000_000),
        (1_740_994_200_123, T0930 * S + 123_000_000),
        (1_740_994_200_123_456, T0930 * S + 123_456_000),
        (1_740_994_200_123_456_789, T0930 * S + 123_456_789),
        (0, 0),
        (-86_400, -86_400 * S),  # 1969-12-31 in seconds
        (99_999_999_999, 99_999_999_999 * S),  # largest "seconds" (year 5138)
        (100_000_000_000, 100_000_000_000 * 1_000_000),  # smallest "milliseconds"
    ],
)
def test_epoch_unit_by_magnitude(value: float, expected: int) -> None:
    assert epoch_to_ns(value, "auto") == expected


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("s", 1_740_994_200 * S),
        ("ms", 1_740_994_200 * 1_000_000),
        ("us", 1_740_994_200 * 1_000),
        ("ns", 1_740_994_200),
    ],
)
def test_epoch_explicit_unit_overrides_magnitude(unit: str, expected: int) -> None:
    assert epoch_to_ns(1_740_994_200, unit) == expected  # type: ignore[arg-type]
    parse = build_time_parser(f"epoch_{unit}")
    assert parse(1_740_994_200, None) == expected
    assert parse("1740994200", None) == expected


def test_epoch_fractions_are_exact_to_the_unit() -> None:
    assert epoch_to_ns(1_740_994_200.25, "s") == T0930 * S + 250_000_000
    assert epoch_to_ns(1_740_994_200_123.5, "ms") == T0930 * S + 123_500_000
    assert build_time_parser("epoch_ms")("1740994200123.5", None) == T0930 * S + 123_500_000


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_epoch_non_finite_is_an_error(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        epoch_to_ns(bad, "auto")


def test_iso_format_also_reads_epoch_numbers_and_strings() -> None:
    parse = build_time_parser("iso")
    assert parse(1_740_994_200_123, None) == T0930 * S + 123_000_000
    assert parse("1740994200123", None) == T0930 * S + 123_000_000
    assert parse("1740994200.5", None) == T0930 * S + 500_000_000
    assert parse("2025-03-03T09:30:00Z", None) == T0930 * S


@pytest.mark.parametrize("fmt", ["iso", "epoch", "epoch_ms"])
@pytest.mark.parametrize("bad", [True, None, [1], {"a": 1}, "12:30", "1e9", "abc", ""])
def test_time_parser_rejects_non_times(fmt: str, bad: object) -> None:
    parse = build_time_parser(fmt)
    with pytest.raises(ValueError):
        parse(bad, None)


def test_unknown_epoch_unit_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="unknown epoch unit"):
        build_time_parser("epoch_days")


# ---------------------------------------------------------------------------
# strftime-like patterns


@pytest.mark.parametrize("n", range(1, 10))
def test_pattern_fraction_1_to_9_digits(n: int) -> None:
    digits = "987654321"[:n]
    pattern = TimePattern("%Y-%m-%d %H:%M:%S.%f")
    expected = T0930 * S + int(digits.ljust(9, "0"))
    assert pattern.parse(f"2025-03-03 09:30:00.{digits}") == expected


def test_pattern_fraction_of_10_digits_is_an_error() -> None:
    with pytest.raises(ValueError, match="does not match format"):
        TimePattern("%Y-%m-%d %H:%M:%S.%f").parse("2025-03-03 09:30:00.1234567890")


@pytest.mark.parametrize("month", ["Mar", "mar", "MAR"])
def test_pattern_month_name(month: str) -> None:
    pattern = TimePattern("%d/%b/%Y:%H:%M:%S %z")
    assert pattern.parse(f"03/{month}/2025:10:30:00 +0100") == T0930 * S


def test_pattern_unknown_month_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="invalid date"):
        TimePattern("%d %b %Y %H:%M").parse("03 Foo 2025 09:30")


def test_pattern_two_digit_year_and_no_seconds() -> None:
    assert TimePattern("%y%m%d %H:%M").parse("250303 09:30") == T0930 * S


def test_pattern_time_only_takes_the_day_from_the_caller() -> None:
    pattern = TimePattern("%H:%M:%S.%f")
    assert not pattern.has_date
    assert pattern.parse("09:30:00.000000123", day_ns=MAR03 * S) == T0930 * S + 123
    # the next day moves by exactly 24 h
    assert (
        pattern.parse("09:30:00.5", day_ns=(MAR03 + 86_400) * S)
        == (T0930 + 86_400) * S + 500_000_000
    )
    with pytest.raises(ValueError, match="needs a date"):
        pattern.parse("09:30:00.5")


def test_pattern_in_configured_zone_across_dst() -> None:
    pattern = TimePattern("%Y-%m-%d %H:%M:%S", LocalZone(NY))
    assert pattern.parse("2025-03-09 01:59:59") == (MAR09 + 6 * 3600 + 3599) * S
    assert pattern.parse("2025-03-09 03:00:00") == (MAR09 + 7 * 3600) * S
    time_only = TimePattern("%H:%M", LocalZone(NY))
    assert time_only.parse("12:00", day_ns=MAR09 * S) == (MAR09 + 16 * 3600) * S


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2025-13-03 09:30:00", "invalid date"),
        ("2025-02-29 09:30:00", "invalid date"),
        ("2025-03-03 24:00:00", "time of day out of range"),
        ("2025-03-03 09:61:00", "time of day out of range"),
        ("2025-03-03T09:30:00", "does not match"),
        ("garbage", "does not match"),
    ],
)
def test_pattern_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimePattern("%Y-%m-%d %H:%M:%S").parse(text)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("%Y-%m-%d %H:%M:%Q", "unsupported directive %Q"),
        ("%H:%M:%H", "repeats %H"),
        ("%Y-%m %H:%M", "partial date"),
        ("%Y-%m-%d %H", "needs at least %H and %M"),
    ],
)
def test_bad_patterns_are_config_errors(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimePattern(pattern)


def test_build_time_parser_pattern_needs_a_string() -> None:
    parse = build_time_parser("%H:%M:%S")
    assert parse("09:30:00", MAR03 * S) == T0930 * S
    with pytest.raises(ValueError, match="expected a timestamp string"):
        parse(930, MAR03 * S)


# ---------------------------------------------------------------------------
# FIX UTCTimestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20250303-09:30:00", T0930 * S),
        ("20250303-09:30:00.123", T0930 * S + 123_000_000),
        ("20250303-09:30:00.123456", T0930 * S + 123_456_000),
        ("20250303-09:30:00.123456789", T0930 * S + 123_456_789),
    ],
)
def test_fix_time(text: str, expected: int) -> None:
    assert parse_fix_time(text) == expected
    assert build_time_parser("fix")(text, None) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("20251303-09:30:00", "invalid date"),
        ("20250303-24:00:00", "time of day out of range"),
        ("20250303-09:30:00.1234567890", "expected FIX UTCTimestamp"),
        ("2025-03-03T09:30:00Z", "expected FIX UTCTimestamp"),
        ("20250303 09:30:00", "expected FIX UTCTimestamp"),
        ("", "expected FIX UTCTimestamp"),
    ],
)
def test_fix_time_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fix_time(text)


# ---------------------------------------------------------------------------
# formatting and round trips


def test_ns_to_iso() -> None:
    assert ns_to_iso(T0930 * S + 123_456_789) == "2025-03-03T09:30:00.123456789Z"
    assert ns_to_iso(0) == "1970-01-01T00:00:00.000000000Z"
    assert ns_to_iso(-1) == "1969-12-31T23:59:59.999999999Z"
    assert ns_to_iso(INT64_MAX) == "2262-04-11T23:47:16.854775807Z"


def test_ns_to_iso_pads_years_to_four_digits() -> None:
    assert ns_to_iso(parse_iso_ns("0987-06-05T04:03:02.1Z")) == "0987-06-05T04:03:02.100000000Z"


_FIRST_NS = parse_iso_ns("0001-01-01T00:00:00Z")
_LAST_NS = parse_iso_ns("9999-12-31T23:59:59.999999999Z")


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.integers(INT64_MIN, INT64_MAX), st.integers(_FIRST_NS, _LAST_NS)))
@example(INT64_MIN)
@example(INT64_MAX)
@example(_FIRST_NS)
@example(_LAST_NS)
def test_ns_round_trip(ns: int) -> None:
    text = ns_to_iso(ns)
    assert parse_iso_ns(text) == ns
    assert IsoParser()(text) == ns


_SHARED_ISO = IsoParser()
_SHARED_ISO_NY = IsoParser(LocalZone(NY))
_NY_ZONE = LocalZone(NY)


def _two(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.integers(lo, hi).map(lambda v: f"{v:02d}")


_iso_like = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, ws, tz: (
        f"{y:04d}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{ws}{tz}"
    ),
    st.integers(1, 9999),
    _two(0, 13),
    _two(0, 32),
    st.sampled_from(["T", " ", "t", "_"]),
    _two(0, 25),
    _two(0, 61),
    _two(0, 61),
    st.one_of(
        st.just(""),
        st.tuples(st.sampled_from([".", ","]), st.text("0123456789", max_size=11)).map("".join),
        st.sampled_from([".٣", ".²", ".5 ", ". 5"]),
    ),
    st.sampled_from(["", "", " "]),
    st.one_of(
        st.sampled_from(["", "Z", "z", "UTC", "Zulu", "+", "-5"]),
        st.builds(
            lambda sign, h, colon, m: f"{sign}{h:02d}{colon}{m}",
            st.sampled_from("+-"),
            st.integers(0, 25),
            st.sampled_from(["", ":"]),
            st.sampled_from(["", "00", "30", "45", "60", "7"]),
        ),
    ),
)


def _outcome(parse: object, text: str) -> int | str:
    try:
        return parse(text)  # type: ignore[operator, no-any-return]
    except ValueError:
        return "error"


@settings(max_examples=1500, deadline=None)
@given(st.one_of(_iso_like, st.text(max_size=40)))
@example("2025-03-09T02:30:00")
@example("2025-03-03T09:30:00.5z")
@example("2025-03-03 09:30:00.5 Z")
def test_iso_parser_agrees_with_parse_iso_ns(text: str) -> None:
    """The cached parser (shared across examples, so its cache is exercised) and a fresh one
    give exactly what parse_iso_ns gives: the same value or a ValueError."""
    expected = _outcome(parse_iso_ns, text)
    assert _outcome(_SHARED_ISO, text) == expected
    assert _outcome(IsoParser(), text) == expected
    expected_ny = _outcome(lambda t: parse_iso_ns(t, _NY_ZONE), text)
    assert _outcome(_SHARED_ISO_NY, text) == expected_ny


@settings(max_examples=200)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=30))
@example([-(2**63), 0, -1, 2**63 - 1, 1_705_276_800_123_456_789])
def test_iso_of_many_equals_one_by_one(values: list[int]) -> None:
    assert ns_to_iso_many(values) == [ns_to_iso(v) for v in values]
