"""surveil: windowed surveillance detectors, account profiles and risk triggers over the
enriched and marked events of a batch (``surveillance.engine``). Their history lives in
``PartitionState.surveillance`` (part of the snapshot); new or updated alerts and the
profiles of the accounts active in the batch go to ``batch.alerts`` / ``batch.profiles``
and are committed with the batch.
"""

from __future__ import annotations

from typing import Final

from tradelog.model.reference import ReferenceData
from tradelog.pipeline.batch import Batch
from tradelog.pipeline.state import PartitionState
from tradelog.surveillance.engine import Surveillance, SurveillanceSettings


class Surveil:
    """Stage ``surveil``."""

    step_id: Final = "surveil"

    def __init__(
        self, settings: SurveillanceSettings | None = None, reference: ReferenceData | None = None
    ) -> None:
        self.engine = Surveillance(settings, (reference or ReferenceData()).owners())

    def __call__(self, batch: Batch, state: PartitionState) -> None:
        alerts, profiles = self.engine.process(batch.events, state.surveillance, state.partition)
        batch.alerts.extend(alerts)
        batch.profiles.extend(profiles)
