"""Issue 32: the build's reports of several candidates side by side, per family.

For each of the four held-out sets (the wallpapers' held-out and audit photos, the
gcompris held-out and audit photos) prints one markdown table: a row per candidate with
the mean SRCC over (photo, family), the share of cross-photo pairs in order, the mean
score of the clean views (severity 0) and of the strongest (4), and each family's SRCC.
The first row is the shipped model, read from its committed reports.

    python experiments/tools/family_table.py RESULTS_OR_WORK [RESULTS_OR_WORK ...]

Each argument is a folder holding the build's report files (``report.json``,
``audit_report.json``, ``gcompris_report.json``, ``gcompris_audit_report.json``): a
work folder or its copy under experiments/results. A candidate without a set's file is
left out of that table.
"""
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / 'results'
# (title, the report's file name in a work folder, the shipped model's committed report)
SETS = (
    ('wallpaper held out', 'report.json', RESULTS / 'default_model_report.json'),
    ('wallpaper audit', 'audit_report.json', RESULTS / 'default_model_audit_report.json'),
    ('gcompris held out', 'gcompris_report.json',
     RESULTS / 'gcompris' / 'default_model_gcompris_report.json'),
    ('gcompris audit', 'gcompris_audit_report.json',
     RESULTS / 'gcompris' / 'default_model_gcompris_audit_report.json'),
)


def row(label: str, measures: dict, families) -> str:
    severity = measures['mean_by_severity']
    cells = [label, f"{measures['mean_srcc']:.3f}", f"{measures['cross_photo_pairs']:.3f}",
             f"{severity['0']:.3f}", f"{severity['4']:.3f}"]
    cells += [f"{measures['srcc_by_family'][f]:.3f}" for f in families]
    return '| ' + ' | '.join(cells) + ' |'


def main(folders) -> int:
    for title, name, shipped in SETS:
        rows = [('shipped', json.loads(shipped.read_text())['model'])]
        rows += [(Path(folder).name, json.loads((Path(folder) / name).read_text())['model'])
                 for folder in folders if (Path(folder) / name).is_file()]
        families = sorted(rows[0][1]['srcc_by_family'])
        print(f'\n{title}:\n')
        print('| model | mean SRCC | cross-photo pairs | clean mean | severity 4 mean | '
              + ' | '.join(families) + ' |')
        print('| --- ' * (5 + len(families)) + '|')
        for label, measures in rows:
            print(row(label, measures, families))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
