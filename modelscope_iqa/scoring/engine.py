"""Scoring many files: decoding and preprocessing in DataLoader workers, overlapped with
batched network forwards in the main process; results come back in input order as soon
as each file is done. The command line, the benchmarks, the pipeline's list and video
inputs and the demo all score through :func:`score_files`.

Each worker takes every ``workers``-th input and sends back :class:`CropBatch` items: an
image's one crop, or a video's sampled frames a few at a time (so a long video is neither
held whole in memory nor kept from the network until its last frame decodes). Whatever a
worker raises on an input becomes that input's error, as an exception that survives the
trip between processes: no input ends a run.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

from ..config import DEFAULT_POOLING, MAX_DEFAULT_WORKERS, PreprocessConfig
from ..errors import InputError, IqaError
from ..maps.mapper import QualityMap, map_geometry, preview, user_oriented
from ..preprocessors import ImageInput, decode, network_crop
from ..preprocessors.decoding import describe
from ..video import FrameSampling, FrameStatistics, Pooling, is_video
from ..video.decoder import VideoReader

LOG = logging.getLogger(__name__)
WORKER_NICENESS = 19
# A video's sampled frames travel from a worker to the network this many at a time.
FRAMES_PER_ITEM = 4
MapPhoto = Tuple[np.ndarray, bool, Tuple[float, float, float, float]]


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


@dataclass
class CropBatch:
    """What a decoding worker sends for (part of) input ``index``: ``crops`` (K, H, W, 3)
    uint8 with, for a video, their ``frame_numbers`` and ``frame_times``; ``last`` on
    the input's final item. An item with an ``error`` ends its input. ``map_photos``:
    one per crop, when maps were asked for."""
    index: int
    path: str
    crops: Optional[torch.Tensor] = None
    frame_numbers: List[int] = field(default_factory=list)
    frame_times: List[float] = field(default_factory=list)
    last: bool = True
    error: Optional[str] = None
    exception: Optional[BaseException] = None
    map_photos: List[MapPhoto] = field(default_factory=list)
    transfer: Optional[str] = None


class _InputCrops(torch.utils.data.IterableDataset):
    """Inputs -> :class:`CropBatch` items; each worker takes every ``num_workers``-th
    input, in order."""

    def __init__(self, inputs: Sequence[ImageInput], preprocess_config: PreprocessConfig,
                 sampling: FrameSampling, videos: bool, maps: bool):
        self.inputs = list(inputs)
        self.preprocess_config = preprocess_config
        self.sampling = sampling
        self.videos = videos
        self.maps = maps

    def __iter__(self) -> Iterator[CropBatch]:
        worker = torch.utils.data.get_worker_info()
        start, step = (0, 1) if worker is None else (worker.id, worker.num_workers)
        for index in range(start, len(self.inputs), step):
            yield from self._items(index)

    def _items(self, index: int) -> Iterator[CropBatch]:
        source = self.inputs[index]
        is_path = isinstance(source, (str, os.PathLike))
        path = os.fspath(source) if is_path else describe(source)
        try:
            if is_path and self.videos and is_video(path):
                yield from self._video_items(index, path)
            else:
                yield self._image_item(index, path, source)
        except IqaError as exc:
            yield CropBatch(index, path, error=str(exc), exception=_portable(exc, path))
        except Exception as exc:  # a decoder bug must not end a 10,000-file run
            LOG.warning('unexpected error on %s', path, exc_info=True)
            yield CropBatch(index, path, error=f'{path}: {type(exc).__name__}: {exc}',
                            exception=_portable(exc, path))

    def _image_item(self, index: int, path: str, source: ImageInput) -> CropBatch:
        pixels = decode(source)
        crop = torch.from_numpy(network_crop(pixels, self.preprocess_config))[None]
        photos = [_map_photo(pixels, self.preprocess_config)] if self.maps else []
        return CropBatch(index, path, crop, map_photos=photos)

    def _video_items(self, index: int, path: str) -> Iterator[CropBatch]:
        """The sampled frames, ``FRAMES_PER_ITEM`` an item; the last item is sent only
        once every sampled frame decoded (else the error ends the input)."""
        with VideoReader(path) as reader:
            transfer = reader.hdr_transfer
            chunk: List = []
            for frame in reader.sample(self.sampling):
                chunk.append(frame)
                if len(chunk) == FRAMES_PER_ITEM:
                    yield self._frames_item(index, path, chunk, False, transfer)
                    chunk = []
            yield self._frames_item(index, path, chunk, True, transfer)

    def _frames_item(self, index: int, path: str, frames: List, last: bool,
                     transfer: Optional[str]) -> CropBatch:
        crops = None
        photos: List[MapPhoto] = []
        if frames:
            pixels = [decode(frame.pixels) for frame in frames]
            crops = torch.from_numpy(np.stack(
                [network_crop(p, self.preprocess_config) for p in pixels]))
            if self.maps:
                photos = [_map_photo(p, self.preprocess_config) for p in pixels]
        return CropBatch(index, path, crops, [f.number for f in frames],
                         [f.time for f in frames], last=last, map_photos=photos,
                         transfer=transfer)


def _portable(exc: BaseException, path: str) -> BaseException:
    """``exc`` if it survives pickling (the trip from a worker to the main process),
    else an :class:`InputError` with its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return InputError(f'{path}: {type(exc).__name__}: {exc}')


def _map_photo(pixels, preprocess_config: PreprocessConfig) -> MapPhoto:
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


class _Batcher:
    """Collects crops until ``batch_size`` are waiting, then runs one forward and hands
    each score (and local-score grid, with maps) to the input it came from."""

    def __init__(self, network, batch_size: int, map_window: Optional[int]):
        self.network = network
        self.batch_size = batch_size
        self.map_window = map_window
        self._crops: List[torch.Tensor] = []
        self._owners: List[Tuple[_InputScores, Optional[MapPhoto]]] = []

    def add(self, crop: torch.Tensor, owner: _InputScores, photo: Optional[MapPhoto]) -> None:
        self._crops.append(crop[None])
        self._owners.append((owner, photo))
        if len(self._crops) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._crops:
            return
        batch = torch.cat(self._crops)
        if self.map_window is None:
            scores, grids = self.network(batch).cpu().tolist(), [None] * len(batch)
        else:
            scores, grids = self.network.forward_with_maps(batch, self.map_window)
            scores, grids = scores.cpu().tolist(), list(grids.cpu().numpy())
        for (owner, photo), score, grid in zip(self._owners, scores, grids):
            owner.scored(score, grid, photo)
        self._crops.clear()
        self._owners.clear()


def score_files(network, paths: Sequence[ImageInput],
                preprocess_config: PreprocessConfig, batch_size: int = 1, workers: int = 0,
                frame_count: Optional[int] = None, fps: Optional[float] = None,
                videos: bool = True, map_window: Optional[int] = None,
                pooling: Union[str, Pooling] = DEFAULT_POOLING) -> Iterator[FileResult]:
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
    """
    pooling = pooling if isinstance(pooling, Pooling) else Pooling(pooling)
    sampling = FrameSampling(frame_count, fps)
    loader = torch.utils.data.DataLoader(
        _InputCrops(paths, preprocess_config, sampling, videos, maps=map_window is not None),
        batch_size=None, num_workers=min(workers, len(paths)), collate_fn=_pass_through,
        prefetch_factor=4 if workers and paths else None, persistent_workers=False,
        worker_init_fn=_worker_init)
    batcher = _Batcher(network, batch_size, map_window)
    inputs: Dict[int, _InputScores] = {}
    order: Deque[int] = deque(range(len(paths)))

    def finished() -> Iterator[FileResult]:
        while order and order[0] in inputs and inputs[order[0]].done:
            yield inputs.pop(order.popleft()).result()

    with _fork_safe_opencv():
        items = iter(loader)  # forks the workers
    for item in items:
        owner = inputs.setdefault(item.index, _InputScores(item.path, pooling))
        owner.receive(item)
        if item.crops is not None and item.error is None:
            photos = item.map_photos or [None] * len(item.crops)
            for crop, photo in zip(item.crops, photos):
                batcher.add(crop, owner, photo)
        yield from finished()
    batcher.flush()
    yield from finished()
