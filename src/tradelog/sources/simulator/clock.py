"""The simulated clock: a discrete-event scheduler over integer nanoseconds.

Nothing in the simulator reads the wall clock; the realtime mode only sleeps until the
wall clock catches up with the next scheduled time (see ``Simulator.run``).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable


class Scheduler:
    """Callbacks ordered by (time, insertion order), so equal times run deterministically."""

    def __init__(self, start_ns: int) -> None:
        self.now = start_ns
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0

    def at(self, t: int, fn: Callable[[], None]) -> None:
        """Runs ``fn`` at time ``t`` (never before the current time)."""
        self._seq += 1
        heapq.heappush(self._heap, (max(t, self.now), self._seq, fn))

    def after(self, delay_ns: int, fn: Callable[[], None]) -> None:
        self.at(self.now + delay_ns, fn)

    def next_time(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def run_next(self) -> None:
        """Pops and runs the earliest callback, advancing the clock to its time."""
        t, _, fn = heapq.heappop(self._heap)
        self.now = t
        fn()

    def __len__(self) -> int:
        return len(self._heap)
