"""SQL that differs between DuckDB and PostgreSQL, in one place, so every analysis query is
written once. Times are BIGINT nanoseconds in both stores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tradelog.storage.base import EventFilter

Dialect = Literal["duckdb", "postgresql"]

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Sql:
    """Dialect helpers; placeholders are ``?`` in DuckDB and ``%s`` in PostgreSQL."""

    dialect: Dialect

    @property
    def p(self) -> str:
        """The parameter placeholder."""
        return "?" if self.dialect == "duckdb" else "%s"

    def quantiles(self, expr: str, qs: tuple[float, ...]) -> str:
        """An array of continuous quantiles of ``expr``."""
        listed = ", ".join(repr(float(q)) for q in qs)
        if self.dialect == "duckdb":
            return f"quantile_cont({expr}, [{listed}])"
        return f"percentile_cont(ARRAY[{listed}]) WITHIN GROUP (ORDER BY {expr})"

    def median(self, expr: str) -> str:
        if self.dialect == "duckdb":
            return f"quantile_cont({expr}, 0.5)"
        return f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {expr})"

    def bucket(self, ts: str, width_ns: int) -> str:
        """Start of the ``width_ns`` bucket of a nanosecond timestamp (integer division)."""
        if self.dialect == "duckdb":
            return f"(({ts}) // {width_ns}) * {width_ns}"
        return f"(({ts}) / {width_ns}) * {width_ns}"

    def idiv(self, a: str, b: str) -> str:
        return f"(({a}) // ({b}))" if self.dialect == "duckdb" else f"(({a}) / ({b}))"

    def arg_max(self, value: str, key: str) -> str:
        """``value`` of the row with the largest ``key`` within a group."""
        if self.dialect == "duckdb":
            return f"arg_max({value}, {key})"
        return f"(array_agg({value} ORDER BY {key} DESC))[1]"

    def arg_max_row(self, value: str, key: str) -> str:
        """``value`` of the row with the largest (non-null) ``key``, null included (DuckDB's
        ``arg_max`` skips rows whose value is null)."""
        if self.dialect == "duckdb":
            return f"arg_max_null({value}, {key})"
        return f"(array_agg({value} ORDER BY {key} DESC NULLS LAST))[1]"

    def arg_min(self, value: str, key: str) -> str:
        if self.dialect == "duckdb":
            return f"arg_min({value}, {key})"
        return f"(array_agg({value} ORDER BY {key} ASC))[1]"

    def where(
        self,
        flt: EventFilter,
        alias: str = "",
        ts: str = "ts",
        strategy: str = "strategy_id",
        account: str = "account_id",
        extra: list[str] | None = None,
    ) -> tuple[str, list[Any]]:
        """``WHERE …`` for a window and filters (``extra`` conditions are ANDed in)."""
        a = f"{alias}." if alias else ""
        p = self.p
        clauses = list(extra or [])
        params: list[Any] = []
        if flt.start is not None:
            clauses.append(f"{a}{ts} >= {p}")
            params.append(flt.start)
        if flt.end is not None:
            clauses.append(f"{a}{ts} < {p}")
            params.append(flt.end)
        for col, value in (
            ("symbol", flt.symbol),
            ("venue", flt.venue),
            (strategy, flt.strategy),
            (account, flt.account),
        ):
            if value is not None:
                clauses.append(f"{a}{col} = {p}")
                params.append(value)
        if flt.kinds:
            clauses.append(f"{a}kind IN ({', '.join(p for _ in flt.kinds)})")
            params.extend(flt.kinds)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params
