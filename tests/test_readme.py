"""Every command and Python snippet of the README runs as written after the two set-up
commands: in a folder that holds what the repository's folder holds after them (the
committed samples, and ``.venv``: the environment running these tests)."""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / 'README.md'
SAMPLES = ROOT / 'samples'
SAMPLE_PHOTOS = sorted(path.name for path in SAMPLES.glob('*.jpg'))
CLIP = 'cups_pan.mp4'
# The README's set-up commands: CI runs the test one (tests/test_docs.py checks that it
# is .ci/run's); the first installs the package beside this one.
SETUP_COMMANDS = 2
DEMO_START_S = 120


def python_blocks():
    return re.findall(r'```python\n(.*?)```', README.read_text(encoding='utf-8'), re.S)


def shell_commands():
    """The README's shell commands after its set-up commands, comments dropped."""
    blocks = re.findall(r'```bash\n(.*?)```', README.read_text(encoding='utf-8'), re.S)
    commands = []
    for block in blocks[SETUP_COMMANDS:]:
        for line in block.splitlines():
            command = line.split('  #')[0].strip()
            if command:
                commands.append(command)
    return commands


def command_starting(prefix: str) -> str:
    command, = [c for c in shell_commands() if c.startswith(prefix)]
    return command


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """What a newcomer's folder holds after the set-up commands: the samples, and
    ``.venv`` (here: the environment these tests run in)."""
    venv = Path(sys.prefix)
    assert (venv / 'bin' / 'modelscope-iqa').is_file(), \
        f'the tests run in an environment with the package installed, not {venv}'
    os.symlink(SAMPLES, tmp_path / 'samples')
    os.symlink(venv, tmp_path / '.venv')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_shell(command: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, (command, result.stderr)
    # quiet by default: nothing on stderr unless something is wrong
    assert result.stderr == '', (command, result.stderr)
    return result


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def test_every_shell_command_is_tested():
    """A command added to the README needs a test here; this list is what they test."""
    assert shell_commands() == [
        '.venv/bin/modelscope-iqa score samples/ --output scores.csv',
        '.venv/bin/modelscope-iqa score samples/*.mp4 --fps 2 --pooling p10 '
        '--timeline timelines/',
        '.venv/bin/modelscope-iqa map samples/ --output-dir maps/',
        '.venv/bin/pip install ".[demo]"',
        '.venv/bin/modelscope-iqa demo',
        '.venv/bin/modelscope-iqa evaluate --data samples/labels.csv --report report/',
        '.venv/bin/pip install ".[onnx]"',
        '.venv/bin/modelscope-iqa export --format onnx --output model.onnx',
    ]


def test_the_scoring_commands(workspace):
    run_shell(command_starting('.venv/bin/modelscope-iqa score samples/ '), workspace)
    rows = read_csv(workspace / 'scores.csv')
    assert sorted(Path(row['path']).name for row in rows) == sorted(SAMPLE_PHOTOS + [CLIP])
    assert all(row['error'] == '' and 0 <= float(row['score']) <= 1 for row in rows)

    run_shell(command_starting('.venv/bin/modelscope-iqa score samples/*.mp4'), workspace)
    timeline = read_csv(workspace / 'timelines' / 'cups_pan.timeline.csv')
    assert [float(row['time']) for row in timeline] == [0.5 * i for i in range(8)]
    # the clip's third second is blurred: its two sampled frames score lowest
    worst = sorted(timeline, key=lambda row: float(row['score']))[:2]
    assert sorted(float(row['time']) for row in worst) == [2.0, 2.5]
    assert (workspace / 'timelines' / 'cups_pan.timeline.png').stat().st_size > 0


@pytest.mark.slow
def test_the_map_command(workspace):
    run_shell(command_starting('.venv/bin/modelscope-iqa map '), workspace)
    written = sorted(path.name for path in (workspace / 'maps').iterdir())
    stems = [Path(name).stem for name in SAMPLE_PHOTOS] + ['cups_pan']  # a video: its worst frame's
    assert written == sorted([f'{stem}.map.npy' for stem in stems]
                             + [f'{stem}.map.png' for stem in stems])


def test_the_evaluation_command(workspace):
    result = run_shell(command_starting('.venv/bin/modelscope-iqa evaluate '), workspace)
    metrics = json.loads(result.stdout)
    assert set(metrics) == {'plcc', 'srcc', 'krcc', 'rmse'}
    assert metrics == pytest.approx(
        {key: value for key, value in
         json.loads((workspace / 'report' / 'metrics.json').read_text()).items()
         if key in metrics})


@pytest.mark.parametrize('extra', ['demo', 'onnx'])
def test_the_install_commands(extra):
    """The extras' installs, as a dry run offline: installing for real would replace
    the editable install these tests run, and tests never need the network. Resolving
    the extra from the packages already here proves it exists and that the test
    environment already holds what it installs."""
    command = command_starting(f'.venv/bin/pip install ".[{extra}]"')
    run = subprocess.run(
        f'{command} --dry-run --no-index --no-build-isolation --quiet '
        '--disable-pip-version-check'.replace('.venv/bin/pip', f'{sys.executable} -m pip'),
        shell=True, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr


@pytest.mark.slow
def test_the_demo_command_serves_and_stops_quietly(workspace):
    command = command_starting('.venv/bin/modelscope-iqa demo')
    server = subprocess.Popen(command.split(), cwd=workspace,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()  # one line, once it serves
        assert line == 'modelscope-iqa demo: serving http://127.0.0.1:7860/ (Ctrl-C stops it)\n'
        page = urllib.request.urlopen('http://127.0.0.1:7860/', timeout=30).read()
        assert b'gradio' in page.lower()
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0 and out == '' and err == ''


def test_the_export_command(workspace):
    pytest.importorskip('onnxruntime')
    run_shell(command_starting('.venv/bin/modelscope-iqa export '), workspace)
    assert (workspace / 'model.onnx').stat().st_size > 1_000_000


def test_scoring_snippet_runs(workspace, capsys):
    exec(compile(python_blocks()[0], 'README-scoring', 'exec'), {})
    lines = capsys.readouterr().out.strip().splitlines()
    assert 0.0 <= float(lines[0]) <= 1.0
    assert re.fullmatch(r"\[\{'score': [\d.]+\}, \{'score': [\d.]+\}\]", lines[1])
    video = eval(lines[2])  # the printed dict
    assert video['frame_numbers'] == [0, 6, 11, 17, 22, 28, 33, 39]  # 8 of 40, uniform
    assert video['score'] == sum(video['frame_scores']) / 8


def test_quality_map_snippet_runs(workspace, capsys):
    exec(compile(python_blocks()[1], 'README-quality-map', 'exec'), {})
    score, shape = capsys.readouterr().out.strip().splitlines()
    assert 0.0 <= float(score) <= 1.0
    assert shape == '(23, 40)'  # the photo is landscape
    assert (workspace / 'cups_under_exposed.map.png').stat().st_size > 0


# The snippet of the demo's client API (index 2) runs in tests/test_demo.py, against a
# running demo.


def test_evaluation_snippet_runs(workspace, capsys):
    exec(compile(python_blocks()[3], 'README-evaluation', 'exec'), {})
    printed = eval(capsys.readouterr().out.strip())
    assert set(printed) == {'plcc', 'srcc', 'krcc', 'rmse'}
    # the same evaluation as the command line's, on the same CSV
    cli = run_shell(command_starting('.venv/bin/modelscope-iqa evaluate '), workspace)
    assert printed == pytest.approx(json.loads(cli.stdout), abs=1e-6)


def test_there_are_six_snippets():
    assert len(python_blocks()) == 6


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
