"""What a long run shows while it works: a bar on a terminal, periodic lines with
--verbose elsewhere, nothing when piped."""
import fcntl
import io
import logging
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

from modelscope_iqa.cli import progress as progress_module
from modelscope_iqa.cli.progress import LOG_INTERVAL_S, RunProgress
from modelscope_iqa.scoring import Progress

CLIP = Path(__file__).resolve().parent.parent / 'samples' / 'cups_pan.mp4'


class Terminal(io.StringIO):
    def isatty(self):
        return True


def reports(progress, steps):
    for files_done, frames_done in steps:
        progress(Progress(files_done=files_done, files_total=3, frames_done=frames_done))


def test_a_terminal_gets_a_bar_counting_files_and_frames():
    terminal = Terminal()
    progress = RunProgress(3, terminal, show=True, verbose=False)
    reports(progress, [(0, 4), (1, 8), (3, 10)])
    progress.close()
    last = terminal.getvalue().replace('\r', '\n').strip().splitlines()[-1]
    assert '3/3' in last and 'frames=10' in last


def test_elsewhere_verbose_logs_a_line_per_interval(monkeypatch, caplog):
    clock = iter([0.0, 1.0, LOG_INTERVAL_S + 0.5, LOG_INTERVAL_S + 0.5, LOG_INTERVAL_S + 2])
    monkeypatch.setattr(progress_module.time, 'monotonic', lambda: next(clock))
    stream = io.StringIO()
    with caplog.at_level(logging.INFO, logger=progress_module.__name__):
        progress = RunProgress(3, stream, show=True, verbose=True)  # reads the clock once
        reports(progress, [(0, 4), (1, 8), (2, 9)])  # 1 s: none; 10.5 s: a line; 12 s: none
    assert [record.getMessage() for record in caplog.records] == [
        f'1 of 3 inputs done, 8 images and video frames scored, {LOG_INTERVAL_S + 0.5:.0f} s']
    assert stream.getvalue() == ''


def test_elsewhere_without_verbose_or_quiet_nothing(caplog):
    for show, verbose in ((True, False), (False, True)):
        stream = io.StringIO()
        with caplog.at_level(logging.INFO):
            progress = RunProgress(3, stream, show=show, verbose=verbose)
            reports(progress, [(0, 4), (3, 10)])
            progress.close()
        assert stream.getvalue() == '' and not caplog.records


def test_the_command_draws_a_bar_on_a_terminal_while_a_video_is_scored(tmp_path):
    """A single video's bar shows its frames before its row is written."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 100, 0, 0))
    run = subprocess.Popen(
        [sys.executable, '-m', 'modelscope_iqa', 'score', str(CLIP), '--fps', '2',
         '--workers', '0', '--output', str(tmp_path / 'scores.csv')],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    drawn = b''
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the run closed its end
            break
        if not chunk:
            break
        drawn += chunk
    os.close(controller)
    assert run.wait(timeout=300) == 0
    states = drawn.decode().replace('\r', '\n').split('\n')
    assert any('0/1' in state and 'frames=' in state and 'frames=0' not in state
               for state in states), drawn
    assert '1/1' in states[-1] or any('1/1' in state and 'frames=8' in state
                                      for state in states), drawn
