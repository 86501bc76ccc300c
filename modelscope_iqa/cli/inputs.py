"""Turning command-line PATH arguments into the list of files to score."""
from __future__ import annotations

import glob
import os
from typing import Iterable, List

from ..video.sampling import VIDEO_EXTENSIONS

IMAGE_EXTENSIONS = frozenset({'.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff',
                              '.gif', '.jfif', '.pgm', '.ppm'})
GLOB_CHARACTERS = frozenset('*?[')


def _is_media(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS


def _walk(folder: str) -> Iterable[str]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            if _is_media(path):
                yield path


def expand_inputs(patterns: Iterable[str]) -> List[str]:
    """Files named explicitly are kept as given (a missing one becomes an error row);
    folders are searched recursively and globs expanded, keeping image and video files
    by extension. Order is preserved and duplicates dropped."""
    found: List[str] = []
    for pattern in patterns:
        if os.path.isdir(pattern):
            found.extend(_walk(pattern))
        elif GLOB_CHARACTERS & set(pattern) and not os.path.exists(pattern):
            for match in sorted(glob.glob(pattern, recursive=True)):
                found.extend(_walk(match) if os.path.isdir(match) else
                             [match] if _is_media(match) else [])
        else:
            found.append(pattern)
    return list(dict.fromkeys(found))
