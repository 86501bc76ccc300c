"""The default model's build (default_model_build/): its recipes, the order and seeds of
its steps, the photo splits, the held-out sets, the calibration and the scene-key report."""
import csv
import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from default_model_build import (calibration, export, heldout, photos, recipe, report,
                                 stages, training)
from default_model_build import report_by_scene_key as split
from default_model_build.__main__ import main
from modelscope_iqa.config import CONFIGURATION_FILE, WEIGHTS_FILE
from modelscope_iqa.synthetic.distortions import degrade, quality_target
from modelscope_iqa.synthetic.ladders import FAMILY_WEIGHTS, JPEG_MACROBLOCK

from conftest import make_image

# The settings the shipped stages ran with, as the build script before the recipes held them
# before the recipes replaced it: stage 1's TRAINING and stage 2's FINETUNING over
# configuration.json's model and train sections (CONFIGURATION), each later stage's dict
# over FINETUNING's, a ladder's family weights over SyntheticLadderDataset's defaults.
CONFIGURATION = {'epochs': 8, 'lr': 3e-4, 'batch_size': 16, 'workers': 1, 'optimizer': 'Adam',
                 'lr_scheduler': 'CosineAnnealingLR', 'train_precision': 'bf16',
                 'l1_loss_weight': 1.0, 'rank_loss_weight': 1.0, 'rank_margin_cap': 0.1,
                 'rank_cross_min_gap': 0.3, 'freeze_batchnorm': True}
TRAINING = {'crop_size': (256, 256), 'iters_per_epoch': 500, 'epochs': 6,
            'rank_loss_weight': 0.0, 'freeze_batchnorm': False}
DEFAULT_FAMILY_WEIGHTS = {'contrast_loss': 1.0, 'defocus_blur': 1.0, 'jpeg_compression': 2.0,
                          'low_light': 1.0, 'motion_blur': 1.0, 'over_exposure': 1.0,
                          'resolution_loss': 1.0, 'sensor_noise': 1.0, 'under_exposure': 1.0}
FINETUNING = {'crop_size': (224, 224), 'rungs': 4, 'iters_per_epoch': 950,
              'scales': (1.0, 0.75, 0.5, 0.3), 'mixture_share': 0.25, 'workers': 7,
              'windows': 2, 'dead_leaves_charts': 16, 'family_weights': {}, 'grid_period': 8}
REFINING = {'epochs': 3, 'iters_per_epoch': 300, 'lr': 1e-4, 'workers': 1,
            'family_weights': {'jpeg_compression': 4.0, 'over_exposure': 2.0,
                               'motion_blur': 2.0}}
REGRIDDING = {**REFINING, 'epochs': 2, 'iters_per_epoch': 200,
              'family_weights': {'jpeg_compression': 4.0, 'over_exposure': 2.0,
                                 'motion_blur': 2.0, 'under_exposure': 2.0},
              'grid_period': 16}
EXPOSING = {**REGRIDDING, 'epochs': 2, 'iters_per_epoch': 100,
            'family_weights': {'jpeg_compression': 3.0, 'under_exposure': 4.0, 'low_light': 2.0,
                               'over_exposure': 2.0, 'motion_blur': 2.0}}
EXTENDING = {'epochs': 8, 'lr': 1e-4,
             'family_weights': {'jpeg_compression': 3.0, 'under_exposure': 3.0,
                                'over_exposure': 3.0, 'low_light': 2.0, 'motion_blur': 2.0},
             'grid_period': 16}
# (step, what it starts from, seed offset, its settings), in the order they trained.
SHIPPED = [('train', 'random', 0, {**CONFIGURATION, **TRAINING}),
           ('finetune', 'train', 0, {**CONFIGURATION, **FINETUNING}),
           ('refine', 'finetune', 1, {**CONFIGURATION, **FINETUNING, **REFINING}),
           ('regrid', 'refine', 3, {**CONFIGURATION, **FINETUNING, **REGRIDDING}),
           ('expose', 'regrid', 4, {**CONFIGURATION, **FINETUNING, **EXPOSING}),
           ('extend', 'expose', 6, {**CONFIGURATION, **FINETUNING, **EXTENDING}),
           ('reexpose', 'extend', 7, {**CONFIGURATION, **FINETUNING, **EXPOSING})]
# Ladder settings the build had for explorations no shipped stage kept, each as a
# recipe would give it; a recipe or command line naming one is refused.
REMOVED_SETTINGS = {'whole_share': 'whole_share: 0.3\n',
                    'whole_families': 'whole_families: [over_exposure]\n',
                    'whole_size': 'whole_size: [216, 384]\n',
                    'exposure_key': 'exposure_key: window\n',
                    'detail_families': 'detail_families: [defocus_blur]\n'}
STEPS = ['photos', 'valset', 'train', 'pack', 'finetune', 'refine', 'regrid', 'expose',
         'extend', 'reexpose', 'calibrate', 'brisque', 'report', 'export', 'golden']


def test_the_recipes_chain_each_stage_from_the_one_before():
    shipped = recipe.load_stages()
    assert [s.name for s in shipped] == [name for name, _, _, _ in SHIPPED]
    assert [s.order for s in shipped] == list(range(1, len(SHIPPED) + 1))
    assert shipped[0].starts_from == recipe.RANDOM_INIT
    for before, after in zip(shipped, shipped[1:]):
        assert after.starts_from == before.name
        assert isinstance(after, recipe.LadderStage)
    # Stage 1 hands on its best epoch, the ladder stages their last; the calibration
    # follows the last stage.
    assert [s.hands_on for s in shipped] == ['best_epoch'] + ['last_epoch'] * 6
    assert recipe.load_calibration().starts_from == shipped[-1].name
    assert sorted(p.name for p in recipe.RECIPES_DIR.glob('*.yaml')) == sorted(
        [f'{s.order}_{s.name}.yaml' for s in shipped] + ['calibration.yaml', 'photos.yaml'])


@pytest.mark.parametrize('name, starts_from, seed_offset, settings', SHIPPED,
                         ids=[s[0] for s in SHIPPED])
def test_the_recipes_hold_the_settings_the_shipped_stages_ran_with(name, starts_from,
                                                                    seed_offset, settings):
    stage = recipe.stage(name)
    assert (stage.starts_from, stage.seed_offset) == (starts_from, seed_offset)
    expected = dict(settings)
    if isinstance(stage, recipe.LadderStage):
        expected['family_weights'] = {**DEFAULT_FAMILY_WEIGHTS, **settings['family_weights']}
        assert expected['family_weights'] == {**FAMILY_WEIGHTS, **settings['family_weights']}
        assert stage.photo_sets == ('mate', 'plasma', 'lxqt', 'lomiri', 'native_scale')
        assert len(photos.training_photos(stage.photo_sets)) == 40
    else:
        assert stage.dataset == 'SyntheticDistortionDataset'
        # Stage 1 trained on the mate and plasma photos only.
        assert photos.training_photos(stage.photo_sets) == sorted(
            set(photos.MATE_PHOTOS + photos.PLASMA_PHOTOS) - set(photos.HOLDOUT))
        assert len(photos.training_photos(stage.photo_sets)) == 18
    for key, value in expected.items():
        held = getattr(stage, key)
        assert held == value and type(held) is type(value), (name, key, held, value)
    if 'grid_period' in expected and expected['grid_period'] == 16:
        assert stage.grid_period == JPEG_MACROBLOCK
    assert stage.ran


@pytest.mark.parametrize('name', [s[0] for s in SHIPPED])
def test_each_recipe_sets_every_training_value_of_the_trainers_configuration(name):
    """configuration.json's model and train sections are the defaults of a user's
    fine-tuning; a stage's trainer takes every training value from its recipe."""
    from modelscope.utils.config import Config
    stage = recipe.stage(name)
    cfg = training.configure(Config.from_file(str(CONFIGURATION_FILE)), stage)
    for key in ('train_precision', 'l1_loss_weight', 'rank_loss_weight', 'rank_margin_cap',
                'rank_cross_min_gap', 'freeze_batchnorm'):
        assert cfg.model[key] == getattr(stage, key), key
    assert cfg.train.max_epochs == cfg.train.lr_scheduler.T_max == stage.epochs
    assert cfg.train.optimizer.to_dict() == {'type': stage.optimizer, 'lr': stage.lr}
    assert cfg.train.lr_scheduler.type == stage.lr_scheduler
    assert cfg.train.dataloader.batch_size_per_gpu == stage.batch_size
    assert cfg.train.dataloader.workers_per_gpu == stage.workers
    assert dict(cfg.evaluation.dataloader) == {'batch_size_per_gpu': 1, 'workers_per_gpu': 0,
                                              'shuffle': False}


def test_the_calibration_recipe_holds_the_shipped_settings():
    settings = recipe.load_calibration()
    assert settings.sample_margin == 0.1
    # Computed as the build always did (0.1 + 0.005), to the last bit.
    assert settings.margin == 0.1 + 0.005
    assert settings.pristine_sample == 'cups_pristine.jpg'
    assert (settings.scale_range, settings.shift_range, settings.grid_step) == (
        (0.1, 6.0), (-3.0, 3.0), (0.01, 0.005))
    assert settings.lbfgs_max_iter == 500


def _recipes_copy(tmp_path):
    folder = tmp_path / 'recipes'
    shutil.copytree(recipe.RECIPES_DIR, folder)
    return folder


@pytest.mark.parametrize('edit, message', [
    (lambda text: text + 'anchor_loss_weight: 0.0\n', 'unknown settings'),
    (lambda text: text.replace('lr: 1.0e-4\n', ''), 'missing settings'),
    # YAML 1.1 reads 1e-4 (no dot) as a string: refused, not trained with.
    (lambda text: text.replace('lr: 1.0e-4', 'lr: 1e-4'), 'lr: expected float'),
    (lambda text: text.replace('rungs: 4', 'rungs: 4.5'), 'rungs: expected int'),
    (lambda text: text.replace('crop_size: [224, 224]', 'crop_size: [224]'), 'expected 2'),
    (lambda text: text.replace('freeze_batchnorm: true', 'freeze_batchnorm: 1'),
     'expected bool'),
    (lambda text: text.replace('  sensor_noise: 1.0\n', ''), 'every family'),
    (lambda text: text.replace('  sensor_noise: 1.0\n', '  sensor_noise: 1.0\n  haze: 1.0\n'),
     'every family'),
    (lambda text: text.replace('photo_sets: [', 'photo_sets: [audit, '), 'photo_sets'),
    (lambda text: text.replace('starts_from: finetune', 'starts_from: train'),
     'expected \'finetune\''),
    (lambda text: text.replace('hands_on: last_epoch', 'hands_on: latest'), 'hands_on'),
    # Settings of explorations that no shipped recipe kept (experiments/README.md).
    *[(lambda text, line=line: text + line, 'unknown settings')
      for line in REMOVED_SETTINGS.values()],
])
def test_a_recipe_with_an_unknown_missing_or_mistyped_setting_is_refused(tmp_path, edit,
                                                                         message):
    folder = _recipes_copy(tmp_path)
    path = folder / '3_refine.yaml'
    path.write_text(edit(path.read_text()))
    with pytest.raises(ValueError, match=message):
        recipe.load_stages(folder)


def test_broken_chains_and_calibrations_are_refused(tmp_path):
    folder = _recipes_copy(tmp_path)
    (folder / '4_regrid.yaml').unlink()
    with pytest.raises(ValueError, match='numbered 5, expected 4'):
        recipe.load_stages(folder)
    folder = _recipes_copy(tmp_path / 'second')
    path = folder / 'calibration.yaml'
    path.write_text(path.read_text().replace('starts_from: reexpose', 'starts_from: extend'))
    with pytest.raises(ValueError, match='last stage'):
        recipe.load_calibration(folder)
    path.write_text(path.read_text().replace('starts_from: extend', 'starts_from: reexpose')
                    + 'family_loss_weight: 0.5\n')
    with pytest.raises(ValueError, match='unknown settings'):
        recipe.load_calibration(folder)
    (folder / '8_more.yaml').write_text('[]\n')
    with pytest.raises(ValueError, match='dataset must be one of'):
        recipe.load_stages(folder)


def test_overrides_convert_as_the_recipes_do_and_refuse_what_a_stage_lacks():
    refine = recipe.stage('refine')
    changed = refine.with_overrides({'scales': [1, 0.5], 'epochs': 1,
                                     'family_weights': {'sensor_noise': 3}})
    assert changed.scales == (1.0, 0.5) and changed.epochs == 1
    # A partial table changes only the families it names.
    assert changed.family_weights == {**refine.family_weights, 'sensor_noise': 3.0}
    assert refine.epochs == 3 and refine.family_weights['sensor_noise'] == 1.0
    for bad in ({'anchor_loss_weight': 1.0}, {'seed_offset': 2}, {'starts_from': 'train'},
                {'low_key_share': 0.5}, {'unanchored_families': []},
                *({key: None} for key in REMOVED_SETTINGS)):
        with pytest.raises(ValueError, match='no setting'):
            refine.with_overrides(bad)
    with pytest.raises(ValueError, match='expected int'):
        refine.with_overrides({'epochs': 'two'})
    with pytest.raises(ValueError, match='no setting'):
        recipe.stage('train').with_overrides({'scales': [1.0]})


@pytest.mark.parametrize('argv, message', [
    (['finetune', '--set', 'anchor_loss_weight=1'], "--set 'anchor_loss_weight=1': expected"),
    (['train', '--set', 'scales=[1, 0.5]'], "--set 'scales=[1, 0.5]': expected"),
    (['finetune', '--set', 'whole_share=0.3'], "--set 'whole_share=0.3': expected"),
    (['refine', '--set', 'exposure_key="window"'], "--set 'exposure_key=\"window\"': expected"),
    (['refine', '--set', 'epochs'], 'expected KEY=JSON'),
    (['refine', '--set', 'epochs=two'], 'not JSON'),
    (['refine', '--set', 'epochs="two"'], 'epochs: expected int'),
    (['calibrate', '--set', 'lr=0.1'], 'training stages run (none)'),
])
def test_the_command_line_refuses_settings_no_stage_run_has(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv + ['--work-dir', str(tmp_path / 'work')])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    # Refused before any step ran.
    assert not (tmp_path / 'work').exists()


def test_the_steps_run_in_order_each_stage_from_the_one_before(tmp_path, monkeypatch):
    """`all` runs every step in order: stage 1 from a random initialisation with the
    build's seed, each ladder stage from the weights the stage before it hands on, with
    the build's seed + its seed offset and its recipe with the command line's overrides;
    then the calibration, the reports on each held-out set and the shipping steps."""
    assert list(stages.steps()) == STEPS
    calls = []

    def record(name):
        return lambda *args, **kwargs: calls.append((name, args, kwargs))

    for module, function in ((photos, 'fetch_photos'), (heldout, 'write_validation_set'),
                             (training, 'train_crops'), (training, 'pack'),
                             (training, 'train_ladders'), (calibration, 'calibrate'),
                             (report, 'brisque_baseline'), (report, 'report'),
                             (export, 'export'), (export, 'write_golden_scores')):
        monkeypatch.setattr(module, function, record(function))
    monkeypatch.setattr(heldout, 'present', lambda work_dir: list(heldout.HELD_OUT_SETS))
    out = tmp_path / 'export'
    assert main(['all', '--work-dir', str(tmp_path), '--seed', '5', '--iters-per-epoch', '2',
                 '--set', 'lr=0.001', '--export-dir', str(out)]) == 0
    names = [name for name, _, _ in calls]
    sets = len(heldout.HELD_OUT_SETS)  # validation and audit, of wallpapers and of gcompris
    assert sets == 4
    assert names == (['fetch_photos'] + ['write_validation_set'] * sets
                     + ['train_crops', 'pack'] + ['train_ladders'] * 6 + ['calibrate']
                     + ['brisque_baseline'] * sets + ['report'] * sets
                     + ['export', 'write_golden_scores'])
    assert calls[0][1] == (tmp_path, 5)
    assert [c[1][2] for c in calls[1:1 + sets]] == list(heldout.HELD_OUT_SETS)
    (_, (work_dir, seed), kwargs), = [c for c in calls if c[0] == 'train_crops']
    assert (work_dir, seed) == (tmp_path, 5)
    assert kwargs['recipe'] == dataclasses.replace(recipe.stage('train'), iters_per_epoch=2,
                                                   lr=0.001)
    ladders = [c for c in calls if c[0] == 'train_ladders']
    shipped = recipe.load_stages()
    for (_, (work_dir, seed), kwargs), stage in zip(ladders, shipped[1:]):
        before = shipped[stage.order - 2]
        handed_on = 'output_best' if before.hands_on == 'best_epoch' else 'output'
        assert (work_dir, seed) == (tmp_path, 5 + stage.seed_offset)
        assert kwargs['init'] == tmp_path / before.name / handed_on / WEIGHTS_FILE
        assert kwargs['recipe'] == dataclasses.replace(stage, iters_per_epoch=2, lr=0.001)
        assert kwargs['device'] is None
    assert ladders[0][2]['init'] == tmp_path / 'train' / 'output_best' / WEIGHTS_FILE
    assert calls[-2][1] == (tmp_path, out) and calls[-1][1] == (out, )


def test_each_continuation_starts_from_the_stage_before_it(tmp_path, monkeypatch):
    """One continuation run alone: from the weights of the stage just before it, with
    its own seed offset and settings; the command line's overrides win over the recipe's."""
    steps = list(stages.steps())
    shipped = recipe.load_stages()
    assert steps.index('calibrate') == steps.index(shipped[-1].name) + 1
    ladder = steps[steps.index('finetune'):steps.index('calibrate')]
    assert ladder == [s.name for s in shipped[1:]]
    continuations = shipped[2:]
    offsets = [s.seed_offset for s in continuations]
    assert len(set(offsets)) == len(offsets) and min(offsets) > 0

    calls = []
    monkeypatch.setattr(training, 'train_ladders',
                        lambda *args, **kwargs: calls.append((args, kwargs)))
    last = continuations[-1]
    main([last.name, '--work-dir', str(tmp_path), '--seed', '5', '--epochs', '1',
          '--device', 'cpu', '--init', str(tmp_path / 'ignored.pt')])
    (work_dir, seed), kwargs = calls[0]
    assert (work_dir, seed) == (tmp_path, 5 + last.seed_offset)
    assert kwargs['init'] == tmp_path / ladder[-2] / 'output' / WEIGHTS_FILE
    assert kwargs['recipe'] == dataclasses.replace(last, epochs=1)
    assert kwargs['device'] == 'cpu'
    # --init is what stage 2 starts from.
    calls.clear()
    main(['finetune', '--work-dir', str(tmp_path), '--init', str(tmp_path / 'stage1.pt')])
    (_, seed), kwargs = calls[0]
    assert seed == 0 and kwargs['init'] == tmp_path / 'stage1.pt'
    assert kwargs['recipe'] == recipe.stage('finetune')


def test_init_replaces_the_first_stages_weights_only():
    """``--init`` stands in for what the first stage hands on: the stage that starts
    from it takes ``--init``, every other from the stage before it."""
    work, given = Path('W'), Path('given.pt')
    shipped = recipe.load_stages()
    build = stages.Build(work_dir=work, init=given)
    starts = {s.name: stages.starting_weights(build, s) for s in shipped[1:]}
    assert starts == {s.name: given if s.starts_from == shipped[0].name
                      else training.weights_of(work, s.starts_from) for s in shipped[1:]}
    assert [name for name, path in starts.items() if path == given] == [shipped[1].name]
    without = stages.Build(work_dir=work)
    assert stages.starting_weights(without, shipped[1]) == training.weights_of(
        work, shipped[0].name)


def test_calibration_matches_each_levels_mean_score_to_its_target():
    """Logits at half the slope of the targets' and with a content offset per image as
    large as the steps between levels: the fit restores the slope, and every level's mean
    score lands near its target, where a per-image least-squares fit would stay flat."""
    rng = np.random.default_rng(0)
    levels = np.array([0.9, 0.73125, 0.5625, 0.39375, 0.225])
    targets = np.repeat(levels, 200)
    logits = 0.5 * np.log(targets / (1 - targets)) + rng.normal(0, 0.8, targets.size)
    scale, shift, record = calibration.fit_level_calibration(logits.tolist(), targets.tolist())
    assert scale > 2.0
    for level in levels:
        entry = record['levels'][f'{level:g}']
        assert entry['images'] == 200
        assert abs(entry['mean_after'] - level) < 0.05, (level, entry)
    before = record['levels']['0.9']['mean_before'] - record['levels']['0.225']['mean_before']
    after = record['levels']['0.9']['mean_after'] - record['levels']['0.225']['mean_after']
    assert before < 0.45 < after
    with pytest.raises(RuntimeError, match='reversed'):
        calibration.fit_level_calibration((-logits).tolist(), targets.tolist())


def test_calibration_keeps_the_samples_margin_where_the_free_fit_breaks_it():
    """Targets spread wider than the logits: the free level fit steepens the map until a
    high logit and one a little below it score almost alike. Asked to keep them 0.1
    apart, the fit gives up as little of the level fit as it must: the margin is kept,
    close to exactly (on the boundary, not inside it), at a cost to the levels."""
    fit = calibration.fit_level_calibration
    rng = np.random.default_rng(1)
    levels = np.array([0.9, 0.73125, 0.5625, 0.39375, 0.225])
    targets = np.repeat(levels, 100)
    logits = 0.3 * np.log(targets / (1 - targets)) + rng.normal(0, 0.3, targets.size)
    top, below = 1.2, 0.9
    scale, shift, free = fit(logits.tolist(), targets.tolist())
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    assert sigmoid(scale * top + shift) - sigmoid(scale * below + shift) < 0.1
    scale, shift, kept = fit(logits.tolist(), targets.tolist(),
                             keep_below=(top, [below, -1.0], 0.1))
    margin = sigmoid(scale * top + shift) - sigmoid(scale * below + shift)
    assert 0.1 <= margin < 0.1 + 1e-3
    assert kept['kept_margin']['margin'] == pytest.approx(margin)
    assert kept['kept_margin']['free_fit']['margin'] < 0.1
    worse = [abs(kept['levels'][f'{v:g}']['mean_after'] - v)
             - abs(free['levels'][f'{v:g}']['mean_after'] - v) for v in levels]
    assert sum(worse) > 0
    # A margin the free fit keeps leaves it as it is.
    same = fit(logits.tolist(), targets.tolist(), keep_below=(top, [-1.0], 0.1))
    assert same[:2] == fit(logits.tolist(), targets.tolist())[:2]


def test_calibration_fits_on_the_validation_photos_not_the_training_photos(tmp_path):
    """`calibrate` reads the validation set (held-out photos, every family at every
    severity), not the photos the network trained on: each row is a written image with
    its own target."""
    rng = np.random.default_rng(0)
    for split_name, name in ((heldout.VALSET.split, 'held'), (photos.TRAIN_SPLIT, 'trained')):
        (tmp_path / 'pristine' / split_name).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / 'pristine' / split_name / f'{name}.png'),
                    rng.integers(0, 256, (40, 64, 3), dtype=np.uint8))
    with pytest.raises(FileNotFoundError):
        list(calibration.calibration_rows(tmp_path))
    heldout.write_validation_set(tmp_path, 0, heldout.VALSET)
    rows = heldout.read_rows(tmp_path, heldout.VALSET)
    rows_seen = list(calibration.calibration_rows(tmp_path))
    assert len(rows_seen) == len(rows) == len(list(heldout.views()))
    assert {r['photo'] for r in rows} == {'held'}
    for (rgb, target), row, (_, _, views) in zip(rows_seen, rows, heldout.views()):
        assert target == pytest.approx(quality_target(views), abs=1e-12)
        assert np.array_equal(rgb, cv2.imread(row[heldout.IMAGE])[:, :, ::-1])


def test_largest_jpeg_finds_the_biggest_image_among_a_containers_entries():
    """An Edje file (the audit photos' source) holds each image as JPEG streams at
    several sizes among other binary entries: the largest decodable one comes back, as
    RGB, whatever order the streams are in and whatever sits between them."""
    rng = np.random.default_rng(0)
    big = np.zeros((48, 80, 3), np.uint8)
    big[:, :, 0] = 200  # red in RGB
    small = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)

    def jpeg(rgb):
        return cv2.imencode('.jpg', rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()

    junk = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    # A false start marker whose stream does not decode is skipped.
    container = junk + jpeg(small) + junk + photos.JPEG_START + junk + jpeg(big) + junk
    found = photos.largest_jpeg(container)
    assert found.shape == big.shape
    assert np.abs(found.astype(int) - big).max() <= 3
    with pytest.raises(ValueError, match='no JPEG'):
        photos.largest_jpeg(junk)


def test_webp_images_are_found_whole_among_an_archives_entries(tmp_path):
    """A Qt resource archive keeps each WebP file as its RIFF....WEBP bytes among names
    and other entries: each comes back whole, in order; other RIFF forms and a chunk cut
    short are skipped. gcompris_photos keeps the ones with both sides >= 600, named in
    archive order, with their coded bits per pixel; clean_scale never enlarges."""
    rng = np.random.default_rng(0)

    def webp(height, width, quality=80):
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        return cv2.imencode('.webp', rgb, [cv2.IMWRITE_WEBP_QUALITY, quality])[1].tobytes()

    junk = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    big, icon, wide = webp(640, 700), webp(48, 48), webp(600, 900, quality=5)
    wave = b'RIFF' + (4).to_bytes(4, 'little') + b'WAVE'
    cut = big[:100]  # its size says more than is there
    container = junk + big + junk + wave + icon + junk + wide + cut
    assert photos.webp_images(container) == [big, icon, wide]
    rcc_dir = tmp_path / 'rcc'
    rcc_dir.mkdir()
    for archive in photos.GCOMPRIS_ARCHIVES:
        (rcc_dir / f'{archive}.rcc').write_bytes(container)
    found = photos.gcompris_photos(rcc_dir)
    first = photos.GCOMPRIS_ARCHIVES[0]
    assert sorted(found) == sorted(f'{a}_{i:02d}' for a in photos.GCOMPRIS_ARCHIVES
                                   for i in range(2))
    rgb, bits = found[f'{first}_00']
    assert rgb.shape == (640, 700, 3) and bits == pytest.approx(8 * len(big) / (640 * 700))
    assert found[f'{first}_01'][0].shape == (600, 900, 3)
    assert photos.clean_scale(4.0) == 1.0
    assert photos.clean_scale(0.25) == pytest.approx(0.5)


def test_held_out_sets_are_disjoint_from_training_and_from_each_other():
    every_set = [name for names in photos.PHOTO_SETS.values() for name in names]
    training_photos = set(every_set) - set(photos.HOLDOUT)
    assert training_photos == set(photos.MATE_PHOTOS + photos.PLASMA_PHOTOS
                                  + photos.LOMIRI_PHOTOS
                                  + [Path(name).stem for name in photos.LXQT_PHOTOS]
                                  + photos.NATIVE_SCALE_PHOTOS
                                  + photos.PHOTO_SETS['gcompris']) - set(photos.HOLDOUT)
    audit = set(photos.AUDIT_PHOTOS)
    assert len(audit) == len(photos.AUDIT_PHOTOS) >= 10
    assert not audit & (training_photos | set(photos.HOLDOUT))
    # gcompris: 76 photos, 13 held out, 13 audit, the rest a training set of its own
    gc_train = set(photos.PHOTO_SETS['gcompris'])
    gc_holdout, gc_audit = set(photos.GCOMPRIS_HOLDOUT), set(photos.GCOMPRIS_AUDIT)
    assert len(photos.GCOMPRIS_PHOTOS) == len(set(photos.GCOMPRIS_PHOTOS)) == 76
    assert (len(gc_holdout), len(gc_audit), len(gc_train)) == (13, 13, 50)
    assert gc_train | gc_holdout | gc_audit == set(photos.GCOMPRIS_PHOTOS)
    assert not (gc_holdout & gc_audit or gc_train & (gc_holdout | gc_audit))
    assert {photos.gcompris_split(n) for n in gc_holdout} == {photos.GCOMPRIS_HOLDOUT_SPLIT}
    assert {photos.gcompris_split(n) for n in gc_audit} == {photos.GCOMPRIS_AUDIT_SPLIT}
    assert {photos.gcompris_split(n) for n in gc_train} == {photos.TRAIN_SPLIT}
    assert set(photos.HOLDOUT) < set(photos.MATE_PHOTOS + photos.PLASMA_PHOTOS
                                     + photos.LOMIRI_PHOTOS
                                     + [Path(n).stem for n in photos.LXQT_PHOTOS])
    # No stage trains on a held-out or audit photo.
    for stage in recipe.load_stages():
        chosen = set(photos.training_photos(stage.photo_sets))
        assert chosen and not chosen & (set(photos.HOLDOUT) | audit), stage.name
    files = {h.csv(Path('W')) for h in heldout.HELD_OUT_SETS}
    files |= {h.output(Path('W'), 'report.json') for h in heldout.HELD_OUT_SETS}
    assert len(files) == 2 * len(heldout.HELD_OUT_SETS)


def test_the_photo_catalogue_is_the_one_the_shipped_model_was_built_from():
    """recipes/photos.yaml as photos.py reads it: the catalogue photos.py held in code
    until commit d225b38, to the byte (SHA-256 of its JSON, taken from that code)."""
    names = ['DEBIAN_PACKAGES', 'MATE_PHOTOS', 'PLASMA_PHOTOS', 'LXQT_PHOTOS',
             'LOMIRI_PHOTOS', 'NATIVE_SCALE_PHOTOS', 'HOLDOUT', 'AUDIT_PHOTOS',
             'GCOMPRIS_PACKAGE', 'GCOMPRIS_RCC_DIR', 'GCOMPRIS_ARCHIVES', 'GCOMPRIS_COUNTS',
             'GCOMPRIS_MIN_SIDE', 'GCOMPRIS_CLEAN_BITS', 'GCOMPRIS_HOLDOUT',
             'GCOMPRIS_AUDIT', 'GCOMPRIS_PHOTOS', 'PHOTO_SETS']
    text = json.dumps({name: getattr(photos, name) for name in names})
    assert hashlib.sha256(text.encode()).hexdigest() == (
        '8533bb2332bc9593ec189e9ec1422503aeb22aa166e8144b398372ce1dab4d8a')
    assert photos.GCOMPRIS_MIN_SIDE == 600 and photos.GCOMPRIS_CLEAN_BITS == 1.0
    assert photos.GCOMPRIS_ARCHIVES == tuple(photos.GCOMPRIS_COUNTS)


@pytest.mark.parametrize('edit, message', [
    (lambda text: text + 'extra: [Bamboo]\n', 'expected the keys'),
    (lambda text: text.replace('  native_scale:', '  native:'), 'photo_sets: expected'),
    (lambda text: text.replace('  clean_bits: 1.0\n', ''), 'gcompris: expected'),
    (lambda text: '[]\n', 'expected the keys'),
])
def test_a_photo_catalogue_with_unknown_or_missing_keys_is_refused(tmp_path, edit, message):
    path = tmp_path / 'photos.yaml'
    path.write_text(edit(photos.CATALOGUE_FILE.read_text()))
    with pytest.raises(ValueError, match=message):
        photos.load_catalogue(path)


@pytest.mark.parametrize('shape, resized, window', [
    # (height, width): the area-filtered size that covers 1080 x 1920 (1920 x 1080 for
    # a portrait photo) and the centre window of it that is kept.
    ((2160, 3840), (1080, 1920), (0, 0)),
    ((3840, 2160), (1920, 1080), (0, 0)),
    ((2000, 2000), (1920, 1920), (420, 0)),
    ((1117, 1987), (1080, 1922), (0, 1)),
    ((1500, 4000), (1080, 2880), (0, 480)),
])
def test_working_scale_downscales_with_an_area_filter_and_crops_the_centre(shape, resized,
                                                                           window):
    rgb = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    out = photos.working_scale(rgb)
    top, left = window
    height, width = (1920, 1080) if shape[0] > shape[1] else (1080, 1920)
    expected = cv2.resize(rgb, resized[::-1], interpolation=cv2.INTER_AREA)[
        top:top + height, left:left + width]
    assert out.flags['C_CONTIGUOUS'] and np.array_equal(out, expected)


@pytest.mark.parametrize('shape', [(1000, 1000), (1050, 1900), (2500, 900), (1079, 5000)])
def test_working_scale_keeps_a_photo_too_small_to_cover_the_working_size(shape):
    rgb = np.zeros((*shape, 3), np.uint8)
    assert photos.working_scale(rgb) is rgb


def _write_scores(path, views):
    """A `report`-style scores CSV: (photo, family, severity, score, brisque) per view."""
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['image', 'photo', 'family', 'severity', 'target', 'score', 'brisque'])
        for photo, family, severity, score, brisque in views:
            writer.writerow([f'{photo}_{family}_{severity}.png', photo, family, severity,
                             '', score, brisque])


def _ladder(photo, clean, family_scores, brisque):
    """A photo's clean view and, per family, its views at severities 1-4."""
    views = [(photo, 'pristine', 0, clean, brisque[0])]
    for family, scores in family_scores.items():
        views += [(photo, family, level, score, brisque[level])
                  for level, score in enumerate(scores, start=1)]
    return views


def test_report_by_scene_key_splits_the_measures_at_the_clean_photos_mean_pixel(
        tmp_path, capsys):
    """Two held-out photos, one bright and one dark (mean pixel 200 and 30), and one
    bright audit photo. The bright photo's scores fall with severity in both families;
    the dark one's rise in the first. Each split's row carries its own photos' SRCCs,
    the audit set has no low-key row, both sets together weigh every (photo, family) the
    same, and BRISQUE (lower is better) is negated. Leaving
    the dark photo out leaves the held-out set without a low-key row too."""
    for folder, photo, value in (('holdout', 'Bright', 200), ('holdout', 'Dark', 30),
                                 ('audit', 'Pale', 180)):
        (tmp_path / 'pristine' / folder).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / 'pristine' / folder / f'{photo}.png'),
                    np.full((8, 12, 3), value, np.uint8))
    falling, rising = [0.8, 0.6, 0.4, 0.2], [0.92, 0.94, 0.96, 0.98]
    worsening, flat = [10, 20, 30, 40, 50], [30] * 5
    _write_scores(tmp_path / 'scores.csv',
                  _ladder('Bright', 0.9, {'blur': falling, 'noise': falling}, worsening)
                  + _ladder('Dark', 0.1, {'blur': rising, 'noise': [0.08, 0.06, 0.04, 0.02]}, flat))
    _write_scores(tmp_path / 'audit_scores.csv',
                  _ladder('Pale', 0.9, {'blur': falling, 'noise': rising}, worsening))

    assert split.main([str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [[cell.strip() for cell in line.strip('|').split('|')] for line in lines[2:]]
    by_split = {(r[1], r[2]): r[3:12] for r in rows}
    extra = {(r[1], r[2]): r[12:] for r in rows}
    assert set(by_split) == {('held out', 'all'), ('held out', 'mean pixel >= 60'),
                             ('held out', 'mean pixel < 60'), ('audit', 'all'),
                             ('audit', 'mean pixel >= 60'), ('both sets', 'all'),
                             ('both sets', 'mean pixel >= 60'),
                             ('both sets', 'mean pixel < 60')}
    # n, mean SRCC, weakest family, families < 0.88, BRISQUE mean SRCC, clean mean score,
    # lowest clean score, over-exposure above clean (no such family here), clean score vs
    # mean pixel SRCC (from 3 photos on)
    assert by_split['held out', 'all'] == ['2', '0.500', 'blur 0.000', '1', '0.500', '0.500',
                                           '0.100', '-', '-']
    assert by_split['held out', 'mean pixel >= 60'] == ['1', '1.000', 'blur 1.000', '0',
                                                         '1.000', '0.900', '0.900', '-', '-']
    assert by_split['held out', 'mean pixel < 60'] == ['1', '0.000', 'blur -1.000', '1',
                                                        '0.000', '0.100', '0.100', '-', '-']
    assert by_split['audit', 'all'] == ['1', '0.000', 'noise -1.000', '1', '1.000', '0.900',
                                        '0.900', '-', '-']
    # Both sets: blur 1, -1, 1 and noise 1, 1, -1 over the three photos; mean pixels
    # 200, 30, 180 against clean scores 0.9, 0.1, 0.9: SRCC sqrt(3)/2.
    assert by_split['both sets', 'all'] == ['3', '0.333', 'blur 0.333', '2', '0.667', '0.633',
                                            '0.100', '-', '0.866']
    assert by_split['both sets', 'mean pixel >= 60'] == ['2', '0.500', 'noise 0.000', '1',
                                                          '1.000', '0.900', '0.900', '-', '-']
    assert by_split['both sets', 'mean pixel < 60'] == by_split['held out', 'mean pixel < 60']
    # Then the strongest level's mean score, a clean photo above another's two strongest
    # levels, and the mean SRCC's bootstrap interval. Held out: severity 4 scores 0.2,
    # 0.2, 0.98, 0.02; Bright's clean 0.9 is above 2 of Dark's 4 strong views, Dark's
    # 0.1 above none of Bright's; photo SRCC means 1 (Bright) and 0 (Dark), drawn twice
    # with replacement: 1, 0.5 or 0.
    assert extra['held out', 'all'] == ['0.350', '0.250', '[0.000, 1.000]']
    # One photo: no pair of photos, an interval of one value.
    assert extra['held out', 'mean pixel >= 60'] == ['0.200', '-', '[1.000, 1.000]']

    assert split.main([str(tmp_path), '--exclude', 'Dark']) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split('|')[2:4] for line in lines[2:]] == [
        [' held out ', ' all '], [' held out ', ' mean pixel >= 60 '],
        [' audit ', ' all '], [' audit ', ' mean pixel >= 60 '],
        [' both sets ', ' all '], [' both sets ', ' mean pixel >= 60 ']]
    assert lines[2].split('|')[5].strip() == '1.000'


def test_clean_measures_count_mild_over_exposure_above_the_clean_photo():
    """Over-exposure at severities 1-3 above the photo's clean score counts (severity 4
    does not), per view; the clean scores' SRCC with mean pixel is -1 when the darkest
    photo scores best."""
    rows = []
    for photo, clean, over in (('A', 0.5, [0.6, 0.4, 0.55, 0.9]),
                               ('B', 0.8, [0.7, 0.6, 0.5, 0.4]),
                               ('C', 0.2, [0.1, 0.1, 0.1, 0.3])):
        rows.append({'photo': photo, 'family': 'pristine', 'severity': '0',
                     'score': str(clean)})
        rows += [{'photo': photo, 'family': 'over_exposure', 'severity': str(level),
                  'score': str(score)} for level, score in enumerate(over, start=1)]
    lowest, above, srcc = split.clean_measures(rows, {'A': 100, 'B': 10, 'C': 200})
    assert (lowest, above, srcc) == ('0.200', '0.222 of 9', '-1.000')


@pytest.mark.parametrize('shape', [(450, 600), (600, 450), (601, 1001)])
def test_held_out_gcompris_photos_are_enlarged_as_the_pipeline_enlarges_them(shape):
    """A small photo enlarged to the working size gives the network exactly the crop the
    small photo itself would (the pipeline's resize of the enlarged one is the identity),
    so its views are degraded at the scale the network sees."""
    from modelscope_iqa.config import PreprocessConfig
    from modelscope_iqa.preprocessors import decode, network_crop
    config = PreprocessConfig.from_mapping()
    rgb = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    enlarged = photos.at_network_scale(rgb)
    portrait = shape[0] > shape[1]
    assert enlarged.shape[:2] == (config.resize_size[::-1] if portrait else config.resize_size)
    assert np.array_equal(network_crop(decode(enlarged[:, :, ::-1].copy()), config),
                          network_crop(decode(rgb[:, :, ::-1].copy()), config))


def test_a_report_without_brisque_says_why_and_scores_the_model_alone(tmp_path, monkeypatch,
                                                                      our_model_dir):
    """``brisque_left_out``: BRISQUE is never computed, the report records the reason
    in its place, and the scores CSV leaves BRISQUE's column empty; the model's measures
    are those of its own scores."""
    def no_brisque(*args, **kwargs):
        raise AssertionError('BRISQUE computed although left out')

    monkeypatch.setattr(report, 'brisque_baseline', no_brisque)
    shutil.copytree(our_model_dir, tmp_path / 'model')
    valset = tmp_path / heldout.VALSET.name
    valset.mkdir()
    rows = []
    for photo in ('A', 'B'):
        image = make_image(90, 160, seed=ord(photo))
        for family, severity in [('pristine', 0)] + [('defocus_blur', s) for s in (1, 2, 3, 4)]:
            view = degrade(image, {family: float(severity)} if severity else {},
                           np.random.default_rng(severity))
            path = valset / f'{photo}_{family}_{severity}.png'
            cv2.imwrite(str(path), view[:, :, ::-1])
            rows.append([str(path), 4.5 - severity, photo, family, severity])
    with open(heldout.VALSET.csv(tmp_path), 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow([heldout.IMAGE, heldout.MOS, 'photo', 'family', 'severity'])
        writer.writerows(rows)

    result = report.report(tmp_path, heldout.VALSET, brisque_left_out='not wanted here')
    assert result['brisque'] == 'not run: not wanted here'
    assert json.loads((tmp_path / 'report.json').read_text())['brisque'] == result['brisque']
    with open(tmp_path / 'scores.csv', newline='') as f:
        scored = list(csv.DictReader(f))
    assert len(scored) == 10 and all(r['brisque'] == '' for r in scored)
    assert result['model']['photos'] == ['A', 'B']
    assert set(result['model']['srcc_by_family']) == {'defocus_blur'}
