"""Registration in ModelScope: names, import side effects, the model-loading path."""
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from modelscope.metainfo import CustomDatasets as MsCustomDatasets
from modelscope.metainfo import Metrics as MsMetrics
from modelscope.metainfo import Models as MsModels
from modelscope.metainfo import Pipelines as MsPipelines
from modelscope.metainfo import Preprocessors as MsPreprocessors
from modelscope.metainfo import Trainers as MsTrainers
from modelscope.metrics.builder import METRICS
from modelscope.models.builder import MODELS
from modelscope.msdatasets.dataset_cls.custom_datasets import CUSTOM_DATASETS
from modelscope.pipelines.builder import PIPELINES
from modelscope.preprocessors.builder import PREPROCESSORS
from modelscope.utils.constant import Fields, Tasks
from modelscope.utils.registry import default_group

import modelscope_iqa
from modelscope_iqa import metainfo
from modelscope_iqa.builtin import builtin_names
from modelscope_iqa.config import CONFIGURATION_FILE


def _names(cls):
    """The string constants of ``cls`` and its bases (ModelScope's ``Trainers`` gathers
    its domains' trainers by inheritance)."""
    return {v for klass in cls.__mro__ for k, v in vars(klass).items()
            if not k.startswith('_') and isinstance(v, str)}


MODELSCOPE_NAMES = set().union(*(_names(c) for c in (
    MsModels, MsPipelines, MsPreprocessors, MsMetrics, MsCustomDatasets, MsTrainers)))

OUR_REGISTRATIONS = [
    (MODELS, metainfo.TASK, metainfo.Models.iqa_mos_resnet18,
     modelscope_iqa.models.ImageQualityAssessmentMosModel),
    (PIPELINES, metainfo.TASK, metainfo.Pipelines.iqa_mos,
     modelscope_iqa.pipelines.ImageQualityAssessmentMosPipeline),
    (PREPROCESSORS, metainfo.PREPROCESSOR_FIELD, metainfo.Preprocessors.iqa_mos,
     modelscope_iqa.preprocessors.ImageQualityAssessmentMosPreprocessor),
    (METRICS, default_group, metainfo.Metrics.iqa_mos,
     modelscope_iqa.metrics.ImageQualityAssessmentMosMetric),
    (CUSTOM_DATASETS, metainfo.TASK, metainfo.CustomDatasets.iqa_mos,
     modelscope_iqa.ImageQualityAssessmentMosDataset),
]


def test_plain_task_and_field_names_are_modelscopes():
    """metainfo types ModelScope's task and field names as plain strings (it imports
    nothing); they must be ModelScope's."""
    assert metainfo.TASK == Tasks.image_quality_assessment_mos
    assert metainfo.PREPROCESSOR_FIELD == Fields.cv


def test_our_names_collide_with_no_modelscope_name():
    classes = (metainfo.Models, metainfo.Pipelines, metainfo.Preprocessors,
               metainfo.Metrics, metainfo.CustomDatasets, metainfo.Trainers)
    assert all(_names(c) for c in classes)
    ours = set().union(*(_names(c) for c in classes))
    assert MsTrainers.default in MODELSCOPE_NAMES  # the domains' trainers are counted
    assert not ours & MODELSCOPE_NAMES


@pytest.mark.parametrize('registry,group,name,cls', OUR_REGISTRATIONS,
                         ids=lambda v: getattr(v, 'name', None))
def test_registered_and_builtin_class_both_present(registry, group, name, cls):
    from modelscope.utils.import_utils import LazyImportModule
    assert registry.get(name, group_key=group) is cls
    # ModelScope's own class for the task is still registered under its own name
    # (modelscope_iqa.builtin reads it), as ModelScope builds it (importing its module
    # through its lazy index).
    names = builtin_names()
    builtin = {'models': names['model'], 'pipelines': names['pipeline'],
               'preprocessors': names['preprocessor'], 'metrics': names['metric'],
               'custom_datasets': names['model']}[registry.name]
    LazyImportModule.import_module((registry.name.upper(), group, builtin))
    builtin_cls = registry.get(builtin, group_key=group)
    assert builtin_cls is not None and builtin_cls is not cls
    assert builtin_cls.__module__.startswith('modelscope.')


def test_configuration_names_our_registered_classes():
    config = json.loads(CONFIGURATION_FILE.read_text())
    assert config['task'] == metainfo.TASK
    assert config['model']['type'] == metainfo.Models.iqa_mos_resnet18
    assert config['pipeline']['type'] == metainfo.Pipelines.iqa_mos
    assert config['preprocessor']['type'] == metainfo.Preprocessors.iqa_mos
    assert config['evaluation']['metrics'] == [metainfo.Metrics.iqa_mos]
    for section in ('train', 'evaluation', 'dataset'):
        assert section in config
    # Deliberately absent: with `plugins`, ModelScope refuses to load without
    # trust_remote_code=True and runs `pip wheel` on every load (see README).
    assert 'plugins' not in config


def test_package_configuration_is_the_top_level_file():
    top_level = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                             'configuration.json')
    assert os.path.samefile(CONFIGURATION_FILE, top_level)
    assert os.path.samefile(os.path.join(modelscope_iqa.DEFAULT_MODEL_DIR, 'configuration.json'),
                            top_level)


def test_import_prints_nothing_and_opens_no_socket():
    script = textwrap.dedent('''
        import socket
        attempts = []
        def refuse(self, address, *args, **kwargs):
            attempts.append(address)
            raise OSError('network use during import')
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = lambda address, *a, **k: refuse(None, address)
        import modelscope_iqa
        import modelscope.pipelines  # lists our classes in ModelScope's index
        assert not attempts, attempts
    ''')
    result = subprocess.run([sys.executable, '-c', script], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ''
    assert result.stderr == ''


def test_model_loads_through_modelscope_without_transformers_detour(
        our_model_dir, monkeypatch):
    import modelscope.models.base.base_model as base_model
    from modelscope.models import Model

    def detour(*args, **kwargs):
        raise AssertionError('took the transformers AutoModel path')

    monkeypatch.setattr(base_model, 'try_to_load_hf_model', detour)
    model = Model.from_pretrained(str(our_model_dir))
    assert isinstance(model, modelscope_iqa.models.ImageQualityAssessmentMosModel)


LIGHT_IMPORT_PROBE = textwrap.dedent('''
    import json, sys
    import modelscope_iqa
    light = not ({'torch', 'modelscope'} & set(sys.modules))
    from modelscope.models.builder import MODELS
    from modelscope.utils.ast_utils import INDEX_KEY
    from modelscope.utils.import_utils import LazyImportModule
    from modelscope_iqa._modelscope_index import index_entries
    index = LazyImportModule.get_ast_index()[INDEX_KEY]
    listed = all(index.get(k, {}).get('module') == m for k, m in index_entries().items())
    registered_before_use = 'modelscope_iqa.models' in sys.modules
    from modelscope.models import Model
    model = Model.from_pretrained(sys.argv[1])
    print(json.dumps({'light': light, 'listed': listed, 'entries': len(index_entries()),
                      'registered_before_use': registered_before_use,
                      'built': type(model).__module__}))
''')


def test_import_is_light_and_modelscope_finds_our_classes_on_first_use(our_model_dir):
    """`import modelscope_iqa` loads neither PyTorch nor ModelScope; once ModelScope is
    imported, its index lists all our classes, and building one imports it."""
    result = subprocess.run([sys.executable, '-c', LIGHT_IMPORT_PROBE, str(our_model_dir)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe == {'light': True, 'listed': True, 'entries': len(OUR_REGISTRATIONS) + 1,
                     'registered_before_use': False,
                     'built': 'modelscope_iqa.models.iqa_mos_model'}


def test_the_index_table_names_the_modules_that_register(tmp_path):
    """Each entry of the index table names the module whose import registers it."""
    import importlib

    from modelscope_iqa._modelscope_index import index_entries
    from modelscope_iqa.metainfo import Trainers
    from modelscope.trainers.builder import TRAINERS
    registries = {r.name.upper(): r for r, *_ in OUR_REGISTRATIONS}
    registries['TRAINERS'] = TRAINERS
    classes = {(r.name.upper(), g, n): c for r, g, n, c in OUR_REGISTRATIONS}
    for (registry, group, name), module in index_entries().items():
        importlib.import_module(module)
        found = registries[registry].get(name, group_key=group)
        assert found is not None and found.__module__ == module, (registry, name)
        if (registry, group, name) in classes:
            assert found is classes[(registry, group, name)]
    assert (TRAINERS.name.upper(), default_group, Trainers.iqa_mos) in index_entries()


def test_command_line_help_loads_no_heavy_module():
    script = textwrap.dedent('''
        import sys
        from modelscope_iqa.cli.main import main
        for argv in (['--help'], ['--version'], ['score', '--help'], ['map', '--help'],
                     ['evaluate', '--help'], ['export', '--help'], ['demo', '--help'],
                     ['score', '--no-such-flag']):
            try:
                main(argv)
            except SystemExit as exit:
                assert exit.code in (0, 2), exit.code
        heavy = {'torch', 'modelscope', 'cv2', 'numpy'} & set(sys.modules)
        assert not heavy, heavy
    ''')
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr


def test_version_names_the_package_version_and_the_default_weights():
    from modelscope_iqa.config import DEFAULT_MODEL_PATH, WEIGHTS_FILE
    result = subprocess.run([sys.executable, '-m', 'modelscope_iqa', '--version'],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    golden = json.loads((Path(__file__).parent / 'golden' / 'default_model_samples.json')
                        .read_text())
    sha256 = hashlib.sha256((DEFAULT_MODEL_PATH / WEIGHTS_FILE).read_bytes()).hexdigest()
    assert golden['weights_sha256'] == sha256
    assert result.stdout == (f'modelscope-iqa {modelscope_iqa.__version__} '
                             f'(default model sha256:{sha256[:12]})\n')
