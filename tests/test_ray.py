"""Scoring on Ray Data: the same scores as ``modelscope-iqa score`` to the bit, every input
exactly once when a scoring actor dies mid-run, bad rows as error rows. Ray runs locally
(``ray.init`` on this machine's cores); nothing needs a cluster or the network."""
import csv
import io
import json
import os
import subprocess
import sys
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
from PIL import Image

from conftest import make_image
from modelscope_iqa.identity import IDENTITY_FIELDS
from modelscope_iqa.ray import IqaScorer, score_dataset

IMAGE_COUNT = 6


def run_cli(*args, timeout=600):
    return subprocess.run([sys.executable, '-m', 'modelscope_iqa', *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    """Images of several shapes and formats, a short video and a broken file."""
    import av
    folder = tmp_path_factory.mktemp('photos')
    for i in range(IMAGE_COUNT):
        height, width = (300, 400) if i % 2 else (400, 300)
        Image.fromarray(make_image(height, width, seed=50 + i)).save(
            folder / f'photo_{i}.{"jpg" if i % 3 else "png"}', quality=90)
    (folder / 'broken.jpg').write_bytes(b'\xff\xd8\xff not really a jpeg')
    with av.open(str(folder / 'clip.mp4'), 'w') as container:
        stream = container.add_stream('libx264', rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, 'yuv420p'
        for index in range(12):
            frame = av.VideoFrame.from_ndarray(make_image(240, 320, seed=80 + index),
                                               format='rgb24')
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return folder


@pytest.fixture(scope='module')
def reference_scores(photos):
    """``modelscope-iqa score`` on the folder: path -> its CSV row."""
    result = run_cli('score', photos, '--frames', 4)
    assert result.returncode == 1, result.stderr  # the broken file
    return {row['path']: row for row in csv.DictReader(io.StringIO(result.stdout))}


@pytest.fixture(scope='module')
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def test_folder_on_ray_equals_score_bit_for_bit(photos, reference_scores, tmp_path):
    output = tmp_path / 'scores.parquet'
    result = run_cli('score', '--engine', 'ray', photos, '--frames', 4, '--output', output)
    assert result.returncode == 1, result.stderr
    rows = pq.read_table(output).to_pylist()
    assert [row['path'] for row in rows] == list(reference_scores)  # once each, in order
    for row in rows:
        reference = reference_scores[row['path']]
        if reference['error']:
            assert row['score'] is None and row['error'] == reference['error']
        else:
            assert row['error'] is None and row['score'] == float(reference['score'])
        for field in IDENTITY_FIELDS:
            assert row[field] == reference[field] and row[field]
    video, = [row for row in rows if row['path'].endswith('clip.mp4')]
    assert (video['frames'], video['pooling']) == (4, 'mean')


def _parquet_of_bytes(photos, path):
    names = sorted(p.name for p in photos.iterdir() if p.suffix in ('.jpg', '.png'))
    table = pa.table({
        'id': list(range(len(names))),
        'image': [(photos / name).read_bytes() for name in names],
        'caption': [f'photo {name}' for name in names]})
    pq.write_table(table, path, row_group_size=3)
    return names


def test_parquet_of_image_bytes_keeps_its_columns_and_equals_score(photos, reference_scores,
                                                                 tmp_path):
    names = _parquet_of_bytes(photos, tmp_path / 'data.parquet')
    output = tmp_path / 'scored.parquet'
    result = run_cli('score', '--engine', 'ray', tmp_path / 'data.parquet',
                     '--output', output)
    assert result.returncode == 1, result.stderr  # broken.jpg's bytes
    rows = pq.read_table(output).to_pylist()
    assert [row['id'] for row in rows] == list(range(len(names)))
    assert [row['caption'] for row in rows] == [f'photo {name}' for name in names]
    for name, row in zip(names, rows):
        reference = reference_scores[str(photos / name)]
        if reference['error']:
            assert row['score'] is None and row['error'].startswith('\'image[')
        else:
            assert row['score'] == float(reference['score']), name
        assert row['model_sha256'] == reference['model_sha256']


def test_webdataset_shards_and_bad_values_are_rows_not_failures(photos, reference_scores,
                                                               local_ray, tmp_path):
    shard = tmp_path / 'shard-000.tar'
    with tarfile.open(shard, 'w') as tar:
        for i in (1, 2):
            tar.add(photos / f'photo_{i}.jpg', arcname=f'sample{i}.jpg')
            info = tarfile.TarInfo(f'sample{i}.json')
            data = json.dumps({'i': i}).encode()
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    dataset = ray.data.read_webdataset(str(shard), decoder=None)
    rows = score_dataset(dataset, 'jpg', name_column='__key__').take_all()
    assert [row['__key__'] for row in rows] == ['sample1', 'sample2']
    assert [row['score'] for row in rows] == [
        float(reference_scores[str(photos / f'photo_{i}.jpg')]['score']) for i in (1, 2)]

    odd = ray.data.from_items([{'image': None},
                               {'image': (photos / 'photo_1.jpg').read_bytes()}])
    rows = score_dataset(odd).take_all()
    assert rows[0]['error'] == "'image[0]': no value" and rows[0]['score'] is None
    assert rows[1]['score'] == float(reference_scores[str(photos / 'photo_1.jpg')]['score'])
    paths = ray.data.from_items([{'path': 'no/such/file.jpg'},
                                 {'path': str(photos / 'clip.mp4')}])
    rows = score_dataset(paths, 'path', frames=4).take_all()
    assert rows[0]['error'] == "'no/such/file.jpg': no such file"
    assert rows[1]['score'] == float(reference_scores[str(photos / 'clip.mp4')]['score'])
    assert (rows[1]['frames'], rows[1]['pooling']) == (4, 'mean')


def test_every_input_exactly_once_when_a_scoring_actor_dies(photos, reference_scores,
                                                          local_ray, tmp_path):
    """The actor's process exits in the middle of its second batch; Ray restarts it and
    runs the batch again. No row is lost, none repeated, every score as before."""
    marker = tmp_path / 'died'

    class DyingOnce(IqaScorer):
        calls = 0

        def __call__(self, batch):
            DyingOnce.calls += 1  # per actor process
            if DyingOnce.calls == 2 and not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)
            return super().__call__(batch)

    paths = [str(p) for p in sorted(photos.iterdir()) if p.suffix in ('.jpg', '.png')] * 3
    dataset = ray.data.from_items([{'path': path, 'n': n} for n, path in enumerate(paths)])
    scored = dataset.map_batches(DyingOnce, fn_constructor_kwargs={'column': 'path'},
                                 batch_size=4, batch_format='pyarrow', concurrency=1)
    rows = scored.take_all()
    assert marker.exists()  # an actor did die
    assert sorted(row['n'] for row in rows) == list(range(len(paths)))
    for row in rows:
        reference = reference_scores[row['path']]
        assert (row['score'] is None) == bool(reference['error'])
        if not reference['error']:
            assert row['score'] == float(reference['score'])


def test_options_the_ray_engine_does_not_take_are_refused(photos):
    result = run_cli('score', '--engine', 'ray', photos, '--resume', '--output', 'x.csv')
    assert result.returncode == 2 and '--resume does not apply to --engine ray' in result.stderr
