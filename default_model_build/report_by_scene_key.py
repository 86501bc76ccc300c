"""The default model's report split by how dark each clean photo is.

The build's `report` step measures a candidate on the held-out and the audit photos.
Its gaps sit on low-key scenes (dark forest, fog, dusk), which 2 of the 40 training
photos are. This reads what `report` wrote (WORK/scores.csv and
WORK/audit_scores.csv, each with the model's and BRISQUE's score of every view) and the
clean photos (WORK/pristine/holdout and WORK/pristine/audit). For each work folder, set
and split it prints one row with the same measures as the report (modelscope_iqa's
`severity_report`):
- the mean SRCC, the weakest family and the number of families below 0.85;
- BRISQUE's mean SRCC on the same images;
- the clean photos' mean score and the lowest one;
- the share of over-exposed views at severities 1-3 that score above their clean photo;
- the rank correlation (SRCC) of the clean photos' scores with their mean pixel, over at
  least MIN_PHOTOS_FOR_SRCC photos: near 0 when a clean photo's score does not depend on
  its brightness;
- the mean score at the strongest severity, and the share of pairs in which a clean
  photo scores above another photo's view at one of the two strongest severities
  (the report's ``cross_photo_pairs``);
- a 95% bootstrap interval of the mean SRCC over photos (BOOTSTRAP_RESAMPLES draws of
  the split's photos with replacement, seeded): how far the figure could move with
  other photos of the same kind.

The splits are all photos, photos whose clean mean pixel is at least LOW_KEY_MEAN_PIXEL,
and photos under it. The sets are the held-out photos, the audit photos, and both
together (every (photo, family) SRCC weighing the same, as in each set's mean), of the
wallpapers (the default) or of gcompris-qt-data (``--photos gcompris``).

    python -m default_model_build.report_by_scene_key WORK [WORK ...] [--exclude PHOTO ...]
        [--photos wallpapers|gcompris]

Several work folders (candidates reported on the same photos) give one table.
``--exclude`` leaves photos out of every row, such as held-out photos that an
experiment moved into training.
"""
import argparse
import csv
import math
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
from scipy import stats

from modelscope_iqa.metrics.severity import severity_report

from .heldout import AUDITSET, GCOMPRIS_AUDITSET, GCOMPRIS_VALSET, VALSET

# A clean photo whose mean pixel (0-255, over its channels) is under this is low key.
# The split was made after the audit scores had been seen: it names where the gaps are,
# it does not test it.
LOW_KEY_MEAN_PIXEL = 60
# The bound on every family's mean SRCC (issue 32).
FAMILY_GOAL = 0.88
# The bootstrap interval of the mean SRCC: resamples of the photos, its seed and level.
BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, BOOTSTRAP_LEVEL = 2000, 0, 0.95
# (title, held-out set): `report` writes each set's PREFIXscores.csv; its clean photos
# are in WORK/pristine/SPLIT.
PHOTO_SOURCES = {'wallpapers': (('held out', VALSET), ('audit', AUDITSET)),
                 'gcompris': (('held out', GCOMPRIS_VALSET), ('audit', GCOMPRIS_AUDITSET))}
BOTH_SETS = 'both sets'
# Over-exposure's severities that must not score above the clean photo (the issue's
# "over-exposure is never an improvement"), and the family's name in the scores.
OVER_EXPOSURE, MILD_SEVERITIES = 'over_exposure', (1, 2, 3)
MIN_PHOTOS_FOR_SRCC = 3


def image_mean_pixel(image: np.ndarray) -> float:
    """An image's mean pixel (0-255, over its channels): its key for the split."""
    return float(image.mean())


def mean_pixel(path: Path) -> float:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f'cannot read the clean photo {path}')
    return image_mean_pixel(image)


def split_measures(rows, column: str, sign: float) -> dict:
    """``severity_report`` of ``rows`` (dicts with photo, family, severity and
    ``column``), scores multiplied by ``sign`` (-1 for lower-is-better BRISQUE)."""
    return severity_report([r['photo'] for r in rows], [r['family'] for r in rows],
                           [int(r['severity']) for r in rows],
                           [sign * float(r[column]) for r in rows])


def splits(keys: dict):
    """(label, photos) for all photos, the brighter ones and the low-key ones."""
    bright = sorted(p for p, k in keys.items() if k >= LOW_KEY_MEAN_PIXEL)
    low = sorted(p for p, k in keys.items() if k < LOW_KEY_MEAN_PIXEL)
    return [('all', sorted(keys)), (f'mean pixel >= {LOW_KEY_MEAN_PIXEL}', bright),
            (f'mean pixel < {LOW_KEY_MEAN_PIXEL}', low)]


def _cell(value: float) -> str:
    """A measure as a table cell: '-' where there was nothing to measure (NaN)."""
    return '-' if math.isnan(value) else f'{value:.3f}'


def clean_measures(rows, keys: dict) -> list:
    """The lowest clean score, the share of over-exposed views at MILD_SEVERITIES above
    their clean photo, and the SRCC of clean score with mean pixel (``keys``), as table
    cells ('-' where there is nothing to measure)."""
    clean = {r['photo']: float(r['score']) for r in rows if int(r['severity']) == 0}
    brighter = [float(r['score']) > clean[r['photo']] for r in rows
                if r['family'] == OVER_EXPOSURE and int(r['severity']) in MILD_SEVERITIES]
    photos = sorted(clean)
    srcc = '-'
    if len(photos) >= MIN_PHOTOS_FOR_SRCC:
        value = stats.spearmanr([keys[p] for p in photos], [clean[p] for p in photos])[0]
        srcc = _cell(value)  # NaN: a constant column
    above = f'{sum(brighter) / len(brighter):.3f} of {len(brighter)}' if brighter else '-'
    return [f'{min(clean.values()):.3f}', above, srcc]


def bootstrap_interval(srcc_by_photo: dict) -> str:
    """The BOOTSTRAP_LEVEL interval of the mean SRCC (mean over families of the mean over
    photos, as ``severity_report`` takes it) when the photos are drawn again with
    replacement, as a table cell."""
    photos = sorted(srcc_by_photo)
    families = sorted({f for per_photo in srcc_by_photo.values() for f in per_photo})
    table = np.array([[srcc_by_photo[p].get(f, np.nan) for f in families] for p in photos])
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = rng.integers(len(photos), size=(BOOTSTRAP_RESAMPLES, len(photos)))
    # A family missing from every drawn photo leaves that draw's mean over the others
    # (numpy warns of the empty slice it skips).
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        family_means = np.nanmean(table[draws], axis=1)
    means = np.nanmean(family_means, axis=1)
    tail = (1.0 - BOOTSTRAP_LEVEL) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return f'[{low:.3f}, {high:.3f}]'


def read_sets(work_dir: Path, exclude=(), source: str = 'wallpapers'):
    """(title, rows, each photo's clean mean pixel) for each held-out set of ``source``
    (PHOTO_SOURCES), then for both together (the sets hold different photos)."""
    sets = []
    for title, held_out in PHOTO_SOURCES[source]:
        with open(held_out.output(work_dir, 'scores.csv'), newline='') as f:
            rows = [r for r in csv.DictReader(f) if r['photo'] not in exclude]
        keys = {photo: mean_pixel(work_dir / 'pristine' / held_out.split / f'{photo}.png')
                for photo in sorted({r['photo'] for r in rows})}
        sets.append((title, rows, keys))
    sets.append((BOTH_SETS, [r for _, rows, _ in sets for r in rows],
                 {p: k for _, _, keys in sets for p, k in keys.items()}))
    return sets


def table_rows(work_dir: Path, exclude=(), source: str = 'wallpapers'):
    for title, rows, keys in read_sets(work_dir, exclude, source):
        has_brisque = all(r.get('brisque') not in (None, '') for r in rows)
        for label, photos in splits(keys):
            if not photos:
                continue
            chosen = [r for r in rows if r['photo'] in photos]
            model = split_measures(chosen, 'score', 1.0)
            by_family = model['srcc_by_family']
            weakest = min(by_family, key=by_family.get)
            brisque = (f"{split_measures(chosen, 'brisque', -1.0)['mean_srcc']:.3f}"
                       if has_brisque else '-')
            yield [work_dir.name, title, label, str(len(photos)), f"{model['mean_srcc']:.3f}",
                   f'{weakest} {by_family[weakest]:.3f}',
                   str(sum(v < FAMILY_GOAL for v in by_family.values())), brisque,
                   f"{model['mean_by_severity'][0]:.3f}", *clean_measures(chosen, keys),
                   f"{model['mean_by_severity'][max(model['mean_by_severity'])]:.3f}",
                   _cell(model['cross_photo_pairs']),
                   bootstrap_interval(model['srcc_by_photo'])]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m default_model_build.report_by_scene_key',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('work_dirs', nargs='+', type=Path,
                        help='build work folders on which `report` has run')
    parser.add_argument('--exclude', nargs='+', default=[], metavar='PHOTO',
                        help='photos to leave out of every row')
    parser.add_argument('--photos', choices=sorted(PHOTO_SOURCES), default='wallpapers',
                        help='whose held-out and audit sets (default: wallpapers)')
    args = parser.parse_args(argv)
    header = ['work folder', 'set', 'photos', 'n', 'model mean SRCC', 'weakest family',
              f'families < {FAMILY_GOAL}', 'BRISQUE mean SRCC', 'clean mean score',
              'lowest clean score', 'over-exposure 1-3 above clean',
              'clean score vs mean pixel SRCC', 'strongest level mean score',
              'clean above another photo\'s two strongest levels',
              f'mean SRCC {BOOTSTRAP_LEVEL:.0%} bootstrap interval']
    print('| ' + ' | '.join(header) + ' |')
    print('|' + ' --- |' * len(header))
    for work_dir in args.work_dirs:
        for row in table_rows(work_dir, set(args.exclude), args.photos):
            print('| ' + ' | '.join(row) + ' |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
