"""Fixtures shared by the property tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tradelog.storage.duckdb_store import DuckDBStore


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    """One real DuckDB store per test module; each example empties and refills it."""
    s = DuckDBStore(str(tmp_path_factory.mktemp("store") / "t.duckdb"))
    try:
        yield s
    finally:
        s.close()
