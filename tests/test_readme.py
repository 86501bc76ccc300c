"""Every Python snippet of the README runs as written, on local files."""
import csv
import re
import shutil
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / 'README.md'


def python_blocks():
    return re.findall(r'```python\n(.*?)```', README.read_text(encoding='utf-8'), re.S)


@pytest.fixture
def workspace(tmp_path, our_model_dir, image_files, monkeypatch):
    model_dir = tmp_path / 'path' / 'to' / 'model_dir'
    shutil.copytree(our_model_dir, model_dir)
    for name, source in zip(('photo.jpg', 'a.jpg', 'b.png', 'c.webp'), image_files):
        shutil.copy(source, tmp_path / name)
    _write_clip(tmp_path / 'clip.mp4', image_files[0])
    for name, sources in (('val.csv', image_files[:4]), ('train.csv', image_files[4:8])):
        with open(tmp_path / name, 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['image:FILE', 'mos'])
            for i, source in enumerate(sources):
                writer.writerow([source, 1.5 + i])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _write_clip(path, image_file, frames=10):
    """A short H.264 clip panning over one of the test images."""
    import av
    import numpy as np
    from PIL import Image
    with Image.open(image_file) as image:
        pixels = np.asarray(image.convert('RGB').resize((320, 180)))
    with av.open(str(path), 'w') as container:
        stream = container.add_stream('libx264', rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 180, 'yuv420p'
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(np.roll(pixels, 8 * index, axis=1)), format='rgb24')
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_scoring_snippet_runs(workspace, capsys):
    exec(compile(python_blocks()[0], 'README-scoring', 'exec'), {})
    lines = capsys.readouterr().out.strip().splitlines()
    assert 0.0 <= float(lines[0]) <= 1.0
    assert lines[1].startswith("[{'score': ")
    video = eval(lines[2])  # the printed dict
    assert video['frame_numbers'] == [0, 1, 3, 4, 5, 6, 8, 9]
    assert video['score'] == sum(video['frame_scores']) / 8


def test_quality_map_snippet_runs(workspace, capsys):
    exec(compile(python_blocks()[1], 'README-quality-map', 'exec'), {})
    score, shape = capsys.readouterr().out.strip().splitlines()
    assert 0.0 <= float(score) <= 1.0
    assert shape == '(23, 40)'  # photo.jpg is landscape
    assert (workspace / 'photo.map.png').stat().st_size > 0


# The snippet of the demo's client API (index 2) runs in tests/test_demo.py, against a
# running demo.


def test_evaluation_snippet_runs(workspace, capsys):
    exec(compile(python_blocks()[3], 'README-evaluation', 'exec'), {})
    output = capsys.readouterr().out
    for key in ('plcc', 'srcc', 'krcc', 'rmse'):
        assert f"'{key}'" in output


def test_there_are_seven_snippets():
    assert len(python_blocks()) == 7


# The ONNX snippet (index 6) runs in tests/test_onnx_export.py, against an exported file.


@pytest.mark.slow
def test_fine_tuning_snippet_runs(workspace):
    exec(compile(python_blocks()[4], 'README-fine-tuning', 'exec'), {})
    assert (workspace / 'work' / 'output' / 'pytorch_model.pt').is_file()
    assert (workspace / 'work' / 'epoch_1.pth').is_file()


def test_official_checkpoint_snippet_runs(workspace, builtin_model_dir, monkeypatch, capsys):
    """With the hub's download replaced by an official folder already on disk."""
    import modelscope_iqa.hub
    monkeypatch.setattr(modelscope_iqa.hub, 'download_model',
                        lambda model_id: str(builtin_model_dir))
    exec(compile(python_blocks()[5], 'README-official', 'exec'), {})
    assert capsys.readouterr().out.startswith("{'score': ")
