"""``modelscope-iqa evaluate``: ModelScope's trainer evaluation on a labelled CSV, and an
optional report folder (metrics, per-image predictions, a scatter plot)."""
from __future__ import annotations

import csv
import glob
import json
import os
import tempfile
from typing import Dict, List, Tuple

import numpy as np

from .. import distributed
from ..config import DatasetConfig
from ..errors import DatasetError
from ..hub import CONFIGURATION_NAME


def load_labels(data: str, config: DatasetConfig) -> Tuple[List[Dict[str, object]], str]:
    """Rows of a CSV (or of the one CSV inside a folder) with image paths made absolute
    (relative paths are relative to the CSV). Returns the rows and the CSV's path."""
    csv_path = data
    if os.path.isdir(data):
        candidates = sorted(glob.glob(os.path.join(data, '*.csv')))
        if len(candidates) != 1:
            raise DatasetError(f'{data!r}: expected exactly one .csv in the folder, '
                               f'found {len(candidates)}')
        csv_path = candidates[0]
    if not os.path.isfile(csv_path):
        raise DatasetError(f'{csv_path!r}: no such file')
    base = os.path.dirname(os.path.abspath(csv_path))
    with open(csv_path, newline='', encoding='utf-8') as f:
        reader = csv.DictReader(f)
        missing = {config.image_column, config.mos_column} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f'{csv_path!r}: missing column(s) {sorted(missing)}; '
                               f'found {reader.fieldnames}')
        rows = []
        for row in reader:
            row = dict(row)
            row[config.image_column] = os.path.join(base, row[config.image_column])
            rows.append(row)
    if not rows:
        raise DatasetError(f'{csv_path!r}: no rows')
    return rows, csv_path


class _PredictionCollector:
    """ModelScope's ``saving_fn``: receives each evaluation batch's inputs and outputs."""

    def __init__(self):
        self.preds: List[float] = []

    def __call__(self, inputs, outputs) -> None:
        self.preds.extend(outputs['pred'].float().flatten().cpu().tolist())


def run_evaluation(model_dir: str, rows, batch_size: int, workers: int, device: str):
    """Metrics and per-row predictions from ``build_trainer(...).evaluate()`` (with the
    trainer that skips the hub check of local folders and merges ranks exactly). Under
    several processes every rank returns the whole result."""
    from modelscope.trainers import build_trainer
    from modelscope.utils.config import Config

    from ..metainfo import Trainers
    from ..msdatasets import ImageQualityAssessmentMosDataset
    config = Config.from_file(os.path.join(model_dir, CONFIGURATION_NAME))
    dataset = ImageQualityAssessmentMosDataset(rows, config.safe_get('dataset'))
    collector = _PredictionCollector()
    with tempfile.TemporaryDirectory() as work_dir:
        trainer = build_trainer(name=Trainers.iqa_mos, default_args=dict(
            model=model_dir, train_dataset=None, eval_dataset=dataset, work_dir=work_dir,
            device=device, cfg_options={
                'evaluation.dataloader.batch_size_per_gpu': batch_size,
                'evaluation.dataloader.workers_per_gpu': workers}))
        metrics = trainer.evaluate(saving_fn=collector)
    preds = distributed.unshard(distributed.all_gather(collector.preds))
    return metrics, preds, dataset


def write_report(report_dir: str, metrics: Dict[str, float], rows, dataset_config,
                 preds: List[float]) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    os.makedirs(report_dir, exist_ok=True)
    with open(os.path.join(report_dir, 'metrics.json'), 'w') as f:
        json.dump(metrics, f, indent=2)
    targets = [float(r[dataset_config.mos_column]) * dataset_config.mos_scale for r in rows]
    with open(os.path.join(report_dir, 'predictions.csv'), 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['path', 'mos', 'target', 'pred'])
        for row, target, pred in zip(rows, targets, preds):
            writer.writerow([row[dataset_config.image_column], row[dataset_config.mos_column],
                             target, pred])
    figure, axes = plt.subplots(figsize=(6, 6), dpi=100)
    axes.scatter(targets, preds, s=14, alpha=0.7)
    if len(set(targets)) > 1:
        slope, intercept = np.polyfit(targets, preds, 1)
        xs = np.linspace(min(targets), max(targets), 50)
        axes.plot(xs, slope * xs + intercept, color='tab:red',
                  label=f'fit: pred = {slope:.3f} x true + {intercept:.3f}')
        axes.legend(loc='best')
    axes.set_xlabel(f'true MOS x {dataset_config.mos_scale:g}')
    axes.set_ylabel('predicted score')
    axes.set_title(' '.join(f'{k.upper()} {v:.4f}' for k, v in metrics.items()))
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(os.path.join(report_dir, 'scatter.png'))
    plt.close(figure)
