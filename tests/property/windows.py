"""Hypothesis strategy of analysis windows shared by the property tests: a start or none,
an end or none (never before the start), and sometimes a symbol, venue or strategy filter
(including values no row has)."""

from __future__ import annotations

from hypothesis import strategies as st

from tradelog.storage.base import EventFilter

NS = 1_000_000_000


@st.composite
def windows(draw: st.DrawFn, starts: int, lengths: int) -> EventFilter:
    """Starts on whole seconds up to ``starts``, lengths up to ``lengths`` seconds."""
    start = draw(st.one_of(st.none(), st.none(), st.integers(0, starts).map(lambda s: s * NS)))
    end = None
    if draw(st.booleans()):
        end = (start or 0) + draw(st.integers(0, lengths)) * NS
    return EventFilter(
        start=start, end=end,
        symbol=draw(st.sampled_from([None] * 6 + ["A", "D"])),
        venue=draw(st.sampled_from([None] * 4 + ["X"])),
        strategy=draw(st.sampled_from([None] * 6 + ["s2"])),
    )  # fmt: skip
