"""The simulator: wires market, venues, engines, writers and injections on one simulated
clock, and runs it either as fast as possible (``realtime=False``: byte-identical output
for a seed) or paced by the wall clock (the demo; content still follows the seed).

Output in ``out_dir``: ``mm_engine.jsonl`` (market maker, JSON lines), ``taker_engine.log``
(liquidity takers, text), ``venue_XCRY.fix.log`` (execution algo's FIX session),
``ground_truth.json`` (injected patterns and deliberately bad lines) and
``truth_summary.json`` (orders, fills, final positions and PnL).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec

from tradelog.model.timefmt import ns_to_iso, parse_iso_ns
from tradelog.sources.simulator.clock import Scheduler
from tradelog.sources.simulator.inject import Injection, schedule
from tradelog.sources.simulator.market import DEFAULT_SYMBOLS, Market
from tradelog.sources.simulator.strategies import Engine, ExecutionAlgo, LiquidityTaker, MarketMaker
from tradelog.sources.simulator.truth import Recorder
from tradelog.sources.simulator.venues import DEFAULT_VENUES, SimOrder, Venue
from tradelog.sources.simulator.writers import (
    BadLine,
    FixSessionLog,
    JsonEngineLog,
    LineLog,
    TextEngineLog,
)

NS_PER_S: Final = 1_000_000_000
FAST_START: Final = "2025-03-03T14:30:00Z"
"""Start of the simulated clock in fast mode (fixed, so output is identical per seed)."""
TICK_S: Final = 0.05
BASE_RATE: Final = 320.0
"""The rate (log lines per second, roughly) the activity parameters are tuned for."""
FILES: Final = {
    "mm_engine": "mm_engine.jsonl",
    "tk_engine": "taker_engine.log",
    "dropcopy": "venue_XCRY.fix.log",
}
ACCOUNTS: Final = {
    "ACC-M1": "FUND-MM",
    "ACC-M2": "FUND-MM",
    "ACC-T1": "FUND-T",
    "ACC-T2": "FUND-T",
    "ACC-T3": "FUND-Q",
    "ACC-X1": "CLIENT-A",
    "ACC-X2": "CLIENT-B",
}


@dataclass(slots=True)
class SimContext:
    """What engines and injections share: the clock, the market, the venues, the seed's
    random stream and the ground-truth recorder."""

    sched: Scheduler
    rng: random.Random
    market: Market
    venues: dict[str, Venue]
    recorder: Recorder
    taker: LiquidityTaker = field(init=False)
    spoofer: LiquidityTaker = field(init=False)
    recorder_watchers: list[Callable[[SimOrder], None]] = field(default_factory=list)


@dataclass(slots=True)
class SimResult:
    out_dir: Path
    start_ns: int
    end_ns: int
    lines: dict[str, int]
    orders: int
    fills: int
    injections: list[Injection]
    bad_lines: list[BadLine]


class Simulator:
    """``Simulator().run(out, duration_s=60, rate=400, seed=7, realtime=False)``.

    ``inject`` names patterns (see ``inject.PATTERNS``): in a finite run they are spread
    evenly over the duration; in an endless run (``duration_s=None``) they repeat, one
    every ``inject_every_s``. ``stop`` ends an endless (or realtime) run cleanly: open
    orders are cancelled, final positions logged and the truth files written.
    """

    def __init__(
        self,
        inject: list[str] | None = None,
        inject_every_s: float = 40.0,
        stop: threading.Event | None = None,
    ) -> None:
        self.inject = list(inject or [])
        self.inject_every_s = inject_every_s
        self.stop = stop or threading.Event()

    def run(
        self,
        out_dir: str | Path,
        duration_s: float | None = 60.0,
        rate: float = BASE_RATE,
        seed: int = 1,
        realtime: bool = False,
    ) -> SimResult:
        if rate <= 0:
            raise ValueError(f"rate must be > 0; was {rate}")
        if duration_s is not None and duration_s <= 0:
            raise ValueError(f"duration must be > 0 seconds; was {duration_s}")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        start = (time.time_ns() // 1000 * 1000) if realtime else parse_iso_ns(FAST_START)
        wall0 = time.monotonic()
        k = rate / BASE_RATE
        rng = random.Random(seed)
        sched = Scheduler(start)
        symbols = DEFAULT_SYMBOLS
        venue_specs = DEFAULT_VENUES
        market = Market(
            rng,
            symbols,
            tuple(v.name for v in venue_specs),
            {v.name: v.spread_mult for v in venue_specs},
        )
        # realtime runs are told apart by a tag in every id, so a data folder can be reused
        tag = f"{start // NS_PER_S:x}-" if realtime else ""
        venues = {v.name: Venue(v, rng, market, sched, tag) for v in venue_specs}
        recorder = Recorder(keep_fills=duration_s is not None)
        ctx = SimContext(sched, rng, market, venues, recorder)
        bad: list[BadLine] = []
        for name in FILES.values():
            (out / name).unlink(missing_ok=True)
        mm_log = JsonEngineLog(out / FILES["mm_engine"], bad, f"MM-{tag}E")
        tk_log = TextEngineLog(out / FILES["tk_engine"], bad, f"TK-{tag}E")
        fix_log = FixSessionLog(out / FILES["dropcopy"], bad, "TLSIM", "XCRY", tag)
        logs: list[LineLog] = [mm_log, tk_log, fix_log]
        by_sym = {s.symbol: s for s in symbols}
        mm = MarketMaker(
            ctx,
            "MM-1",
            ["ACC-M1", "ACC-M2"],
            mm_log,
            f"{tag}M",
            assignments=[
                ("ACC-M1", by_sym["BTC-USD"]),
                ("ACC-M1", by_sym["ETH-USD"]),
                ("ACC-M2", by_sym["SOL-USD"]),
                ("ACC-M2", by_sym["XRP-USD"]),
            ],
            venues=["XCRY", "ZCRY"],
            interval_s=0.3 / k,
        )
        tk1 = LiquidityTaker(
            ctx,
            "TK-1",
            ["ACC-T1", "ACC-T2"],
            tk_log,
            f"{tag}T1-",
            symbols=list(symbols),
            venues=list(venues),
            interval_s=0.25 / k,
        )
        tk2 = LiquidityTaker(
            ctx,
            "TK-2",
            ["ACC-T3"],
            tk_log,
            f"{tag}T2-",
            symbols=list(symbols),
            venues=list(venues),
            interval_s=0.8 / k,
        )
        ex = ExecutionAlgo(
            ctx,
            "EX-1",
            ["ACC-X1", "ACC-X2"],
            fix_log,
            f"{tag}X",
            symbols=list(symbols),
            venue="XCRY",
            interval_s=0.5 / k,
            new_parent_every_s=4.0 / k,
        )
        ctx.taker, ctx.spoofer = tk1, tk2
        engines: list[Engine] = [mm, tk1, tk2, ex]
        logged: list[Engine] = [mm, tk1, tk2]
        """Engines with their own log (the FIX session has no engine messages)."""
        end = None if duration_s is None else start + int(duration_s * NS_PER_S)
        closing = [False]
        injections: list[Injection] = []

        orig_sent = recorder.order_sent

        def sent(o: SimOrder) -> None:
            orig_sent(o)
            for w in ctx.recorder_watchers:
                w(o)

        recorder.order_sent = sent  # type: ignore[method-assign]

        def every(period: Callable[[], float], fn: Callable[[], None]) -> None:
            def run() -> None:
                if closing[0]:
                    return
                fn()
                sched.after(max(1, int(period() * NS_PER_S)), run)

            sched.after(max(1, int(period() * NS_PER_S)), run)

        # ---- market data --------------------------------------------------------
        tick_s = TICK_S / max(1.0, k)
        quote_p = min(1.0, 0.85 * k)
        trade_rate = 2.0 * k
        trade_seq = [0]

        def market_tick() -> None:
            now = sched.now
            market.step(now, tick_s)
            for sym, st in market.symbols.items():
                spec = st.spec
                for vname, venue in venues.items():
                    if vname in st.quotes and rng.random() >= quote_p:
                        continue
                    q = market.quote(sym, vname)
                    mm_log.quote(now, spec, vname, q)
                    venue.on_quote(sym, q)
            for vname, venue in venues.items():
                for p in market.prints(vname, tick_s, trade_rate):
                    trade_seq[0] += 1
                    mm_log.market_trade(
                        now, by_sym[p.symbol], p, f"{vname}-{tag}P{trade_seq[0]:010d}"
                    )
                    venue.on_print(p)

        every(lambda: tick_s, market_tick)

        # ---- engines ------------------------------------------------------------
        def start_engines() -> None:
            t = sched.now
            for e in logged:
                e.log.system(
                    t,
                    e.strategy_id,
                    "info",
                    "main",
                    f"engine {e.strategy_id} starting, accounts {','.join(e.accounts)}",
                )
            for vname in venues:
                mm_log.system(t, "MM-1", "info", "gateway", f"session established with {vname}")
            fix_log.logon(t)
            for e in engines:
                sched.after(int(rng.uniform(0.05, 0.3) * NS_PER_S), _loop(e))

        def _loop(e: Engine) -> Callable[[], None]:
            def run() -> None:
                if closing[0]:
                    return
                delay = e.tick()
                sched.after(max(1, int(delay * NS_PER_S)), run)

            return run

        sched.at(start, start_engines)

        def positions() -> None:
            for e in logged:
                e.report_positions()

        def heartbeats() -> None:
            for e in logged:
                e.heartbeat()

        every(lambda: 5.0, positions)
        every(lambda: 10.0, heartbeats)
        every(lambda: 30.0, lambda: fix_log.heartbeat(sched.now))

        def incident() -> None:
            t = sched.now
            pick = rng.randrange(4)
            if pick == 0:
                mm_log.glog_line(t, "feed gap detected on channel 3, requesting snapshot")
            elif pick == 1:
                sym = rng.choice(list(market.symbols))
                vname = rng.choice(list(venues))
                q = market.symbols[sym].quotes.get(vname)
                if q is not None:
                    mm_log.crossed_tick(t, by_sym[sym], vname, q)
            elif pick == 2:
                tk_log.traceback(t, "TK-1", "float division by zero")
            else:
                tk_log.torn_line(t, "TK-2")
            if rng.random() < 0.3:
                fix_log.corrupt_heartbeat(t)

        every(lambda: rng.uniform(6.0, 18.0), incident)

        # ---- injections ---------------------------------------------------------
        if self.inject:
            if end is not None:
                slot = (end - start) // (len(self.inject) + 1)
                for i, name in enumerate(self.inject):
                    injections.append(schedule(ctx, name, start + slot * (i + 1) - slot // 2, slot))
            else:
                every_ns = int(self.inject_every_s * NS_PER_S)
                counter = [0]

                def next_injection() -> None:
                    if closing[0]:
                        return
                    name = self.inject[counter[0] % len(self.inject)]
                    counter[0] += 1
                    injections.append(schedule(ctx, name, sched.now, every_ns))

                first = min(every_ns // 2, 15 * NS_PER_S)
                sched.at(start + first, next_injection)
                every(lambda: self.inject_every_s, next_injection)

        # ---- run ----------------------------------------------------------------
        def flush() -> None:
            for lg in logs:
                lg.flush()

        last_flush = time.monotonic()
        while len(sched):
            t = sched.next_time()
            assert t is not None
            if self.stop.is_set() or (end is not None and t > end):
                break
            if realtime:
                wait = wall0 + (t - start) / NS_PER_S - time.monotonic()
                if wait > 0:
                    flush()
                    last_flush = time.monotonic()
                    if self.stop.wait(min(wait, 0.25)):
                        break
                    continue
                if time.monotonic() - last_flush > 0.2:
                    flush()
                    last_flush = time.monotonic()
            sched.run_next()

        # ---- shutdown: cancel what is open, drain the venues' answers ---------------
        closing[0] = True
        sched.now = max(
            sched.now, end if (end is not None and not self.stop.is_set()) else sched.now
        )
        t = sched.now
        for e in engines:
            if e is not ex:
                e.log.system(t, e.strategy_id, "info", "main", "shutdown: cancelling open orders")
            e.cancel_all()
        while len(sched):
            sched.run_next()
        for e in engines:
            e.report_positions(force=True)
            if e is not ex:
                e.log.system(sched.now, e.strategy_id, "info", "main", "engine stopped")
        fix_log.logout(sched.now)
        for lg in logs:
            lg.close()
        marks = {s: st.mid for s, st in market.symbols.items()}
        truth = {
            "seed": seed,
            "rate": rate,
            "realtime": realtime,
            "start": ns_to_iso(start),
            "start_ns": start,
            "end": ns_to_iso(sched.now),
            "end_ns": sched.now,
            "files": FILES,
            "accounts": ACCOUNTS,
            "injections": [msgspec.to_builtins(i) for i in injections],
            "bad_lines": [msgspec.to_builtins(b) for b in bad],
        }
        _write_json(out / "ground_truth.json", truth)
        _write_json(out / "truth_summary.json", recorder.summary(engines, marks))
        return SimResult(
            out,
            start,
            sched.now,
            {lg.name: lg.lines for lg in logs},
            recorder.sent,
            sum(recorder.fill_count.values()),
            injections,
            bad,
        )


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    data = msgspec.json.format(msgspec.json.encode(doc), indent=1)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data + b"\n")
    tmp.replace(path)
