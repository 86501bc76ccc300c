"""ModelScope plugin for no-reference image quality assessment (MOS in [0, 1]).

Importing the package registers its model, preprocessor, pipeline, dataset and metric
in ModelScope's registries for ``Tasks.image_quality_assessment_mos``.
"""
from . import metrics, models, msdatasets, pipelines, preprocessors
from .msdatasets import ImageQualityAssessmentMosDataset

__version__ = '0.1.0'
