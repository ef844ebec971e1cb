"""Composition root, service part: wires the long-running jobs from the config — the live
service of ``tradelog run`` and ``demo`` (pipeline, committer, file tailers, HTTP ingest,
NATS and Binance sources, sinks, live hub, metrics, and the API server around them) and the
scale-out ``collect`` / ``process`` of DESIGN §8. The batch job (``replay``) and the
factories both share are in ``app.py``."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
import nats.errors
import prometheus_client
import uvicorn

from tradelog.api.app import create_app
from tradelog.api.live import LiveHub
from tradelog.api.metrics import Metrics
from tradelog.app import make_parser, pipeline_settings
from tradelog.config import Config, ConfigError, SourceConfig
from tradelog.pipeline.batch import StreamInfo
from tradelog.pipeline.ingest import StreamDecoder
from tradelog.pipeline.live import LiveRunner
from tradelog.pipeline.runner import Committer, Pipeline
from tradelog.sources.binance_ws import BinanceClient
from tradelog.sources.file_replay import FINGERPRINT_BYTES, FileIdentity
from tradelog.sources.file_tail import FileTailer, KnownPosition, TailInput, Tracked
from tradelog.sources.http_ingest import HttpIngest
from tradelog.sources.nats_jetstream import NatsSink, NatsSource, nats_stream_info
from tradelog.sources.partitioned import Collector, Processor, load_checkpoint
from tradelog.sources.risk_publisher import RiskPublisher
from tradelog.stages.clean import Cleaner
from tradelog.stages.clean_jsonl import FastJsonl
from tradelog.storage.base import Store

NatsError: Final = nats.errors.Error
"""What the NATS client raises when it cannot connect or is refused (``process`` start)."""
STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
"""Signals that stop a service cleanly (the batch in flight is committed first)."""

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


# ---------------------------------------------------------------------------- serving


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM after shutting down, which would kill the process
    before the pipeline commits its last batch; here a signal only asks for shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve_live(service: LiveService, host: str, port: int) -> bool:
    """Runs the live loop in its thread and the API in this one until a signal; False
    when the server could not start (address in use)."""
    app = create_app(
        service.store,
        live=service.hub,
        ingest=service.ingest,
        metrics=service.metrics,
        snapshot=service.snapshot,
        tokens=service.config.all_tokens(),
        pair_rules=service.config.pairs,
        report_capital=service.config.report.capital,
        report_periods_per_year=service.config.report.periods_per_year,
    )
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    service.start()
    sys.stderr.write(
        f"tradelog running: API http://{host}:{port} (docs /docs, live ws /log_stream/live, "
        f"metrics /metrics) over {service.store.url}\n"
    )
    try:
        server.run()
    finally:
        service.stop()
    return bool(server.started)


def serve_api(store: Store, config: Config, host: str, port: int) -> None:
    """The API and dashboard over a store, with no sources (``tradelog serve``)."""
    app = create_app(
        store,
        tokens=config.all_tokens(),
        pair_rules=config.pairs,
        report_capital=config.report.capital,
        report_periods_per_year=config.report.periods_per_year,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


def serve_metrics(metrics: Metrics, port: int, host: str) -> None:
    """Prometheus ``/metrics`` of a worker on its own port, in a daemon thread."""
    prometheus_client.start_http_server(port, addr=host, registry=metrics.registry)
