"""Build the embedded default model, reproducibly, from freely licensed photos.

Steps (each can be run alone; ``all`` runs them in order):

  photos   apt-get download + dpkg -x the Debian wallpaper packages
           (plasma-workspace-wallpapers, mate-backgrounds, gnome-backgrounds), pick the
           photographs named below, bring each to the model's working scale (1080x1920)
           and split them by whole photo into train and holdout.
  valset   degrade every holdout photo by each distortion family at severities 1-4
           (plus the pristine photo) and write the images and a CSV with their targets.
  train    train from a seeded random initialisation with ModelScope's trainer on
           random degraded crops of the train photos (modelscope_iqa.synthetic).
  brisque  score the holdout set with BRISQUE (cached; needs `pip install .[train]`).
  report   score the holdout set with the trained model, and with BRISQUE; write SRCC
           of score vs severity per family to report.json.
  export   write the best checkpoint as float16 into modelscope_iqa/default_model/.

Usage:
  python scripts/build_default_model.py all --work-dir ~/iqa-default --seed 0
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import modelscope_iqa  # noqa: E402  (registers the plugin)
from modelscope_iqa.config import (CONFIGURATION_FILE, DatasetConfig,  # noqa: E402
                                   PreprocessConfig)
from modelscope_iqa.models import IqaMosNet, read_state_dict, save_weights  # noqa: E402
from modelscope_iqa.preprocessors.transforms import cover_size, oriented  # noqa: E402
from modelscope_iqa.synthetic import (FAMILIES, SyntheticDistortionDataset,  # noqa: E402
                                      degrade, quality_target)

LOG = logging.getLogger('build_default_model')

DEBIAN_PACKAGES = ('plasma-workspace-wallpapers', 'mate-backgrounds', 'gnome-backgrounds')
# The photographs among the packages' wallpapers (the rest are drawings and patterns),
# as paths under the extracted /usr/share; plasma wallpapers use their largest image.
# GreenMeadow is left out: at 1280x1024 it would be upscaled 1.5x, itself a
# resolution loss.
MATE_PHOTOS = ['Aqua', 'Blinds', 'Dune', 'FreshFlower', 'Garden', 'LadyBird', 'RainDrops',
               'Storm', 'TwoWings', 'Wood', 'YellowFlower']
PLASMA_PHOTOS = ['BytheWater', 'ColdRipple', 'ColorfulCups', 'DarkestHour', 'EveningGlow',
                 'FallenLeaf', 'Grey', 'Kite', 'OneStandsOut', 'Path', 'Volna',
                 'summer_1am']
# Whole photos held out from training, for validation and the report.
HOLDOUT = ['Dune', 'Wood', 'ColorfulCups', 'EveningGlow', 'Path']
# Held-out photos whose degraded versions are scored after every training epoch.
EPOCH_EVAL_PHOTOS = 3
EPOCH_EVAL_SEVERITIES = (2, 4)
VALIDATION_SEVERITIES = (1, 2, 3, 4)

TRAINING = {
    'crop_size': (256, 256),
    'batch_size': 16,
    'iters_per_epoch': 500,
    'epochs': 6,
    'lr': 3e-4,
    'precision': 'bf16',
    'workers': 1,
}


def _run(command, cwd=None):
    LOG.info('$ %s', ' '.join(command))
    subprocess.run(command, check=True, cwd=cwd)


def fetch_photos(work_dir: Path) -> None:
    debs, root = work_dir / 'debs', work_dir / 'debs' / 'root'
    debs.mkdir(parents=True, exist_ok=True)
    if not list(debs.glob('*.deb')):
        _run(['apt-get', 'download', *DEBIAN_PACKAGES], cwd=debs)
    for deb in sorted(debs.glob('*.deb')):
        _run(['dpkg', '-x', str(deb), str(root)])
    share = root / 'usr' / 'share'
    sources = {name: share / 'backgrounds' / 'mate' / 'nature' / f'{name}.jpg'
               for name in MATE_PHOTOS}
    for name in PLASMA_PHOTOS:
        images = list((share / 'wallpapers' / name / 'contents' / 'images').glob('*'))
        sources[name] = max(images, key=lambda p: _pixels(p.stem))
    out = work_dir / 'pristine'
    for name, path in sorted(sources.items()):
        split = 'holdout' if name in HOLDOUT else 'train'
        target = out / split / f'{name}.png'
        target.parent.mkdir(parents=True, exist_ok=True)
        rgb = _working_scale(modelscope_iqa.preprocessors.load_rgb(str(path)))
        cv2.imwrite(str(target), rgb[:, :, ::-1])
        LOG.info('%s -> %s %s', path.name, target, rgb.shape)


def _pixels(stem: str) -> int:
    try:
        width, height = (int(v) for v in stem.split('x'))
        return width * height
    except ValueError:
        return 0


def _working_scale(rgb: np.ndarray) -> np.ndarray:
    """Downscale cleanly (area filter) to cover the preprocessor's resize size, then
    centre-crop to exactly that size: a pristine image at the network's scale."""
    config = PreprocessConfig.from_mapping()
    height, width = oriented(config.resize_size, portrait=rgb.shape[0] > rgb.shape[1])
    out_h, out_w = cover_size(rgb.shape[0], rgb.shape[1], height, width)
    resized = cv2.resize(rgb, (out_w, out_h),
                         interpolation=cv2.INTER_AREA if out_h < rgb.shape[0] else cv2.INTER_CUBIC)
    top, left = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
    return np.ascontiguousarray(resized[top:top + height, left:left + width])


def write_validation_set(work_dir: Path, seed: int) -> None:
    config = json.loads(CONFIGURATION_FILE.read_text())
    mos_scale = config['dataset']['mos_scale']
    out = work_dir / 'valset'
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, path in enumerate(sorted((work_dir / 'pristine' / 'holdout').glob('*.png'))):
        rgb = cv2.imread(str(path))[:, :, ::-1]
        recipes = [('pristine', 0)] + [(f, s) for f in sorted(FAMILIES)
                                       for s in VALIDATION_SEVERITIES]
        for family, severity in recipes:
            rng = np.random.default_rng([seed, index, severity, len(family)])
            severities = {} if family == 'pristine' else {family: float(severity)}
            image = degrade(rgb, severities, rng)
            target = out / f'{path.stem}_{family}_{severity}.png'
            cv2.imwrite(str(target), np.ascontiguousarray(image[:, :, ::-1]))
            rows.append({'image:FILE': str(target), 'mos': quality_target(severities) / mos_scale,
                         'photo': path.stem, 'family': family, 'severity': severity})
    with open(out / 'valset.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    LOG.info('%d validation images in %s', len(rows), out)


def _read_rows(work_dir: Path):
    with open(work_dir / 'valset' / 'valset.csv', newline='') as f:
        return list(csv.DictReader(f))


def _epoch_eval_rows(rows):
    photos = sorted({r['photo'] for r in rows})[:EPOCH_EVAL_PHOTOS]
    return [r for r in rows if r['photo'] in photos
            and (r['family'] == 'pristine' or int(r['severity']) in EPOCH_EVAL_SEVERITIES)]


def train(work_dir: Path, seed: int, overrides=None) -> None:
    from modelscope.trainers import build_trainer

    init_dir = work_dir / 'init_model'
    init_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONFIGURATION_FILE, init_dir / 'configuration.json')
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        save_weights(IqaMosNet(), str(init_dir / 'pytorch_model.pt'))

    photos = sorted(str(p) for p in (work_dir / 'pristine' / 'train').glob('*.png'))
    settings = {**TRAINING, **(overrides or {})}
    LOG.info('training settings: %s', settings)
    train_dataset = SyntheticDistortionDataset(
        photos, length=settings['iters_per_epoch'] * settings['batch_size'],
        crop_size=settings['crop_size'], seed=seed)
    eval_dataset = modelscope_iqa.ImageQualityAssessmentMosDataset(
        _epoch_eval_rows(_read_rows(work_dir)))

    def configure(cfg):
        cfg.model.train_precision = settings['precision']
        cfg.train.max_epochs = settings['epochs']
        cfg.train.dataloader = {'batch_size_per_gpu': settings['batch_size'],
                                'workers_per_gpu': settings['workers'], 'shuffle': True,
                                'drop_last': True}
        cfg.train.optimizer = {'type': 'Adam', 'lr': settings['lr']}
        cfg.train.lr_scheduler = {'type': 'CosineAnnealingLR', 'T_max': settings['epochs'],
                                  'options': {'by_epoch': True}}
        cfg.evaluation.dataloader = {'batch_size_per_gpu': 1, 'workers_per_gpu': 0,
                                     'shuffle': False}
        return cfg

    trainer = build_trainer(default_args=dict(
        model=str(init_dir), train_dataset=train_dataset, eval_dataset=eval_dataset,
        work_dir=str(work_dir / 'train'), cfg_modify_fn=configure, seed=seed))
    trainer.train()


def _family_srcc(rows, scores, sign=1.0):
    from scipy.stats import spearmanr
    pristine = [s for r, s in zip(rows, scores) if r['family'] == 'pristine']
    result = {}
    for family in sorted(FAMILIES):
        picked = [(int(r['severity']), s) for r, s in zip(rows, scores) if r['family'] == family]
        severities = [0] * len(pristine) + [p[0] for p in picked]
        values = pristine + [p[1] for p in picked]
        # Quality falls with severity: report SRCC of quality vs. -severity.
        result[family] = float(spearmanr(values, [-v for v in severities])[0]) * sign
    return result


def brisque_score(scorer, rgb: np.ndarray) -> float:
    """BRISQUE of an RGB image (lower is better), with the ``brisque`` 0.2.0 package.

    Its ``score()`` fails under numpy 2: the features come out as 1-element arrays
    that ``float()`` refuses. This computes the same features through the package's own
    methods and flattens them before its SVR.
    """
    import skimage.color
    grey = skimage.color.rgb2gray(rgb)
    half = cv2.resize(grey, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    features = np.concatenate([scorer.calculate_brisque_features(grey, 7, 7 / 6),
                               scorer.calculate_brisque_features(half, 7, 7 / 6)])
    flat = np.array([np.asarray(f, dtype=np.float64).reshape(-1)[0] for f in features])
    return float(scorer.calculate_image_quality_score(flat))


def brisque_baseline(work_dir: Path) -> list:
    """BRISQUE of every validation image, cached in brisque.json (it does not depend on
    the trained model, so it can run while training does)."""
    cache = work_dir / 'brisque.json'
    rows = _read_rows(work_dir)
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if [c['image'] for c in cached] == [r['image:FILE'] for r in rows]:
            return [c['brisque'] for c in cached]
    from brisque import BRISQUE
    scorer = BRISQUE(url=False)
    scores = [brisque_score(scorer, cv2.imread(r['image:FILE'])[:, :, ::-1]) for r in rows]
    cache.write_text(json.dumps([{'image': r['image:FILE'], 'brisque': b}
                                 for r, b in zip(rows, scores)], indent=1))
    return scores


def report(work_dir: Path) -> dict:
    from modelscope.pipelines import pipeline
    from modelscope.utils.constant import Tasks
    from modelscope_iqa.metrics import iqa_metrics

    model_dir = work_dir / 'train' / 'output_best'
    iqa = pipeline(Tasks.image_quality_assessment_mos, model=str(model_dir))
    rows = _read_rows(work_dir)
    scores = [iqa(r['image:FILE'])['score'] for r in rows]
    targets = [float(r['mos']) * DatasetConfig.from_mapping().mos_scale for r in rows]
    result = {'images': len(rows), 'photos': sorted({r['photo'] for r in rows}),
              'model': {'srcc_vs_severity': _family_srcc(rows, scores),
                        'overall': iqa_metrics(scores, targets),
                        'pristine_mean': float(np.mean(
                            [s for r, s in zip(rows, scores) if r['family'] == 'pristine']))}}
    try:
        brisque = brisque_baseline(work_dir)
        # BRISQUE: lower is better, so negate before ranking.
        result['brisque'] = {'srcc_vs_severity': _family_srcc(rows, [-b for b in brisque]),
                             'overall_srcc_vs_target': iqa_metrics([-b for b in brisque],
                                                                   targets)['srcc']}
    except ImportError as exc:
        result['brisque'] = f'not run: {exc}'
    (work_dir / 'report.json').write_text(json.dumps(result, indent=2))
    (work_dir / 'report.md').write_text(render_report(result))
    with open(work_dir / 'scores.csv', 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['image', 'family', 'severity', 'target', 'score'])
        for r, s, t in zip(rows, scores, targets):
            writer.writerow([Path(r['image:FILE']).name, r['family'], r['severity'], t, s])
    LOG.info('report: %s', json.dumps(result, indent=2))
    return result


def render_report(result: dict) -> str:
    """The report as a Markdown table (for the model card and the README)."""
    model = result['model']['srcc_vs_severity']
    brisque = result['brisque']['srcc_vs_severity'] if isinstance(result['brisque'], dict) \
        else {}
    lines = ['| degradation family | default model SRCC | BRISQUE SRCC |', '| --- | --- | --- |']
    for family in sorted(model):
        b = brisque.get(family)
        lines.append(f"| {family.replace('_', ' ')} | {model[family]:.3f} | "
                     f"{'' if b is None else f'{b:.3f}'} |")
    mean_model = float(np.mean(list(model.values())))
    mean_brisque = float(np.mean(list(brisque.values()))) if brisque else float('nan')
    lines.append(f'| **mean** | **{mean_model:.3f}** | **{mean_brisque:.3f}** |')
    overall = result['model']['overall']
    lines.append('')
    lines.append(f"All {result['images']} held-out images against their targets: "
                 f"PLCC {overall['plcc']:.3f}, SRCC {overall['srcc']:.3f}, "
                 f"KRCC {overall['krcc']:.3f}, RMSE {overall['rmse']:.3f}"
                 + (f"; BRISQUE SRCC {result['brisque']['overall_srcc_vs_target']:.3f}"
                    if brisque else '') + '.')
    lines.append(f"Mean score of the {len(result['photos'])} pristine held-out photos: "
                 f"{result['model']['pristine_mean']:.3f}.")
    return '\n'.join(lines) + '\n'


def export(work_dir: Path, out_dir: Path) -> None:
    state = read_state_dict(str(work_dir / 'train' / 'output_best' / 'pytorch_model.pt'))
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(half, out_dir / 'pytorch_model.pt')
    LOG.info('exported %s', out_dir / 'pytorch_model.pt')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('step', choices=['photos', 'valset', 'train', 'brisque', 'report',
                                         'export', 'all'])
    parser.add_argument('--work-dir', type=Path, required=True)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--epochs', type=int, help=f"default {TRAINING['epochs']}")
    parser.add_argument('--iters-per-epoch', type=int,
                        help=f"default {TRAINING['iters_per_epoch']}")
    parser.add_argument('--export-dir', type=Path,
                        default=REPO / 'modelscope_iqa' / 'default_model')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    args.work_dir.mkdir(parents=True, exist_ok=True)
    steps = ['photos', 'valset', 'train', 'report', 'export'] if args.step == 'all' else [args.step]
    for step in steps:
        LOG.info('== %s', step)
        if step == 'photos':
            fetch_photos(args.work_dir)
        elif step == 'valset':
            write_validation_set(args.work_dir, args.seed)
        elif step == 'train':
            overrides = {k: v for k, v in (('epochs', args.epochs),
                                           ('iters_per_epoch', args.iters_per_epoch))
                         if v is not None}
            train(args.work_dir, args.seed, overrides)
        elif step == 'brisque':
            brisque_baseline(args.work_dir)
        elif step == 'report':
            report(args.work_dir)
        else:
            export(args.work_dir, args.export_dir)
    return 0


if __name__ == '__main__':
    sys.exit(main())
