"""Result files of ``score``: CSV or JSON Lines by extension, one row per input (and per
frame with ``--per-frame``), flushed as written; and the one place that owns resuming
and the per-rank part files of multi-process runs (:class:`RunOutput`).

Rows are flushed to the operating system as they are written, so a run killed at any
moment (even ``kill -9``) keeps every row it wrote, at most one partial last line, which
``--resume`` drops before appending. A failed write (a full disk, a file-size limit, an
I/O error) stops the run with :class:`OutputError` naming the file and the cause; the
rows before it stay. One run at a time writes an output: it holds an advisory lock
(``OUTPUT.lock``, ``flock``) that the kernel releases when the run ends in any way, so a
crashed run never leaves it stuck.

Under ``torchrun`` each rank writes its rows to a part file next to the output
(``OUTPUT.rank<R>.part``, same format as OUTPUT). When all ranks are done, rank 0
appends the parts' rows to OUTPUT in input order and the parts are removed. A run killed
before that leaves the part files; ``--resume`` (with any number of processes) folds
their complete rows into OUTPUT first, so nothing already scored is lost.

Every row records the weights that produced it (``model_version``, ``model_sha256``);
``--resume`` refuses an output or part file with a row of other weights (or of none), so
the scores of two models never mix in one file.
"""
from __future__ import annotations

import csv
import glob
import io
import json
import logging
import os
import sys
from typing import Dict, Iterable, List, Optional, Sequence, Set

from .. import distributed
from ..errors import OutputError
from ..identity import SHA256_FIELD, ModelIdentity

LOG = logging.getLogger(__name__)
PART_SUFFIX = '.part'
LOCK_SUFFIX = '.lock'
RESUME_ADVICE = 'the rows written before stay; fix the cause, then run again with --resume'
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


def _write_error(path: str, exc: OSError) -> OutputError:
    return OutputError(f'{path!r}: cannot write ({exc.strerror or exc}); {RESUME_ADVICE}')


class OutputLock:
    """An exclusive advisory lock on ``path`` (through ``path.lock``) for the length of
    a run; :class:`OutputError` when another process holds it."""

    def __init__(self, path: str):
        import fcntl
        self.path = path + LOCK_SUFFIX
        try:
            self._file = open(self.path, 'a+')
        except OSError as exc:
            raise _write_error(path, exc) from exc
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or 'unknown'
            self._file.close()
            raise OutputError(f'{path!r}: another run (pid {holder}) is writing it; wait '
                              'for it to end, or write elsewhere') from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def release(self) -> None:
        if self._file.closed:
            return
        _remove_quietly([self.path])  # while still held: no one else is in between
        self._file.close()


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


def _csv_header(path: str) -> List[str]:
    with open(path, newline='', encoding='utf-8') as f:
        return next(csv.reader(f), [])


class ResultWriter:
    """Writes rows with the columns ``fields`` to ``path`` (stdout if None), in the
    format of ``like`` when given (else of ``path``); ``stamp``'s columns (the model's
    identity) are added to every row that lacks them. Rows appended to a CSV file follow
    its header's columns."""

    def __init__(self, path: Optional[str], fields: Iterable[str], append: bool = False,
                 like: Optional[str] = None, stamp: Optional[Row] = None):
        self.fields = list(fields)
        self.stamp = dict(stamp or {})
        self.jsonl = _is_jsonl(like or path)
        existing = append and path is not None and os.path.exists(path) and \
            os.path.getsize(path) > 0
        if path is None:
            self._file = io.TextIOWrapper(sys.stdout.buffer, encoding='utf-8',
                                          newline='', line_buffering=True,
                                          write_through=True)
            self._owns_file = False
        else:
            try:
                if existing:
                    _drop_partial_last_line(path)
                self._file = open(path, 'a' if existing else 'w', newline='',
                                  encoding='utf-8')
            except OSError as exc:
                raise _write_error(path, exc) from exc
            self._owns_file = True
        self.path = path
        if existing and not self.jsonl:
            # appended rows follow the file's own columns (one an earlier version wrote)
            self.fields = _csv_header(path) or self.fields
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
            raise _write_error(self.path, exc) from exc

    def write(self, row: Dict[str, object]) -> None:
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


def completed_inputs(rows: Iterable[Dict[str, str]]) -> Set[str]:
    """Inputs that already have their (whole-file) row: scored or failed."""
    return {row['path'] for row in rows if not _is_frame_row(row)}


def _is_frame_row(row: Row) -> bool:
    """A per-frame row (its ``frame`` is a number: 0 in JSON Lines, '0' in CSV)."""
    return row.get('frame') not in (None, '')


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
        if not _is_frame_row(row):
            complete[path] = groups.pop(path)
    return complete


def in_input_order(groups: Dict[str, List[Row]], inputs: Sequence[str]) -> List[Row]:
    """The groups' rows, inputs in the order of ``inputs``; inputs not listed there
    (from an earlier run with other arguments) come last, in their own order."""
    position = {path: i for i, path in enumerate(inputs)}
    ordered = sorted(groups, key=lambda path: position.get(path, len(position)))
    return [row for path in ordered for row in groups[path]]


def _remove_quietly(paths: Iterable[str]) -> None:
    """Remove files; another rank sharing the file system may have removed them first."""
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


class RunOutput:
    """Where one ``score`` run writes: ``output`` (None: stdout), resumed or fresh, by
    one process or by the ranks of a process group (every rank builds one).

    :meth:`start` settles what is left to score (recovering the part files of an
    interrupted multi-process run, skipping inputs already in the output on resume),
    :meth:`writer` gives this rank's writer, :meth:`finish` merges the ranks' rows."""

    def __init__(self, output: Optional[str], fields: Sequence[str], resume: bool,
                 identity: ModelIdentity):
        self.output = output
        self.fields = list(fields)
        self.resume = resume
        self.identity = identity
        self.ranks = distributed.current()
        self._part = (f'{output}.rank{self.ranks.rank}{PART_SUFFIX}'
                      if output is not None and self.ranks.distributed else None)
        self._lock: Optional[OutputLock] = None

    def _on_main_for_all(self, action) -> None:
        """Run ``action`` on rank 0; when it raises :class:`OutputError`, every rank
        raises the same error."""
        refusal = None
        if self.ranks.is_main:
            try:
                action()
            except OutputError as exc:
                refusal = str(exc)
        refusal = distributed.broadcast_from_main(refusal)
        if refusal is not None:
            raise OutputError(refusal)

    def _take_lock(self) -> None:
        """Rank 0 locks the output."""
        def lock() -> None:
            self._lock = OutputLock(self.output)
        self._on_main_for_all(lock)

    def close(self) -> None:
        """Let go of the output's lock (the kernel does it too if the process dies)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def start(self, inputs: Sequence[str]) -> List[str]:
        """The inputs still to score, the same list on every rank."""
        if self.output is None:
            return list(inputs)
        self._take_lock()
        self._recover_leftover_parts(inputs)
        todo = list(inputs)
        if self.ranks.is_main:
            if self.resume:
                done = completed_inputs(read_rows(self.output))
                todo = [p for p in inputs if p not in done]
                LOG.info('resume: %d inputs already in %s', len(done), self.output)
            if self.ranks.distributed:  # start (or keep) the merged file; ranks write parts
                ResultWriter(self.output, self.fields, append=self.resume).close()
        return distributed.broadcast_from_main(todo)

    def writer(self) -> ResultWriter:
        stamp = self.identity.fields()
        if self._part is not None:
            return ResultWriter(self._part, self.fields, like=self.output, stamp=stamp)
        return ResultWriter(self.output, self.fields, append=self.resume, stamp=stamp)

    def _check_identity(self, rows: Iterable[Row], source: str) -> None:
        """Refuse to resume ``source`` when a row of it was written by other weights."""
        for row in rows:
            if not self.identity.matches(row):
                recorded = row.get(SHA256_FIELD) or 'no model identity (an older version)'
                raise OutputError(
                    f'{source!r}: its rows were written by other weights ({recorded}), not '
                    f'by this model {self.identity.describe()}; resuming would mix two '
                    "models' scores in one file. Write to another --output, or rerun "
                    'without --resume to replace it')

    def finish(self, todo: Sequence[str]) -> None:
        """Multi-process runs: rank 0 appends every rank's rows to the output in input
        order; the part files go."""
        if self._part is None:
            return
        parts = distributed.all_gather(read_rows(self._part, like=self.output))
        if self.ranks.is_main:
            self._append_in_input_order((r for rows in parts for r in rows), todo)
        distributed.barrier()
        os.remove(self._part)

    def _append_in_input_order(self, rows: Iterable[Row], inputs: Sequence[str],
                               skip: Iterable[str] = ()) -> int:
        skip = set(skip)
        groups = {path: group for path, group in complete_groups(rows).items()
                  if path not in skip}
        writer = ResultWriter(self.output, self.fields, append=True)
        ordered = in_input_order(groups, inputs)
        for row in ordered:
            writer.write(row)
        writer.close()
        return len(ordered)

    def _recover_leftover_parts(self, inputs: Sequence[str]) -> None:
        """Part files of an interrupted multi-process run: on resume their complete rows
        are appended to the output (inputs already there are not repeated); a fresh run
        discards them. Every rank takes part (the parts may lie on its machine)."""
        parts = sorted(glob.glob(glob.escape(self.output) + '.rank*' + PART_SUFFIX))
        found = distributed.all_gather(
            [row for part in parts for row in read_rows(part, like=self.output)])
        written: List[Row] = []
        if self.resume:
            def check() -> None:  # before anything is appended
                self._check_identity((row for rows in found for row in rows),
                                     f'{self.output}.rank*{PART_SUFFIX}')
                written.extend(read_rows(self.output))
                self._check_identity(written, self.output)
            self._on_main_for_all(check)
        if self.resume and self.ranks.is_main and any(found):
            recovered = self._append_in_input_order(
                (row for rows in found for row in rows), inputs,
                skip=completed_inputs(written))
            LOG.info('resume: recovered %d rows from %d part files', recovered, len(parts))
        distributed.barrier()
        _remove_quietly(parts)
        distributed.barrier()
