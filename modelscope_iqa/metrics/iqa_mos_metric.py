"""The ModelScope metric: gathers predictions batch by batch, reports :func:`iqa_metrics`."""
from typing import Dict

import numpy as np
from modelscope.metrics.base import Metric
from modelscope.metrics.builder import METRICS
from modelscope.utils.registry import default_group

from ..metainfo import Metrics
from .functional import iqa_metrics

__all__ = ['ImageQualityAssessmentMosMetric']


def _flat_float64(values) -> np.ndarray:
    if hasattr(values, 'detach'):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


@METRICS.register_module(group_key=default_group, module_name=Metrics.iqa_mos)
class ImageQualityAssessmentMosMetric(Metric):
    """PLCC, SRCC, KRCC and RMSE over everything added so far.

    ``add`` takes the model's evaluation outputs (``pred`` and ``target``; ``target``
    may come from the batch instead). ``merge`` folds in another instance's samples, as
    ModelScope does when it gathers ranks of a distributed evaluation.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.preds = []
        self.targets = []

    def add(self, outputs: Dict, inputs: Dict) -> None:
        target = outputs['target'] if 'target' in outputs else inputs['target']
        pred, target = _flat_float64(outputs['pred']), _flat_float64(target)
        if pred.shape != target.shape:
            raise ValueError(f'batch has {pred.size} predictions but {target.size} targets')
        self.preds.append(pred)
        self.targets.append(target)

    def evaluate(self) -> Dict[str, float]:
        if not self.preds:
            raise ValueError('no samples were added to the metric')
        return iqa_metrics(np.concatenate(self.preds), np.concatenate(self.targets))

    def merge(self, other: 'ImageQualityAssessmentMosMetric') -> None:
        self.preds.extend(other.preds)
        self.targets.extend(other.targets)

    def __getstate__(self):
        return self.preds, self.targets

    def __setstate__(self, state):
        self.preds, self.targets = state
