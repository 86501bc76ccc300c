"""List our registrations in ModelScope's lazy-import index, beside its own classes.

ModelScope consults that index, not only its registries:

- ``Model.from_pretrained`` (used by ``pipeline()`` and the trainer) takes the
  transformers ``AutoModel`` detour for any model type the index does not list, and dies
  with ``ImportError: cannot import name 'AutoConfig' from 'modelscope'`` when
  transformers is not installed;
- ``build_from_cfg`` warns ``... not found in ast index file`` for every build of an
  unlisted type.

Listing each registered class there sends ModelScope down its registry path. This is
part of registering, done once on import.
"""
import sys

from modelscope.utils.ast_utils import INDEX_KEY
from modelscope.utils.import_utils import LazyImportModule
from modelscope.utils.registry import Registry


def list_in_modelscope_index(registry: Registry, group: str, name: str,
                             module: str) -> None:
    """Record that ``module`` registers ``name`` in ``registry`` under ``group``."""
    index = LazyImportModule.get_ast_index()[INDEX_KEY]
    index[(registry.name.upper(), group, name)] = {
        'filepath': sys.modules[module].__file__,
        'imports': [],
        'module': module,
    }
