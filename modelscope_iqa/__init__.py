"""ModelScope plugin for no-reference image quality assessment (MOS in [0, 1]).

Importing the package registers its model, preprocessor, pipeline, dataset and metric
in ModelScope's registries for ``Tasks.image_quality_assessment_mos``.
"""
from . import metrics, models, msdatasets, pipelines, preprocessors, training
from .config import DEFAULT_MODEL_PATH
from .msdatasets import ImageQualityAssessmentMosDataset

# A model directory (configuration.json + pytorch_model.pt) that ships in the package:
# pipeline(Tasks.image_quality_assessment_mos, model=DEFAULT_MODEL_DIR) works offline.
DEFAULT_MODEL_DIR = str(DEFAULT_MODEL_PATH)

__version__ = '0.1.0'
