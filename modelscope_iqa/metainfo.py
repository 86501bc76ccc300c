"""Every name this plugin registers in ModelScope's registries.

ModelScope ships its own classes for ``Tasks.image_quality_assessment_mos`` under the
names ``image-quality-assessment-mos`` (model, pipeline, dataset) and
``image-quality-assessment-mos-metric``; ours carry a ``modelscope-iqa-`` prefix so that
both implementations can be registered side by side (a test asserts no collision).
"""
from modelscope.utils.constant import Fields, Tasks

TASK = Tasks.image_quality_assessment_mos
PREPROCESSOR_FIELD = Fields.cv


class Models:
    iqa_mos_resnet18 = 'modelscope-iqa-mos-resnet18'


class Pipelines:
    iqa_mos = 'modelscope-iqa-mos-pipeline'


class Preprocessors:
    iqa_mos = 'modelscope-iqa-mos-preprocessor'


class Metrics:
    iqa_mos = 'modelscope-iqa-mos-metric'


class Trainers:
    iqa_mos = 'modelscope-iqa-trainer'


class CustomDatasets:
    # ModelScope's trainer looks a task dataset up by the *model* type of the
    # configuration, so the dataset must be registered under the model's name.
    iqa_mos = Models.iqa_mos_resnet18


class MetricKeys:
    """Keys of the metric's result; the first three agree with ModelScope's MetricKeys."""
    PLCC = 'plcc'
    SRCC = 'srcc'
    KRCC = 'krcc'
    RMSE = 'rmse'


# ModelScope may have been imported just now, by the line at the top: list our classes
# in its index (what metainfo could not do while it was importing ModelScope).
from ._modelscope_index import list_when_modelscope_loads  # noqa: E402

list_when_modelscope_loads()
