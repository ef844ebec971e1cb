"""Table definitions and versioned migrations, shared by the DuckDB and PostgreSQL stores.

Migrations are frozen literals: a new column is a new migration, never an edit of an old
one. A test checks that the migrated tables have exactly the columns the Arrow codec
writes, so a forgotten migration fails in CI, not in production.
"""

from __future__ import annotations

from typing import Final, Literal

from tradelog.storage import position_checkpoints
from tradelog.storage.sql import Sql

Columns = tuple[tuple[str, str], ...]
Dialect = Literal["duckdb", "postgresql"]

_TYPES: Final[dict[Dialect, dict[str, str]]] = {
    "duckdb": {"text": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN",
               "bytes": "BLOB"},
    "postgresql": {"text": "TEXT", "int": "BIGINT", "float": "DOUBLE PRECISION",
                   "bool": "BOOLEAN", "bytes": "BYTEA"},
}  # fmt: skip

_EVENTS_V1: Final[Columns] = (
    ("event_id", "text"),
    ("kind", "text"),
    ("ts", "int"),
    ("ts_ingest", "int"),
    ("source", "text"),
    ("src_ref", "text"),
    ("src_offset", "int"),
    ("raw", "text"),
    ("attrs", "text"),
    ("symbol", "text"),
    ("venue", "text"),
    ("account_id", "text"),
    ("strategy_id", "text"),
    ("order_id", "text"),
    ("orig_order_id", "text"),
    ("venue_order_id", "text"),
    ("side", "text"),
    ("qty", "float"),
    ("price", "float"),
    ("order_type", "text"),
    ("tif", "text"),
    ("reason", "text"),
    ("exec_id", "text"),
    ("last_qty", "float"),
    ("last_px", "float"),
    ("cum_qty", "float"),
    ("leaves_qty", "float"),
    ("avg_px", "float"),
    ("liquidity", "text"),
    ("fee", "float"),
    ("fee_currency", "text"),
    ("counterparty_account", "text"),
    ("bid", "float"),
    ("ask", "float"),
    ("bid_size", "float"),
    ("ask_size", "float"),
    ("position", "float"),
    ("realized_pnl", "float"),
    ("unrealized_pnl", "float"),
    ("severity", "text"),
    ("component", "text"),
    ("message", "text"),
    ("seq", "int"),
    ("owner_id", "text"),
    ("root_order_id", "text"),
    ("context_from_order", "bool"),
    ("order_status", "text"),
    ("latency_ms", "float"),
    ("mkt_bid", "float"),
    ("mkt_ask", "float"),
    ("mkt_ts", "int"),
    ("arrival_mid", "float"),
    ("arrival_ts", "int"),
    ("slippage_bps", "float"),
    ("anomaly_severity", "text"),
    ("anomaly_types", "text"),
    ("id_hash", "int"),
)
_REJECTS_V1: Final[Columns] = (
    ("reject_id", "text"),
    ("source", "text"),
    ("src_ref", "text"),
    ("src_offset", "int"),
    ("reason", "text"),
    ("detail", "text"),
    ("raw", "text"),
    ("ts_ingest", "int"),
    ("field", "text"),
    ("id_hash", "int"),
)
_ANOMALIES_V1: Final[Columns] = (
    ("event_id", "text"),
    ("ts", "int"),
    ("kind", "text"),
    ("type", "text"),
    ("severity", "text"),
    ("value", "float"),
    ("threshold", "float"),
    ("symbol", "text"),
    ("venue", "text"),
    ("strategy_id", "text"),
    ("account_id", "text"),
    ("order_id", "text"),
    ("detail", "text"),
)
_ORDERS_V1: Final[Columns] = (
    ("order_id", "text"),
    ("status", "text"),
    ("symbol", "text"),
    ("venue", "text"),
    ("side", "text"),
    ("qty", "float"),
    ("price", "float"),
    ("order_type", "text"),
    ("tif", "text"),
    ("account_id", "text"),
    ("strategy_id", "text"),
    ("owner_id", "text"),
    ("venue_order_id", "text"),
    ("aliases", "text"),
    ("ts_new", "int"),
    ("ts_ack", "int"),
    ("ts_first_fill", "int"),
    ("ts_done", "int"),
    ("filled_qty", "float"),
    ("avg_px", "float"),
    ("fill_rate", "float"),
    ("notional", "float"),
    ("fees", "float"),
    ("n_fills", "int"),
    ("maker_qty", "float"),
    ("taker_qty", "float"),
    ("ack_latency_ms", "float"),
    ("fill_latency_ms", "float"),
    ("cancel_latency_ms", "float"),
    ("arrival_mid", "float"),
    ("arrival_ts", "int"),
    ("slippage_bps", "float"),
    ("reject_reason", "text"),
)
_POSITIONS_V1: Final[Columns] = (
    ("source", "text"),
    ("stream", "text"),
    ("src_ref", "text"),
    ("offset", "int"),
    ("fingerprint", "text"),
    ("dev", "int"),
    ("inode", "int"),
    ("lines_read", "int"),
    ("events", "int"),
    ("rejects", "int"),
    ("duplicates", "int"),
    ("ignored", "int"),
    ("updated_ns", "int"),
)
_SNAPSHOTS_V1: Final[Columns] = (
    ("partition", "int"),
    ("seq", "int"),
    ("saved_ns", "int"),
    ("data", "bytes"),
)


_SNAPSHOT_PARTS_V7: Final[Columns] = (
    ("partition", "int"),
    ("part", "int"),
    ("seq", "int"),
    ("saved_ns", "int"),
    ("data", "bytes"),
)
SNAPSHOT_PARTS: Final = "state_snapshot_parts"
"""DuckDB keeps a partition's state snapshot in rows of at most ``SNAPSHOT_PART_BYTES``
(duckdb_store.py): writing one large BLOB takes many times its size in memory."""


_ROUND_TRIPS_V2: Final[Columns] = (
    ("strategy_id", "text"), ("account_id", "text"), ("symbol", "text"), ("side", "text"),
    ("ts_open", "int"), ("ts_close", "int"), ("max_qty", "float"), ("entry_avg_px", "float"),
    ("pnl", "float"), ("gross_pnl", "float"), ("fees", "float"), ("fills", "int"),
)  # fmt: skip
_EVENTS_V2_ADDED: Final[Columns] = (
    ("pos_after", "float"), ("avg_cost_after", "float"), ("realized_after", "float"),
    ("fees_after", "float"),
)  # fmt: skip

_ALERTS_V3: Final[Columns] = (
    ("alert_id", "text"), ("type", "text"), ("level", "text"), ("risk_score", "float"),
    ("symbol", "text"), ("accounts", "text"), ("strategy_id", "text"), ("window_start", "int"),
    ("window_end", "int"), ("first_seen_ts", "int"), ("last_seen_ts", "int"),
    ("occurrences", "int"), ("evidence", "text"), ("status", "text"), ("created_ns", "int"),
    ("updated_ns", "int"),
)  # fmt: skip
_ALERT_HISTORY_V3: Final[Columns] = (
    ("alert_id", "text"), ("ts", "int"), ("actor", "text"), ("action", "text"),
    ("from_status", "text"), ("to_status", "text"), ("note", "text"),
)  # fmt: skip
_PROFILES_V3: Final[Columns] = (
    ("account_id", "text"), ("partition", "int"), ("updated_ts", "int"), ("orders", "int"),
    ("cancels", "int"), ("fills", "int"), ("cancel_ratio", "float"), ("order_to_trade", "float"),
    ("median_order_size", "float"), ("profile", "text"),
)  # fmt: skip
_CHECKPOINTS_V5: Final[Columns] = (
    ("key", "text"), ("hour", "int"), ("strategy_id", "text"), ("account_id", "text"),
    ("symbol", "text"), ("seq", "int"), ("ts", "int"), ("pos_after", "float"),
    ("avg_cost_after", "float"), ("realized_after", "float"), ("fees_after", "float"),
    ("last_px", "float"),
)  # fmt: skip

_ORDERS_V6_ADDED: Final[Columns] = (("mid_end", "float"), ("mid_end_ts", "int"))


def orders_end_mid_sql(sql: Sql) -> str:
    """The end mid of the orders already stored, by the rule the pipeline now applies as it
    goes (``OrderState``): the market context of the order's latest event at its
    ``ts_done`` (highest seq) that has a two-sided one. Orders without such an event keep
    null, as the analyses computed it from the events before this version."""
    return f"""
        UPDATE orders SET mid_end = (t.bid + t.ask) / 2, mid_end_ts = t.mkt_ts
        FROM (SELECT e.root_order_id, e.ts,
                     {sql.arg_max("e.mkt_bid", "e.seq")} AS bid,
                     {sql.arg_max("e.mkt_ask", "e.seq")} AS ask,
                     {sql.arg_max("e.mkt_ts", "e.seq")} AS mkt_ts
              FROM events e
              WHERE e.root_order_id IS NOT NULL AND e.seq IS NOT NULL
                    AND e.mkt_bid IS NOT NULL AND e.mkt_ask IS NOT NULL
                    AND EXISTS (SELECT 1 FROM orders o
                                WHERE o.order_id = e.root_order_id AND o.ts_done = e.ts)
              GROUP BY e.root_order_id, e.ts) t
        WHERE t.root_order_id = orders.order_id AND t.ts = orders.ts_done
    """


def create_table(dialect: Dialect, name: str, columns: Columns, primary_key: str = "") -> str:
    types = _TYPES[dialect]
    body = ",\n    ".join(f'"{col}" {types[kind]}' for col, kind in columns)
    if primary_key:
        body += f",\n    PRIMARY KEY ({primary_key})"
    return f"CREATE TABLE IF NOT EXISTS {name} (\n    {body}\n)"


def migrations(dialect: Dialect) -> list[tuple[int, str, list[str]]]:
    """(version, description, statements) in order."""
    return [
        (
            1,
            "events, rejects, anomalies, orders, source positions, state snapshots",
            [
                create_table(dialect, "events", _EVENTS_V1),
                create_table(dialect, "rejects", _REJECTS_V1),
                create_table(dialect, "anomalies", _ANOMALIES_V1),
                create_table(dialect, "orders", _ORDERS_V1),
                create_table(dialect, "source_positions", _POSITIONS_V1, '"source", "stream"'),
                create_table(dialect, "state_snapshots", _SNAPSHOTS_V1, '"partition"'),
            ],
        ),
        (
            2,
            "positions after each fill (average cost) and round trips",
            [
                *(
                    f'ALTER TABLE events ADD COLUMN "{col}" {_TYPES[dialect][kind]}'
                    for col, kind in _EVENTS_V2_ADDED
                ),
                create_table(dialect, "round_trips", _ROUND_TRIPS_V2),
            ],
        ),
        (
            3,
            "surveillance alerts, their append-only handling history, account profiles",
            [
                create_table(dialect, "alerts", _ALERTS_V3, '"alert_id"'),
                create_table(dialect, "alert_history", _ALERT_HISTORY_V3),
                create_table(
                    dialect, "account_profiles", _PROFILES_V3, '"account_id", "partition"'
                ),
            ],
        ),
        # no shared statement: the PostgreSQL store's layout step of this version drops the
        # full events.order_id index for a partial one and compresses snapshots with lz4
        (4, "cheaper write path of the PostgreSQL store (indexes, snapshot compression)", []),
        (
            5,
            "hourly position checkpoints (state before a time without reading every fill)",
            [
                create_table(dialect, position_checkpoints.TABLE, _CHECKPOINTS_V5, '"key", "hour"'),
                # from the fills already stored; the statement is built from the current
                # module, which keeps the table's meaning (a change of meaning is a new
                # migration that rebuilds the table)
                position_checkpoints.backfill_sql(Sql(dialect)),
            ],
        ),
        (
            6,
            "orders keep their end mid (opportunity cost without a join over the events)",
            [
                *(
                    f'ALTER TABLE orders ADD COLUMN IF NOT EXISTS "{col}" {_TYPES[dialect][kind]}'
                    for col, kind in _ORDERS_V6_ADDED
                ),
                orders_end_mid_sql(Sql(dialect)),
            ],
        ),
        (
            7,
            "DuckDB: state snapshots in parts (a large BLOB needs many times its size in memory)",
            # PostgreSQL keeps one bytea per partition (TOAST stores it in chunks already)
            [
                create_table(dialect, SNAPSHOT_PARTS, _SNAPSHOT_PARTS_V7),
                f"INSERT INTO {SNAPSHOT_PARTS} SELECT partition, 0, seq, saved_ns, data "
                "FROM state_snapshots",
                "DROP TABLE state_snapshots",
            ]
            if dialect == "duckdb"
            else [],
        ),
    ]


def current_columns() -> dict[str, list[str]]:
    """Column names of each table after every migration (for the schema test)."""
    return {
        "events": [c for c, _ in (*_EVENTS_V1, *_EVENTS_V2_ADDED)],
        "round_trips": [c for c, _ in _ROUND_TRIPS_V2],
        "rejects": [c for c, _ in _REJECTS_V1],
        "anomalies": [c for c, _ in _ANOMALIES_V1],
        "orders": [c for c, _ in (*_ORDERS_V1, *_ORDERS_V6_ADDED)],
        "alerts": [c for c, _ in _ALERTS_V3],
        "alert_history": [c for c, _ in _ALERT_HISTORY_V3],
        "account_profiles": [c for c, _ in _PROFILES_V3],
        position_checkpoints.TABLE: [c for c, _ in _CHECKPOINTS_V5],
    }
