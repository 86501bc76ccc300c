"""Synthetic degradations of user photos, each with a continuous severity in [0, 4].

Severity 0 leaves the image untouched; 1-4 are the graded levels used for validation
(mild, moderate, strong, severe). Parameters are set for images at the model's working
scale (about 1080x1920), where the network sees them.

The quality target of a degraded image is

    quality = PRISTINE_QUALITY * prod_f (1 - DROP_PER_LEVEL * severity_f)

so a pristine photo scores 0.9, every family lowers the score monotonically with its
severity, one severe degradation alone gives 0.9 * 0.25 = 0.225, and mixtures go lower.

Exposure faults are relative to the scene. A photo's key is its mean linear light; a
low-key scene (a dark forest) is not under-exposed, and a fixed gain would leave it
unclipped and better lit at "severe over-exposure". So over-exposure's gain is at least
what brings the scene to average key before its own gain, and under-exposure's at most
what does: every scene, dark or pale, ends as an average one would at that severity.
Every family takes the scene's key as ``scene`` (None: the key of ``rgb`` itself), so
that a window is degraded as its whole photo is.
"""
from __future__ import annotations

import io
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import cv2
import numpy as np
from PIL import Image

MAX_SEVERITY = 4.0
PRISTINE_QUALITY = 0.9
DROP_PER_LEVEL = 0.1875  # severity 4 -> the family alone removes 75% of the quality
# Mean linear light of a scene of average key (the median of the build's photos is 0.21).
AVERAGE_KEY = 0.2
UNDER_EXPOSURE_GAIN = [1, 0.55, 0.3, 0.15, 0.07]
OVER_EXPOSURE_GAIN = [1, 1.8, 3.0, 5.0, 9.0]


def _interp(severity: float, table) -> float:
    """Linear interpolation of a per-level parameter table (levels 0..4)."""
    return float(np.interp(severity, np.arange(len(table)), table))


def to_linear(rgb: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] of uint8 display values (gamma 2.2)."""
    return (rgb.astype(np.float32) / 255.0)**2.2


def _from_linear(linear: np.ndarray) -> np.ndarray:
    return np.clip(np.clip(linear, 0, 1)**(1 / 2.2) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def scene_key(rgb: np.ndarray) -> float:
    """Mean linear light of an RGB uint8 image, in [0, 1]."""
    return float(to_linear(rgb).mean())


def _exposure_gain(rgb, severity, table, scene, bound) -> float:
    """The table's gain at ``severity``, made relative to the scene's key: ``bound``
    (max for over-, min for under-exposure) of it and the gain that first brings the
    scene to average key."""
    gain = _interp(severity, table)
    if gain == 1:
        return 1.0
    key = scene_key(rgb) if scene is None else scene
    return float(bound(gain, gain * AVERAGE_KEY / max(key, 1e-4)))


def defocus_blur(rgb, severity, rng, scene=None):
    sigma = _interp(severity, [0, 1.0, 2.0, 3.5, 6.0])
    return cv2.GaussianBlur(rgb, (0, 0), sigmaX=sigma) if sigma > 0 else rgb


def motion_blur(rgb, severity, rng, scene=None):
    length = _interp(severity, [0, 5, 11, 21, 35])
    if length < 1.5:
        return rgb
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    kernel[size // 2, :] = 1.0
    angle = float(rng.uniform(0, 180))
    rotation = cv2.getRotationMatrix2D((size / 2 - 0.5, size / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (size, size))
    return cv2.filter2D(rgb, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


def sensor_noise(rgb, severity, rng, scene=None):
    sigma = _interp(severity, [0, 4, 9, 16, 28])
    if sigma == 0:
        return rgb
    image = rgb.astype(np.float32)
    # Shot noise grows with brightness; a chroma part makes it look like a real sensor.
    scale = np.sqrt(0.3 + image.mean(axis=2, keepdims=True) / 255.0)
    luma = rng.normal(0, sigma, image.shape[:2] + (1, )).astype(np.float32)
    chroma = rng.normal(0, sigma * 0.5, image.shape).astype(np.float32)
    return np.clip(image + (luma + chroma) * scale + 0.5, 0, 255).astype(np.uint8)


def jpeg_compression(rgb, severity, rng, scene=None):
    if severity <= 0:
        return rgb
    quality = int(round(_interp(severity, [95, 45, 25, 12, 5])))
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format='JPEG', quality=quality)
    return np.asarray(Image.open(buffer).convert('RGB'))


def resolution_loss(rgb, severity, rng, scene=None):
    factor = _interp(severity, [1, 1.6, 2.5, 4.0, 6.5])
    if factor <= 1.0:
        return rgb
    height, width = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, round(width / factor)), max(1, round(height / factor))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def under_exposure(rgb, severity, rng, scene=None):
    gain = _exposure_gain(rgb, severity, UNDER_EXPOSURE_GAIN, scene, min)
    return rgb if gain == 1 else _from_linear(to_linear(rgb) * gain)


def over_exposure(rgb, severity, rng, scene=None):
    gain = _exposure_gain(rgb, severity, OVER_EXPOSURE_GAIN, scene, max)
    return rgb if gain == 1 else _from_linear(to_linear(rgb) * gain)


def contrast_loss(rgb, severity, rng, scene=None):
    keep = _interp(severity, [1, 0.7, 0.5, 0.33, 0.2])
    if keep == 1:
        return rgb
    # Haze: blend towards a light grey veil, as with a dirty lens or fog.
    veil = 0.6 * 255 + 0.4 * rgb.mean()
    return np.clip(rgb.astype(np.float32) * keep + veil * (1 - keep) + 0.5, 0,
                   255).astype(np.uint8)


def low_light(rgb, severity, rng, scene=None):
    if severity <= 0:
        return rgb
    # A dark scene pushed up by sensor gain: dim, noisy, slightly soft.
    dark = under_exposure(rgb, severity * 0.6, rng, scene)
    noisy = sensor_noise(dark, min(MAX_SEVERITY, severity * 0.8), rng)
    return cv2.GaussianBlur(noisy, (0, 0), sigmaX=0.3 + 0.2 * severity)


# A family: (rgb, severity, rng, scene key or None) -> degraded rgb.
FAMILIES: Dict[str, Callable[[np.ndarray, float, np.random.Generator, Optional[float]],
                             np.ndarray]] = {
    'defocus_blur': defocus_blur,
    'motion_blur': motion_blur,
    'sensor_noise': sensor_noise,
    'jpeg_compression': jpeg_compression,
    'resolution_loss': resolution_loss,
    'under_exposure': under_exposure,
    'over_exposure': over_exposure,
    'contrast_loss': contrast_loss,
    'low_light': low_light,
}



def family_views(rgb: np.ndarray, severities: Sequence[float],
                 rng: np.random.Generator) -> List[np.ndarray]:
    """``rgb`` under every family (in name order) at each of ``severities``, drawing
    from ``rng`` in that order."""
    return [FAMILIES[family](rgb, severity, rng)
            for family in sorted(FAMILIES) for severity in severities]

# Capture and exposure first, then resampling and compression, as a camera app would.
APPLICATION_ORDER = ('under_exposure', 'over_exposure', 'low_light', 'contrast_loss',
                     'defocus_blur', 'motion_blur', 'sensor_noise', 'resolution_loss',
                     'jpeg_compression')


def quality_target(severities: Mapping[str, float]) -> float:
    """The score in [0, 1] a model should give an image degraded by ``severities``."""
    quality = PRISTINE_QUALITY
    for family, severity in severities.items():
        if family not in FAMILIES:
            raise ValueError(f'unknown distortion family {family!r}')
        if not 0.0 <= severity <= MAX_SEVERITY:
            raise ValueError(f'severity of {family} must be in [0, {MAX_SEVERITY}]')
        quality *= 1.0 - DROP_PER_LEVEL * severity
    return quality


def degrade(rgb: np.ndarray, severities: Mapping[str, float], rng: np.random.Generator,
            scene: Optional[float] = None) -> np.ndarray:
    """Apply each family of ``severities`` to an RGB uint8 image, in a fixed order.

    ``scene`` is the key (:func:`scene_key`) of the photo ``rgb`` is a window of; None
    takes the key of ``rgb`` as it is given, before any family is applied."""
    scene = scene_key(rgb) if scene is None else scene
    for family in APPLICATION_ORDER:
        severity = severities.get(family, 0.0)
        if severity > 0:
            rgb = FAMILIES[family](rgb, severity, rng, scene)
    return rgb


def sample_severities(rng: np.random.Generator, pristine_share: float = 0.15,
                      mixture_share: float = 0.35) -> Dict[str, float]:
    """A random degradation recipe: pristine, one family, or a mixture of two or three."""
    draw = rng.random()
    if draw < pristine_share:
        return {}
    count = 1 if draw < 1.0 - mixture_share else int(rng.integers(2, 4))
    families = rng.choice(sorted(FAMILIES), size=count, replace=False)
    upper = MAX_SEVERITY if count == 1 else MAX_SEVERITY * 0.75
    return {str(f): float(rng.uniform(0.25, upper)) for f in families}
