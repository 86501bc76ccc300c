"""The int8 calibration cache: the activation observers' state that calibration sets
(:mod:`.quantization`), kept on disk, one file per key, so that only the first start
with given weights and settings calibrates.

Files live in ``$MODELSCOPE_IQA_CACHE``, else ``$XDG_CACHE_HOME/modelscope-iqa``
(``~/.cache/modelscope-iqa``). They are safe to delete; one that does not load or does
not fit the network is ignored (and logged), then rewritten.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

CACHE_ENV = 'MODELSCOPE_IQA_CACHE'
# The prepared trunk's observers: what calibration sets and a file holds (the weights
# are the network's own).
OBSERVER_PREFIX = 'activation_post_process_'
LOG = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Where calibrations are cached (see the module docstring)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return Path(base) / 'modelscope-iqa'


def cache_path(settings: tuple, files: Iterable[Path], trunk: nn.Module) -> Path:
    """The file of the calibration that ``settings`` (compared by their ``repr``), the
    contents of ``files`` and ``trunk``'s weights determine."""
    digest = hashlib.sha256()
    digest.update(repr(settings).encode())
    for path in files:
        digest.update(Path(path).read_bytes())
    for name, value in sorted(trunk.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().float().cpu().contiguous().numpy().tobytes())
    return cache_dir() / f'int8_{digest.hexdigest()[:32]}.pt'


def observer_state(prepared: nn.Module) -> dict:
    return {k: v for k, v in prepared.state_dict().items() if k.startswith(OBSERVER_PREFIX)}


def load_observers(prepared: nn.Module, path: Path) -> bool:
    """Load cached observer state into ``prepared``; False (and a log line) if there is
    none or it cannot be trusted."""
    if not path.is_file():
        return False
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
        if not isinstance(state, dict) or set(state) != set(observer_state(prepared)):
            raise ValueError('its observers do not fit this network')
        prepared.load_state_dict(state, strict=False)
    except Exception as exc:  # corrupt, truncated, another layout: calibrate again
        LOG.warning('ignoring the int8 calibration cache %s (%s: %s)', path,
                    type(exc).__name__, exc)
        return False
    return True


def save_observers(prepared: nn.Module, path: Path) -> None:
    """Write atomically (a reader never sees half a file); a cache that cannot be
    written is only logged."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix='.tmp',
                                         delete=False) as f:
            torch.save(observer_state(prepared), f)
        os.replace(f.name, path)
    except OSError as exc:
        LOG.warning('cannot write the int8 calibration cache %s (%s)', path, exc)
