"""Model directories: local folders, and hub ids fetched from ModelScope when online;
:func:`open_model_folder` is the one reader of a folder's configuration.

Nothing here touches the network unless a caller passes a hub id.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from .config import DatasetConfig, PreprocessConfig
from .errors import HubUnreachableError, ModelDirError
from .metainfo import Models, Preprocessors
from .models.checkpoint import WEIGHTS_FILE

LOG = logging.getLogger(__name__)

# The file name ModelScope looks for in a model folder.
CONFIGURATION_NAME = 'configuration.json'
HUB_PROBE_TIMEOUT_S = 5.0
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
    model (an official hub folder names ModelScope's built-in classes)."""
    path: str
    config: dict
    preprocess_config: PreprocessConfig
    dataset: DatasetConfig
    names_our_model: bool

    @property
    def weights(self) -> str:
        return os.path.join(self.path, WEIGHTS_FILE)


def open_model_folder(model: str, revision: Optional[str] = None) -> ModelFolder:
    """Read ``model`` (a folder, or a hub id downloaded when online) once.

    A configuration that names our preprocessor gives its options; one that names
    ModelScope's own (an official hub folder) gets the package defaults, which equal
    ModelScope's preprocessing for this model, and so does its dataset section. Both
    substitutions are logged."""
    path = resolve_model_dir(model, revision)
    config = read_model_config(path)
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
    return ModelFolder(path, config, preprocess_config, dataset, ours)


MODEL_FOLDER_FILES = (CONFIGURATION_NAME, WEIGHTS_FILE, 'README.md')


def export_model_folder(out_dir: str, model_dir: Optional[str] = None) -> str:
    """Write a ready-to-push model folder: configuration.json, pytorch_model.pt and the
    model card README.md of ``model_dir`` (the embedded default model if None), as real
    files. The folder is validated by loading it through ModelScope's ``pipeline()``
    and scoring a generated image; only then is its path returned.

    Pushing needs the network and a token::

        from modelscope.hub.api import HubApi
        api = HubApi()
        api.login('YOUR_SDK_TOKEN')
        api.push_model(model_id='your-namespace/your-model', model_dir=out_dir)

    The configuration has no ``plugins`` entry (see README): users of the pushed
    model run ``pip install modelscope-iqa`` and ``import modelscope_iqa`` first.
    """
    import numpy as np
    from modelscope.outputs import OutputKeys
    from modelscope.pipelines import pipeline

    from .config import DEFAULT_MODEL_PATH
    source = str(DEFAULT_MODEL_PATH) if model_dir is None else model_dir
    for name in MODEL_FOLDER_FILES:
        if not os.path.isfile(os.path.join(source, name)):
            raise ModelDirError(f'{source!r}: no {name} to export')
    os.makedirs(out_dir, exist_ok=True)
    for name in MODEL_FOLDER_FILES:
        shutil.copyfile(os.path.join(source, name), os.path.join(out_dir, name))
    config = read_model_config(out_dir)
    scorer = pipeline(config['task'], model=out_dir)
    probe = np.random.default_rng(0).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    score = scorer(probe)[OutputKeys.SCORE]
    if not 0.0 <= score <= 1.0:
        raise ModelDirError(f'{out_dir!r}: exported model scored {score}, outside [0, 1]')
    return out_dir
