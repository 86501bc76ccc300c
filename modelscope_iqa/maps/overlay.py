"""Drawing a quality map over its photo: the map in a perceptually uniform colour map
(viridis: dark blue poor, yellow good; readable in greyscale and by colour-blind eyes)
over the region the model sees, the rest of the photo dimmed, a colour bar, and the
score above."""
from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..config import DEFAULT_MAP_ALPHA

COLOUR_MAP = 'viridis'
# Longest side of an overlay, and of the photo previews the command line keeps for them.
PREVIEW_SIDE = 1920
OUTSIDE_BRIGHTNESS = 0.35  # the part of the photo the model does not see
FRAME_COLOUR = (255, 255, 255)
BACKGROUND = (24, 24, 24)
TEXT_COLOUR = (240, 240, 240)
BAR_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _colours(values: np.ndarray) -> np.ndarray:
    from matplotlib import colormaps
    return (colormaps[COLOUR_MAP](np.clip(values, 0.0, 1.0))[..., :3] * 255).astype(np.uint8)


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def render_overlay(photo: np.ndarray, grid: np.ndarray,
                   region: Tuple[float, float, float, float], score: float,
                   alpha: float = DEFAULT_MAP_ALPHA,
                   max_side: int = PREVIEW_SIDE) -> Image.Image:
    """``photo`` (RGB uint8) with ``grid`` drawn over ``region`` (left, top, right,
    bottom in the photo's pixels); see :meth:`QualityMap.overlay`."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'alpha must lie in [0, 1], got {alpha}')
    if max_side < 16:
        raise ValueError(f'max_side must be >= 16, got {max_side}')
    height, width = photo.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        photo = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
    left, top, right, bottom = (round(v * scale) for v in region)
    left, top = max(0, left), max(0, top)
    right, bottom = min(width, max(right, left + 1)), min(height, max(bottom, top + 1))

    canvas = (photo.astype(np.float32) * OUTSIDE_BRIGHTNESS).astype(np.uint8)
    heat = cv2.resize(grid.astype(np.float32), (right - left, bottom - top),
                      interpolation=cv2.INTER_LINEAR)
    inside = photo[top:bottom, left:right].astype(np.float32)
    blended = inside * (1.0 - alpha) + _colours(heat).astype(np.float32) * alpha
    canvas[top:bottom, left:right] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)

    unit = max(12, round(min(width, height) / 28))  # text size, from the picture's size
    header, bar_band = 2 * unit, 5 * unit
    out = Image.new('RGB', (width + bar_band, height + header), BACKGROUND)
    out.paste(Image.fromarray(canvas), (0, header))
    draw = ImageDraw.Draw(out)
    draw.rectangle((left, top + header, right - 1, bottom - 1 + header),
                   outline=FRAME_COLOUR, width=max(1, unit // 8))
    draw.text((unit // 2, unit // 2), f'quality score {score:.3f}', fill=TEXT_COLOUR,
              font=_font(unit))

    bar_left, bar_width = width + unit // 2, unit
    bar_top, bar_bottom = header + unit // 2, header + height - unit // 2
    ramp = np.linspace(1.0, 0.0, max(2, bar_bottom - bar_top))[:, None]
    bar = np.repeat(_colours(ramp), bar_width, axis=1)
    out.paste(Image.fromarray(bar), (bar_left, bar_top))
    small = _font(max(10, unit * 2 // 3))
    for tick in BAR_TICKS:
        y = bar_bottom - tick * (bar_bottom - bar_top)
        draw.line((bar_left + bar_width, y, bar_left + bar_width + unit // 3, y),
                  fill=TEXT_COLOUR)
        draw.text((bar_left + bar_width + unit // 2, y), f'{tick:g}', fill=TEXT_COLOUR,
                  font=small, anchor='lm')
    draw.text((width + bar_band - unit // 4, unit // 2), 'local quality', fill=TEXT_COLOUR,
              font=small, anchor='ra')
    return out
