"""The default model's report measures (modelscope_iqa.metrics.severity), on small
hand-made score tables whose answers can be worked out by hand."""
import math

import pytest

from modelscope_iqa.metrics.severity import severity_report

FAMILIES = ('blur', 'jpeg')


def _table(score_of):
    """Two photos, pristine plus two families at severities 1-4; score_of(photo,
    family, severity) -> score."""
    rows = []
    for photo in ('a', 'b'):
        rows.append((photo, 'pristine', 0, score_of(photo, 'pristine', 0)))
        for family in FAMILIES:
            for severity in (1, 2, 3, 4):
                rows.append((photo, family, severity, score_of(photo, family, severity)))
    return [list(column) for column in zip(*rows)]


def test_a_perfect_scorer_gets_one_everywhere():
    report = severity_report(*_table(lambda p, f, s: 0.9 - 0.2 * s))
    assert report['srcc_by_family'] == pytest.approx({'blur': 1.0, 'jpeg': 1.0})
    assert report['mean_srcc'] == pytest.approx(1.0)
    assert report['min_family_srcc'] == pytest.approx(1.0)
    assert report['mean_by_severity'] == pytest.approx({0: 0.9, 1: 0.7, 2: 0.5, 3: 0.3,
                                                        4: 0.1})
    assert report['cross_photo_pairs'] == 1.0
    # pristine of a x strong views of b (2 families x severities 3, 4), and b x a.
    assert report['cross_photo_pair_count'] == 2 * 2 * 2


def test_families_and_photos_are_averaged_separately():
    def score(photo, family, severity):
        if family == 'jpeg' and photo == 'b':
            return 0.5 + 0.1 * severity  # backwards on one photo only
        return 1.0 - 0.1 * severity
    report = severity_report(*_table(score))
    assert report['srcc_by_photo']['a'] == pytest.approx({'blur': 1.0, 'jpeg': 1.0})
    # b's jpeg ladder: pristine 1.0 then 0.6, 0.7, 0.8, 0.9 -> ranks by hand.
    assert report['srcc_by_photo']['b']['jpeg'] == pytest.approx(0.0)
    assert report['srcc_by_family'] == pytest.approx({'blur': 1.0, 'jpeg': 0.5})
    assert report['mean_srcc'] == pytest.approx(0.75)
    assert report['min_family_srcc'] == pytest.approx(0.5)


def test_cross_photo_pairs_compare_pristine_with_other_photos_strong_views():
    # Photo b is dark: its pristine view scores below a's strongest degradations.
    def score(photo, family, severity):
        base = 0.9 if photo == 'a' else 0.3
        return base - 0.05 * severity
    report = severity_report(*_table(score))
    assert report['srcc_by_family'] == pytest.approx({'blur': 1.0, 'jpeg': 1.0})
    # a's pristine (0.9) beats all 4 of b's strong views; b's (0.3) beats none of a's
    # (0.75, 0.7).
    assert report['cross_photo_pairs'] == pytest.approx(0.5)
    tied = severity_report(*_table(lambda p, f, s: 0.5 if s in (0, 3, 4) else 0.6))
    assert tied['cross_photo_pairs'] == 0.5


def test_a_constant_scorer_ranks_nothing():
    report = severity_report(*_table(lambda p, f, s: 0.5))
    assert report['mean_srcc'] == 0.0


def test_bad_tables_are_refused():
    photos, families, severities, scores = _table(lambda p, f, s: 1.0 - 0.1 * s)
    with pytest.raises(ValueError, match='length'):
        severity_report(photos, families, severities, scores[:-1])
    with pytest.raises(ValueError, match='no images'):
        severity_report([], [], [], [])
    with pytest.raises(ValueError, match='nan'):
        severity_report(photos, families, severities, scores[:-1] + [math.nan])
    with pytest.raises(ValueError, match='no pristine'):
        severity_report(photos[1:], families[1:], severities[1:], scores[1:])
