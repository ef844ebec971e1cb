"""clean, fast path for regex text logs: parse and clean one line in one step.

``FastRegex`` stands in for ``RegexParser`` + ``Cleaner`` on a stream of one record per
line (``StreamDecoder`` picks it; see its class docstring for what it covers). It gives
exactly the events and rejects of the general path: whatever it cannot decide by its
plan goes through that path (``tests/unit/stages/test_clean_regex_fast.py`` compares both
on generated streams).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

from tradelog.model.events import Event, EventKind, Reject
from tradelog.model.ids import derived_event_id
from tradelog.parsing.base import Failure, Item, Skip
from tradelog.parsing.regex_rules import CompiledRule, RegexParser
from tradelog.stages.clean import (
    _ALLOWED,
    _KINDS,
    REQUIRED,
    TS_MAX,
    TS_MIN,
    Cleaner,
    CleanSettings,
    _Invalid,
)

_FRACTION_SCALE: Final = tuple(10 ** (9 - n) for n in range(10))
_MEMO_LIMIT: Final = 4096


def _kind_of_value(raw: Any) -> EventKind | None:
    """The kind a record's ``kind`` value names, read as ``Cleaner`` reads it."""
    return (_KINDS.get(raw) if type(raw) is str else None) or _KINDS.get(str(raw).strip().lower())


# ---------------------------------------------------------------------------
# regex text logs: parse + clean in one step


class _RulePlan:
    """How the groups of one regex rule become an event's fields, decided once from the
    rule and the source's cleaner instead of per record.

    Values are read from the match's ``groups()`` tuple (template fields appended after
    the groups). The plan mirrors what ``RegexParser.finish`` puts in a record and what
    ``Cleaner`` does with each field: a typed field's reader (``convs``), the event id,
    ``attrs`` (in record order), constants from the rule's static and path fields (read
    once here), and per kind the typed fields that move to ``attrs``.
    """

    __slots__ = (
        "all_named",
        "attr_slots",
        "call_slots",
        "const_attrs",
        "const_eid",
        "const_kw",
        "eid_index",
        "fixed_kind",
        "kind_index",
        "kind_map",
        "moved",
        "names",
        "num_slots",
        "remap",
        "str_slots",
        "templates",
        "time_cache",
        "time_index",
        "time_sep",
    )

    def __init__(self) -> None:
        self.all_named = True
        self.names: tuple[str, ...] = ()
        self.time_index = 0
        self.fixed_kind: EventKind | None = None
        self.kind_index = -1
        self.kind_map: dict[str, EventKind] = {}
        self.templates: tuple[tuple[str, tuple[int, ...]], ...] = ()
        self.remap: tuple[tuple[int, dict[str, str | None] | None, bool], ...] = ()
        self.str_slots: tuple[tuple[int, str], ...] = ()
        self.num_slots: tuple[tuple[int, str, int], ...] = ()
        """(group, field, sign rule): 2 must be > 0, 1 must be >= 0, 0 any finite number."""
        self.call_slots: tuple[tuple[int, str, Callable[[Any], Any], dict[str, Any]], ...] = ()
        self.time_sep: str | None = None
        self.time_cache: dict[str, int] = {}
        self.eid_index = -1
        self.attr_slots: tuple[tuple[int, str], ...] = ()
        self.const_kw: dict[str, Any] = {}
        self.const_attrs: tuple[tuple[str, Any], ...] = ()
        self.const_eid: str | None = None
        self.moved: dict[EventKind, tuple[str, ...]] = {}


def _plan_rule(rule: CompiledRule, cleaner: Cleaner) -> _RulePlan | None:
    """The plan of one rule, or None when its records need the general path (a skip
    rule, a field the cleaner renames, a ``ts`` field, a constant the cleaner rejects)."""
    if rule.skip:
        return None
    plan = _RulePlan()
    names = rule.names
    plan.names = names
    plan.all_named = rule.group_count == len(names)
    index = {name: i for i, name in enumerate(names)}
    time_group = rule.time_group
    plan.time_index = index[time_group]
    reader = rule.time_reader
    assert reader is not None  # a rule that is not a skip rule has one
    if not reader.time_only:  # a time-only time advances the rollover: parser.timestamp
        plan.time_sep = reader.sep
        plan.time_cache = reader.cache
    templates = {name: (template, used) for name, template, used in rule.templates}
    if time_group in templates:
        return None
    plan.templates = tuple(
        (template, tuple(index[group] for group in used)) for template, used in templates.values()
    )
    template_index = {name: len(names) + j for j, name in enumerate(templates)}

    if cleaner._fixed_kind is not None:
        plan.fixed_kind = cleaner._fixed_kind
    elif rule.kind is not None:
        plan.fixed_kind = _kind_of_value(rule.kind)
        if plan.fixed_kind is None:
            return None
    else:
        assert rule.kind_from is not None  # a rule that is not a skip rule has one or the other
        plan.kind_index = index[rule.kind_from]
        plan.kind_map = dict(_KINDS)  # an unmapped value is the kind as it is
        for raw, mapped in rule.kind_map.items():
            kind = _kind_of_value(mapped)
            if kind is None:
                return None
            plan.kind_map[raw] = kind

    # the record's keys in the order the parser writes them (for a complete match):
    # groups, new template fields, then static/path fields; the time group is popped and
    # ``kind`` / ``ts_ns`` are overwritten by the parser, so they carry no field here
    keys: list[tuple[str, int]] = [
        (name, template_index.get(name, i)) for i, name in enumerate(names) if name != time_group
    ]
    keys += [(name, j) for name, j in template_index.items() if name not in index]
    consts = [
        (name, value)
        for name, value in rule.defaults.items()
        if name not in index and name not in templates
    ]
    renames = cleaner._renames
    if renames.get("kind", "kind") != "kind" or renames.get("ts_ns", "ts_ns") != "ts_ns":
        return None  # every record has both; a rename changes what the cleaner does with them
    convs = cleaner._conv
    slots: dict[str, list[tuple[int, str]]] = {
        read_rule: [] for read_rule in ("string", "positive", "price", "non_negative", "any")
    }
    call_slots: list[tuple[int, str, Callable[[Any], Any], dict[str, Any]]] = []
    attr_slots: list[tuple[int, str]] = []
    conv_order: list[str] = []
    for key, i in keys:
        if key in ("kind", "ts_ns"):
            continue
        if renames.get(key, key) != key or key == "ts":
            return None
        if key == "event_id":
            plan.eid_index = i
        elif key in convs:
            read_rule = cleaner.read_rules.get(key)
            if read_rule is None:
                call_slots.append((i, key, convs[key], {}))
            else:
                slots[read_rule].append((i, key))
            conv_order.append(key)
        else:
            attr_slots.append((i, key))
    const_attrs: list[tuple[str, Any]] = []
    for key, value in consts:
        if key in ("kind", "ts_ns") or value is None or value == "":
            continue
        if renames.get(key, key) != key or key == "ts":
            return None
        if key == "event_id":
            plan.const_eid = value if isinstance(value, str) else str(value)
        elif key in convs:
            try:
                plan.const_kw[key] = convs[key](value)
            except _Invalid:
                return None
            conv_order.append(key)
        else:
            const_attrs.append((key, value))
    plan.str_slots = tuple(slots["string"])
    plan.num_slots = tuple(
        (i, name, sign)
        for sign, rules in ((2, ("positive", "price")), (1, ("non_negative",)), (0, ("any",)))
        for read_rule in rules
        for i, name in slots[read_rule]
    )
    plan.call_slots = tuple(call_slots)
    plan.attr_slots = tuple(attr_slots)
    plan.const_attrs = tuple(const_attrs)

    vmaps = dict(rule.values)
    remap: list[tuple[int, dict[str, str | None] | None, bool]] = []
    for i, name in enumerate(names):
        if name in (time_group, "kind", "ts_ns") or name in templates:
            continue  # popped or overwritten: a value map or default never shows
        vmap = vmaps.get(name)
        has_default = name in rule.defaults
        if vmap is not None or has_default:
            remap.append((i, vmap, has_default))
    plan.remap = tuple(remap)
    plan.moved = {
        kind: tuple(name for name in conv_order if name not in allowed)
        for kind, allowed in _ALLOWED.items()
    }
    return plan


class FastRegex:
    """Parse + clean of one regex text stream (one record per line) in one step.

    ``RegexParser.finish`` builds a dict per record and ``Cleaner`` walks it, looking up
    renames, value maps and readers per field. Here each rule's ``_RulePlan`` says once
    which group feeds which field through which reader, so a record costs its match, its
    ``groups()`` and the readers. Whatever a plan does not cover (an optional group that
    did not match, a value map that removes a field, a kind that needs the cleaner's
    lenient reading) and every value a reader refuses goes through the general path
    (``finish`` + ``Cleaner.clean``), which gives the same event or reject: the fast path
    never decides a reject itself, and it reads a record's time (which advances the
    midnight rollover of time-only formats) exactly once either way.
    """

    @staticmethod
    def applies(parser: RegexParser, settings: CleanSettings) -> bool:
        """Line records and no clean-level value maps or static fields (a regex rule
        has its own; a source that also sets the cleaner's goes the general way)."""
        return parser.line_mode and not (settings.values or settings.static)

    def __init__(self, parser: RegexParser, cleaner: Cleaner) -> None:
        if not self.applies(parser, cleaner.settings):
            raise ValueError("the fast regex path needs line records and no clean-level maps")
        self.parser = parser
        self.cleaner = cleaner
        self._rules = parser.rules
        self._plans = tuple(_plan_rule(rule, cleaner) for rule in parser.rules)
        self._source = cleaner.source
        # where the chunk being decoded comes from (set by parse_clean, read by _line)
        self._src_ref = ""
        self._stream = ""
        self._ts_ingest = 0

    def parse_clean(
        self, data: bytes, base: int, final: bool, src_ref: str, stream: str, ts_ingest: int
    ) -> tuple[list[Event], list[Reject], int, int]:
        """(events, rejects, ignored, bytes consumed) for the complete lines of ``data``."""
        self._src_ref, self._stream, self._ts_ingest = src_ref, stream, ts_ingest
        out, consumed = self.parser.parse_lines(data, base, final, self._line)
        events: list[Event] = []
        rejects: list[Reject] = []
        ignored = 0
        clean = self.cleaner.clean
        for x in out:
            if type(x) is Event:
                events.append(x)
                continue
            if isinstance(x, Failure | Skip):
                x = clean(x, src_ref, stream, ts_ingest)
            if x is None:
                ignored += 1
            elif isinstance(x, Reject):
                rejects.append(x)
            else:
                assert isinstance(x, Event)
                events.append(x)
        return events, rejects, ignored, consumed

    def _general(self, item: Item) -> Event | Reject | None:
        return self.cleaner.clean(item, self._src_ref, self._stream, self._ts_ingest)

    def _line(self, text: str, start: int, end: int) -> Event | Reject | None:
        """One non-blank line → its event, reject, or None when ignored."""
        found = self.parser.match(text)
        if found is None:
            return self._general(self.parser.unmatched(text, start, end))
        rule, m = found
        plan = self._plans[rule.index]
        if plan is None:
            return self._general(self.parser.finish(rule, m, text, start, end))

        vals: tuple[Any, ...] = m.groups() if plan.all_named else m.group(*plan.names, 0)[:-1]
        raw_time = vals[plan.time_index]
        if raw_time is None:
            return self._general(self.parser.finish(rule, m, text, start, end))
        if plan.templates:
            groups = m.groupdict()
            composed: list[str] = []
            for template, used in plan.templates:
                for i in used:
                    if vals[i] is None:
                        return self._general(self.parser.finish(rule, m, text, start, end))
                composed.append(template.format_map(groups))
            vals += tuple(composed)

        kind = plan.fixed_kind
        if kind is None:
            raw_kind = vals[plan.kind_index]
            if raw_kind is None:
                return self._general(self.parser.finish(rule, m, text, start, end))
            kind = plan.kind_map.get(raw_kind) or _kind_of_value(raw_kind)
            if kind is None:
                return self._general(self.parser.finish(rule, m, text, start, end))

        if plan.remap:
            mapped = list(vals)
            for i, vmap, has_default in plan.remap:
                value = mapped[i]
                if vmap is not None and value in vmap:
                    value = mapped[i] = vmap[value]
                if value is None and has_default:  # the default goes last: general path
                    return self._general(self.parser.finish(rule, m, text, start, end))
            vals = tuple(mapped)

        # the readers of Cleaner for string values, inlined (see _number_reader and
        # _string_reader); any doubt raises ValueError and the general path says why.
        # None (no match, or removed by a value map) and "" carry no field.
        kw: dict[str, Any] = {}
        isfinite = math.isfinite
        try:
            for i, name in plan.str_slots:
                value = vals[i]
                if value:
                    value = value.strip()
                    if not value:
                        raise ValueError(name)
                    kw[name] = value
            for i, name, sign in plan.num_slots:
                value = vals[i]
                if value:
                    if not value.isascii() or "_" in value:
                        raise ValueError(name)
                    number = float(value)
                    if not isfinite(number) or number < 0 < sign or (number == 0 and sign == 2):
                        raise ValueError(name)
                    kw[name] = number
            for i, name, conv, memo in plan.call_slots:
                value = vals[i]
                if value:  # side, liquidity, symbol, venue: few values, pure readers
                    read = memo.get(value)
                    if read is None:
                        read = conv(value)
                        if len(memo) >= _MEMO_LIMIT:
                            memo.clear()
                        memo[value] = read
                    kw[name] = read
        except (ValueError, _Invalid):
            return self._general(self.parser.finish(rule, m, text, start, end))
        if plan.const_kw:
            kw.update(plan.const_kw)

        # the memoised whole second of RegexParser.timestamp, for a dated format
        cached: int | None = None
        sep = plan.time_sep
        if sep is not None:
            key, found, digits = raw_time.rpartition(sep)
            if found:
                whole = plan.time_cache.get(key)
                if (
                    whole is not None
                    and 0 < len(digits) <= 9
                    and digits.isascii()
                    and digits.isdigit()
                ):
                    cached = whole + int(digits) * _FRACTION_SCALE[len(digits)]
        if cached is None:
            stamp = self.parser.timestamp(rule, raw_time, text, start, end)
            if isinstance(stamp, Failure):
                return self._general(stamp)
            ts_ns = stamp
        else:
            ts_ns = cached
        # from here on the time was read: a doubt hands the record itself to the cleaner
        if not TS_MIN <= ts_ns <= TS_MAX:
            return self._general(self.parser.record(rule, m, ts_ns, text, start, end))
        for name in REQUIRED[kind]:
            if name not in kw:
                return self._general(self.parser.record(rule, m, ts_ns, text, start, end))
        if kind is EventKind.QUOTE:
            bid, ask = kw.get("bid"), kw.get("ask")
            if (bid is None and ask is None) or (bid is not None and ask is not None and bid > ask):
                return self._general(self.parser.record(rule, m, ts_ns, text, start, end))
        elif kind is EventKind.ORDER_NEW and "price" not in kw:
            return self._general(self.parser.record(rule, m, ts_ns, text, start, end))

        attrs: dict[str, Any] | None = None
        if plan.attr_slots:
            for i, key in plan.attr_slots:
                value = vals[i]
                if value:
                    if attrs is None:
                        attrs = {}
                    attrs[key] = value
        if plan.const_attrs:
            if attrs is None:
                attrs = {}
            attrs.update(plan.const_attrs)
        moved = plan.moved[kind]
        if moved:
            for name in moved:
                if name in kw:
                    if attrs is None:
                        attrs = {}
                    attrs[name] = kw.pop(name)
        event_id: str | None = plan.const_eid
        if plan.eid_index >= 0:
            value = vals[plan.eid_index]
            if value:
                event_id = value
        if event_id is None:
            event_id = derived_event_id(self._source, self._stream, start, text)
        return Event(
            event_id=event_id,
            kind=kind,
            ts=ts_ns,
            ts_ingest=self._ts_ingest,
            source=self._source,
            src_ref=self._src_ref,
            src_offset=start,
            raw=text,
            attrs=attrs,
            **kw,
        )
