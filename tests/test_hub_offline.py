"""Model folders: hub ids fail fast and clearly offline; local folders never touch the
network, and load with their configuration's settings as ModelScope loads them."""
import inspect
import json

import pytest
import torch

from modelscope_iqa import errors
from modelscope_iqa.errors import HubUnreachableError, ModelFolderError
from modelscope_iqa.hub import download_model, load_model, resolve_model_dir
from modelscope_iqa.models import ImageQualityAssessmentMosModel

HUB_ID = 'damo/cv_resnet_image-quality-assessment-mos_youtubeUGC'


def test_hub_id_offline_says_unreachable_and_how_to_go_local():
    # conftest points MODELSCOPE_ENDPOINT at a loopback port where nothing listens.
    with pytest.raises(HubUnreachableError) as info:
        download_model(HUB_ID)
    message = str(info.value)
    assert HUB_ID in message
    assert 'unreachable' in message
    assert 'local model directory' in message


def test_loaders_route_hub_ids_through_the_same_check():
    for loader in (resolve_model_dir, load_model):
        with pytest.raises(HubUnreachableError, match='local model directory'):
            loader(HUB_ID)


def test_local_folders_resolve_without_the_hub(our_model_dir, tmp_path):
    assert resolve_model_dir(str(our_model_dir)) == str(our_model_dir)
    with pytest.raises(ModelFolderError, match='no configuration.json'):
        resolve_model_dir(str(tmp_path))
    with pytest.raises(ModelFolderError, match='not a model directory'):
        resolve_model_dir(str(tmp_path / 'nested' / 'missing'))


def test_the_old_error_name_is_the_same_class():
    """``ModelDirError`` was the name up to 0.3.0: code that catches it still works."""
    assert errors.ModelDirError is ModelFolderError


def _settings(model, names):
    return {name: getattr(model, name) for name in names}


def _batchnorm_modes_in_training(model):
    model.train()
    try:
        return {module.training for module in model.network.modules()
                if isinstance(module, torch.nn.BatchNorm2d)}
    finally:
        model.eval()


def test_load_model_has_the_settings_model_from_pretrained_gives(our_model_dir):
    """The repository's configuration.json sets the training precision, the ranking
    loss and frozen BatchNorm in its ``model`` section; both loaders take them."""
    from modelscope.models import Model
    section = json.loads((our_model_dir / 'configuration.json').read_text())['model']
    names = [key for key in section if key != 'type'] + ['inference_precision']
    ours, theirs = load_model(str(our_model_dir)), Model.from_pretrained(str(our_model_dir))
    assert type(ours) is type(theirs)
    assert _settings(ours, names) == _settings(theirs, names)
    assert _settings(ours, section.keys() - {'type'}) == {
        key: value for key, value in section.items() if key != 'type'}
    # Not all the constructor's defaults, or this test could not tell.
    defaults = inspect.signature(ImageQualityAssessmentMosModel).parameters
    assert {key for key, value in section.items() if key != 'type'
            and value != defaults[key].default} >= {'train_precision', 'rank_loss_weight',
                                                     'freeze_batchnorm'}
    assert _batchnorm_modes_in_training(ours) == _batchnorm_modes_in_training(theirs) \
        == {False}
    assert ours.cfg.to_dict() == theirs.cfg.to_dict()


def test_an_official_folder_loads_with_our_models_defaults(builtin_model_dir):
    """Its ``model`` section names ModelScope's model, whose settings are not ours."""
    model = load_model(str(builtin_model_dir))
    assert (model.train_precision, model.rank_loss_weight, model.freeze_batchnorm) == (
        'fp32', 0.0, False)
