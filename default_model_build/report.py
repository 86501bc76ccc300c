"""The report on a held-out set: the candidate model (WORK/model) and BRISQUE on the same
images, SRCC of score vs. severity per (photo, family), scores by severity, cross-photo
pairs (modelscope_iqa.metrics.severity); PREFIXreport.json, .md, .png and PREFIXscores.csv.
:func:`render_report` is the Markdown table the README and the model card show."""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from .heldout import DATASET, IMAGE, MOS, VALSET, HeldOutSet, read_rows

LOG = logging.getLogger(__name__)


def brisque_score(scorer, rgb: np.ndarray) -> float:
    """BRISQUE of an RGB image (lower is better), with the ``brisque`` 0.2.0 package.

    Its ``score()`` fails under numpy 2: the features come out as 1-element arrays
    that ``float()`` refuses. This computes the same features through the package's own
    methods and flattens them before its SVR.
    """
    import skimage.color
    grey = skimage.color.rgb2gray(rgb)
    half = cv2.resize(grey, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    features = np.concatenate([scorer.calculate_brisque_features(grey, 7, 7 / 6),
                               scorer.calculate_brisque_features(half, 7, 7 / 6)])
    flat = np.array([np.asarray(f, dtype=np.float64).reshape(-1)[0] for f in features])
    return float(scorer.calculate_image_quality_score(flat))


def brisque_baseline(work_dir: Path, held_out: HeldOutSet = VALSET) -> list:
    """BRISQUE of every image of a held-out set, cached in PREFIXbrisque.json (it does
    not depend on the trained model, so it can run while training does)."""
    cache = held_out.output(work_dir, 'brisque.json')
    rows = read_rows(work_dir, held_out)
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if [c['image'] for c in cached] == [r[IMAGE] for r in rows]:
            return [c['brisque'] for c in cached]
    from brisque import BRISQUE
    scorer = BRISQUE(url=False)
    scores = [brisque_score(scorer, cv2.imread(r[IMAGE])[:, :, ::-1]) for r in rows]
    cache.write_text(json.dumps([{'image': r[IMAGE], 'brisque': b}
                                 for r, b in zip(rows, scores)], indent=1))
    return scores


def report(work_dir: Path, held_out: HeldOutSet = VALSET,
           brisque_left_out: Optional[str] = None) -> dict:
    """Score a held-out set with the candidate model (WORK/model) through our pipeline
    in exact mode, and BRISQUE on the same images unless ``brisque_left_out`` says why
    not (the report records it); write PREFIXreport.json, .md, .png and
    PREFIXscores.csv."""
    from modelscope.pipelines import pipeline
    from modelscope.utils.constant import Tasks
    from modelscope_iqa.metrics import iqa_metrics
    from modelscope_iqa.metrics.severity import severity_report

    iqa = pipeline(Tasks.image_quality_assessment_mos, model=str(work_dir / 'model'))
    rows = read_rows(work_dir, held_out)
    scores = [iqa(r[IMAGE])['score'] for r in rows]
    targets = [DATASET.target(r[MOS]) for r in rows]

    def measures(higher_is_better):
        return severity_report([r['photo'] for r in rows], [r['family'] for r in rows],
                               [int(r['severity']) for r in rows], higher_is_better)

    result = {'images': len(rows), 'photos': sorted({r['photo'] for r in rows}),
              'model': {**measures(scores), 'overall': iqa_metrics(scores, targets)}}
    brisque, not_run = None, brisque_left_out
    if not_run is None:
        try:
            brisque = brisque_baseline(work_dir, held_out)
        except ImportError as exc:
            not_run = str(exc)
    if not_run is not None:
        result['brisque'] = f'not run: {not_run}'
    else:
        # BRISQUE: lower is better, so negate before ranking.
        negated = [-b for b in brisque]
        result['brisque'] = {**measures(negated),
                             'overall_srcc_vs_target': iqa_metrics(negated, targets)['srcc']}
    calibration = work_dir / 'calibration.json'
    if calibration.is_file():
        result['calibration'] = json.loads(calibration.read_text())
    markdown = render_report(result)
    held_out.output(work_dir, 'report.json').write_text(json.dumps(result, indent=2))
    held_out.output(work_dir, 'report.md').write_text(markdown)
    plot_report(rows, scores, result, held_out.output(work_dir, 'report.png'),
                held_out.title)
    with open(held_out.output(work_dir, 'scores.csv'), 'w', newline='') as f:
        writer = csv.writer(f, lineterminator='\n')
        writer.writerow(['image', 'photo', 'family', 'severity', 'target', 'score', 'brisque'])
        for r, s, t, b in zip(rows, scores, targets, brisque or [''] * len(rows)):
            writer.writerow([Path(r[IMAGE]).name, r['photo'], r['family'],
                             r['severity'], t, s, b])
    LOG.info('report on the %s:\n%s', held_out.title, markdown)
    return result


def plot_report(rows, scores, result: dict, path: Path, title: str = VALSET.title) -> None:
    """Two panels: SRCC per family (ours and BRISQUE), and every held-out score by
    severity, one colour per photo (do scores mean the same on every photo?)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    bars, strip = figure.subplots(1, 2, gridspec_kw={'width_ratios': [1.2, 1]})
    families = sorted(result['model']['srcc_by_family'])
    x = np.arange(len(families))
    bars.bar(x - 0.2, [result['model']['srcc_by_family'][f] for f in families], 0.4,
             label=f"default model (mean {result['model']['mean_srcc']:.3f})")
    if isinstance(result['brisque'], dict):
        bars.bar(x + 0.2, [result['brisque']['srcc_by_family'][f] for f in families], 0.4,
                 label=f"BRISQUE (mean {result['brisque']['mean_srcc']:.3f})")
    bars.set_xticks(x, [f.replace('_', '\n') for f in families], fontsize=8)
    bars.set_ylabel('SRCC of score vs. severity')
    bars.set_ylim(min(0.0, bars.get_ylim()[0]), 1.05)
    bars.axhline(0, color='black', linewidth=0.5)
    bars.legend(loc='lower left', fontsize=8)
    bars.set_title(f'Ranking of severities, per family ({title})')
    photos = sorted({r['photo'] for r in rows})
    rng = np.random.default_rng(0)
    for index, photo in enumerate(photos):
        picked = [(int(r['severity']), s) for r, s in zip(rows, scores) if r['photo'] == photo]
        jitter = (index - len(photos) / 2) * 0.05 + rng.uniform(-0.02, 0.02, len(picked))
        strip.scatter([p[0] + j for p, j in zip(picked, jitter)], [p[1] for p in picked],
                      s=10, label=photo)
    strip.set_xticks(range(5), ['pristine', '1', '2', '3', '4'])
    strip.set_xlabel('severity (all nine families)')
    strip.set_ylabel('score')
    strip.set_ylim(0, 1)
    strip.legend(fontsize=7, ncol=2, loc='lower left')
    strip.set_title(f"Scores by severity; pristine > another photo at 3-4 in "
                    f"{100 * result['model']['cross_photo_pairs']:.0f}% of pairs", fontsize=10)
    figure.tight_layout()
    figure.savefig(path)


def render_report(result: dict) -> str:
    """The report as Markdown (for the model card and the README)."""
    model = result['model']
    brisque = result['brisque'] if isinstance(result['brisque'], dict) else None

    def cell(measures, family):
        return '' if measures is None else f"{measures['srcc_by_family'][family]:.3f}"

    lines = ['| degradation family | default model SRCC | BRISQUE SRCC |', '| --- | --- | --- |']
    for family in sorted(model['srcc_by_family']):
        lines.append(f"| {family.replace('_', ' ')} | {cell(model, family)} | "
                     f'{cell(brisque, family)} |')
    lines.append(f"| **mean** | **{model['mean_srcc']:.3f}** | "
                 f"**{'' if brisque is None else format(brisque['mean_srcc'], '.3f')}** |")
    lines.append(f"| weakest family | {model['min_family_srcc']:.3f} | "
                 f"{'' if brisque is None else format(brisque['min_family_srcc'], '.3f')} |")
    lines.append('')
    by_severity = model['mean_by_severity']
    lines.append('Mean score by severity (0 = the pristine photos): ' + ', '.join(
        f'{s}: {v:.3f}' for s, v in sorted(by_severity.items(), key=lambda kv: int(kv[0])))
        + '.')
    lines.append(f"A pristine photo scores above a strongly degraded (severity 3-4) view of "
                 f"another photo in {100 * model['cross_photo_pairs']:.1f}% of "
                 f"{model['cross_photo_pair_count']} such pairs"
                 + ('' if brisque is None else
                    f" (BRISQUE: {100 * brisque['cross_photo_pairs']:.1f}%)") + '.')
    overall = model['overall']
    lines.append(f"All {result['images']} held-out images against their targets: "
                 f"PLCC {overall['plcc']:.3f}, SRCC {overall['srcc']:.3f}, "
                 f"KRCC {overall['krcc']:.3f}, RMSE {overall['rmse']:.3f}"
                 + ('' if brisque is None else
                    f"; BRISQUE SRCC {brisque['overall_srcc_vs_target']:.3f}") + '.')
    return '\n'.join(lines) + '\n'
