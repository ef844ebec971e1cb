"""Timestamp parsing to UTC nanoseconds, with nanosecond precision.

Python's ``datetime`` stops at microseconds, so seconds are computed with integer
calendar arithmetic and the fraction is kept as digits. Every parser raises
``ValueError`` with a message naming what it expected; callers turn that into a reject.

>>> parse_iso_ns("2025-03-03T09:30:00.123456789Z")
1740994200123456789
>>> parse_iso_ns("2025-03-03 10:30:00.5+01:00")
1740994200500000000
>>> epoch_to_ns(1740994200123, "auto")
1740994200123000000
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

NS_PER_S: Final = 1_000_000_000
NS_PER_DAY: Final = 86_400 * NS_PER_S
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()

EpochUnit = Literal["s", "ms", "us", "ns", "auto"]
_UNIT_SCALE: Final[dict[str, int]] = {"s": NS_PER_S, "ms": 1_000_000, "us": 1_000, "ns": 1}


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 for a proleptic Gregorian date (raises on invalid dates)."""
    return date(year, month, day).toordinal() - _EPOCH_ORDINAL


def fraction_to_ns(digits: str) -> int:
    """'5' -> 500_000_000, '123456789' -> 123_456_789. More than 9 digits is an error."""
    n = len(digits)
    if n == 0:
        return 0
    if n > 9 or not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"fraction of a second must be 1-9 digits; was {digits!r}")
    scale: int = 10 ** (9 - n)
    return int(digits) * scale


_ISO_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,  # ISO-8601 digits are ASCII; \d alone would accept any Unicode digit
)


def _offset_seconds(tz: str) -> int:
    if tz in ("Z", "z", "UTC"):
        return 0
    sign = -1 if tz[0] == "-" else 1
    body = tz[1:].replace(":", "")
    hours = int(body[:2])
    minutes = int(body[2:4]) if len(body) >= 4 else 0
    if hours > 23 or minutes > 59:
        raise ValueError(f"UTC offset out of range: {tz!r}")
    return sign * (hours * 3600 + minutes * 60)


class LocalZone:
    """Converts naive local wall-clock seconds to UTC, caching the offset per hour."""

    __slots__ = ("_cache", "name", "zone")

    def __init__(self, name: str) -> None:
        try:
            self.zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r}") from exc
        self.name = name
        self._cache: dict[int, int] = {}

    def _offset(self, local_seconds: int) -> int:
        naive = datetime(1970, 1, 1) + timedelta(seconds=local_seconds)
        delta = naive.replace(tzinfo=self.zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    def utc_seconds(self, local_seconds: int) -> int:
        hour = local_seconds // 3600
        offset = self._cache.get(hour)
        if offset is None:
            offset = self._offset(hour * 3600)
            if self._offset(hour * 3600 + 3599) != offset:
                # the zone changes offset inside this hour (e.g. St. John's at 00:01 until
                # 2011, LMT changes): an hour-wide offset would be wrong for part of it
                return local_seconds - self._offset(local_seconds)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[hour] = offset
        return local_seconds - offset


def parse_iso_ns(text: str, default_zone: LocalZone | None = None) -> int:
    """ISO-8601 date-time with any fraction precision (up to ns) and optional offset.

    A time without offset is UTC unless ``default_zone`` says which local zone it is in.
    """
    m = _ISO_RE.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"expected ISO-8601 'YYYY-MM-DDTHH:MM:SS[.f][Z|±HH:MM]'; was {text!r}")
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    hour, minute, second = int(hh), int(mi), int(ss)
    if hour > 23 or minute > 59 or second > 60:
        raise ValueError(f"time of day out of range in {text!r}")
    try:
        days = days_from_civil(int(y), int(mo), int(d))
    except ValueError as exc:
        raise ValueError(f"invalid date in {text!r}") from exc
    seconds = days * 86_400 + hour * 3600 + minute * 60 + second
    if tz is not None:
        seconds -= _offset_seconds(tz)
    elif default_zone is not None:
        seconds = default_zone.utc_seconds(seconds)
    return seconds * NS_PER_S + fraction_to_ns(frac or "")


_FRACTION_SCALE: Final = [10 ** (9 - n) for n in range(10)]


class IsoParser:
    """``parse_iso_ns`` with a cache of whole-second prefixes: log lines share seconds, so
    most timestamps cost a dict lookup and a slice.

    >>> IsoParser()("2025-03-03T09:30:00.25Z")
    1740994200250000000
    """

    __slots__ = ("_cache", "zone")

    def __init__(self, zone: LocalZone | None = None) -> None:
        self.zone = zone
        self._cache: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        if len(text) < 19 or text[10] not in "T ":
            return parse_iso_ns(text, self.zone)
        rest = text[19:]
        if rest in ("", "Z"):
            frac_ns, tz = 0, rest
        elif rest[0] in ".,":
            if rest[-1] == "Z":
                digits, tz = rest[1:-1], "Z"
            else:
                digits, tz = rest[1:], ""
            if not (0 < len(digits) <= 9 and digits.isascii() and digits.isdigit()):
                return parse_iso_ns(text, self.zone)
            frac_ns = int(digits) * _FRACTION_SCALE[len(digits)]
        else:
            return parse_iso_ns(text, self.zone)
        if tz not in ("", "Z"):
            return parse_iso_ns(text, self.zone)
        key = text[:19] if tz == "Z" or self.zone is None else text[:19] + "L"
        seconds = self._cache.get(key)
        if seconds is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            seconds = parse_iso_ns(text[:19] + ("Z" if tz == "Z" else ""), self.zone) // NS_PER_S
            self._cache[key] = seconds
        return seconds * NS_PER_S + frac_ns


def epoch_to_ns(value: int | float, unit: EpochUnit) -> int:
    """Epoch number in the given unit to ns; ``auto`` infers the unit from the magnitude
    (seconds up to year 5138, then ms, µs, ns)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"timestamp must be a finite number; was {value!r}")
    if unit == "auto":
        magnitude = abs(value)
        if magnitude < 1e11:
            unit = "s"
        elif magnitude < 1e14:
            unit = "ms"
        elif magnitude < 1e17:
            unit = "us"
        else:
            unit = "ns"
    scale = _UNIT_SCALE[unit]
    if isinstance(value, int):
        return value * scale
    whole = int(value)
    return whole * scale + round((value - whole) * scale)


def ns_to_iso(ns: int) -> str:
    """UTC ISO-8601 with nanoseconds: ``2025-03-03T09:30:00.123456789Z``."""
    seconds, frac = divmod(ns, NS_PER_S)
    dt = datetime.fromtimestamp(seconds, tz=UTC)
    # not %Y: C strftime does not pad years before 1000 to four digits
    return f"{dt.year:04d}-{dt:%m-%dT%H:%M:%S}.{frac:09d}Z"


def ns_to_iso_many(values: Sequence[int]) -> list[str]:
    """``ns_to_iso`` of many int64 values at once (NumPy formats them in C; the one value
    NumPy reserves for NaT, -2**63, goes through ``ns_to_iso``)."""
    arr = np.asarray(values, dtype=np.int64)
    text: list[str] = np.datetime_as_string(arr.view("datetime64[ns]"), unit="ns").tolist()
    out = [t + "Z" for t in text]
    for i in np.flatnonzero(arr == np.iinfo(np.int64).min).tolist():
        out[i] = ns_to_iso(int(arr[i]))
    return out


# ---------------------------------------------------------------------------
# strftime-like patterns with nanoseconds, used by regex / csv / logfmt sources

_DIRECTIVES: Final[dict[str, tuple[str, str]]] = {
    "Y": ("Y", r"\d{4}"),
    "m": ("m", r"\d{1,2}"),
    "d": ("d", r"\d{1,2}"),
    "H": ("H", r"\d{1,2}"),
    "M": ("M", r"\d{2}"),
    "S": ("S", r"\d{2}"),
    "f": ("f", r"\d{1,9}"),  # fraction, 1 to 9 digits (unlike strptime's 6)
    "b": ("b", r"[A-Za-z]{3}"),
    "z": ("z", r"Z|[+-]\d{2}:?\d{2}"),
    "y": ("y", r"\d{2}"),
}
_MONTHS: Final = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}


class TimePattern:
    """A compiled ``strftime``-like pattern (%Y %m %d %H %M %S %f %b %y %z) to UTC ns.

    ``%f`` takes 1-9 fractional digits. A pattern without a date (time-only) needs the day
    from the caller: ``parse(text, day_ns=...)``.

    >>> TimePattern("%H:%M:%S.%f").parse("09:30:00.000000123", day_ns=1740960000 * NS_PER_S)
    1740994200000000123
    """

    __slots__ = ("_regex", "has_date", "pattern", "zone")

    def __init__(self, pattern: str, zone: LocalZone | None = None) -> None:
        self.pattern = pattern
        self.zone = zone
        parts: list[str] = []
        i = 0
        seen: set[str] = set()
        while i < len(pattern):
            ch = pattern[i]
            if ch == "%" and i + 1 < len(pattern):
                code = pattern[i + 1]
                if code == "%":
                    parts.append("%")
                elif code in _DIRECTIVES:
                    name, rx = _DIRECTIVES[code]
                    if name in seen:
                        raise ValueError(f"time format {pattern!r} repeats %{code}")
                    seen.add(name)
                    parts.append(f"(?P<{name}>{rx})")
                else:
                    raise ValueError(f"time format {pattern!r}: unsupported directive %{code}")
                i += 2
            else:
                parts.append(re.escape(ch))
                i += 1
        if not {"H", "M"} <= seen:
            raise ValueError(f"time format {pattern!r} needs at least %H and %M")
        self.has_date = (
            "d" in seen and ("Y" in seen or "y" in seen) and ("m" in seen or "b" in seen)
        )
        if not self.has_date and seen & {"Y", "y", "m", "b", "d"}:
            raise ValueError(f"time format {pattern!r} has a partial date (needs %Y, %m/%b, %d)")
        self._regex = re.compile("".join(parts), re.ASCII)

    def parse(self, text: str, day_ns: int | None = None) -> int:
        m = self._regex.fullmatch(text.strip())
        if m is None:
            raise ValueError(f"timestamp {text!r} does not match format {self.pattern!r}")
        g = m.groupdict()
        if self.has_date:
            year = int(g["Y"]) if g.get("Y") else 2000 + int(g["y"])
            if g.get("m"):
                month = int(g["m"])
            else:
                month = _MONTHS.get(g["b"].lower(), 0)
            try:
                days = days_from_civil(year, month, int(g["d"]))
            except ValueError as exc:
                raise ValueError(f"invalid date in {text!r}") from exc
            base = days * 86_400
        else:
            if day_ns is None:
                raise ValueError(f"time-only timestamp {text!r} needs a date (config `date`)")
            base = day_ns // NS_PER_S
        hour, minute = int(g["H"]), int(g["M"])
        second = int(g["S"]) if g.get("S") else 0
        if hour > 23 or minute > 59 or second > 60:
            raise ValueError(f"time of day out of range in {text!r}")
        seconds = base + hour * 3600 + minute * 60 + second
        tz = g.get("z")
        if tz:
            seconds -= _offset_seconds(tz)
        elif self.zone is not None:
            seconds = self.zone.utc_seconds(seconds)
        return seconds * NS_PER_S + fraction_to_ns(g.get("f") or "")


TimeFormat = (
    str  # "iso", "epoch_s", "epoch_ms", "epoch_us", "epoch_ns", "epoch", "fix", or a pattern
)


def build_time_parser(
    fmt: TimeFormat, zone: str | None = None
) -> Callable[[object, int | None], int]:
    """Returns ``parse(value, day_ns) -> ns`` for a configured time format.

    ``iso`` (default) also accepts epoch numbers with the unit inferred from magnitude;
    ``epoch_<unit>`` fixes the unit when magnitude is ambiguous.
    """
    local = LocalZone(zone) if zone and zone.upper() != "UTC" else None
    if fmt in ("iso", "auto"):
        iso = IsoParser(local)

        def parse_auto(value: object, day_ns: int | None = None) -> int:
            if isinstance(value, str):
                if len(value) > 10 and value[4] == "-":
                    return iso(value)
                if _is_number(value):
                    return epoch_to_ns(_to_number(value), "auto")
                return iso(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return epoch_to_ns(value, "auto")
            raise ValueError(f"timestamp must be a string or a number; was {value!r}")

        return parse_auto
    if fmt.startswith("epoch"):
        unit = fmt.partition("_")[2] or "auto"
        if unit not in _UNIT_SCALE and unit != "auto":
            raise ValueError(f"unknown epoch unit in time format {fmt!r} (s, ms, us, ns)")

        def parse_epoch(value: object, day_ns: int | None = None) -> int:
            if isinstance(value, str) and _is_number(value):
                value = _to_number(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return epoch_to_ns(value, unit)  # type: ignore[arg-type]
            raise ValueError(f"expected an epoch number ({fmt}); was {value!r}")

        return parse_epoch
    if fmt == "fix":

        def parse_fix(value: object, day_ns: int | None = None) -> int:
            return parse_fix_time(str(value))

        return parse_fix
    pattern = TimePattern(fmt, local)

    def parse_pattern(value: object, day_ns: int | None = None) -> int:
        if not isinstance(value, str):
            raise ValueError(f"expected a timestamp string like {fmt!r}; was {value!r}")
        return pattern.parse(value, day_ns)

    return parse_pattern


_NUMBER_RE: Final = re.compile(r"-?\d+(?:\.\d+)?", re.ASCII)


def _is_number(text: str) -> bool:
    return _NUMBER_RE.fullmatch(text) is not None


def _to_number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


_FIX_TIME_RE: Final = re.compile(
    r"(\d{4})(\d{2})(\d{2})-(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?", re.ASCII
)


def parse_fix_time(text: str) -> int:
    """FIX UTCTimestamp ``YYYYMMDD-HH:MM:SS[.sss…]`` (up to ns) to UTC ns."""
    m = _FIX_TIME_RE.fullmatch(text)
    if m is None:
        raise ValueError(f"expected FIX UTCTimestamp YYYYMMDD-HH:MM:SS[.fff]; was {text!r}")
    y, mo, d, hh, mi, ss, frac = m.groups()
    hour, minute, second = int(hh), int(mi), int(ss)
    if hour > 23 or minute > 59 or second > 60:
        raise ValueError(f"time of day out of range in {text!r}")
    try:
        days = days_from_civil(int(y), int(mo), int(d))
    except ValueError as exc:
        raise ValueError(f"invalid date in {text!r}") from exc
    return (days * 86_400 + hour * 3600 + minute * 60 + second) * NS_PER_S + fraction_to_ns(
        frac or ""
    )
