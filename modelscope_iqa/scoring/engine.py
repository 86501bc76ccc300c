"""Scoring many files: decoding and preprocessing in DataLoader workers, overlapped with
batched network forwards in the main process; results come back in input order as soon
as each file is done. The command line, the benchmark and the pipeline's list input all
score through :func:`score_files`."""
from __future__ import annotations

import contextlib
import logging
import os
from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Dict, Iterator, List, Optional, Sequence

import cv2
import numpy as np
import torch

from ..config import MAX_DEFAULT_WORKERS, PreprocessConfig
from ..errors import IqaError
from ..maps.mapper import QualityMap, map_geometry, preview, user_oriented
from ..models import InferenceNetwork
from ..preprocessors import ImageInput, decode, network_crop
from ..preprocessors.decoding import describe
from .video import is_video, sample_frames

LOG = logging.getLogger(__name__)
WORKER_NICENESS = 19


def default_workers() -> int:
    """Decoding processes by default: one per core, at most ``MAX_DEFAULT_WORKERS``."""
    return min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1)


@dataclass
class FileResult:
    """One input's outcome: ``score`` (a video's is the mean of its frames' scores) and,
    for a video, ``frame_numbers`` with ``frame_scores``; or ``error`` (score None) and
    the ``exception`` that caused it. ``path`` is the input's path or URL, or a short
    description of an in-memory image. ``quality_map``: an image's map when maps were
    asked for (its photo a preview), None for a video or an error."""
    path: str
    score: Optional[float]
    error: Optional[str] = None
    exception: Optional[BaseException] = None
    frame_numbers: List[int] = field(default_factory=list)
    frame_scores: List[float] = field(default_factory=list)
    quality_map: Optional[QualityMap] = None


class _FileCrops(torch.utils.data.Dataset):
    """Input -> ``{'path', 'crops' (K, H, W, 3) uint8 or None, 'frame_numbers',
    'error', 'exception', 'map_photo'}``; an image gives one crop, a video one per
    sampled frame. With ``maps``, an image's ``map_photo`` is (preview, portrait,
    region in the preview's pixels), for drawing its quality map."""

    def __init__(self, inputs: Sequence[ImageInput], preprocess_config: PreprocessConfig,
                 frame_count: Optional[int] = None, fps: Optional[float] = None,
                 videos: bool = True, maps: bool = False):
        self.inputs = list(inputs)
        self.preprocess_config = preprocess_config
        self.frame_count = frame_count
        self.fps = fps
        self.videos = videos
        self.maps = maps

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> Dict[str, object]:
        source = self.inputs[index]
        is_path = isinstance(source, (str, os.PathLike))
        path = os.fspath(source) if is_path else describe(source)
        map_photo = None
        try:
            if is_path and self.videos and is_video(path):
                sampled = list(sample_frames(path, self.frame_count, self.fps))
                crops = torch.from_numpy(np.stack(
                    [network_crop(decode(frame), self.preprocess_config) for _, frame in sampled]))
                frame_numbers = [number for number, _ in sampled]
            else:
                pixels = decode(source)
                crops = torch.from_numpy(network_crop(pixels, self.preprocess_config))[None]
                frame_numbers = []
                if self.maps:
                    map_photo = _map_photo(pixels, self.preprocess_config)
            return {'path': path, 'crops': crops, 'frame_numbers': frame_numbers,
                    'error': None, 'exception': None, 'map_photo': map_photo}
        except IqaError as exc:
            return {'path': path, 'crops': None, 'frame_numbers': [], 'error': str(exc),
                    'exception': exc, 'map_photo': None}
        except Exception as exc:  # a decoder bug must not end a 10,000-file run
            LOG.warning('unexpected error on %s', path, exc_info=True)
            return {'path': path, 'crops': None, 'frame_numbers': [],
                    'error': f'{path}: {type(exc).__name__}: {exc}', 'exception': exc,
                    'map_photo': None}


def _map_photo(pixels, preprocess_config: PreprocessConfig):
    photo, scale = preview(pixels)
    portrait, region = map_geometry(pixels, preprocess_config)
    return photo, portrait, tuple(value * scale for value in region)


def _pass_through(item):
    return item


@contextlib.contextmanager
def _fork_safe_opencv() -> Iterator[None]:
    """OpenCV's thread pool does not survive fork(): a process that has used it (int8
    calibration decodes and resizes here, a caller may have scored images) hangs the
    decoding workers it forks. Forking while OpenCV is single-threaded is safe."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def _worker_init(_worker_id: int) -> None:
    """Decoding workers run one thread each, at the lowest CPU priority: the forward
    keeps the cores while it runs, and the workers decode ahead whenever it waits."""
    os.nice(WORKER_NICENESS)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


@dataclass
class _Pending:
    item: Dict[str, object]
    scores: List[float] = field(default_factory=list)
    grids: List[np.ndarray] = field(default_factory=list)

    @property
    def done(self) -> bool:
        crops = self.item['crops']
        return crops is None or len(self.scores) == len(crops)

    def result(self) -> FileResult:
        item = self.item
        if item['error'] is not None:
            return FileResult(str(item['path']), None, str(item['error']), item['exception'])
        score = sum(self.scores) / len(self.scores)
        quality_map = None
        if item['map_photo'] is not None:
            photo, portrait, region = item['map_photo']
            quality_map = QualityMap(score, user_oriented(self.grids[0], portrait), photo,
                                     region)
        return FileResult(str(item['path']), score,
                          frame_numbers=list(item['frame_numbers']),
                          frame_scores=list(self.scores) if item['frame_numbers'] else [],
                          quality_map=quality_map)


def score_files(network: InferenceNetwork, paths: Sequence[ImageInput],
                preprocess_config: PreprocessConfig, batch_size: int = 1, workers: int = 0,
                frame_count: Optional[int] = None, fps: Optional[float] = None,
                videos: bool = True, map_window: Optional[int] = None
                ) -> Iterator[FileResult]:
    """Score image and video files (paths or URLs; in-memory images too) with
    ``network``, yielding one :class:`FileResult` per input in input order, each as soon
    as it is done. A bad input gives a result with an error; the others go on.

    Args:
        network: the network to score with (``model.inference_network(...)``).
        paths: the inputs; a video file (by extension, when ``videos``) is scored on
            sampled frames, any other input decoded as an image.
        preprocess_config: the model's preprocessing options.
        batch_size: crops per network forward (frames of several files share one).
        workers: decoding processes at the lowest CPU priority (0: decode here).
        frame_count: frames sampled uniformly per video (default 8), or ``fps`` per
            second of video.
        map_window: when given, each image's result carries its quality map
            (:mod:`modelscope_iqa.maps`, local scores over this window) from the same
            forward pass; videos get none.
    """
    loader = torch.utils.data.DataLoader(
        _FileCrops(paths, preprocess_config, frame_count, fps, videos,
                   maps=map_window is not None), batch_size=None,
        num_workers=workers, collate_fn=_pass_through,
        prefetch_factor=4 if workers else None, persistent_workers=False,
        worker_init_fn=_worker_init)
    pending: Deque[_Pending] = deque()
    queued: List[torch.Tensor] = []
    owners: List[_Pending] = []

    def forward() -> None:
        batch = torch.cat(queued)
        if map_window is None:
            scores = network(batch).cpu().tolist()
        else:
            scores, grids = network.forward_with_maps(batch, map_window)
            scores = scores.cpu().tolist()
            for owner, grid in zip(owners, grids.cpu().numpy()):
                owner.grids.append(grid)
        for owner, score in zip(owners, scores):
            owner.scores.append(score)
        queued.clear()
        owners.clear()

    def finished() -> Iterator[FileResult]:
        while pending and pending[0].done:
            yield pending.popleft().result()

    with _fork_safe_opencv():
        items = iter(loader)  # forks the workers
    for item in items:
        entry = _Pending(item)
        pending.append(entry)
        crops = item['crops']
        if crops is not None:
            for crop in crops:
                queued.append(crop[None])
                owners.append(entry)
                if len(queued) >= batch_size:
                    forward()
        yield from finished()
    if queued:
        forward()
    yield from finished()
