"""Does a model see strong JPEG wherever the compression grid falls on the frame it scores?

JPEG codes 8x8 blocks of luma and, with 4:2:0 chroma subsampling, 16x16 macroblocks of
colour, counted from the compressed image's top-left corner. Where the pipeline's centre
crop starts on that grid depends on the image's size (a 1080x1920 photo: row 180, 4 mod
16). This script keeps the scored frame fixed, the centre crop of each photo, and moves
the grid: the photo is compressed from ``dy`` rows above and ``dx`` columns left of the
crop (``dy`` in 0-15 with ``dx`` = 0, then ``dx`` in 0-15 with ``dy`` = 0, even offsets),
at JPEG severities 3 and 4 (quality 12 and 5). Prints, per model, photo set and offset:
the mean score at each severity and the share of photos ordered pristine > severity 3 >
severity 4.

    python experiments/tools/diagnose_jpeg_grid.py WORK_DIR MODEL_DIR [MODEL_DIR ...]

WORK_DIR is a build work folder (``pristine/train``, ``pristine/holdout`` and
``pristine/audit`` PNGs, written by ``python -m default_model_build photos``;
``--sets`` picks among them); photos not at the working size exactly (smaller ones,
which the pipeline upscales) are skipped.
"""
import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from modelscope_iqa.config import PreprocessConfig
from modelscope_iqa.hub import load_model, open_model_folder
from modelscope_iqa.preprocessors import Pixels, network_crop
from modelscope_iqa.preprocessors.crop import centre_offsets
from modelscope_iqa.synthetic.distortions import jpeg_compression
from modelscope_iqa.synthetic.ladders import JPEG_MACROBLOCK

SEVERITIES = (3, 4)
OFFSETS = tuple(range(0, JPEG_MACROBLOCK, 2))
# (dy, dx) pairs: rows, then columns, the other axis at 0.
GRID_OFFSETS = [(dy, 0) for dy in OFFSETS] + [(0, dx) for dx in OFFSETS if dx]
SEED = 0
# The build's photo splits (WORK/pristine/NAME).
PHOTO_SETS = ('train', 'holdout', 'audit')


def compressed_from(rgb: np.ndarray, top: int, left: int, severity: float) -> np.ndarray:
    """``rgb`` with everything from (top, left) on JPEG-compressed (the grid starting
    there) and the rows and columns before it left as they are."""
    out = rgb.copy()
    rng = np.random.default_rng(SEED)
    out[top:, left:] = jpeg_compression(np.ascontiguousarray(rgb[top:, left:]), severity, rng)
    return out


def working_size_photos(work_dir: Path, set_name: str, config: PreprocessConfig) -> list:
    """The RGB photos of WORK/pristine/``set_name`` that are landscape at exactly the
    working size (so the pipeline does not resize them)."""
    photos = []
    for path in sorted((work_dir / 'pristine' / set_name).glob('*.png')):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        if rgb.shape[:2] == tuple(config.resize_size):
            photos.append(rgb)
    return photos


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dir', type=Path)
    parser.add_argument('models', nargs='+')
    parser.add_argument('--train-photos', type=int, default=10,
                        help='training photos used (the first N by name at the working size)')
    parser.add_argument('--sets', nargs='+', choices=PHOTO_SETS, default=['train', 'holdout'],
                        help='the photo sets to score (default: train holdout)')
    args = parser.parse_args(argv)
    # The photo sets, read once per working size (models normally share one).
    photo_sets = {}
    for model_dir in args.models:
        folder = open_model_folder(model_dir)
        config = folder.preprocess_config
        network = load_model(folder).inference_network('fp32', 'cpu', config)
        if config.resize_size not in photo_sets:
            photos = {name: working_size_photos(args.work_dir, name, config)
                      for name in args.sets}
            if 'train' in photos:
                photos['train'] = photos['train'][:args.train_photos]
            photo_sets[config.resize_size] = photos

        def score(frames):
            crops = np.stack([network_crop(Pixels(f, 'RGB'), config) for f in frames])
            return network(torch.from_numpy(crops)).numpy().ravel()

        print(f'\n{model_dir}')
        print(f'{"photos":8} {"dy":>3} {"dx":>3} {"pristine":>8} '
              + ' '.join(f'{"sev " + str(s):>7}' for s in SEVERITIES) + f' {"ordered":>8} n')
        for set_name, photos in photo_sets[config.resize_size].items():
            scores = np.zeros((len(GRID_OFFSETS), len(photos), 1 + len(SEVERITIES)))
            for p, rgb in enumerate(photos):
                top, left = centre_offsets(rgb.shape, config.crop_size)
                # The clean frame does not depend on the offset: scored once.
                scores[:, p, 0] = score([rgb])[0]
                for o, (dy, dx) in enumerate(GRID_OFFSETS):
                    scores[o, p, 1:] = score([compressed_from(rgb, top - dy, left - dx, s)
                                              for s in SEVERITIES])
            for o, (dy, dx) in enumerate(GRID_OFFSETS):
                block = scores[o]
                ordered = (np.diff(block, axis=1) < 0).all(axis=1).mean()
                print(f'{set_name:8} {dy:3d} {dx:3d} {block[:, 0].mean():8.3f} '
                      + ' '.join(f'{v:7.3f}' for v in block[:, 1:].mean(axis=0))
                      + f' {ordered:8.0%} {len(photos)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
