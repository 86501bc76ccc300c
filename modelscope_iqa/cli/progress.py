"""How a long ``score`` or ``map`` run shows that it is working: a progress bar on a
terminal (tqdm, on stderr), a log line every :data:`LOG_INTERVAL_S` seconds with
``--verbose`` when stderr is not a terminal, and nothing otherwise (a piped or scripted
run prints only its rows)."""
from __future__ import annotations

import logging
import time
from typing import TextIO

LOG = logging.getLogger(__name__)
LOG_INTERVAL_S = 10.0


class RunProgress:
    """Follows the engine's progress reports (``files_done``, ``files_total``,
    ``frames_done``: the crops scored, a video's sampled frames included, so that a long
    video shows progress before its row is written)."""

    def __init__(self, files_total: int, stream: TextIO, show: bool, verbose: bool):
        self._bar = None
        self._log_lines = False
        self._last_line = self._started = time.monotonic()
        if not show:
            return
        if stream.isatty():
            from tqdm import tqdm
            self._bar = tqdm(total=files_total, unit='file', file=stream, dynamic_ncols=True)
        else:
            self._log_lines = verbose

    def __call__(self, progress) -> None:
        if self._bar is not None:
            self._bar.update(progress.files_done - self._bar.n)
            self._bar.set_postfix(frames=progress.frames_done, refresh=False)
        elif self._log_lines and time.monotonic() - self._last_line >= LOG_INTERVAL_S:
            self._last_line = time.monotonic()
            LOG.info('%d of %d inputs done, %d images and video frames scored, %.0f s',
                     progress.files_done, progress.files_total, progress.frames_done,
                     self._last_line - self._started)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
