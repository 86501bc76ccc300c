"""Every name this plugin registers in ModelScope's registries.

ModelScope ships its own classes for ``Tasks.image_quality_assessment_mos``
(:mod:`modelscope_iqa.builtin` reads their names); ours carry a ``modelscope-iqa-``
prefix so that both implementations can be registered side by side (a test asserts no
collision).

Plain strings only: this module imports nothing, so the package's lowest layer can use
it without ModelScope. ``TASK`` and ``PREPROCESSOR_FIELD`` are ModelScope's
``Tasks.image_quality_assessment_mos`` and ``Fields.cv`` (a test asserts they are equal).
"""

TASK = 'image-quality-assessment-mos'
PREPROCESSOR_FIELD = 'cv'


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

