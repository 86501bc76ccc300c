from .functional import UndefinedCorrelationWarning, iqa_metrics, krcc, plcc, rmse, srcc
from .iqa_mos_metric import ImageQualityAssessmentMosMetric
