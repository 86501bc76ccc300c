"""Result files of multi-process scoring.

Under ``torchrun`` each rank writes its rows, flushed one by one, to a part file next to
the output (``OUTPUT.rank<R>.part``, same format as OUTPUT). When all ranks are done,
rank 0 appends the parts' rows to OUTPUT in input order and the parts are removed. A run
killed before that leaves the part files; ``--resume`` (with any number of processes)
folds their complete rows into OUTPUT first, so nothing already scored is lost.
"""
from __future__ import annotations

import glob
import os
from typing import Dict, Iterable, List, Sequence

from .results import ResultWriter, read_rows

PART_SUFFIX = '.part'

Row = Dict[str, object]


def part_path(output: str, rank: int) -> str:
    return f'{output}.rank{rank}{PART_SUFFIX}'


def leftover_parts(output: str) -> List[str]:
    """Part files of ``output`` that an earlier, interrupted run left behind."""
    return sorted(glob.glob(glob.escape(output) + '.rank*' + PART_SUFFIX))


def read_part(path: str, output: str) -> List[Row]:
    """Rows of a part file, read in the format of ``output``."""
    return read_rows(path, like=output)


def complete_groups(rows: Iterable[Row]) -> Dict[str, List[Row]]:
    """Rows grouped by input, keeping only inputs whose whole-file row (the one without
    a ``frame``) was written; per-frame rows precede it. The first complete group of an
    input wins: ranks sharing a file system read the same part files."""
    groups: Dict[str, List[Row]] = {}
    complete: Dict[str, List[Row]] = {}
    for row in rows:
        path = str(row['path'])
        if path in complete:
            continue
        groups.setdefault(path, []).append(row)
        if not row.get('frame'):
            complete[path] = groups.pop(path)
    return complete


def in_input_order(groups: Dict[str, List[Row]], inputs: Sequence[str]) -> List[Row]:
    """The groups' rows, inputs in the order of ``inputs``; inputs not listed there
    (from an earlier run with other arguments) come last, in their own order."""
    position = {path: i for i, path in enumerate(inputs)}
    ordered = sorted(groups, key=lambda path: position.get(path, len(position)))
    return [row for path in ordered for row in groups[path]]


def append_in_input_order(output: str, fields: Sequence[str], rows: Iterable[Row],
                          inputs: Sequence[str], skip: Iterable[str] = ()) -> int:
    """Append to ``output`` the complete row groups among ``rows`` (see
    :func:`complete_groups`), inputs in the order of ``inputs``, leaving out the inputs
    in ``skip``. Returns the number of rows written."""
    skip = set(skip)
    groups = {path: group for path, group in complete_groups(rows).items()
              if path not in skip}
    writer = ResultWriter(output, fields, append=True)
    ordered = in_input_order(groups, inputs)
    for row in ordered:
        writer.write(row)
    writer.close()
    return len(ordered)


def remove_quietly(paths: Iterable[str]) -> None:
    """Remove files; another rank sharing the file system may have removed them first."""
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
