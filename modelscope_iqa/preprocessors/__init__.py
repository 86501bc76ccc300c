"""One path from any input to the network: :func:`decode` (any input kind -> Pixels),
:func:`network_crop` (resize, crop, orientation, channel order -> uint8 crop) and
:func:`to_unit_range` (uint8 -> floats in [0, 1])."""

from .._lazy import lazy_namespace

# name -> the module that defines it, imported on first use
_EXPORTS = {
    'network_crop': '.crop',
    'ImageInput': '.decoding', 'Pixels': '.decoding', 'decode': '.decoding',
    'ImageQualityAssessmentMosPreprocessor': '.iqa_mos_preprocessor',
    'crop_to_float': '.scale', 'to_unit_range': '.scale',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
