"""Read methods whose SQL is the same on every store, written once over ``Store.query``:
the statistics of ``/log_stream/statistics`` and the alert/profile reads. Each store class
inherits ``SharedReads`` and supplies ``query`` (and ``sql`` for the dialect)."""

from __future__ import annotations

from typing import Any, Protocol

import pyarrow as pa

from tradelog.storage.base import AlertFilter
from tradelog.storage.queries import alerts as alert_sql
from tradelog.storage.sql import Sql


class _Queryable(Protocol):
    sql: Sql

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table: ...


def _rows(store: _Queryable, sql: str) -> list[tuple[Any, ...]]:
    table = store.query(sql)
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return list(zip(*columns, strict=True)) if columns else []


def _counts(store: _Queryable, sql: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(_rows(store, sql), key=lambda r: str(r[0]))}


class SharedReads:
    """Mixin of the reads both stores answer with the same SQL."""

    def statistics(self: _Queryable) -> dict[str, Any]:
        sources: dict[str, dict[str, Any]] = {}
        for row in _rows(
            self,
            """
            SELECT source, sum(lines_read), sum(events), sum(rejects), sum(duplicates),
                   sum(ignored), count(*), max(updated_ns)
            FROM source_positions GROUP BY source ORDER BY source
            """,
        ):
            lines, ev, rej, dup, ign = (int(x) for x in row[1:6])
            sources[row[0]] = {
                "lines_read": lines,
                "events": ev,
                "rejects": rej,
                "duplicates": dup,
                "ignored": ign,
                "reconciled": lines == ev + rej + dup + ign,
                "streams": int(row[6]),
                "last_commit_ns": int(row[7]) if row[7] is not None else None,
            }
        span = _rows(self, "SELECT count(*), min(ts), max(ts) FROM events")
        orders = _rows(self, "SELECT count(*) FROM orders")
        return {
            "sources": sources,
            "events_by_kind": _counts(self, "SELECT kind, count(*) FROM events GROUP BY kind"),
            "rejects_by_reason": _counts(
                self, "SELECT reason, count(*) FROM rejects GROUP BY reason"
            ),
            "anomalies_by_type": _counts(
                self, "SELECT type, count(*) FROM anomalies GROUP BY type"
            ),
            "events_total": int(span[0][0]) if span else 0,
            "first_event_ns": int(span[0][1]) if span and span[0][1] is not None else None,
            "last_event_ns": int(span[0][2]) if span and span[0][2] is not None else None,
            "finished_orders": int(orders[0][0]) if orders else 0,
        }

    def alerts(self: Any, flt: AlertFilter, limit: int) -> list[dict[str, Any]]:
        return alert_sql.list_alerts(self, flt, limit)

    def alert(self: Any, alert_id: str) -> dict[str, Any] | None:
        found = alert_sql.get_alert(self, alert_id)
        if found is not None:
            found["history"] = alert_sql.history(self, [alert_id]).get(alert_id, [])
        return found

    def alert_history(self: Any, alert_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        return alert_sql.history(self, alert_ids)

    def events_by_ids(self: Any, event_ids: list[str]) -> list[dict[str, Any]]:
        return alert_sql.events_by_ids(self, event_ids)

    def account_profiles(self: Any, account: str) -> list[dict[str, Any]]:
        return alert_sql.profiles(self, account)
