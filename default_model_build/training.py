"""Running a stage's recipe through ModelScope's trainer: stage 1 on random crops, the
ladder stages after it, and the candidate model folder (WORK/model) they hand on."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Optional

import torch

import modelscope_iqa  # noqa: F401  (lists the plugin for ModelScope)
from modelscope_iqa.config import CONFIGURATION_FILE
from modelscope_iqa.hub import CONFIGURATION_NAME
from modelscope_iqa.metainfo import Trainers
from modelscope_iqa.models.checkpoint import WEIGHTS_FILE, read_state_dict, save_weights
from modelscope_iqa.models.network import IqaMosNet

from . import heldout, photos
from .recipe import RANDOM_INIT, LadderStage, Stage, stage

LOG = logging.getLogger(__name__)
# Held-out images are full size: the per-epoch evaluation scores one at a time, in the
# training process.
EVALUATION_DATALOADER = {'batch_size_per_gpu': 1, 'workers_per_gpu': 0, 'shuffle': False}
# The folder of WORK/NAME a stage hands on, by its recipe's hands_on.
HANDED_ON = {'best_epoch': 'output_best', 'last_epoch': 'output'}


def weights_of(work_dir: Path, name: str) -> Path:
    """The weights stage ``name`` hands on (its recipe's ``hands_on``)."""
    return work_dir / name / HANDED_ON[stage(name).hands_on] / WEIGHTS_FILE


def configure(cfg, recipe: Stage):
    """configuration.json's model and train sections set from a stage's recipe (every
    training setting; the hooks and the metric stay the configuration's)."""
    for key in ('train_precision', 'l1_loss_weight', 'rank_loss_weight', 'rank_margin_cap',
                'rank_cross_min_gap', 'freeze_batchnorm'):
        cfg.model[key] = getattr(recipe, key)
    cfg.train.max_epochs = recipe.epochs
    cfg.train.dataloader.batch_size_per_gpu = recipe.batch_size
    cfg.train.dataloader.workers_per_gpu = recipe.workers
    cfg.train.optimizer.type = recipe.optimizer
    cfg.train.optimizer.lr = recipe.lr
    cfg.train.lr_scheduler.type = recipe.lr_scheduler
    cfg.train.lr_scheduler.T_max = recipe.epochs
    cfg.evaluation.dataloader = dict(EVALUATION_DATALOADER)
    return cfg


def machine(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name and core count."""
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    cores = f'{os.cpu_count()} cores'
    try:
        with open('/proc/cpuinfo') as f:
            names = [line.split(':', 1)[1].strip() for line in f
                     if line.startswith('model name')]
    except OSError:
        names = []
    return f'{names[0] if names else platform.processor() or platform.machine()}, {cores}'


def _model_dir(work_dir: Path, name: str, state: dict) -> Path:
    """WORK/NAME_init: configuration.json and ``state``, the folder a stage starts from."""
    init_dir = work_dir / f'{name}_init'
    init_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONFIGURATION_FILE, init_dir / CONFIGURATION_NAME)
    torch.save(state, init_dir / WEIGHTS_FILE)
    return init_dir


def _eval_dataset(work_dir: Path):
    """The per-epoch evaluation set, or None without the validation set."""
    if not heldout.VALSET.csv(work_dir).is_file():
        return None
    return modelscope_iqa.ImageQualityAssessmentMosDataset(
        heldout.epoch_eval_rows(heldout.read_rows(work_dir)))


def train_crops(work_dir: Path, seed: int, recipe: Stage) -> None:
    """Stage 1: from a random initialisation seeded with ``seed``, random degraded crops
    (SyntheticDistortionDataset) of the recipe's photos, in WORK/NAME."""
    from modelscope.trainers import build_trainer

    from modelscope_iqa.synthetic.dataset import SyntheticDistortionDataset

    if recipe.starts_from != RANDOM_INIT or recipe.dataset != 'SyntheticDistortionDataset':
        raise ValueError(f'{recipe.name}: train_crops runs a random-crop stage from a '
                         'random initialisation')
    init_dir = work_dir / 'init_model'
    init_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONFIGURATION_FILE, init_dir / CONFIGURATION_NAME)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        save_weights(IqaMosNet(), str(init_dir / WEIGHTS_FILE))

    train_dir = work_dir / 'pristine' / photos.TRAIN_SPLIT
    paths = [str(train_dir / f'{name}.png') for name in photos.training_photos(recipe.photo_sets)]
    LOG.info('%s: %s', recipe.name, recipe)
    train_dataset = SyntheticDistortionDataset(
        paths, length=recipe.iters_per_epoch * recipe.batch_size,
        crop_size=recipe.crop_size, seed=seed)
    eval_dataset = _eval_dataset(work_dir)
    if eval_dataset is None:
        raise FileNotFoundError(f'no validation set in {work_dir}: run the valset step first '
                                f'({recipe.name} keeps its best epoch by it)')
    trainer = build_trainer(name=Trainers.iqa_mos, default_args=dict(
        model=str(init_dir), train_dataset=train_dataset, eval_dataset=eval_dataset,
        work_dir=str(work_dir / recipe.name), cfg_modify_fn=lambda cfg: configure(cfg, recipe),
        seed=seed))
    trainer.train()


def train_ladders(work_dir: Path, seed: int, recipe: LadderStage, init: Path,
                  device: Optional[str] = None) -> None:
    """A ladder stage: from the weights ``init`` in float16 (as shipped), ladders of the
    recipe's photos and charts (SyntheticLadderDataset) drawn with ``seed``, in WORK/NAME
    (the weights in its output folder). ``device`` is ModelScope's ('cpu', 'gpu',
    'cuda:0'; by default a GPU when there is one). Without the validation set it trains
    without the per-epoch evaluation. Resumes from its last epoch checkpoint; its
    record.json says where it ran and how long."""
    from modelscope.trainers import build_trainer

    from modelscope_iqa.synthetic.ladders import SyntheticLadderDataset, collate_ladders

    out_dir = work_dir / recipe.name
    # The starting weights as shipped (float16), widened back to float32 for training.
    initial = {k: v.float() if v.is_floating_point() else v
               for k, v in half(read_state_dict(str(init))).items()}
    init_dir = _model_dir(work_dir, recipe.name, initial)

    LOG.info('%s: %s', recipe.name, recipe)
    train_dir = work_dir / 'pristine' / photos.TRAIN_SPLIT
    charts = photos.draw_charts(train_dir, seed, range(recipe.dead_leaves_charts))
    paths = sorted([str(train_dir / f'{name}.png')
                    for name in photos.training_photos(recipe.photo_sets)]
                   + [str(p) for p in charts])
    train_dataset = SyntheticLadderDataset(
        paths, length=recipe.iters_per_epoch * recipe.batch_size,
        crop_size=recipe.crop_size, rungs=recipe.rungs, seed=seed, scales=recipe.scales,
        mixture_share=recipe.mixture_share, windows=recipe.windows,
        family_weights=recipe.family_weights, grid_period=recipe.grid_period)
    eval_dataset = _eval_dataset(work_dir)
    if eval_dataset is None:
        LOG.info('no held-out set in %s: training without per-epoch evaluation', work_dir)

    def configure_stage(cfg):
        configure(cfg, recipe)
        if eval_dataset is None:
            cfg.train.hooks = [h for h in cfg.train.hooks
                               if h['type'] not in ('EvaluationHook', 'BestCkptSaverHook')]
        return cfg

    trainer_args = dict(model=str(init_dir), train_dataset=train_dataset,
                        eval_dataset=eval_dataset, work_dir=str(out_dir),
                        cfg_modify_fn=configure_stage, seed=seed,
                        data_collator={'train': collate_ladders})
    if device is not None:
        trainer_args['device'] = device
    trainer = build_trainer(name=Trainers.iqa_mos, default_args=trainer_args)
    resume = sorted((p for p in out_dir.glob('epoch_*.pth')
                     if not p.name.endswith('_trainer_state.pth')),
                    key=lambda p: int(p.stem.split('_')[1]))
    started = time.time()
    modelscope_iqa.training.train(trainer, resume_from=str(resume[-1]) if resume else None)
    cfg = trainer.cfg
    iterations = recipe.epochs * recipe.iters_per_epoch
    record = {
        'settings': dataclasses.asdict(recipe), 'seed': seed, 'init': str(init),
        'photos': len(paths),
        'configuration': {'model': cfg.model, 'train': {
            k: cfg.train[k] for k in ('max_epochs', 'dataloader', 'optimizer', 'lr_scheduler')}},
        'device': str(trainer.device), 'torch': torch.__version__,
        'machine': machine(trainer.device), 'seconds': round(time.time() - started, 1),
        'iterations': iterations,
        'images': iterations * recipe.batch_size * recipe.rungs,
        'resumed_from': resume[-1].name if resume else None}
    (out_dir / 'record.json').write_text(json.dumps(record, indent=2))
    LOG.info('%s done: %s', recipe.name, record)


def half(state: dict) -> dict:
    """A state dict with its floating-point tensors in float16, as the model ships."""
    return {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}


def write_candidate(work_dir: Path, state: dict) -> None:
    """WORK/model: the folder report measures and export ships (float16 weights)."""
    out = work_dir / 'model'
    out.mkdir(parents=True, exist_ok=True)
    torch.save(half(state), out / WEIGHTS_FILE)
    shutil.copy(CONFIGURATION_FILE, out / CONFIGURATION_NAME)
    LOG.info('candidate model -> %s', out)


def pack(work_dir: Path, name: str) -> None:
    """Stage ``name``'s weights, in float16 as shipped, become the candidate model."""
    write_candidate(work_dir, read_state_dict(str(weights_of(work_dir, name))))
