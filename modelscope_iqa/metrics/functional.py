"""PLCC, SRCC, KRCC and RMSE of predicted vs. true MOS, as plain Python floats.

Correlations are undefined for fewer than two samples or for a constant input; they are
then reported as NaN together with an :class:`UndefinedCorrelationWarning`, never as a
silent number. An empty input raises ``ValueError``.
"""
import math
import warnings
from typing import Dict

import numpy as np
from scipy import stats

from ..metainfo import MetricKeys


class UndefinedCorrelationWarning(RuntimeWarning):
    """A correlation was asked of fewer than two samples or of a constant input."""


def _as_pair(pred, target):
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    target = np.asarray(target, dtype=np.float64).reshape(-1)
    if pred.shape != target.shape:
        raise ValueError(f'{pred.size} predictions but {target.size} targets')
    if pred.size == 0:
        raise ValueError('no samples to evaluate')
    return pred, target


def _undefined_reason(pred: np.ndarray, target: np.ndarray):
    if pred.size < 2:
        return f'{pred.size} sample'
    if np.all(pred == pred[0]):
        return 'constant predictions'
    if np.all(target == target[0]):
        return 'constant targets'
    return None


def _correlation(name: str, func, pred, target) -> float:
    pred, target = _as_pair(pred, target)
    reason = _undefined_reason(pred, target)
    if reason is not None:
        warnings.warn(f'{name} is undefined for {reason}; reported as NaN',
                      UndefinedCorrelationWarning, stacklevel=3)
        return math.nan
    return float(func(pred, target)[0])


def plcc(pred, target) -> float:
    """Pearson linear correlation coefficient."""
    return _correlation('PLCC', stats.pearsonr, pred, target)


def srcc(pred, target) -> float:
    """Spearman rank-order correlation coefficient."""
    return _correlation('SRCC', stats.spearmanr, pred, target)


def krcc(pred, target) -> float:
    """Kendall rank correlation coefficient (tau-b)."""
    return _correlation('KRCC', stats.kendalltau, pred, target)


def rmse(pred, target) -> float:
    """Root mean squared error, in the units of the inputs."""
    pred, target = _as_pair(pred, target)
    return float(np.sqrt(np.mean((pred - target)**2)))


def iqa_metrics(pred, target) -> Dict[str, float]:
    """All four metrics, keyed by :class:`MetricKeys`."""
    return {
        MetricKeys.PLCC: plcc(pred, target),
        MetricKeys.SRCC: srcc(pred, target),
        MetricKeys.KRCC: krcc(pred, target),
        MetricKeys.RMSE: rmse(pred, target),
    }
