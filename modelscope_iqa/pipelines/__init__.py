"""The ModelScope pipeline for ``Tasks.image_quality_assessment_mos``."""

from .._lazy import lazy_namespace

# name -> the module that defines it, imported on first use
_EXPORTS = {
    'ImageQualityAssessmentMosPipeline': '.iqa_mos_pipeline',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
