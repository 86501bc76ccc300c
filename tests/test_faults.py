"""Batch scoring under the faults of long runs: kill -9 at any moment, a full disk, a
hanging server, two writers, 10,000 files, files that vanish, broken videos. Each
row of docs/faults.md's faults table is backed by a test here."""
import contextlib
import csv
import glob
import http.server
import os
import random
import resource
import signal
import socketserver
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import identity_columns, make_image
from modelscope_iqa.cli.score import SCORE_FIELDS
from modelscope_iqa.errors import InputError, OutputError
from modelscope_iqa.preprocessors import decode
from modelscope_iqa.preprocessors.decoding import (URL_MAX_BYTES_ENV, URL_TIMEOUT_ENV,
                                                  _deadline_error, _download)
from modelscope_iqa.scoring import score_files
from modelscope_iqa.video import sample_frames

IMAGES = 48
POLL_S = 0.002
RUN_TIMEOUT_S = 600


def _command(*args, processes=1):
    launcher = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
                f'--nproc-per-node={processes}'] if processes > 1 else [sys.executable]
    return [*launcher, '-m', 'modelscope_iqa', *map(str, args)]


def _env(**extra):
    return dict(os.environ, OMP_NUM_THREADS='1', **extra)


def _rows(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def _complete_lines(path):
    """Lines of a result file that end in a newline."""
    text = open(path, newline='').read() if os.path.exists(path) else ''
    return text.count('\n')


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp('fault_images')
    for i in range(IMAGES):
        Image.fromarray(make_image(120 + i % 5 * 20, 200, seed=i)).save(folder / f'{i:03d}.png')
    return folder


@pytest.fixture(scope='module')
def clean_scores(image_folder, small_model_dir, tmp_path_factory):
    """The scores of an uninterrupted run, to compare every recovered run with."""
    output = tmp_path_factory.mktemp('clean') / 'clean.csv'
    result = subprocess.run(_command('score', image_folder, '--model', small_model_dir,
                                     '--output', output, '--workers', 0),
                            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=_env())
    assert result.returncode == 0, result.stderr
    return {row['path']: row['score'] for row in _rows(output)}


def _descendants(pid):
    """Every process below ``pid`` (torchrun starts its workers in sessions of their
    own, so a process group does not reach them)."""
    children = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    parent = int(f.read().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_when(process, condition, delay):
    """SIGKILL the process and all its descendants at once when ``condition()`` holds,
    ``delay`` s later."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not condition():
        assert process.poll() is None, 'the run ended before the kill'
        assert time.monotonic() < deadline
        time.sleep(POLL_S)
    time.sleep(delay)
    for pid in [process.pid, *_descendants(process.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=60)


def _check_kept_and_resume(output, clean_scores, image_folder, small_model_dir):
    text = open(output, newline='').read()
    lines = text.split('\n')
    assert lines[0] == ','.join(SCORE_FIELDS)
    identity = identity_columns(small_model_dir)
    # Every complete line is a whole row; at most the last is cut short.
    complete = lines[1:-1]
    for line in complete:
        row = dict(zip(SCORE_FIELDS, next(csv.reader([line]))))
        path, score, sha256, version = (row['path'], row['score'], row['model_sha256'],
                                        row['model_version'])
        assert score == clean_scores[path] and row['error'] == '' and row['frames'] == ''
        assert version == '' and sha256 == identity['model_sha256']
    kept = len(complete)
    resumed = subprocess.run(_command('score', image_folder, '--model', small_model_dir,
                                      '--output', output, '--workers', 0, '--resume'),
                             capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                             env=_env())
    assert resumed.returncode == 0, resumed.stderr
    rows = _rows(output)
    assert sorted(row['path'] for row in rows) == sorted(clean_scores)  # each input once
    assert {row['path']: row['score'] for row in rows} == clean_scores
    assert {row['model_sha256'] for row in rows} == {identity['model_sha256']}
    return kept


@pytest.mark.slow
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_sigkill_keeps_written_rows_and_resume_finishes(seed, image_folder, small_model_dir,
                                                        clean_scores, tmp_path):
    rng = random.Random(seed)
    target, delay = rng.randrange(1, IMAGES - 4), rng.uniform(0, 0.02)
    output = tmp_path / 'scores.csv'
    process = subprocess.Popen(_command('score', image_folder, '--model', small_model_dir,
                                        '--output', output, '--workers', 0),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=_env(), start_new_session=True)
    _kill_when(process, lambda: _complete_lines(output) > target, delay)
    assert process.returncode == -signal.SIGKILL
    kept = _check_kept_and_resume(output, clean_scores, image_folder, small_model_dir)
    assert target <= kept < IMAGES


SLOW_IMAGES = 16


@pytest.fixture(scope='module')
def slow_run(tmp_path_factory, our_model_dir):
    """Images scored at the full crop size (about 0.5 s each on one thread), so that a
    two-process run lasts long enough to be killed mid-way; and their clean scores."""
    folder = tmp_path_factory.mktemp('slow_images')
    for i in range(SLOW_IMAGES):
        Image.fromarray(make_image(180, 320, seed=50 + i)).save(folder / f'{i:02d}.png')
    output = tmp_path_factory.mktemp('slow_clean') / 'clean.csv'
    result = subprocess.run(_command('score', folder, '--model', our_model_dir, '--output',
                                     output, '--workers', 0),
                            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=_env())
    assert result.returncode == 0, result.stderr
    return folder, {row['path']: row['score'] for row in _rows(output)}


@pytest.mark.slow
@pytest.mark.parametrize('seed', [0, 1])
def test_sigkill_of_a_multi_process_run_and_resume(seed, slow_run, our_model_dir, tmp_path):
    image_folder, clean_scores = slow_run
    rng = random.Random(100 + seed)
    target, delay = rng.randrange(1, SLOW_IMAGES // 2 - 2), rng.uniform(0, 0.02)
    output = tmp_path / 'scores.csv'
    process = subprocess.Popen(_command('score', image_folder, '--model', our_model_dir,
                                        '--output', output, '--workers', 0, processes=2),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=_env(), start_new_session=True)

    def part_rows():
        return sum(_complete_lines(p) - 1 for p in glob.glob(f'{output}.rank*.part'))
    _kill_when(process, lambda: part_rows() > target, delay)
    assert len(_rows(output)) == 0  # killed before the merge: the rows are in the parts
    resumed = subprocess.run(_command('score', image_folder, '--model', our_model_dir,
                                      '--output', output, '--workers', 0, '--resume', '-v'),
                             capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                             env=_env())
    assert resumed.returncode == 0, resumed.stderr
    assert 'recovered' in resumed.stderr
    rows = _rows(output)
    assert sorted(row['path'] for row in rows) == sorted(clean_scores)
    assert {row['path']: row['score'] for row in rows} == clean_scores
    assert not glob.glob(f'{output}.rank*.part')


def _limit_file_size(limit):
    def limit_in_child():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limit_in_child


@pytest.mark.slow
def test_a_full_disk_stops_the_run_naming_the_file_and_resume_continues(
        image_folder, small_model_dir, clean_scores, tmp_path):
    output = tmp_path / 'scores.csv'
    limit = 2000  # bytes: the header and about a dozen rows
    full = subprocess.run(_command('score', image_folder, '--model', small_model_dir,
                                   '--output', output, '--workers', 0),
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=_env(),
                          preexec_fn=_limit_file_size(limit))
    assert full.returncode == 3, full.stderr
    assert f"{str(output)!r}: cannot write (File too large)" in full.stderr
    assert '--resume' in full.stderr
    assert os.path.getsize(output) <= limit
    kept = _check_kept_and_resume(output, clean_scores, image_folder, small_model_dir)
    assert 0 < kept < IMAGES


def test_an_unwritable_output_is_refused_naming_it(tmp_path, small_model_dir, image_folder,
                                                  capsys):
    from modelscope_iqa.cli.main import main
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    output = blocker / 'scores.csv'
    assert main(['score', str(image_folder / '000.png'), '--model', str(small_model_dir),
                 '--output', str(output), '--workers', '0']) == 3
    assert f'{str(output)!r}: cannot write (Not a directory)' in capsys.readouterr().err


def _written_by(output, sha256, paths, suffix=''):
    """A result file (CSV) whose rows say ``sha256`` produced them."""
    with open(f'{output}{suffix}', 'w', newline='') as f:
        writer = csv.writer(f, lineterminator='\n')
        writer.writerow(['path', 'score', 'error', 'frames', 'model_version', 'model_sha256'])
        for path in paths:
            writer.writerow([path, '0.5', '', '', '', sha256])


@pytest.mark.parametrize('where', ['output', 'part file', 'no identity'])
def test_resume_refuses_rows_of_other_weights(where, tmp_path, small_model_dir,
                                              image_folder, capsys):
    """Scores of two models never mix in one file: a resumed output (or a part file
    left by an interrupted multi-process run) written by other weights, or by a version
    that recorded none, is refused before anything is scored or appended."""
    from modelscope_iqa.cli.main import main
    output = tmp_path / 'scores.csv'
    first = str(image_folder / '000.png')
    ours = identity_columns(small_model_dir)['model_sha256']
    other = 'sha256:0123456789ab'
    if where == 'output':
        _written_by(output, other, [first])
    elif where == 'part file':
        _written_by(output, ours, [first])
        _written_by(output, other, [str(image_folder / '001.png')], '.rank1.part')
    else:
        output.write_text(f'path,score,error,frames\n{first},0.5,,\n')
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert main(['score', str(image_folder), '--model', str(small_model_dir), '--output',
                 str(output), '--workers', '0', '--resume']) == 3
    error = capsys.readouterr().err
    recorded = 'no model identity' if where == 'no identity' else other
    assert f'were written by other weights ({recorded}' in error
    assert f'not by this model unversioned ({ours})' in error
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()
            if not p.name.endswith('.lock')} == before  # nothing appended or removed
    # without --resume the file is replaced, every row by this model
    assert main(['score', str(image_folder), '--model', str(small_model_dir), '--output',
                 str(output), '--workers', '0']) == 0
    rows = _rows(output)
    assert len(rows) == IMAGES and {row['model_sha256'] for row in rows} == {ours}


@pytest.mark.slow
def test_a_second_writer_is_refused_and_a_killed_run_leaves_no_stuck_lock(
        slow_run, our_model_dir, tmp_path, capsys):
    from modelscope_iqa.cli.main import main
    image_folder, clean_scores = slow_run
    output = tmp_path / 'scores.csv'
    arguments = ['score', str(image_folder), '--model', str(our_model_dir), '--output',
                 str(output), '--workers', '0']
    first = subprocess.Popen(_command(*arguments), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=_env(), start_new_session=True)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while _complete_lines(output) < 2:
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(POLL_S)
    # A second run (here, in this process) on the same output, while the first writes:
    assert main(arguments + ['--resume']) == 3
    assert first.poll() is None  # the first was still writing
    assert f'another run (pid {first.pid}) is writing it' in capsys.readouterr().err
    os.kill(first.pid, signal.SIGKILL)  # the holder dies without releasing anything
    first.wait(timeout=60)
    assert os.path.exists(f'{output}.lock')  # left behind, but no longer held
    assert main(arguments + ['--resume']) == 0
    rows = _rows(output)
    assert sorted(row['path'] for row in rows) == sorted(clean_scores)  # each input once
    assert {row['path']: row['score'] for row in rows} == clean_scores
    assert not os.path.exists(f'{output}.lock')  # a run that ends removes it


# --- URLs ------------------------------------------------------------------------

class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


@contextlib.contextmanager
def _serving(handler):
    server = _Server(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}/photo.png'
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Hangs(_Quiet):
    def do_GET(self):
        time.sleep(30)  # accepts the request, never answers


class _Trickles(_Quiet):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        with contextlib.suppress(OSError):
            for _ in range(3000):
                self.wfile.write(b'x')
                self.wfile.flush()
                time.sleep(0.01)


class _Announces_too_much(_Quiet):
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', str(10 * 2**20))
        self.end_headers()


class _Streams_too_much(_Quiet):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()  # no Content-Length: the body ends when the connection does
        with contextlib.suppress(OSError):
            for _ in range(64):
                self.wfile.write(b'\0' * 65536)


@pytest.mark.parametrize('handler, message', [
    (_Hangs, 'no complete answer within 1.5 s'),
    (_Trickles, 'no complete answer within 1.5 s'),
    (_Announces_too_much, 'the server announces 10485760 bytes, more than the limit'),
    (_Streams_too_much, 'bytes, more than the limit of 1048576'),
], ids=['hangs', 'trickles', 'announces-too-much', 'streams-too-much'])
def test_bad_servers_are_bounded_input_errors_naming_the_url(handler, message, monkeypatch):
    """Each server that never finishes ends in the error of the bound that stopped it:
    the deadline's message for one that hangs or trickles (so the deadline, not a socket
    read of its own, ended the wait), the size limit's for one that sends too much. No
    clock is read here: the messages say which bound fired."""
    monkeypatch.setenv(URL_TIMEOUT_ENV, '1.5')
    monkeypatch.setenv(URL_MAX_BYTES_ENV, str(2**20))
    with _serving(handler) as url:
        with pytest.raises(InputError) as raised:
            decode(url)
    assert str(raised.value).startswith(repr(url)) and message in str(raised.value)


def test_a_socket_timeout_reads_like_the_deadline_it_races():
    # The download thread's socket timeout and the caller's deadline are the same number
    # of seconds; whichever fires first, the user reads the same message. Here the
    # thread runs alone, so its socket timeout is the one that fires.
    outcome = {}
    with _serving(_Hangs) as url:
        _download(url, 2**20, outcome, threading.Event(), timeout=0.5)
    assert 'data' not in outcome
    assert str(outcome['error']) == str(_deadline_error(url, 0.5))
    assert 'no complete answer within 0.5 s' in str(outcome['error'])


# --- a long run, and files that vanish or change under it --------------------------

def _vm_rss_mb(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    raise RuntimeError('no VmRSS')


LONG_RUN = 10_000
# Allowed RSS growth between 10% and 100% of the long run (benchmarks/long_run_memory.py
# measures it; this bound only catches a leak of about 5 kB per image or more).
LONG_RUN_GROWTH_MB = 50


@pytest.mark.slow
def test_ten_thousand_images_keep_memory_flat(tmp_path, small_model_dir):
    folder = tmp_path / 'many'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(LONG_RUN):
        cv2.imwrite(str(folder / f'{i:05d}.png'), rng.integers(0, 256, (24, 40, 3), np.uint8))
    output = tmp_path / 'many.csv'
    process = subprocess.Popen(_command('score', folder, '--model', small_model_dir,
                                        '--output', output, '--workers', 1, '-q'),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=_env())
    samples = {}
    deadline = time.monotonic() + 1800
    while process.poll() is None and time.monotonic() < deadline:
        done = _complete_lines(output) - 1
        for mark in (LONG_RUN // 10, LONG_RUN * 9 // 10):
            if done >= mark and mark not in samples:
                samples[mark] = _vm_rss_mb(process.pid)
        time.sleep(0.05)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    rows = _rows(output)
    assert len(rows) == LONG_RUN and len({row['path'] for row in rows}) == LONG_RUN
    assert all(row['error'] == '' for row in rows)
    early, late = samples[LONG_RUN // 10], samples[LONG_RUN * 9 // 10]
    assert late - early < LONG_RUN_GROWTH_MB, (early, late)


def test_files_that_vanish_or_change_during_the_run_are_error_rows(tmp_path,
                                                                   small_model_dir):
    from modelscope_iqa.hub import open_model_folder
    from modelscope_iqa.hub import load_model
    folder = open_model_folder(str(small_model_dir))
    network = load_model(folder).inference_network('fp32', 'cpu', folder.preprocess_config)
    paths = []
    for i in range(40):
        path = tmp_path / f'{i:02d}.jpg'
        Image.fromarray(make_image(90, 140, seed=i)).save(path, quality=90)
        paths.append(str(path))
    results = []
    for result in score_files(network, paths, folder.preprocess_config):
        results.append(result)
        if len(results) == 5:  # files further on vanish, or are cut short, mid-run
            for path in paths[10:20]:
                os.remove(path)
            for path in paths[20:30]:
                with open(path, 'r+b') as f:
                    f.truncate(200)
    assert [r.path for r in results] == paths  # one result each, in order, no crash
    assert all(r.score is not None for r in results[:10] + results[30:])
    assert all('no such file' in r.error for r in results[10:20])
    assert all('corrupt image' in r.error for r in results[20:30])


# --- videos -------------------------------------------------------------------------

@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('fault_videos')
    path = folder / 'whole.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10, (320, 180))
    for i in range(20):
        writer.write(make_image(180, 320, seed=i)[:, :, ::-1].copy())
    writer.release()
    data = path.read_bytes()
    (folder / 'truncated.avi').write_bytes(data[:len(data) // 2])
    frames_start, index_start = data.find(b'movi') + 4, data.find(b'idx1')
    blank = bytearray(data)
    blank[frames_start:index_start] = bytes(index_start - frames_start)
    (folder / 'no_frames.avi').write_bytes(bytes(blank))  # header intact, frames zeroed
    return folder


def test_broken_videos_are_error_rows_that_say_which_frames_decoded(videos):
    whole = [frame.number for frame in sample_frames(str(videos / 'whole.avi'))]
    assert whole == [0, 3, 5, 8, 11, 14, 16, 19]
    with pytest.raises(InputError, match=r'no decodable frame \(the video reports 20'):
        list(sample_frames(str(videos / 'no_frames.avi')))
    with pytest.raises(InputError) as truncated:
        list(sample_frames(str(videos / 'truncated.avi')))
    message = str(truncated.value)
    assert 'truncated or corrupt: decoded 5 of the 8 sampled frames' in message
    assert 'frames [0, 3, 5, 8, 11]' in message and 'not scored' in message


@pytest.mark.slow
def test_the_command_line_gives_broken_videos_error_rows(videos, small_model_dir, tmp_path):
    output = tmp_path / 'videos.csv'
    result = subprocess.run(_command('score', videos, '--model', small_model_dir,
                                     '--output', output, '--workers', 0),
                            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=_env())
    assert result.returncode == 1
    rows = {os.path.basename(row['path']): row for row in _rows(output)}
    assert rows['whole.avi']['frames'] == '8' and rows['whole.avi']['error'] == ''
    for name in ('truncated.avi', 'no_frames.avi'):
        assert rows[name]['score'] == '' and rows[name]['error']
    assert 'decoded 5 of the 8 sampled frames' in rows['truncated.avi']['error']
