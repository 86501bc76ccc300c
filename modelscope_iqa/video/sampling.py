"""Which frames of a video are scored: ``frames`` spread uniformly by frame index, or
``fps`` per second of presentation time (so variable frame rate video is sampled evenly
in time). Pure functions over a video's frame count and frame times; no decoding."""
from __future__ import annotations

import bisect
import math
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence

DEFAULT_FRAME_COUNT = 8
VIDEO_EXTENSIONS = frozenset({'.mp4', '.mov', '.avi', '.mkv', '.webm', '.m4v', '.3gp',
                              '.mpg', '.mpeg', '.wmv', '.flv', '.ts'})


def is_video(path: str) -> bool:
    """Whether ``path`` names a video file (by extension)."""
    return os.path.splitext(os.fspath(path))[1].lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class FrameSampling:
    """How a video's frames are chosen: ``frames`` uniformly spread frame numbers
    (first and last included; default 8), or ``fps`` frames per second of presentation
    time. Give at most one."""
    frames: Optional[int] = None
    fps: Optional[float] = None

    def __post_init__(self):
        if self.frames is not None and self.fps is not None:
            raise ValueError('give frames or fps, not both')
        if self.frames is not None and self.frames < 1:
            raise ValueError(f'frames must be >= 1, got {self.frames}')
        if self.fps is not None and not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f'fps must be a positive number, got {self.fps}')

    def describe(self) -> str:
        if self.fps is not None:
            return f'{self.fps:g} frames per second'
        return f'{self.frames or DEFAULT_FRAME_COUNT} frames'

    def frame_numbers(self, frame_count: int, frame_times: Sequence[float]) -> List[int]:
        """The sampled frame numbers (ascending, distinct) of a video of ``frame_count``
        frames whose frame ``n`` is shown from ``frame_times[n]`` seconds (ascending;
        only read with ``fps``)."""
        if frame_count <= 0:
            return []
        if self.fps is not None:
            return frames_at_rate(frame_times[:frame_count], self.fps)
        return uniform_frames(frame_count, self.frames or DEFAULT_FRAME_COUNT)


def uniform_frames(frame_count: int, count: int) -> List[int]:
    """``count`` frame numbers spread uniformly over ``0 .. frame_count - 1``, the first
    and last included, each rounded to the nearest, ties to even."""
    count = min(count, frame_count)
    if count == 1:
        return [0]
    step = (frame_count - 1) / (count - 1)
    return sorted({round(i * step) for i in range(count)})


def frames_at_rate(frame_times: Sequence[float], fps: float) -> List[int]:
    """The frames shown at ``0, 1/fps, 2/fps, ...`` seconds after the first frame: for
    each instant, the last frame whose time is not after it."""
    if not frame_times:
        return []
    start, end = frame_times[0], frame_times[-1]
    numbers = []
    instant = 0
    while True:
        at = start + instant / fps
        if at > end + 1e-9:
            break
        numbers.append(bisect.bisect_right(frame_times, at + 1e-9) - 1)
        instant += 1
    return sorted(set(numbers))
