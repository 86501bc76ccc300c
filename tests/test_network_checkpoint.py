"""The network is state-dict compatible with ModelScope's CenseoIVQAModel, and
checkpoints load safely or fail with a message naming the file."""
import pickle

import pytest
import torch

from modelscope_iqa.errors import CheckpointError, ModelFolderError
from modelscope_iqa.models import (ImageQualityAssessmentMosModel, IqaMosNet,
                                   load_weights, read_state_dict, save_weights)

from conftest import make_reference_network


def test_state_dict_keys_and_shapes_match_modelscope():
    ours = IqaMosNet().state_dict()
    reference = make_reference_network().state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in reference.items()}


def test_same_weights_give_identical_outputs():
    reference = make_reference_network()
    ours = IqaMosNet().eval()
    ours.load_state_dict(reference.state_dict())
    x = torch.rand(2, 3, 96, 160, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(x)
        got = ours(x)
    assert torch.equal(got, expected)
    assert got.shape == (2, 1)
    assert 0.0 <= got.min().item() <= got.max().item() <= 1.0


@pytest.mark.parametrize('layout', ['bare', 'params', 'module_prefix', 'params_and_prefix'])
def test_accepted_checkpoint_layouts(tmp_path, layout):
    state = make_reference_network().state_dict()
    if 'prefix' in layout:
        state = {f'module.{k}': v for k, v in state.items()}
    if 'params' in layout:
        state = {'params': state}
    path = tmp_path / 'pytorch_model.pt'
    torch.save(state, path)
    network = load_weights(IqaMosNet(), str(path))
    expected = make_reference_network().state_dict()
    for key, value in network.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_save_then_read_round_trips(tmp_path):
    network = make_reference_network()
    path = tmp_path / 'w.pt'
    save_weights(network, str(path))
    loaded = read_state_dict(str(path))
    assert set(loaded) == set(network.state_dict())
    assert not any(k.startswith('module.') for k in loaded)


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / 'absent.pt'
    with pytest.raises(CheckpointError, match='absent.pt'):
        read_state_dict(str(path))


def test_mismatched_keys_are_listed(tmp_path):
    state = make_reference_network().state_dict()
    state.pop('head.fc_out.2.bias')
    state['head.extra.weight'] = torch.zeros(1)
    path = tmp_path / 'bad.pt'
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        load_weights(IqaMosNet(), str(path))
    message = str(info.value)
    assert 'bad.pt' in message
    assert 'head.fc_out.2.bias' in message and 'head.extra.weight' in message


def test_wrong_shapes_are_listed(tmp_path):
    state = make_reference_network().state_dict()
    state['head.fc_out.2.weight'] = torch.zeros(2, 1024)
    path = tmp_path / 'shape.pt'
    torch.save(state, path)
    with pytest.raises(CheckpointError, match='wrong shape.*head.fc_out.2.weight'):
        load_weights(IqaMosNet(), str(path))


class _Payload:
    def __reduce__(self):
        return (print, ('pickled code ran',))


@pytest.mark.parametrize('content', ['truncated', 'not_state_dict', 'pickled_code'])
def test_unsafe_or_corrupt_checkpoints_are_refused(tmp_path, content, capsys):
    path = tmp_path / f'{content}.pt'
    if content == 'truncated':
        torch.save(make_reference_network().state_dict(), path)
        path.write_bytes(path.read_bytes()[:1000])
    elif content == 'not_state_dict':
        torch.save([1, 2, 3], path)
    else:
        path.write_bytes(pickle.dumps({'weight': _Payload()}))
    with pytest.raises(CheckpointError, match=f'{content}.pt'):
        read_state_dict(str(path))
    assert 'pickled code ran' not in capsys.readouterr().out


def test_model_dir_without_weights_is_refused(tmp_path):
    with pytest.raises(ModelFolderError, match='pytorch_model.pt'):
        ImageQualityAssessmentMosModel(str(tmp_path))
