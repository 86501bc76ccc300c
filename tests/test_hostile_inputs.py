"""Hostile inputs and faults: every accepted input scores like its plain 8-bit RGB
equivalent, every refused one raises an InputError naming it (the CLI records a row and
goes on), random bytes and arrays never escape as other exceptions, evaluation data is
validated, and a killed run resumes without loss or duplicates."""
import contextlib
import csv
import http.server
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from modelscope.outputs import OutputKeys
from modelscope.pipelines import pipeline
from modelscope.utils.constant import Tasks
from PIL import Image, ImageFile

from conftest import make_image, png_header_only
from modelscope_iqa.errors import DatasetError, InputError, UnsupportedArrayError
from modelscope_iqa.preprocessors import decode


@pytest.fixture(scope='module')
def scorer(small_model_dir):
    return pipeline(Tasks.image_quality_assessment_mos, model=str(small_model_dir))


def _rgb(height=90, width=140, seed=0):
    return make_image(height, width, seed=seed)


def _save(image, path, **options):
    image.save(path, **options)
    return path


# name -> writer(folder) returning the file; each must score as Image.open(f).convert('RGB')
VALID_FILES = {
    'grey_L.png': lambda d: _save(Image.fromarray(_rgb()[:, :, 0]), d / 'grey_L.png'),
    'grey_LA.png': lambda d: _save(Image.fromarray(_rgb()[:, :, :2].copy(), 'LA'),
                                   d / 'grey_LA.png'),
    'rgba.png': lambda d: _save(Image.fromarray(np.dstack([_rgb(), _rgb(seed=1)[:, :, 0]])),
                                d / 'rgba.png'),
    'palette.png': lambda d: _save(Image.fromarray(_rgb()).convert('P'), d / 'palette.png'),
    'cmyk.jpg': lambda d: _save(Image.fromarray(_rgb()).convert('CMYK'), d / 'cmyk.jpg'),
    'progressive.jpg': lambda d: _save(Image.fromarray(_rgb()), d / 'progressive.jpg',
                                       progressive=True, quality=80),
    'rgb16.png': lambda d: _save(Image.fromarray(_rgb()[:, :, 0].astype(np.uint16) * 257),
                                 d / 'rgb16.png'),
    'grey16.tif': lambda d: _save(Image.fromarray(_rgb()[:, :, 1].astype(np.uint16) * 200),
                                  d / 'grey16.tif'),
    'webp.webp': lambda d: _save(Image.fromarray(_rgb()), d / 'webp.webp', quality=80),
    'bmp.bmp': lambda d: _save(Image.fromarray(_rgb()), d / 'bmp.bmp'),
    'animated.gif': lambda d: _save(Image.fromarray(_rgb()).convert('P'), d / 'animated.gif',
                                    save_all=True, append_images=[
                                        Image.fromarray(_rgb(seed=2)).convert('P')]),
    'tiny_1x1.png': lambda d: _save(Image.fromarray(_rgb(1, 1)), d / 'tiny_1x1.png'),
    'tiny_8x8.jpg': lambda d: _save(Image.fromarray(_rgb(8, 8)), d / 'tiny_8x8.jpg'),
    'strip_4000x20.png': lambda d: _save(Image.fromarray(_rgb(20, 4000)),
                                         d / 'strip_4000x20.png'),
}


@pytest.mark.parametrize('name', sorted(VALID_FILES))
def test_accepted_files_score_like_their_rgb_equivalent(name, tmp_path, scorer):
    path = VALID_FILES[name](tmp_path)
    with Image.open(path) as opened:
        equivalent = _save(opened.convert('RGB'), tmp_path / 'equivalent.png')
    score = scorer(str(path))[OutputKeys.SCORE]
    assert 0.0 <= score <= 1.0
    assert score == scorer(str(equivalent))[OutputKeys.SCORE]


def test_exif_rotated_jpeg_scores_like_the_upright_image(tmp_path, scorer):
    rgb = _rgb(90, 140)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1))).save(
        tmp_path / 'rotated.jpg', exif=exif, quality=95)
    upright = np.asarray(Image.open(tmp_path / 'rotated.jpg').transpose(Image.ROTATE_270))
    rotated = decode(str(tmp_path / 'rotated.jpg')).rgb()
    assert rotated.shape == upright.shape
    np.testing.assert_array_equal(rotated, upright)


ARRAY_CASES = {
    # name -> (array, the equivalent RGB uint8 image)
    'HxW uint8': (lambda g: g, lambda g: np.dstack([g] * 3)),
    'HxWx1 uint8': (lambda g: g[:, :, None], lambda g: np.dstack([g] * 3)),
    'HxWx3 uint16': (lambda g: np.dstack([g, g // 2, g // 3]).astype(np.uint16) * 257,
                     lambda g: np.dstack([g // 3, g // 2, g])),
    'HxW float': (lambda g: g / 255.0, lambda g: np.dstack([g] * 3)),
    'HxWx3 float32': (lambda g: (np.dstack([g, g, g // 4]) / 255.0).astype(np.float32),
                      lambda g: np.dstack([g // 4, g, g])),
}


@pytest.mark.parametrize('name', sorted(ARRAY_CASES))
def test_accepted_arrays_score_like_their_rgb_equivalent(name, scorer):
    grey = _rgb()[:, :, 0]
    make_array, make_rgb = ARRAY_CASES[name]
    expected = scorer(Image.fromarray(make_rgb(grey).astype(np.uint8)))[OutputKeys.SCORE]
    assert scorer(make_array(grey))[OutputKeys.SCORE] == expected


def _refused_files(folder):
    full = folder / 'full.jpg'
    Image.fromarray(_rgb(200, 300)).save(full, quality=90)
    png = folder / 'full.png'
    Image.fromarray(_rgb(200, 300)).save(png)
    (folder / 'a_directory.jpg').mkdir()
    cases = {
        'missing.jpg': 'no such file',
        'a_directory.jpg': 'is a directory',
        'empty.jpg': 'empty file',
        'truncated.jpg': 'corrupt',
        'truncated.png': 'corrupt',
        'random.png': 'not a recognised image',
        'text.jpg': 'not a recognised image',
        'bomb.png': 'decompression-bomb limit',
        'no_frames.mp4': 'cannot open as a video',
    }
    (folder / 'empty.jpg').write_bytes(b'')
    (folder / 'truncated.jpg').write_bytes(full.read_bytes()[:len(full.read_bytes()) // 2])
    (folder / 'truncated.png').write_bytes(png.read_bytes()[:len(png.read_bytes()) // 2])
    (folder / 'random.png').write_bytes(np.random.default_rng(0).bytes(5000))
    (folder / 'text.jpg').write_text('not an image, honestly')
    png_header_only(folder / 'bomb.png', 100_000, 100_000)  # 10 gigapixels claimed
    (folder / 'no_frames.mp4').write_bytes(b'\0' * 256)
    full.unlink()
    png.unlink()
    return cases


def test_refused_inputs_raise_input_errors_naming_them(tmp_path, scorer):
    for name, reason in _refused_files(tmp_path).items():
        if name.endswith('.mp4'):
            continue  # videos are a CLI input
        with pytest.raises(InputError) as raised:
            scorer(str(tmp_path / name))
        assert name in str(raised.value) and reason in str(raised.value), raised.value


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    png_header_only(tmp_path / 'bomb.png', 100_000, 100_000)  # 10 gigapixels claimed

    def no_pixel_decoding(self, *args):
        raise AssertionError('pixel data decoded')

    monkeypatch.setattr(ImageFile.ImageFile, 'load', no_pixel_decoding)
    with pytest.raises(InputError, match='decompression-bomb limit'):
        decode(str(tmp_path / 'bomb.png'))


def test_unfetchable_url_is_refused(scorer):
    with pytest.raises(InputError, match='cannot fetch URL'):
        scorer('http://127.0.0.1:9/photo.jpg')


@pytest.mark.parametrize('array, reason', [
    (np.zeros((4, 5, 2), np.uint8), 'expected shape'),
    (np.zeros((2, 4, 5, 3), np.uint8), 'expected shape'),
    (np.zeros((4, 5, 3), np.int32), 'dtype must be'),
    (np.zeros((4, 5, 3), bool), 'dtype must be'),
    (np.full((4, 5), np.nan), 'NaN or infinite'),
    (np.full((4, 5, 3), np.inf, np.float32), 'NaN or infinite'),
    (np.full((4, 5), 1.5), 'must lie in [0, 1]'),
    (np.zeros((0, 5, 3), np.uint8), 'empty array'),
])
def test_unsupported_arrays_are_refused(array, reason, scorer):
    with pytest.raises(UnsupportedArrayError) as raised:
        scorer(array)
    assert reason in str(raised.value) and str(array.shape) in str(raised.value)


@pytest.mark.slow
def test_the_cli_writes_one_row_per_input_and_goes_on(tmp_path, small_model_dir):
    folder = tmp_path / 'inputs'
    folder.mkdir()
    refused = _refused_files(folder)
    for name, write in VALID_FILES.items():
        write(folder)
    del refused['a_directory.jpg']  # a folder given as PATH is searched, not scored
    output = tmp_path / 'scores.csv'
    paths = [str(folder / name) for name in sorted(refused)] + [str(folder)]
    result = subprocess.run([sys.executable, '-m', 'modelscope_iqa', 'score', *paths,
                             '--model', str(small_model_dir), '--output', str(output),
                             '--workers', '2'], capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr  # some inputs failed
    with open(output, newline='') as f:
        rows = list(csv.DictReader(f))
    names = [os.path.basename(row['path']) for row in rows]
    assert sorted(set(names)) == sorted(set(refused) | set(VALID_FILES)), names
    assert len(names) == len(set(names))  # the folder repeats some: each once
    for row in rows:
        name = os.path.basename(row['path'])
        if name in refused:
            assert row['score'] == '' and refused[name] in row['error'], row
        else:
            assert row['error'] == '' and 0.0 <= float(row['score']) <= 1.0, row


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    st.binary(max_size=4096),
    # plausible headers followed by junk reach deeper into the decoders
    st.tuples(st.sampled_from([b'\xff\xd8\xff\xe0', b'\x89PNG\r\n\x1a\n', b'GIF89a', b'BM',
                               b'RIFF\0\0\0\0WEBPVP8 ', b'II*\0', b'MM\0*']),
              st.binary(max_size=4096)).map(lambda parts: parts[0] + parts[1])))
def test_random_bytes_decode_or_raise_input_error(data, tmp_path_factory):
    path = tmp_path_factory.mktemp('bytes') / 'input.jpg'
    path.write_bytes(data)
    try:
        rgb = decode(str(path)).rgb()
    except InputError as exc:
        assert 'input.jpg' in str(exc)
    else:
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(array=hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int16, bool]),
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=24),
    elements=None))
def test_random_arrays_score_or_raise_input_error(array, scorer):
    try:
        score = scorer(array)[OutputKeys.SCORE]
    except InputError:
        return
    assert 0.0 <= score <= 1.0


def _labels(folder, rows):
    with open(folder / 'labels.csv', 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['image:FILE', 'mos'])
        writer.writerows(rows)
    return folder / 'labels.csv'


@pytest.mark.slow
def test_bad_evaluation_rows_are_listed_or_skipped(tmp_path, small_model_dir):
    for i in range(4):
        Image.fromarray(_rgb(seed=30 + i)).save(tmp_path / f'{i}.png')
    labels = _labels(tmp_path, [['0.png', '3.1'], ['1.png', 'good'], ['gone.png', '2.0'],
                                ['2.png', ''], ['0.png', '4.0'], ['3.png', '2.2'],
                                ['1.png', 'nan'], ['2.png', '1.5']])
    from modelscope_iqa.cli.evaluation import load_labels
    from modelscope_iqa.config import DatasetConfig
    with pytest.raises(DatasetError) as raised:
        load_labels(str(labels), DatasetConfig.from_mapping())
    message = str(raised.value)
    for expected in ("line 3: MOS 'good' is not a number", 'line 4:', 'gone.png',
                     'no such file', 'line 5: MOS is missing', 'line 6:',
                     'duplicate of line 2', "line 8: MOS 'nan' is not a finite number"):
        assert expected in message
    report = tmp_path / 'report'
    cli = [sys.executable, '-m', 'modelscope_iqa', 'evaluate', '--data', str(labels),
           '--model', str(small_model_dir)]
    refused = subprocess.run(cli, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 3 and '5 bad row(s)' in refused.stderr
    skipped = subprocess.run(cli + ['--skip-bad', '--report', str(report)],
                             capture_output=True, text=True, timeout=600)
    assert skipped.returncode == 0, skipped.stderr
    assert 'skipped line 3' in skipped.stderr
    assert len((report / 'skipped.txt').read_text().splitlines()) == 5
    with open(report / 'predictions.csv', newline='') as f:
        assert [os.path.basename(r['path']) for r in csv.DictReader(f)] == \
            ['0.png', '3.png', '2.png']


@contextlib.contextmanager
def _server_holding_its_first_request(body: bytes):
    """A local HTTP server whose first request is held open until released (the
    scoring run is then stopped at that input, deterministically); later requests get
    ``body``. Yields (url, first request arrived, release)."""
    arrived, release = threading.Event(), threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if not arrived.is_set():
                arrived.set()
                release.wait(timeout=600)
                return
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_port}/held.png', arrived, release
    finally:
        release.set()
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_sigterm_keeps_finished_rows_and_resume_completes(tmp_path, trained_our_model_dir):
    """The run is stopped while it waits for the 7th input (a URL whose server holds the
    request): the 6 rows before it are kept whole, and --resume scores the rest."""
    before, after = tmp_path / 'before', tmp_path / 'after'
    for folder, seeds in ((before, range(6)), (after, range(6, 9))):
        folder.mkdir()
        for seed in seeds:
            Image.fromarray(make_image(90, 160, seed=70 + seed)).save(folder / f'{seed:02d}.png')
    png = tmp_path / 'held.png'
    Image.fromarray(make_image(90, 160, seed=99)).save(png)
    output = tmp_path / 'scores.csv'
    with _server_holding_its_first_request(png.read_bytes()) as (url, arrived, release):
        command = [sys.executable, '-m', 'modelscope_iqa', 'score', str(before), url,
                   str(after), '--model', str(trained_our_model_dir), '--output',
                   str(output), '--workers', '0']
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        try:
            while not arrived.wait(timeout=1):  # or the run ended before reaching it
                assert process.poll() is None, process.communicate()[1]
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=120)
        finally:
            process.kill()
            release.set()
        assert process.returncode == 130, stderr
        assert 'interrupted' in stderr
        text = output.read_text()
        assert text.endswith('\n')  # no half-written row
        with open(output, newline='') as f:
            first = list(csv.DictReader(f))
        assert [os.path.basename(r['path']) for r in first] == [f'{i:02d}.png' for i in range(6)]
        assert all(row['error'] == '' and 0.0 <= float(row['score']) <= 1.0 for row in first)
        resumed = subprocess.run(command + ['--resume'], capture_output=True, text=True,
                                 timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    with open(output, newline='') as f:
        rows = list(csv.DictReader(f))
    assert rows[:len(first)] == first  # kept, not rescored
    assert [os.path.basename(r['path']) for r in rows] == \
        [f'{i:02d}.png' for i in range(6)] + ['held.png'] + [f'{i:02d}.png' for i in range(6, 9)]


@pytest.mark.slow
def test_scores_do_not_depend_on_batch_size_or_workers(tmp_path, small_model_dir):
    folder = tmp_path / 'images'
    folder.mkdir()
    for i in range(7):
        Image.fromarray(_rgb(80 + 10 * i, 150 - 5 * i, seed=90 + i)).save(
            folder / f'{i}.png')
    results = []
    for batch_size, workers in ((1, 0), (3, 2), (7, 1)):
        output = tmp_path / f'scores_{batch_size}_{workers}.csv'
        done = subprocess.run([sys.executable, '-m', 'modelscope_iqa', 'score', str(folder),
                               '--model', str(small_model_dir), '--output', str(output),
                               '--batch-size', str(batch_size), '--workers', str(workers)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        with open(output, newline='') as f:
            results.append([float(r['score']) for r in csv.DictReader(f)])
    assert np.abs(np.array(results) - np.array(results[0])).max() <= 1e-6
