"""Where a photo is poor: local quality scores from the same forward pass as the score,
and an overlay that draws them on the photo. See :func:`quality_map`."""
from .overlay import render_overlay
from .quality_map import LOCAL_WINDOW, QualityMap, QualityMapper, quality_map

__all__ = ['LOCAL_WINDOW', 'QualityMap', 'QualityMapper', 'quality_map', 'render_overlay']
