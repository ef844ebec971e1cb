"""Prometheus metrics (``/metrics``). Names follow ``tradelog_<component>_<name>_<unit>``,
counters end in ``_total``, labels come from bounded sets only (kind, reason, source,
venue, strategy — never order or account ids). The registry belongs to the app; nothing
is registered globally."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tradelog.model.events import EventKind
from tradelog.storage.base import CommitBatch

LATENCY_BUCKETS_MS: Final = (
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
)  # fmt: skip
SECONDS_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
)  # fmt: skip
MAX_LABEL_VALUES: Final = 200


class _Bounded:
    """Keeps a label's distinct values bounded: past the limit, values become ``other``."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        if value is None:
            return "none"
        if value in self.seen:
            return value
        if len(self.seen) >= self.limit:
            return "other"
        self.seen.add(value)
        return value


class _Gauges(Collector):
    """Gauges read at scrape time from a callable (queue depths, connection states…)."""

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        values = self.read()
        for name, spec in values.items():
            help_text, labels, samples = spec
            family = GaugeMetricFamily(name, help_text, labels=labels)
            for label_values, value in samples:
                family.add_metric(label_values, value)
            yield family


def observe_many(hist: Histogram, values: Sequence[float] | npt.NDArray[np.float64]) -> None:
    """``hist.observe(v)`` for every value, in one pass (per-event ``observe`` takes a lock
    and scans the buckets in Python: ~1 µs per event on the commit path). Uses the
    histogram's bucket bounds and value cells as ``observe`` does (prometheus_client 0.x,
    pinned by the lock file; ``tests/unit/api/test_metrics_bulk.py`` checks the result
    against ``observe``)."""
    arr = np.asarray(values, dtype=np.float64)
    if not arr.size:
        return
    bounds = np.asarray(hist._upper_bounds, dtype=np.float64)
    counts = np.bincount(np.searchsorted(bounds, arr, side="left"), minlength=len(bounds))
    hist._sum.inc(float(arr.sum()))
    for i, n in enumerate(counts.tolist()):
        if n:
            hist._buckets[i].inc(n)


class Metrics:
    """All tradelog metrics in one registry; ``observe_commit`` is a committer listener."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter(
            "tradelog_pipeline_events_total", "Events committed", ["kind", "source"], registry=r
        )
        self.rejects = Counter(
            "tradelog_pipeline_rejects_total", "Rejects committed", ["reason", "source"], registry=r
        )
        self.anomalies = Counter(
            "tradelog_mark_anomalies_total", "Anomaly marks", ["type", "severity"], registry=r
        )
        self.batch_events = Histogram(
            "tradelog_pipeline_batch_events",
            "Events per committed batch",
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 20000, 50000),
            registry=r,
        )
        self.commit_seconds = Histogram(
            "tradelog_store_commit_seconds",
            "Time to commit one batch",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.lag_seconds = Histogram(
            "tradelog_pipeline_lag_seconds",
            "End-to-end lag: ingest time minus event time",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.ingest_lag_seconds = Histogram(
            "tradelog_pipeline_ingest_to_commit_seconds",
            "From reading a record to its commit",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.ack_latency = Histogram(
            "tradelog_orders_ack_latency_ms",
            "Order-to-ack latency by venue",
            ["venue"],
            buckets=LATENCY_BUCKETS_MS,
            registry=r,
        )
        self.filled_qty = Counter(
            "tradelog_orders_filled_qty_total",
            "Filled quantity of finished orders",
            ["strategy"],
            registry=r,
        )
        self.ordered_qty = Counter(
            "tradelog_orders_ordered_qty_total",
            "Ordered quantity of finished orders",
            ["strategy"],
            registry=r,
        )
        self._fill_rates: dict[str, list[float]] = {}
        self._realized: dict[tuple[str | None, str | None, str | None], tuple[str, float]] = {}
        """(strategy, account, symbol) → (strategy label, net realised PnL after its last fill)."""
        self._venue = _Bounded()
        self._source = _Bounded()
        self._strategy = _Bounded()
        self._gauge_readers: list[Callable[[], dict[str, Any]]] = []
        r.register(_Gauges(self._gauges))

    def add_gauges(self, read: Callable[[], dict[str, Any]]) -> None:
        """``read()`` → {name: (help, [label names], [([label values], value), …])}."""
        self._gauge_readers.append(read)

    def _gauges(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tradelog_orders_fill_rate_ratio": (
                "Filled / ordered quantity of finished orders, by strategy",
                ["strategy"],
                [([s], f / q) for s, (f, q) in self._fill_rates.items() if q > 0],
            ),
            "tradelog_pnl_realized_net": (
                "Realised PnL net of fees (average cost), by strategy, in quote currency",
                ["strategy"],
                [([s], v) for s, v in self._realized_by_strategy().items()],
            ),
        }
        for read in self._gauge_readers:
            out.update(read())
        return out

    def _realized_by_strategy(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for label, value in self._realized.values():
            out[label] = out.get(label, 0.0) + value
        return out

    def observe_commit(self, batch: CommitBatch) -> None:
        now = time.time_ns()
        counts: dict[tuple[str, str], int] = {}
        acks: dict[str | None, list[float]] = {}
        fill, ack = EventKind.FILL, EventKind.ORDER_ACK
        for ev in batch.events:
            kind = ev.kind
            key = (kind.value, ev.source)
            counts[key] = counts.get(key, 0) + 1
            if kind is fill and ev.realized_after is not None:
                net = ev.realized_after - (ev.fees_after or 0.0)
                pkey = (ev.strategy_id, ev.account_id, ev.symbol)
                self._realized[pkey] = (self._strategy(ev.strategy_id), net)
            elif kind is ack and ev.latency_ms is not None and ev.latency_ms >= 0:
                acks.setdefault(ev.venue, []).append(ev.latency_ms)
        for venue, values in acks.items():
            observe_many(self.ack_latency.labels(self._venue(venue)), values)
        for (kind_name, source), n in counts.items():
            self.events.labels(kind_name, self._source(source)).inc(n)
        for rj in batch.rejects:
            self.rejects.labels(rj.reason.value, self._source(rj.source)).inc()
        for m in batch.marks:
            self.anomalies.labels(m.type, m.severity.value).inc()
        for o in batch.orders:
            if o.qty is None:
                continue
            strategy = self._strategy(o.strategy_id)
            self.filled_qty.labels(strategy).inc(o.filled_qty)
            self.ordered_qty.labels(strategy).inc(o.qty)
            acc = self._fill_rates.setdefault(strategy, [0.0, 0.0])
            acc[0] += o.filled_qty
            acc[1] += o.qty
        self.batch_events.observe(len(batch.events))
        if batch.events:
            lags = np.fromiter(
                (ev.ts_ingest - ev.ts for ev in batch.events), np.float64, len(batch.events)
            )
            observe_many(self.lag_seconds, np.maximum(lags / 1e9, 0.0))
            first_read = min(ev.ts_ingest for ev in batch.events)
            self.ingest_lag_seconds.observe(max(0.0, (now - first_read) / 1e9))

    def observe_commit_time(self, seconds: float) -> None:
        self.commit_seconds.observe(seconds)
