"""The decoding workers' side of the engine: inputs -> :class:`CropBatch` items, in
DataLoader worker processes (or in the caller's process with no workers).

Each worker takes every ``workers``-th input and sends back an image's one crop, or a
video's sampled frames a few at a time (so a long video is neither held whole in memory
nor kept from the network until its last frame decodes). Whatever a worker raises on an
input becomes that input's error, as an exception that survives the trip between
processes: no input ends a run.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from ..config import PreprocessConfig
from ..errors import InputError, IqaError
from ..maps.mapper import map_geometry, preview
from ..preprocessors import ImageInput, decode, network_crop
from ..preprocessors.decoding import EncodedImage, describe
from ..video import FrameSampling, is_video
from ..video.decoder import VideoReader

LOG = logging.getLogger(__name__)
WORKER_NICENESS = 19
# A video's sampled frames travel from a worker to the network this many at a time.
FRAMES_PER_ITEM = 4
# A crop's photo for its quality map: the preview, whether the crop was cut from the
# portrait orientation, and the crop's region in the preview's pixels.
MapPhoto = Tuple[np.ndarray, bool, Tuple[float, float, float, float]]


@dataclass(frozen=True)
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


class InputCrops(torch.utils.data.IterableDataset):
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
        path = (os.fspath(source) if is_path else
                source.name if isinstance(source, EncodedImage) else describe(source))
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


def pass_through(item: CropBatch) -> CropBatch:
    """The loader's ``collate_fn``: items travel as they are (a picklable function)."""
    return item


@contextlib.contextmanager
def fork_safe_opencv() -> Iterator[None]:
    """OpenCV's thread pool does not survive fork(): a process that has used it (int8
    calibration decodes and resizes here, a caller may have scored images) hangs the
    decoding workers it forks. Forking while OpenCV is single-threaded is safe."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def worker_init(_worker_id: int) -> None:
    """Decoding workers run one thread each, at the lowest CPU priority: the forward
    keeps the cores while it runs, and the workers decode ahead whenever it waits."""
    os.nice(WORKER_NICENESS)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
