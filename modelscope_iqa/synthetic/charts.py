"""Dead-leaves charts: procedural content with the statistics of natural images.

Camera labs measure texture loss on such charts (IEEE 1858, ISO 19567-2): opaque discs
of random colour whose radii follow a power law, stacked until they cover the plane,
so the chart holds edges at every scale and orientation, like a natural scene. They
widen the content the model sees beyond a few dozen photographs.
"""
from __future__ import annotations

import cv2
import numpy as np

RADIUS_RANGE = (2.0, 240.0)
# Radius density ~ r**-3: scale-invariant, as in natural images.
RADIUS_EXPONENT = 3.0


def _radii(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` radii from a density proportional to r**-RADIUS_EXPONENT."""
    low, high = RADIUS_RANGE
    power = 1.0 - RADIUS_EXPONENT
    u = rng.random(count)
    return (low**power + u * (high**power - low**power))**(1.0 / power)


def dead_leaves(height: int, width: int, rng: np.random.Generator,
                discs: int = 200000) -> np.ndarray:
    """An RGB uint8 dead-leaves chart. Discs are drawn back to front, so the last
    ones lie on top; enough are drawn that none of the grey background shows."""
    image = np.full((height, width, 3), 128, np.uint8)
    centres_y = rng.uniform(-RADIUS_RANGE[1], height + RADIUS_RANGE[1], discs)
    centres_x = rng.uniform(-RADIUS_RANGE[1], width + RADIUS_RANGE[1], discs)
    # Colours of real scenes rather than saturated primaries: a random grey level
    # tinted by a random hue.
    grey = rng.uniform(0.05, 0.95, (discs, 1))
    tint = rng.uniform(0.6, 1.4, (discs, 3))
    colours = np.clip(grey * tint * 255, 0, 255).astype(np.uint8)
    for y, x, r, colour in zip(centres_y, centres_x, _radii(rng, discs), colours):
        cv2.circle(image, (int(x), int(y)), max(1, int(round(r))),
                   tuple(int(c) for c in colour), thickness=-1, lineType=cv2.LINE_AA)
    return image
