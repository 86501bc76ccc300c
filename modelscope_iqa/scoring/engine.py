"""Scoring many files: decoding and preprocessing in DataLoader workers
(:mod:`.workers`), overlapped with batched network forwards in the main process
(:mod:`.batching`); results come back in input order as soon as each file is done. The
command line, the benchmarks, the pipeline's list and video inputs and the demo all score
through :func:`score_files`.
"""
from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..config import DEFAULT_POOLING, MAX_DEFAULT_WORKERS, PreprocessConfig
from ..maps.mapper import QualityMap, user_oriented
from ..preprocessors import ImageInput
from ..video import FrameSampling, FrameStatistics, Pooling
from .batching import Batcher
from .network import ScoringNetwork
from .workers import (CropBatch, InputCrops, MapPhoto, fork_safe_opencv, pass_through,
                      worker_init)


def default_workers() -> int:
    """Decoding processes by default: one per core, at most ``MAX_DEFAULT_WORKERS``."""
    return min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1)


@dataclass
class FileResult:
    """One input's outcome: ``score`` or, with ``error``, None and the ``exception``
    that caused it. ``path`` is the input's path or URL, or a short description of an
    in-memory image.

    A video's ``score`` is its frames' scores pooled by ``pooling`` (its name); it also
    has ``frame_numbers``, ``frame_times`` (seconds after the first frame),
    ``frame_scores`` and their ``statistics``, and ``transfer`` (the stream's transfer
    characteristic when it is HDR: the frames were scored untone-mapped).
    ``quality_map``: when maps were asked for, an image's map, or a video's worst
    frame's (its photo a preview)."""
    path: str
    score: Optional[float]
    error: Optional[str] = None
    exception: Optional[BaseException] = None
    frame_numbers: List[int] = field(default_factory=list)
    frame_times: List[float] = field(default_factory=list)
    frame_scores: List[float] = field(default_factory=list)
    pooling: Optional[str] = None
    statistics: Optional[FrameStatistics] = None
    transfer: Optional[str] = None
    quality_map: Optional[QualityMap] = None

    @property
    def is_video(self) -> bool:
        return bool(self.frame_numbers)


@dataclass(frozen=True)
class Progress:
    """How far a :func:`score_files` run is: ``files_done`` of ``files_total`` inputs
    handed to the caller, ``frames_done`` crops scored (an image's one, a video's
    sampled frames), so that a long video shows progress before its result."""
    files_done: int
    files_total: int
    frames_done: int


class _ProgressReports:
    """Counts what is done and calls ``progress`` (if any) each time a count grows."""

    def __init__(self, files_total: int, progress: Optional[Callable[[Progress], None]]):
        self.progress = progress
        self.files_total = files_total
        self.files_done = 0
        self.frames_done = 0

    def frames_scored(self, count: int) -> None:
        if count:
            self.frames_done += count
            self._report()

    def file_done(self) -> None:
        self.files_done += 1
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(Progress(self.files_done, self.files_total, self.frames_done))


class _InputScores:
    """One input's scores as its crops come through the network, until it is done."""

    def __init__(self, path: str, pooling: Pooling):
        self.path = path
        self.pooling = pooling
        self.scores: List[float] = []
        self.frame_numbers: List[int] = []
        self.frame_times: List[float] = []
        self.crops_received = 0
        self.complete = False
        self.error: Optional[str] = None
        self.exception: Optional[BaseException] = None
        self.transfer: Optional[str] = None
        self.worst: Optional[Tuple[float, np.ndarray, MapPhoto]] = None  # for its map

    def receive(self, item: CropBatch) -> None:
        self.complete = self.complete or item.last or item.error is not None
        if item.error is not None:
            self.error, self.exception = item.error, item.exception
            return
        self.crops_received += 0 if item.crops is None else len(item.crops)
        self.frame_numbers.extend(item.frame_numbers)
        self.frame_times.extend(item.frame_times)
        self.transfer = item.transfer

    def scored(self, score: float, grid: Optional[np.ndarray], photo: Optional[MapPhoto]
               ) -> None:
        self.scores.append(score)
        if grid is not None and (self.worst is None or score < self.worst[0]):
            self.worst = (score, grid, photo)

    @property
    def done(self) -> bool:
        return self.complete and (self.error is not None or
                                  len(self.scores) == self.crops_received)

    def result(self) -> FileResult:
        if self.error is not None:
            return FileResult(self.path, None, self.error, self.exception)
        quality_map = None
        if self.worst is not None:
            score, grid, (photo, portrait, region) = self.worst
            quality_map = QualityMap(score, user_oriented(grid, portrait), photo, region)
        if not self.frame_numbers:
            return FileResult(self.path, self.scores[0], quality_map=quality_map)
        return FileResult(self.path, self.pooling(self.scores),
                          frame_numbers=list(self.frame_numbers),
                          frame_times=list(self.frame_times), frame_scores=list(self.scores),
                          pooling=self.pooling.name,
                          statistics=FrameStatistics.of(self.frame_numbers, self.scores),
                          transfer=self.transfer, quality_map=quality_map)


def score_files(network: ScoringNetwork, paths: Sequence[ImageInput],
                preprocess_config: PreprocessConfig, batch_size: int = 1, workers: int = 0,
                frame_count: Optional[int] = None, fps: Optional[float] = None,
                videos: bool = True, map_window: Optional[int] = None,
                pooling: Union[str, Pooling] = DEFAULT_POOLING,
                progress: Optional[Callable[[Progress], None]] = None
                ) -> Iterator[FileResult]:
    """Score image and video files (paths or URLs; in-memory images too) with
    ``network``, yielding one :class:`FileResult` per input in input order, each as soon
    as it is done. A bad input gives a result with an error; the others go on.

    Args:
        network: the network to score with: ``model.inference_network(...)`` or an
            :class:`~modelscope_iqa.export.OnnxNetwork` (called on a uint8 crop batch).
        paths: the inputs; a video file (by extension, when ``videos``) is scored on
            sampled frames, any other input decoded as an image.
        preprocess_config: the model's preprocessing options.
        batch_size: crops per network forward (frames of several files share one).
        workers: decoding processes at the lowest CPU priority (0: decode here).
        frame_count: frames sampled uniformly per video (default 8), or ``fps`` per
            second of presentation time.
        map_window: when given, each image's result carries its quality map
            (:mod:`modelscope_iqa.maps`, local scores over this window) from the same
            forward pass, and each video's the map of its worst frame.
        pooling: how a video's frame scores make its score (``mean``, ``harmonic``,
            ``min``, ``pNN``; see :mod:`modelscope_iqa.video.pooling`).
        progress: called in this process with a :class:`Progress` after each forward
            and after each result the caller has taken.
    """
    pooling = pooling if isinstance(pooling, Pooling) else Pooling(pooling)
    sampling = FrameSampling(frame_count, fps)
    loader = torch.utils.data.DataLoader(
        InputCrops(paths, preprocess_config, sampling, videos, maps=map_window is not None),
        batch_size=None, num_workers=min(workers, len(paths)), collate_fn=pass_through,
        prefetch_factor=4 if workers and paths else None, persistent_workers=False,
        worker_init_fn=worker_init)
    batcher = Batcher(network, batch_size, map_window)
    reports = _ProgressReports(len(paths), progress)
    inputs: Dict[int, _InputScores] = {}
    order: Deque[int] = deque(range(len(paths)))

    def finished() -> Iterator[FileResult]:
        while order and order[0] in inputs and inputs[order[0]].done:
            yield inputs.pop(order.popleft()).result()
            reports.file_done()

    with fork_safe_opencv():
        items = iter(loader)  # forks the workers
    for item in items:
        owner = inputs.setdefault(item.index, _InputScores(item.path, pooling))
        owner.receive(item)
        if item.crops is not None and item.error is None:
            photos = item.map_photos or [None] * len(item.crops)
            for crop, photo in zip(item.crops, photos):
                reports.frames_scored(batcher.add(crop, owner, photo))
        yield from finished()
    reports.frames_scored(batcher.flush())
    yield from finished()
