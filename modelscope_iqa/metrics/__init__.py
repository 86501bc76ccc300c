"""PLCC, SRCC, KRCC and RMSE: a functional core and the ModelScope Metric on it."""

from .._lazy import lazy_namespace

# name -> the module that defines it, imported on first use
_EXPORTS = {
    'UndefinedCorrelationWarning': '.functional', 'iqa_metrics': '.functional',
    'krcc': '.functional', 'plcc': '.functional', 'rmse': '.functional',
    'srcc': '.functional',
    'ImageQualityAssessmentMosMetric': '.iqa_mos_metric',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
