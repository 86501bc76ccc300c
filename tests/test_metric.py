"""PLCC/SRCC/KRCC/RMSE equal scipy's, stream and merge correctly, and refuse to report
a silent number for degenerate input."""
import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from modelscope_iqa.metainfo import MetricKeys
from modelscope_iqa.metrics import (ImageQualityAssessmentMosMetric,
                                    UndefinedCorrelationWarning, iqa_metrics, krcc,
                                    plcc, rmse, srcc)


@pytest.fixture
def samples():
    rng = np.random.default_rng(7)
    target = rng.uniform(0.2, 1.0, 101)
    pred = np.clip(target + rng.normal(0, 0.1, target.size), 0, 1)
    pred[:100:10] = pred[1::10]  # ties, as real scores have
    return pred, target


def scipy_reference(pred, target):
    return {
        MetricKeys.PLCC: stats.pearsonr(pred, target)[0],
        MetricKeys.SRCC: stats.spearmanr(pred, target)[0],
        MetricKeys.KRCC: stats.kendalltau(pred, target)[0],
        MetricKeys.RMSE: np.sqrt(np.mean((pred - target)**2)),
    }


def test_functions_equal_scipy(samples):
    pred, target = samples
    expected = scipy_reference(pred, target)
    got = iqa_metrics(pred, target)
    assert got.keys() == expected.keys()
    for key, value in got.items():
        assert type(value) is float
        assert value == pytest.approx(expected[key], abs=1e-12), key
    assert plcc(pred, target) == got[MetricKeys.PLCC]
    assert srcc(pred, target) == got[MetricKeys.SRCC]
    assert krcc(pred, target) == got[MetricKeys.KRCC]
    assert rmse(pred, target) == got[MetricKeys.RMSE]


def _metric_over(pred, target, chunks):
    metric = ImageQualityAssessmentMosMetric()
    for p, t in zip(np.array_split(pred, chunks), np.array_split(target, chunks)):
        metric.add({'pred': torch.from_numpy(p).float().unsqueeze(1),
                    'target': torch.from_numpy(t)}, {})
    return metric


def test_streamed_equals_one_shot(samples):
    pred, target = samples
    one_shot = _metric_over(pred, target, 1).evaluate()
    streamed = _metric_over(pred, target, 9).evaluate()
    assert streamed == one_shot
    # float32 predictions, as the model emits them, against scipy on the same values
    expected = scipy_reference(pred.astype(np.float32).astype(np.float64), target)
    for key, value in streamed.items():
        assert value == pytest.approx(expected[key], abs=1e-12)


def test_merge_of_halves_equals_whole(samples):
    pred, target = samples
    whole = _metric_over(pred, target, 4).evaluate()
    first = _metric_over(pred[:50], target[:50], 2)
    second = _metric_over(pred[50:], target[50:], 3)
    first.merge(second)
    assert first.evaluate() == whole
    # and after a pickle round trip, as distributed evaluation gathers ranks
    restored = pickle.loads(pickle.dumps(_metric_over(pred, target, 5)))
    assert restored.evaluate() == whole


def test_target_may_come_from_the_batch(samples):
    pred, target = samples
    metric = ImageQualityAssessmentMosMetric()
    metric.add({'pred': torch.from_numpy(pred)}, {'target': torch.from_numpy(target)})
    assert metric.evaluate()[MetricKeys.SRCC] == pytest.approx(
        stats.spearmanr(pred, target)[0], abs=1e-12)


@pytest.mark.parametrize('pred,target,reason', [
    ([0.5], [0.4], '1 sample'),
    ([0.5, 0.5, 0.5], [0.1, 0.2, 0.3], 'constant predictions'),
    ([0.1, 0.2, 0.3], [0.6, 0.6, 0.6], 'constant targets'),
])
def test_undefined_correlations_are_nan_with_a_warning(pred, target, reason):
    with pytest.warns(UndefinedCorrelationWarning, match=reason):
        result = iqa_metrics(pred, target)
    for key in (MetricKeys.PLCC, MetricKeys.SRCC, MetricKeys.KRCC):
        assert math.isnan(result[key])
    assert result[MetricKeys.RMSE] == pytest.approx(
        np.sqrt(np.mean((np.array(pred) - np.array(target))**2)))


def test_defined_correlations_warn_nothing(samples):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        iqa_metrics(*samples)


def test_empty_and_mismatched_inputs_raise():
    with pytest.raises(ValueError, match='no samples'):
        iqa_metrics([], [])
    with pytest.raises(ValueError, match='3 predictions but 2 targets'):
        iqa_metrics([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match='no samples were added'):
        ImageQualityAssessmentMosMetric().evaluate()
