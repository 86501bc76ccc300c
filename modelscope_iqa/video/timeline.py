"""A video's score over time: ``NAME.timeline.csv`` (frame, time in seconds, score) and
``NAME.timeline.png`` (the scores over time, the pooled score, the worst stretch shaded
and the worst frame marked)."""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

CSV_SUFFIX, PNG_SUFFIX = '.timeline.csv', '.timeline.png'
TIMELINE_FIELDS = ('frame', 'time', 'score')
# The worst stretch: this share of the sampled frames (at least one), consecutive, with
# the lowest mean score.
STRETCH_SHARE = 0.1
FIGURE_SIZE = (10.0, 3.6)  # inches
FIGURE_DPI = 100
POOR_COLOUR, LINE_COLOUR = '#c0392b', '#1f5f8b'


@dataclass(frozen=True)
class Stretch:
    """Sampled frames ``first`` to ``last`` (positions in the timeline), from ``start``
    to ``end`` seconds, whose scores average ``mean``."""
    first: int
    last: int
    start: float
    end: float
    mean: float


def worst_stretch(times: Sequence[float], scores: Sequence[float],
                  share: float = STRETCH_SHARE) -> Stretch:
    """The ``share`` of consecutive sampled frames (at least one) with the lowest mean
    score; the earliest such run when several tie."""
    length = max(1, math.ceil(share * len(scores)))
    best: Optional[Tuple[float, int]] = None
    running = sum(scores[:length])
    for first in range(len(scores) - length + 1):
        if first:
            running += scores[first + length - 1] - scores[first - 1]
        if best is None or running < best[0] - 1e-12:
            best = (running, first)
    total, first = best
    last = first + length - 1
    return Stretch(first, last, times[first], times[last], total / length)


def write_timeline(stem: str, frame_numbers: Sequence[int], times: Sequence[float],
                   scores: Sequence[float], pooled: float, pooling: str,
                   title: str) -> Tuple[str, str]:
    """Write ``stem + '.timeline.csv'`` and ``stem + '.timeline.png'``; their paths."""
    os.makedirs(os.path.dirname(stem) or '.', exist_ok=True)
    with open(stem + CSV_SUFFIX, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f, lineterminator='\n')
        writer.writerow(TIMELINE_FIELDS)
        for number, time, score in zip(frame_numbers, times, scores):
            writer.writerow([number, repr(float(time)), repr(float(score))])
    figure = timeline_figure(frame_numbers, times, scores, pooled, pooling, title)
    figure.savefig(stem + PNG_SUFFIX, dpi=FIGURE_DPI)
    return stem + CSV_SUFFIX, stem + PNG_SUFFIX


def timeline_figure(frame_numbers: Sequence[int], times: Sequence[float],
                    scores: Sequence[float], pooled: float, pooling: str, title: str):
    """The timeline plot as a matplotlib ``Figure`` with an Agg canvas: no pyplot, so no
    process-wide state (a web server's threads may draw at once), nothing to close."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    stretch = worst_stretch(times, scores)
    worst = min(range(len(scores)), key=lambda i: (scores[i], i))
    figure = Figure(figsize=FIGURE_SIZE, layout='constrained')
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    spacing = (times[-1] - times[0]) / max(1, len(times) - 1)
    half = spacing / 2 if len(times) > 1 else 0.5
    when = (f'{stretch.start:.1f}-{stretch.end:.1f} s' if stretch.last > stretch.first
            else f'at {stretch.start:.1f} s')
    axes.axvspan(stretch.start - half, stretch.end + half, color=POOR_COLOUR, alpha=0.15,
                 label=f'worst stretch {when}\n(mean {stretch.mean:.3f})')
    axes.plot(times, scores, marker='o', markersize=3 if len(scores) > 60 else 5,
              linewidth=1.5, color=LINE_COLOUR, label='frame score')
    axes.axhline(pooled, color='0.35', linestyle='--', linewidth=1,
                 label=f'video score\n({pooling}) {pooled:.3f}')
    axes.plot([times[worst]], [scores[worst]], marker='v', markersize=11, linestyle='',
              color=POOR_COLOUR,
              label=f'worst frame {frame_numbers[worst]}\nat {times[worst]:.1f} s '
              f'({scores[worst]:.3f})')
    axes.set_ylim(0.0, 1.0)
    axes.set_xlim(times[0] - half, times[-1] + half)
    axes.set_xlabel('time (s)')
    axes.set_ylabel('quality score (higher is better)')
    axes.set_title(title, loc='left', fontsize=11)
    axes.grid(True, alpha=0.3)
    axes.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return figure
