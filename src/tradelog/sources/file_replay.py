"""file (replay): read finished files from the start, in chunks, with their identity.

A file's stream key is its content fingerprint (first bytes) plus its size class, so the
same bytes under another name are the same stream, and event ids derived from positions
are stable across renames and re-reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from tradelog.model.ids import fingerprint

FINGERPRINT_BYTES = 1024
CHUNK_BYTES = 256 * 1024


@dataclass(slots=True)
class FileIdentity:
    path: str
    dev: int
    inode: int
    size: int
    fingerprint: str
    head: bytes
    """The first bytes (up to FINGERPRINT_BYTES): fingerprint input, CSV header source."""


def identify(path: str) -> FileIdentity:
    """Device, inode, size and fingerprint of a file (raises OSError if unreadable)."""
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        head = fh.read(FINGERPRINT_BYTES)
    return FileIdentity(path, st.st_dev, st.st_ino, st.st_size, fingerprint(head), head)


T = TypeVar("T")

Decode = Callable[[bytes, int, bool], tuple[T, int]]
"""``decode(data, base, final) -> (result, bytes consumed)`` for data at stream offset base."""


def read_chunks(
    path: str,
    decode: Decode[T],
    start: int = 0,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[tuple[T, int, int]]:
    """Decodes ``path`` from ``start`` to its end in chunks; yields (result, stream offset
    after the consumed bytes, bytes read). With ``final=True`` at the end of the file the
    decoder must consume everything (a last record may lack its newline)."""
    with open(path, "rb") as fh:
        fh.seek(start)
        base = start
        pending = b""
        while True:
            data = fh.read(chunk_bytes)
            at_eof = len(data) < chunk_bytes
            buf = pending + data if pending else data
            if not buf and base > start:
                return
            result, consumed = decode(buf, base, at_eof)
            pending = buf[consumed:]
            base += consumed
            if at_eof and pending:
                raise RuntimeError(
                    f"decoder left {len(pending)} bytes unconsumed at the end of {path}; "
                    "with final=True every byte must become an item"
                )
            yield result, base, len(data)
            if at_eof:
                return
