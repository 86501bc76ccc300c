"""How well a quality score follows known degradations: the measures of the default
model's report, for any scorer (ours, BRISQUE, ...).

The input is a set of images, each a view of one ``photo``: pristine (``family``
``'pristine'``, severity 0) or degraded by one ``family`` at an integer ``severity``.
Scores must be *higher for better* images: negate a lower-is-better score (BRISQUE)
before passing it.
"""
from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import Dict, Sequence

import numpy as np
from scipy import stats

PRISTINE = 'pristine'


def _ladder_srcc(scores: Sequence[float], severities: Sequence[int]) -> float:
    """SRCC of score vs. -severity; a scorer that gives the whole ladder one score
    ranks nothing: 0, not NaN."""
    scores = np.asarray(scores, dtype=np.float64)
    if np.all(scores == scores[0]):
        return 0.0
    return float(stats.spearmanr(scores, -np.asarray(severities, dtype=np.float64))[0])


def severity_report(photos: Sequence[str], families: Sequence[str],
                    severities: Sequence[int], scores: Sequence[float],
                    strong_severities: Sequence[int] = (3, 4)) -> Dict[str, object]:
    """The report's measures.

    - ``srcc_by_photo``: for each photo and family, the SRCC of the score against the
      severity over the pristine view and that family's views (1.0: quality falls with
      severity in perfect order).
    - ``srcc_by_family``: those SRCCs averaged over the photos; ``mean_srcc`` their
      mean over families and ``min_family_srcc`` the weakest family.
    - ``mean_by_severity``: the mean score at each severity (0 = pristine).
    - ``cross_photo_pairs``: over every pair (pristine view of photo A, view of another
      photo B at one of ``strong_severities``), the share in which A scores higher
      (ties count half): do scores mean the same on every photo?
    """
    if not len(photos) == len(families) == len(severities) == len(scores):
        raise ValueError('photos, families, severities and scores differ in length')
    if len(scores) == 0:
        raise ValueError('no images to report on')
    pristine: Dict[str, float] = {}
    ladders: Dict[str, Dict[str, list]] = defaultdict(lambda: defaultdict(list))
    by_severity: Dict[int, list] = defaultdict(list)
    strong = []
    for photo, family, severity, score in zip(photos, families, severities, scores):
        score, severity = float(score), int(severity)
        if not math.isfinite(score):
            raise ValueError(f'score of {photo!r} ({family} {severity}) is {score}')
        by_severity[severity].append(score)
        if family == PRISTINE:
            if photo in pristine:
                raise ValueError(f'{photo!r} has two pristine views')
            pristine[photo] = score
            continue
        ladders[photo][family].append((severity, score))
        if severity in strong_severities:
            strong.append((photo, score))
    srcc_by_photo: Dict[str, Dict[str, float]] = {}
    for photo, families_of_photo in sorted(ladders.items()):
        if photo not in pristine:
            raise ValueError(f'{photo!r} has no pristine view')
        srcc_by_photo[photo] = {}
        for family, views in sorted(families_of_photo.items()):
            levels = [0] + [s for s, _ in views]
            values = [pristine[photo]] + [v for _, v in views]
            srcc_by_photo[photo][family] = _ladder_srcc(values, levels)
    all_families = sorted({f for per_photo in srcc_by_photo.values() for f in per_photo})
    srcc_by_family = {
        family: float(np.mean([per_photo[family] for per_photo in srcc_by_photo.values()
                               if family in per_photo]))
        for family in all_families
    }
    wins = [1.0 if pristine[a] > b_score else 0.5 if pristine[a] == b_score else 0.0
            for a, (b, b_score) in itertools.product(pristine, strong) if a != b]
    return {
        'photos': sorted(pristine),
        'srcc_by_photo': srcc_by_photo,
        'srcc_by_family': srcc_by_family,
        'mean_srcc': float(np.mean(list(srcc_by_family.values()))),
        'min_family_srcc': float(min(srcc_by_family.values())),
        'mean_by_severity': {s: float(np.mean(v)) for s, v in sorted(by_severity.items())},
        'cross_photo_pairs': float(np.mean(wins)) if wins else math.nan,
        'cross_photo_pair_count': len(wins),
    }
