"""Hub ids fail fast and clearly offline; local folders never touch the network."""
import pytest

from modelscope_iqa.errors import HubUnreachableError, ModelDirError
from modelscope_iqa.hub import download_model, resolve_model_dir
from modelscope_iqa.hub import load_model

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
    with pytest.raises(ModelDirError, match='no configuration.json'):
        resolve_model_dir(str(tmp_path))
    with pytest.raises(ModelDirError, match='not a model directory'):
        resolve_model_dir(str(tmp_path / 'nested' / 'missing'))
