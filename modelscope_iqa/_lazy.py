"""Package namespaces that load their modules on first use.

A subpackage's ``__init__`` lists the public names of its modules; ``from
modelscope_iqa.models import IqaMosNet`` imports ``models.network`` then, and
``import modelscope_iqa.models.checkpoint`` no longer imports the rest of ``models``
(PyTorch and ModelScope with it). Imports nothing itself.
"""
import importlib
from typing import Any, Callable, Iterable, List, Mapping, Tuple


def lazy_namespace(package: str, exports: Mapping[str, str],
                   submodules: Iterable[str] = ()
                   ) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each name of ``exports`` is read from
    the module it maps to (relative to ``package``, e.g. ``'.network'``), each name of
    ``submodules`` is the submodule itself."""
    submodules = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name], package), name)
        if name in submodules:
            return importlib.import_module(f'{package}.{name}')
        raise AttributeError(f'module {package!r} has no attribute {name!r}')

    def __dir__() -> List[str]:
        return sorted(set(exports) | submodules)

    return __getattr__, __dir__
