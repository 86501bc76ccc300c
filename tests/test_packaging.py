"""A built wheel carries the default model folder as real files, equal to the
repository's top-level configuration.json and pytorch_model.pt."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_contains_the_configuration(tmp_path):
    source = tmp_path / 'src'
    source.mkdir()
    for name in ('setup.py', 'README.md', 'configuration.json'):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / 'modelscope_iqa', source / 'modelscope_iqa', symlinks=True,
                    ignore=shutil.ignore_patterns('__pycache__'))
    result = subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
         '--wheel-dir', str(tmp_path / 'dist'), str(source)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    wheel, = (tmp_path / 'dist').glob('modelscope_iqa-*.whl')
    with zipfile.ZipFile(wheel) as archive:
        packaged = archive.read('modelscope_iqa/default_model/configuration.json')
        weights = archive.read('modelscope_iqa/default_model/pytorch_model.pt')
    assert packaged == (REPO / 'configuration.json').read_bytes()
    assert weights == (REPO / 'pytorch_model.pt').read_bytes()
    assert len(weights) < 30 * 2**20
