"""The published folder's configuration, as this package reads it back.

A published folder (:func:`modelscope_iqa.export.export_model_folder` writes one)
names ModelScope's built-in classes in ``SWAPPED_SECTIONS`` and the evaluation metrics,
so that stock ModelScope runs it; ours are kept under ``OUR_SECTIONS_KEY``.
"""
from __future__ import annotations

import copy

OUR_SECTIONS_KEY = 'modelscope_iqa'
SWAPPED_SECTIONS = ('model', 'pipeline', 'preprocessor')


def our_configuration(config: dict) -> dict:
    """The configuration this package reads: a published folder's own sections put back
    (other configurations as they are)."""
    ours = config.get(OUR_SECTIONS_KEY)
    if not ours:
        return config
    restored = copy.deepcopy(config)
    del restored[OUR_SECTIONS_KEY]
    for name in SWAPPED_SECTIONS:
        if name in ours:
            restored[name] = copy.deepcopy(ours[name])
    if 'evaluation' in ours:
        restored.setdefault('evaluation', {})['metrics'] = list(ours['evaluation']['metrics'])
    return restored
