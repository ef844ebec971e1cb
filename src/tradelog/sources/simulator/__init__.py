"""A small simulated market whose trading engines write logs the way real ones do (JSON
lines, a regex-read text log, a FIX session log), for ``tradelog simulate`` and
``tradelog demo``. See ``docs/simulator.md``."""

from tradelog.sources.simulator.inject import PATTERNS, parse_patterns
from tradelog.sources.simulator.sim import FILES, SimResult, Simulator

__all__ = ["FILES", "PATTERNS", "SimResult", "Simulator", "parse_patterns"]
