"""A fresh PostgreSQL database per test on the real server (127.0.0.1:5432, db ``test``):
``CREATE DATABASE tradelog_test_<uuid>``, dropped (with its connections) afterwards, so
tests are independent and can run again."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg

ADMIN_URL = "postgresql://127.0.0.1:5432/test"


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """Yields the URL of an empty database that exists for the block only."""
    name = f"tradelog_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
