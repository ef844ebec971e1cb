"""The store protocol: what the pipeline writes and what the API reads.

A ``CommitBatch`` is written in one transaction: events, rejects, anomaly marks, finished
orders, the source positions and counters that produced them, and optionally a state
snapshot. After ``commit`` returns, all of it is durable; before, none of it is visible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from tradelog.model.alerts import Alert, ProfileRow
from tradelog.model.events import AnomalyMark, Event, Reject
from tradelog.model.orders import OrderRecord
from tradelog.model.positions import RoundTrip

if TYPE_CHECKING:
    from tradelog.storage.sql import Sql


class StreamPosition(msgspec.Struct, kw_only=True):
    """Where a stream was read up to, and the counters of what its records became.

    In a ``CommitBatch`` the counters are increments; as loaded from the store, totals.
    """

    source: str
    stream: str
    src_ref: str
    offset: int
    fingerprint: str = ""
    dev: int = 0
    inode: int = 0
    lines_read: int = 0
    events: int = 0
    rejects: int = 0
    duplicates: int = 0
    ignored: int = 0


@dataclass(slots=True)
class CommitBatch:
    events: list[Event]
    id_hashes: npt.NDArray[np.int64]
    rejects: list[Reject] = field(default_factory=list)
    reject_hashes: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    marks: list[AnomalyMark] = field(default_factory=list)
    orders: list[OrderRecord] = field(default_factory=list)
    round_trips: list[RoundTrip] = field(default_factory=list)
    order_rewrites: set[str] = field(default_factory=set)
    """Orders already stored as finished whose row this batch replaces (late events)."""
    order_placeholders: set[str] = field(default_factory=set)
    """Orders known only from later events (no order_new seen): stored only if absent."""
    positions: list[StreamPosition] = field(default_factory=list)
    snapshot: tuple[int, int, bytes] | None = None
    """(partition, seq, state bytes) to save with this batch: ``PartitionState.snapshot``'s
    stored form, already compressed; a store keeps the bytes as they are and
    ``load_snapshot`` returns them unchanged (``PartitionState.restore`` unpacks)."""
    alerts: list[Alert] = field(default_factory=list)
    """Surveillance alerts opened or updated (upserted; status and history are kept)."""
    profiles: list[ProfileRow] = field(default_factory=list)
    """Account profiles to upsert."""
    on_commit: list[Callable[[CommitBatch], None]] = field(default_factory=list)
    """Run by the committer after the transaction committed (HTTP replies, NATS acks)."""
    on_error: list[Callable[[BaseException], None]] = field(default_factory=list)
    """Run instead when the batch could not be committed."""
    prepared: object | None = None
    """The batch in the store's write form, set by ``Store.prepare`` (store-specific;
    None: ``commit`` converts it itself)."""


@dataclass(slots=True)
class EventFilter:
    """Common filters of read queries; times are UTC ns, ``end`` exclusive."""

    start: int | None = None
    end: int | None = None
    symbol: str | None = None
    venue: str | None = None
    strategy: str | None = None
    account: str | None = None
    kinds: tuple[str, ...] = ()


@dataclass(slots=True)
class AlertFilter:
    """Filters of alert queries; ``start``/``end`` (UTC ns) select alerts whose window
    overlaps [start, end)."""

    status: str | None = None
    type: str | None = None
    level: str | None = None
    symbol: str | None = None
    account: str | None = None
    strategy: str | None = None
    start: int | None = None
    end: int | None = None


class Store(Protocol):
    """Implemented by the DuckDB store (embedded default) and the PostgreSQL store."""

    url: str
    sql: Sql
    """Dialect helpers for the analysis queries (storage/queries)."""

    # ---- write side (pipeline) ------------------------------------------
    def prepare(self, batch: CommitBatch) -> None:
        """Converts the batch to the store's write form on the caller's thread (replay's
        producer), so the committer thread only writes; ``commit`` converts what was not
        prepared. Optional for a caller, cheap to skip for a store."""
        ...

    def commit(self, batch: CommitBatch) -> None: ...

    def load_positions(self) -> list[StreamPosition]: ...

    def load_id_hashes(self) -> npt.NDArray[np.int64]: ...

    def stored_event_ids(
        self, event_ids: list[str], hashes: list[int] | None = None
    ) -> set[str]: ...

    def load_snapshot(self, partition: int) -> tuple[int, bytes] | None: ...

    def events_after(self, seq: int, limit: int) -> list[Event]: ...

    def max_seq(self) -> int: ...

    # ---- read side (API) -------------------------------------------------
    def latest_ts(self) -> int | None: ...

    def statistics(self) -> dict[str, Any]: ...

    def recent(self, flt: EventFilter, limit: int) -> list[dict[str, Any]]: ...

    def order_events(self, order_id: str) -> list[Event]: ...

    def order_row(self, order_id: str) -> dict[str, Any] | None: ...

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Read-only SQL; results as Arrow."""
        ...

    def query_batches(
        self, sql: str, params: list[Any] | None = None, rows: int = 1 << 20
    ) -> Iterator[pa.RecordBatch]:
        """Read-only SQL; results as Arrow batches of at most ``rows`` rows, in the order
        the query yields them (memory bounded by a batch, not the result)."""
        ...

    # ---- surveillance alerts (storage/queries/alerts.py holds the shared SQL) ---
    def alert_transition(
        self, alert_id: str, action: str, actor: str, note: str | None, ts: int
    ) -> dict[str, Any]:
        """Validates and applies a lifecycle action and appends its history row, in one
        transaction; returns the alert. Raises AlertNotFoundError / IllegalTransitionError."""
        ...

    def alerts(self, flt: AlertFilter, limit: int) -> list[dict[str, Any]]: ...

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        """One alert with its ``history`` (oldest first), or None."""
        ...

    def alert_history(self, alert_ids: list[str]) -> dict[str, list[dict[str, Any]]]: ...

    def events_by_ids(self, event_ids: list[str]) -> list[dict[str, Any]]: ...

    def account_profiles(self, account: str) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


DEFAULT_STORE_URL = "duckdb:///./tradelog-data/tradelog.duckdb"


def parse_store_url(url: str) -> tuple[str, str]:
    """('duckdb', path) or ('postgresql', dsn); raises ValueError naming the problem.

    >>> parse_store_url("duckdb:///tmp/t.duckdb")
    ('duckdb', '/tmp/t.duckdb')
    >>> parse_store_url("duckdb:///./data/t.duckdb")
    ('duckdb', './data/t.duckdb')
    """
    if url.startswith("duckdb://"):
        path = url[len("duckdb://") :]
        if path.startswith(("/./", "/../")):
            path = path[1:]
        elif path.startswith("//"):  # duckdb:////abs/path, as a joined absolute path gives
            path = "/" + path.lstrip("/")
        if not path or path == "/":
            raise ValueError(f"store URL {url!r} has no file path (duckdb:///path/file.duckdb)")
        return "duckdb", path
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql", url
    raise ValueError(
        f"store URL {url!r} must start with duckdb:/// or postgresql:// "
        "(e.g. duckdb:///./tradelog-data/tradelog.duckdb)"
    )
