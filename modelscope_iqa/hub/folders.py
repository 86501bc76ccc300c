"""Model folders: :func:`open_model_folder` is the one reader of a folder's
configuration, :func:`load_model` builds our model from it as ModelScope's
``Model.from_pretrained`` does. A hub id is downloaded first (:mod:`.download`); a local
folder never touches the network.
"""
from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from typing import Optional, Union

from ..config import WEIGHTS_FILE, DatasetConfig, PreprocessConfig
from ..errors import ModelFolderError
from ..identity import ModelIdentity, model_folder_identity
from ..metainfo import Models, Preprocessors
from .download import download_model
from .published import OUR_SECTIONS_KEY, our_configuration

LOG = logging.getLogger(__name__)

# The file name ModelScope looks for in a model folder.
CONFIGURATION_NAME = 'configuration.json'


def is_model_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, CONFIGURATION_NAME))


def read_model_config(model_dir: str) -> dict:
    """The parsed configuration.json of ``model_dir``."""
    path = os.path.join(model_dir, CONFIGURATION_NAME)
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        raise ModelFolderError(f'{model_dir!r}: no {CONFIGURATION_NAME}') from None
    except (OSError, ValueError) as exc:
        raise ModelFolderError(f'{path!r}: unreadable configuration ({exc})') from exc


def resolve_model_dir(model: str, revision: Optional[str] = None) -> str:
    """A local model directory for ``model``: a folder as is, a hub id downloaded."""
    if os.path.isdir(model):
        if not is_model_dir(model):
            raise ModelFolderError(f'{model!r}: no {CONFIGURATION_NAME} in this folder')
        return model
    if os.path.exists(model) or model.count('/') != 1 or model.startswith(('.', '/')):
        raise ModelFolderError(
            f'{model!r}: not a model directory, nor a hub id of the form owner/name')
    return download_model(model, revision=revision)


@dataclass(frozen=True)
class ModelFolder:
    """A model folder as read once: its ``path``, parsed ``config``, the preprocessing
    and dataset settings that apply to it, and whether its configuration names our
    model (an official hub folder names ModelScope's built-in classes). For a
    ``published`` folder, ``config`` is our view of it (:mod:`.published`)."""
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

    def model_options(self) -> dict:
        """The keyword arguments of our model that the configuration's ``model``
        section gives (none for a folder that names another model)."""
        if not self.names_our_model:
            return {}
        options = dict(self.config.get('model') or {})
        options.pop('type', None)
        return options


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
    directory, hub id or opened folder, with the settings of its configuration's
    ``model`` section (training precision, loss weights, frozen BatchNorm, ...), as
    ``Model.from_pretrained`` builds it.

    Also takes an official hub folder as downloaded, whose configuration names
    ModelScope's built-in classes: its weights load into our network, with our model's
    default settings.
    """
    from modelscope.utils.config import Config

    from ..models.iqa_mos_model import ImageQualityAssessmentMosModel
    folder = model if isinstance(model, ModelFolder) else open_model_folder(model)
    loaded = ImageQualityAssessmentMosModel(folder.path, **folder.model_options())
    loaded.cfg = Config(folder.config)
    return loaded
