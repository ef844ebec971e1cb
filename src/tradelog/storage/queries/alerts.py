"""Alerts, their handling history and account profiles: the SQL both stores share.

Writes (inside the store's commit transaction, or ``alert_transition``'s own) use the
statements built here with the dialect's placeholder; reads go through ``Store.query``.
Detection updates never touch ``status``: only a person (``alert_transition``) changes it,
and every change appends a row to ``alert_history`` (append-only: no UPDATE, no DELETE).
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import msgspec

from tradelog.model.alerts import (
    Alert,
    AlertNotFoundError,
    IllegalTransitionError,
    ProfileRow,
    alert_columns,
    next_status,
)
from tradelog.storage.base import AlertFilter, Store

ALERT_COLUMNS: Final = (
    "alert_id", "type", "level", "risk_score", "symbol", "accounts", "strategy_id",
    "window_start", "window_end", "first_seen_ts", "last_seen_ts", "occurrences", "evidence",
)  # fmt: skip
_UPDATED: Final = tuple(c for c in ALERT_COLUMNS if c not in ("alert_id", "type", "first_seen_ts"))
PROFILE_COLUMNS: Final = (
    "account_id", "partition", "updated_ts", "orders", "cancels", "fills", "cancel_ratio",
    "order_to_trade", "median_order_size", "profile",
)  # fmt: skip
HISTORY_COLUMNS: Final = ("alert_id", "ts", "actor", "action", "from_status", "to_status", "note")
SYSTEM_ACTOR: Final = "system"


def upsert_alert_sql(p: str) -> str:
    """Insert a detected alert, or update its detection fields (status stays)."""
    cols = ", ".join(f'"{c}"' for c in (*ALERT_COLUMNS, "status", "created_ns", "updated_ns"))
    marks = ", ".join(p for _ in range(len(ALERT_COLUMNS) + 3))
    sets = ", ".join(f'"{c}" = excluded."{c}"' for c in (*_UPDATED, "updated_ns"))
    return (
        f"INSERT INTO alerts ({cols}) VALUES ({marks}) "
        f'ON CONFLICT ("alert_id") DO UPDATE SET {sets}'
    )


def upsert_alert_params(alert: Alert, now_ns: int) -> list[Any]:
    row = alert_columns(alert)
    return [*(row[c] for c in ALERT_COLUMNS), "active", now_ns, now_ns]


def system_history_sql(p: str) -> str:
    """A system history row (``open`` / ``escalate``) unless the same one is there already
    (a replay may emit a batch's alerts again)."""
    return (
        "INSERT INTO alert_history (alert_id, ts, actor, action, from_status, to_status, note) "
        f"SELECT {p}, {p}, {p}, {p}, {p}, {p}, {p} WHERE NOT EXISTS ("
        f"SELECT 1 FROM alert_history WHERE alert_id = {p} AND action = {p} AND ts = {p})"
    )


def system_history_params(alert: Alert) -> list[Any] | None:
    """Parameters of ``system_history_sql`` for a new or escalated alert, else None."""
    row = system_history_row(alert)
    if row is None:
        return None
    alert_id, ts, _actor, action = row[:4]
    return [*row, alert_id, action, ts]


def upsert_alerts_select_sql(table: str) -> str:
    """``upsert_alert_sql`` for every row of ``table`` (columns as in ``upsert_alert_params``,
    one row per alert id)."""
    names = (*ALERT_COLUMNS, "status", "created_ns", "updated_ns")
    cols = ", ".join(f'"{c}"' for c in names)
    sets = ", ".join(f'"{c}" = excluded."{c}"' for c in (*_UPDATED, "updated_ns"))
    return (
        f"INSERT INTO alerts ({cols}) SELECT {cols} FROM {table} "
        f'ON CONFLICT ("alert_id") DO UPDATE SET {sets}'
    )


def system_history_row(alert: Alert) -> list[Any] | None:
    """The system history row (``HISTORY_COLUMNS`` order) of a new or escalated alert."""
    if alert.change == "new":
        action, note, from_status = "open", f"detected: level {alert.level}", None
    elif alert.change == "escalate":
        action, note, from_status = "escalate", f"level raised to {alert.level}", "active"
    else:
        return None
    return [alert.alert_id, alert.last_seen_ts, SYSTEM_ACTOR, action, from_status, "active", note]


def system_history_select_sql(table: str) -> str:
    """``system_history_sql`` for every distinct row of ``table`` (``HISTORY_COLUMNS``)."""
    cols = ", ".join(HISTORY_COLUMNS)
    return (
        f"INSERT INTO alert_history ({cols}) SELECT DISTINCT {cols} FROM {table} h "
        "WHERE NOT EXISTS (SELECT 1 FROM alert_history a WHERE a.alert_id = h.alert_id "
        "AND a.action = h.action AND a.ts = h.ts)"
    )


def upsert_profiles_select_sql(table: str) -> str:
    """``upsert_profile_sql`` for every row of ``table`` (one per account and partition)."""
    cols = ", ".join(f'"{c}"' for c in PROFILE_COLUMNS)
    sets = ", ".join(f'"{c}" = excluded."{c}"' for c in PROFILE_COLUMNS[2:])
    return (
        f"INSERT INTO account_profiles ({cols}) SELECT {cols} FROM {table} "
        f'ON CONFLICT ("account_id", "partition") DO UPDATE SET {sets}'
    )


class _Cursor(Protocol):
    """What both stores' connections offer: ``execute(sql, params)`` → a cursor."""

    def execute(self, query: Any, params: Any = ..., /) -> Any: ...


def apply_transition(
    con: _Cursor, p: str, alert_id: str, action: str, actor: str, note: str | None, ts: int,
    lock: str = "",
) -> None:  # fmt: skip
    """A person's lifecycle action inside the caller's transaction: the new status and its
    history row (``lock``: ``FOR UPDATE`` where the store locks rows)."""
    row = con.execute(
        f"SELECT status FROM alerts WHERE alert_id = {p} {lock}", [alert_id]
    ).fetchone()
    if row is None:
        raise AlertNotFoundError(alert_id)
    status = str(row[0])
    to = next_status(status, action)
    if to is None:
        raise IllegalTransitionError(f"cannot {action} an alert that is {status}")
    con.execute(
        f"UPDATE alerts SET status = {p}, updated_ns = {p} WHERE alert_id = {p}", [to, ts, alert_id]
    )
    con.execute(
        f"INSERT INTO alert_history ({', '.join(HISTORY_COLUMNS)}) "
        f"VALUES ({', '.join(p for _ in HISTORY_COLUMNS)})",
        [alert_id, ts, actor, action, status, to, note],
    )


def upsert_profile_sql(p: str) -> str:
    cols = ", ".join(f'"{c}"' for c in PROFILE_COLUMNS)
    marks = ", ".join(p for _ in PROFILE_COLUMNS)
    sets = ", ".join(f'"{c}" = excluded."{c}"' for c in PROFILE_COLUMNS[2:])
    return (
        f"INSERT INTO account_profiles ({cols}) VALUES ({marks}) "
        f'ON CONFLICT ("account_id", "partition") DO UPDATE SET {sets}'
    )


def upsert_profile_params(row: ProfileRow) -> list[Any]:
    return [
        row.account_id, row.partition, row.updated_ts, row.orders, row.cancels, row.fills,
        row.cancel_ratio, row.order_to_trade, row.median_order_size,
        msgspec.json.encode(row.profile).decode(),
    ]  # fmt: skip


def _alert_dict(row: dict[str, Any]) -> dict[str, Any]:
    row["accounts"] = [a for a in (row.get("accounts") or "").split(",") if a]
    row["evidence"] = msgspec.json.decode(row["evidence"]) if row.get("evidence") else {}
    return row


def list_alerts(store: Store, flt: AlertFilter, limit: int) -> list[dict[str, Any]]:
    """Alerts matching the filter (window by overlap with [start, end)), newest first."""
    p = store.sql.p
    clauses: list[str] = []
    params: list[Any] = []
    for col, value in (("status", flt.status), ("type", flt.type), ("level", flt.level),
                       ("symbol", flt.symbol), ("strategy_id", flt.strategy)):  # fmt: skip
        if value is not None:
            clauses.append(f"{col} = {p}")
            params.append(value)
    if flt.account is not None:
        clauses.append(f"(',' || accounts || ',') LIKE {p}")
        params.append(f"%,{flt.account},%")
    if flt.start is not None:
        clauses.append(f"window_end >= {p}")
        params.append(flt.start)
    if flt.end is not None:
        clauses.append(f"window_start < {p}")
        params.append(flt.end)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    sql = f"SELECT * FROM alerts {where} ORDER BY last_seen_ts DESC, alert_id LIMIT {p}"
    rows: list[dict[str, Any]] = store.query(sql, [*params, limit]).to_pylist()
    return [_alert_dict(r) for r in rows]


def get_alert(store: Store, alert_id: str) -> dict[str, Any] | None:
    p = store.sql.p
    rows: list[dict[str, Any]] = store.query(
        f"SELECT * FROM alerts WHERE alert_id = {p}", [alert_id]
    ).to_pylist()
    return _alert_dict(rows[0]) if rows else None


def history(store: Store, alert_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Handling history per alert id, oldest first."""
    if not alert_ids:
        return {}
    p = store.sql.p
    marks = ", ".join(p for _ in alert_ids)
    rows: list[dict[str, Any]] = store.query(
        f"SELECT {', '.join(HISTORY_COLUMNS)} FROM alert_history "
        f"WHERE alert_id IN ({marks}) ORDER BY alert_id, ts, action",
        list(alert_ids),
    ).to_pylist()
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["alert_id"], []).append(r)
    return out


def events_by_ids(store: Store, event_ids: list[str]) -> list[dict[str, Any]]:
    """Stored events with these ids (without ``id_hash``), in event order."""
    if not event_ids:
        return []
    p = store.sql.p
    marks = ", ".join(p for _ in event_ids)
    table = store.query(f"SELECT * FROM events WHERE event_id IN ({marks}) ORDER BY ts, seq",
                        list(event_ids))  # fmt: skip
    if "id_hash" in table.column_names:
        table = table.drop_columns(["id_hash"])
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def profiles(store: Store, account: str) -> list[dict[str, Any]]:
    """An account's stored profiles (one per partition that saw it)."""
    p = store.sql.p
    rows: list[dict[str, Any]] = store.query(
        f"SELECT * FROM account_profiles WHERE account_id = {p} ORDER BY partition", [account]
    ).to_pylist()
    for r in rows:
        r["profile"] = msgspec.json.decode(r["profile"]) if r.get("profile") else {}
    return rows
