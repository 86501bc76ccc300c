"""What a result file is: CSV or JSON Lines by its extension, one row a line. Reading a
file changes nothing; a partial last line (a run killed mid-write) is left out of what
is read, and only :func:`drop_partial_last_line` cuts it from the file."""
from __future__ import annotations

import csv
import io
import json
import os
from typing import Dict, List, Optional

Row = Dict[str, object]

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


def is_jsonl(path: Optional[str]) -> bool:
    return path is not None and path.lower().endswith(JSONL_EXTENSIONS)


def _complete_lines(path: str) -> bytes:
    """The file's bytes up to the end of its last complete line (none if it is absent)."""
    if not os.path.exists(path):
        return b''
    with open(path, 'rb') as f:
        data = f.read()
    return data[:data.rfind(b'\n') + 1]


def read_rows(path: str, like: Optional[str] = None) -> List[Dict[str, str]]:
    """The complete rows of a result file (none if it does not exist); ``like`` names a
    file whose extension gives the format, when ``path``'s does not."""
    lines = io.StringIO(_complete_lines(path).decode('utf-8'), newline='')
    if is_jsonl(like or path):
        return [json.loads(line) for line in lines if line.strip()]
    return list(csv.DictReader(lines))


def csv_header(path: str) -> List[str]:
    with open(path, newline='', encoding='utf-8') as f:
        return next(csv.reader(f), [])


def drop_partial_last_line(path: str) -> bool:
    """Cut a partial last line from the file (if it exists), so that appended rows stay
    well-formed; whether there was one."""
    if not os.path.exists(path):
        return False
    with open(path, 'rb') as f:
        data = f.read()
    if not data or data.endswith(b'\n'):
        return False
    os.truncate(path, data.rfind(b'\n') + 1)
    return True
