"""Which weights produced a result: a weights file's SHA-256 and its short form.

Hashes with hashlib alone (no PyTorch), so that ``modelscope-iqa --version`` stays light.
"""
import hashlib

HASH_CHUNK = 1 << 20
# Hex digits of a SHA-256 shown where a person reads it (``--version``).
SHORT_SHA256_LENGTH = 12


def file_sha256(path: str) -> str:
    """The SHA-256 of a (weights) file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def short_sha256(sha256: str) -> str:
    """``'sha256:6a2fdbff1a2b'``: the first ``SHORT_SHA256_LENGTH`` hex digits."""
    return f'sha256:{sha256[:SHORT_SHA256_LENGTH]}'
