"""What the demo page does, without Gradio: score uploads (photos with their quality
maps, videos with their timeline and worst frame's map), the table sorted by score, its
CSV; a bad upload becomes a row with its error."""
from __future__ import annotations

import csv
import dataclasses
import functools
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
from PIL import Image

from ..config import EXACT_PRECISION
from ..maps import LOCAL_WINDOW, QualityMap, QualityMapper
from ..video import FrameStatistics

EXAMPLES_DIR = Path(__file__).resolve().parent / 'examples'
# Quality maps on the page: longest side of the photo drawn, in pixels.
PAGE_MAP_SIDE = 1280
# A video's worst frame, drawn under its timeline: longest side, in pixels (its map
# then is about as wide as the timeline).
PANEL_FRAME_SIDE = 880
SCORE_DECIMALS = 6  # as the page shows scores; the CSV keeps every digit
TABLE_HEADERS = ['photo', 'score', 'error']


@dataclass
class UploadResult:
    """One upload: its file ``name``, ``score`` and ``quality_map``, or an ``error``.

    A video's ``score`` is its sampled frames' scores pooled by ``pooling``, its
    ``quality_map`` its worst frame's; ``frame_numbers``, ``frame_times`` (seconds) and
    ``frame_scores`` are its frames', ``statistics`` their summary."""
    name: str
    path: str
    score: Optional[float] = None
    error: Optional[str] = None
    quality_map: Optional[QualityMap] = None
    frame_numbers: List[int] = field(default_factory=list)
    frame_times: List[float] = field(default_factory=list)
    frame_scores: List[float] = field(default_factory=list)
    pooling: Optional[str] = None
    statistics: Optional[FrameStatistics] = None

    @property
    def is_video(self) -> bool:
        """Whether it was scored as a video (a video that failed was not)."""
        return bool(self.frame_numbers)

    @functools.cached_property
    def overlay(self) -> Optional[Image.Image]:
        """The quality map drawn for the page (on first use: the client API's ``/score``
        needs none)."""
        if self.quality_map is None:
            return None
        return self.quality_map.overlay(max_side=PAGE_MAP_SIDE)

    @functools.cached_property
    def timeline(self) -> Optional[Image.Image]:
        """A video's frame scores over time drawn for the page, as ``--timeline`` draws
        them (on first use)."""
        if not self.is_video:
            return None
        return timeline_image(self.frame_numbers, self.frame_times, self.frame_scores,
                              self.score, self.pooling, self.name)

    @functools.cached_property
    def video_panel(self) -> Optional[Image.Image]:
        """A video drawn for the page: its timeline above its worst frame's map."""
        if not self.is_video:
            return None
        return video_panel(self.timeline, self.quality_map)

    @property
    def shown_score(self) -> str:
        return '' if self.score is None else f'{self.score:.{SCORE_DECIMALS}f}'

    def video_caption(self) -> str:
        """What a video's panel shows: its score, and which frame is its worst."""
        position = self.frame_numbers.index(self.statistics.worst_frame)
        return (f'{self.name}: {self.shown_score}, the {self.pooling} of '
                f'{len(self.frame_scores)} frames; below, its worst frame '
                f'({self.statistics.worst_frame}, at {self.frame_times[position]:.2f} s): '
                f'{self.frame_scores[position]:.3f}')


def timeline_image(frame_numbers: Sequence[int], times: Sequence[float],
                   scores: Sequence[float], pooled: float, pooling: str,
                   title: str) -> Image.Image:
    """:func:`~modelscope_iqa.video.timeline.timeline_figure` as an RGB image."""
    from ..video.timeline import FIGURE_DPI, timeline_figure
    buffer = io.BytesIO()
    timeline_figure(frame_numbers, times, scores, pooled, pooling, title).savefig(
        buffer, format='png', dpi=FIGURE_DPI)
    buffer.seek(0)
    return Image.open(buffer).convert('RGB')


def video_panel(timeline: Image.Image, quality_map: Optional[QualityMap]) -> Image.Image:
    """``timeline`` above ``quality_map`` drawn with its frame's longest side
    ``PANEL_FRAME_SIDE`` (a small video's frame enlarged, the map's text kept sharp)."""
    if quality_map is None:
        return timeline
    height, width = quality_map.photo.shape[:2]
    scale = PANEL_FRAME_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    photo = np.asarray(Image.fromarray(quality_map.photo).resize(size, Image.BICUBIC))
    region = tuple(value * scale for value in quality_map.region)
    drawn = dataclasses.replace(quality_map, photo=photo, region=region).overlay(
        max_side=PANEL_FRAME_SIDE)
    if drawn.width > timeline.width:
        drawn = drawn.resize((timeline.width, round(drawn.height * timeline.width
                                                    / drawn.width)), Image.LANCZOS)
    panel = Image.new('RGB', (timeline.width, timeline.height + drawn.height), 'white')
    panel.paste(timeline, (0, 0))
    panel.paste(drawn, ((timeline.width - drawn.width) // 2, timeline.height))
    return panel


def example_images() -> List[str]:
    """The committed sample photos shipped with the package, as example uploads."""
    return sorted(str(path) for path in EXAMPLES_DIR.glob('*.jpg'))


class DemoScorer:
    """Scores uploaded files with one model, loaded once (see :class:`QualityMapper` for
    ``model``, ``precision`` and ``device``). A video (by extension) is scored as
    ``modelscope-iqa score`` scores it by default: ``DEFAULT_FRAME_COUNT`` frames spread
    over it, their scores pooled by ``DEFAULT_POOLING``."""

    def __init__(self, model=None, precision: str = EXACT_PRECISION, device: str = 'cpu'):
        self.mapper = QualityMapper(model, precision, device)

    def score(self, paths: Sequence[str]) -> List[UploadResult]:
        """Each upload's result, in upload order. Decoding runs in this process (a web
        server's threads and forked workers do not mix)."""
        from ..scoring import score_files
        results = []
        for result in score_files(self.mapper.network, list(paths),
                                  self.mapper.preprocess_config, map_window=LOCAL_WINDOW):
            name = os.path.basename(result.path)
            if result.error is not None:
                results.append(UploadResult(name, result.path, error=_short_error(
                    result.error, result.path, name)))
                continue
            results.append(UploadResult(
                name, result.path, result.score, quality_map=result.quality_map,
                frame_numbers=result.frame_numbers, frame_times=result.frame_times,
                frame_scores=result.frame_scores, pooling=result.pooling,
                statistics=result.statistics))
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
