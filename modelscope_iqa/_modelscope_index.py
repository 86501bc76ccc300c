"""How ModelScope finds our classes: its lazy-import index.

ModelScope builds every model, pipeline, preprocessor, metric, dataset and trainer
through ``build_from_cfg``, which first imports the module its lazy-import index lists for
the requested (registry, group, type), then looks the type up in the registry. Listing
our classes in that index is therefore enough for ``pipeline(...)``,
``Model.from_pretrained``, ``build_trainer(...)`` and the rest to import (and so
register) them on first use. It also keeps ModelScope off two detours:

- ``Model.from_pretrained`` takes the transformers ``AutoModel`` path for any model type
  the index does not list, and dies with ``ImportError: cannot import name 'AutoConfig'
  from 'modelscope'`` when transformers is not installed;
- ``build_from_cfg`` warns ``... not found in ast index file`` for unlisted types.

``import modelscope_iqa`` lists them as soon as ModelScope itself is imported (at once
if it already is), without importing PyTorch or ModelScope for it: the package's import
stays light, and the command line answers ``--help`` quickly.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from types import ModuleType
from typing import Dict, Tuple

from . import metainfo

PACKAGE = __name__.rpartition('.')[0]
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

# (registry, group, type name, module): the group and name attributes are looked up in
# modelscope_iqa.metainfo (groups: its TASK and PREPROCESSOR_FIELD, or ModelScope's
# default group), the registries in ModelScope's builders.
REGISTRATIONS = (
    ('models', 'TASK', ('Models', 'iqa_mos_resnet18'), 'models.iqa_mos_model'),
    ('pipelines', 'TASK', ('Pipelines', 'iqa_mos'), 'pipelines.iqa_mos_pipeline'),
    ('preprocessors', 'PREPROCESSOR_FIELD', ('Preprocessors', 'iqa_mos'),
     'preprocessors.iqa_mos_preprocessor'),
    ('metrics', None, ('Metrics', 'iqa_mos'), 'metrics.iqa_mos_metric'),
    ('custom_datasets', 'TASK', ('CustomDatasets', 'iqa_mos'), 'msdatasets.iqa_mos_dataset'),
    ('trainers', None, ('Trainers', 'iqa_mos'), 'training'),
)


def index_entries() -> Dict[Tuple[str, str, str], str]:
    """``{(REGISTRY, group, name): module}`` of every class we register (imports
    ModelScope's registry module for its default group name)."""
    from modelscope.utils.registry import default_group
    entries = {}
    for registry, group, (kind, attribute), module in REGISTRATIONS:
        group_name = default_group if group is None else getattr(metainfo, group)
        name = getattr(getattr(metainfo, kind), attribute)
        entries[(registry.upper(), group_name, name)] = f'{PACKAGE}.{module}'
    return entries


def list_in_modelscope_index() -> None:
    """Add our entries to ModelScope's lazy-import index (idempotent)."""
    from modelscope.utils.ast_utils import INDEX_KEY
    from modelscope.utils.import_utils import LazyImportModule
    entries = index_entries()
    index = LazyImportModule.get_ast_index()[INDEX_KEY]
    for signature, module in entries.items():
        relative = module[len(PACKAGE) + 1:].replace('.', os.sep) + '.py'
        index[signature] = {'filepath': os.path.join(PACKAGE_DIR, relative), 'imports': [],
                            'module': module}


class _ListAfterExecuting(importlib.abc.Loader):
    """ModelScope's own loader, then :func:`list_in_modelscope_index`; put back in the
    module's spec once done."""

    def __init__(self, loader, spec):
        self.loader = loader
        self.spec = spec

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        try:
            self.loader.exec_module(module)
        finally:
            self.spec.loader = self.loader
            module.__loader__ = self.loader
        list_in_modelscope_index()

    def __getattr__(self, name):
        return getattr(self.loader, name)


class _WhenModelScopeLoads(importlib.abc.MetaPathFinder):
    """Finds ``modelscope`` as the other finders do, with a loader that lists our
    classes once ModelScope's package has run; then leaves ``sys.meta_path``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != 'modelscope':
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ListAfterExecuting(spec.loader, spec)
        return spec


def list_when_modelscope_loads() -> None:
    """List our classes now if ModelScope is imported, else as soon as it is."""
    if 'modelscope' in sys.modules:
        list_in_modelscope_index()
    elif not any(isinstance(f, _WhenModelScopeLoads) for f in sys.meta_path):
        sys.meta_path.insert(0, _WhenModelScopeLoads())
