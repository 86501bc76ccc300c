"""Where one ``score`` run writes, by one process or by the ranks of a process group:
the files, the lock and the barriers; what to append and to score is decided by
:mod:`.resume`.

Under ``torchrun`` each rank writes its rows to a part file next to the output
(``OUTPUT.rank<R>.part``, same format as OUTPUT). When all ranks are done, rank 0
appends the parts' rows to OUTPUT in input order and the parts are removed. A run killed
before that leaves the part files; ``--resume`` (with any number of processes) folds
their complete rows into OUTPUT first, so nothing already scored is lost.
"""
from __future__ import annotations

import contextlib
import glob
import logging
import os
from typing import Callable, List, Optional, Sequence

from ... import distributed
from ...errors import OutputError
from ...identity import ModelIdentity
from .formats import Row, drop_partial_last_line, read_rows
from .lock import OutputLock
from .resume import plan_resume, rows_to_append
from .writer import ResultWriter, cannot_write

LOG = logging.getLogger(__name__)
PART_SUFFIX = '.part'


class RunOutput:
    """Where one ``score`` run writes: ``output`` (None: stdout), resumed or fresh, by
    one process or by the ranks of a process group (every rank builds one).

    :meth:`start` settles what is left to score, :meth:`writer` gives this rank's
    writer, :meth:`finish` merges the ranks' rows, :meth:`close` lets go of the lock."""

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

    def _on_main_for_all(self, action: Callable[[], None]) -> None:
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

    def close(self) -> None:
        """Let go of the output's lock (the kernel does it too if the process dies)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def start(self, inputs: Sequence[str]) -> List[str]:
        """The inputs still to score, the same list on every rank. Part files left by an
        interrupted multi-process run are folded into the output on resume (every rank
        reads those it sees: they may lie on its machine) and removed either way."""
        if self.output is None:
            return list(inputs)

        def lock() -> None:
            self._lock = OutputLock(self.output)
        self._on_main_for_all(lock)
        parts = sorted(glob.glob(glob.escape(self.output) + '.rank*' + PART_SUFFIX))
        part_rows: List[Row] = []
        if self.resume:
            found = distributed.all_gather(
                [row for part in parts for row in read_rows(part, like=self.output)])
            part_rows = [row for rows in found for row in rows]
        todo = list(inputs)

        def prepare() -> None:
            nonlocal todo
            todo = self._prepare(inputs, part_rows, len(parts))
        self._on_main_for_all(prepare)
        distributed.barrier()
        for part in parts:
            with contextlib.suppress(FileNotFoundError):  # another rank removed it first
                os.remove(part)
        distributed.barrier()
        return distributed.broadcast_from_main(todo)

    def _prepare(self, inputs: Sequence[str], part_rows: List[Row], parts: int) -> List[str]:
        """Rank 0: on resume, read the output (once), refuse rows of other weights, cut
        a partial last line, append the part files' rows; under several processes,
        start (or keep) the merged output. The inputs left to score."""
        todo = list(inputs)
        if self.resume:
            plan = plan_resume(read_rows(self.output), part_rows, inputs, self.identity,
                               self.output, f'{self.output}.rank*{PART_SUFFIX}')
            try:  # before anything is appended
                if drop_partial_last_line(self.output):
                    LOG.info('resume: dropped the partial last line of %s', self.output)
            except OSError as exc:
                raise cannot_write(self.output, exc) from exc
            if part_rows:
                self._append(plan.append)
                LOG.info('resume: recovered %d rows from %d part files', len(plan.append),
                         parts)
            LOG.info('resume: %d inputs already in %s', plan.done, self.output)
            todo = plan.todo
        if self.ranks.distributed:  # ranks write parts
            ResultWriter(self.output, self.fields, append=self.resume).close()
        return todo

    def writer(self) -> ResultWriter:
        stamp = self.identity.fields()
        if self._part is not None:
            return ResultWriter(self._part, self.fields, like=self.output, stamp=stamp)
        return ResultWriter(self.output, self.fields, append=self.resume, stamp=stamp)

    def finish(self, todo: Sequence[str]) -> None:
        """Multi-process runs: rank 0 appends every rank's rows to the output in input
        order; the part files go."""
        if self._part is None:
            return
        parts = distributed.all_gather(read_rows(self._part, like=self.output))
        if self.ranks.is_main:
            self._append(rows_to_append((row for rows in parts for row in rows), todo))
        distributed.barrier()
        os.remove(self._part)

    def _append(self, rows: Sequence[Row]) -> None:
        writer = ResultWriter(self.output, self.fields, append=True)
        for row in rows:
            writer.write(row)
        writer.close()
