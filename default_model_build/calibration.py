"""The calibration after the last stage: ``sigmoid(a * logit + b)`` fitted so that each
quality level's mean score on the validation photos is its target, as far as the
committed samples keep their margins, and folded into the head's last layer.

Why so: level means, not a least-squares fit per image: content moves a photo's logit as
much as quality does, and a per-image fit answers that by shrinking the slope, which
squeezes every score towards the middle (in one such fit pristine 0.75, severity 4 0.35,
against targets of 0.9 and 0.225). On the validation photos, not the training photos: on its own
training photos a network scores clean views far higher than on new ones (0.880 against
0.683), and a map fitted there leaves new photos short of the range. The samples' margin
binds because the level fit alone steepens the map until clean photos that score well
crowd the top (the clean sample 0.994, the under-exposed one 0.922).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch

from modelscope_iqa.config import PreprocessConfig
from modelscope_iqa.models.checkpoint import read_state_dict
from modelscope_iqa.models.network import IqaMosNet
from modelscope_iqa.preprocessors.crop import network_crop
from modelscope_iqa.preprocessors.decoding import Pixels, decode
from modelscope_iqa.preprocessors.scale import crop_to_float

from . import REPO, heldout, training
from .recipe import Calibration, load_calibration

LOG = logging.getLogger(__name__)
# The committed samples: one held-out photo (ColorfulCups), pristine and degraded.
SAMPLES_DIR = REPO / 'samples'


def calibration_rows(work_dir: Path):
    """The validation set's images (WORK/valset: the held-out photos pristine and under
    each family at severities 1-4, at full size, as inference sees them) and their
    targets. No stage trains on these photos."""
    if not heldout.VALSET.csv(work_dir).is_file():
        raise FileNotFoundError(f'no validation set in {work_dir}: run the valset step first')
    for row in heldout.read_rows(work_dir, heldout.VALSET):
        yield cv2.imread(row[heldout.IMAGE])[:, :, ::-1], heldout.DATASET.target(row[heldout.MOS])


def _logits(network: IqaMosNet, rgb: np.ndarray, config: PreprocessConfig) -> float:
    x = crop_to_float(network_crop(Pixels(rgb, 'RGB'), config))[None]
    with torch.no_grad():
        return float(network.forward_head(network.forward_features(x)))


def calibrate(work_dir: Path, settings: Optional[Calibration] = None) -> None:
    """Fit the calibration on the weights of the stage ``settings`` start from (the
    last), keeping each degraded committed sample ``settings.margin`` below the pristine
    one, and fold it into the head's last layer: the ranking is kept, and the scores use
    the range as the targets do (pristine 0.9, severity 4 0.225). The result replaces
    the candidate in WORK/model; WORK/calibration.json records the fit."""
    settings = settings or load_calibration()
    state = read_state_dict(str(training.weights_of(work_dir, settings.starts_from)))
    network = IqaMosNet()
    network.load_state_dict({k: v.float() for k, v in state.items()})
    network.eval()
    logits, targets = [], []
    config = PreprocessConfig.from_mapping()
    for rgb, target in calibration_rows(work_dir):
        logits.append(_logits(network, rgb, config))
        targets.append(target)
    samples = {p.name: _logits(network, decode(p).rgb(), config)
               for p in sorted(SAMPLES_DIR.glob('*.jpg'))}
    pristine = samples.pop(settings.pristine_sample)
    scale, shift, record = fit_level_calibration(
        logits, targets, keep_below=(pristine, list(samples.values()), settings.margin),
        settings=settings)
    record['samples'] = {name: float(torch.sigmoid(torch.tensor(scale * z + shift,
                                                                dtype=torch.float64)))
                         for name, z in {settings.pristine_sample: pristine, **samples}.items()}
    last = network.head.fc_out[2]
    with torch.no_grad():
        last.weight.mul_(scale)
        last.bias.mul_(scale).add_(shift)
    training.write_candidate(work_dir, network.state_dict())
    (work_dir / 'calibration.json').write_text(json.dumps(record, indent=2))
    LOG.info('calibration: %s', record)


def fit_level_calibration(logits, targets, keep_below=None,
                          settings: Optional[Calibration] = None):
    """``(a, b, record)``: ``sigmoid(a * logit + b)`` whose mean over the images of each
    target level is as close as it can be to that target (least squares over levels).
    ``keep_below=(top, others, margin)``: only maps that score every logit of ``others``
    at least ``margin`` below ``top`` (as a > 0, the highest of ``others`` decides);
    where the free fit breaks that, the best map that keeps it, searched on the grid of
    ``settings`` (default: the recipe's calibration) and refined on one ten times finer."""
    settings = settings or load_calibration()
    z = torch.tensor(logits, dtype=torch.float64)
    t = torch.tensor(targets, dtype=torch.float64)
    levels = sorted({round(float(v), 6) for v in t})
    members = [torch.isclose(t, torch.tensor(level, dtype=torch.float64)) for level in levels]
    level_t = torch.tensor(levels, dtype=torch.float64)

    def level_means(scale, shift):
        scores = torch.sigmoid(scale * z + shift)
        return torch.stack([scores[m].mean() for m in members])

    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([params], max_iter=settings.lbfgs_max_iter,
                                  line_search_fn='strong_wolfe')

    def closure():
        optimizer.zero_grad()
        loss = ((level_means(params[0], params[1]) - level_t)**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    scale, shift = (float(v) for v in params.detach())
    if scale <= 0:
        raise RuntimeError(f'calibration reversed the ranking (scale {scale})')
    free = (scale, shift)
    if keep_below is not None and float(_margin(keep_below, scale, shift)) < keep_below[2]:
        scale, shift = _kept_fit(z, members, level_t, keep_below, settings)
    with torch.no_grad():
        before, after = level_means(1.0, 0.0), level_means(scale, shift)
        mse_before = float(((torch.sigmoid(z) - t)**2).mean())
        mse_after = float(((torch.sigmoid(scale * z + shift) - t)**2).mean())
    record = {'images': len(targets), 'scale': scale, 'shift': shift,
              'fit': 'mean score per target level',
              'levels': {f'{level:g}': {'images': int(m.sum()), 'mean_before': float(b),
                                        'mean_after': float(a)}
                         for level, m, b, a in zip(levels, members, before, after)},
              'mse_before': mse_before, 'mse_after': mse_after}
    if keep_below is not None:
        record['kept_margin'] = {'required': keep_below[2],
                                 'free_fit': {'scale': free[0], 'shift': free[1],
                                              'margin': float(_margin(keep_below, *free))},
                                 'margin': float(_margin(keep_below, scale, shift))}
    return scale, shift, record


def _margin(keep_below, scale, shift):
    """The gap between the scores of the top logit and of the highest other one under
    ``sigmoid(scale * logit + shift)`` (scale and shift numbers or broadcastable float64
    tensors): with scale > 0 the smallest gap to any other."""
    top, others, _ = keep_below
    return (torch.sigmoid(torch.as_tensor(scale * top + shift, dtype=torch.float64))
            - torch.sigmoid(torch.as_tensor(scale * max(others) + shift, dtype=torch.float64)))


def _kept_fit(z, members, level_t, keep_below, settings: Calibration):
    """The level fit's best ``(a, b)`` that keeps ``keep_below``'s margin, on a grid
    (a > 0), then on a grid ten times finer around the best point."""
    margin = keep_below[2]
    step_a, step_b = settings.grid_step
    a_range, b_range = settings.scale_range, settings.shift_range
    for refine in (1, 10):
        a = torch.arange(a_range[0], a_range[1] + step_a / 2, step_a / refine,
                         dtype=torch.float64)[:, None]
        b = torch.arange(b_range[0], b_range[1] + step_b / 2, step_b / refine,
                         dtype=torch.float64)[None, :]
        loss = torch.zeros(a.shape[0], b.shape[1], dtype=torch.float64)
        # Image by image: a grid of every image's score at once would take gigabytes.
        for member, target in zip(members, level_t):
            total = torch.zeros_like(loss)
            for v in z[member]:
                total += torch.sigmoid(a * v + b)
            loss += (total / int(member.sum()) - target)**2
        loss[_margin(keep_below, a, b) < margin] = float('inf')
        if not torch.isfinite(loss).any():
            raise RuntimeError(f'no calibration keeps the samples {margin} apart')
        i, j = divmod(int(torch.argmin(loss)), loss.shape[1])
        best_a, best_b = float(a[i, 0]), float(b[0, j])
        a_range = (max(best_a - step_a, step_a / refine), best_a + step_a)
        b_range = (best_b - step_b, best_b + step_b)
    return best_a, best_b
