"""Issue 10's open question about stage 2: is the blur/JPEG inversion seen on detailed
held-out landscapes already there on the *training* photos (a learning problem), or only
on new content (a data problem)?

For each model and photo, degrade the whole photo with defocus blur and JPEG at
severities 0-4, then score (a) the network's full centre crop, as the pipeline does, and
(b) the ``WINDOWS`` most detailed 224 x 224 windows of that crop (the ladders' size),
and take Spearman's correlation of score against -severity per (photo, family) and per
window. Prints, per model, photo set, family and scope: the mean SRCC and the share of
inverted orders (SRCC < 0).

    python experiments/tools/diagnose_texture_inversion.py WORK_DIR MODEL_DIR [MODEL_DIR ...]

WORK_DIR is a build work folder (``pristine/train`` and ``pristine/holdout`` PNGs,
written by the build's ``photos`` step: ``python -m default_model_build photos``).
"""
import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.stats import spearmanr

from modelscope_iqa.hub import load_model, open_model_folder
from modelscope_iqa.preprocessors import Pixels, network_crop
from modelscope_iqa.synthetic.distortions import FAMILIES

FAMILIES_CHECKED = ('defocus_blur', 'jpeg_compression')
SEVERITIES = (0, 1, 2, 3, 4)
WINDOW = 224
WINDOWS = 4
SEED = 0


def detailed_windows(crop: np.ndarray, count: int):
    """Top-left corners of the ``count`` non-overlapping windows with the most detail
    (variance of the Laplacian), on a grid of window-size steps."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    detail = cv2.Laplacian(grey, cv2.CV_32F)
    cells = [(float(detail[y:y + WINDOW, x:x + WINDOW].var()), y, x)
             for y in range(0, crop.shape[0] - WINDOW + 1, WINDOW)
             for x in range(0, crop.shape[1] - WINDOW + 1, WINDOW)]
    return [(y, x) for _, y, x in sorted(cells, reverse=True)[:count]]


def srcc_against_severity(scores) -> float:
    return float(spearmanr(scores, [-s for s in SEVERITIES]).statistic)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dir', type=Path)
    parser.add_argument('models', nargs='+')
    parser.add_argument('--train-photos', type=int, default=12,
                        help='training photos used (the first N by name)')
    args = parser.parse_args(argv)
    sets = {'train': sorted((args.work_dir / 'pristine' / 'train').glob('*.png'))
            [:args.train_photos],
            'holdout': sorted((args.work_dir / 'pristine' / 'holdout').glob('*.png'))}
    for model_dir in args.models:
        folder = open_model_folder(model_dir)
        network = load_model(folder).inference_network('fp32', 'cpu', folder.preprocess_config)
        config = folder.preprocess_config
        print(f'\n{model_dir}')
        print(f'{"photos":8} {"family":17} {"scope":7} {"mean SRCC":>9} {"inverted":>9} '
              f'{"n":>4}')
        for set_name, photos in sets.items():
            found = {(f, s): [] for f in FAMILIES_CHECKED for s in ('full', 'window')}
            for photo in photos:
                rgb = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
                windows = detailed_windows(network_crop(Pixels(rgb, 'RGB'), config), WINDOWS)
                for family in FAMILIES_CHECKED:
                    rng = np.random.default_rng(SEED)
                    crops = [network_crop(Pixels(np.ascontiguousarray(
                        rgb if s == 0 else FAMILIES[family](rgb, s, rng)), 'RGB'), config)
                        for s in SEVERITIES]
                    full = network(torch.from_numpy(np.stack(crops))).tolist()
                    found[(family, 'full')].append(srcc_against_severity(full))
                    for y, x in windows:
                        cut = np.stack([c[y:y + WINDOW, x:x + WINDOW] for c in crops])
                        scores = network(torch.from_numpy(np.ascontiguousarray(cut))).tolist()
                        found[(family, 'window')].append(srcc_against_severity(scores))
            for (family, scope), values in found.items():
                values = np.array(values)
                print(f'{set_name:8} {family:17} {scope:7} {values.mean():9.3f} '
                      f'{(values < 0).mean():9.0%} {len(values):4d}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
