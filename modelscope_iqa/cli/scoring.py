"""Scoring many files: decoding and preprocessing in DataLoader workers, overlapped with
batched network forwards in the main process; rows are written in input order as soon
as each file is done."""
from __future__ import annotations

import contextlib
import logging
import os
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, Iterator, List, Optional

import cv2
import numpy as np
import torch

from ..config import PreprocessConfig
from ..errors import IqaError
from ..models import InferenceNetwork
from ..preprocessors import decode, network_crop
from .inputs import is_video
from .video import sample_frames

LOG = logging.getLogger(__name__)
WORKER_NICENESS = 19


class ScoringInputs(torch.utils.data.Dataset):
    """File path -> ``{'path', 'tensors' (K, H, W, 3) uint8 crops or None, 'frames',
    'error'}``; an image gives one crop, a video one per sampled frame."""

    def __init__(self, paths: List[str], preprocess: PreprocessConfig,
                 frames: Optional[int] = None, fps: Optional[float] = None):
        self.paths = paths
        self.preprocess = preprocess
        self.frames = frames
        self.fps = fps

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Dict[str, object]:
        path = self.paths[index]
        try:
            if is_video(path):
                sampled = list(sample_frames(path, self.frames, self.fps))
                tensors = torch.from_numpy(np.stack(
                    [network_crop(decode(frame), self.preprocess) for _, frame in sampled]))
                frame_numbers = [number for number, _ in sampled]
            else:
                crop = network_crop(decode(path), self.preprocess)
                tensors = torch.from_numpy(crop).unsqueeze(0)
                frame_numbers = []
            return {'path': path, 'tensors': tensors, 'frames': frame_numbers, 'error': None}
        except IqaError as exc:
            return {'path': path, 'tensors': None, 'frames': [], 'error': str(exc)}
        except Exception as exc:  # a decoder bug must not end a 10,000-file run
            LOG.warning('unexpected error on %r', path, exc_info=True)
            return {'path': path, 'tensors': None, 'frames': [],
                    'error': f'{path!r}: {type(exc).__name__}: {exc}'}


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
        tensors = self.item['tensors']
        return tensors is None or len(self.scores) == len(tensors)


def score_files(network: InferenceNetwork, dataset: ScoringInputs, batch_size: int,
                workers: int,
                on_done: Callable[[Dict[str, object], List[float]], None]) -> None:
    """Score every file of ``dataset`` with ``network``; ``on_done(item, frame_scores)``
    is called once per file, in input order (``frame_scores`` is empty for a failed
    file)."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, num_workers=workers, collate_fn=_pass_through,
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

    def flush_done() -> None:
        while pending and pending[0].done:
            finished = pending.popleft()
            on_done(finished.item, finished.scores)

    with _fork_safe_opencv():
        items = iter(loader)  # forks the workers
    for item in items:
        entry = _Pending(item)
        pending.append(entry)
        tensors = item['tensors']
        if tensors is not None:
            for frame in tensors:
                queued.append(frame.unsqueeze(0))
                owners.append(entry)
                if len(queued) >= batch_size:
                    forward()
        flush_done()
    if queued:
        forward()
    flush_done()
