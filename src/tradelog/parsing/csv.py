"""CSV with a header line (or configured column names) mapped to fields by name.

The header is the file's first line unless ``columns`` is configured; when a stream is
resumed past its header, the caller passes the file's first line as ``header``.
"""

from __future__ import annotations

import csv as _csv
import io

import msgspec

from tradelog.model.events import RejectReason
from tradelog.parsing.base import DEFAULT_MAX_RECORD_BYTES, Failure, Item, LineParser, Record, Skip


class CsvSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """CSV dialect and columns (names are then renamed by the source's ``fields`` map)."""

    delimiter: str = ","
    quotechar: str = '"'
    columns: list[str] | None = None
    """Column names when the file has no header line."""
    has_header: bool = True


class CsvParser(LineParser):
    """One CSV row per line (quoted fields may not span lines).

    >>> p = CsvParser(CsvSettings())
    >>> items, _ = p.parse(b"kind,qty\\nfill,5\\nfill\\n", 0, False)
    >>> [type(i).__name__ for i in items]
    ['Skip', 'Record', 'Failure']
    """

    def __init__(
        self,
        settings: CsvSettings,
        header: str | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        super().__init__(max_record_bytes)
        if len(settings.delimiter) != 1:
            raise ValueError(f"csv delimiter must be one character; was {settings.delimiter!r}")
        self.settings = settings
        self._columns: list[str] | None = list(settings.columns) if settings.columns else None
        if self._columns is None and header is not None:
            self._columns = self._row(header)

    def _row(self, text: str) -> list[str]:
        reader = _csv.reader(
            io.StringIO(text),
            delimiter=self.settings.delimiter,
            quotechar=self.settings.quotechar,
            strict=True,
        )
        return next(reader, [])

    def parse_line(self, text: str, start: int, end: int) -> Item:
        try:
            row = self._row(text)
        except _csv.Error as exc:
            return Failure(RejectReason.MALFORMED, f"csv: {exc}", text, start, end)
        if self._columns is None:
            if not self.settings.has_header:
                return Failure(
                    RejectReason.MALFORMED, "csv: no columns configured", text, start, end
                )
            self._columns = [c.strip() for c in row]
            return Skip("header", start, end)
        if start == 0 and self.settings.has_header and self.settings.columns is None:
            return Skip("header", start, end)
        if len(row) != len(self._columns):
            return Failure(
                RejectReason.MALFORMED,
                f"csv: expected {len(self._columns)} columns; found {len(row)}",
                text,
                start,
                end,
            )
        return Record(dict(zip(self._columns, row, strict=True)), text, start, end)
