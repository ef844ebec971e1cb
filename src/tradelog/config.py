"""The configuration file (TOML), validated at start with messages that name the key.

Every component owns its settings struct (clean, csv, fix, regex, marks, reference data);
this module composes them, applies ``TRADELOG_*`` environment overrides, resolves
relative paths against the config file's folder, and checks what msgspec cannot
(unique source names, a path for file sources, regex rules that compile…).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from tradelog.analytics.rules import PairRule, check_rule_names
from tradelog.api.auth import Token, parse_env_tokens
from tradelog.model.reference import ReferenceData
from tradelog.parsing.csv import CsvSettings
from tradelog.parsing.fix import FixSettings
from tradelog.parsing.regex_rules import RegexSettings
from tradelog.sources.settings import (
    BinanceSettings,
    NatsSinkSettings,
    NatsSourceSettings,
    RiskPublisherSettings,
    ScaleoutSettings,
)
from tradelog.stages.clean import Cleaner, CleanSettings, Normalization
from tradelog.stages.mark import MarkSettings
from tradelog.storage.base import DEFAULT_STORE_URL, parse_store_url
from tradelog.surveillance.engine import SurveillanceSettings

Format = Literal["jsonl", "logfmt", "csv", "fix", "regex"]
FORMATS: tuple[str, ...] = ("jsonl", "logfmt", "csv", "fix", "regex")


class ConfigError(ValueError):
    """A configuration problem; the message names the key."""


class SourceConfig(CleanSettings, kw_only=True, forbid_unknown_fields=True):
    """One source (``[[sources]]``): where records come from and how they are read."""

    name: str
    type: Literal["file", "http", "nats", "binance"] = "file"
    path: str | None = None
    """File glob (``logs/engine_*.log``), relative to the config file's folder."""
    poll_interval_ms: float = 5.0
    """file: how often files are checked for new data while idle."""
    rotate_wait_s: float = 1.0
    """file: how long a rotated-away file is kept open after its last growth."""
    max_body_bytes: int = 8 << 20
    """http: larger request bodies get 413."""
    format: Format = "jsonl"
    start_at: Literal["beginning", "end"] = "beginning"
    """Where to start in a file seen for the first time."""
    max_record_bytes: int = 1 << 20
    csv: CsvSettings | None = None
    fix: FixSettings | None = None
    regex: RegexSettings | None = None
    nats: NatsSourceSettings | None = None
    """nats: the stream, subject and durable consumer to read (``[sources.nats]``)."""
    binance: BinanceSettings | None = None
    """binance: symbols and streams to follow (``[sources.binance]``)."""


class SinkConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One sink (``[[sinks]]``): where committed events are published."""

    name: str
    type: Literal["nats"] = "nats"
    nats: NatsSinkSettings = msgspec.field(default_factory=NatsSinkSettings)


class StoreConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: str = DEFAULT_STORE_URL
    memory_limit: str | None = "2GB"
    """DuckDB's buffer memory (its own data, not the pipeline's); a size or a share of RAM
    (``"25%"``). Exact quantiles cannot spill: at 256 MB the full-range latency analysis of a
    10 M-event store can fail for lack of memory, and markouts spill ~1 GB (measured in
    docs/benchmarks.md); 2 GB halves their time, more gains nothing measurable."""
    replay_memory_limit: str | None = "256MB"
    """DuckDB's buffer memory during ``tradelog replay``: no query runs there, so a smaller
    pool keeps the peak memory of a long replay lower (peak RSS of a 10 M-event replay:
    1,396 MiB at 512 MB, 1,231 MiB at 256 MB, same speed; docs/benchmarks.md). Either limit
    must hold the rows between two checkpoints (128 MB of log); the state snapshot is
    written in 1 MiB rows, so its size does not count (ADR 0016)."""
    threads: int | None = None
    """DuckDB worker threads (default: one per core)."""
    retention_days: int | None = None
    """PostgreSQL: drop day partitions of events older than this many days (at start and
    daily); None keeps everything."""


class PipelineConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    batch_events: int = 4096
    """Records per micro-batch while following live sources (latency matters)."""
    replay_batch_events: int = 16384
    """Records per micro-batch in ``replay`` (throughput matters; fewer commits)."""
    max_pending_batches: int = 2
    snapshot_interval_s: float = 30.0
    size_window: int = 100
    """Order sizes in the rolling mean of the large-size rule."""
    max_terminal_orders: int = 100_000
    """Finished orders kept in memory for late events."""
    live_push: Literal["processed", "committed"] = "processed"
    """When events reach ``/log_stream/live``: as soon as their batch is processed (the
    store commit runs beside the push; a batch that fails to commit stops the pipeline and
    is read again from its source on restart), or only after the commit (adds one commit,
    a few ms, to the tape's latency). HTTP replies and NATS acks always wait for the commit."""


class ServerConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8000


class AuthConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    tokens: list[Token] = []
    """Bearer tokens with role read or admin; ``TRADELOG_AUTH_TOKENS=read:abc,admin:xyz``
    adds more. None: the API is open (it binds 127.0.0.1 by default)."""


class SurveillanceConfig(SurveillanceSettings, kw_only=True, forbid_unknown_fields=True):
    """``[surveillance]``: detector parameters, risk limits and where risk alerts go
    (``[surveillance.publish]``). Accounts → owners come from ``[reference.accounts]``."""

    publish: RiskPublisherSettings = msgspec.field(default_factory=RiskPublisherSettings)


class ReportConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    capital: float | None = None
    """Capital base of report returns (E = capital + PnL); None: return ratios are null."""
    periods_per_year: float | None = None
    """Override of the periods per year (default: 24/7 calendar from the sampling interval)."""

    def __post_init__(self) -> None:
        for name in ("capital", "periods_per_year"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name}: must be > 0; was {value}")


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sources: list[SourceConfig] = []
    sinks: list[SinkConfig] = []
    report: ReportConfig = msgspec.field(default_factory=ReportConfig)
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    normalize: Normalization = msgspec.field(default_factory=Normalization)
    reference: ReferenceData = msgspec.field(default_factory=ReferenceData)
    marks: MarkSettings = msgspec.field(default_factory=MarkSettings)
    pipeline: PipelineConfig = msgspec.field(default_factory=PipelineConfig)
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    surveillance: SurveillanceConfig = msgspec.field(default_factory=SurveillanceConfig)
    scaleout: ScaleoutSettings = msgspec.field(default_factory=ScaleoutSettings)
    """Scale-out (``collect`` / ``process``): NATS stream, partitions, batching."""
    pairs: list[PairRule] = []
    """Rule alerts on pair analytics (``[[pairs]]``: name, a, b, timeframe, window, expr)."""

    def all_tokens(self, environ: dict[str, str] | None = None) -> list[Token]:
        env = os.environ if environ is None else environ
        extra = env.get("TRADELOG_AUTH_TOKENS", "")
        return [*self.auth.tokens, *(parse_env_tokens(extra) if extra else [])]


_PATH_RE = re.compile(r"`\$((?:\.[A-Za-z_][\w-]*|\[\d+\])*)`")


def _friendly(exc: msgspec.ValidationError) -> str:
    """'Object contains unknown field `pth` - at `$.sources[0]`' → 'sources[0]: unknown key pth'."""
    text = str(exc)
    path = ""
    m = _PATH_RE.search(text)
    if m:
        path = m.group(1).lstrip(".")
        text = text[: m.start()].rstrip()
        text = text.removesuffix("- at").rstrip(" -")
    unknown = re.match(r"Object contains unknown field `([^`]+)`", text)
    if unknown:
        key = f"{path}.{unknown.group(1)}" if path else unknown.group(1)
        return f"{key}: unknown key"
    missing = re.match(r"Object missing required field `([^`]+)`", text)
    if missing:
        key = f"{path}.{missing.group(1)}" if path else missing.group(1)
        return f"{key}: required key is missing"
    field_msg = re.match(r"([A-Za-z_]\w*): (.*)", text, re.DOTALL)
    if field_msg and path:  # a struct's own check naming its field: "expr: …"
        return f"{path}.{field_msg.group(1)}: {field_msg.group(2)}"
    return f"{path or '(top level)'}: {text[0].lower() + text[1:] if text else text}"


def _env_overrides(data: dict[str, Any], environ: dict[str, str]) -> None:
    """``TRADELOG_STORE_URL=…`` sets ``store.url``; nested keys match the longest field name
    (``TRADELOG_MARKS_LATENCY_MS`` → ``marks.latency_ms``). Values are TOML scalars."""
    for name, raw in environ.items():
        if not name.startswith("TRADELOG_") or name in ("TRADELOG_CONFIG", "TRADELOG_AUTH_TOKENS"):
            continue
        rest = name[len("TRADELOG_") :].lower()
        path = _match_path(Config, rest)
        if path is None:
            raise ConfigError(f"environment variable {name} matches no config key")
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        target = data
        for key in path[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise ConfigError(f"environment variable {name}: {'.'.join(path)} is not a table")
        target[path[-1]] = value


def _match_path(cls: type, rest: str) -> list[str] | None:
    fields = getattr(cls, "__struct_fields__", ())
    hints = msgspec.structs.fields(cls) if fields else ()
    for f in sorted(hints, key=lambda f: -len(f.name)):
        if rest == f.name:
            return [f.name]
        if rest.startswith(f.name + "_"):
            sub = f.type
            if isinstance(sub, type) and hasattr(sub, "__struct_fields__"):
                tail = _match_path(sub, rest[len(f.name) + 1 :])
                if tail is not None:
                    return [f.name, *tail]
    return None


def load_config(
    path: str | os.PathLike[str] | None, environ: dict[str, str] | None = None
) -> Config:
    """Reads, overrides from the environment, validates; raises ConfigError."""
    env = dict(os.environ if environ is None else environ)
    data: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {p} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: invalid TOML: {exc}") from None
        base = p.resolve().parent
    _env_overrides(data, env)
    try:
        config = msgspec.convert(data, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(_friendly(exc)) from None
    return validate(config, base)


def validate(config: Config, base: Path) -> Config:
    """Checks beyond types; resolves relative paths against ``base``."""
    seen: set[str] = set()
    for i, src in enumerate(config.sources):
        key = f"sources[{i}]"
        if not src.name or not re.fullmatch(r"[A-Za-z0-9_.:-]+", src.name):
            raise ConfigError(f"{key}.name: must be letters, digits, _ . : - ; was {src.name!r}")
        if src.name in seen:
            raise ConfigError(f"{key}.name: duplicate source name {src.name!r}")
        seen.add(src.name)
        if src.type == "file" and src.path and not os.path.isabs(src.path):
            src.path = str(base / src.path)
        if src.format == "regex" and src.regex is None:
            raise ConfigError(f"{key}.regex: the regex format needs [sources.regex] with rules")
        if src.type == "nats" and src.nats is None:
            raise ConfigError(f"{key}.nats: a nats source needs [sources.nats] (stream, subject)")
        if src.type == "binance" and src.binance is None:
            raise ConfigError(f"{key}.binance: a binance source needs [sources.binance] (symbols)")
        if src.type != "nats" and src.nats is not None:
            raise ConfigError(f'{key}.nats: only for type = "nats" (type is {src.type})')
        if src.type != "binance" and src.binance is not None:
            raise ConfigError(f'{key}.binance: only for type = "binance" (type is {src.type})')
        if src.format != "regex" and src.regex is not None:
            raise ConfigError(f'{key}.regex: only for format = "regex" (format is {src.format})')
        try:
            check_source(src)
        except ValueError as exc:
            raise ConfigError(f"{key} ({src.name}): {exc}") from None
    try:
        parse_store_url(config.store.url)
    except ValueError as exc:
        raise ConfigError(f"store.url: {exc}") from None
    kind, path = parse_store_url(config.store.url)
    if kind == "duckdb" and not os.path.isabs(path):
        config.store.url = duckdb_url(base / path)
    for name, venue in config.reference.venues.items():
        try:
            venue.session_minutes()
            ZoneInfo(venue.time_zone)
        except (ValueError, KeyError, ZoneInfoNotFoundError) as exc:
            raise ConfigError(f"reference.venues.{name}: {exc}") from None
    try:
        config.all_tokens()
    except ValueError as exc:
        raise ConfigError(f"TRADELOG_AUTH_TOKENS: {exc}") from None
    try:
        check_rule_names(config.pairs)
    except ValueError as exc:
        raise ConfigError(f"pairs{exc}") from None
    if not os.path.isabs(config.scaleout.checkpoint):
        config.scaleout.checkpoint = str(base / config.scaleout.checkpoint)
    if config.pipeline.batch_events < 1:
        raise ConfigError("pipeline.batch_events: must be >= 1")
    return config


def duckdb_url(path: str | os.PathLike[str]) -> str:
    """``duckdb:///abs/path`` for a path (three slashes, then the absolute path's own)."""
    absolute = str(Path(path).resolve())
    return "duckdb://" + absolute if absolute.startswith("/") else "duckdb:///" + absolute


def require_paths(config: Config) -> None:
    """Following files (``run``) needs a path glob on every file source; ``replay`` takes
    its files from the command line."""
    for i, src in enumerate(config.sources):
        if src.type == "file" and not src.path:
            raise ConfigError(f"sources[{i}].path: required for file sources")


def check_source(src: SourceConfig) -> None:
    """Builds what a source needs once, so errors show at start, not at the first line."""
    Cleaner(src.name, src)
    if src.regex is not None:
        settings = src.regex
        if settings.path_pattern and settings.date is None:
            # the date may come from each file's name: check the rest with a stand-in date
            settings = msgspec.structs.replace(settings, date="2000-01-01")
        settings.build(src.path or "")
