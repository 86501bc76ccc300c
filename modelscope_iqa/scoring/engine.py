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
    description of an in-memory image."""
    path: str
    score: Optional[float]
    error: Optional[str] = None
    exception: Optional[BaseException] = None
    frame_numbers: List[int] = field(default_factory=list)
    frame_scores: List[float] = field(default_factory=list)


class _FileCrops(torch.utils.data.Dataset):
    """Input -> ``{'path', 'crops' (K, H, W, 3) uint8 or None, 'frame_numbers',
    'error', 'exception'}``; an image gives one crop, a video one per sampled frame."""

    def __init__(self, inputs: Sequence[ImageInput], preprocess_config: PreprocessConfig,
                 frame_count: Optional[int] = None, fps: Optional[float] = None,
                 videos: bool = True):
        self.inputs = list(inputs)
        self.preprocess_config = preprocess_config
        self.frame_count = frame_count
        self.fps = fps
        self.videos = videos

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> Dict[str, object]:
        source = self.inputs[index]
        is_path = isinstance(source, (str, os.PathLike))
        path = os.fspath(source) if is_path else describe(source)
        try:
            if is_path and self.videos and is_video(path):
                sampled = list(sample_frames(path, self.frame_count, self.fps))
                crops = torch.from_numpy(np.stack(
                    [network_crop(decode(frame), self.preprocess_config) for _, frame in sampled]))
                frame_numbers = [number for number, _ in sampled]
            else:
                crops = torch.from_numpy(network_crop(decode(source), self.preprocess_config))[None]
                frame_numbers = []
            return {'path': path, 'crops': crops, 'frame_numbers': frame_numbers,
                    'error': None, 'exception': None}
        except IqaError as exc:
            return {'path': path, 'crops': None, 'frame_numbers': [], 'error': str(exc),
                    'exception': exc}
        except Exception as exc:  # a decoder bug must not end a 10,000-file run
            LOG.warning('unexpected error on %s', path, exc_info=True)
            return {'path': path, 'crops': None, 'frame_numbers': [],
                    'error': f'{path}: {type(exc).__name__}: {exc}', 'exception': exc}


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

    @property
    def done(self) -> bool:
        crops = self.item['crops']
        return crops is None or len(self.scores) == len(crops)

    def result(self) -> FileResult:
        item = self.item
        if item['error'] is not None:
            return FileResult(str(item['path']), None, str(item['error']), item['exception'])
        return FileResult(str(item['path']), sum(self.scores) / len(self.scores),
                          frame_numbers=list(item['frame_numbers']),
                          frame_scores=list(self.scores) if item['frame_numbers'] else [])


def score_files(network: InferenceNetwork, paths: Sequence[ImageInput],
                preprocess_config: PreprocessConfig, batch_size: int = 1, workers: int = 0,
                frame_count: Optional[int] = None, fps: Optional[float] = None,
                videos: bool = True) -> Iterator[FileResult]:
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
    """
    loader = torch.utils.data.DataLoader(
        _FileCrops(paths, preprocess_config, frame_count, fps, videos), batch_size=None,
        num_workers=workers, collate_fn=_pass_through,
        prefetch_factor=4 if workers else None, persistent_workers=False,
        worker_init_fn=_worker_init)
    pending: Deque[_Pending] = deque()
    queued: List[torch.Tensor] = []
    owners: List[_Pending] = []

    def forward() -> None:
        scores = network(torch.cat(queued)).cpu().tolist()
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
