"""``observe_many`` must leave a histogram exactly as ``observe`` called per value does
(bucket edges inclusive, +Inf, sum), so the commit path can observe a batch at once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from tradelog.api.metrics import observe_many

BUCKETS = (0.001, 0.01, 0.1, 1.0, 10.0)


def exposition(values: list[float], bulk: bool) -> dict[str, float]:
    """Sample name + labels → value (``_created`` timestamps left out: they differ)."""
    reg = CollectorRegistry()
    h = Histogram("h", "test", ["venue"], buckets=BUCKETS, registry=reg)
    child = h.labels("X")
    if bulk:
        observe_many(child, values)
    else:
        for v in values:
            child.observe(v)
    out: dict[str, float] = {}
    for line in generate_latest(reg).decode().splitlines():
        if line.startswith("#") or "_created" in line:
            continue
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out


@given(st.lists(st.one_of(st.sampled_from(BUCKETS), st.floats(0, 100, allow_nan=False)),
                max_size=200))  # fmt: skip
def test_bulk_observation_equals_one_at_a_time(values: list[float]) -> None:
    bulk, single = exposition(values, bulk=True), exposition(values, bulk=False)
    key = 'h_sum{venue="X"}'
    assert bulk.pop(key) == pytest.approx(single.pop(key), rel=1e-12, abs=1e-12)
    assert bulk == single  # every bucket and the count exactly


def test_values_on_a_bound_count_in_that_bucket() -> None:
    got = exposition([0.01, 0.01, 10.0, 11.0], bulk=True)
    assert got['h_bucket{le="0.01",venue="X"}'] == 2.0
    assert got['h_bucket{le="10.0",venue="X"}'] == 3.0
    assert got['h_bucket{le="+Inf",venue="X"}'] == 4.0
    assert got['h_count{venue="X"}'] == 4.0
