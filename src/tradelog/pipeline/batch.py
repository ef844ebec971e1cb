"""The units that move through the pipeline: cleaned chunks of one stream, and the
micro-batch the stages work on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from tradelog.model.alerts import Alert, ProfileRow
from tradelog.model.events import AnomalyMark, Event, Reject
from tradelog.model.orders import OrderState
from tradelog.model.positions import RoundTrip


@dataclass(slots=True)
class StreamInfo:
    """Identity of one stream of one source (a file, a subject, an HTTP endpoint)."""

    source: str
    stream: str
    """Stable key: for files, derived from device, inode and a fingerprint of the first bytes."""
    src_ref: str
    """Human reference: the file path, the subject…"""
    fingerprint: str = ""
    dev: int = 0
    inode: int = 0


@dataclass(slots=True)
class CleanChunk:
    """Consecutive records of one stream after parsing and cleaning."""

    stream: StreamInfo
    events: list[Event]
    rejects: list[Reject]
    ignored: int
    end: int
    """Stream position right after the last record of this chunk."""
    dup_events: int = 0
    dup_rejects: int = 0

    @property
    def duplicates(self) -> int:
        """Records dropped by dedup (an event or reject id already stored)."""
        return self.dup_events + self.dup_rejects

    @property
    def records(self) -> int:
        """Records read in this chunk: events + rejects + ignored (duplicates are events)."""
        return len(self.events) + len(self.rejects) + self.ignored


@dataclass(slots=True)
class Batch:
    """One micro-batch: the stages fill ``events``…``finished_orders`` from ``chunks``."""

    chunks: list[CleanChunk]
    events: list[Event] = field(default_factory=list)
    id_hashes: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    rejects: list[Reject] = field(default_factory=list)
    reject_hashes: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    marks: list[AnomalyMark] = field(default_factory=list)
    finished_orders: dict[str, OrderState] = field(default_factory=dict)
    """Orders that reached (or changed in) a terminal state in this batch."""
    round_trips: list[RoundTrip] = field(default_factory=list)
    """Round trips (flat → flat) closed in this batch."""
    order_rewrites: set[str] = field(default_factory=set)
    """Finished orders whose stored row must be replaced (an event after the end)."""
    order_placeholders: set[str] = field(default_factory=set)
    """Finished orders whose order_new was never seen (stored only if absent)."""
    issues: dict[int, str] = field(default_factory=dict)
    """Index in ``events`` → lifecycle issue code found by enrich (marked by mark)."""
    alerts: list[Alert] = field(default_factory=list)
    """Surveillance alerts opened or updated in this batch (stage surveil)."""
    profiles: list[ProfileRow] = field(default_factory=list)
    """Profiles of the accounts active in this batch (stage surveil)."""
