"""Wash trades: one beneficial owner on both sides of a trade.

Rules (DESIGN §4):
- counterparty: a fill whose ``counterparty_account`` belongs to the same account or the same
  beneficial owner (accounts → owners in config) — level high;
- inferred (no counterparty data): opposite fills of one owner at the same price (to
  ``price_digits`` significant digits) and quantity within ``match_window_s`` (1 s), from
  different orders — level medium;
- ratio: the self-matched share of an owner's fill volume over ``ratio_window_s`` is at or above
  ``ratio_threshold`` (0.8), once the owner has ``ratio_min_fills`` fills in the window (warm-up)
  — level high.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import msgspec

from tradelog.model.events import Event, EventKind, Side
from tradelog.surveillance.base import NS_PER_MIN, NS_PER_S, Candidate, Context, Handler, add_id

SWEEP_EVERY = 1024
"""Fills between sweeps of stale unmatched fills."""
TEXT_CACHE = 65_536
"""Prices (quantities) whose key text is remembered before that cache starts over."""
_BUY: Final = Side.BUY


class WashTradeSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    match_window_s: float = 1.0
    price_digits: int = 9
    """Prices are "the same" when equal to this many significant digits."""
    ratio_window_s: float = 300.0
    ratio_threshold: float = 0.8
    ratio_min_fills: int = 10


class _Fill(msgspec.Struct, array_like=True, gc=False):
    ts: int
    owner: str
    account: str
    side: str
    px: float
    qty: float
    event_id: str
    order: str
    matched: bool = False


class _OwnerBucket(msgspec.Struct, array_like=True, gc=False):
    minute: int
    total: float = 0.0
    matched: float = 0.0
    fills: int = 0


class WashTradeState(msgspec.Struct, kw_only=True):
    pending: dict[str, list[_Fill]] = msgspec.field(default_factory=dict)
    """Unmatched fills of the last ``match_window_s`` by owner|side|price|qty."""
    fills_seen: int = 0
    owners: dict[str, list[_OwnerBucket]] = msgspec.field(default_factory=dict)
    owner_accounts: dict[str, list[str]] = msgspec.field(default_factory=dict)
    owner_ids: dict[str, list[str]] = msgspec.field(default_factory=dict)
    """Evidence ids of self-matched fills per owner (capped)."""
    ratio_emitted: dict[str, int] = msgspec.field(default_factory=dict)
    """Owner → minute of the last ratio candidate (one per minute)."""


class _Symbol(Protocol):
    wash_trade: WashTradeState


class WashTrade:
    type = "wash_trade"

    def __init__(self, settings: WashTradeSettings | None = None) -> None:
        self.s = settings or WashTradeSettings()
        self.params: dict[str, Any] = msgspec.structs.asdict(self.s)
        self._window = int(self.s.match_window_s * NS_PER_S)
        self._ratio_minutes = max(1, int(self.s.ratio_window_s * NS_PER_S) // NS_PER_MIN)
        self._price_format = f".{self.s.price_digits}g"
        self._prices: dict[float, str] = {}
        """price → its text in the pending keys (a cache: prices repeat on their ticks)."""
        self._amounts: dict[float, str] = {}
        """quantity → its text in the pending keys (a cache)."""

    def handlers(self) -> dict[EventKind, Handler]:
        return {EventKind.FILL: self.on_fill}

    def on_fill(self, ev: Event, ss: _Symbol, ctx: Context) -> list[Candidate] | None:
        account = ev.account_id
        qty, px, side = ev.last_qty, ev.last_px, ev.side
        if account is None or qty is None or px is None or side is None or ev.symbol is None:
            return None
        st = ss.wash_trade
        owner = ctx.owners.get(account, account) or account
        out: list[Candidate] = []
        buckets = st.owners.get(owner)
        if buckets and buckets[-1].minute >= ev.ts // NS_PER_MIN:
            bucket = buckets[-1]  # same minute (or a late event: counted in the newest bucket)
        else:
            bucket = self._bucket(st, owner, ev.ts)
        bucket.total += qty
        bucket.fills += 1
        cp = ev.counterparty_account
        if cp is not None:
            cp_owner = ctx.owners.get(cp, cp)
            if cp_owner == owner:
                bucket.matched += qty
                self._note(st, owner, (account, cp), ev.event_id)
                accounts = tuple(sorted({account, cp}))
                out.append(
                    Candidate(
                        type=self.type,
                        level="high",
                        risk_score=0.8 if account == cp else 0.75,
                        symbol=ev.symbol,
                        accounts=accounts,
                        window_start=ev.ts,
                        window_end=ev.ts,
                        evidence={
                            "rule": "counterparty",
                            "event_ids": [ev.event_id],
                            "owner": owner,
                            "account": account,
                            "counterparty_account": cp,
                            "same_account": account == cp,
                            "price": px,
                            "qty": qty,
                            "parameters": self.params,
                        },
                    )
                )
        else:
            match = self._match(st, ev, owner, side, px, qty)
            if match is not None:
                bucket.matched += qty + match.qty
                self._note(st, owner, (account, match.account), match.event_id, ev.event_id)
                accounts = tuple(sorted({account, match.account}))
                dt_ms = (ev.ts - match.ts) / 1e6
                out.append(
                    Candidate(
                        type=self.type,
                        level="medium",
                        risk_score=round(0.6 + 0.1 * (1 - dt_ms / (self._window / 1e6 or 1)), 4),
                        symbol=ev.symbol,
                        accounts=accounts,
                        window_start=match.ts,
                        window_end=ev.ts,
                        evidence={
                            "rule": "inferred_same_price_qty",
                            "event_ids": [match.event_id, ev.event_id],
                            "owner": owner,
                            "price": px,
                            "qty": qty,
                            "dt_ms": dt_ms,
                            "thresholds": {"match_window_s": self.s.match_window_s},
                            "parameters": self.params,
                        },
                    )
                )
        s = self.s
        if (
            buckets is None
            or len(buckets) > 1
            or (
                bucket.fills >= s.ratio_min_fills
                and not (bucket.matched <= 0 or bucket.total <= 0)
                and not bucket.matched / bucket.total < s.ratio_threshold
            )
        ):  # one bucket (its own sums) below the warm-up or the threshold: nothing to judge
            ratio = self._ratio(st, ev, owner)
            if ratio is not None:
                out.append(ratio)
        return out or None

    def _bucket(self, st: WashTradeState, owner: str, ts: int) -> _OwnerBucket:
        minute = ts // NS_PER_MIN
        buckets = st.owners.get(owner)
        if buckets is None:
            buckets = st.owners[owner] = []
        elif buckets and buckets[-1].minute >= minute:
            return buckets[-1]  # same minute (or a late event: counted in the newest bucket)
        b = _OwnerBucket(minute)
        buckets.append(b)
        cutoff = minute - self._ratio_minutes
        while buckets and buckets[0].minute <= cutoff:
            buckets.pop(0)
        return b

    @staticmethod
    def _note(st: WashTradeState, owner: str, accounts: tuple[str, str], *ids: str) -> None:
        known = st.owner_accounts.setdefault(owner, [])
        for a in accounts:
            if a not in known:
                known.append(a)
        evidence = st.owner_ids.setdefault(owner, [])
        for i in ids:
            add_id(evidence, i)

    def _match(
        self, st: WashTradeState, ev: Event, owner: str, side: Side, px: float, qty: float
    ) -> _Fill | None:
        """The oldest unmatched opposite fill of the owner at this price and quantity in
        the window (then consumed), else None (and this fill waits for its match)."""
        cutoff = ev.ts - self._window
        order = ev.root_order_id or ev.order_id or ev.event_id
        price = self._prices.get(px)
        if price is None:
            price = format(px, self._price_format)
            if px:  # -0.0 == 0.0 but prints differently: zeros are not remembered
                if len(self._prices) >= TEXT_CACHE:
                    self._prices.clear()
                self._prices[px] = price
        amount = self._amounts.get(qty)
        if amount is None:
            amount = repr(qty)
            if qty:
                if len(self._amounts) >= TEXT_CACHE:
                    self._amounts.clear()
                self._amounts[qty] = amount
        tail = f"|{price}|{amount}"
        mine, other = ("buy", "sell") if side is _BUY else ("sell", "buy")
        pending = st.pending
        key = f"{owner}|{other}{tail}"
        waiting = pending.get(key)
        found: _Fill | None = None
        if waiting:
            while waiting and waiting[0].ts < cutoff:
                waiting.pop(0)
            for pos, f in enumerate(waiting):
                if f.order != order:
                    found = waiting.pop(pos)
                    found.matched = True
                    break
            if not waiting:
                del pending[key]
        if found is None:
            assert ev.account_id is not None
            fill = _Fill(ev.ts, owner, ev.account_id, mine, px, qty, ev.event_id, order)
            key = f"{owner}|{mine}{tail}"
            queue = pending.get(key)
            if queue is None:
                pending[key] = [fill]
            else:
                queue.append(fill)
        st.fills_seen += 1
        if st.fills_seen % SWEEP_EVERY == 0:
            for k in [k for k, v in pending.items() if v[-1].ts < cutoff]:
                del pending[k]
        return found

    def _ratio(self, st: WashTradeState, ev: Event, owner: str) -> Candidate | None:
        buckets = st.owners.get(owner) or []
        s = self.s
        fills = 0
        for b in buckets:
            fills += b.fills
        if fills < s.ratio_min_fills:
            return None
        matched = sum(b.matched for b in buckets)
        if matched <= 0:
            return None
        total = sum(b.total for b in buckets)
        if total <= 0:
            return None
        ratio = matched / total
        if ratio < s.ratio_threshold:
            return None
        minute = ev.ts // NS_PER_MIN
        if st.ratio_emitted.get(owner) == minute:
            return None
        st.ratio_emitted[owner] = minute
        accounts = tuple(sorted(st.owner_accounts.get(owner, [])))
        return Candidate(
            type=self.type,
            level="high",
            risk_score=round(min(1.0, 0.7 + 0.3 * ratio), 4),
            symbol=ev.symbol,
            accounts=accounts,
            window_start=buckets[0].minute * NS_PER_MIN,
            window_end=ev.ts,
            evidence={
                "rule": "self_match_ratio",
                "event_ids": list(st.owner_ids.get(owner, [])),
                "owner": owner,
                "self_matched_qty": matched,
                "owner_qty": total,
                "owner_fills": fills,
                "ratio": ratio,
                "thresholds": {"ratio": s.ratio_threshold, "min_fills": s.ratio_min_fills},
                "parameters": self.params,
            },
        )
