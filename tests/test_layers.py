"""The package's structure: its layers and acyclic imports (``.importlinter``, checked by
lint-imports), and the lazy namespaces of its subpackages."""
import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import modelscope_iqa

REPO = Path(__file__).resolve().parent.parent
SUBPACKAGES = sorted(info.name for info in pkgutil.iter_modules(modelscope_iqa.__path__)
                     if info.ispkg)


def test_imports_keep_the_layer_contracts():
    lint_imports = shutil.which('lint-imports', path=str(Path(sys.executable).parent))
    assert lint_imports, 'lint-imports is missing: pip install -e ".[test]"'
    result = subprocess.run([lint_imports, '--no-cache'], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Contracts: 3 kept, 0 broken.' in result.stdout


@pytest.mark.parametrize('name', SUBPACKAGES)
def test_every_lazy_export_is_what_its_module_defines(name):
    """A name exported by a subpackage is the object its module defines, and no
    submodule has the name of an export (importing it would set the package's attribute
    to the module, hiding the export)."""
    package = importlib.import_module(f'modelscope_iqa.{name}')
    exports = getattr(package, '_EXPORTS', {})
    submodules = {info.name for info in pkgutil.iter_modules(package.__path__)}
    assert not set(exports) & submodules
    for export, module in exports.items():
        defined = getattr(importlib.import_module(module, package.__name__), export)
        assert getattr(package, export) is defined
        assert export in dir(package)


def test_a_subpackage_module_loads_without_its_siblings():
    """Importing one module of a subpackage does not import the others (nor PyTorch,
    for a module that does not need it)."""
    code = ('import sys; import modelscope_iqa.video.sampling, modelscope_iqa.video.pooling, modelscope_iqa.preprocessors.decoding; '
            "print(sorted(m for m in ('torch', 'modelscope', 'modelscope_iqa.scoring.engine', "
            "'modelscope_iqa.preprocessors.iqa_mos_preprocessor') if m in sys.modules))")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == '[]'
