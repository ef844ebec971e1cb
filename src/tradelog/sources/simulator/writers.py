"""Each simulated engine writes its own log, as a real one would:

- the market maker: JSON lines (market data it consumes, its orders, fills, positions,
  system messages), plus the odd glog-style stderr line and corrupt feed tick;
- the liquidity taker: a text log read by ``regex`` rules (``[sources.regex]`` in
  ``samples/simulator.toml``), with Python tracebacks after errors and the odd torn line;
- the execution algo's venue session: a FIX 4.4 message log with the QuickFIX prefix
  (``YYYYMMDD-HH:MM:SS.fff : 8=FIX.4.4|…``), both directions, session messages included.

Lines are buffered and appended on ``flush``. Every line deliberately written to be
unreadable is recorded in ``bad_lines`` (file, 1-based line number, expected outcome).
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec

from tradelog.model.timefmt import NS_PER_S, ns_to_iso
from tradelog.sources.simulator.market import Print, Quote, SymbolSpec
from tradelog.sources.simulator.venues import Execution, SimOrder

SOH: Final = "\x01"


class BadLine(msgspec.Struct, kw_only=True):
    """A line written on purpose to be rejected or ignored by the pipeline."""

    file: str
    line: int
    expected: str
    """``reject`` or ``ignored``."""
    reason: str
    """The reject reason (``malformed``…) or why it is ignored."""
    what: str


def fmt_num(x: float) -> str:
    """Shortest text that reads back as the same float (``repr``), integers without ``.0``."""
    return str(int(x)) if x == int(x) and abs(x) < 1e15 else repr(x)


class LineLog(ABC):
    """A buffered append-only log file that counts its lines."""

    own_cancel_ids = False
    """Whether a cancel request carries its own id (FIX ClOrdID) instead of the order's."""

    def __init__(self, path: Path, bad_lines: list[BadLine]) -> None:
        self.path = path
        self.name = path.name
        self._fh: io.BufferedWriter = path.open("ab")
        self._buf: list[str] = []
        self.lines = 0
        self.bad_lines = bad_lines
        self._sec: tuple[int, str] = (-1, "")

    def write(self, line: str) -> None:
        self._buf.append(line)
        self.lines += 1

    def bad(self, line: str, expected: str, reason: str, what: str) -> None:
        self.write(line)
        self.bad_lines.append(
            BadLine(file=self.name, line=self.lines, expected=expected, reason=reason, what=what)
        )

    def flush(self) -> None:
        if self._buf:
            self._fh.write(("\n".join(self._buf) + "\n").encode("utf-8"))
            self._buf.clear()
            self._fh.flush()

    def close(self) -> None:
        self.flush()
        self._fh.close()

    def seconds_text(self, t: int, fmt: str) -> tuple[str, int]:
        """``strftime`` of the whole second of ``t`` (cached) and the nanosecond fraction."""
        sec, frac = divmod(t, NS_PER_S)
        if self._sec[0] != sec:
            self._sec = (sec, datetime.fromtimestamp(sec, tz=UTC).strftime(fmt))
        return self._sec[1], frac

    # ---- the engine's vocabulary (overridden per format) ------------------------
    @abstractmethod
    def order_new(self, t: int, o: SimOrder) -> str | None: ...

    @abstractmethod
    def order_ack(self, t: int, o: SimOrder) -> None: ...

    def replace_request(self, t: int, o: SimOrder, new_id: str, ticks: int) -> None:
        """The engine asked to re-price (JSON and text engines log only the outcome)."""
        return None  # by default this engine writes no such line

    @abstractmethod
    def replaced(self, t: int, o: SimOrder, old_id: str) -> None: ...

    @abstractmethod
    def cancel_request(self, t: int, o: SimOrder, request_id: str) -> None: ...

    @abstractmethod
    def cancelled(self, t: int, o: SimOrder, request_id: str, reason: str) -> None: ...

    @abstractmethod
    def cancel_rejected(
        self, t: int, o: SimOrder, request_id: str, reason: str, replace: bool
    ) -> None: ...

    @abstractmethod
    def rejected(self, t: int, o: SimOrder, reason: str) -> None: ...

    @abstractmethod
    def expired(self, t: int, o: SimOrder, reason: str) -> None: ...

    @abstractmethod
    def fill(self, t: int, o: SimOrder, x: Execution) -> None: ...

    def position(
        self,
        t: int,
        strategy: str,
        account: str,
        symbol: str,
        pos: float,
        rpnl: float,
        upnl: float | None,
    ) -> None:
        """The engine's own position/PnL line (formats without one write nothing)."""
        return None  # by default this engine writes no such line

    def system(self, t: int, strategy: str, severity: str, component: str, message: str) -> None:
        """An engine/system message (formats without one write nothing)."""
        return None  # by default this engine writes no such line


class JsonEngineLog(LineLog):
    """JSON lines with canonical field names (the market maker's engine)."""

    def __init__(self, path: Path, bad_lines: list[BadLine], prefix: str) -> None:
        super().__init__(path, bad_lines)
        self.prefix = prefix
        self._eid = 0
        self._enc = msgspec.json.Encoder()

    def _emit(self, t: int, kind: str, fields: dict[str, Any]) -> str:
        self._eid += 1
        eid = f"{self.prefix}{self._eid:010d}"
        rec: dict[str, Any] = {"ts": ns_to_iso(t), "kind": kind, "event_id": eid}
        rec.update(fields)
        self.write(self._enc.encode(rec).decode("utf-8"))
        return eid

    @staticmethod
    def _ref(o: SimOrder) -> dict[str, Any]:
        return {
            "order_id": o.order_id,
            "strategy_id": o.strategy_id,
            "account_id": o.account_id,
            "symbol": o.symbol,
            "venue": o.venue,
            "side": o.side,
        }

    def quote(self, t: int, spec: SymbolSpec, venue: str, q: Quote) -> None:
        self._emit(
            t,
            "quote",
            {
                "symbol": spec.symbol,
                "venue": venue,
                "bid": spec.px(q.bid),
                "ask": spec.px(q.ask),
                "bid_size": spec.qty(q.bid_lots),
                "ask_size": spec.qty(q.ask_lots),
            },
        )

    def market_trade(self, t: int, spec: SymbolSpec, p: Print, trade_id: str) -> None:
        self._emit(
            t,
            "market_trade",
            {
                "symbol": spec.symbol,
                "venue": p.venue,
                "price": spec.px(p.ticks),
                "qty": spec.qty(p.lots),
                "side": p.side,
                "exec_id": trade_id,
            },
        )

    def order_new(self, t: int, o: SimOrder) -> str | None:
        f = self._ref(o)
        f.update(qty=o.spec.qty(o.lots), order_type=o.order_type, tif=o.tif)
        if o.ticks is not None:
            f["price"] = o.spec.px(o.ticks)
        return self._emit(t, "order_new", f)

    def order_ack(self, t: int, o: SimOrder) -> None:
        self._emit(
            t,
            "order_ack",
            {
                "order_id": o.order_id,
                "strategy_id": o.strategy_id,
                "venue_order_id": o.venue_order_id,
            },
        )

    def replaced(self, t: int, o: SimOrder, old_id: str) -> None:
        f = self._ref(o)
        assert o.ticks is not None
        f.update(orig_order_id=old_id, qty=o.spec.qty(o.lots), price=o.spec.px(o.ticks))
        self._emit(t, "order_replace", f)

    def cancel_request(self, t: int, o: SimOrder, request_id: str) -> None:
        self._emit(
            t, "order_cancel_request", {"order_id": o.order_id, "strategy_id": o.strategy_id}
        )

    def cancelled(self, t: int, o: SimOrder, request_id: str, reason: str) -> None:
        self._emit(
            t,
            "order_cancelled",
            {
                "order_id": o.order_id,
                "strategy_id": o.strategy_id,
                "reason": reason,
                "cum_qty": o.spec.qty(o.cum_lots),
                "leaves_qty": 0,
            },
        )

    def cancel_rejected(
        self, t: int, o: SimOrder, request_id: str, reason: str, replace: bool
    ) -> None:
        f: dict[str, Any] = {"order_id": request_id, "strategy_id": o.strategy_id, "reason": reason}
        if request_id != o.order_id:
            f["orig_order_id"] = o.order_id
        self._emit(t, "order_cancel_rejected", f)

    def rejected(self, t: int, o: SimOrder, reason: str) -> None:
        self._emit(
            t,
            "order_rejected",
            {"order_id": o.order_id, "strategy_id": o.strategy_id, "reason": reason},
        )

    def expired(self, t: int, o: SimOrder, reason: str) -> None:
        self._emit(
            t,
            "order_expired",
            {"order_id": o.order_id, "strategy_id": o.strategy_id, "reason": reason},
        )

    def fill(self, t: int, o: SimOrder, x: Execution) -> None:
        f = self._ref(o)
        f.update(
            exec_id=x.exec_id,
            last_qty=o.spec.qty(x.lots),
            last_px=o.spec.px(x.ticks),
            cum_qty=o.spec.qty(o.cum_lots),
            leaves_qty=o.spec.qty(o.leaves),
            liquidity=x.liquidity,
            fee=x.fee,
            fee_currency="USD",
        )
        if x.counterparty is not None:
            f["counterparty_account"] = x.counterparty
        self._emit(t, "fill", f)

    def position(
        self,
        t: int,
        strategy: str,
        account: str,
        symbol: str,
        pos: float,
        rpnl: float,
        upnl: float | None,
    ) -> None:
        f: dict[str, Any] = {
            "strategy_id": strategy,
            "account_id": account,
            "symbol": symbol,
            "position": pos,
            "realized_pnl": rpnl,
        }
        if upnl is not None:
            f["unrealized_pnl"] = upnl
        self._emit(t, "position", f)

    def system(self, t: int, strategy: str, severity: str, component: str, message: str) -> None:
        self._emit(
            t,
            "system",
            {
                "strategy_id": strategy,
                "severity": severity,
                "component": component,
                "message": message,
            },
        )

    def glog_line(self, t: int, message: str) -> None:
        """A C++ library's stderr line (glog format) interleaved into the JSON log."""
        sec, frac = self.seconds_text(t, "%m%d %H:%M:%S")
        self.bad(
            f"W{sec}.{frac // 1000:06d} 4242 feed.cc:88] {message}",
            "reject",
            "malformed",
            "glog stderr line",
        )

    def crossed_tick(self, t: int, spec: SymbolSpec, venue: str, q: Quote) -> None:
        """A corrupt feed tick (bid above ask) as the engine logged it."""
        self._eid += 1
        rec = {
            "ts": ns_to_iso(t),
            "kind": "quote",
            "event_id": f"{self.prefix}{self._eid:010d}",
            "symbol": spec.symbol,
            "venue": venue,
            "bid": spec.px(q.ask + 3),
            "ask": spec.px(q.bid),
            "bid_size": spec.qty(q.bid_lots),
            "ask_size": spec.qty(q.ask_lots),
        }
        self.bad(
            self._enc.encode(rec).decode("utf-8"), "reject", "invalid_price", "crossed feed tick"
        )


class TextEngineLog(LineLog):
    """``2025-03-03 14:30:00.000417064 INFO [TK-1] order_new …`` (the taker's engine)."""

    def __init__(self, path: Path, bad_lines: list[BadLine], prefix: str) -> None:
        super().__init__(path, bad_lines)
        self.prefix = prefix
        self._eid = 0

    def _line(self, t: int, level: str, strategy: str, body: str) -> None:
        self._eid += 1
        sec, frac = self.seconds_text(t, "%Y-%m-%d %H:%M:%S")
        eid = f"{self.prefix}{self._eid:09d}"
        self.write(f"{sec}.{frac:09d} {level} [{strategy}] {body.format(eid=eid)}")

    def order_new(self, t: int, o: SimOrder) -> str | None:
        s = o.spec
        px = "MKT" if o.ticks is None else fmt_num(s.px(o.ticks))
        typ = "MKT" if o.ticks is None else "LMT"
        self._line(
            t,
            "INFO",
            o.strategy_id,
            f"order_new {{eid}} {o.order_id} {o.side.upper()} {fmt_num(s.qty(o.lots))} {o.symbol} "
            f"@ {px} {typ} {o.tif.upper()} on {o.venue} acct={o.account_id}",
        )
        return f"{self.prefix}{self._eid:09d}"

    def order_ack(self, t: int, o: SimOrder) -> None:
        self._line(
            t, "INFO", o.strategy_id, f"order_ack {{eid}} {o.order_id} venue_id={o.venue_order_id}"
        )

    def replaced(self, t: int, o: SimOrder, old_id: str) -> None:
        raise RuntimeError("the taker engine does not re-price orders")

    def cancel_request(self, t: int, o: SimOrder, request_id: str) -> None:
        self._line(t, "INFO", o.strategy_id, f"order_cancel_request {{eid}} {o.order_id}")

    def _reasoned(self, t: int, level: str, o: SimOrder, kind: str, oid: str, reason: str) -> None:
        self._line(t, level, o.strategy_id, f'{kind} {{eid}} {oid} reason="{reason}"')

    def cancelled(self, t: int, o: SimOrder, request_id: str, reason: str) -> None:
        self._reasoned(t, "INFO", o, "order_cancelled", o.order_id, reason)

    def cancel_rejected(
        self, t: int, o: SimOrder, request_id: str, reason: str, replace: bool
    ) -> None:
        self._reasoned(t, "WARN", o, "order_cancel_rejected", o.order_id, reason)

    def rejected(self, t: int, o: SimOrder, reason: str) -> None:
        self._reasoned(t, "WARN", o, "order_rejected", o.order_id, reason)

    def expired(self, t: int, o: SimOrder, reason: str) -> None:
        self._reasoned(t, "INFO", o, "order_expired", o.order_id, reason)

    def fill(self, t: int, o: SimOrder, x: Execution) -> None:
        s = o.spec
        cp = f" cp={x.counterparty}" if x.counterparty is not None else ""
        self._line(
            t,
            "INFO",
            o.strategy_id,
            f"fill {{eid}} {o.order_id} exec={x.exec_id} {fmt_num(s.qty(x.lots))}@"
            f"{fmt_num(s.px(x.ticks))} cum={fmt_num(s.qty(o.cum_lots))} "
            f"leaves={fmt_num(s.qty(o.leaves))} liq={x.liquidity.upper()} fee={fmt_num(x.fee)}{cp}",
        )

    def position(
        self,
        t: int,
        strategy: str,
        account: str,
        symbol: str,
        pos: float,
        rpnl: float,
        upnl: float | None,
    ) -> None:
        up = "NA" if upnl is None else fmt_num(upnl)
        self._line(
            t,
            "INFO",
            strategy,
            f"position {{eid}} {symbol} acct={account} pos={fmt_num(pos)} "
            f"rpnl={fmt_num(rpnl)} upnl={up}",
        )

    def system(self, t: int, strategy: str, severity: str, component: str, message: str) -> None:
        level = {"info": "INFO", "warning": "WARN", "error": "ERROR"}[severity]
        self._line(t, level, strategy, f"system {{eid}} {component}: {message}")

    def traceback(self, t: int, strategy: str, error: str) -> None:
        """An ERROR line followed by a Python traceback (ignored by the skip rule)."""
        self.system(t, strategy, "error", "signals", f"exception in signal handler: {error}")
        for text in (
            "Traceback (most recent call last):",
            '  File "engine/signals.py", line 142, in on_tick',
            "    z = (mid - mean) / stdev",
            f"ZeroDivisionError: {error}",
        ):
            self.bad(text, "ignored", "traceback", "traceback line")

    def torn_line(self, t: int, strategy: str) -> None:
        """A stats line cut short by a crash of the logging thread."""
        sec, frac = self.seconds_text(t, "%Y-%m-%d %H:%M:%S")
        self.bad(
            f"{sec}.{frac:09d} INFO [{strategy}] sys", "reject", "no_rule_matched", "torn line"
        )


class FixSessionLog(LineLog):
    """QuickFIX message log of one order-entry session with a venue: our D/F/G out, the
    venue's ExecutionReports (8) and cancel rejects (9) in, logon and heartbeats."""

    own_cancel_ids = True

    def __init__(
        self, path: Path, bad_lines: list[BadLine], ours: str, venue: str, tag: str = ""
    ) -> None:
        super().__init__(path, bad_lines)
        self.tag = tag
        self.ours = ours
        self.venue = venue
        self._seq = {ours: 0, venue: 0}
        self._ids = 0

    def _time(self, t: int, digits: int) -> str:
        sec, frac = self.seconds_text(t, "%Y%m%d-%H:%M:%S")
        return f"{sec}.{frac // 10 ** (9 - digits):0{digits}d}"

    def _msg(self, t: int, sender: str, msg_type: str, fields: list[tuple[str, str]]) -> str:
        self._seq[sender] += 1
        target = self.venue if sender == self.ours else self.ours
        head = [
            ("35", msg_type),
            ("34", str(self._seq[sender])),
            ("49", sender),
            ("52", self._time(t, 3)),
            ("56", target),
        ]
        body = "".join(f"{k}={v}{SOH}" for k, v in head + fields)
        pre = f"8=FIX.4.4{SOH}9={len(body.encode())}{SOH}"
        text = pre + body
        checksum = sum(text.encode()) % 256
        return f"{self._time(t, 3)} : {(text + f'10={checksum:03d}{SOH}').replace(SOH, '|')}"

    def send(self, t: int, sender: str, msg_type: str, fields: list[tuple[str, str]]) -> None:
        self.write(self._msg(t, sender, msg_type, fields))

    def logon(self, t: int) -> None:
        self.send(t, self.ours, "A", [("98", "0"), ("108", "30")])
        self.send(t, self.venue, "A", [("98", "0"), ("108", "30")])

    def heartbeat(self, t: int) -> None:
        self.send(t, self.ours, "0", [])
        self.send(t, self.venue, "0", [])

    def logout(self, t: int) -> None:
        self.send(t, self.ours, "5", [])
        self.send(t, self.venue, "5", [])

    def corrupt_heartbeat(self, t: int) -> None:
        """A heartbeat whose checksum was damaged on the way (bad_checksum reject)."""
        line = self._msg(t, self.venue, "0", [])
        head, _, tail = line.rpartition("10=")
        bad = (int(tail[:3]) + 1) % 256
        self.bad(f"{head}10={bad:03d}|", "reject", "bad_checksum", "damaged heartbeat")

    @staticmethod
    def _order(o: SimOrder) -> list[tuple[str, str]]:
        f = [("1", o.account_id), ("55", o.symbol), ("54", "1" if o.is_buy else "2")]
        f.append(("38", fmt_num(o.spec.qty(o.lots))))
        f.append(("40", "1" if o.ticks is None else "2"))
        if o.ticks is not None:
            f.append(("44", fmt_num(o.spec.px(o.ticks))))
        f.append(("59", {"day": "0", "gtc": "1", "ioc": "3"}[o.tif]))
        return f

    def _exec(
        self,
        t: int,
        o: SimOrder,
        exec_type: str,
        status: str,
        extra: list[tuple[str, str]],
        exec_id: str | None = None,
        cl_ord_id: str | None = None,
        orig: str | None = None,
    ) -> None:
        if exec_id is None:
            self._ids += 1
            exec_id = f"{self.venue}-{self.tag}R{self._ids:09d}"
        f = [("11", cl_ord_id or o.order_id)]
        if orig is not None:
            f.append(("41", orig))
        f += [
            ("37", o.venue_order_id or "NONE"),
            ("17", exec_id),
            ("150", exec_type),
            ("39", status),
        ]
        f += self._order(o)
        f += [
            ("14", fmt_num(o.spec.qty(o.cum_lots))),
            ("151", fmt_num(o.spec.qty(o.leaves if not o.done else 0))),
        ]
        f += extra
        f += [("30", self.venue), ("60", self._time(t, 9))]
        self.send(t, self.venue, "8", f)

    def order_new(self, t: int, o: SimOrder) -> str | None:
        self.send(
            t, self.ours, "D", [("11", o.order_id), *self._order(o), ("60", self._time(t, 9))]
        )
        return None

    def order_ack(self, t: int, o: SimOrder) -> None:
        self._exec(t, o, "0", "0", [])

    def replace_request(self, t: int, o: SimOrder, new_id: str, ticks: int) -> None:
        f = [("11", new_id), ("41", o.order_id), *self._order(o), ("60", self._time(t, 9))]
        f = [(k, fmt_num(o.spec.px(ticks)) if k == "44" else v) for k, v in f]
        self.send(t, self.ours, "G", f)

    def replaced(self, t: int, o: SimOrder, old_id: str) -> None:
        self._exec(t, o, "5", "1" if o.cum_lots else "0", [], orig=old_id)

    def cancel_request(self, t: int, o: SimOrder, request_id: str) -> None:
        f = [("11", request_id), ("41", o.order_id), ("1", o.account_id), ("55", o.symbol)]
        f += [("54", "1" if o.is_buy else "2"), ("38", fmt_num(o.spec.qty(o.lots)))]
        self.send(t, self.ours, "F", [*f, ("60", self._time(t, 9))])

    def cancelled(self, t: int, o: SimOrder, request_id: str, reason: str) -> None:
        self._exec(t, o, "4", "4", [], cl_ord_id=request_id, orig=o.order_id)

    def cancel_rejected(
        self, t: int, o: SimOrder, request_id: str, reason: str, replace: bool
    ) -> None:
        f = [("11", request_id), ("41", o.order_id), ("37", o.venue_order_id or "NONE")]
        f += [("39", "2" if o.status == "filled" else "4"), ("434", "2" if replace else "1")]
        f += [("102", "0"), ("58", reason), ("60", self._time(t, 9))]
        self.send(t, self.venue, "9", f)

    def rejected(self, t: int, o: SimOrder, reason: str) -> None:
        self._exec(t, o, "8", "8", [("103", "99"), ("58", reason)])

    def expired(self, t: int, o: SimOrder, reason: str) -> None:
        self._exec(t, o, "C", "C", [("58", reason)])

    def fill(self, t: int, o: SimOrder, x: Execution) -> None:
        s = o.spec
        extra = [("32", fmt_num(s.qty(x.lots))), ("31", fmt_num(s.px(x.ticks)))]
        extra += [("851", "1" if x.liquidity == "maker" else "2")]
        extra += [("12", fmt_num(x.fee)), ("13", "3"), ("479", "USD")]
        self._exec(t, o, "F", "2" if o.leaves <= 0 else "1", extra, exec_id=x.exec_id)
