"""Settings of the network sources and sinks (config ``[[sources]]`` of type ``nats`` and
``binance``, ``[nats_sink]``, ``[scaleout]``, ``[surveillance.publish]``), with their
validation.

They live apart from the clients that use them so that reading a config (and every command
that does, such as ``replay`` and ``check-config``) does not import the NATS, PostgreSQL
and WebSocket client libraries.
"""

from __future__ import annotations

import re
from typing import Final, Literal

import msgspec

# ---------------------------------------------------------------------------- Binance

StreamType = Literal["trade", "aggTrade", "bookTicker", "depth"]
STREAM_TYPES: Final[tuple[str, ...]] = ("trade", "aggTrade", "bookTicker", "depth")
MAX_STREAMS_PER_CONNECTION: Final = 1024
"""Binance refuses more streams on one connection."""
CONNECTION_LIFETIME_S: Final = 24 * 3600.0
"""Binance closes every connection after 24 hours."""
SYMBOL_RE: Final = re.compile(r"[A-Za-z0-9]{2,30}")


class BinanceSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What to follow on Binance spot and how (a ``binance`` source's settings)."""

    symbols: list[str]
    """Symbols to follow (``BTCUSDT``), any case; sent lower-case as Binance requires."""
    streams: list[StreamType] = msgspec.field(default_factory=lambda: ["trade", "bookTicker"])
    """Streams per symbol: ``trade``, ``aggTrade``, ``bookTicker``, ``depth`` (the diff depth
    stream at 100 ms, kept as a local order book)."""
    ws_url: str = "wss://stream.binance.com:9443"
    """WebSocket base URL; ``wss://data-stream.binance.vision`` is the market-data-only host."""
    rest_url: str = "https://api.binance.com"
    """REST base URL, for depth snapshots."""
    venue: str = "BINANCE"
    """Venue written on every event."""
    reconnect_after_s: float = 23 * 3600.0
    """Renew the connection after this long, before Binance cuts it at 24 h."""
    backoff_initial_s: float = 1.0
    """First reconnect delay bound; each failure doubles it (full jitter: uniform in [0, bound])."""
    backoff_max_s: float = 60.0
    """Upper bound of the reconnect delay; a connection that lived this long resets it."""
    open_timeout_s: float = 10.0
    """Timeout of the WebSocket opening handshake."""
    ping_interval_s: float | None = 20.0
    """Our own keepalive pings (detect a dead TCP connection); None disables them. Server
    pings are answered whatever this says."""
    ping_timeout_s: float | None = 20.0
    """Drop the connection when our ping gets no pong within this time; None never drops."""
    depth_snapshot_limit: int = 1000
    """Levels requested in a depth snapshot (1–5000; 1000 costs 50 request weight)."""
    depth_levels_kept: int = 20
    """Levels per side published by ``book(symbol)`` for the dashboard."""
    depth_quotes: Literal["on_change", "every_update"] = "on_change"
    """Emit a depth quote when the top of book changed (``on_change``) or after every
    applied update (``every_update``)."""
    snapshot_timeout_s: float = 10.0
    """Timeout of a REST depth snapshot request."""
    flush_interval_ms: float = 5.0
    """Records received within this window go to the runner as one submission."""
    flush_max_records: int = 500
    """… or as soon as this many are waiting."""
    max_buffered_records: int = 50_000
    """Records kept while the runner refuses (inbox full); beyond it the oldest quotes are
    dropped, then the oldest trades, all counted."""

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ValueError("symbols: must list at least one symbol")
        seen: set[str] = set()
        for sym in self.symbols:
            if not SYMBOL_RE.fullmatch(sym):
                raise ValueError(f"symbols: {sym!r} is not a Binance symbol (letters and digits)")
            if sym.upper() in seen:
                raise ValueError(f"symbols: {sym!r} is listed twice")
            seen.add(sym.upper())
        if not self.streams:
            raise ValueError(f"streams: must list at least one of {', '.join(STREAM_TYPES)}")
        if len(set(self.streams)) != len(self.streams):
            raise ValueError(f"streams: listed twice in {self.streams}")
        count = len(self.symbols) * len(self.streams)
        if count > MAX_STREAMS_PER_CONNECTION:
            raise ValueError(
                f"symbols × streams must be at most {MAX_STREAMS_PER_CONNECTION} streams per "
                f"connection; was {count}"
            )
        if not self.ws_url.startswith(("ws://", "wss://")):
            raise ValueError(f"ws_url: must start with ws:// or wss://; was {self.ws_url!r}")
        if not self.rest_url.startswith(("http://", "https://")):
            raise ValueError(
                f"rest_url: must start with http:// or https://; was {self.rest_url!r}"
            )
        if not 0 < self.reconnect_after_s < CONNECTION_LIFETIME_S:
            raise ValueError(
                "reconnect_after_s: must be > 0 and below Binance's 24 h cut (86400); "
                f"was {self.reconnect_after_s}"
            )
        if not 0 < self.backoff_initial_s <= self.backoff_max_s:
            raise ValueError(
                "backoff: need 0 < backoff_initial_s <= backoff_max_s; was "
                f"{self.backoff_initial_s} and {self.backoff_max_s}"
            )
        for name in ("open_timeout_s", "snapshot_timeout_s", "flush_interval_ms"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0; was {getattr(self, name)}")
        for name in ("ping_interval_s", "ping_timeout_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name}: must be > 0 (or absent to disable); was {value}")
        if not 1 <= self.depth_snapshot_limit <= 5000:
            raise ValueError(
                f"depth_snapshot_limit: must be 1–5000; was {self.depth_snapshot_limit}"
            )
        if not 1 <= self.depth_levels_kept <= self.depth_snapshot_limit:
            raise ValueError(
                "depth_levels_kept: must be between 1 and depth_snapshot_limit "
                f"({self.depth_snapshot_limit}); was {self.depth_levels_kept}"
            )
        if self.flush_max_records < 1:
            raise ValueError(f"flush_max_records: must be >= 1; was {self.flush_max_records}")
        if self.max_buffered_records < self.flush_max_records:
            raise ValueError(
                "max_buffered_records: must be >= flush_max_records "
                f"({self.flush_max_records}); was {self.max_buffered_records}"
            )


# ---------------------------------------------------------------------------- NATS

NAME_RE: Final = re.compile(r"[^\s.*>]+")
TOKEN_RE: Final = re.compile(r"[^\s.*>]+|\*|>")

Storage = Literal["file", "memory"]


def check_setting(ok: bool, key: str, expected: str, value: object) -> None:
    if not ok:
        raise ValueError(f"{key}: must be {expected}; was {value!r}")


def valid_subject(subject: str, wildcards: bool) -> bool:
    """A NATS subject: dot-separated non-empty tokens without spaces; ``*`` and a final
    ``>`` only where wildcards are allowed.

    >>> valid_subject("trades.>", True), valid_subject("trades.>", False)
    (True, False)
    >>> valid_subject("a..b", True), valid_subject("a.>.b", True)
    (False, False)
    """
    tokens = subject.split(".")
    for i, token in enumerate(tokens):
        if not TOKEN_RE.fullmatch(token):
            return False
        if token in ("*", ">") and not wildcards:
            return False
        if token == ">" and i != len(tokens) - 1:
            return False
    return True


class NatsSourceSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where a ``nats`` source reads: a stream, a filter subject and a durable consumer."""

    url: str = "nats://127.0.0.1:4222"
    """NATS server URL."""
    stream: str
    """JetStream stream to read (created with ``subjects`` if it does not exist)."""
    subject: str
    """Filter subject of the consumer (``trades.>``): what this source reads."""
    subjects: list[str] = []
    """Subjects of the stream when this source creates it; empty: ``[subject]``."""
    durable: str = "tradelog"
    """Durable consumer name: its position survives restarts; one per reading process. A
    new durable starts at the stream's first message."""
    storage: Storage = "file"
    """Storage of a stream this source creates."""
    max_age_s: float = 0.0
    """Age limit of a stream this source creates (0: none)."""
    max_bytes: int = -1
    """Size limit of a stream this source creates (-1: none)."""
    fetch_batch: int = 256
    """Messages per pull request (each message may hold many records)."""
    fetch_wait_s: float = 0.5
    """How long an idle pull waits for messages; also bounds how long ``stop`` waits for
    the pull in progress."""
    max_in_flight_records: int = 32_768
    """Fetching pauses while this many fetched records wait for their commit
    (backpressure and bounded memory; a few live batches, so commits stay large)."""
    ack_wait_s: float = 30.0
    """Consumer ack wait (when created): an unacked message is redelivered after it."""
    max_deliver: int = -1
    """Consumer delivery limit (when created); -1: redeliver until processed (no loss)."""
    drain_timeout_s: float = 10.0
    """On stop, how long in-flight batches may take to commit and be acked."""

    def __post_init__(self) -> None:
        check_setting(
            bool(NAME_RE.fullmatch(self.stream)), "stream", "a name without . * >", self.stream
        )
        check_setting(valid_subject(self.subject, True), "subject", "a NATS subject", self.subject)
        for s in self.subjects:
            check_setting(valid_subject(s, True), "subjects", "NATS subjects", self.subjects)
        check_setting(
            bool(NAME_RE.fullmatch(self.durable)), "durable", "a name without . * >", self.durable
        )
        check_setting(self.max_age_s >= 0, "max_age_s", ">= 0", self.max_age_s)
        check_setting(self.fetch_batch >= 1, "fetch_batch", ">= 1", self.fetch_batch)
        check_setting(self.fetch_wait_s > 0, "fetch_wait_s", "> 0", self.fetch_wait_s)
        check_setting(
            self.max_in_flight_records >= 1,
            "max_in_flight_records",
            ">= 1",
            self.max_in_flight_records,
        )
        check_setting(self.ack_wait_s > 0, "ack_wait_s", "> 0", self.ack_wait_s)
        check_setting(
            self.max_deliver == -1 or self.max_deliver >= 1,
            "max_deliver",
            "-1 or >= 1",
            self.max_deliver,
        )
        check_setting(self.drain_timeout_s >= 0, "drain_timeout_s", ">= 0", self.drain_timeout_s)

    @property
    def stream_subjects(self) -> list[str]:
        """Subjects a stream created by this source gets."""
        return list(self.subjects) or [self.subject]


class NatsSinkSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where a ``nats`` sink publishes committed events."""

    url: str = "nats://127.0.0.1:4222"
    """NATS server URL."""
    stream: str = "TRADELOG_EVENTS"
    """Stream holding the published events (created on ``<subject_prefix>.>`` if missing)."""
    subject_prefix: str = "tradelog.events"
    """Events go to ``<subject_prefix>.<kind>`` (``tradelog.events.fill``)."""
    include_raw: bool = False
    """Also publish each event's raw source text (larger messages)."""
    max_pending: int = 64
    """Commit batches queued for publishing; when full, new batches are dropped (counted)."""
    max_in_flight: int = 256
    """Publishes awaiting their PubAck at once (bounded concurrency)."""
    storage: Storage = "file"
    """Storage of the stream when this sink creates it."""
    max_age_s: float = 86_400.0
    """Age limit of the stream when this sink creates it (0: none)."""

    def __post_init__(self) -> None:
        check_setting(
            bool(NAME_RE.fullmatch(self.stream)), "stream", "a name without . * >", self.stream
        )
        check_setting(
            valid_subject(self.subject_prefix, False),
            "subject_prefix",
            "a NATS subject without wildcards",
            self.subject_prefix,
        )
        check_setting(self.max_pending >= 1, "max_pending", ">= 1", self.max_pending)
        check_setting(self.max_in_flight >= 1, "max_in_flight", ">= 1", self.max_in_flight)
        check_setting(self.max_age_s >= 0, "max_age_s", ">= 0", self.max_age_s)


# ---------------------------------------------------------------------------- scale-out


class ScaleoutSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[scaleout]``: where collectors publish and processors read."""

    url: str = "nats://127.0.0.1:4222"
    stream: str = "TRADELOG_PARTITIONS"
    """JetStream stream of normalised events (created on ``<subject_prefix>.>`` if missing)."""
    subject_prefix: str = "tradelog.part"
    """Partition k is the subject ``<subject_prefix>.p<k>``."""
    partitions: int = 4
    """Number of partitions N; fixed for the life of a store (state is owned per partition)."""
    batch_events: int = 1000
    """Most events in one message."""
    linger_ms: float = 20.0
    """A flush waits at most this long for more records once it has some."""
    durable: str = "tradelog-worker"
    """Consumers are ``<durable>-p<k>``: one per partition, whichever worker owns it."""
    checkpoint: str = "./tradelog-data/collector.ckpt"
    """The collector's file positions and order routes (relative to the config file)."""
    checkpoint_interval_s: float = 1.0
    """Acknowledged positions are written at most this often (and at stop)."""
    route_cache: int = 500_000
    """Order ids whose symbol the collector remembers (events without a symbol)."""
    storage: Storage = "file"
    max_age_s: float = 0.0
    """Age limit of the stream when created (0: none)."""
    duplicate_window_s: float = 120.0
    """JetStream's ``Nats-Msg-Id`` window when the stream is created."""
    fetch_batch: int = 16
    """Messages per pull request of a processor (16 × up to ``batch_events``: about one
    micro-batch per fetch, so commits stay a few thousand events)."""
    max_in_flight_records: int = 32_768
    ack_wait_s: float = 30.0
    commit_retry_s: float = 300.0
    """How long a worker retries a commit that failed on a lost store connection (PostgreSQL
    restarting) before giving up; meanwhile it fetches nothing and JetStream keeps the data."""

    def __post_init__(self) -> None:
        def check(ok: bool, key: str, expected: str, value: object) -> None:
            if not ok:
                raise ValueError(f"{key}: must be {expected}; was {value!r}")

        check(bool(NAME_RE.fullmatch(self.stream)), "stream", "a name without . * >", self.stream)
        check(
            valid_subject(self.subject_prefix, False),
            "subject_prefix",
            "a NATS subject without wildcards",
            self.subject_prefix,
        )
        check(
            bool(NAME_RE.fullmatch(self.durable)), "durable", "a name without . * >", self.durable
        )
        check(1 <= self.partitions <= 4096, "partitions", "in 1..4096", self.partitions)
        check(self.batch_events >= 1, "batch_events", ">= 1", self.batch_events)
        check(self.linger_ms >= 0, "linger_ms", ">= 0", self.linger_ms)
        check(self.route_cache >= 1, "route_cache", ">= 1", self.route_cache)
        check(self.fetch_batch >= 1, "fetch_batch", ">= 1", self.fetch_batch)
        check(self.ack_wait_s > 0, "ack_wait_s", "> 0", self.ack_wait_s)
        check(self.commit_retry_s >= 0, "commit_retry_s", ">= 0", self.commit_retry_s)
        check(self.duplicate_window_s > 0, "duplicate_window_s", "> 0", self.duplicate_window_s)

    def subject(self, partition: int) -> str:
        return f"{self.subject_prefix}.p{partition}"

    def consumer(self, partition: int) -> str:
        return f"{self.durable}-p{partition}"


# ---------------------------------------------------------------------------- risk alerts


class RiskPublisherSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where risk alerts go (config ``[surveillance.publish]``); nothing is published when
    neither ``nats_url`` nor ``webhook_url`` is set."""

    nats_url: str | None = None
    subject_prefix: str = "tradelog.risk"
    webhook_url: str | None = None
    webhook_timeout_s: float = 2.0
    webhook_retries: int = 3
    """Attempts after the first one."""
    webhook_backoff_s: float = 0.5
    """Pause before the first retry; doubles each time."""
    max_pending: int = 1000
    """Messages queued per destination before new ones are dropped (and counted)."""

    def __post_init__(self) -> None:
        if self.webhook_url is not None and not self.webhook_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(f"webhook_url: must be http:// or https://; was {self.webhook_url!r}")
        if self.webhook_timeout_s <= 0:
            raise ValueError(f"webhook_timeout_s: must be > 0; was {self.webhook_timeout_s}")
        if self.webhook_retries < 0 or self.max_pending < 1:
            raise ValueError("webhook_retries must be >= 0 and max_pending >= 1")
