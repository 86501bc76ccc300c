"""Batch scoring of image and video files: :func:`score_files` overlaps decoding in
worker processes with batched forwards and yields results in input order."""

from .._lazy import lazy_namespace

# name -> the module that defines it, imported on first use
_EXPORTS = {
    'FileResult': '.engine', 'Progress': '.engine', 'default_workers': '.engine',
    'score_files': '.engine',
    'ScoringNetwork': '.network',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
