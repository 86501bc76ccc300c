"""Videos: which files are videos, and sampling their frames with OpenCV."""
from __future__ import annotations

import os
from typing import Iterator, List, Optional, Tuple

import cv2
import numpy as np

from ..errors import UnreadableImageError

DEFAULT_FRAME_COUNT = 8
VIDEO_EXTENSIONS = frozenset({'.mp4', '.mov', '.avi', '.mkv', '.webm', '.m4v', '.3gp',
                              '.mpg', '.mpeg', '.wmv', '.flv', '.ts'})


def is_video(path: str) -> bool:
    """Whether ``path`` names a video file (by extension)."""
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def frame_numbers(video_frames: int, video_fps: float, frame_count: Optional[int],
                  fps: Optional[float]) -> List[int]:
    """Uniformly spread numbers of frames among a video's ``video_frames``:
    ``frame_count`` of them (default 8), or ``fps`` per second."""
    if video_frames <= 0:
        return []
    if fps is not None:
        step = max(1.0, (video_fps or fps) / fps)
        return sorted({int(i) for i in np.arange(0, video_frames, step)})
    count = min(frame_count or DEFAULT_FRAME_COUNT, video_frames)
    return sorted({int(round(i)) for i in np.linspace(0, video_frames - 1, count)})


def sample_frames(path: str, frame_count: Optional[int] = None,
                  fps: Optional[float] = None) -> Iterator[Tuple[int, np.ndarray]]:
    """Yield ``(frame_number, BGR array)`` for the sampled frames, reading sequentially
    (seeking is unreliable in many containers). Raises UnreadableImageError when the
    file cannot be opened, when no frame decodes, and, after the frames that did, when
    decoding stops before the last sampled frame (a truncated or corrupt file): the
    message lists the frames decoded, and no score is given from part of a video."""
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise UnreadableImageError(f'{path!r}: cannot open as a video')
        video_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = frame_numbers(video_frames, capture.get(cv2.CAP_PROP_FPS), frame_count, fps)
        if not wanted:
            raise UnreadableImageError(f'{path!r}: video reports no frames')
        decoded, wanted_set, index = [], set(wanted), 0
        while index <= wanted[-1]:
            ok, frame = capture.read()
            if not ok:
                break
            if index in wanted_set:
                decoded.append(index)
                yield index, frame
            index += 1
        if not decoded:
            raise UnreadableImageError(
                f'{path!r}: no decodable frame (the video reports {video_frames} frames; '
                f'frame {index} did not decode)')
        if len(decoded) < len(wanted):
            raise UnreadableImageError(
                f'{path!r}: truncated or corrupt: decoded {len(decoded)} of the '
                f'{len(wanted)} sampled frames (frames {decoded}; of {video_frames} '
                f'reported, frames from {index} on did not decode); not scored')
    finally:
        capture.release()
