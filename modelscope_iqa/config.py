"""The single source of the package's constants.

The preprocessing and dataset settings live in ``configuration.json`` (the repository's
top-level file; the package's default model folder holds a link to it) and are read
from there; Python code never re-types them. The scoring precisions and the default
number of decoding workers are set here. This module imports neither PyTorch nor
ModelScope: the command line reads it before deciding whether it needs them.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Tuple

# The package's version (``modelscope_iqa.__version__``, setup.py's, ``--version``'s and
# the embedded default model's: its weights ship with the package).
VERSION = '0.3.0'

# The embedded default model's folder; its configuration.json links to the
# repository's top-level one, so there is a single copy.
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / 'default_model'
CONFIGURATION_FILE = DEFAULT_MODEL_PATH / 'configuration.json'
# The weights file of a model folder, as the hub names it.
WEIGHTS_FILE = 'pytorch_model.pt'

# Decoding processes by default: one per core, at most this many.
MAX_DEFAULT_WORKERS = 4
# Opacity of a quality map drawn over its photo (modelscope_iqa.maps).
DEFAULT_MAP_ALPHA = 0.6

INTERPOLATIONS = ('bicubic', )
CHANNEL_ORDERS = ('BGR', 'RGB')
# Keys that ModelScope's own configurations put in a dataset section for other
# consumers (its dataset builders, per-split settings).
MODELSCOPE_DATASET_KEYS = frozenset({'type', 'name', 'namespace', 'subset_name', 'split',
                                     'mode', 'train', 'val', 'test'})


@dataclass(frozen=True)
class PrecisionBound:
    """How far a precision's scores may lie from the exact (fp32) ones: the bound the
    tests hold it to, that the command line's help and docs/deploy.md quote and that an
    export is checked against.

    Attributes:
        max_abs_diff: the largest ``|score - exact score|`` allowed.
        min_srcc: the lowest Spearman correlation with the exact scores allowed.
        devices: where the precision runs (``'cpu'``, ``'cuda'``).
    """
    max_abs_diff: float
    min_srcc: float
    devices: Tuple[str, ...]

    def describe(self, reference: str = 'exact') -> str:
        """``'within 0.02 of exact, SRCC >= 0.995'`` (no SRCC when it must be 1: the
        order is then the reference's)."""
        srcc = f', SRCC >= {self.min_srcc:g}' if self.min_srcc < 1 else ''
        return f'within {self.max_abs_diff:g} of {reference}{srcc}'


# Scoring precisions (models.inference maps each to its dtype) and their bounds; fp32 is
# exact. int8's bound is the default model's: calibrated to use the whole score range, it
# is about 6x further from exact in int8 than bf16 (models/quantization.py says why).
PRECISION_BOUNDS = {
    'fp32': PrecisionBound(1e-5, 1.0, ('cpu', 'cuda')),
    'bf16': PrecisionBound(0.02, 0.995, ('cpu', 'cuda')),
    'fp16': PrecisionBound(0.02, 0.995, ('cuda', )),
    'int8': PrecisionBound(0.14, 0.99, ('cpu', )),
}
PRECISIONS = tuple(PRECISION_BOUNDS)
EXACT_PRECISION = 'fp32'


@functools.lru_cache(maxsize=None)
def _load_default_configuration() -> str:
    return CONFIGURATION_FILE.read_text(encoding='utf-8')


def default_configuration() -> dict:
    """A fresh copy of the package's ``configuration.json`` as a dict."""
    return json.loads(_load_default_configuration())


def _size_pair(name: str, value: Any) -> Tuple[int, int]:
    try:
        height, width = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f'{name} must be a pair [height, width], got {value!r}') from None
    if height <= 0 or width <= 0:
        raise ValueError(f'{name} must be positive, got {value!r}')
    return height, width


@dataclass(frozen=True)
class PreprocessConfig:
    """How an image becomes the network's input tensor.

    Sizes are ``(height, width)`` for a landscape image; portrait images use them
    transposed and are rotated back to landscape after cropping.
    """
    resize_size: Tuple[int, int]
    crop_size: Tuple[int, int]
    interpolation: str
    channel_order: str

    def __post_init__(self):
        object.__setattr__(self, 'resize_size',
                           _size_pair('resize_size', self.resize_size))
        object.__setattr__(self, 'crop_size',
                           _size_pair('crop_size', self.crop_size))
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f'interpolation must be one of {INTERPOLATIONS}, '
                             f'got {self.interpolation!r}')
        if self.channel_order not in CHANNEL_ORDERS:
            raise ValueError(f'channel_order must be one of {CHANNEL_ORDERS}, '
                             f'got {self.channel_order!r}')
        if (self.crop_size[0] > self.resize_size[0]
                or self.crop_size[1] > self.resize_size[1]):
            raise ValueError(f'crop_size {self.crop_size} must fit inside '
                             f'resize_size {self.resize_size}')

    @classmethod
    def from_mapping(cls,
                     overrides: Optional[Mapping[str, Any]] = None
                     ) -> 'PreprocessConfig':
        """The package defaults, with the non-None values of ``overrides`` on top."""
        values = {
            k: v
            for k, v in default_configuration()['preprocessor'].items()
            if k != 'type'
        }
        for key, value in (overrides or {}).items():
            if key == 'type' or value is None:
                continue
            if key not in values:
                raise ValueError(f'unknown preprocessor option {key!r}; '
                                 f'known: {sorted(values)}')
            values[key] = value
        return cls(**values)

# How a video's frame scores make its score unless told otherwise (modelscope_iqa.video
# .pooling has the others): the mean, as every video score before pooling was chosen.
DEFAULT_POOLING = 'mean'
# Optional dataset keys for video rows (DatasetConfig's video_* fields).
VIDEO_DATASET_KEYS = ('video_frames', 'video_fps', 'video_pooling')


@dataclass(frozen=True)
class DatasetConfig:
    """Column names of an IQA dataset, the factor that maps its MOS into [0, 1], the
    (landscape) size of the random crops taken in training mode, and how a row whose
    file is a video is read: ``video_frames`` sampled uniformly (None: the command
    line's default, 8) or ``video_fps`` per second, their scores pooled by
    ``video_pooling`` (None: ``mean``) in evaluation; in training each draw takes one
    of the sampled frames."""
    image_column: str
    mos_column: str
    mos_scale: float
    train_crop_size: Tuple[int, int]
    video_frames: Optional[int] = None
    video_fps: Optional[float] = None
    video_pooling: Optional[str] = None

    def target(self, mos: float) -> float:
        """The training and evaluation target of a MOS: ``mos * mos_scale``."""
        return float(mos) * self.mos_scale

    @classmethod
    def from_mapping(cls,
                     overrides: Optional[Mapping[str, Any]] = None
                     ) -> 'DatasetConfig':
        """The package defaults, with the non-None values of ``overrides`` on top.

        The keys ModelScope's own dataset sections carry for other consumers
        (``MODELSCOPE_DATASET_KEYS``) are left alone; any other unknown key is refused.
        """
        values = dict(default_configuration()['dataset'])
        known = set(values) | set(VIDEO_DATASET_KEYS)
        for key, value in (overrides or {}).items():
            if key in MODELSCOPE_DATASET_KEYS or value is None:
                continue
            if key not in known:
                raise ValueError(f'unknown dataset option {key!r}; known: {sorted(known)} '
                                 f'(and ModelScope\'s {sorted(MODELSCOPE_DATASET_KEYS)})')
            values[key] = value
        values['mos_scale'] = float(values['mos_scale'])
        values['train_crop_size'] = _size_pair('train_crop_size', values['train_crop_size'])
        return cls(**values)
