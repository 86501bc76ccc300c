"""Which weights produced a result: a weights file's SHA-256, its short form, and the
:class:`ModelIdentity` (version and short SHA-256) that every result records.

Hashes with hashlib alone (no PyTorch), so that ``modelscope-iqa --version`` stays light.
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from typing import Dict, Mapping, Optional

from .config import DEFAULT_MODEL_PATH, VERSION, WEIGHTS_FILE

HASH_CHUNK = 1 << 20
# Hex digits of a SHA-256 shown where a person reads it (``--version``, result rows).
SHORT_SHA256_LENGTH = 12
SHA256_PREFIX = 'sha256:'
# A model folder's configuration.json may name its version under this key; the embedded
# default model's version is the package's.
VERSION_KEY = 'model_version'
# The columns (and JSON keys) of a result that say which model produced it.
VERSION_FIELD, SHA256_FIELD = 'model_version', 'model_sha256'
IDENTITY_FIELDS = (VERSION_FIELD, SHA256_FIELD)


def file_sha256(path: str) -> str:
    """The SHA-256 of a (weights) file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def short_sha256(sha256: str) -> str:
    """``'sha256:6a2fdbff1a2b'``: the first ``SHORT_SHA256_LENGTH`` hex digits."""
    return f'{SHA256_PREFIX}{sha256[:SHORT_SHA256_LENGTH]}'


@functools.lru_cache(maxsize=1)
def default_weights_sha256() -> str:
    """The SHA-256 of the embedded default model's weights (hashed once a process)."""
    return file_sha256(str(DEFAULT_MODEL_PATH / WEIGHTS_FILE))


@dataclass(frozen=True)
class ModelIdentity:
    """The weights behind a result: ``sha256`` (the weights file's full hex digest) and
    ``version`` (None when the model declares none)."""
    sha256: str
    version: Optional[str] = None

    @property
    def short_sha256(self) -> str:
        return short_sha256(self.sha256)

    def fields(self) -> Dict[str, Optional[str]]:
        """The result columns: ``{'model_version': ..., 'model_sha256': 'sha256:...'}``."""
        return {VERSION_FIELD: self.version, SHA256_FIELD: self.short_sha256}

    def describe(self) -> str:
        version = self.version or 'unversioned'
        return f'{version} ({self.short_sha256})'

    def matches(self, fields: Mapping[str, object]) -> bool:
        """Whether a result's recorded columns name these weights."""
        return fields.get(SHA256_FIELD) == self.short_sha256


def model_folder_identity(folder: str, config: Mapping[str, object]) -> ModelIdentity:
    """The identity of the weights in a model folder whose configuration is ``config``:
    the version it declares (``model_version``), else the package's for the embedded
    default weights, else none."""
    sha256 = file_sha256(os.path.join(folder, WEIGHTS_FILE))
    declared = config.get(VERSION_KEY)
    if declared is not None:
        return ModelIdentity(sha256, str(declared))
    return ModelIdentity(sha256, VERSION if sha256 == default_weights_sha256() else None)
