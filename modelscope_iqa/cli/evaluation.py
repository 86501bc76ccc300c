"""What ``modelscope-iqa evaluate`` runs: ModelScope's trainer evaluation on a labelled
CSV, and an optional report folder (metrics with the model's identity, per-image
predictions, a scatter plot)."""
from __future__ import annotations

import csv
import glob
import json
import math
import os
import tempfile
from typing import Dict, List, Optional, Tuple

import numpy as np

from .. import distributed
from ..config import DatasetConfig
from ..errors import DatasetError
from ..identity import ModelIdentity
from ..models import EXACT_PRECISION


MAX_LISTED_BAD_ROWS = 20


def _row_problem(row: Dict[str, str], config: DatasetConfig,
                 seen: Dict[str, int]) -> Optional[str]:
    image = row[config.image_column]
    raw_mos = (row.get(config.mos_column) or '').strip()
    if not raw_mos:
        return 'MOS is missing'
    try:
        mos = float(raw_mos)
    except ValueError:
        return f'MOS {raw_mos!r} is not a number'
    if not math.isfinite(mos):
        return f'MOS {raw_mos!r} is not a finite number'
    if not os.path.isfile(image):
        return f'{image!r}: no such file'
    if image in seen:
        return f'{image!r}: duplicate of line {seen[image]}'
    return None


def load_labels(data: str, config: DatasetConfig, skip_bad: bool = False
                ) -> Tuple[List[Dict[str, object]], str, List[str]]:
    """Rows of a CSV (or of the one CSV inside a folder) with image paths made absolute
    (relative paths are relative to the CSV). Returns the rows, the CSV's path, and the
    bad rows left out (``skip_bad``), each described with its line number.

    A row is bad when its MOS is missing, not a number or not finite, its image file
    does not exist, or it repeats an earlier row's image. Without ``skip_bad`` any bad
    row raises :class:`DatasetError` listing them.
    """
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
    rows, bad, seen = [], [], {}
    with open(csv_path, newline='', encoding='utf-8') as f:
        reader = csv.DictReader(f)
        missing = {config.image_column, config.mos_column} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f'{csv_path!r}: missing column(s) {sorted(missing)}; '
                               f'found {reader.fieldnames}')
        for row in reader:
            line = reader.line_num
            row = dict(row)
            row[config.image_column] = os.path.join(base, row[config.image_column] or '')
            problem = _row_problem(row, config, seen)
            if problem is None:
                seen[row[config.image_column]] = line
                rows.append(row)
            else:
                bad.append(f'line {line}: {problem}')
    if bad and not skip_bad:
        listed = '\n  '.join(bad[:MAX_LISTED_BAD_ROWS])
        more = f'\n  ... and {len(bad) - MAX_LISTED_BAD_ROWS} more' \
            if len(bad) > MAX_LISTED_BAD_ROWS else ''
        raise DatasetError(f'{csv_path!r}: {len(bad)} bad row(s) (--skip-bad leaves them '
                           f'out):\n  {listed}{more}')
    if not rows:
        raise DatasetError(f'{csv_path!r}: no usable rows')
    return rows, csv_path, bad


class _PredictionCollector:
    """ModelScope's ``saving_fn``: receives each evaluation batch's inputs and outputs."""

    def __init__(self):
        self.preds: List[float] = []

    def __call__(self, inputs, outputs) -> None:
        self.preds.extend(outputs['pred'].float().flatten().cpu().tolist())


def run_evaluation(model_dir: str, rows, batch_size: int, workers: int, device: str,
                   precision: str = EXACT_PRECISION,
                   dataset_config: Optional[DatasetConfig] = None):
    """Metrics and per-row predictions from ``build_trainer(...).evaluate()`` (with the
    trainer that skips the hub check of local folders and merges ranks exactly), the
    model scoring in ``precision`` as the pipeline does. Under several processes every
    rank returns the whole result. ``dataset_config``: the model folder's unless given
    (e.g. with the command line's video sampling and pooling)."""
    from modelscope.trainers import build_trainer

    from ..hub import open_model_folder
    from ..metainfo import Trainers
    from ..msdatasets import ImageQualityAssessmentMosDataset
    from ..preprocessors import ImageQualityAssessmentMosPreprocessor
    folder = open_model_folder(model_dir)
    # the folder's preprocessing, as score uses it (not the package default's)
    preprocessor = ImageQualityAssessmentMosPreprocessor.from_config(folder.preprocess_config)
    dataset = ImageQualityAssessmentMosDataset(rows, dataset_config or folder.dataset,
                                               preprocessor)
    collector = _PredictionCollector()
    with tempfile.TemporaryDirectory() as work_dir:
        trainer = build_trainer(name=Trainers.iqa_mos, default_args=dict(
            model=model_dir, train_dataset=None, eval_dataset=dataset, work_dir=work_dir,
            device=device, cfg_options={
                'evaluation.dataloader.batch_size_per_gpu': batch_size,
                'evaluation.dataloader.workers_per_gpu': workers,
                'model.inference_precision': precision}))
        metrics = trainer.evaluate(saving_fn=collector)
    preds = distributed.unshard(distributed.all_gather(collector.preds))
    return metrics, preds, dataset


def write_report(report_dir: str, metrics: Dict[str, float], rows, dataset_config,
                 preds: List[float], skipped: Optional[List[str]] = None,
                 identity: Optional[ModelIdentity] = None) -> None:
    """``metrics.json`` (the metrics, and the ``model_version`` and ``model_sha256`` of
    the weights evaluated when ``identity`` is given), ``predictions.csv``,
    ``scatter.png`` and, when rows were left out, ``skipped.txt``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    os.makedirs(report_dir, exist_ok=True)
    videos = video_summary(rows, dataset_config)
    recorded = dict(metrics, **videos,
                    **(identity.fields() if identity is not None else {}))
    with open(os.path.join(report_dir, 'metrics.json'), 'w') as f:
        json.dump(recorded, f, indent=2)
    if skipped:
        with open(os.path.join(report_dir, 'skipped.txt'), 'w') as f:
            f.write(''.join(f'{problem}\n' for problem in skipped))
    targets = [dataset_config.target(r[dataset_config.mos_column]) for r in rows]
    with open(os.path.join(report_dir, 'predictions.csv'), 'w', newline='') as f:
        writer = csv.writer(f, lineterminator='\n')
        writer.writerow(['path', 'mos', 'target', 'pred'])
        for row, target, pred in zip(rows, targets, preds):
            # the target at 12 significant digits: 2.2 x 0.2 is 0.44, not 0.44000000000000006
            writer.writerow([row[dataset_config.image_column], row[dataset_config.mos_column],
                             format(target, '.12g'), pred])
    figure = Figure(figsize=(6, 6), dpi=100)  # no pyplot: no process-wide backend
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    axes.scatter(targets, preds, s=14, alpha=0.7)
    if len(set(targets)) > 1:
        slope, intercept = np.polyfit(targets, preds, 1)
        xs = np.linspace(min(targets), max(targets), 50)
        axes.plot(xs, slope * xs + intercept, color='tab:red',
                  label=f'fit: pred = {slope:.3f} x true {"-" if intercept < 0 else "+"} '
                  f'{abs(intercept):.3f}')
        axes.legend(loc='best')
    axes.set_xlabel(f'true MOS x {dataset_config.mos_scale:g}')
    axes.set_ylabel('predicted score')
    title = ' '.join(f'{k.upper()} {v:.4f}' for k, v in metrics.items())
    if videos:
        title += (f"\n{videos['video_rows']} videos: {videos['video_sampling']}, "
                  f"{videos['video_pooling']} pooling")
    if identity is not None:
        title += f'\nmodel {identity.describe()}'
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(os.path.join(report_dir, 'scatter.png'))


def video_summary(rows, dataset_config: DatasetConfig) -> Dict[str, object]:
    """How the rows' videos were scored (none when every row is an image): their
    number, the frames sampled from each and the pooling of their scores."""
    from ..video import FrameSampling, is_video
    from ..video.pooling import DEFAULT_POOLING
    count = sum(1 for row in rows if is_video(str(row[dataset_config.image_column])))
    if not count:
        return {}
    sampling = FrameSampling(dataset_config.video_frames, dataset_config.video_fps)
    return {'video_rows': count, 'video_sampling': sampling.describe(),
            'video_pooling': dataset_config.video_pooling or DEFAULT_POOLING}
