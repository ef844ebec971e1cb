"""The pipeline of one partition among many sharing a store (scale-out, DESIGN §8).

Every partition numbers its events in its own range of ``seq`` (``partition << 40`` and
up), so several partitions can write into one store and each recovers from its own
snapshot plus only its own stored events: ``events_after`` is read in ``seq`` order and
the catch-up stops where the next partition's range begins.

>>> seq_range(0), seq_range(3) == (3 << 40, 4 << 40)
((0, 1099511627776), True)
"""

from __future__ import annotations

import logging
from typing import Final

from tradelog.pipeline.runner import CATCH_UP_PAGE, Pipeline

log = logging.getLogger("tradelog.pipeline.partitioned")

SEQ_BITS: Final = 40
"""Events per partition before its ``seq`` range would overflow into the next (10¹²)."""
MAX_PARTITIONS: Final = 1 << 22
"""Keeps every ``seq`` a positive BIGINT."""


def seq_range(partition: int) -> tuple[int, int]:
    """[first, end) of the ``seq`` values partition ``partition`` may give its events."""
    if not 0 <= partition < MAX_PARTITIONS:
        raise ValueError(f"partition must be in [0, {MAX_PARTITIONS}); was {partition}")
    return partition << SEQ_BITS, (partition + 1) << SEQ_BITS


class PartitionPipeline(Pipeline):
    """A ``Pipeline`` whose recovery reads only its own partition's events."""

    def open(self) -> None:
        """Dedup index (all partitions: ids are global), this partition's snapshot, then
        its events stored after that snapshot replayed through enrich and mark."""
        self.index = self._new_index(self.store.load_id_hashes())
        self.dedup.index = self.index
        low, high = seq_range(self.partition)
        snap = self.store.load_snapshot(self.partition)
        if snap is not None:
            self.state.restore(snap[1])
        if not low <= self.state.seq < high:
            if snap is not None and self.state.seq != 0:
                raise RuntimeError(
                    f"partition {self.partition}: snapshot seq {self.state.seq} is outside "
                    f"its range [{low}, {high})"
                )
            self.state.seq = low
        replayed = 0
        while True:
            page = self.store.events_after(self.state.seq, CATCH_UP_PAGE)
            events = [ev for ev in page if ev.seq < high]
            if not events:
                break
            self.replay_stored(events)
            replayed += len(events)
            if len(events) < len(page):
                break
        if replayed:
            log.info("partition %d: caught up %d events", self.partition, replayed)
