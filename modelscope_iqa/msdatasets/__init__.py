"""The ModelScope dataset of images and MOS labels (a CSV)."""

from .._lazy import lazy_namespace

# name -> the module that defines it, imported on first use
_EXPORTS = {
    'ImageQualityAssessmentMosDataset': '.iqa_mos_dataset',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
