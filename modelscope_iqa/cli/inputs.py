"""Turning command-line PATH arguments into the list of files to score."""
from __future__ import annotations

import glob
import logging
import os
from typing import Callable, Iterable, List, Optional

from ..errors import NoInputsError
from ..video.sampling import VIDEO_EXTENSIONS

IMAGE_EXTENSIONS = frozenset({'.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff',
                              '.gif', '.jfif', '.pgm', '.ppm'})
GLOB_CHARACTERS = frozenset('*?[')
LOG = logging.getLogger(__name__)


def _is_media(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS


def walk_files(folder: str, keep: Callable[[str], bool] = _is_media) -> Iterable[str]:
    """The files under ``folder`` that ``keep`` accepts (default: images and videos, by
    extension), in sorted order."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            if keep(path):
                yield path


def _count_files(folder: str) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def _expand(pattern: str) -> tuple[List[str], Optional[str]]:
    """The files ``pattern`` names, and when there are none, what was searched."""
    if os.path.isdir(pattern):
        found = list(walk_files(pattern))
        others = 0 if found else _count_files(pattern)
        return found, (f'{pattern!r}: a folder with no image or video file in it'
                       + (f' ({others} other files)' if others else ' (empty)'))
    if GLOB_CHARACTERS & set(pattern) and not os.path.exists(pattern):
        matches = sorted(glob.glob(pattern, recursive=True))
        found = [path for match in matches
                 for path in (walk_files(match) if os.path.isdir(match) else
                              [match] if _is_media(match) else [])]
        return found, (f'{pattern!r}: a glob that matched nothing' if not matches else
                       f'{pattern!r}: a glob that matched {len(matches)} paths, no image '
                       'or video file among them')
    return [pattern], None


def expand_inputs(patterns: Iterable[str]) -> List[str]:
    """Files named explicitly are kept as given (a missing one becomes an error row);
    folders are searched recursively and globs expanded, keeping image and video files
    by extension. Order is preserved and duplicates dropped. :class:`NoInputsError` when
    no pattern gives a file; a folder or glob that gives none beside others that do is
    logged as a warning."""
    found: List[str] = []
    searched: List[str] = []
    for pattern in patterns:
        files, emptiness = _expand(pattern)
        if not files:
            searched.append(emptiness)
        found.extend(files)
    if not found:
        extensions = ' '.join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))
        raise NoInputsError(f'nothing to score: {"; ".join(searched)}. Image and video '
                            f'files are found by extension: {extensions}')
    for emptiness in searched:
        LOG.warning('nothing to score in %s', emptiness)
    return list(dict.fromkeys(found))
