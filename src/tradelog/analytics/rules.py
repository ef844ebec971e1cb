"""Rule alerts on pair metrics, from config (``[[pairs]]``).

A rule's ``expr`` is one comparison, read by a tiny parser (no ``eval``)::

    zscore > 2        abs(zscore) >= 2.5        correlation < 0.5        adf_pvalue <= 0.05

Fields: ``zscore``, ``spread``, ``correlation`` (of the latest bar), ``beta``,
``adf_pvalue`` (of the sample); operators ``>``, ``>=``, ``<``, ``<=``; optional
``abs(…)`` around the field. Rules are evaluated on the latest point; a value that could
not be computed never triggers (it is reported as null with the reason).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from tradelog.analytics.pairs import Timeframe
from tradelog.model.events import Severity

FIELDS: Final = ("zscore", "spread", "correlation", "beta", "adf_pvalue")
OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
MAX_WINDOW: Final = 10_000
_NUMBER: Final = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_EXPR_RE: Final = re.compile(
    rf"\s*(?:(?P<abs>abs)\s*\(\s*(?P<afield>[A-Za-z_]\w*)\s*\)|(?P<field>[A-Za-z_]\w*))"
    rf"\s*(?P<op>>=|<=|>|<)\s*(?P<num>{_NUMBER})\s*",
    re.ASCII,
)
_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.:-]+", re.ASCII)


@dataclass(frozen=True, slots=True)
class Condition:
    """``[abs(]field[)] op threshold``."""

    field: str
    op: str
    threshold: float
    absolute: bool = False

    def describe(self) -> str:
        lhs = f"abs({self.field})" if self.absolute else self.field
        return f"{lhs} {self.op} {self.threshold!r}"

    def value_of(self, metrics: Mapping[str, float | None]) -> float | None:
        """The compared value (``abs`` applied), None if the metric is missing."""
        v = metrics.get(self.field)
        if v is None or math.isnan(v):
            return None
        return abs(v) if self.absolute else v

    def holds(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.threshold)


def parse_expr(expr: str) -> Condition:
    """Parses one comparison; raises ValueError naming the problem.

    >>> parse_expr("abs(zscore) >= 2.5")
    Condition(field='zscore', op='>=', threshold=2.5, absolute=True)
    >>> parse_expr("correlation<0.5").describe()
    'correlation < 0.5'
    """
    m = _EXPR_RE.fullmatch(expr)
    if m is None:
        raise ValueError(
            f"cannot read {expr!r}: expected `field op number` or `abs(field) op number` "
            f"with field one of {', '.join(FIELDS)} and op one of > >= < <="
        )
    name = m.group("afield") or m.group("field")
    if name == "abs" and m.group("abs") is None:
        raise ValueError(f"cannot read {expr!r}: abs needs parentheses, as in abs(zscore)")
    if name not in FIELDS:
        raise ValueError(f"unknown field {name!r} in {expr!r}; fields: {', '.join(FIELDS)}")
    threshold = float(m.group("num"))
    if not math.isfinite(threshold):
        raise ValueError(f"threshold in {expr!r} must be a finite number")
    return Condition(field=name, op=m.group("op"), threshold=threshold,
                     absolute=m.group("abs") is not None)  # fmt: skip


class PairRule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """One rule (``[[pairs]]`` in config) on the pair ``a``/``b`` at ``timeframe`` bars with a
    rolling ``window``; raises ValueError naming the field when something is wrong."""

    name: str
    a: str
    b: str
    expr: str
    timeframe: Timeframe = "1m"
    window: int = 20
    level: Severity = Severity.MEDIUM

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.name):
            raise ValueError(f"name: must be letters, digits, _ . : - ; was {self.name!r}")
        for key, sym in (("a", self.a), ("b", self.b)):
            if not sym.strip():
                raise ValueError(f"{key}: must name a symbol; was {sym!r}")
        if self.a == self.b:
            raise ValueError(f"b: must differ from a (both are {self.a!r})")
        if not 2 <= self.window <= MAX_WINDOW:
            raise ValueError(f"window: must be between 2 and {MAX_WINDOW} bars; was {self.window}")
        try:
            parse_expr(self.expr)
        except ValueError as exc:
            raise ValueError(f"expr: {exc}") from None

    @property
    def condition(self) -> Condition:
        return parse_expr(self.expr)


def check_rule_names(rules: Iterable[PairRule]) -> None:
    """Rule names are unique (they identify alerts); raises ValueError otherwise."""
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in seen:
            raise ValueError(f"[{i}].name: duplicate rule name {rule.name!r}")
        seen.add(rule.name)


def evaluate(rule: PairRule, metrics: Mapping[str, float | None]) -> dict[str, Any]:
    """The rule against the latest metrics: triggered, value, threshold (and why the
    value is missing when it is)."""
    cond = rule.condition
    value = cond.value_of(metrics)
    out: dict[str, Any] = {
        "name": rule.name,
        "a": rule.a,
        "b": rule.b,
        "timeframe": rule.timeframe,
        "window_bars": rule.window,
        "expr": cond.describe(),
        "level": str(rule.level),
        "field": cond.field,
        "absolute": cond.absolute,
        "operator": cond.op,
        "threshold": cond.threshold,
        "value": value,
        "triggered": value is not None and cond.holds(value),
        "reason": None if value is not None else f"{cond.field} is not available",
    }
    return out


def rules_for_pair(rules: Iterable[PairRule], a: str, b: str) -> list[PairRule]:
    """The rules on exactly this pair (order matters: the spread is log a − β log b)."""
    return [r for r in rules if r.a == a and r.b == b]
