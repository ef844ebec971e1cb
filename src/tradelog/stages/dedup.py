"""dedup: drop events whose ``event_id`` was already seen (stored or in flight).

The index holds 64-bit hashes of every stored id: a dict of recent hash → id plus sorted
NumPy runs merged like an LSM tree, about 8 bytes per event (80 MB for 10 M events).
A hash hit is always confirmed against exact ids — the recent dict holds them, and hits
in the runs are checked by the ``confirm`` callback (the store) — so a hash collision can
never drop a genuine event. Only the oldest recent entries move to the runs; the newest
``keep_recent`` stay, which must exceed the events in flight to the store (the runner
guarantees it), so a run hit always refers to a committed event.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt

from tradelog.model.ids import id_hash
from tradelog.pipeline.batch import Batch
from tradelog.pipeline.state import PartitionState

T = TypeVar("T")

MAX_RUN: Final = 1 << 21
"""Runs stop merging at about this many hashes (16 MB): merging two sorted runs holds both,
the result and the sort's buffer at once, ~240 MB at the end of a 10 M-event replay if they
were allowed to grow into one; capped, a lookup searches a few more runs (one per 2 M ids)."""

Confirmer = Callable[[list[str], list[int]], set[str]]
"""Given ids (and their hashes) found in the runs, returns those that really are stored."""


class IdIndex:
    """Membership of event ids by 64-bit hash: recent dict + sorted runs."""

    def __init__(
        self,
        hashes: npt.NDArray[np.int64] | None = None,
        recent_limit: int = 1 << 16,
        keep_recent: int = 1 << 14,
        max_run: int = MAX_RUN,
    ) -> None:
        if keep_recent >= recent_limit:
            raise ValueError("keep_recent must be smaller than recent_limit")
        self.recent_limit = recent_limit
        self.keep_recent = keep_recent
        self.max_run = max_run
        self.recent: dict[int, str] = {}
        self._runs: list[npt.NDArray[np.int64]] = []
        if hashes is not None and len(hashes):
            self._runs.append(np.sort(hashes.astype(np.int64, copy=False)))

    def __len__(self) -> int:
        return len(self.recent) + sum(len(r) for r in self._runs)

    def in_runs(self, hashes: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Vectorised membership against the sorted runs (not the recent dict)."""
        hit = np.zeros(len(hashes), dtype=bool)
        for run in self._runs:
            idx = np.searchsorted(run, hashes)
            np.minimum(idx, len(run) - 1, out=idx)
            hit |= run[idx] == hashes
        return hit

    def maybe_flush(self) -> None:
        """Moves the oldest recent hashes into a sorted run once the dict is full."""
        n = len(self.recent)
        if n < self.recent_limit:
            return
        count = n - self.keep_recent
        old = list(islice(self.recent, count))
        run = np.array(old, dtype=np.int64)
        run.sort()
        for h in old:
            del self.recent[h]
        self._runs.append(run)
        runs = self._runs
        while (
            len(runs) > 1
            and len(runs[-2]) <= 2 * len(runs[-1])
            and len(runs[-2]) + len(runs[-1]) <= self.max_run
        ):
            merged = np.concatenate((runs[-2], runs[-1]))
            del runs[-2:]
            merged.sort(kind="stable")
            runs.append(merged)


class Dedup:
    """Stage ``dedup``: keeps the first occurrence of every event (and reject) id; counts
    the others as duplicates of their chunk."""

    step_id: Final = "dedup"

    def __init__(self, index: IdIndex, confirm: Confirmer | None = None) -> None:
        self.index = index
        self.confirm = confirm

    def __call__(self, batch: Batch, state: PartitionState) -> None:
        event_hashes: list[int] = []
        reject_hashes: list[int] = []
        for chunk in batch.chunks:
            if chunk.events:
                chunk.dup_events += self._keep_new(
                    chunk.events, [ev.event_id for ev in chunk.events], batch.events, event_hashes
                )
            if chunk.rejects:
                chunk.dup_rejects += self._keep_new(
                    chunk.rejects,
                    [rj.reject_id for rj in chunk.rejects],
                    batch.rejects,
                    reject_hashes,
                )
        batch.id_hashes = np.array(event_hashes, dtype=np.int64)
        batch.reject_hashes = np.array(reject_hashes, dtype=np.int64)
        self.index.maybe_flush()

    def _keep_new(
        self, items: list[T], ids: list[str], kept: list[T], kept_hashes: list[int]
    ) -> int:
        """Appends the items not seen before to ``kept``; returns the number dropped."""
        recent = self.index.recent
        hashes = [id_hash(i) for i in ids]
        in_runs = self.index.in_runs(np.array(hashes, dtype=np.int64))
        stored: set[str] = set()
        if in_runs.any():
            where = np.flatnonzero(in_runs).tolist()
            suspects = [ids[i] for i in where]
            if self.confirm is None:
                stored = set(suspects)
            else:
                stored = self.confirm(suspects, [hashes[i] for i in where])
        dups = 0
        for item, eid, h, run_hit in zip(items, ids, hashes, in_runs.tolist(), strict=True):
            seen = recent.get(h)
            if seen is not None:
                if seen == eid:
                    dups += 1
                    continue
                # a 64-bit collision with a different recent id: keep the item
            elif run_hit and eid in stored:
                dups += 1
                continue
            else:
                recent[h] = eid
            kept.append(item)
            kept_hashes.append(h)
        return dups
