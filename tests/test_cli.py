"""`modelscope-iqa` driven as a user would, in a subprocess."""
import csv
import json
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
from modelscope.outputs import OutputKeys
from PIL import Image

from conftest import identity_columns, make_image

VIDEO_FRAMES = 12


def run_cli(*args, timeout=600):
    return subprocess.run([sys.executable, '-m', 'modelscope_iqa', *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope='module')
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp('media')
    nested = folder / 'nested'
    nested.mkdir()
    Image.fromarray(make_image(300, 400, seed=1)).save(folder / 'good_a.png')
    Image.fromarray(make_image(400, 300, seed=2)).save(nested / 'good_b.jpg', quality=90)
    Image.fromarray(make_image(240, 320, seed=3)).save(folder / 'good_c.webp')
    full = folder / 'full.jpg'
    Image.fromarray(make_image(300, 400, seed=4)).save(full, quality=90)
    (folder / 'corrupt.jpg').write_bytes(full.read_bytes()[:600])
    full.unlink()
    (folder / 'notes.jpg').write_text('this is not an image')
    (folder / 'readme.txt').write_text('ignored: not an image or video extension')
    writer = cv2.VideoWriter(str(folder / 'clip.avi'), cv2.VideoWriter_fourcc(*'MJPG'), 10,
                             (320, 180))
    for i in range(VIDEO_FRAMES):
        writer.write(make_image(180, 320, seed=10 + i)[:, :, ::-1].copy())
    writer.release()
    (folder / 'broken.mp4').write_bytes(b'\x00' * 64)
    return folder


EXPECTED_INPUTS = {'good_a.png', 'good_b.jpg', 'good_c.webp', 'corrupt.jpg', 'notes.jpg',
                   'clip.avi', 'broken.mp4'}
BAD_INPUTS = {'corrupt.jpg', 'notes.jpg', 'broken.mp4'}


def _by_name(rows):
    return {row['path'].rsplit('/', 1)[-1]: row for row in rows}


def test_main_restores_the_sigterm_handler(tmp_path):
    import signal

    from modelscope_iqa.cli.main import main

    def handler(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        assert main(['score', str(tmp_path / 'missing.jpg'), '--workers', '0', '-q']) != 0
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.slow
def test_help_and_unknown_flags():
    assert run_cli('score', '--help').returncode == 0
    result = run_cli('score', '--no-such-flag', '.')
    assert result.returncode == 2
    assert 'unrecognized arguments: --no-such-flag' in result.stderr
    assert result.stderr.startswith('usage: modelscope-iqa score ')  # score's usage
    result = run_cli('score', '.', '--output', 'scores.txt')
    assert result.returncode == 2
    assert "'scores.txt': the extension must be one of .csv, .jsonl, .ndjson" in result.stderr


@pytest.fixture(scope='module')
def scored(media, our_model_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp('out') / 'scores.csv'
    result = run_cli('score', media, '--model', our_model_dir, '--output', output,
                     '--workers', 2, '--batch-size', 3, '--frames', 4)
    return result, output


@pytest.mark.slow
def test_one_row_per_input_and_errors_are_rows(scored):
    result, output = scored
    assert result.returncode == 1, result.stderr  # some inputs failed
    assert f'3 of {len(EXPECTED_INPUTS)} inputs failed' in result.stderr
    assert b'\r' not in output.read_bytes()  # rows end in \n on every platform
    rows = read_csv(output)
    by_name = _by_name(rows)
    assert len(rows) == len(EXPECTED_INPUTS)
    assert set(by_name) == EXPECTED_INPUTS
    for name, row in by_name.items():
        if name in BAD_INPUTS:
            assert row['score'] == ''
            assert name in row['error']
        else:
            assert row['error'] == ''
            assert 0.0 <= float(row['score']) <= 1.0
    assert by_name['clip.avi']['frames'] == '4'
    assert 'not a recognised image' in by_name['notes.jpg']['error']


@pytest.mark.slow
def test_scores_equal_the_pipeline(scored, media, our_model_dir):
    from modelscope.pipelines import pipeline
    from modelscope.utils.constant import Tasks
    _, output = scored
    scorer = pipeline(Tasks.image_quality_assessment_mos, model=str(our_model_dir))
    by_name = _by_name(read_csv(output))
    for name in ('good_a.png', 'good_c.webp'):
        expected = scorer(str(media / name))[OutputKeys.SCORE]
        assert float(by_name[name]['score']) == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
def test_video_score_is_the_mean_of_its_frames(media, our_model_dir, tmp_path):
    output = tmp_path / 'frames.jsonl'
    result = run_cli('score', media / 'clip.avi', '--model', our_model_dir, '--output', output,
                     '--frames', 3, '--per-frame', '--workers', 0)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    frames = [r for r in rows if r['frame'] is not None]
    whole = [r for r in rows if r['frame'] is None]
    assert [r['frame'] for r in frames] == [0, 6, 11]
    assert len(whole) == 1 and whole[0]['frames'] == 3
    assert whole[0]['score'] == pytest.approx(np.mean([r['score'] for r in frames]))
    # every JSON line, per frame too, names the weights (null: no declared version)
    identity = identity_columns(our_model_dir)
    assert all({key: r[key] for key in identity} == identity for r in rows)


@pytest.mark.slow
def test_resume_does_not_rescore(media, our_model_dir, tmp_path):
    output = tmp_path / 'resume.csv'
    first = run_cli('score', media / 'good_a.png', media / 'notes.jpg', '--model',
                    our_model_dir, '--output', output, '--workers', 0)
    assert first.returncode == 1
    before = read_csv(output)
    second = run_cli('score', media, '--model', our_model_dir, '--output', output,
                     '--resume', '--workers', 0, '--frames', 2, '-v')
    rows = read_csv(output)
    assert rows[:2] == before
    assert sorted(_by_name(rows)) == sorted(EXPECTED_INPUTS)
    assert len(rows) == len(EXPECTED_INPUTS)
    assert 'resume: 2 inputs already' in second.stderr
    # --verbose times the run: the 5 inputs scored this time (benchmarks read the line)
    assert re.search(r'scored 5 inputs in [\d.]+ s \([\d.]+ inputs/s\); the model was '
                     r'ready after [\d.]+ s', second.stderr), second.stderr


@pytest.mark.slow
def test_map_writes_overlays_and_grids_with_score_rows(media, our_model_dir, tmp_path):
    from modelscope_iqa.maps import QualityMapper
    out = tmp_path / 'maps'
    rows_file = tmp_path / 'rows.csv'
    result = run_cli('map', media, '--output-dir', out, '--output', rows_file,
                     '--model', our_model_dir, '--workers', 1, '--batch-size', 2)
    assert result.returncode == 1, result.stderr  # bad inputs, as for score
    by_name = _by_name(read_csv(rows_file))
    assert set(by_name) == EXPECTED_INPUTS
    assert 'cannot open as a video' in by_name['broken.mp4']['error']
    assert 'not a recognised image' in by_name['notes.jpg']['error']
    # a video is mapped on its worst sampled frame (8 of its 12)
    clip = by_name['clip.avi']
    assert clip['map'] == str(out / 'clip.map.png') and clip['frames'] == '8'
    assert int(clip['worst_frame']) in (0, 2, 3, 5, 6, 8, 9, 11)
    mapper = QualityMapper(str(our_model_dir))
    # Names keep the folders under the common folder of the inputs.
    for name, stem in (('good_a.png', 'good_a'), ('good_b.jpg', 'nested/good_b'),
                       ('good_c.webp', 'good_c')):
        row = by_name[name]
        assert row['map'] == str(out / f'{stem}.map.png')
        expected = mapper(row['path'])
        assert float(row['score']) == expected.score
        np.testing.assert_allclose(np.load(out / f'{stem}.map.npy'), expected.grid,
                                   atol=1e-6)
        with Image.open(row['map']) as overlay, Image.open(row['path']) as image:
            # the photo with a colour bar beside it and the score above
            assert overlay.format == 'PNG'
            assert overlay.width > image.width and overlay.height > image.height
    assert not list(out.glob('corrupt*')) and not list(out.glob('broken*'))
    scored = run_cli('score', media / 'good_a.png', media / 'nested', '--maps',
                     tmp_path / 'with_scores', '--model', our_model_dir, '--workers', 0)
    assert scored.returncode == 0, scored.stderr
    assert sorted(p.name for p in (tmp_path / 'with_scores').rglob('*.map.*')) == [
        'good_a.map.npy', 'good_a.map.png', 'good_b.map.npy', 'good_b.map.png']
    header, *rows = scored.stdout.splitlines()
    assert header == ('path,score,error,frames,pooling,frame_mean,frame_min,frame_std,'
                      'transfer,model_version,model_sha256')
    assert len(rows) == 2
    # an undeclared version is an empty column
    columns = identity_columns(our_model_dir)
    assert columns['model_version'] is None
    assert all(row.endswith(f",,{columns['model_sha256']}") for row in rows), rows
    with Image.open(out / 'good_a.map.png') as overlay:
        assert overlay.text == {'model_version': '',
                                'model_sha256': columns['model_sha256']}
    for row in by_name.values():
        assert row['model_sha256'] == columns['model_sha256'] and row['model_version'] == ''


def test_map_usage_errors():
    missing = run_cli('map', 'x.jpg')
    assert missing.returncode == 2 and '--output-dir' in missing.stderr
    alpha = run_cli('map', 'x.jpg', '-d', 'out', '--alpha', '2')
    assert alpha.returncode == 2 and 'must lie in [0, 1]' in alpha.stderr


@pytest.fixture(scope='module')
def labelled(tmp_path_factory):
    folder = tmp_path_factory.mktemp('labelled')
    (folder / 'images').mkdir()
    with open(folder / 'labels.csv', 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['image:FILE', 'mos'])
        for i in range(5):
            Image.fromarray(make_image(200, 300, seed=20 + i)).save(folder / 'images' / f'{i}.png')
            writer.writerow([f'images/{i}.png', 1.5 + 0.7 * i])
    return folder


@pytest.mark.slow
def test_evaluate_prints_metrics_and_writes_a_report(labelled, our_model_dir, tmp_path):
    report = tmp_path / 'report'
    result = run_cli('evaluate', '--data', labelled, '--model', our_model_dir,
                     '--report', report, '--batch-size', 1)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1  # the metrics, nothing else
    # no configuration dump, hook tables or progress bar around them
    assert 'Total test samples' not in result.stderr and len(result.stderr.splitlines()) < 5, \
        result.stderr
    metrics = json.loads(result.stdout)
    assert set(metrics) == {'plcc', 'srcc', 'krcc', 'rmse'}
    assert json.loads((report / 'metrics.json').read_text()) == {
        **metrics, **identity_columns(our_model_dir)}
    predictions = read_csv(report / 'predictions.csv')
    assert len(predictions) == 5
    with Image.open(report / 'scatter.png') as plot:
        plot.verify()
    # the same numbers as the trainer flow in Python
    from modelscope_iqa.cli.evaluation import load_labels, run_evaluation
    from modelscope_iqa.config import DatasetConfig
    rows, _, _ = load_labels(str(labelled / 'labels.csv'), DatasetConfig.from_mapping())
    expected, _, _ = run_evaluation(str(our_model_dir), rows, 1, 0, 'cpu')
    assert metrics == pytest.approx(expected)


@pytest.mark.slow
def test_evaluate_accepts_an_official_hub_folder(labelled, builtin_model_dir, our_model_dir):
    ours = run_cli('evaluate', '--data', labelled / 'labels.csv', '--model', our_model_dir,
                   '--batch-size', 1)
    official = run_cli('evaluate', '--data', labelled / 'labels.csv', '--model',
                       builtin_model_dir, '--batch-size', 1)
    assert official.returncode == 0, official.stderr
    assert json.loads(official.stdout.splitlines()[-1]) == json.loads(ours.stdout.splitlines()[-1])


def test_rows_appended_to_an_older_csv_follow_its_header(tmp_path):
    """--resume on a CSV an earlier version wrote (without the video columns): the new
    rows keep to its columns."""
    from modelscope_iqa.cli.results import ResultWriter, read_rows
    from modelscope_iqa.cli.score import SCORE_FIELDS
    old = tmp_path / 'old.csv'
    old.write_text('path,score,error,frames,model_version,model_sha256\n'
                   'a.jpg,0.5,,,,sha256:x\n')
    writer = ResultWriter(str(old), SCORE_FIELDS, append=True)
    writer.write({'path': 'clip.mp4', 'score': 0.25, 'frames': 8, 'pooling': 'mean',
                  'frame_min': 0.125, 'model_sha256': 'sha256:x'})
    writer.close()
    rows = read_rows(str(old))
    assert rows[1] == {'path': 'clip.mp4', 'score': '0.25', 'error': '', 'frames': '8',
                       'model_version': '', 'model_sha256': 'sha256:x'}
    fresh = tmp_path / 'new.csv'
    ResultWriter(str(fresh), SCORE_FIELDS).close()
    assert fresh.read_text() == ','.join(SCORE_FIELDS) + '\n'


@pytest.mark.parametrize('command', ['score', 'map'])
def test_nothing_to_score_is_an_error_naming_what_was_searched(command, tmp_path):
    """An empty folder, a folder of other files and a glob that matches nothing: exit 4,
    a message naming each, and no result file."""
    empty, others = tmp_path / 'empty', tmp_path / 'others'
    empty.mkdir()
    others.mkdir()
    (others / 'notes.txt').write_text('no image here')
    (others / 'data.csv').write_text('a,b\n')
    glob_pattern = str(tmp_path / 'missing' / '*.png')
    output = tmp_path / 'out.csv'
    extra = ['--output-dir', tmp_path / 'maps'] if command == 'map' else []
    result = run_cli(command, empty, others, glob_pattern, '--output', output, *extra)
    assert result.returncode == 4, result.stderr
    message, = [line for line in result.stderr.splitlines() if 'error' in line]
    assert message.startswith('modelscope-iqa: error: nothing to score: ')
    assert f"'{empty}': a folder with no image or video file in it (empty)" in message
    assert f"'{others}': a folder with no image or video file in it (2 other files)" \
        in message
    assert f"'{glob_pattern}': a glob that matched nothing" in message
    assert result.stdout == '' and not output.exists()
    assert '4 nothing to score' in run_cli(command, '--help').stdout


def test_an_empty_pattern_beside_files_is_a_warning(media, tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    result = run_cli('score', empty, media / 'good_a.png', '--workers', 0)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == (f"WARNING modelscope_iqa.cli.inputs: nothing to score "
                                      f"in '{empty}': a folder with no image or video file "
                                      'in it (empty)')
    assert [row['path'] for row in csv.DictReader(result.stdout.splitlines())] == \
        [str(media / 'good_a.png')]


def test_int8_scoring_and_evaluation_are_quiet(media, labelled):
    """PyTorch's quantization notices are not the user's business: nothing on stderr
    without -v (with -v, the run's own log lines)."""
    scored = run_cli('score', media / 'good_a.png', '--precision', 'int8')
    assert scored.returncode == 0 and scored.stderr == ''
    evaluated = run_cli('evaluate', '--data', labelled, '--precision', 'int8')
    assert evaluated.returncode == 0 and evaluated.stderr == ''
    assert set(json.loads(evaluated.stdout)) == {'plcc', 'srcc', 'krcc', 'rmse'}
    verbose = run_cli('score', media / 'good_a.png', '--precision', 'int8', '-v')
    assert 'INFO modelscope_iqa.cli.score: scored 1 inputs' in verbose.stderr
    assert 'deprecated' not in verbose.stderr
