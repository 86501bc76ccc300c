"""One run at a time writes an output: it holds an advisory lock (``OUTPUT.lock``,
``flock``) that the kernel releases when the run ends in any way, so a crashed run never
leaves it stuck."""
from __future__ import annotations

import contextlib
import os

from ...errors import OutputError
from .writer import cannot_write

LOCK_SUFFIX = '.lock'


class OutputLock:
    """An exclusive advisory lock on ``path`` (through ``path.lock``) for the length of
    a run; :class:`OutputError` when another process holds it."""

    def __init__(self, path: str):
        import fcntl
        self.path = path + LOCK_SUFFIX
        try:
            self._file = open(self.path, 'a+')
        except OSError as exc:
            raise cannot_write(path, exc) from exc
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
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)  # while still held: no one else is in between
        self._file.close()
