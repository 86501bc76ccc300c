"""Publishing: a model folder whose configuration names ModelScope's built-in classes
(:mod:`modelscope_iqa.builtin`), ours kept aside (:mod:`modelscope_iqa.hub.published`
reads them back), so that stock ModelScope runs it without this package; checked
against our pipeline before it is handed over.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
from typing import Optional

from ..builtin import builtin_names
from ..config import WEIGHTS_FILE
from ..errors import ExportError, ModelFolderError
from ..hub.folders import CONFIGURATION_NAME, read_model_config
from ..hub.published import OUR_SECTIONS_KEY, SWAPPED_SECTIONS, our_configuration
from ..metainfo import Models

# Stock ModelScope's scores of a published folder must equal our exact mode's within this.
PUBLISHED_TOLERANCE = 1e-5
MODEL_FOLDER_FILES = (CONFIGURATION_NAME, WEIGHTS_FILE, 'README.md')


def published_configuration(config: dict) -> dict:
    """``config`` (ours) as a published folder carries it: the model, pipeline,
    preprocessor and metric name ModelScope's built-in classes, and our own sections
    are kept under ``OUR_SECTIONS_KEY``."""
    published = copy.deepcopy(config)
    builtin = builtin_names()
    ours = {name: published[name] for name in SWAPPED_SECTIONS if name in published}
    for name in SWAPPED_SECTIONS:
        published[name] = {'type': builtin[name]}
    evaluation = published.get('evaluation')
    if evaluation and 'metrics' in evaluation:
        ours['evaluation'] = {'metrics': evaluation['metrics']}
        evaluation['metrics'] = [builtin['metric']]
    published[OUR_SECTIONS_KEY] = ours
    return published


def check_published_folder(folder: str, task: str) -> None:
    """Score a generated image with stock ModelScope's pipeline and with ours on
    ``folder``; :class:`ExportError` when they differ by more than
    ``PUBLISHED_TOLERANCE``."""
    import numpy as np
    from modelscope.outputs import OutputKeys
    from modelscope.pipelines import pipeline

    from ..pipelines import ImageQualityAssessmentMosPipeline
    probe = np.random.default_rng(0).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    stock = pipeline(task, model=folder)(probe)[OutputKeys.SCORE]
    ours = ImageQualityAssessmentMosPipeline(model=folder)(probe)[OutputKeys.SCORE]
    if not abs(stock - ours) <= PUBLISHED_TOLERANCE:
        raise ExportError(f'{folder!r}: ModelScope\'s built-in pipeline scores the '
                          f'exported folder {stock}, ours {ours}: more than '
                          f'{PUBLISHED_TOLERANCE:g} apart')


def export_model_folder(out_dir: str, model_dir: Optional[str] = None) -> str:
    """Write a ready-to-push model folder of ``model_dir`` (the embedded default model
    if None): its weights and model card as real files, and its configuration as
    published (:func:`published_configuration`), so that the pushed model runs with
    stock ModelScope (its built-in classes, no plugin) and, after
    ``import modelscope_iqa``, with ours (``pipeline_name=Pipelines.iqa_mos``, the
    command line, the trainer).

    Before returning, both pipelines score a generated image on the folder
    (:func:`check_published_folder`).

    Pushing needs the network and a token::

        from modelscope.hub.api import HubApi
        api = HubApi()
        api.login('YOUR_SDK_TOKEN')
        api.push_model(model_id='your-namespace/your-model', model_dir=out_dir)

    The configuration has no ``plugins`` entry (see README): with one, stock ModelScope
    would refuse the folder without ``trust_remote_code`` and pip-install us on every
    load.
    """
    from ..config import DEFAULT_MODEL_PATH
    source = str(DEFAULT_MODEL_PATH) if model_dir is None else model_dir
    for name in MODEL_FOLDER_FILES:
        if not os.path.isfile(os.path.join(source, name)):
            raise ModelFolderError(f'{source!r}: no {name} to export')
    config = our_configuration(read_model_config(source))
    if (config.get('model') or {}).get('type') != Models.iqa_mos_resnet18:
        raise ModelFolderError(f'{source!r}: not a modelscope-iqa model folder (an '
                               'official hub folder is already published)')
    os.makedirs(out_dir, exist_ok=True)
    for name in (WEIGHTS_FILE, 'README.md'):
        shutil.copyfile(os.path.join(source, name), os.path.join(out_dir, name))
    with open(os.path.join(out_dir, CONFIGURATION_NAME), 'w', encoding='utf-8') as f:
        json.dump(published_configuration(config), f, indent=2)
        f.write('\n')
    check_published_folder(out_dir, config['task'])
    return out_dir
