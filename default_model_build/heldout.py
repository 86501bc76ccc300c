"""The held-out sets: photos no stage trains on, degraded by every family at every
severity, with their targets. The validation set guides the build (per-epoch evaluation,
the calibration); the audit set is only reported on."""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from modelscope_iqa.config import DatasetConfig
from modelscope_iqa.synthetic.distortions import FAMILIES, degrade, quality_target

from .photos import (AUDIT_SPLIT, GCOMPRIS_AUDIT_SPLIT, GCOMPRIS_HOLDOUT_SPLIT,
                     HOLDOUT_SPLIT)

LOG = logging.getLogger(__name__)
# The sets' CSVs use the package's dataset columns and MOS scale.
DATASET = DatasetConfig.from_mapping()
IMAGE, MOS = DATASET.image_column, DATASET.mos_column
VALIDATION_SEVERITIES = (1, 2, 3, 4)
# The validation photos whose degraded views are scored after every training epoch (the
# first ones by name), at these severities and pristine.
EPOCH_EVAL_PHOTOS = 3
EPOCH_EVAL_SEVERITIES = (2, 4)


@dataclass(frozen=True)
class HeldOutSet:
    """Photos held out from training (WORK/pristine/SPLIT), degraded (WORK/NAME, with
    NAME.csv) and reported on (WORK/PREFIXreport.*, PREFIXscores.csv, PREFIXbrisque.json)."""
    name: str
    split: str
    prefix: str
    title: str

    def csv(self, work_dir: Path) -> Path:
        return work_dir / self.name / f'{self.name}.csv'

    def output(self, work_dir: Path, file_name: str) -> Path:
        return work_dir / f'{self.prefix}{file_name}'


# The validation set (photos.HOLDOUT: per-epoch evaluation, calibration, the report
# candidates were chosen by) and the audit set (photos.AUDIT_PHOTOS: reported on, never
# chosen by).
VALSET = HeldOutSet('valset', HOLDOUT_SPLIT, '', 'held-out photos')
AUDITSET = HeldOutSet('auditset', AUDIT_SPLIT, 'audit_', 'audit photos')
# gcompris-qt-data's held-out and audit photos (photos.GCOMPRIS_HOLDOUT, GCOMPRIS_AUDIT):
# reported on beside the two sets above; the build's choices and calibration use VALSET.
GCOMPRIS_VALSET = HeldOutSet('gcompris_valset', GCOMPRIS_HOLDOUT_SPLIT, 'gcompris_',
                             'gcompris held-out photos')
GCOMPRIS_AUDITSET = HeldOutSet('gcompris_auditset', GCOMPRIS_AUDIT_SPLIT, 'gcompris_audit_',
                               'gcompris audit photos')
HELD_OUT_SETS = (VALSET, AUDITSET, GCOMPRIS_VALSET, GCOMPRIS_AUDITSET)


def views():
    """The views of a photo that the held-out sets (and so the calibration) score, as
    (family, severity, recipe): pristine, then every family at every severity 1-4."""
    yield 'pristine', 0, {}
    for family in sorted(FAMILIES):
        for severity in VALIDATION_SEVERITIES:
            yield family, severity, {family: float(severity)}


def write_validation_set(work_dir: Path, seed: int, held_out: HeldOutSet = VALSET) -> None:
    """Every view of every photo of ``held_out`` as PNG in WORK/NAME, and NAME.csv with
    each one's target, photo, family and severity."""
    out = work_dir / held_out.name
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    photos = sorted((work_dir / 'pristine' / held_out.split).glob('*.png'))
    if not photos:
        raise FileNotFoundError(f'no {held_out.split} photos in {work_dir / "pristine"}: '
                                'run the photos step first')
    for index, path in enumerate(photos):
        rgb = cv2.imread(str(path))[:, :, ::-1]
        for family, severity, severities in views():
            rng = np.random.default_rng([seed, index, severity, len(family)])
            image = degrade(rgb, severities, rng)
            target = out / f'{path.stem}_{family}_{severity}.png'
            cv2.imwrite(str(target), np.ascontiguousarray(image[:, :, ::-1]))
            rows.append({IMAGE: str(target), MOS: quality_target(severities) / DATASET.mos_scale,
                         'photo': path.stem, 'family': family, 'severity': severity})
    with open(held_out.csv(work_dir), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator='\n')
        writer.writeheader()
        writer.writerows(rows)
    LOG.info('%d %s images in %s', len(rows), held_out.name, out)


def read_rows(work_dir: Path, held_out: HeldOutSet = VALSET):
    with open(held_out.csv(work_dir), newline='') as f:
        return list(csv.DictReader(f))


def epoch_eval_rows(rows):
    """The rows scored after every training epoch (EPOCH_EVAL_PHOTOS, EPOCH_EVAL_SEVERITIES)."""
    photos = sorted({r['photo'] for r in rows})[:EPOCH_EVAL_PHOTOS]
    return [r for r in rows if r['photo'] in photos
            and (r['family'] == 'pristine' or int(r['severity']) in EPOCH_EVAL_SEVERITIES)]


def present(work_dir: Path):
    """The held-out sets written in ``work_dir`` (a work folder from before the audit set
    has the validation set only)."""
    found = [h for h in HELD_OUT_SETS if h.csv(work_dir).is_file()]
    for held_out in HELD_OUT_SETS:
        if held_out not in found:
            LOG.info('no %s in %s: run the valset step to write it', held_out.name, work_dir)
    return found
