"""ModelScope's own classes for this task (``CenseoIVQAModel``, its pipeline,
preprocessor and metric): the names they are registered under, read from
``modelscope.metainfo``, the one source of them here. A published folder names them
(:mod:`modelscope_iqa.export.published_folder`), as the official hub model does.

Importing this module imports nothing heavy; its functions import ModelScope's
``metainfo``.
"""
from __future__ import annotations

from typing import Dict

from .metainfo import TASK

SECTIONS = ('model', 'pipeline', 'preprocessor', 'metric')


def builtin_names() -> Dict[str, str]:
    """Each of ``SECTIONS`` -> the name ModelScope registers its own class under (its
    task dataset is registered under the model's name)."""
    from modelscope.metainfo import Metrics, Models, Pipelines, Preprocessors
    return {'model': Models.image_quality_assessment_mos,
            'pipeline': Pipelines.image_quality_assessment_mos,
            'preprocessor': Preprocessors.image_quality_assessment_mos_preprocessor,
            'metric': Metrics.image_quality_assessment_mos_metric}


def builtin_configuration() -> dict:
    """A configuration.json that names the built-in classes, as the official hub
    model's does: the framework, the task, the model, pipeline and preprocessor, and the
    evaluation metric."""
    from modelscope.utils.constant import Frameworks
    names = builtin_names()
    return {'framework': Frameworks.torch, 'task': TASK,
            'model': {'type': names['model']},
            'pipeline': {'type': names['pipeline']},
            'preprocessor': {'type': names['preprocessor']},
            'evaluation': {'metrics': [names['metric']]}}
