"""Videos: which files are videos, which of their frames are scored (by index or by
presentation time), decoding exactly those frames (seeking, not reading every frame),
pooling frame scores into a video's score, and a video's score over time."""

from .._lazy import lazy_namespace

# name -> the module that defines it, imported on first use
_EXPORTS = {
    'DEFAULT_FRAME_COUNT': '.sampling', 'VIDEO_EXTENSIONS': '.sampling',
    'FrameSampling': '.sampling', 'is_video': '.sampling',
    'SampledFrame': '.decoder', 'VideoReader': '.decoder', 'VideoStreamInfo': '.decoder',
    'sample_frames': '.decoder',
    'DEFAULT_POOLING': '.pooling', 'Pooling': '.pooling', 'FrameStatistics': '.pooling',
    'pool': '.pooling',
    'worst_stretch': '.timeline', 'write_timeline': '.timeline',
    'timeline_figure': '.timeline',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
