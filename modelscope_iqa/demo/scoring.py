"""What the demo page does, without Gradio: score uploads with their quality maps, the
table sorted by score, its CSV; a bad upload becomes a row with its error."""
from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from PIL import Image

from ..config import EXACT_PRECISION
from ..maps import LOCAL_WINDOW, QualityMap, QualityMapper

EXAMPLES_DIR = Path(__file__).resolve().parent / 'examples'
# Quality maps on the page: longest side of the photo drawn, in pixels.
PAGE_MAP_SIDE = 1280
SCORE_DECIMALS = 6  # as the page shows scores; the CSV keeps every digit
TABLE_HEADERS = ['photo', 'score', 'error']


@dataclass
class UploadResult:
    """One upload: its file ``name``, ``score`` and ``quality_map``, or an ``error``."""
    name: str
    path: str
    score: Optional[float] = None
    error: Optional[str] = None
    quality_map: Optional[QualityMap] = None

    @functools.cached_property
    def overlay(self) -> Optional[Image.Image]:
        """The quality map drawn for the page (on first use: the client API's ``/score``
        needs none)."""
        if self.quality_map is None:
            return None
        return self.quality_map.overlay(max_side=PAGE_MAP_SIDE)

    @property
    def shown_score(self) -> str:
        return '' if self.score is None else f'{self.score:.{SCORE_DECIMALS}f}'


def example_images() -> List[str]:
    """The committed sample photos shipped with the package, as example uploads."""
    return sorted(str(path) for path in EXAMPLES_DIR.glob('*.jpg'))


class DemoScorer:
    """Scores uploaded files with one model, loaded once (see :class:`QualityMapper` for
    ``model``, ``precision`` and ``device``)."""

    def __init__(self, model=None, precision: str = EXACT_PRECISION, device: str = 'cpu'):
        self.mapper = QualityMapper(model, precision, device)

    def score(self, paths: Sequence[str]) -> List[UploadResult]:
        """Each upload's result, in upload order. Decoding runs in this process (a web
        server's threads and forked workers do not mix)."""
        from ..scoring import score_files
        results = []
        for result in score_files(self.mapper.network, list(paths),
                                  self.mapper.preprocess_config, videos=False,
                                  map_window=LOCAL_WINDOW):
            name = os.path.basename(result.path)
            if result.error is not None:
                results.append(UploadResult(name, result.path, error=_short_error(
                    result.error, result.path, name)))
                continue
            results.append(UploadResult(name, result.path, result.score,
                                        quality_map=result.quality_map))
        return results


def _short_error(error: str, path: str, name: str) -> str:
    """Errors name the upload by its file name, not the server's temporary path."""
    return error.replace(repr(path), repr(name)).replace(path, name)


def sorted_by_score(results: Sequence[UploadResult]) -> List[UploadResult]:
    """Best first; uploads that failed last, in upload order."""
    scored = sorted((r for r in results if r.score is not None), key=lambda r: -r.score)
    return scored + [r for r in results if r.score is None]


def table_rows(results: Sequence[UploadResult]) -> List[List[str]]:
    return [[r.name, r.shown_score, r.error or ''] for r in sorted_by_score(results)]


def write_csv(results: Sequence[UploadResult], path: str) -> str:
    """The table, sorted by score, with full-precision scores."""
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f, lineterminator='\n')
        writer.writerow(TABLE_HEADERS)
        for r in sorted_by_score(results):
            writer.writerow([r.name, '' if r.score is None else repr(r.score), r.error or ''])
    return path


def comparison(first: UploadResult, second: UploadResult) -> str:
    """A sentence comparing two uploads' scores (Markdown)."""
    for result in (first, second):
        if result.score is None:
            return f'**{result.name}** could not be scored: {result.error}'
    if first.score == second.score:
        return f'**{first.name}** and **{second.name}** score the same: {first.shown_score}.'
    better, worse = (first, second) if first.score > second.score else (second, first)
    return (f'**{better.name}** ({better.shown_score}) scores higher than '
            f'**{worse.name}** ({worse.shown_score}), by {better.score - worse.score:.3f}.')
