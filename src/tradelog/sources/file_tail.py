"""file (follow): tail every file matching a glob as it grows, without touching the writer.

Identity. A file is identified by device + inode and by the fingerprint of its first line
(the first complete line, capped at 1 KiB, so short files have a stable fingerprint as soon
as they have one line). The stream key is that fingerprint, plus a generation suffix after
each truncation, so event ids derived from positions stay stable across renames and
restarts and never collide after a copy-truncate.

Rotation and friends:
- rename rotation: the renamed file keeps its inode; it is drained to EOF through the open
  descriptor, then the new file at the path is read;
- copy-truncate: the size drops below the read position → the truncation is recorded and
  reading starts again at 0 under a new generation of the stream key;
- deleted and recreated: a new inode is a new file; the deleted one is drained and closed;
- a file briefly unreadable: retried at the next poll, state kept;
- partial last line: the parser leaves it unconsumed; it is held until its newline;
- restart: positions come from the store (committed with the events read before them).

The tailer only reads (``open(..., "rb")``); it never locks, renames or truncates files.
"""

from __future__ import annotations

import glob as globmod
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final, Literal

from tradelog.model.ids import fingerprint

log = logging.getLogger("tradelog.sources.file_tail")

FINGERPRINT_MAX: Final = 1024
READ_BYTES: Final = 256 * 1024


def head_fingerprint(head: bytes, at_eof: bool = False) -> str | None:
    """Fingerprint of a file's first line (≤ 1 KiB), or None until one is complete.

    >>> head_fingerprint(b"partial") is None
    True
    >>> head_fingerprint(b"a\\nb") == head_fingerprint(b"a\\nccc")
    True
    """
    cut = head.find(b"\n", 0, FINGERPRINT_MAX)
    if cut >= 0:
        return fingerprint(head[: cut + 1])
    if len(head) >= FINGERPRINT_MAX:
        return fingerprint(head[:FINGERPRINT_MAX])
    if at_eof and head:
        return fingerprint(head)
    return None


@dataclass(slots=True)
class KnownPosition:
    """A stream position committed earlier (from the store)."""

    stream: str
    offset: int
    fingerprint: str
    dev: int
    inode: int


@dataclass(slots=True)
class Tracked:
    """One followed file."""

    path: str
    dev: int
    inode: int
    fh: BinaryIO
    stream: str | None = None
    fingerprint: str | None = None
    offset: int = 0
    """Byte offset up to which records were handed on (consumed by the decoder)."""
    pending: bytes = b""
    generation: int = 0
    draining: bool = False
    last_growth: float = field(default_factory=time.monotonic)
    decoder: Any = None
    """The stream's decoder (parser + cleaner), made by the caller once the key is known."""


@dataclass(slots=True)
class TailStats:
    files_added: int = 0
    files_closed: int = 0
    truncations: int = 0
    rotations: int = 0
    read_errors: int = 0
    bytes_read: int = 0


ReadChunk = tuple[Tracked, bytes, int, bool]
"""(file, data, base offset, final) handed to the decoder."""


class FileTailer:
    """Follows the files of one glob; ``poll()`` returns new data, never blocks."""

    def __init__(
        self,
        source: str,
        pattern: str,
        known: list[KnownPosition],
        start_at: Literal["beginning", "end"] = "beginning",
        rotate_wait_s: float = 1.0,
        read_bytes: int = READ_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.pattern = pattern
        self.start_at = start_at
        self.rotate_wait_s = rotate_wait_s
        self.read_bytes = read_bytes
        self.clock = clock
        self.known = list(known)
        self.files: dict[tuple[int, int], Tracked] = {}
        self.stats = TailStats()

    # ---- discovery ---------------------------------------------------------
    def _discover(self) -> None:
        for path in sorted(globmod.glob(self.pattern)):
            try:
                st = os.stat(path)
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            tracked = self.files.get(key)
            if tracked is not None:
                tracked.path = path
                continue
            try:
                fh = open(path, "rb")  # noqa: SIM115 - kept open while the file is followed
            except OSError as exc:
                self.stats.read_errors += 1
                log.warning("cannot open %s yet: %s", path, exc)
                continue
            self.files[key] = Tracked(path, st.st_dev, st.st_ino, fh)
            self.stats.files_added += 1
            log.info("following %s (source %s)", path, self.source)

    def _identify(self, t: Tracked) -> bool:
        """Sets the stream key and start offset once the first line is complete."""
        fh = t.fh
        fh.seek(0)
        head = fh.read(FINGERPRINT_MAX)
        fp = head_fingerprint(head)
        if fp is None:
            return False
        t.fingerprint = fp
        size = os.fstat(fh.fileno()).st_size
        match = self._match_known(t, fp)
        if match is not None:
            t.stream = match.stream
            t.generation = _generation(match.stream)
            if size < match.offset:
                self._truncated(t, reason=f"shorter ({size}) than its committed position")
            else:
                t.offset = match.offset
            return True
        t.stream = f"fp:{fp}"
        if self.start_at == "end":
            t.offset = _last_line_start(fh, size)
        return True

    def _match_known(self, t: Tracked, fp: str) -> KnownPosition | None:
        """A committed position for this file: same inode and first line, else same first
        line (moved/copied); the newest generation wins."""
        same_inode = [
            k for k in self.known if k.dev == t.dev and k.inode == t.inode and k.fingerprint == fp
        ]
        candidates = same_inode or [k for k in self.known if k.fingerprint == fp]
        if not candidates:
            return None
        best = max(candidates, key=lambda k: (_generation(k.stream), k.offset))
        self.known.remove(best)
        return best

    def _truncated(self, t: Tracked, reason: str) -> None:
        t.generation += 1
        base = (t.stream or f"fp:{t.fingerprint}").split("#", 1)[0]
        t.stream = f"{base}#g{t.generation}"
        t.offset = 0
        t.pending = b""
        t.decoder = None
        self.stats.truncations += 1
        log.warning("%s was truncated (%s); reading again from 0 as %s", t.path, reason, t.stream)

    # ---- reading -------------------------------------------------------------
    def poll(self) -> list[ReadChunk]:
        """New complete data of every followed file (draining rotated files first)."""
        self._discover()
        out: list[ReadChunk] = []
        now = self.clock()
        for t in sorted(self.files.values(), key=lambda f: not f.draining):
            chunk = self._read(t, now)
            if chunk is not None:
                out.append(chunk)
        return out

    def _read(self, t: Tracked, now: float) -> ReadChunk | None:
        fh = t.fh
        try:
            st = os.fstat(fh.fileno())
        except OSError:
            return None
        if t.stream is None and not self._identify(t):
            return None
        self._check_path(t, st)
        read_pos = t.offset + len(t.pending)
        if st.st_size < read_pos:
            self._truncated(t, reason=f"size {st.st_size} < position {read_pos}")
            read_pos = 0
        elif t.offset == 0 and not t.pending and st.st_size > 0:
            # rewritten in place under the same inode (first line changed)?
            fh.seek(0)
            fp = head_fingerprint(fh.read(FINGERPRINT_MAX))
            if fp is not None and fp != t.fingerprint:
                t.fingerprint = fp
                t.stream = f"fp:{fp}"
        if st.st_size == read_pos:
            if t.draining and now - t.last_growth >= self.rotate_wait_s:
                self._close(t)
            return None
        try:
            fh.seek(read_pos)
            data = fh.read(self.read_bytes)
        except OSError as exc:
            self.stats.read_errors += 1
            log.warning("read error on %s: %s", t.path, exc)
            return None
        if not data:
            return None
        t.last_growth = now
        self.stats.bytes_read += len(data)
        buf = t.pending + data if t.pending else data
        t.pending = b""
        return t, buf, t.offset, False

    def consumed(self, t: Tracked, buf: bytes, consumed: int) -> None:
        """The decoder used ``consumed`` bytes of ``buf``; the rest waits for more data."""
        t.offset += consumed
        t.pending = buf[consumed:]

    def _check_path(self, t: Tracked, st: os.stat_result) -> None:
        """Marks a file renamed away from the glob or deleted as draining."""
        if t.draining:
            return
        if st.st_nlink == 0:
            t.draining = True
            self.stats.rotations += 1
            log.info("%s was deleted; draining it", t.path)
            return
        try:
            cur = os.stat(t.path)
            moved = (cur.st_dev, cur.st_ino) != (t.dev, t.inode)
        except OSError:
            moved = True
        if moved:
            t.draining = True
            self.stats.rotations += 1
            log.info("%s was rotated; draining the old file", t.path)

    def _close(self, t: Tracked) -> None:
        try:
            t.fh.close()
        finally:
            self.files.pop((t.dev, t.inode), None)
            self.stats.files_closed += 1
            log.info("closed rotated %s at %d", t.path, t.offset)

    def close(self) -> None:
        for t in list(self.files.values()):
            t.fh.close()
        self.files.clear()


def _generation(stream: str) -> int:
    _, sep, gen = stream.partition("#g")
    return int(gen) if sep and gen.isdigit() else 0


def _last_line_start(fh: BinaryIO, size: int) -> int:
    """Offset just after the last newline before ``size`` (start_at = "end")."""
    back = min(size, 64 * 1024)
    fh.seek(size - back)
    tail = fh.read(back)
    cut = tail.rfind(b"\n")
    return size - back + cut + 1 if cut >= 0 else size - back


class TailInput:
    """A tailer plus the decoders of its files: what the live loop polls."""

    def __init__(self, tailer: FileTailer, make_decoder: Callable[[Tracked], Any]) -> None:
        self.tailer = tailer
        self.make_decoder = make_decoder

    def poll(self) -> list[Any]:
        """Cleaned chunks of everything new (the decoder's result type, usually CleanChunk)."""
        out = []
        for t, buf, base, final in self.tailer.poll():
            if t.decoder is None:
                t.decoder = self.make_decoder(t)
            chunk, consumed = t.decoder.decode(buf, base, final)
            self.tailer.consumed(t, buf, consumed)
            out.append(chunk)
        return out
