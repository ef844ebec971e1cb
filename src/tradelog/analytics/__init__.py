"""Pure analytics: no I/O, no clock reads, no asyncio."""
