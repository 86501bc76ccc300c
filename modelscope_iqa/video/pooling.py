"""A video's score from its frames' scores: the pooling (``mean``, the default, which
every earlier score used; ``harmonic``, which weighs poor frames more; ``min``, the worst
frame; ``pNN``, the NN-th percentile, e.g. ``p10``) and the statistics recorded beside
it."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from ..config import DEFAULT_POOLING
POOLING_NAMES = ('mean', 'harmonic', 'min')
PERCENTILE_PATTERN = re.compile(r'p(\d{1,2}(?:\.\d+)?|100)')
# Scores are sigmoid outputs, > 0 in exact arithmetic, but float32 can round a very
# poor frame's score to 0; the harmonic mean then counts it as this.
HARMONIC_FLOOR = 1e-6


@dataclass(frozen=True)
class Pooling:
    """A pooling by name: ``mean``, ``harmonic``, ``min`` or ``pNN`` (a percentile
    between 0 and 100, linear interpolation between frames as ``numpy.percentile``).
    ``ValueError`` for any other name."""
    name: str = DEFAULT_POOLING

    def __post_init__(self):
        if self.name not in POOLING_NAMES and self.percentile is None:
            raise ValueError(f'pooling must be one of {", ".join(POOLING_NAMES)} or pNN '
                             f'(a percentile, e.g. p10), got {self.name!r}')

    @property
    def percentile(self):
        match = PERCENTILE_PATTERN.fullmatch(self.name)
        return float(match.group(1)) if match else None

    def __call__(self, scores: Sequence[float]) -> float:
        """The pooled score of ``scores`` (at least one)."""
        if len(scores) == 0:
            raise ValueError('no frame scores to pool')
        if self.name == 'mean':
            return sum(scores) / len(scores)  # as every earlier video score: unchanged
        if self.name == 'min':
            return float(min(scores))
        import numpy as np  # here: the command line validates names before loading it
        values = np.asarray(scores, dtype=np.float64)
        if self.name == 'harmonic':
            return float(len(values) / np.sum(1.0 / np.maximum(values, HARMONIC_FLOOR)))
        return float(np.percentile(values, self.percentile))


def pool(scores: Sequence[float], pooling: str = DEFAULT_POOLING) -> float:
    """``Pooling(pooling)(scores)``."""
    return Pooling(pooling)(scores)


@dataclass(frozen=True)
class FrameStatistics:
    """A video's frame scores summarised: their mean, minimum and (population) standard
    deviation, and the number of the worst frame."""
    mean: float
    minimum: float
    std: float
    worst_frame: int

    @classmethod
    def of(cls, frame_numbers: Sequence[int], scores: Sequence[float]) -> 'FrameStatistics':
        import numpy as np
        values = np.asarray(scores, dtype=np.float64)
        worst = int(np.argmin(values))
        mean = sum(scores) / len(scores)
        return cls(mean=mean, minimum=float(values[worst]),
                   std=math.sqrt(float(np.mean((values - mean) ** 2))),
                   worst_frame=int(frame_numbers[worst]))
