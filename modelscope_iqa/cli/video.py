"""Sampling frames of a video with OpenCV."""
from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

import cv2
import numpy as np

from ..errors import UnreadableImageError

DEFAULT_FRAMES = 8


def frame_indices(frame_count: int, video_fps: float, frames: Optional[int],
                  fps: Optional[float]) -> List[int]:
    """Uniformly spread frame numbers: ``frames`` of them, or ``fps`` per second."""
    if frame_count <= 0:
        return []
    if fps is not None:
        step = max(1.0, (video_fps or fps) / fps)
        return sorted({int(i) for i in np.arange(0, frame_count, step)})
    count = min(frames or DEFAULT_FRAMES, frame_count)
    return sorted({int(round(i)) for i in np.linspace(0, frame_count - 1, count)})


def sample_frames(path: str, frames: Optional[int] = None,
                  fps: Optional[float] = None) -> Iterator[Tuple[int, np.ndarray]]:
    """Yield ``(frame_number, BGR array)`` for the sampled frames, reading sequentially
    (seeking is unreliable in many containers). Raises UnreadableImageError when the
    file cannot be opened or no frame decodes."""
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise UnreadableImageError(f'{path!r}: cannot open as a video')
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = frame_indices(count, capture.get(cv2.CAP_PROP_FPS), frames, fps)
        if not wanted:
            raise UnreadableImageError(f'{path!r}: video reports no frames')
        yielded, wanted_set, index = 0, set(wanted), 0
        while index <= wanted[-1]:
            ok, frame = capture.read()
            if not ok:
                break
            if index in wanted_set:
                yielded += 1
                yield index, frame
            index += 1
        if yielded == 0:
            raise UnreadableImageError(f'{path!r}: no decodable frame')
    finally:
        capture.release()
