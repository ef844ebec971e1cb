"""Prometheus metrics from committed batches: bounded labels, fill rate and PnL by strategy."""

from __future__ import annotations

import numpy as np
from prometheus_client import generate_latest

from tradelog.api.metrics import MAX_LABEL_VALUES, Metrics
from tradelog.model.events import Event, EventKind
from tradelog.storage.base import CommitBatch


def fill(strategy: str, account: str, realized: float, fees: float) -> Event:
    return Event(
        event_id=f"{strategy}{account}{realized}",
        kind=EventKind.FILL,
        ts=1,
        ts_ingest=2,
        source="s",
        strategy_id=strategy,
        account_id=account,
        symbol="X",
        realized_after=realized,
        fees_after=fees,
    )


def scrape(m: Metrics) -> str:
    return generate_latest(m.registry).decode()


def test_realized_pnl_gauge_sums_latest_value_per_key_by_strategy() -> None:
    m = Metrics()
    batch = [
        fill("mm", "a1", 10.0, 1.0),  # superseded by the next fill of the same key
        fill("mm", "a1", 25.0, 1.5),  # net 23.5
        fill("mm", "a2", -4.0, 0.5),  # net -4.5
        fill("tk", "a3", 7.0, 0.0),
    ]
    m.observe_commit(CommitBatch(events=batch, id_hashes=np.zeros(4, np.int64)))
    text = scrape(m)
    assert 'tradelog_pnl_realized_net{strategy="mm"} 19.0' in text
    assert 'tradelog_pnl_realized_net{strategy="tk"} 7.0' in text
    assert 'tradelog_pipeline_events_total{kind="fill",source="s"} 4.0' in text


def test_strategy_labels_are_bounded() -> None:
    m = Metrics()
    n = MAX_LABEL_VALUES + 50
    events = [fill(f"s{i}", "a", 1.0, 0.0) for i in range(n)]
    m.observe_commit(CommitBatch(events=events, id_hashes=np.zeros(n, np.int64)))
    labels = {
        line.split('strategy="')[1].split('"')[0]
        for line in scrape(m).splitlines()
        if line.startswith("tradelog_pnl_realized_net{")
    }
    assert "other" in labels and len(labels) == MAX_LABEL_VALUES + 1
