"""The ``tradelog`` command line (Typer). Errors are one line on stderr with a non-zero
exit code; long work shows a progress bar."""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import uvicorn
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
from tradelog.api.app import create_app
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
from tradelog.storage.base import parse_store_url

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
        st = core.open_store(cfg.store.url, settings=cfg.store)
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
    out = Console()
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
    """Serve the API (and dashboard) over an existing store, with no sources."""
    cfg = _config(config)
    url = store or cfg.store.url
    try:
        st = core.open_store(url, read_only=True)
    except FileNotFoundError as exc:
        _fail(f"{url}: {exc}", EXIT_USAGE)
    except (ConfigError, ValueError) as exc:
        _fail(str(exc), EXIT_USAGE)
    except (OSError, RuntimeError) as exc:
        _fail(f"store {url}: {exc}", EXIT_RUNTIME)
    h = host or cfg.server.host
    p = port or cfg.server.port
    Console(stderr=True).print(f"tradelog API on http://{h}:{p} (docs at /docs) over {url}")
    try:
        uvicorn.run(create_app(st, tokens=cfg.all_tokens()), host=h, port=p, log_level="warning")
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
    try:
        service = core.build_live(cfg, st)
    except (OSError, RuntimeError, ValueError) as exc:
        st.close()
        _fail(f"cannot start: {exc}", EXIT_RUNTIME)
    serve_live(service, host or cfg.server.host, port or cfg.server.port)


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM after shutting down, which would kill the process
    before the pipeline commits its last batch; here a signal only asks for shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve_live(service: core.LiveService, host: str, port: int) -> None:
    """Runs the live loop in its thread and the API in this one until a signal."""
    app = create_app(
        service.store,
        live=service.hub,
        ingest=service.ingest,
        metrics=service.metrics,
        snapshot=service.snapshot,
        tokens=service.config.all_tokens(),
    )
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    service.start()
    Console(stderr=True).print(
        f"tradelog running: API http://{host}:{port} (docs /docs, live ws /log_stream/live, "
        f"metrics /metrics) over {service.store.url}",
        highlight=False,
        soft_wrap=True,
    )
    try:
        server.run()
    finally:
        service.stop()
    if not server.started:
        _fail(f"could not serve on {host}:{port} (address in use?)", EXIT_RUNTIME)


@cli.command()
def demo(
    store: StoreOpt = None,
    port: Annotated[int, typer.Option(help="Port")] = 8000,
) -> None:
    """Replay the bundled sample logs (engine JSON lines, a FIX drop copy, a text log)
    into a fresh store and serve the API over it."""
    samples = Path(__file__).parent / "samples"
    cfg_path = samples / "demo.toml"
    cfg = _config(cfg_path)
    url = store or duckdb_url(Path.cwd() / "tradelog-data" / "demo.duckdb")
    kind, path = parse_store_url(url)
    if kind == "duckdb" and os.path.exists(path):
        os.remove(path)
    cfg.store.url = url
    files = sorted(str(p) for p in samples.glob("logs/*") if p.is_file())
    try:
        plan = core.plan_replay(cfg, files, None)
        st = core.open_store(url)
        summary = core.replay(cfg, plan, st)
    except ConfigError as exc:
        _fail(str(exc), EXIT_CONFIG)
    st.close()
    _print_summary(summary, url)
    serve(store=url, config=None, host="127.0.0.1", port=port)


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
