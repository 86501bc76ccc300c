"""Multi-process scoring and evaluation under torchrun (2 CPU processes, gloo) equal the
single-process run: every input once, in input order, the same scores and metrics."""
import csv
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from conftest import identity_columns, make_image
from modelscope_iqa.cli.score import SCORE_FIELDS
from modelscope_iqa.distributed import Ranks, ShardSampler, shard, unshard

IMAGES = 7


def run_cli(*args, processes=1, timeout=600):
    launcher = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
                f'--nproc-per-node={processes}'] if processes > 1 else [sys.executable]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([*launcher, '-m', 'modelscope_iqa', *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize('length', range(0, 12))
@pytest.mark.parametrize('world_size', [1, 2, 3, 5])
def test_shards_are_disjoint_and_unshard_restores_the_order(length, world_size):
    items = [f'item{i}' for i in range(length)]
    shards = [shard(items, Ranks(rank, world_size)) for rank in range(world_size)]
    assert sorted(sum(shards, [])) == sorted(items)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert unshard(shards) == items
    samplers = [list(ShardSampler(length, Ranks(rank, world_size)))
                for rank in range(world_size)]
    assert [[items[i] for i in indices] for indices in samplers] == shards


def test_unshard_refuses_shards_of_the_wrong_length():
    with pytest.raises(ValueError, match='rank 0 returned 3 results for a shard of 2'):
        unshard([['a', 'c', 'e'], ['b']])


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp('multi')
    sizes = [(300, 400), (400, 300), (180, 500)]
    for i in range(IMAGES):
        height, width = sizes[i % len(sizes)]
        Image.fromarray(make_image(height, width, seed=40 + i)).save(folder / f'img{i}.png')
    (folder / 'broken.jpg').write_text('not an image')
    return folder


@pytest.fixture(scope='module')
def single_run(folder, our_model_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp('single') / 'scores.csv'
    result = run_cli('score', folder, '--model', our_model_dir, '--output', output,
                     '--workers', 0, '--batch-size', 2)
    assert result.returncode == 1, result.stderr  # broken.jpg failed
    rows = read_csv(output)
    identity = identity_columns(our_model_dir)
    assert all(row['model_sha256'] == identity['model_sha256'] for row in rows)
    return rows


def assert_same_rows(rows, expected):
    assert [r['path'] for r in rows] == [r['path'] for r in expected]
    for row, want in zip(rows, expected):
        assert row['error'] == want['error']
        assert (row['model_version'], row['model_sha256']) == (
            want['model_version'], want['model_sha256'])
        if want['score']:
            assert float(row['score']) == pytest.approx(float(want['score']), abs=1e-6)
        else:
            assert row['score'] == ''


@pytest.mark.slow  # torchrun process groups
def test_two_processes_score_like_one(folder, our_model_dir, single_run, tmp_path):
    output = tmp_path / 'scores.csv'
    result = run_cli('score', folder, '--model', our_model_dir, '--output', output,
                     '--workers', 0, '--batch-size', 3, processes=2)
    assert result.returncode != 0  # torchrun passes on exit status 1: an input failed
    assert 'exitcode  : 1' in result.stderr
    rows = read_csv(output)
    assert len(rows) == IMAGES + 1
    assert_same_rows(rows, single_run)
    assert os.listdir(tmp_path) == ['scores.csv']  # the rank part files are merged away


def _write_csv(path, rows):
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=SCORE_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.slow  # torchrun process groups
@pytest.mark.parametrize('processes', [1, 2])
def test_resume_folds_in_the_parts_of_an_interrupted_run(folder, our_model_dir, single_run,
                                                        tmp_path, processes):
    """An interrupted 2-process run left: the merged file with its header only, and one
    part file per rank (one ending in half a row). Resuming keeps every complete row,
    scored or failed, and scores only the rest."""
    output = tmp_path / 'scores.csv'
    _write_csv(output, [])
    recovered = single_run[0:1] + single_run[2:3]  # broken.jpg (failed) and img1
    recovered[1] = dict(recovered[1], score='0.123456')  # proves it is not rescored
    _write_csv(tmp_path / 'scores.csv.rank0.part', recovered[:1])
    _write_csv(tmp_path / 'scores.csv.rank1.part', recovered[1:])
    with open(tmp_path / 'scores.csv.rank1.part', 'a') as f:
        f.write(f'{single_run[4]["path"]},0.5')  # killed mid-row
    result = run_cli('score', folder, '--model', our_model_dir, '--output', output,
                     '--workers', 0, '--resume', '-v', processes=processes)
    assert result.returncode == 0, result.stderr  # broken.jpg is not retried
    rows = read_csv(output)
    assert sorted(r['path'] for r in rows) == sorted(r['path'] for r in single_run)
    by_path = {r['path']: r for r in rows}
    assert by_path[single_run[2]['path']]['score'] == '0.123456'
    assert_same_rows([by_path[r['path']] for r in single_run if r is not single_run[2]],
                     [r for r in single_run if r is not single_run[2]])
    assert 'recovered 2 rows from 2 part files' in result.stderr
    assert os.listdir(tmp_path) == ['scores.csv']


@pytest.fixture(scope='module')
def labels(folder):
    path = folder / 'labels.csv'
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['image:FILE', 'mos'])
        for i in range(IMAGES):
            writer.writerow([f'img{i}.png', 1.2 + 0.55 * i])
    return path


@pytest.mark.slow  # torchrun process groups
def test_two_process_evaluation_equals_one(labels, our_model_dir, tmp_path):
    reports = {}
    for processes in (1, 2):
        report = tmp_path / f'report{processes}'
        result = run_cli('evaluate', '--data', labels, '--model', our_model_dir,
                         '--report', report, '--batch-size', 2, processes=processes)
        assert result.returncode == 0, result.stderr
        metrics = [json.loads(line) for line in result.stdout.splitlines()
                   if line.startswith('{')]
        assert len(metrics) == 1  # printed by rank 0 only
        reports[processes] = metrics[0], read_csv(report / 'predictions.csv')
    (single, single_preds), (double, double_preds) = reports[1], reports[2]
    assert double == pytest.approx(single, abs=1e-12)
    assert [r['path'] for r in double_preds] == [r['path'] for r in single_preds]
    for got, want in zip(double_preds, single_preds):
        assert float(got['pred']) == pytest.approx(float(want['pred']), abs=1e-6)


@pytest.fixture(scope='module')
def video_labels(folder):
    """The images' labels with two videos among them (a KoNViD-1k-like table)."""
    from test_video import write_video
    path = folder / 'video_labels.csv'
    write_video(folder / 'clip_a.mp4', 30, options={'bf': '2', 'g': '10'})
    write_video(folder / 'clip_b.mkv', 24, options={'g': '12'})
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['image:FILE', 'mos'])
        for i in range(4):
            writer.writerow([f'img{i}.png', 1.2 + 0.55 * i])
        writer.writerow(['clip_a.mp4', 3.9])
        writer.writerow(['clip_b.mkv', 2.4])
    return path


@pytest.mark.slow  # torchrun process groups
def test_two_process_evaluation_with_videos_equals_one(video_labels, our_model_dir,
                                                       tmp_path):
    reports = {}
    for processes in (1, 2):
        report = tmp_path / f'report{processes}'
        result = run_cli('evaluate', '--data', video_labels, '--model', our_model_dir,
                         '--report', report, '--batch-size', 2, '--frames', 3,
                         '--pooling', 'min', processes=processes)
        assert result.returncode == 0, result.stderr
        reports[processes] = (json.loads((report / 'metrics.json').read_text()),
                              read_csv(report / 'predictions.csv'))
    (single, single_preds), (double, double_preds) = reports[1], reports[2]
    assert single['video_rows'] == 2 and single['video_pooling'] == 'min'
    assert single['video_sampling'] == '3 frames'
    assert {k: v for k, v in double.items() if isinstance(v, float)} == pytest.approx(
        {k: v for k, v in single.items() if isinstance(v, float)}, abs=1e-12)
    assert [r['path'] for r in double_preds] == [r['path'] for r in single_preds]
    for got, want in zip(double_preds, single_preds):
        assert float(got['pred']) == pytest.approx(float(want['pred']), abs=1e-6)
