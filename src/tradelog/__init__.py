"""tradelog: real-time trading log analytics, PnL and surveillance."""

__version__ = "0.1.0"
