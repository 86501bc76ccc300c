"""The files of ``map`` and ``score --maps``: ``<name>.map.png`` (the overlay) and
``<name>.map.npy`` (the grid, float32) per image, in an output folder.

``<name>`` is the input's path relative to the common folder of all local inputs,
without its extension (``photos/a/x.jpg`` and ``photos/b/x.jpg`` from ``photos/`` give
``a/x`` and ``b/x``); a URL gives its file name. Inputs whose names still coincide
(``x.jpg`` and ``x.png`` in one folder) keep their extension, then a ``-2``, ``-3``
suffix in input order. Names depend only on the whole input list, so a resumed run or
another rank finds the same ones.
"""
from __future__ import annotations

import os
import urllib.parse
from collections import Counter
from typing import Dict, Sequence

from ..errors import OutputError
from ..identity import ModelIdentity
from ..preprocessors.decoding import URL_SCHEMES

PNG_SUFFIX, GRID_SUFFIX = '.map.png', '.map.npy'


def _base_names(inputs: Sequence[str]) -> Dict[str, str]:
    local = [os.path.abspath(path) for path in inputs if not path.startswith(URL_SCHEMES)]
    root = os.path.dirname(local[0]) if len(local) == 1 else (
        os.path.commonpath(local) if local else '')
    if local and os.path.isfile(root):
        root = os.path.dirname(root)
    names = {}
    for path in inputs:
        if path.startswith(URL_SCHEMES):
            name = os.path.basename(urllib.parse.urlparse(path).path) or 'url'
        else:
            name = os.path.relpath(os.path.abspath(path), root)
        names[path] = name
    return names


def map_names(inputs: Sequence[str]) -> Dict[str, str]:
    """Input -> output name (a relative path without suffix); see the module docstring."""
    with_extension = _base_names(inputs)
    names = {path: os.path.splitext(name)[0] for path, name in with_extension.items()}
    clashes = Counter(names.values())
    for path in inputs:
        if clashes[names[path]] > 1:
            names[path] = with_extension[path]
    taken: Counter = Counter()
    for path in inputs:
        base = names[path]
        taken[base] += 1
        if taken[base] > 1:
            names[path] = f'{base}-{taken[base]}'
    return names


def write_map(quality_map, output_dir: str, name: str, alpha: float,
              identity: ModelIdentity) -> str:
    """Write ``name``'s overlay (``identity``'s fields in its PNG text chunks) and grid
    under ``output_dir``; the overlay's path."""
    import numpy as np
    from PIL.PngImagePlugin import PngInfo
    stem = os.path.join(output_dir, name)
    text = PngInfo()
    for key, value in identity.fields().items():
        text.add_text(key, value or '')
    try:
        os.makedirs(os.path.dirname(stem), exist_ok=True)
        quality_map.overlay(alpha).save(stem + PNG_SUFFIX, pnginfo=text)
        np.save(stem + GRID_SUFFIX, quality_map.grid)
    except OSError as exc:
        raise OutputError(f'{stem + PNG_SUFFIX!r}: cannot write the quality map '
                          f'({exc.strerror or exc})') from exc
    return stem + PNG_SUFFIX
