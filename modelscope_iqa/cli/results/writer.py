"""Writing result rows: each flushed to the operating system as it is written, so a run
killed at any moment (even ``kill -9``) keeps every row it wrote, at most one partial
last line. A failed write (a full disk, a file-size limit, an I/O error) is an
:class:`~modelscope_iqa.errors.OutputError` naming the file and the cause; the rows
before it stay."""
from __future__ import annotations

import csv
import io
import json
import os
import sys
from typing import Iterable, Optional

from ...errors import OutputError
from .formats import Row, csv_header, is_jsonl

RESUME_ADVICE = 'the rows written before stay; fix the cause, then run again with --resume'


def cannot_write(path: str, exc: OSError) -> OutputError:
    return OutputError(f'{path!r}: cannot write ({exc.strerror or exc}); {RESUME_ADVICE}')


class ResultWriter:
    """Writes rows with the columns ``fields`` to ``path`` (stdout if None), in the
    format of ``like`` when given (else of ``path``); ``stamp``'s columns (the model's
    identity) are added to every row that lacks them. Rows appended to a CSV file follow
    its header's columns; a file to append to must end with a complete line
    (:func:`~.formats.drop_partial_last_line`)."""

    def __init__(self, path: Optional[str], fields: Iterable[str], append: bool = False,
                 like: Optional[str] = None, stamp: Optional[Row] = None):
        self.fields = list(fields)
        self.stamp = dict(stamp or {})
        self.jsonl = is_jsonl(like or path)
        existing = append and path is not None and os.path.exists(path) and \
            os.path.getsize(path) > 0
        if path is None:
            self._file = io.TextIOWrapper(sys.stdout.buffer, encoding='utf-8',
                                          newline='', line_buffering=True,
                                          write_through=True)
            self._owns_file = False
        else:
            try:
                self._file = open(path, 'a' if existing else 'w', newline='',
                                  encoding='utf-8')
            except OSError as exc:
                raise cannot_write(path, exc) from exc
            self._owns_file = True
        self.path = path
        if existing and not self.jsonl:
            # appended rows follow the file's own columns (one an earlier version wrote)
            self.fields = csv_header(path) or self.fields
        if not self.jsonl:
            self._csv = csv.DictWriter(self._file, fieldnames=self.fields,
                                       extrasaction='ignore', lineterminator='\n')
            if not existing:
                self._guarded(self._csv.writeheader)

    def _guarded(self, write) -> None:
        """``write()`` then flush; a failure is an :class:`OutputError` naming the file."""
        try:
            write()
            self._file.flush()
        except OSError as exc:
            if self.path is None:
                raise
            raise cannot_write(self.path, exc) from exc

    def write(self, row: Row) -> None:
        row = {**self.stamp, **row}
        values = {k: ('' if row.get(k) is None else row.get(k)) for k in self.fields}
        if self.jsonl:
            line = json.dumps({k: row.get(k) for k in self.fields}) + '\n'
            self._guarded(lambda: self._file.write(line))
        else:
            self._guarded(lambda: self._csv.writerow(values))

    def close(self) -> None:
        if self._owns_file:
            try:
                self._file.close()
            except OSError:  # the failed write was reported; the buffer cannot be saved
                pass
        else:  # stdout: flush, and let go of its buffer without closing it
            self._file.flush()
            self._file.detach()
