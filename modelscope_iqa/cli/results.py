"""Result files: CSV or JSON Lines by extension, one row per input, flushed as written,
and readable back for ``--resume``."""
from __future__ import annotations

import csv
import io
import json
import os
import sys
from typing import Dict, Iterable, List, Optional, Set

JSONL_EXTENSIONS = ('.jsonl', '.ndjson')
CSV_EXTENSIONS = ('.csv', )
OUTPUT_EXTENSIONS = CSV_EXTENSIONS + JSONL_EXTENSIONS


def check_output_path(path: str) -> None:
    """Refuse an output file whose extension names no format we write."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in OUTPUT_EXTENSIONS:
        raise ValueError(f'{path!r}: the extension must be one of '
                         f'{", ".join(OUTPUT_EXTENSIONS)} (CSV or JSON Lines), '
                         f'got {extension or "none"!r}')


def _is_jsonl(path: Optional[str]) -> bool:
    return path is not None and path.lower().endswith(JSONL_EXTENSIONS)


def _drop_partial_last_line(path: str) -> None:
    """A run killed mid-write can leave half a row; cut the file back to its last
    complete line so that appended rows stay well-formed."""
    with open(path, 'rb+') as f:
        data = f.read()
        if data and not data.endswith(b'\n'):
            f.truncate(data.rfind(b'\n') + 1)


def read_rows(path: str, like: Optional[str] = None) -> List[Dict[str, str]]:
    """Complete rows of a result file (none if it does not exist); ``like`` names a
    file whose extension gives the format, when ``path``'s does not."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return []
    _drop_partial_last_line(path)
    with open(path, newline='', encoding='utf-8') as f:
        if _is_jsonl(like or path):
            return [json.loads(line) for line in f if line.strip()]
        return list(csv.DictReader(f))


class ResultWriter:
    """Writes rows with the columns ``fields`` to ``path`` (stdout if None), in the
    format of ``like`` when given (else of ``path``)."""

    def __init__(self, path: Optional[str], fields: Iterable[str], append: bool = False,
                 like: Optional[str] = None):
        self.fields = list(fields)
        self.jsonl = _is_jsonl(like or path)
        existing = append and path is not None and os.path.exists(path) and \
            os.path.getsize(path) > 0
        if path is None:
            self._file = io.TextIOWrapper(sys.stdout.buffer, encoding='utf-8',
                                          newline='', line_buffering=True,
                                          write_through=True)
            self._owns_file = False
        else:
            if existing:
                _drop_partial_last_line(path)
            self._file = open(path, 'a' if existing else 'w', newline='', encoding='utf-8')
            self._owns_file = True
        if not self.jsonl:
            self._csv = csv.DictWriter(self._file, fieldnames=self.fields,
                                       extrasaction='ignore', lineterminator='\n')
            if not existing:
                self._csv.writeheader()
                self._file.flush()

    def write(self, row: Dict[str, object]) -> None:
        values = {k: ('' if row.get(k) is None else row.get(k)) for k in self.fields}
        if self.jsonl:
            self._file.write(json.dumps({k: row.get(k) for k in self.fields}) + '\n')
        else:
            self._csv.writerow(values)
        self._file.flush()

    def close(self) -> None:
        if self._owns_file:
            self._file.close()
        else:
            self._file.flush()


def completed_inputs(rows: Iterable[Dict[str, str]]) -> Set[str]:
    """Inputs that already have their (whole-file) row: scored or failed."""
    return {row['path'] for row in rows if not row.get('frame')}
