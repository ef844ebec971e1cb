"""Composition root, batch part: builds stores, parsers, cleaners and pipelines from the
config and runs ``replay``. The long-running services (``run``, ``collect``, ``process``)
are wired in ``service.py``; only these two modules and cli.py wire everything.

This module imports no network client (NATS, PostgreSQL, WebSockets, the web framework):
``replay`` and ``check-config`` start without loading them (the PostgreSQL store is
imported when a ``postgresql://`` URL is opened)."""

from __future__ import annotations

import fnmatch
import glob
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import duckdb

from tradelog.config import Config, ConfigError, SourceConfig, StoreConfig
from tradelog.parsing.base import Parser
from tradelog.parsing.csv import CsvParser, CsvSettings
from tradelog.parsing.fix import FixParser, FixSettings
from tradelog.parsing.jsonl import JsonlParser
from tradelog.parsing.logfmt import LogfmtParser
from tradelog.pipeline.batch import CleanChunk, StreamInfo
from tradelog.pipeline.ingest import StreamDecoder, merge_by_time
from tradelog.pipeline.runner import Committer, Pipeline, PipelineSettings, run_batches
from tradelog.sources.file_replay import FileIdentity, identify, read_chunks
from tradelog.stages.clean import Cleaner
from tradelog.stages.clean_jsonl import FastJsonl
from tradelog.storage.base import Store, parse_store_url
from tradelog.storage.duckdb_store import DuckDBStore


def open_store(url: str, read_only: bool = False, settings: StoreConfig | None = None) -> Store:
    """The store for a URL (``duckdb:///…`` or ``postgresql://…``)."""
    kind, target = parse_store_url(url)
    s = settings or StoreConfig()
    if kind == "duckdb":
        return DuckDBStore(
            target, read_only=read_only, url=url, memory_limit=s.memory_limit, threads=s.threads
        )
    # imported here: psycopg is loaded only by a process that uses PostgreSQL
    from tradelog.storage.postgres_store import PostgresStore  # noqa: PLC0415

    return PostgresStore(target, read_only=read_only, retention_days=s.retention_days)


def open_existing_store(url: str, settings: StoreConfig | None = None) -> Store:
    """A store that must exist already (``serve``): opened for writing, which applies
    pending migrations; a DuckDB file another process holds is opened read-only."""
    kind, target = parse_store_url(url)
    if kind == "duckdb" and not os.path.exists(target):
        raise FileNotFoundError(f"no store at {target}")
    try:
        return open_store(url, settings=settings)
    except duckdb.IOException:
        return open_store(url, read_only=True, settings=settings)


def make_parser(src: SourceConfig, ident: FileIdentity | None) -> Parser:
    """A fresh parser for one stream of a source (parsers keep per-stream state)."""
    size = src.max_record_bytes
    if src.format == "jsonl":
        return JsonlParser(size)
    if src.format == "logfmt":
        return LogfmtParser(size)
    if src.format == "csv":
        header = None
        if ident is not None and ident.head:
            header = ident.head.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")
        return CsvParser(src.csv or CsvSettings(), header=header, max_record_bytes=size)
    if src.format == "fix":
        return FixParser(src.fix or FixSettings(), size)
    if src.format == "regex":
        if src.regex is None:
            raise ConfigError(f"source {src.name}: the regex format needs [sources.regex]")
        return src.regex.build(ident.path if ident is not None else "", max_record_bytes=size)
    raise ConfigError(f"source {src.name}: unknown format {src.format!r}")


def make_decoder(config: Config, src: SourceConfig, ident: FileIdentity) -> StreamDecoder:
    """Parser + cleaner for one file; JSON lines with canonical names take the fast path."""
    info = stream_info(src.name, ident)
    cleaner = Cleaner(src.name, src, config.normalize)
    if src.format == "jsonl" and FastJsonl.applies(src):
        return StreamDecoder(info, cleaner, None, FastJsonl(cleaner, src.max_record_bytes))
    return StreamDecoder(info, cleaner, make_parser(src, ident), None)


def pipeline_settings(config: Config, replay: bool = False) -> PipelineSettings:
    p = config.pipeline
    return PipelineSettings(
        batch_events=p.replay_batch_events if replay else p.batch_events,
        max_pending_batches=p.max_pending_batches,
        snapshot_interval_s=p.snapshot_interval_s,
        size_window=p.size_window,
        max_terminal_orders=p.max_terminal_orders,
    )


def stream_info(source: str, ident: FileIdentity) -> StreamInfo:
    """A file's stream: keyed by content fingerprint, so a renamed file is the same stream."""
    return StreamInfo(
        source=source,
        stream=f"fp:{ident.fingerprint}",
        src_ref=ident.path,
        fingerprint=ident.fingerprint,
        dev=ident.dev,
        inode=ident.inode,
    )


@dataclass
class ReplayPlan:
    """Which source reads which file."""

    files: list[tuple[str, SourceConfig]]
    total_bytes: int


def plan_replay(config: Config, paths: list[str], source_name: str | None) -> ReplayPlan:
    """Assigns each file to a source: ``--source``, else the source whose path glob matches
    it, else the only file source. Raises ConfigError with the file named."""
    files: list[tuple[str, SourceConfig]] = []
    by_name = {s.name: s for s in config.sources}
    if source_name is not None and source_name not in by_name:
        raise ConfigError(f"--source {source_name}: no such source (have {sorted(by_name)})")
    expanded: list[str] = []
    for p in paths:
        if any(ch in p for ch in "*?["):
            matches = sorted(glob.glob(p))
            if not matches:
                raise ConfigError(f"{p}: no file matches")
            expanded.extend(matches)
        else:
            expanded.append(p)
    total = 0
    for path in expanded:
        if not os.path.isfile(path):
            raise ConfigError(f"{path}: no such file")
        if not os.access(path, os.R_OK):
            raise ConfigError(f"{path}: not readable")
        if source_name is not None:
            src = by_name[source_name]
        else:
            absolute = os.path.abspath(path)
            matching = [s for s in config.sources if s.path and fnmatch.fnmatch(absolute, s.path)]
            if not matching:  # a file kept elsewhere: match the glob's file-name part
                name = os.path.basename(absolute)
                matching = [
                    s
                    for s in config.sources
                    if s.path and fnmatch.fnmatch(name, os.path.basename(s.path))
                ]
            if len(matching) == 1:
                src = matching[0]
            elif len(config.sources) == 1:
                src = config.sources[0]
            elif not matching:
                raise ConfigError(
                    f"{path}: matches no source path in the config; choose one with --source"
                )
            else:
                names = ", ".join(s.name for s in matching)
                raise ConfigError(f"{path}: matches several sources ({names}); use --source")
        files.append((path, src))
        total += os.path.getsize(path)
    return ReplayPlan(files, total)


@dataclass
class ReplaySummary:
    files: int = 0
    bytes_read: int = 0
    records: int = 0
    events: int = 0
    rejects: int = 0
    duplicates: int = 0
    ignored: int = 0
    seconds: float = 0.0
    events_by_kind: dict[str, int] = field(default_factory=dict)
    rejects_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def replay(
    config: Config,
    plan: ReplayPlan,
    store: Store,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReplaySummary:
    """Ingests files from the start into the store; returns what became of every record.

    Several files are merged by event time so cross-file context (quotes in one file,
    orders in another) is right. ``on_progress(bytes, records)`` is called per batch.
    """
    started = time.perf_counter()
    pipeline = Pipeline(
        store,
        pipeline_settings(config, replay=True),
        reference=config.reference,
        marks=config.marks,
        surveillance=config.surveillance,
    )
    pipeline.open()
    committer = Committer(store, pipeline.settings.max_pending_batches)
    bytes_done = [0]

    def stream(path: str, src: SourceConfig) -> Iterator[CleanChunk]:
        ident = identify(path)
        decoder = make_decoder(config, src, ident)
        for chunk, _end, nbytes in read_chunks(path, decoder.decode):
            bytes_done[0] += nbytes
            yield chunk

    streams = [stream(path, src) for path, src in plan.files]

    def progress(chunks: list[CleanChunk]) -> None:
        if on_progress is not None:
            on_progress(bytes_done[0], pipeline.stats.records)

    try:
        run_batches(pipeline, committer, merge_by_time(streams), on_batch=progress)
    finally:
        committer.close()
    stats = pipeline.stats
    return ReplaySummary(
        files=len(plan.files),
        bytes_read=bytes_done[0],
        records=stats.records,
        events=stats.events,
        rejects=stats.rejects,
        duplicates=stats.duplicates,
        ignored=stats.ignored,
        seconds=time.perf_counter() - started,
        events_by_kind={str(k): v for k, v in sorted(stats.events_by_kind.items())},
        rejects_by_reason={str(k): v for k, v in sorted(stats.rejects_by_reason.items())},
    )
