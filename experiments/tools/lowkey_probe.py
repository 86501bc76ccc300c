"""Issue 32: what does a clean photo's score read on low-key scenes?

For every clean photo of a build's four held-out sets (the wallpapers' and gcompris'
held-out and audit photos, WORK/pristine/SPLIT/PHOTO.png): its mean pixel, its fine
detail (the median absolute difference between the grey image and its Gaussian blur of
sigma DETAIL_SIGMA, in grey levels) and each model's score. Printed per source: the rank
correlation (SRCC) of the clean scores with mean pixel and with detail. Then, for each
low-key photo (mean pixel under report_by_scene_key.LOW_KEY_MEAN_PIXEL), its clean score
beside its score after each probe: brightened, blurred, denoised, grained (PROBES). None
of the probes is one of the report's ladders; they ask which way the score moves when
only brightness or fine texture changes. Last, each low-key photo beside the strongest
under-exposed views (severities UNDER_SEVERITIES of the report's ladders) of the other
photos of its source: how many of them are at least as bright (mean pixel and the 99th
percentile of each pixel's brightest channel both at least the clean photo's), and
their mean score.

    python experiments/tools/lowkey_probe.py WORK [--model LABEL=MODEL_DIR ...]

WORK: a build work folder after its `valset` step. Without ``--model``, the shipped
default model alone. Scores are exact (fp32).
"""
import argparse
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from default_model_build.report_by_scene_key import (  # noqa: E402
    LOW_KEY_MEAN_PIXEL, PHOTO_SOURCES, image_mean_pixel)
from modelscope_iqa import DEFAULT_MODEL_DIR  # noqa: E402
from modelscope_iqa.hub import load_model, open_model_folder  # noqa: E402
from modelscope_iqa.preprocessors import network_crop  # noqa: E402
from modelscope_iqa.preprocessors.decoding import Pixels  # noqa: E402

DETAIL_SIGMA = 1.0
UNDER_EXPOSURE, UNDER_SEVERITIES, HIGHLIGHT_PERCENTILE = 'under_exposure', (3, 4), 99
GAIN, BLUR_SIGMA, DENOISE_STRENGTH, GRAIN_SIGMA, GRAIN_SEED = 1.5, 1.0, 3, 4.0, 0
PROBES = {
    f'x{GAIN} brighter': lambda bgr: np.clip(bgr * np.float32(GAIN), 0, 255).astype(np.uint8),
    f'blur sigma {BLUR_SIGMA}': lambda bgr: cv2.GaussianBlur(bgr, (0, 0), BLUR_SIGMA),
    f'denoised (NL-means h={DENOISE_STRENGTH})': lambda bgr: cv2.fastNlMeansDenoisingColored(
        bgr, None, DENOISE_STRENGTH, DENOISE_STRENGTH, 7, 21),
    f'grain sigma {GRAIN_SIGMA}': lambda bgr: np.clip(
        bgr + np.random.default_rng(GRAIN_SEED).normal(0, GRAIN_SIGMA, bgr.shape), 0,
        255).astype(np.uint8),
}


def detail(bgr: np.ndarray) -> float:
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(np.median(np.abs(grey - cv2.GaussianBlur(grey, (0, 0), DETAIL_SIGMA))))


def highlight(bgr: np.ndarray) -> float:
    return float(np.percentile(bgr.max(axis=2), HIGHLIGHT_PERCENTILE))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('work_dir', type=Path)
    parser.add_argument('--model', action='append', default=[], metavar='LABEL=MODEL_DIR')
    args = parser.parse_args(argv)
    warnings.filterwarnings('ignore')
    models = dict(m.split('=', 1) for m in args.model) or {'shipped': DEFAULT_MODEL_DIR}
    networks = {}
    for label, model_dir in models.items():
        folder = open_model_folder(model_dir)
        config = folder.preprocess_config
        networks[label] = (load_model(folder).inference_network('fp32', 'cpu', config),
                           config)

    def scores(bgr: np.ndarray) -> dict:
        pixels = Pixels(np.ascontiguousarray(bgr), 'BGR')
        return {label: net(torch.from_numpy(network_crop(pixels, config))[None]).item()
                for label, (net, config) in networks.items()}

    labels = ' / '.join(networks)
    low_key, under_exposed = [], {}
    for source, held_out_sets in PHOTO_SOURCES.items():
        rows = []
        for title, held_out in held_out_sets:
            under_exposed.setdefault(source, []).extend(
                path for severity in UNDER_SEVERITIES for path in sorted(
                    (args.work_dir / held_out.name).glob(f'*_{UNDER_EXPOSURE}_{severity}.png')))
            for path in sorted((args.work_dir / 'pristine' / held_out.split).glob('*.png')):
                bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
                rows.append((f'{source} {title}', path.stem, image_mean_pixel(bgr),
                             detail(bgr), scores(bgr)))
                if rows[-1][2] < LOW_KEY_MEAN_PIXEL:
                    low_key.append((rows[-1], bgr, source))
        if not under_exposed[source]:
            raise SystemExit(f'no {UNDER_EXPOSURE} views at severities {UNDER_SEVERITIES} '
                             f'in the {source} held-out sets of {args.work_dir}')
        print(f'{source}, {len(rows)} clean photos (both held-out sets): SRCC of the clean '
              f'score ({labels}) with mean pixel / with detail')
        for label in networks:
            clean = [r[4][label] for r in rows]
            print(f'  {label:10} {stats.spearmanr(clean, [r[2] for r in rows])[0]:+.3f} / '
                  f'{stats.spearmanr(clean, [r[3] for r in rows])[0]:+.3f}; clean mean '
                  f'{np.mean(clean):.3f}')
    print(f'\nlow-key photos (mean pixel < {LOW_KEY_MEAN_PIXEL}): clean score and after '
          f'each probe ({labels})')
    print('| photo | set | mean pixel | detail | clean | ' + ' | '.join(PROBES) + ' |')
    print('| --- ' * (5 + len(PROBES)) + '|')
    for (title, photo, key, fine, clean), bgr, _ in low_key:
        probed = [scores(probe(bgr)) for probe in PROBES.values()]
        print(f'| {photo} | {title} | {key:.1f} | {fine:.2f} | '
              + ' | '.join('/'.join(f'{s[label]:.2f}' for label in networks)
                           for s in [clean] + probed) + ' |')
    print(f'\nlow-key photos beside the other photos of their source under-exposed at '
          f'severities {UNDER_SEVERITIES}: how many are at least as bright, and scores '
          f'({labels})')
    print('| photo | mean pixel | highlights (p99) | at least as bright | their mean score '
          '| clean score |')
    print('| --- ' * 6 + '|')
    views = {}
    for (title, photo, key, _, clean), bgr, source in low_key:
        others = [path for path in under_exposed[source]
                  if not path.name.startswith(f'{photo}_{UNDER_EXPOSURE}_')]
        for path in others:
            if path not in views:
                view = cv2.imread(str(path), cv2.IMREAD_COLOR)
                views[path] = (image_mean_pixel(view), highlight(view), scores(view))
        clean_highlight = highlight(bgr)
        brighter = [views[path] for path in others
                    if views[path][0] >= key and views[path][1] >= clean_highlight]
        mean_scores = '/'.join(f'{np.mean([b[2][label] for b in brighter]):.2f}'
                               for label in networks) if brighter else '-'
        print(f'| {photo} | {key:.1f} | {clean_highlight:.0f} | {len(brighter)} of '
              f'{len(others)} | {mean_scores} | '
              + '/'.join(f'{clean[label]:.2f}' for label in networks) + ' |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
