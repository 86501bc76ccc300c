"""Resuming, as pure functions of rows already read: which inputs an output holds, which
rows of an interrupted multi-process run's part files to append, and which inputs are
left to score.

An input is complete when its whole-file row (the one without a ``frame``) was written;
its per-frame rows precede it. Every row records the weights that produced it
(``model_version``, ``model_sha256``); a row of other weights, or of none, is refused, so
the scores of two models never mix in one file."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Set

from ...errors import OutputError
from ...identity import SHA256_FIELD, ModelIdentity
from .formats import Row


def is_frame_row(row: Row) -> bool:
    """A per-frame row (its ``frame`` is a number: 0 in JSON Lines, '0' in CSV)."""
    return row.get('frame') not in (None, '')


def completed_inputs(rows: Iterable[Row]) -> Set[str]:
    """Inputs that already have their whole-file row: scored or failed."""
    return {str(row['path']) for row in rows if not is_frame_row(row)}


def complete_groups(rows: Iterable[Row]) -> Dict[str, List[Row]]:
    """Rows grouped by input, keeping only complete inputs. The first complete group of
    an input wins: ranks sharing a file system read the same part files."""
    groups: Dict[str, List[Row]] = {}
    complete: Dict[str, List[Row]] = {}
    for row in rows:
        path = str(row['path'])
        if path in complete:
            continue
        groups.setdefault(path, []).append(row)
        if not is_frame_row(row):
            complete[path] = groups.pop(path)
    return complete


def in_input_order(groups: Dict[str, List[Row]], inputs: Sequence[str]) -> List[Row]:
    """The groups' rows, inputs in the order of ``inputs``; inputs not listed there
    (from an earlier run with other arguments) come last, in their own order."""
    position = {path: i for i, path in enumerate(inputs)}
    ordered = sorted(groups, key=lambda path: position.get(path, len(position)))
    return [row for path in ordered for row in groups[path]]


def rows_to_append(rows: Iterable[Row], inputs: Sequence[str],
                   skip: Iterable[str] = ()) -> List[Row]:
    """The rows of the complete inputs not in ``skip``, in input order."""
    skip = set(skip)
    groups = {path: group for path, group in complete_groups(rows).items()
              if path not in skip}
    return in_input_order(groups, inputs)


def check_identity(rows: Iterable[Row], identity: ModelIdentity, source: str) -> None:
    """Refuse to resume ``source`` (a name for messages) when a row of it was written by
    other weights than ``identity``'s."""
    for row in rows:
        if not identity.matches(row):
            recorded = row.get(SHA256_FIELD) or 'no model identity (an older version)'
            raise OutputError(
                f'{source!r}: its rows were written by other weights ({recorded}), not '
                f'by this model {identity.describe()}; resuming would mix two '
                "models' scores in one file. Write to another --output, or rerun "
                'without --resume to replace it')


@dataclass(frozen=True)
class ResumePlan:
    """``append``: part-file rows to add to the output, in input order; ``todo``: the
    inputs left to score, in input order; ``done``: how many inputs (this run's or an
    earlier run's) have their row once ``append`` is written."""
    append: List[Row]
    todo: List[str]
    done: int


def plan_resume(output_rows: Sequence[Row], part_rows: Sequence[Row],
                inputs: Sequence[str], identity: ModelIdentity, output: str = 'the output',
                parts: str = 'the part files') -> ResumePlan:
    """How to resume an output whose complete rows are ``output_rows``, with the part
    files' complete rows ``part_rows`` (all ranks'); ``output`` and ``parts`` name them
    in a refusal (:class:`OutputError`, the part files checked first)."""
    check_identity(part_rows, identity, parts)
    check_identity(output_rows, identity, output)
    written = completed_inputs(output_rows)
    append = rows_to_append(part_rows, inputs, skip=written)
    done = written | completed_inputs(append)
    return ResumePlan(append, [path for path in inputs if path not in done], len(done))
