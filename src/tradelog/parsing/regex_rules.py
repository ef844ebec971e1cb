"""Regex rules: a new engine's text log format described by configuration alone.

In the spirit of Promtail pipeline stages, a user who meets an unfamiliar log format
writes a few rules in TOML (decoded into :class:`RegexSettings`) instead of a parser in
Python::

    record_start = '\\[\\d{2}:\\d{2}:\\d{2}\\.\\d{1,9}\\]'
    path_pattern = 'STRAT_(?P<strategy_id>\\w+?)_(?P<date>\\d{8})\\.log$'

    [[rules]]
    name = "heartbeat"
    pattern = '^\\[[^\\]]+\\] HB\\b'
    skip = true

    [[rules]]
    name = "orders"
    pattern = '^\\[(?P<ts>[^\\]]+)\\] ORD (?P<kind>NEW|ACK) (?P<client>\\w+)/(?P<oid>\\d+)'
    kind_from = "kind"
    kind_map = { NEW = "order_new", ACK = "order_ack" }
    fields = { order_id = "{client}-{oid}" }
    time_format = "%H:%M:%S.%f"

How a stream becomes records:

- Without ``record_start`` every line is a record (blank lines are skipped). With it, a
  record starts at every match of ``record_start``, even in the middle of a physical line
  (two records glued together are split there), and runs up to the next match, across
  newlines (continuation lines belong to the record before them). Text before the first
  record start of a stream is unmatched.
- The rules are tried in order with ``search``; the first that matches wins. Its named
  groups that took part in the match become the record's fields (a group named like a
  canonical field feeds it; other names end up in the event's ``attrs``), then the
  rule's value maps, templates, static fields and the fields taken from the file path
  are applied, and the time group is parsed into ``ts_ns`` (UTC nanoseconds).
- Time-only timestamps (``%H:%M:%S.%f``) take their date from the file path or the
  ``date`` setting and roll over midnight: see :class:`RegexParser`.

The parser never raises on input: unreadable records become :class:`Failure` items and
deliberately ignored ones :class:`Skip` items. Configuration mistakes are found once, by
:meth:`RegexSettings.build`, which raises ``ValueError`` naming the rule at fault.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import Any, Final, TypeVar

import msgspec

from tradelog.model.events import EventKind, RejectReason
from tradelog.model.timefmt import NS_PER_DAY, NS_PER_S, LocalZone, TimePattern, days_from_civil
from tradelog.parsing.base import (
    DEFAULT_MAX_RECORD_BYTES,
    Failure,
    Item,
    Record,
    Skip,
    decode_line,
    iter_lines,
)

_T = TypeVar("_T")
_HALF_DAY_NS: Final = NS_PER_DAY // 2
_FRACTION_SCALE: Final[tuple[int, ...]] = tuple(10 ** (9 - n) for n in range(10))
_TIME_CACHE_LIMIT: Final = 4096
_KINDS: Final = frozenset(kind.value for kind in EventKind)
_DATE_GROUPS: Final = frozenset({"Y", "m", "d", "date"})
_DATE_RE: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})|(\d{4})(\d{2})(\d{2})")


class RegexRule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One record type of a text format: a pattern and how its groups become fields."""

    pattern: str
    """Python ``re`` pattern with named groups, applied with ``search`` to the record's
    text; every named group that took part in the match becomes a field of that name."""
    kind: str | None = None
    """A fixed event kind for every record this rule matches (``fill``, ``order_new``…)."""
    kind_from: str | None = None
    """Name of the group whose value gives the event kind, through ``kind_map``."""
    kind_map: dict[str, str] = {}
    """Group value → event kind (``NEW = "order_new"``); unmapped values pass through as
    they are and the cleaner rejects the ones that are not kinds."""
    values: dict[str, dict[str, str | None]] = {}
    """Value maps per group field (``side = {BUY = "buy"}``); a null or empty result
    (``price = {INVALID = null}``, in TOML ``{INVALID = ""}``) removes the field."""
    fields: dict[str, str] = {}
    """Fields composed from group values by a ``str.format`` template
    (``order_id = "{client}-{oid}"``); a record where a named group did not take part in
    the match is a ``missing_field`` failure naming the composed field."""
    static: dict[str, str | float | int] = {}
    """Fields added to every record of this rule unless a group or template set them."""
    time_group: str = "ts"
    """The group that holds the timestamp; parsed into ``ts_ns`` and not kept as a field."""
    time_format: str | None = None
    """``strftime``-like pattern of the time group (``%H:%M:%S.%f``, ``%f`` = 1-9 digits;
    see ``TimePattern``). Required unless ``skip``; a time-only pattern takes its date from
    the file path or the ``date`` setting."""
    skip: bool = False
    """Records matching this rule are deliberately ignored (heartbeats, banners…)."""
    name: str | None = None
    """A label for error messages (rules are otherwise named by their index)."""


class RegexSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A whole text format: its rules and how records, dates and zones are found."""

    rules: list[RegexRule]
    """Tried in order for every record; the first whose pattern matches wins."""
    record_start: str | None = None
    """Regex matching the start of every record. Unset: one record per line. Set: a
    record runs from one match to the next, across newlines and splitting lines where a
    match occurs mid-line. The pattern must decide a start from the text of its own line
    (no lookbehind into the previous record, no look-ahead past the line's newline):
    streams are resumed at record starts and incomplete lines are not searched."""
    ignore_unmatched: bool = False
    """Records no rule matches become ``Skip(why="unmatched")`` instead of
    ``no_rule_matched`` failures."""
    path_pattern: str | None = None
    """Regex with named groups applied with ``search`` to the file path. Its groups become
    fields of every record that does not have them, except groups named ``Y``, ``m``,
    ``d`` or ``date`` (``YYYY-MM-DD`` or ``YYYYMMDD``), which give the date of time-only
    timestamps instead. A path it does not match contributes nothing."""
    date: str | None = None
    """``YYYY-MM-DD`` date of time-only timestamps; a date from the path wins over it."""
    time_zone: str | None = None
    """IANA zone of timestamps that carry no UTC offset (default UTC)."""

    def build(
        self, path: str = "", *, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    ) -> RegexParser:
        """A parser for the stream of the file at ``path``; raises ``ValueError`` naming
        the rule and the problem when the configuration cannot work."""
        return RegexParser(self, path, max_record_bytes=max_record_bytes)


# ---------------------------------------------------------------------------
# compiled form


def _format_tokens(fmt: str) -> list[str]:
    """``"%H:%M.%f"`` → ``["%H", ":", "%M", ".", "%f"]`` (``%%`` is the literal ``%``)."""
    tokens: list[str] = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            code = fmt[i + 1]
            tokens.append("%" if code == "%" else "%" + code)
            i += 2
        else:
            tokens.append(fmt[i])
            i += 1
    return tokens


class _TimeReader:
    """One rule's timestamps → ns, memoised on the text before the fraction.

    Log lines share their whole seconds, so for a pattern ending in ``<sep>%f`` most
    timestamps cost one ``rpartition``, a dict lookup and an ``int``; the full
    ``TimePattern`` parse runs once per distinct second. Time-only patterns yield the
    time of day (the parser adds the date and applies the zone); the others yield UTC ns.
    """

    __slots__ = ("_cache_whole", "_day", "_pattern", "cache", "has_offset", "sep", "time_only")

    def __init__(self, fmt: str, zone: LocalZone | None) -> None:
        tokens = _format_tokens(fmt)
        self.time_only = not TimePattern(fmt).has_date
        self.has_offset = "%z" in tokens
        # a time-only pattern reads the local time of day: the zone applies once dated
        self._pattern = TimePattern(fmt, None if self.time_only else zone)
        self._day: int | None = 0 if self.time_only else None
        self.sep: str | None = None
        if (
            len(tokens) >= 2
            and tokens[-1] == "%f"
            and len(tokens[-2]) == 1
            and not tokens[-2].isalnum()
        ):
            self.sep = tokens[-2]
        self._cache_whole = "%f" not in tokens
        self.cache: dict[str, int] = {}

    def read(self, text: str) -> int:
        """Nanoseconds of ``text``; raises ``ValueError`` when it does not fit the pattern."""
        sep = self.sep
        if sep is not None:
            key, found, digits = text.rpartition(sep)
            if found and 0 < len(digits) <= 9 and digits.isascii() and digits.isdigit():
                frac = int(digits) * _FRACTION_SCALE[len(digits)]
                whole = self.cache.get(key)
                if whole is None:
                    whole = self._pattern.parse(text, self._day) - frac
                    self._remember(key, whole)
                return whole + frac
            return self._pattern.parse(text, self._day)
        if self._cache_whole:
            value = self.cache.get(text)
            if value is None:
                value = self._pattern.parse(text, self._day)
                self._remember(text, value)
            return value
        return self._pattern.parse(text, self._day)

    def _remember(self, key: str, value: int) -> None:
        if len(self.cache) >= _TIME_CACHE_LIMIT:
            self.cache.clear()
        self.cache[key] = value


def _required_text(regex: re.Pattern[str]) -> str | None:
    """The longest run of literal text that every match of ``regex`` contains, or None.

    Read from the parse tree of the ``re`` module itself (``re._parser``), keeping only
    literals that sit in the pattern's top-level sequence or in plain groups of it, where
    the engine must match them: never inside alternatives, repeats, lookarounds or
    case-insensitive parts. A record without that text cannot match, so the rule's
    ``search`` is skipped for it. Ties go to the later run (the start of a log line, a
    timestamp or a level, tends to be shared by every rule). Any doubt gives None.
    """
    try:
        import re._parser as sre  # type: ignore[import-not-found]  # noqa: PLC0415

        tree = sre.parse(regex.pattern, regex.flags)
        if tree.state.flags & re.IGNORECASE:
            return None
        literal, subpattern = sre.LITERAL, sre.SUBPATTERN
        runs: list[str] = []
        run: list[str] = []

        def walk(items: Any) -> None:
            for op, arg in items:
                if op is literal:
                    run.append(chr(arg))
                    continue
                if op is subpattern and not arg[1] and not arg[2]:  # no inline flags
                    walk(arg[3])
                    continue
                if run:
                    runs.append("".join(run))
                    run.clear()

        walk(tree)
        if run:
            runs.append("".join(run))
    except Exception:  # an unexpected tree (another Python): no pre-check, just search
        return None
    best: str | None = None
    for text in runs:
        if best is None or len(text) >= len(best):
            best = text
    return best if best is not None and len(best) >= 3 else None


class CompiledRule:
    """A validated, compiled ``RegexRule`` (what a combined parse + clean step plans from:
    its named groups in group order, value maps, templates and defaults)."""

    __slots__ = (
        "defaults",
        "group_count",
        "index",
        "kind",
        "kind_from",
        "kind_map",
        "label",
        "names",
        "needle",
        "search",
        "skip",
        "templates",
        "time_group",
        "time_reader",
        "values",
    )

    def __init__(
        self,
        index: int,
        rule: RegexRule,
        zone: LocalZone | None,
        has_day: bool,
        path_fields: dict[str, str],
    ) -> None:
        label = f"rules[{index}]" + (f" ({rule.name!r})" if rule.name else "")
        self.label = label
        try:
            regex = re.compile(rule.pattern)
        except re.error as exc:
            raise ValueError(f"{label}: invalid pattern {rule.pattern!r}: {exc}") from None
        self.search = regex.search
        self.needle = _required_text(regex)
        self.index = index
        self.group_count = regex.groups
        # named groups in group-number order: the order of ``groupdict()`` and ``groups()``
        self.names = tuple(sorted(regex.groupindex, key=regex.groupindex.__getitem__))
        self.skip = rule.skip
        self.kind: str | None = rule.kind
        self.kind_from: str | None = rule.kind_from
        self.kind_map = dict(rule.kind_map)
        # TOML has no null, so "" removes a field too (the cleaner would ignore it anyway)
        self.values = tuple(
            (name, {raw: (mapped or None) for raw, mapped in vmap.items()})
            for name, vmap in rule.values.items()
        )
        self.templates: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
        self.defaults: dict[str, str | float | int] = {}
        self.time_group = rule.time_group
        self.time_reader: _TimeReader | None = None
        if rule.skip:
            return

        groups = set(regex.groupindex)

        def need_group(what: str, group: str) -> None:
            if group not in groups:
                known = ", ".join(sorted(groups)) or "none"
                raise ValueError(
                    f"{label}: {what} names group {group!r}, which is not a named group of "
                    f"the pattern (groups: {known})"
                )

        if rule.kind is None and rule.kind_from is None:
            raise ValueError(f"{label}: set `kind` or `kind_from` (or `skip = true`)")
        if rule.kind is not None and rule.kind_from is not None:
            raise ValueError(f"{label}: set either `kind` or `kind_from`, not both")
        if rule.kind is not None:
            _check_kind(label, "kind", rule.kind)
        if rule.kind_from is not None:
            need_group("kind_from", rule.kind_from)
        for value, kind in rule.kind_map.items():
            _check_kind(label, f"kind_map[{value!r}]", kind)
        for name in rule.values:
            need_group(f"values.{name}", name)

        if rule.time_format is None:
            raise ValueError(f"{label}: time_format is required (unless `skip = true`)")
        try:
            reader = _TimeReader(rule.time_format, zone)
        except ValueError as exc:
            raise ValueError(f"{label}: bad time_format: {exc}") from None
        need_group("time_group", rule.time_group)
        if reader.time_only and not has_day:
            raise ValueError(
                f"{label}: time_format {rule.time_format!r} has no date; set `date` or a "
                "`path_pattern` whose Y/m/d or date groups match the file path"
            )
        self.time_reader = reader

        templates: list[tuple[str, str, tuple[str, ...]]] = []
        for name, template in rule.fields.items():
            templates.append((name, template, _template_groups(label, name, template, groups)))
        self.templates = tuple(templates)
        # static fields win over path fields; neither overrides a group or a template
        self.defaults = {**path_fields, **rule.static}


def _check_kind(label: str, what: str, kind: str) -> None:
    if kind.strip().lower() not in _KINDS:
        raise ValueError(f"{label}: {what} = {kind!r} is not an event kind {sorted(_KINDS)}")


def _template_groups(label: str, name: str, template: str, groups: set[str]) -> tuple[str, ...]:
    """The groups a field template reads, checked against the pattern's groups."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{label}: fields.{name} = {template!r}: {exc}") from None
    used: list[str] = []
    for _, group, _, _ in parts:
        if group is None:
            continue
        if group not in groups:
            known = ", ".join(sorted(groups)) or "none"
            raise ValueError(
                f"{label}: fields.{name} = {template!r} names group {group!r}, which is not "
                f"a named group of the pattern (groups: {known})"
            )
        if group not in used:
            used.append(group)
    if not used:
        raise ValueError(f"{label}: fields.{name} = {template!r} names no group")
    try:
        template.format_map({group: "0" for group in used})
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{label}: fields.{name} = {template!r}: {exc}") from None
    return tuple(used)


def _day_of(text: str, what: str) -> int:
    """``YYYY-MM-DD`` or ``YYYYMMDD`` → ns at midnight UTC of that day."""
    m = _DATE_RE.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{what}: {text!r} is not a date (YYYY-MM-DD or YYYYMMDD)")
    parts = m.groups()[:3] if m.group(1) else m.groups()[3:]
    y, mo, d = (int(p) for p in parts)
    return _civil_day(y, mo, d, what, text)


def _civil_day(y: int, mo: int, d: int, what: str, text: str) -> int:
    try:
        return days_from_civil(y, mo, d) * NS_PER_DAY
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a valid date") from None


def _path_info(pattern: str | None, path: str) -> tuple[dict[str, str], int | None]:
    """Fields and date (ns at midnight) that ``pattern`` finds in ``path``."""
    if pattern is None:
        return {}, None
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"path_pattern: invalid pattern {pattern!r}: {exc}") from None
    m = regex.search(path)
    if m is None:
        return {}, None
    groups = {k: v for k, v in m.groupdict().items() if v is not None}
    what = f"path_pattern date of {path!r}"
    day: int | None = None
    if "date" in groups:
        day = _day_of(groups["date"], what)
    elif _DATE_GROUPS & groups.keys():
        ymd = [groups.get(k, "") for k in ("Y", "m", "d")]
        if not all(p.isascii() and p.isdigit() for p in ymd):
            found = {k: groups.get(k) for k in ("Y", "m", "d")}
            raise ValueError(f"{what}: needs groups Y, m and d as digits; got {found}")
        y, mo, d = (int(p) for p in ymd)
        day = _civil_day(y, mo, d, what, "-".join(ymd))
    return {k: v for k, v in groups.items() if k not in _DATE_GROUPS}, day


# ---------------------------------------------------------------------------
# the parser


class RegexParser:
    """Records of a configured text format → items (one instance per stream).

    Time-only timestamps get the date of the file path (or of the ``date`` setting) and
    roll over midnight: the parser remembers the time of day of the last time-only
    record it read, and a record whose time of day is more than 12 hours earlier than
    that moves this and every later record of the stream one day forward (23:59:59.9
    followed by 00:00:00.1 is the next day; a few seconds backwards is not). Records
    that are not emitted yet (an incomplete last record) do not count, so feeding the
    stream in any chunks gives the same timestamps. The rule only ever moves forward, so
    it cannot tell a late record from a new day: records out of order across midnight
    (00:00:00.1, then a late 23:59:59.95, then 00:00:00.2) put the late one a day ahead
    and advance the day once more at the next early record. Logs written that way need
    dated timestamps.

    ``time_zone`` applies to the local date-time once the date is known, so a time-only
    log crossing a DST change is converted with the offset in force at each record.
    """

    def __init__(
        self,
        settings: RegexSettings,
        path: str = "",
        *,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        if not settings.rules:
            raise ValueError("regex parser needs at least one rule")
        zone_name = settings.time_zone
        self._zone = LocalZone(zone_name) if zone_name and zone_name.upper() != "UTC" else None
        config_day = None if settings.date is None else _day_of(settings.date, "date")
        path_fields, path_day = _path_info(settings.path_pattern, path)
        day = config_day if path_day is None else path_day
        self._day_ns = day or 0
        self._rules = tuple(
            CompiledRule(i, rule, self._zone, day is not None, path_fields)
            for i, rule in enumerate(settings.rules)
        )
        self._start: re.Pattern[str] | None = None
        if settings.record_start is not None:
            try:
                self._start = re.compile(settings.record_start)
            except re.error as exc:
                raise ValueError(
                    f"record_start: invalid pattern {settings.record_start!r}: {exc}"
                ) from None
        self._ignore_unmatched = settings.ignore_unmatched
        self._max_bytes = max_record_bytes
        self._last_tod: int | None = None
        self._day_shift = 0
        self._preamble_end: int | None = None

    def parse(self, data: bytes, base: int, final: bool) -> tuple[list[Item], int]:
        """Items of the complete records in ``data`` (stream offset ``base``) and the
        number of bytes they span; see ``tradelog.parsing.base.Parser``.

        With ``record_start``, ``data`` from a stream offset > 0 is taken to begin at a
        record start (the caller resumes where this parser stopped consuming), unless this
        instance consumed up to there without finding any record start yet.
        """
        if self._start is None:
            return self.parse_lines(data, base, final, self._apply)
        return self._parse_records(data, base, final, self._start)

    @property
    def line_mode(self) -> bool:
        """One record per line (no ``record_start``): what ``parse_lines`` serves."""
        return self._start is None

    @property
    def rules(self) -> tuple[CompiledRule, ...]:
        """The compiled rules, in the order they are tried."""
        return self._rules

    # ---- record splitting ------------------------------------------------
    def parse_lines(
        self, data: bytes, base: int, final: bool, apply: Callable[[str, int, int], _T]
    ) -> tuple[list[_T | Failure | Skip], int]:
        """The one-record-per-line split of ``parse``, with ``apply(text, start, end)``
        turning each readable non-blank line into its result: ``_apply`` for items, or a
        caller's combined parse + clean step, which then splits lines exactly as ``parse``
        does (too long, invalid UTF-8, blank and ``\\r``-terminated lines alike)."""
        lines, consumed = iter_lines(data, final)
        out: list[_T | Failure | Skip] = []
        append = out.append
        max_bytes = self._max_bytes
        start = base
        for line in lines:
            end = start + len(line) + 1
            text: str | Failure
            if len(line) > max_bytes:
                text = decode_line(line, start, end, max_bytes)
            else:
                try:
                    text = line.decode()
                except UnicodeDecodeError:
                    text = decode_line(line, start, end, max_bytes)
            if isinstance(text, Failure):
                append(text)
            else:
                if text and text[-1] == "\r":
                    text = text[:-1]
                if not text or text.isspace():
                    append(Skip("blank", start, end))
                else:
                    append(apply(text, start, end))
            start = end
        if start > base + consumed:  # the last line of a final chunk has no newline
            last = out[-1]
            if isinstance(last, Record | Failure | Skip):
                last.end = base + consumed
        return out, consumed

    def _parse_records(
        self, data: bytes, base: int, final: bool, start_rx: re.Pattern[str]
    ) -> tuple[list[Item], int]:
        # Only complete lines are searched for record starts (unless final), so a start is
        # never decided on a line that more data could still change.
        limit = len(data) if final else data.rfind(b"\n") + 1
        if limit == 0:
            return [], 0
        chunk = data if limit == len(data) else data[:limit]
        text = chunk.decode("utf-8", "surrogateescape")
        n = len(text)
        starts: list[int] = []
        if base > 0 and base != self._preamble_end:
            starts.append(0)
            m = start_rx.match(text)
            pos = m.end() if m is not None and m.end() > 0 else 1
        else:
            pos = 0
        search = start_rx.search
        while pos <= n:
            m = search(text, pos)
            if m is None:
                break
            s, e = m.span()
            starts.append(s)
            pos = e if e > s else s + 1

        # segments: (char start, char end, is preamble); the text before the first record
        # start is passed on line by line, so a stream without any start is not held
        bounds: list[tuple[int, int, bool]] = []
        first = starts[0] if starts else n
        a = 0
        while a < first:
            b = text.find("\n", a, first) + 1 or first
            bounds.append((a, b, True))
            a = b
        for i in range(len(starts) - 1):
            bounds.append((starts[i], starts[i + 1], False))
        if final and starts:
            bounds.append((starts[-1], n, False))

        out: list[Item] = []
        is_ascii = chunk.isascii()
        bpos = base
        for cs, ce, preamble in bounds:
            seg = text[cs:ce]
            valid = True
            if is_ascii:
                size = ce - cs
            else:
                try:
                    size = len(seg.encode("utf-8"))
                except UnicodeEncodeError:
                    valid = False
                    size = len(seg.encode("utf-8", "surrogateescape"))
            bstart, bpos = bpos, bpos + size
            if size == 0:
                continue
            out.append(self._segment(seg, valid, preamble, bstart, bpos))
        consumed = len(data) if final else bpos - base
        # with no record start yet, the next chunk continues the text before the first one
        self._preamble_end = None if starts else base + consumed
        return out, consumed

    def _segment(self, seg: str, valid: bool, preamble: bool, start: int, end: int) -> Item:
        """One record's text (or the text before the first record) → one item."""
        if end - start > self._max_bytes or not valid:
            raw = seg.encode("utf-8", "surrogateescape")
            failure = decode_line(raw, start, end, self._max_bytes)
            if isinstance(failure, Failure):
                failure.raw = failure.raw.rstrip()
                return failure
        body = seg.rstrip()
        if not body:
            return Skip("blank", start, end)
        if preamble:
            if self._ignore_unmatched:
                return Skip("unmatched", start, end)
            return Failure(
                RejectReason.NO_RULE_MATCHED, "text before the first record start", body, start, end
            )
        return self._apply(body, start, end)

    # ---- one record --------------------------------------------------------
    def _apply(self, text: str, start: int, end: int) -> Item:
        """One record's text → Record, Failure or Skip, by the first rule that matches."""
        found = self.match(text)
        if found is None:
            return self.unmatched(text, start, end)
        return self.finish(found[0], found[1], text, start, end)

    def match(self, text: str) -> tuple[CompiledRule, re.Match[str]] | None:
        """The first rule whose pattern matches the record, with its match."""
        for rule in self._rules:
            needle = rule.needle
            if needle is not None and needle not in text:
                continue  # the rule's pattern needs this text: it cannot match
            m = rule.search(text)
            if m is not None:
                return rule, m
        return None

    def unmatched(self, text: str, start: int, end: int) -> Skip | Failure:
        """The item of a record that no rule matches."""
        if self._ignore_unmatched:
            return Skip("unmatched", start, end)
        return Failure(
            RejectReason.NO_RULE_MATCHED,
            f"none of the {len(self._rules)} rules matched",
            text,
            start,
            end,
        )

    def finish(self, rule: CompiledRule, m: re.Match[str], text: str, start: int, end: int) -> Item:
        """The item of a record that ``rule`` matched (``m``); reads its timestamp, so
        it advances the midnight rollover of time-only formats."""
        if rule.skip:
            return Skip("rule_skip", start, end)
        groups = m.groupdict()
        raw_time = groups.get(rule.time_group)
        if raw_time is None:
            return Failure(
                RejectReason.MISSING_FIELD,
                f"{rule.label}: time group {rule.time_group!r} did not match",
                text,
                start,
                end,
                rule.time_group,
            )
        # a group that did not take part is None; all() is the cheap test (it is also false
        # for a group that matched "", which the exact checks below tell apart)
        complete = all(groups.values())
        composed = self._compose(rule, groups, complete, text, start, end)
        if isinstance(composed, Failure):
            return composed
        ts_ns = self.timestamp(rule, raw_time, text, start, end)
        if isinstance(ts_ns, Failure):
            return ts_ns
        return self._record(rule, groups, complete, composed, ts_ns, text, start, end)

    def record(
        self, rule: CompiledRule, m: re.Match[str], ts_ns: int, text: str, start: int, end: int
    ) -> Record | Failure:
        """What ``finish`` gives for a match whose time the caller already read with
        ``timestamp`` (so it is not read, nor the day rollover advanced, twice)."""
        groups = m.groupdict()
        complete = all(groups.values())
        composed = self._compose(rule, groups, complete, text, start, end)
        if isinstance(composed, Failure):
            return composed
        return self._record(rule, groups, complete, composed, ts_ns, text, start, end)

    def _compose(
        self,
        rule: CompiledRule,
        groups: dict[str, Any],
        complete: bool,
        text: str,
        start: int,
        end: int,
    ) -> list[tuple[str, str]] | Failure | None:
        """The rule's template fields (None without templates), or the ``missing_field``
        failure of a template whose group did not take part in the match."""
        if not rule.templates:
            return None
        if not complete:
            for name, _, used in rule.templates:
                for group in used:
                    if groups[group] is None:
                        return Failure(
                            RejectReason.MISSING_FIELD,
                            f"{rule.label}: {name} needs group {group!r}, which did not match",
                            text,
                            start,
                            end,
                            name,
                        )
        return [(name, template.format_map(groups)) for name, template, _ in rule.templates]

    def timestamp(
        self, rule: CompiledRule, raw_time: str, text: str, start: int, end: int
    ) -> int | Failure:
        """UTC ns of a record's time group, or its ``invalid_timestamp`` failure. A
        time-only time advances the stream's midnight rollover: call once per record."""
        reader = rule.time_reader
        assert reader is not None  # every rule that is not a skip rule has one
        # the memoised common case of ``reader.read``, inlined: this runs for every record
        whole: int | None = None
        if reader.sep is not None:
            key, found, digits = raw_time.rpartition(reader.sep)
            if found:
                whole = reader.cache.get(key)
        if whole is not None and 0 < len(digits) <= 9 and digits.isascii() and digits.isdigit():
            ts_ns = whole + int(digits) * _FRACTION_SCALE[len(digits)]
        else:
            try:
                ts_ns = reader.read(raw_time)
            except (ValueError, OverflowError) as exc:
                return Failure(
                    RejectReason.INVALID_TIMESTAMP, str(exc), text, start, end, rule.time_group
                )
        if reader.time_only:
            last = self._last_tod
            if last is not None and ts_ns < last - _HALF_DAY_NS:
                self._day_shift += NS_PER_DAY
            self._last_tod = ts_ns
            ts_ns += self._day_ns + self._day_shift
            zone = self._zone
            if zone is not None and not reader.has_offset:
                seconds, frac = divmod(ts_ns, NS_PER_S)
                try:
                    ts_ns = zone.utc_seconds(seconds) * NS_PER_S + frac
                except (ValueError, OverflowError) as exc:
                    return Failure(
                        RejectReason.INVALID_TIMESTAMP,
                        f"cannot convert {raw_time!r} from {zone.name}: {exc}",
                        text,
                        start,
                        end,
                        rule.time_group,
                    )
        return ts_ns

    def _record(
        self,
        rule: CompiledRule,
        groups: dict[str, Any],
        complete: bool,
        composed: list[tuple[str, str]] | None,
        ts_ns: int,
        text: str,
        start: int,
        end: int,
    ) -> Record:
        """The record's fields from its groups: value maps, templates, defaults, kind."""
        kind = rule.kind
        if kind is None and rule.kind_from is not None:
            raw_kind = groups[rule.kind_from]
            if raw_kind is not None:
                kind = rule.kind_map.get(raw_kind, raw_kind)
        # from here on ``groups`` becomes the record's fields
        fields: dict[str, Any] = groups
        if not complete:
            fields = {k: v for k, v in groups.items() if v is not None}
        for name, vmap in rule.values:
            value = fields.get(name)
            if value in vmap:  # never None: the keys are strings
                mapped = vmap[value]
                if mapped is None:
                    del fields[name]
                else:
                    fields[name] = mapped
        if composed is not None:
            for name, value in composed:
                fields[name] = value
        if rule.defaults:
            for name, default in rule.defaults.items():
                if name not in fields:
                    fields[name] = default
        fields.pop(rule.time_group, None)
        if kind is not None:
            fields["kind"] = kind
        fields["ts_ns"] = ts_ns
        return Record(fields, text, start, end)
