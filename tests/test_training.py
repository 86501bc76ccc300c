"""Fine-tuning through ModelScope's trainer: a real loss, hub-format checkpoints that
ModelScope's own model loads, the best checkpoint by SRCC kept, and resumption."""
import json
import math
import shutil

import pytest
import torch
from modelscope.trainers import build_trainer
from modelscope.trainers.hooks import Hook
from PIL import Image

from modelscope_iqa import ImageQualityAssessmentMosDataset, training
from modelscope_iqa.config import CONFIGURATION_FILE
from modelscope_iqa.metainfo import Pipelines
from modelscope_iqa.models import IqaMosNet, read_state_dict, save_weights
from modelscope_iqa.hub import load_model
from modelscope_iqa.synthetic import SyntheticLadderDataset, collate_ladders

from conftest import BUILTIN_CONFIGURATION, make_image

pytestmark = pytest.mark.slow  # every test trains

EPOCHS = 3
ITERS_PER_EPOCH = 2


class LossRecorder(Hook):

    def __init__(self):
        self.losses = []

    def after_train_iter(self, trainer):
        self.losses.append(trainer.train_outputs['loss'].item())


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp('tiny_data')
    rows = []
    for i in range(8):
        path = folder / f'img{i}.png'
        Image.fromarray(make_image(180 + 20 * i, 320, seed=i)).save(path)
        rows.append({'image:FILE': str(path), 'mos': 4.0 + 0.1 * (i % 4)})
    return rows


def _init_model_dir(folder):
    folder.mkdir()
    shutil.copy(CONFIGURATION_FILE, folder / 'configuration.json')
    with torch.random.fork_rng():
        torch.manual_seed(0)
        save_weights(IqaMosNet(), str(folder / 'pytorch_model.pt'))
    return folder


def _trainer(model_dir, rows, work_dir, epochs=EPOCHS, callbacks=()):
    options = {'train_crop_size': [64, 96]}

    def configure(cfg):
        cfg.model.train_precision = 'bf16'
        cfg.train.max_epochs = epochs
        cfg.train.dataloader = {'batch_size_per_gpu': 4, 'workers_per_gpu': 0,
                                'shuffle': True, 'drop_last': True}
        cfg.train.optimizer.lr = 1e-3
        cfg.train.lr_scheduler.T_max = epochs
        cfg.evaluation.dataloader.batch_size_per_gpu = 2
        return cfg

    return build_trainer(default_args=dict(
        model=str(model_dir),
        train_dataset=ImageQualityAssessmentMosDataset(rows, options, mode='train'),
        eval_dataset=ImageQualityAssessmentMosDataset(rows[:4], options),
        work_dir=str(work_dir), cfg_modify_fn=configure, callbacks=list(callbacks)))


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_data):
    root = tmp_path_factory.mktemp('training')
    recorder = LossRecorder()
    trainer = _trainer(_init_model_dir(root / 'init'), tiny_data, root / 'work',
                       callbacks=[recorder])
    trainer.train()
    return trainer, recorder.losses, root / 'work'


def test_loss_decreases(trained):
    _, losses, _ = trained
    assert len(losses) == EPOCHS * ITERS_PER_EPOCH
    # Targets are 0.8-0.86 and a random network starts near 0.5.
    assert losses[0] > 0.1
    assert sum(losses[-2:]) / 2 < losses[0] * 0.7


def test_checkpoints_are_in_the_hub_format(trained):
    trainer, _, work_dir = trained
    output = read_state_dict(str(work_dir / 'output' / 'pytorch_model.pt'))
    assert set(output) == set(IqaMosNet().state_dict())
    network = trainer.unwrap_module(trainer.model).network
    for key, value in network.state_dict().items():
        assert torch.equal(output[key], value), key
    config = json.loads((work_dir / 'output' / 'configuration.json').read_text())
    assert config['pipeline']['type'] == Pipelines.iqa_mos


def test_saved_checkpoint_reloads_with_identical_outputs(trained, tmp_path):
    trainer, _, work_dir = trained
    trained_model = trainer.unwrap_module(trainer.model).eval()
    x = torch.rand(2, 3, 128, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = trained_model(input=x)['output']
        reloaded = load_model(str(work_dir / 'output'))(input=x)['output']
        # ModelScope's built-in model class loads the same file and agrees exactly.
        from modelscope.models.cv.image_quality_assessment_mos import \
            ImageQualityAssessmentMos
        builtin_dir = tmp_path / 'builtin'
        builtin_dir.mkdir()
        (builtin_dir / 'configuration.json').write_text(json.dumps(BUILTIN_CONFIGURATION))
        shutil.copy(work_dir / 'output' / 'pytorch_model.pt', builtin_dir)
        builtin = ImageQualityAssessmentMos(str(builtin_dir)).eval()
        builtin_out = builtin.forward({'input': x})['output']
    assert torch.equal(reloaded, expected)
    assert torch.equal(builtin_out, expected)


def test_best_checkpoint_by_srcc_is_kept(trained):
    _, _, work_dir = trained
    best = [p for p in work_dir.glob('best_epoch*_srcc*.pth')
            if not p.name.endswith('_trainer_state.pth')]
    assert len(best) == 1
    assert (work_dir / 'output_best' / 'pytorch_model.pt').is_file()


def test_training_resumes_from_its_last_checkpoint(trained, tiny_data, tmp_path):
    _, _, work_dir = trained
    recorder = LossRecorder()
    resumed = _trainer(work_dir / 'output', tiny_data, tmp_path / 'resumed',
                       epochs=EPOCHS + 1, callbacks=[recorder])
    training.train(resumed, resume_from=str(work_dir / f'epoch_{EPOCHS}.pth'))
    # Only the one remaining epoch runs.
    assert len(recorder.losses) == ITERS_PER_EPOCH
    assert resumed.epoch == EPOCHS + 1


class LrRecorder(Hook):

    def __init__(self):
        self.rates = []

    def before_train_iter(self, trainer):
        self.rates.append(trainer.optimizer.param_groups[0]['lr'])


def test_a_resumed_run_keeps_the_schedule_of_an_uninterrupted_one(trained, tiny_data,
                                                                 tmp_path):
    """Resumed from the checkpoint before the last epoch, with the same recipe, the last
    epoch runs once, at the cosine schedule's rate for it (ModelScope alone re-enters the
    finished epoch and steps the schedule a second time: the last epoch then ran at rate
    0 and the finished one was saved again)."""
    _, _, work_dir = trained
    recorder = LrRecorder()
    resumed = _trainer(work_dir / 'output', tiny_data, tmp_path / 'resumed', epochs=EPOCHS,
                       callbacks=[recorder])
    training.train(resumed, resume_from=str(work_dir / f'epoch_{EPOCHS - 1}.pth'))
    last = EPOCHS - 1
    rate = 1e-3 * (1 + math.cos(math.pi * last / EPOCHS)) / 2
    assert recorder.rates == pytest.approx([rate] * ITERS_PER_EPOCH, rel=1e-9)
    assert not (tmp_path / 'resumed' / f'epoch_{EPOCHS - 1}.pth').exists()
    assert (tmp_path / 'resumed' / f'epoch_{EPOCHS}.pth').is_file()


def test_resuming_without_the_helper_fails_as_documented(trained, tiny_data, tmp_path):
    """Guards the reason `training.train` exists: if ModelScope or torch change so
    that plain resumption works, this test says the helper can go."""
    _, _, work_dir = trained
    plain = _trainer(work_dir / 'output', tiny_data, tmp_path / 'plain', epochs=EPOCHS + 1)
    with pytest.raises(Exception, match='numpy'):
        plain.train(checkpoint_path=str(work_dir / f'epoch_{EPOCHS}.pth'))


def test_ladder_groups_train_through_modelscopes_trainer(tmp_path):
    """Stage 2 of the default model's build: groups of views of one content, collated
    (collate_ladders) into (N, K, 3, H, W) batches, the ranking term on."""
    recorder = LossRecorder()
    photos = [make_image(200, 300, seed=i) for i in range(2)]
    dataset = SyntheticLadderDataset(photos, length=4, crop_size=(64, 64), scales=(1.0, ))

    def configure(cfg):
        cfg.train.max_epochs = 1
        cfg.train.dataloader = {'batch_size_per_gpu': 2, 'workers_per_gpu': 0,
                                'shuffle': True, 'drop_last': True}
        cfg.train.hooks = [{'type': 'IterTimerHook'}]
        return cfg

    trainer = build_trainer(default_args=dict(
        model=str(_init_model_dir(tmp_path / 'init')), train_dataset=dataset,
        work_dir=str(tmp_path / 'work'), cfg_modify_fn=configure, callbacks=[recorder],
        data_collator={'train': collate_ladders}))
    trainer.train()
    assert len(recorder.losses) == 2
    outputs = trainer.train_outputs
    assert outputs['pred'].shape == (8, 1)
    assert outputs['rank_loss'].item() > 0
    weights = json.loads(CONFIGURATION_FILE.read_text())['model']
    assert outputs['loss'].item() == pytest.approx(
        weights['l1_loss_weight'] * outputs['l1_loss'].item()
        + weights['rank_loss_weight'] * outputs['rank_loss'].item(), rel=1e-5)
