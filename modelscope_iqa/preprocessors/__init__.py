"""One path from any input to the network: :func:`decode` (any input kind -> Pixels),
:func:`network_crop` (resize, crop, orientation, channel order -> uint8 crop) and
:func:`to_unit_range` (uint8 -> floats in [0, 1])."""
from .crop import network_crop
from .decoding import ImageInput, Pixels, decode
from .iqa_mos_preprocessor import ImageQualityAssessmentMosPreprocessor
from .scale import crop_to_float, to_unit_range
