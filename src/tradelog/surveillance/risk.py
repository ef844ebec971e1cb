"""Risk triggers (published, never acted on): position limit per symbol and strategy,
daily loss limit per strategy, reject-rate spike, latency breach, and user rules.

Positions and PnL come from the enriched fills (``pos_after``, ``avg_cost_after``,
``realized_after`` − ``fees_after``, average cost per strategy × account × symbol);
unrealized PnL marks each position at the symbol's latest two-sided mid (else the last
fill price). Daily PnL = total PnL (realized net of fees + unrealized) now − total PnL at
the key's first event of the UTC day. Every trigger becomes a candidate of type
``risk_*`` carrying ``strategy_id`` (the publisher sends it to ``tradelog.risk.<strategy>``).
Each trigger fires at most once per key and second; a breach that lasts updates its open
alert.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Final, Literal

import msgspec

from tradelog.model.alerts import AlertLevel
from tradelog.model.events import Event, EventKind
from tradelog.surveillance.base import NS_PER_S, Candidate, add_id

NS_PER_DAY: Final = 86_400 * NS_PER_S
Metric = Literal["position", "daily_pnl", "order_qty", "order_notional", "latency_ms",
                 "reject_rate"]  # fmt: skip
Op = Literal[">", ">=", "<", "<="]
_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}  # fmt: skip


class PositionLimit(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """|position| of a strategy in a symbol (summed over accounts) above ``max_abs``;
    a null strategy or symbol matches any."""

    max_abs: float
    strategy: str | None = None
    symbol: str | None = None
    level: AlertLevel = "high"


class RiskRule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A user rule: ``metric op threshold`` (e.g. ``order_notional > 1e6``)."""

    name: str
    metric: Metric
    op: Op = ">"
    threshold: float
    strategy: str | None = None
    symbol: str | None = None
    level: AlertLevel = "medium"

    def __post_init__(self) -> None:
        if not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"risk rule name must be letters, digits, _ or -; was {self.name!r}")


class RiskSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    position_limits: list[PositionLimit] = []
    daily_loss_limits: dict[str, float] = {}
    """strategy → largest allowed daily loss (a positive amount); key ``*`` for any."""
    reject_rate: float | None = 0.5
    reject_window_s: float = 60.0
    reject_min_orders: int = 20
    latency_ms: float | None = 1000.0
    latency_window_s: float = 60.0
    latency_min_breaches: int = 5
    rules: list[RiskRule] = []


class _PnlKey(msgspec.Struct, array_like=True, gc=False):
    strategy: str
    symbol: str
    day: int = -1
    base: float = 0.0
    realized: float = 0.0
    pos: float = 0.0
    avg_cost: float = 0.0
    last_px: float = 0.0


class _Rate(msgspec.Struct, array_like=True, gc=False):
    second: int
    total: int = 0
    hits: int = 0


class RiskState(msgspec.Struct, kw_only=True):
    positions: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)
    """``strategy|symbol`` → account → position."""
    pnl: dict[str, _PnlKey] = msgspec.field(default_factory=dict)
    marks: dict[str, float] = msgspec.field(default_factory=dict)
    rejects: dict[str, list[_Rate]] = msgspec.field(default_factory=dict)
    reject_ids: dict[str, list[str]] = msgspec.field(default_factory=dict)
    latency: dict[str, list[_Rate]] = msgspec.field(default_factory=dict)
    latency_ids: dict[str, list[str]] = msgspec.field(default_factory=dict)
    emitted: dict[str, int] = msgspec.field(default_factory=dict)


def _total(k: _PnlKey, marks: dict[str, float]) -> float:
    if not k.pos:
        return k.realized
    mark = marks.get(k.symbol, k.last_px)
    return k.realized + k.pos * (mark - k.avg_cost)


RiskHandler = Callable[[Event, RiskState], list[Candidate] | None]


class Risk:
    def __init__(self, settings: RiskSettings | None = None) -> None:
        self.s = settings or RiskSettings()
        self.params: dict[str, Any] = msgspec.structs.asdict(self.s)
        self._reject_s = max(1, int(self.s.reject_window_s))
        self._latency_s = max(1, int(self.s.latency_window_s))
        self._metrics = frozenset(r.metric for r in self.s.rules)
        """The metrics some user rule reads (the others are not evaluated)."""
        self._daily_on = bool(self.s.daily_loss_limits) or "daily_pnl" in self._metrics
        self._latency_on = self.s.latency_ms is not None or "latency_ms" in self._metrics

    def handlers(self) -> dict[EventKind, RiskHandler]:
        """Event kind → handler: every kind but public trades (any may carry a latency)."""
        out: dict[EventKind, RiskHandler] = {}
        if self._latency_on:
            out = dict.fromkeys(EventKind, self.on_latency)
        out[EventKind.QUOTE] = self.on_quote
        out[EventKind.FILL] = self.on_fill
        out[EventKind.ORDER_NEW] = self.on_new
        out[EventKind.ORDER_REJECTED] = self.on_reject
        out.pop(EventKind.MARKET_TRADE, None)
        return out

    def on_quote(self, ev: Event, st: RiskState) -> None:
        if ev.symbol is not None and ev.bid is not None and ev.ask is not None:
            st.marks[ev.symbol] = (ev.bid + ev.ask) / 2.0

    def on_fill(self, ev: Event, st: RiskState) -> list[Candidate] | None:
        out: list[Candidate] = []
        strategy = ev.strategy_id or "unknown"
        self._fill(ev, st, strategy, out)
        latency = ev.latency_ms
        if latency is not None and latency >= 0 and self._latency_on:
            self._latency(ev, st, strategy, latency, out)
        return out or None

    def on_new(self, ev: Event, st: RiskState) -> list[Candidate] | None:
        out: list[Candidate] = []
        strategy = ev.strategy_id or "unknown"
        self._rate(ev, st, strategy, hit=False, out=out)
        metrics = self._metrics
        if metrics:
            if "order_qty" in metrics:
                self._rules(ev, st, strategy, "order_qty", ev.qty, out)
            if "order_notional" in metrics and ev.qty is not None and ev.price is not None:
                self._rules(ev, st, strategy, "order_notional", ev.qty * ev.price, out)
        latency = ev.latency_ms
        if latency is not None and latency >= 0 and self._latency_on:
            self._latency(ev, st, strategy, latency, out)
        return out or None

    def on_reject(self, ev: Event, st: RiskState) -> list[Candidate] | None:
        out: list[Candidate] = []
        strategy = ev.strategy_id or "unknown"
        self._rate(ev, st, strategy, hit=True, out=out)
        latency = ev.latency_ms
        if latency is not None and latency >= 0 and self._latency_on:
            self._latency(ev, st, strategy, latency, out)
        return out or None

    def on_latency(self, ev: Event, st: RiskState) -> list[Candidate] | None:
        """Any other kind: only its latency is measured."""
        latency = ev.latency_ms
        if latency is None or latency < 0:
            return None
        out: list[Candidate] = []
        self._latency(ev, st, ev.strategy_id or "unknown", latency, out)
        return out or None

    # ---- positions and PnL ---------------------------------------------------
    def _fill(self, ev: Event, st: RiskState, strategy: str, out: list[Candidate]) -> None:
        symbol = ev.symbol
        pos_after = ev.pos_after
        if symbol is None or pos_after is None:
            return
        account = ev.account_id or ""
        pkey = f"{strategy}|{symbol}"
        book = st.positions.get(pkey)
        if book is None:
            book = st.positions[pkey] = {}
        book[account] = pos_after
        if self.s.position_limits or "position" in self._metrics:
            position = sum(book.values())
            for lim in self.s.position_limits:
                if (
                    (lim.strategy is None or lim.strategy == strategy)
                    and (lim.symbol is None or lim.symbol == symbol)
                    and abs(position) > lim.max_abs
                ):
                    self._emit(ev, st, out, "risk_position_limit", strategy, symbol, lim.level,
                               abs(position) / lim.max_abs,
                               {"position": position, "by_account": dict(book),
                                "limit": lim.max_abs})  # fmt: skip
            self._rules(ev, st, strategy, "position", abs(position), out)
        name = f"{strategy}|{account}|{symbol}"
        key = st.pnl.get(name)
        if key is None:
            key = st.pnl[name] = _PnlKey(strategy, symbol)
        day = ev.ts // NS_PER_DAY
        if key.day != day:
            key.base = _total(key, st.marks)
            key.day = day
        key.realized = (ev.realized_after or 0.0) - (ev.fees_after or 0.0)
        key.pos = pos_after
        key.avg_cost = ev.avg_cost_after or 0.0
        key.last_px = ev.last_px or key.last_px
        if self._daily_on:
            self._daily(ev, st, strategy, day, out)

    def _daily(
        self, ev: Event, st: RiskState, strategy: str, day: int, out: list[Candidate]
    ) -> None:
        limits = self.s.daily_loss_limits
        limit = limits.get(strategy, limits.get("*"))
        has_rule = any(r.metric == "daily_pnl" for r in self.s.rules)
        if limit is None and not has_rule:
            return
        pnl = 0.0
        parts: dict[str, float] = {}
        for name, k in st.pnl.items():
            if k.strategy == strategy and k.day == day:
                v = _total(k, st.marks) - k.base
                pnl += v
                parts[name] = v
        if limit is not None and pnl <= -limit:
            self._emit(ev, st, out, "risk_daily_loss", strategy, None, "critical",
                       -pnl / limit if limit > 0 else 1.0,
                       {"daily_pnl": pnl, "limit": limit, "day_start_ns": day * NS_PER_DAY,
                        "by_key": parts})  # fmt: skip
        if "daily_pnl" in self._metrics:
            self._rules(ev, st, strategy, "daily_pnl", pnl, out)

    # ---- rates -----------------------------------------------------------------
    @staticmethod
    def _bucket(buckets: list[_Rate], second: int, keep: int) -> _Rate:
        if buckets and buckets[-1].second >= second:
            return buckets[-1]
        b = _Rate(second)
        buckets.append(b)
        while buckets and buckets[0].second <= second - keep:
            buckets.pop(0)
        return b

    def _rate(
        self, ev: Event, st: RiskState, strategy: str, hit: bool, out: list[Candidate]
    ) -> None:
        s = self.s
        buckets = st.rejects.get(strategy)
        if buckets is None:
            buckets = st.rejects[strategy] = []
        second = ev.ts // NS_PER_S
        if buckets and buckets[-1].second >= second:
            b = buckets[-1]
        else:
            b = self._bucket(buckets, second, self._reject_s)
        if not hit:
            b.total += 1
            return
        b.hits += 1
        add_id(st.reject_ids.setdefault(strategy, []), ev.event_id)
        orders = sum(x.total for x in buckets)
        rejects = sum(x.hits for x in buckets)
        rate = rejects / orders if orders else None
        if "reject_rate" in self._metrics:
            self._rules(ev, st, strategy, "reject_rate", rate, out)
        if s.reject_rate is None or rate is None or orders < s.reject_min_orders:
            return
        if rate >= s.reject_rate:
            self._emit(ev, st, out, "risk_reject_rate", strategy, None, "high",
                       rate / s.reject_rate,
                       {"reject_rate": rate, "orders": orders, "rejects": rejects,
                        "threshold": s.reject_rate, "window_s": s.reject_window_s,
                        "event_ids": list(st.reject_ids[strategy])})  # fmt: skip
            st.reject_ids[strategy] = []

    def _latency(
        self, ev: Event, st: RiskState, strategy: str, latency: float, out: list[Candidate]
    ) -> None:
        """A measured latency (≥ 0): the breach window, then the ``latency_ms`` rules."""
        s = self.s
        if s.latency_ms is not None:
            buckets = st.latency.get(strategy)
            if buckets is None:
                buckets = st.latency[strategy] = []
            second = ev.ts // NS_PER_S
            if buckets and buckets[-1].second >= second:
                b = buckets[-1]
            else:
                b = self._bucket(buckets, second, self._latency_s)
            b.total += 1
            if latency > s.latency_ms:
                self._breach(ev, st, strategy, buckets, b, out)
        if "latency_ms" in self._metrics:
            self._rules(ev, st, strategy, "latency_ms", latency, out)

    def _breach(
        self,
        ev: Event,
        st: RiskState,
        strategy: str,
        buckets: list[_Rate],
        b: _Rate,
        out: list[Candidate],
    ) -> None:
        s = self.s
        assert s.latency_ms is not None
        b.hits += 1
        add_id(st.latency_ids.setdefault(strategy, []), ev.event_id)
        breaches = sum(x.hits for x in buckets)
        if breaches >= s.latency_min_breaches:
            total = sum(x.total for x in buckets)
            self._emit(ev, st, out, "risk_latency", strategy, None, "high",
                       breaches / s.latency_min_breaches,
                       {"breaches": breaches, "measured": total, "threshold_ms": s.latency_ms,
                        "latest_ms": ev.latency_ms, "window_s": s.latency_window_s,
                        "event_ids": list(st.latency_ids[strategy])})  # fmt: skip
            st.latency_ids[strategy] = []

    # ---- user rules and emission -----------------------------------------------
    def _rules(
        self,
        ev: Event,
        st: RiskState,
        strategy: str,
        metric: str,
        value: float | None,
        out: list[Candidate],
    ) -> None:
        if value is None:
            return
        for rule in self.s.rules:
            if rule.metric != metric:
                continue
            if rule.strategy is not None and rule.strategy != strategy:
                continue
            if rule.symbol is not None and rule.symbol != ev.symbol:
                continue
            if _OPS[rule.op](value, rule.threshold):
                self._emit(ev, st, out, f"risk_rule_{rule.name}", strategy, ev.symbol,
                           rule.level, None,
                           {"rule": rule.name, "metric": metric, "op": rule.op,
                            "value": value, "threshold": rule.threshold})  # fmt: skip

    def _emit(
        self,
        ev: Event,
        st: RiskState,
        out: list[Candidate],
        type_: str,
        strategy: str,
        symbol: str | None,
        level: AlertLevel,
        ratio: float | None,
        evidence: dict[str, Any],
    ) -> None:
        key = f"{type_}|{strategy}|{symbol or ''}"
        second = ev.ts // NS_PER_S
        if st.emitted.get(key) == second:
            return
        st.emitted[key] = second
        ids = evidence.pop("event_ids", None) or [ev.event_id]
        score = 0.8 if ratio is None else round(min(1.0, 0.6 + 0.4 * min(ratio - 1.0, 1.0)), 4)
        out.append(
            Candidate(
                type=type_,
                level=level,
                risk_score=max(0.0, score),
                symbol=symbol,
                accounts=(),
                window_start=ev.ts,
                window_end=ev.ts,
                evidence={
                    "event_ids": ids,
                    "strategy": strategy,
                    **evidence,
                    "parameters": self.params,
                },
                strategy_id=strategy,
            )
        )
