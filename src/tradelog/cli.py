"""The ``tradelog`` command line (Typer). Errors are one line on stderr with a non-zero
exit code; long work shows a progress bar.

The commands that run a service (``run``, ``demo``, ``serve``, ``collect``, ``process``)
and ``report`` import their wiring when they start: it loads the web framework and the
NATS, PostgreSQL and WebSocket clients, which ``replay``, ``check-config`` and ``--help``
do not need (they start in well under half the time)."""

from __future__ import annotations

import asyncio
import atexit
import gc
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from time import time_ns
from typing import Annotated, NoReturn

import msgspec
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from tradelog import app as core
from tradelog.config import (
    FORMATS,
    Config,
    ConfigError,
    SourceConfig,
    duckdb_url,
    load_config,
    require_paths,
    validate,
)
from tradelog.model.timefmt import parse_iso_ns
from tradelog.sources.simulator import PATTERNS, Simulator, parse_patterns

cli = typer.Typer(
    name="tradelog",
    help="Stream trading logs into execution-quality analytics, PnL and surveillance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_RUNTIME = 4


def _fail(message: str, code: int) -> NoReturn:
    """One line on stderr (never wrapped, never read as markup) and the exit code."""
    one_line = " ".join(message.split())
    sys.stderr.write(f"error: {one_line}\n")
    sys.stderr.flush()
    raise typer.Exit(code)


def _config(path: Path | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        _fail(f"config: {exc}", EXIT_CONFIG)


ConfigOpt = Annotated[Path | None, typer.Option("-c", "--config", help="TOML config file")]
StoreOpt = Annotated[
    str | None, typer.Option("--store", help="duckdb:///path.duckdb or postgresql://…")
]


@cli.command()
def replay(
    files: Annotated[list[str], typer.Argument(help="Log files (globs allowed)")],
    config: ConfigOpt = None,
    fmt: Annotated[
        str | None, typer.Option("--format", "-f", help=f"One of {', '.join(FORMATS)}")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Config source that reads these files")
    ] = None,
    store: StoreOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")] = False,
) -> None:
    """Ingest existing files from the start, then print what became of every line."""
    cfg = _config(config)
    if fmt is not None:
        if fmt not in FORMATS:
            _fail(f"--format {fmt}: expected one of {', '.join(FORMATS)}", EXIT_USAGE)
        if source is None:
            cfg.sources = [s for s in cfg.sources if s.name != fmt]
            cfg.sources.append(SourceConfig(name=fmt, format=fmt, path=None))  # type: ignore[arg-type]
            source = fmt
        else:
            _fail("give --format or --source, not both", EXIT_USAGE)
    elif not cfg.sources:
        _fail("no source to read the files with: give --format or a config (-c)", EXIT_USAGE)
    if store is not None:
        cfg.store.url = store
    try:
        validate(cfg, Path.cwd())
        plan = core.plan_replay(cfg, files, source)
        writing = msgspec.structs.replace(cfg.store, memory_limit=cfg.store.replay_memory_limit)
        st = core.open_store(cfg.store.url, settings=writing)
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    except (OSError, RuntimeError) as exc:  # e.g. the store file is locked by another process
        _fail(f"store {cfg.store.url}: {exc}", EXIT_RUNTIME)
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]replay"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
    )
    try:
        with progress:
            task = progress.add_task("replay", total=plan.total_bytes, rate="")
            elapsed = progress.tasks[0]

            def on_progress(done: int, records: int) -> None:
                secs = elapsed.elapsed or 0.0
                rate = f"{records / secs:,.0f} events/s" if secs > 0 else ""
                progress.update(task, completed=done, rate=rate)

            summary = core.replay(cfg, plan, st, on_progress)
    except KeyboardInterrupt:
        st.close()
        _fail("interrupted; everything committed so far is kept", 130)
    except (OSError, RuntimeError) as exc:
        st.close()
        _fail(str(exc), EXIT_RUNTIME)
    st.close()
    _print_summary(summary, cfg.store.url)


def _print_summary(s: core.ReplaySummary, url: str) -> None:
    out = Console()
    table = Table(title=f"replay → {url}", show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("files", f"{s.files}")
    table.add_row("lines read", f"{s.records:,}")
    for kind, n in s.events_by_kind.items():
        table.add_row(f"  events: {kind}", f"{n:,}")
    table.add_row("events stored", f"{s.events:,}")
    for reason, n in s.rejects_by_reason.items():
        table.add_row(f"  rejects: {reason}", f"{n:,}")
    table.add_row("rejects stored", f"{s.rejects:,}")
    table.add_row("duplicates dropped", f"{s.duplicates:,}")
    table.add_row("ignored", f"{s.ignored:,}")
    table.add_row("seconds", f"{s.seconds:,.2f}")
    table.add_row("lines/s", f"{s.events_per_second:,.0f}")
    out.print(table)
    balance = s.events + s.rejects + s.duplicates + s.ignored
    if balance != s.records:
        out.print(f"[red]accounting mismatch: {s.records} read vs {balance} accounted[/]")


@cli.command("check-config")
def check_config(
    config: Annotated[Path, typer.Option("-c", "--config", help="TOML config file")],
) -> None:
    """Validate a config file; print its sources, or the key that is wrong."""
    cfg = _config(config)
    out = Console(soft_wrap=True)  # paths stay on one line (greppable)
    out.print(f"[green]ok[/] {config}: {len(cfg.sources)} source(s), store {cfg.store.url}")
    for s in cfg.sources:
        out.print(f"  {s.name}: {s.type} {s.format} {s.path or ''}")


@cli.command()
def serve(
    store: StoreOpt = None,
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
) -> None:
    """Serve the API (and dashboard) over an existing store, with no sources.

    The store is opened for writing when possible (so it is migrated to this version's
    schema and alerts can be acknowledged); a DuckDB file locked by another process is
    served read-only, without alert handling."""
    cfg = _config(config)
    url = store or cfg.store.url
    try:
        st = core.open_existing_store(url, cfg.store)
    except FileNotFoundError as exc:
        _fail(f"{url}: {exc}", EXIT_USAGE)
    except (ConfigError, ValueError) as exc:
        _fail(str(exc), EXIT_USAGE)
    except (OSError, RuntimeError) as exc:
        _fail(f"store {url}: {exc}", EXIT_RUNTIME)
    h = host or cfg.server.host
    p = port or cfg.server.port
    from tradelog import service  # noqa: PLC0415 (see the module docstring)

    Console(stderr=True).print(f"tradelog API on http://{h}:{p} (docs at /docs) over {url}")
    try:
        service.serve_api(st, cfg, h, p)
    finally:
        st.close()


@cli.command()
def run(
    config: Annotated[Path, typer.Option("-c", "--config", help="TOML config file")],
    store: StoreOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
) -> None:
    """The service: follow the configured sources, store, and serve the API, live push
    and metrics. SIGINT/SIGTERM finish the batch in flight, commit it and exit 0."""
    cfg = _config(config)
    if store is not None:
        cfg.store.url = store
    try:
        require_paths(cfg)
        st = core.open_store(cfg.store.url, settings=cfg.store)
    except ConfigError as exc:
        _fail(f"config: {exc}", EXIT_CONFIG)
    except (OSError, RuntimeError) as exc:
        _fail(f"store {cfg.store.url}: {exc}", EXIT_RUNTIME)
    from tradelog import service as svc  # noqa: PLC0415 (see the module docstring)

    try:
        live = svc.build_live(cfg, st)
    except (OSError, RuntimeError, ValueError) as exc:
        st.close()
        _fail(f"cannot start: {exc}", EXIT_RUNTIME)
    h, p = host or cfg.server.host, port or cfg.server.port
    if not svc.serve_live(live, h, p):
        _fail(f"could not serve on {h}:{p} (address in use?)", EXIT_RUNTIME)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@cli.command()
def demo(
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Folder for the logs and the store")
    ] = None,
    rate: Annotated[float, typer.Option(help="Simulated log lines per second")] = 200.0,
    seed: Annotated[int, typer.Option(help="Seed of the simulation")] = 1,
) -> None:
    """The market simulator in real time (engines writing JSON, text and FIX logs, with
    injected anomalies), the live pipeline following its logs with the bundled config, and
    the dashboard at http://127.0.0.1:8000. Ctrl-C stops everything cleanly."""
    folder = data_dir or Path(tempfile.mkdtemp(prefix="tradelog-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    cfg = _config(Path(__file__).parent / "samples" / "simulator.toml")
    for src in cfg.sources:
        if src.path is not None:
            src.path = str(folder / Path(src.path).name)
    cfg.store.url = duckdb_url(folder / "tradelog.duckdb")
    stop = threading.Event()
    sim = Simulator(inject=list(PATTERNS), inject_every_s=30.0, stop=stop)
    sim_thread = threading.Thread(
        target=sim.run,
        kwargs={
            "out_dir": folder,
            "duration_s": None,
            "rate": rate,
            "seed": seed,
            "realtime": True,
        },
        name="tradelog-simulator",
        daemon=True,
    )
    from tradelog import service as svc  # noqa: PLC0415 (see the module docstring)

    try:
        st = core.open_store(cfg.store.url, settings=cfg.store)
        live = svc.build_live(cfg, st)
    except (OSError, RuntimeError, ValueError) as exc:
        _fail(f"cannot start the demo: {exc}", EXIT_RUNTIME)
    sim_thread.start()
    Console(stderr=True).print(
        f"tradelog demo: simulator writing to {folder}\n"
        f"dashboard: http://127.0.0.1:{port}  (Ctrl-C stops)",
        highlight=False,
        soft_wrap=True,
    )
    try:
        started = svc.serve_live(live, "127.0.0.1", port)
    finally:
        stop.set()
        sim_thread.join(timeout=30)
    if not started:
        _fail(f"could not serve on 127.0.0.1:{port} (address in use?)", EXIT_RUNTIME)


@cli.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder for the logs and ground truth")],
    duration: Annotated[float, typer.Option(help="Simulated seconds")] = 60.0,
    rate: Annotated[float, typer.Option(help="Log lines per second, roughly")] = 320.0,
    seed: Annotated[int, typer.Option(help="Same seed, same output (in --fast mode)")] = 1,
    realtime: Annotated[
        bool, typer.Option("--realtime/--fast", help="Pace by the wall clock or run flat out")
    ] = False,
    inject: Annotated[
        str, typer.Option(help=f"all, none, or a comma list of: {', '.join(PATTERNS)}")
    ] = "none",
) -> None:
    """Write synthetic engine logs (JSON lines, a text log, a FIX session log), the ground
    truth of injected patterns and a summary of every order, fill and position, plus a copy
    of the config that reads them (simulator.toml)."""
    try:
        patterns = parse_patterns(inject)
    except ValueError as exc:
        _fail(f"--inject: {exc}", EXIT_USAGE)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _STOP_SIGNALS}
    try:
        result = Simulator(inject=patterns, stop=stop).run(out, duration, rate, seed, realtime)
    except (OSError, ValueError) as exc:
        _fail(f"simulate: {exc}", EXIT_USAGE if isinstance(exc, ValueError) else EXIT_RUNTIME)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    shutil.copyfile(Path(__file__).parent / "samples" / "simulator.toml", out / "simulator.toml")
    console = Console()
    for name, n in result.lines.items():
        console.print(f"{out / name}: {n:,} lines", highlight=False)
    console.print(
        f"{result.orders:,} orders, {result.fills:,} fills, {len(result.injections)} injected "
        f"pattern(s), {len(result.bad_lines)} deliberately bad line(s); ground truth in "
        f"{out / 'ground_truth.json'} and {out / 'truth_summary.json'}",
        highlight=False,
    )


@cli.command()
def collect(
    config: Annotated[Path, typer.Option("-c", "--config", help="TOML config file")],
    idle_exit: Annotated[
        float, typer.Option(help="Exit after this many seconds with nothing new (0: never)")
    ] = 0.0,
) -> None:
    """Scale-out collector: follow the file sources, parse and clean, publish the events to
    the JetStream partitions ([scaleout]); positions are checkpointed after the acks."""
    from tradelog import service as svc  # noqa: PLC0415 (see the module docstring)

    cfg = _config(config)
    try:
        require_paths(cfg)
        collector = svc.build_collector(cfg)
    except (ConfigError, ValueError) as exc:
        _fail(f"config: {exc}", EXIT_CONFIG)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _STOP_SIGNALS}
    s = cfg.scaleout
    Console(stderr=True).print(
        f"tradelog collect → {s.url} stream {s.stream} ({s.partitions} partitions)",
        highlight=False,
    )
    try:
        stats = asyncio.run(collector.run(stop, idle_exit))
    except (OSError, RuntimeError, ValueError) as exc:
        _fail(f"collect: {exc}", EXIT_RUNTIME)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    Console(stderr=True).print(
        f"collected {stats.records:,} records ({stats.events:,} events, {stats.rejects:,} "
        f"rejects) in {stats.messages:,} messages; {stats.duplicates:,} duplicates dropped",
        highlight=False,
    )


@cli.command()
def process(
    config: Annotated[Path, typer.Option("-c", "--config", help="TOML config file")],
    partitions: Annotated[str, typer.Option(help="Partitions to own: 0-3, 0,2 …")],
    store: StoreOpt = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus /metrics on this port")
    ] = None,
) -> None:
    """Scale-out worker: durable consumers on its partitions → pipeline → store; acks
    after each commit. SIGINT/SIGTERM commit what is in flight, snapshot and exit 0."""
    cfg = _config(config)
    if store is not None:
        cfg.store.url = store
    from tradelog import service as svc  # noqa: PLC0415 (see the module docstring)
    from tradelog.sources.partitioned import parse_partitions  # noqa: PLC0415

    try:
        owned = parse_partitions(partitions, cfg.scaleout.partitions)
    except ValueError as exc:
        _fail(f"--partitions: {exc}", EXIT_USAGE)
    try:
        st = core.open_store(cfg.store.url, settings=cfg.store)
    except (ConfigError, ValueError) as exc:
        _fail(str(exc), EXIT_USAGE)
    except (OSError, RuntimeError) as exc:
        _fail(f"store {cfg.store.url}: {exc}", EXIT_RUNTIME)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _STOP_SIGNALS}
    try:
        processor, metrics = svc.build_processor(cfg, st, owned)
        if metrics_port is not None:
            svc.serve_metrics(metrics, metrics_port, cfg.server.host)
        processor.start()
    except (OSError, RuntimeError, ValueError, svc.NatsError) as exc:
        st.close()
        _fail(f"process: cannot start: {exc}", EXIT_RUNTIME)
    Console(stderr=True).print(
        f"tradelog process: partitions {owned} of {cfg.scaleout.partitions} → {st.url}",
        highlight=False,
    )
    failure = None
    try:
        while not stop.wait(0.2):
            failure = processor.failed()
            if failure is not None:
                break
    finally:
        try:
            processor.stop()
        except RuntimeError as exc:  # a partition's store commit failed
            failure = failure or str(exc)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            st.close()
    if failure is not None:
        _fail(f"process: {failure}", EXIT_RUNTIME)


@cli.command()
def report(
    output: Annotated[Path, typer.Option("-o", "--output", help="HTML file to write")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
    from_: Annotated[str | None, typer.Option("--from", help="ISO-8601 start (UTC)")] = None,
    to: Annotated[str | None, typer.Option("--to", help="ISO-8601 end, exclusive")] = None,
    strategy: Annotated[
        list[str] | None, typer.Option("--strategy", help="Only these strategies (repeat)")
    ] = None,
    capital: Annotated[
        float | None, typer.Option(help="Capital base of the returns (E = capital + PnL)")
    ] = None,
    interval: Annotated[
        float | None, typer.Option(help="Equity sampling interval, s (default 1 s, widened)")
    ] = None,
    periods_per_year: Annotated[
        float | None, typer.Option(help="Periods per year (default: 24/7 calendar)")
    ] = None,
    csv_dir: Annotated[Path | None, typer.Option("--csv", help="Also write tables here")] = None,
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Also print to PDF (Chromium)")] = None,
) -> None:
    """Write the post-run report: one self-contained HTML file (performance, trades,
    execution quality, surveillance, data quality), optionally CSV tables and a PDF."""
    from tradelog.reports import export as report_export  # noqa: PLC0415 (see the module docstring)
    from tradelog.reports import html as report_html  # noqa: PLC0415
    from tradelog.reports.builder import ReportParams, build_report  # noqa: PLC0415

    cfg = _config(config)
    url = store or cfg.store.url
    try:
        params = ReportParams(
            start=parse_iso_ns(from_) if from_ else None,
            end=parse_iso_ns(to) if to else None,
            strategies=tuple(strategy or ()),
            capital=capital if capital is not None else cfg.report.capital,
            interval_s=interval,
            periods_per_year=(
                periods_per_year if periods_per_year is not None else cfg.report.periods_per_year
            ),
        )
    except ValueError as exc:
        _fail(str(exc), EXIT_USAGE)
    try:
        st = core.open_store(url, read_only=True)
    except FileNotFoundError as exc:
        _fail(f"{url}: {exc}", EXIT_USAGE)
    except (ConfigError, ValueError) as exc:
        _fail(str(exc), EXIT_USAGE)
    except (OSError, RuntimeError) as exc:
        _fail(f"store {url}: {exc}", EXIT_RUNTIME)
    try:
        data = build_report(st, params, time_ns())
    finally:
        st.close()
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report_html.render(data), encoding="utf-8")
        written = [str(output)]
        if csv_dir is not None:
            written += [str(p) for p in report_export.write_csv(data, csv_dir)]
        if pdf is not None:
            written.append(str(report_export.print_pdf(output, pdf)))
    except (OSError, RuntimeError) as exc:
        _fail(str(exc), EXIT_RUNTIME)
    took = ", ".join(f"{k} {v:.2f}s" for k, v in data["timings_s"].items())
    Console(stderr=True).print(f"report: {len(written)} file(s): {written[0]} ({took})",
                               highlight=False, soft_wrap=True)  # fmt: skip


def tune_gc() -> None:
    """Long-lived state (open orders, quote history) makes the collector's full passes
    costly; objects created at start-up are frozen and young collections made rarer.
    Events are gc-untracked structs, so this only delays collection of real cycles."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    atexit.register(gc.unfreeze)  # let shutdown collect what was frozen


def main() -> None:
    tune_gc()
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
