"""Synthetic degradations of user photos, each with a continuous severity in [0, 4].

Severity 0 leaves the image untouched; 1-4 are the graded levels used for validation
(mild, moderate, strong, severe). Parameters are set for images at the model's working
scale (about 1080x1920), where the network sees them.

The quality target of a degraded image is

    quality = PRISTINE_QUALITY * prod_f (1 - DROP_PER_LEVEL * severity_f)

so a pristine photo scores 0.9, every family lowers the score monotonically with its
severity, one severe degradation alone gives 0.9 * 0.25 = 0.225, and mixtures go lower.
"""
from __future__ import annotations

import io
from typing import Callable, Dict, Mapping

import cv2
import numpy as np
from PIL import Image

MAX_SEVERITY = 4.0
PRISTINE_QUALITY = 0.9
DROP_PER_LEVEL = 0.1875  # severity 4 -> the family alone removes 75% of the quality


def _interp(severity: float, table) -> float:
    """Linear interpolation of a per-level parameter table (levels 0..4)."""
    return float(np.interp(severity, np.arange(len(table)), table))


def _to_linear(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) / 255.0)**2.2


def _from_linear(linear: np.ndarray) -> np.ndarray:
    return np.clip(np.clip(linear, 0, 1)**(1 / 2.2) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def defocus_blur(rgb, severity, rng):
    sigma = _interp(severity, [0, 1.0, 2.0, 3.5, 6.0])
    return cv2.GaussianBlur(rgb, (0, 0), sigmaX=sigma) if sigma > 0 else rgb


def motion_blur(rgb, severity, rng):
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


def sensor_noise(rgb, severity, rng):
    sigma = _interp(severity, [0, 4, 9, 16, 28])
    if sigma == 0:
        return rgb
    image = rgb.astype(np.float32)
    # Shot noise grows with brightness; a chroma part makes it look like a real sensor.
    scale = np.sqrt(0.3 + image.mean(axis=2, keepdims=True) / 255.0)
    luma = rng.normal(0, sigma, image.shape[:2] + (1, )).astype(np.float32)
    chroma = rng.normal(0, sigma * 0.5, image.shape).astype(np.float32)
    return np.clip(image + (luma + chroma) * scale + 0.5, 0, 255).astype(np.uint8)


def jpeg_compression(rgb, severity, rng):
    if severity <= 0:
        return rgb
    quality = int(round(_interp(severity, [95, 45, 25, 12, 5])))
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format='JPEG', quality=quality)
    return np.asarray(Image.open(buffer).convert('RGB'))


def resolution_loss(rgb, severity, rng):
    factor = _interp(severity, [1, 1.6, 2.5, 4.0, 6.5])
    if factor <= 1.0:
        return rgb
    height, width = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, round(width / factor)), max(1, round(height / factor))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def under_exposure(rgb, severity, rng):
    gain = _interp(severity, [1, 0.55, 0.3, 0.15, 0.07])
    return rgb if gain == 1 else _from_linear(_to_linear(rgb) * gain)


def over_exposure(rgb, severity, rng):
    gain = _interp(severity, [1, 1.8, 3.0, 5.0, 9.0])
    return rgb if gain == 1 else _from_linear(_to_linear(rgb) * gain)


def contrast_loss(rgb, severity, rng):
    keep = _interp(severity, [1, 0.7, 0.5, 0.33, 0.2])
    if keep == 1:
        return rgb
    # Haze: blend towards a light grey veil, as with a dirty lens or fog.
    veil = 0.6 * 255 + 0.4 * rgb.mean()
    return np.clip(rgb.astype(np.float32) * keep + veil * (1 - keep) + 0.5, 0,
                   255).astype(np.uint8)


def low_light(rgb, severity, rng):
    if severity <= 0:
        return rgb
    # A dark scene pushed up by sensor gain: dim, noisy, slightly soft.
    dark = under_exposure(rgb, severity * 0.6, rng)
    noisy = sensor_noise(dark, min(MAX_SEVERITY, severity * 0.8), rng)
    return cv2.GaussianBlur(noisy, (0, 0), sigmaX=0.3 + 0.2 * severity)


FAMILIES: Dict[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray]] = {
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


def degrade(rgb: np.ndarray, severities: Mapping[str, float],
            rng: np.random.Generator) -> np.ndarray:
    """Apply each family of ``severities`` to an RGB uint8 image, in a fixed order."""
    for family in APPLICATION_ORDER:
        severity = severities.get(family, 0.0)
        if severity > 0:
            rgb = FAMILIES[family](rgb, severity, rng)
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
