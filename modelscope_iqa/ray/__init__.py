"""Scoring data sets where they live, on Ray Data (the ``ray`` extra:
``.venv/bin/pip install ".[ray]"``): :class:`IqaScorer` for ``Dataset.map_batches`` and
:func:`score_dataset`, the one call. ``modelscope-iqa score --engine ray`` is built on
them; docs/scale.md says when to use it."""

from .._lazy import lazy_namespace

# name -> the module that defines it, imported on first use
_EXPORTS = {'IqaScorer': '.scorer', 'score_dataset': '.scorer',
            'RESULT_COLUMNS': '.scorer', 'result_schema': '.scorer'}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
