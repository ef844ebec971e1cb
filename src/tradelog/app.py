"""Composition root: builds stores, parsers, cleaners and pipelines from the config, and
runs the jobs the CLI offers. The only module (with cli.py) that wires everything."""

from __future__ import annotations

import fnmatch
import glob
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import msgspec

from tradelog.api.live import LiveHub
from tradelog.api.metrics import Metrics
from tradelog.config import Config, ConfigError, SourceConfig, StoreConfig
from tradelog.parsing.base import Parser
from tradelog.parsing.csv import CsvParser, CsvSettings
from tradelog.parsing.fix import FixParser, FixSettings
from tradelog.parsing.jsonl import JsonlParser
from tradelog.parsing.logfmt import LogfmtParser
from tradelog.pipeline.batch import CleanChunk, StreamInfo
from tradelog.pipeline.ingest import StreamDecoder, merge_by_time
from tradelog.pipeline.live import LiveRunner
from tradelog.pipeline.runner import Committer, Pipeline, PipelineSettings, run_batches
from tradelog.sources.binance_ws import BinanceClient
from tradelog.sources.file_replay import FINGERPRINT_BYTES, FileIdentity, identify, read_chunks
from tradelog.sources.file_tail import FileTailer, KnownPosition, TailInput, Tracked
from tradelog.sources.http_ingest import HttpIngest
from tradelog.sources.nats_jetstream import NatsSink, NatsSource, nats_stream_info
from tradelog.sources.partitioned import Collector, Processor, load_checkpoint
from tradelog.sources.risk_publisher import RiskPublisher
from tradelog.stages.clean import Cleaner
from tradelog.stages.clean_jsonl import FastJsonl
from tradelog.storage.base import Store, parse_store_url
from tradelog.storage.duckdb_store import DuckDBStore
from tradelog.storage.postgres_store import PostgresStore


def open_store(url: str, read_only: bool = False, settings: StoreConfig | None = None) -> Store:
    """The store for a URL (``duckdb:///…`` or ``postgresql://…``)."""
    kind, target = parse_store_url(url)
    s = settings or StoreConfig()
    if kind == "duckdb":
        return DuckDBStore(
            target, read_only=read_only, url=url, memory_limit=s.memory_limit, threads=s.threads
        )
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


# ---------------------------------------------------------------------------- run (live)


@dataclass
class LiveService:
    """Everything ``tradelog run`` wires together (also used by tests and the demo)."""

    config: Config
    store: Store
    pipeline: Pipeline
    committer: Committer
    runner: LiveRunner
    tailers: list[FileTailer]
    hub: LiveHub
    metrics: Metrics
    ingest: HttpIngest | None
    nats_sources: list[NatsSource] = field(default_factory=list)
    binance: list[BinanceClient] = field(default_factory=list)
    sinks: list[NatsSink] = field(default_factory=list)
    thread: threading.Thread | None = None
    risk_publisher: RiskPublisher | None = None

    def start(self) -> None:
        for sink in self.sinks:
            sink.start()
        if self.risk_publisher is not None:
            self.risk_publisher.start()
        self.thread = threading.Thread(target=self.runner.run, name="tradelog-live", daemon=True)
        self.thread.start()
        for nats_source in self.nats_sources:
            nats_source.start()
        for client in self.binance:
            client.start()

    def stop(self) -> None:
        """Stop the network sources (their in-flight batches commit and are acked), finish
        the batch in flight, commit it with a state snapshot, flush the sinks, close."""
        for client in self.binance:
            client.stop()
        for nats_source in self.nats_sources:
            nats_source.stop()
        self.runner.stop()
        if self.thread is not None:
            self.thread.join()
        try:
            self.committer.close()
        finally:
            for sink in self.sinks:
                sink.stop()
            if self.risk_publisher is not None:
                self.risk_publisher.stop()
            for t in self.tailers:
                t.close()
            self.store.close()

    def snapshot(self) -> dict[str, Any]:
        """Live state for /statistics and the metrics push."""
        stats = self.runner.stats
        p = self.pipeline.stats
        return {
            "pipeline": {
                "records": p.records,
                "events": p.events,
                "rejects": p.rejects,
                "duplicates": p.duplicates,
                "ignored": p.ignored,
                "batches": stats.batches,
                "inbox_depth": stats.inbox_depth,
                "refused": stats.refused,
                "uptime_s": time.time() - stats.started,
            },
            "files": [
                {
                    "source": t.source,
                    "path": f.path,
                    "stream": f.stream,
                    "offset": f.offset,
                    "pending_bytes": len(f.pending),
                    "draining": f.draining,
                }
                for t in self.tailers
                for f in t.files.values()
            ],
            "tailers": {
                t.source: {
                    "files_added": t.stats.files_added,
                    "files_closed": t.stats.files_closed,
                    "truncations": t.stats.truncations,
                    "rotations": t.stats.rotations,
                    "read_errors": t.stats.read_errors,
                    "bytes_read": t.stats.bytes_read,
                }
                for t in self.tailers
            },
            "connections": [
                *(n.state() for n in self.nats_sources),
                *(
                    {"source": c.source, "type": "binance", **msgspec.structs.asdict(c.state())}
                    for c in self.binance
                ),
                *(s.state() for s in self.sinks),
            ],
            "live_clients": len(self.hub.clients),
            "live_dropped": self.hub.dropped,
        }


def build_live(config: Config, store: Store) -> LiveService:
    """Pipeline (recovered to the last commit), committer, tailers, HTTP ingest, live hub
    and metrics, not yet started."""
    pipeline = Pipeline(
        store, pipeline_settings(config), config.reference, config.marks,
        surveillance=config.surveillance,
    )  # fmt: skip
    pipeline.open()
    committer = Committer(store, pipeline.settings.max_pending_batches)
    known: dict[str, list[KnownPosition]] = {}
    for pos in store.load_positions():
        known.setdefault(pos.source, []).append(
            KnownPosition(pos.stream, pos.offset, pos.fingerprint, pos.dev, pos.inode)
        )
    tailers: list[FileTailer] = []
    inputs: list[TailInput] = []
    http_decoders: dict[str, Callable[[], StreamDecoder]] = {}
    http_limit = 0
    for src in config.sources:
        if src.type == "file":
            assert src.path is not None
            tailer = FileTailer(
                src.name,
                src.path,
                known.get(src.name, []),
                start_at=src.start_at,
                rotate_wait_s=src.rotate_wait_s,
            )
            tailers.append(tailer)
            inputs.append(TailInput(tailer, _tracked_decoder(config, src)))
        elif src.type == "http":
            http_decoders[src.name] = _http_decoder(config, src)
            http_limit = max(http_limit, src.max_body_bytes)
    runner = LiveRunner(pipeline, committer, list(inputs))
    nats_sources: list[NatsSource] = []
    binance: list[BinanceClient] = []
    for src in config.sources:
        if src.type == "nats":
            assert src.nats is not None
            info = nats_stream_info(src.name, src.nats)
            nats_sources.append(NatsSource(src.name, src.nats, runner, _decoder(config, src, info)))
        elif src.type == "binance":
            assert src.binance is not None
            binance.append(
                BinanceClient(src.binance, Cleaner(src.name, src, config.normalize), runner)
            )
    poll = min((s.poll_interval_ms for s in config.sources if s.type == "file"), default=5.0)
    runner.idle_poll_s = poll / 1000.0
    metrics = Metrics()
    hub = LiveHub()
    committer.listeners.append(metrics.observe_commit)
    if config.pipeline.live_push == "processed":
        runner.processed.append(hub.publish)
    else:
        committer.listeners.append(hub.publish)
    committer.timing.append(metrics.observe_commit_time)
    ingest = None
    if http_decoders:
        ingest = HttpIngest(runner, http_decoders, next(iter(http_decoders)), http_limit)
    sinks = [NatsSink(sink.nats, sink.name) for sink in config.sinks]
    for sink in sinks:
        committer.listeners.append(sink.publish)
    service = LiveService(
        config, store, pipeline, committer, runner, tailers, hub, metrics, ingest,
        nats_sources, binance, sinks,
    )  # fmt: skip
    publish = config.surveillance.publish
    if config.surveillance.enabled and (publish.nats_url or publish.webhook_url):
        service.risk_publisher = RiskPublisher(publish)
        committer.listeners.append(service.risk_publisher.publish)
    metrics.add_gauges(lambda: _live_gauges(service))
    return service


def _live_gauges(service: LiveService) -> dict[str, Any]:
    r = service.runner.stats
    return {
        "tradelog_pipeline_queue_depth": (
            "Items waiting in a queue",
            ["queue"],
            [(["inbox"], r.inbox_depth), (["commit"], service.committer.pending)],
        ),
        "tradelog_live_clients": (
            "Connected live WebSocket clients",
            [],
            [([], len(service.hub.clients))],
        ),
        "tradelog_source_files_followed": (
            "Files followed per source",
            ["source"],
            [([t.source], len(t.files)) for t in service.tailers],
        ),
    }


def _tracked_decoder(config: Config, src: SourceConfig) -> Callable[[Tracked], StreamDecoder]:
    def make(t: Tracked) -> StreamDecoder:
        assert t.stream is not None and t.fingerprint is not None
        head = os.pread(t.fh.fileno(), FINGERPRINT_BYTES, 0)
        ident = FileIdentity(t.path, t.dev, t.inode, len(head), t.fingerprint, head)
        info = StreamInfo(src.name, t.stream, t.path, t.fingerprint, t.dev, t.inode)
        cleaner = Cleaner(src.name, src, config.normalize)
        if src.format == "jsonl" and FastJsonl.applies(src):
            return StreamDecoder(info, cleaner, None, FastJsonl(cleaner, src.max_record_bytes))
        return StreamDecoder(info, cleaner, make_parser(src, ident), None)

    return make


def _http_decoder(config: Config, src: SourceConfig) -> Callable[[], StreamDecoder]:
    return _decoder(config, src, StreamInfo(src.name, "http", "http"))


def _decoder(config: Config, src: SourceConfig, info: StreamInfo) -> Callable[[], StreamDecoder]:
    """Decoders of a stream that is not a file (HTTP bodies, NATS messages)."""

    def make() -> StreamDecoder:
        cleaner = Cleaner(src.name, src, config.normalize)
        if src.format == "jsonl" and FastJsonl.applies(src):
            return StreamDecoder(info, cleaner, None, FastJsonl(cleaner, src.max_record_bytes))
        return StreamDecoder(info, cleaner, make_parser(src, None), None)

    return make


# ---------------------------------------------------------------------------- scale-out


def build_collector(config: Config) -> Collector:
    """``tradelog collect``: the file sources, resumed from the collector's checkpoint."""
    ckpt = load_checkpoint(config.scaleout.checkpoint)
    inputs: list[TailInput] = []
    for src in config.sources:
        if src.type != "file":
            continue
        assert src.path is not None
        tailer = FileTailer(src.name, src.path, ckpt.known(src.name), start_at=src.start_at,
                            rotate_wait_s=src.rotate_wait_s)  # fmt: skip
        inputs.append(TailInput(tailer, _tracked_decoder(config, src)))
    if not inputs:
        raise ConfigError("collect: the config has no file source ([[sources]] with a path)")
    return Collector(config.scaleout, inputs, ckpt)


def build_processor(
    config: Config, store: Store, partitions: list[int]
) -> tuple[Processor, Metrics]:
    """``tradelog process``: the given partitions into ``store``, and their metrics."""
    metrics = Metrics()
    processor = Processor(
        store,
        config.scaleout,
        partitions,
        pipeline_settings(config),
        config.reference,
        config.marks,
        listeners=[metrics.observe_commit],
        timing=[metrics.observe_commit_time],
        surveillance=config.surveillance,
    )
    metrics.add_gauges(processor.gauges)
    return processor, metrics
