"""Model directories: local folders, and hub ids fetched from ModelScope when online;
:func:`open_model_folder` is the one reader of a folder's configuration.

Nothing here touches the network unless a caller passes a hub id.
"""
from __future__ import annotations

import copy
import functools
import json
import logging
import os
import shutil
import socket
from dataclasses import dataclass
from typing import Optional, Union
from urllib.parse import urlsplit

from .config import WEIGHTS_FILE, DatasetConfig, PreprocessConfig
from .errors import ExportError, HubUnreachableError, ModelDirError
from .identity import ModelIdentity, model_folder_identity
from .metainfo import Models, Preprocessors

LOG = logging.getLogger(__name__)

# The file name ModelScope looks for in a model folder.
CONFIGURATION_NAME = 'configuration.json'
HUB_PROBE_TIMEOUT_S = 5.0
# A published folder's configuration names ModelScope's built-in classes in these
# sections, so that stock ModelScope runs it; ours are kept under OUR_SECTIONS_KEY,
# where this package reads them (:func:`our_configuration`).
OUR_SECTIONS_KEY = 'modelscope_iqa'
SWAPPED_SECTIONS = ('model', 'pipeline', 'preprocessor')
# Stock ModelScope's scores of a published folder must equal our exact mode's within this.
PUBLISHED_TOLERANCE = 1e-5
OFFLINE_ADVICE = (
    'Offline, pass a local model directory instead: a folder with configuration.json '
    'and pytorch_model.pt (e.g. one copied from a machine where '
    "`modelscope.snapshot_download(model_id)` worked, or a clone of the hub repo).")


def is_model_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, CONFIGURATION_NAME))


def read_model_config(model_dir: str) -> dict:
    """The parsed configuration.json of ``model_dir``."""
    path = os.path.join(model_dir, CONFIGURATION_NAME)
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        raise ModelDirError(f'{model_dir!r}: no {CONFIGURATION_NAME}') from None
    except (OSError, ValueError) as exc:
        raise ModelDirError(f'{path!r}: unreadable configuration ({exc})') from exc


def _hub_endpoint() -> str:
    from modelscope_hub.config import HubConfig
    return HubConfig().endpoint


def _probe_hub(model_id: str, timeout: float) -> None:
    endpoint = _hub_endpoint()
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == 'https' else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        raise HubUnreachableError(
            f'{model_id!r}: the ModelScope hub at {endpoint} is unreachable ({exc}). '
            + OFFLINE_ADVICE) from exc


def download_model(model_id: str,
                   revision: Optional[str] = None,
                   timeout: float = HUB_PROBE_TIMEOUT_S) -> str:
    """Fetch ``model_id`` from the ModelScope hub (or its cache) and return its folder.

    Raises :class:`HubUnreachableError` within about ``timeout`` seconds when the hub
    cannot be reached, with advice on using a local directory.
    """
    from modelscope.hub.snapshot_download import snapshot_download
    _probe_hub(model_id, timeout)
    kwargs = {} if revision is None else {'revision': revision}
    try:
        return snapshot_download(model_id, **kwargs)
    except ConnectionError as exc:
        raise HubUnreachableError(
            f'{model_id!r}: download from the ModelScope hub failed ({exc}). '
            + OFFLINE_ADVICE) from exc


def resolve_model_dir(model: str, revision: Optional[str] = None) -> str:
    """A local model directory for ``model``: a folder as is, a hub id downloaded."""
    if os.path.isdir(model):
        if not is_model_dir(model):
            raise ModelDirError(f'{model!r}: no {CONFIGURATION_NAME} in this folder')
        return model
    if os.path.exists(model) or model.count('/') != 1 or model.startswith(('.', '/')):
        raise ModelDirError(
            f'{model!r}: not a model directory, nor a hub id of the form owner/name')
    return download_model(model, revision=revision)


@dataclass(frozen=True)
class ModelFolder:
    """A model folder as read once: its ``path``, parsed ``config``, the preprocessing
    and dataset settings that apply to it, and whether its configuration names our
    model (an official hub folder names ModelScope's built-in classes). For a
    ``published`` folder (:func:`export_model_folder`), ``config`` is our view of it."""
    path: str
    config: dict
    preprocess_config: PreprocessConfig
    dataset: DatasetConfig
    names_our_model: bool
    published: bool = False  # its file names the built-in classes, ours kept aside

    @property
    def weights(self) -> str:
        return os.path.join(self.path, WEIGHTS_FILE)

    @functools.cached_property
    def identity(self) -> ModelIdentity:
        """The weights' version and SHA-256, which every result records (hashed on
        first use)."""
        return model_folder_identity(self.path, self.config)


def open_model_folder(model: str, revision: Optional[str] = None) -> ModelFolder:
    """Read ``model`` (a folder, or a hub id downloaded when online) once.

    A configuration that names our preprocessor gives its options; one that names
    ModelScope's own (an official hub folder) gets the package defaults, which equal
    ModelScope's preprocessing for this model, and so does its dataset section. Both
    substitutions are logged."""
    path = resolve_model_dir(model, revision)
    written = read_model_config(path)
    config = our_configuration(written)
    section = dict(config.get('preprocessor') or {})
    preprocessor_type = section.pop('type', None)
    if preprocessor_type == Preprocessors.iqa_mos:
        preprocess_config = PreprocessConfig.from_mapping(section)
    else:
        LOG.info('%s: the configuration names preprocessor %r, not ours; using the '
                 "package's preprocessing (equal to ModelScope's for this model)", path,
                 preprocessor_type)
        preprocess_config = PreprocessConfig.from_mapping()
    ours = (config.get('model') or {}).get('type') == Models.iqa_mos_resnet18
    if ours:
        dataset = DatasetConfig.from_mapping(config.get('dataset'))
    else:
        LOG.info("%s: not a modelscope-iqa configuration; using the package's dataset "
                 'settings', path)
        dataset = DatasetConfig.from_mapping()
    return ModelFolder(path, config, preprocess_config, dataset, ours,
                       published=OUR_SECTIONS_KEY in written)


def load_model(model: Union[str, ModelFolder]):
    """Our :class:`~modelscope_iqa.models.ImageQualityAssessmentMosModel` from a model
    directory, hub id or opened folder.

    Also takes an official hub folder as downloaded, whose configuration names
    ModelScope's built-in classes: its weights load into our network all the same.
    """
    from modelscope.utils.config import Config

    from .models.iqa_mos_model import ImageQualityAssessmentMosModel
    folder = model if isinstance(model, ModelFolder) else open_model_folder(model)
    loaded = ImageQualityAssessmentMosModel(folder.path)
    loaded.cfg = Config(folder.config)
    return loaded

def _builtin_sections() -> dict:
    from modelscope.metainfo import Metrics, Models, Pipelines, Preprocessors
    return {
        'model': {'type': Models.image_quality_assessment_mos},
        'pipeline': {'type': Pipelines.image_quality_assessment_mos},
        'preprocessor': {'type': Preprocessors.image_quality_assessment_mos_preprocessor},
        'metrics': [Metrics.image_quality_assessment_mos_metric],
    }


def published_configuration(config: dict) -> dict:
    """``config`` (ours) as a published folder carries it: the model, pipeline,
    preprocessor and metric name ModelScope's built-in classes, and our own sections
    are kept under ``OUR_SECTIONS_KEY``."""
    published = copy.deepcopy(config)
    builtin = _builtin_sections()
    ours = {name: published[name] for name in SWAPPED_SECTIONS if name in published}
    for name in SWAPPED_SECTIONS:
        published[name] = builtin[name]
    evaluation = published.get('evaluation')
    if evaluation and 'metrics' in evaluation:
        ours['evaluation'] = {'metrics': evaluation['metrics']}
        evaluation['metrics'] = builtin['metrics']
    published[OUR_SECTIONS_KEY] = ours
    return published


def our_configuration(config: dict) -> dict:
    """The configuration this package reads: a published folder's own sections put back
    (other configurations as they are)."""
    ours = config.get(OUR_SECTIONS_KEY)
    if not ours:
        return config
    restored = copy.deepcopy(config)
    del restored[OUR_SECTIONS_KEY]
    for name in SWAPPED_SECTIONS:
        if name in ours:
            restored[name] = copy.deepcopy(ours[name])
    if 'evaluation' in ours:
        restored.setdefault('evaluation', {})['metrics'] = list(ours['evaluation']['metrics'])
    return restored

MODEL_FOLDER_FILES = (CONFIGURATION_NAME, WEIGHTS_FILE, 'README.md')


def export_model_folder(out_dir: str, model_dir: Optional[str] = None) -> str:
    """Write a ready-to-push model folder of ``model_dir`` (the embedded default model
    if None): its weights and model card as real files, and its configuration as
    published (:func:`published_configuration`), so that the pushed model runs with
    stock ModelScope (its built-in classes, no plugin) and, after
    ``import modelscope_iqa``, with ours (``pipeline_name=Pipelines.iqa_mos``, the
    command line, the trainer).

    Before returning, both are built on the folder and score a generated image; their
    scores must agree within ``PUBLISHED_TOLERANCE`` (:class:`ExportError` otherwise).

    Pushing needs the network and a token::

        from modelscope.hub.api import HubApi
        api = HubApi()
        api.login('YOUR_SDK_TOKEN')
        api.push_model(model_id='your-namespace/your-model', model_dir=out_dir)

    The configuration has no ``plugins`` entry (see README): with one, stock ModelScope
    would refuse the folder without ``trust_remote_code`` and pip-install us on every
    load.
    """
    import numpy as np
    from modelscope.outputs import OutputKeys
    from modelscope.pipelines import pipeline

    from .config import DEFAULT_MODEL_PATH
    from .metainfo import Pipelines
    source = str(DEFAULT_MODEL_PATH) if model_dir is None else model_dir
    for name in MODEL_FOLDER_FILES:
        if not os.path.isfile(os.path.join(source, name)):
            raise ModelDirError(f'{source!r}: no {name} to export')
    config = our_configuration(read_model_config(source))
    if (config.get('model') or {}).get('type') != Models.iqa_mos_resnet18:
        raise ModelDirError(f'{source!r}: not a modelscope-iqa model folder (an official '
                            'hub folder is already published)')
    os.makedirs(out_dir, exist_ok=True)
    for name in (WEIGHTS_FILE, 'README.md'):
        shutil.copyfile(os.path.join(source, name), os.path.join(out_dir, name))
    with open(os.path.join(out_dir, CONFIGURATION_NAME), 'w', encoding='utf-8') as f:
        json.dump(published_configuration(config), f, indent=2)
        f.write('\n')
    probe = np.random.default_rng(0).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    stock = pipeline(config['task'], model=out_dir)(probe)[OutputKeys.SCORE]
    ours = pipeline(config['task'], model=out_dir,
                    pipeline_name=Pipelines.iqa_mos)(probe)[OutputKeys.SCORE]
    if not abs(stock - ours) <= PUBLISHED_TOLERANCE:
        raise ExportError(f'{out_dir!r}: ModelScope\'s built-in pipeline scores the '
                          f'exported folder {stock}, ours {ours}: more than '
                          f'{PUBLISHED_TOLERANCE:g} apart')
    return out_dir
