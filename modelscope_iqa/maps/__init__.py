"""Where a photo is poor: local quality scores from the same forward pass as the score,
and an overlay that draws them on the photo. See :func:`quality_map`."""

from .._lazy import lazy_namespace

# name -> the module that defines it, imported on first use
_EXPORTS = {
    'render_overlay': '.overlay',
    'LOCAL_WINDOW': '.mapper', 'QualityMap': '.mapper',
    'QualityMapper': '.mapper', 'quality_map': '.mapper',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
