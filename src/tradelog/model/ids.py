"""Stable identifiers: event ids derived from source positions, and 64-bit id hashes.

An event without an id from its source gets ``<source>:<stream>:<offset>:<raw>`` hashed, where
``stream`` identifies the bytes (a file fingerprint, not its path), so re-reading the same
bytes, even after a rename, gives the same id. XXH3 is a fixed specification, so ids are
stable across versions and machines.

>>> a = derived_event_id("engine", "f3a1", 120, "a line")
>>> a == derived_event_id("engine", "f3a1", 120, "a line")
True
>>> a != derived_event_id("engine", "f3a1", 120, "other")
True
>>> id_hash("abc") == id_hash("abc")
True
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import xxhash

_SIGNED_SHIFT: Final = 1 << 63
_h64 = xxhash.xxh3_64_intdigest
_h128 = xxhash.xxh3_128_hexdigest


def derived_event_id(source: str, stream: str, offset: int, raw: str, prefix: str = "h-") -> str:
    """Id for an event whose source gave none: a hash of where its bytes are and what they
    say, so the same bytes re-read give the same id and different bytes at a reused position
    (an HTTP body, a truncated file) never collide. Rejects use the prefix ``r-`` so a
    re-read bad record is recognised as already stored."""
    text = f"{source}\x1f{stream}\x1f{offset}\x1f{raw}"
    return prefix + _h128(text.encode("utf-8", "surrogatepass"))


def id_hash(event_id: str) -> int:
    """Signed 64-bit hash of an event id (the dedup index key, stored with each event)."""
    return _h64(event_id.encode("utf-8", "surrogatepass")) - _SIGNED_SHIFT


def id_hashes(event_ids: list[str]) -> npt.NDArray[np.int64]:
    """Vector of ``id_hash`` for a batch."""
    return np.fromiter(map(id_hash, event_ids), dtype=np.int64, count=len(event_ids))


def fingerprint(data: bytes) -> str:
    """Short content fingerprint of a file's first bytes (part of a file's identity)."""
    return xxhash.xxh3_64_hexdigest(data)
