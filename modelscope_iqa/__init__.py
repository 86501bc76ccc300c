"""ModelScope plugin for no-reference image quality assessment (MOS in [0, 1]).

``import modelscope_iqa`` makes ModelScope find this package's model, preprocessor,
pipeline, dataset, metric and trainer for ``Tasks.image_quality_assessment_mos``: they are
listed in ModelScope's lazy-import index as soon as ModelScope is imported (at once if it
already is), and ModelScope imports (and so registers) each when it first builds one
(see :mod:`._modelscope_index`). The import itself loads neither PyTorch nor ModelScope;
the subpackages load on first use (``modelscope_iqa.models``, ...).
"""
from ._lazy import lazy_namespace
from ._modelscope_index import list_when_modelscope_loads
from .config import DEFAULT_MODEL_PATH, VERSION

# A model directory (configuration.json + pytorch_model.pt) that ships in the package:
# pipeline(Tasks.image_quality_assessment_mos, model=DEFAULT_MODEL_DIR) works offline.
DEFAULT_MODEL_DIR = str(DEFAULT_MODEL_PATH)

__version__ = VERSION

_SUBMODULES = ('cli', 'config', 'distributed', 'errors', 'export', 'hub', 'maps', 'metainfo',
               'metrics', 'models', 'msdatasets', 'pipelines', 'preprocessors', 'scoring',
               'synthetic', 'training')
# Names exported here from a subpackage, loaded on first use.
_EXPORTS = {'ImageQualityAssessmentMosDataset': '.msdatasets', 'quality_map': '.maps',
            'QualityMap': '.maps', 'QualityMapper': '.maps', 'export_onnx': '.export'}
__getattr__, _namespace_dir = lazy_namespace(__name__, _EXPORTS, _SUBMODULES)


def __dir__():
    return sorted(set(globals()) | set(_namespace_dir()))


list_when_modelscope_loads()
