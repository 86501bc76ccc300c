"""Measure a candidate the build trained in a work folder, as the explorations of issue 32
were measured: calibrate it (``calibration.calibrate``, as the build's ``calibrate``
step), then report on the 4 held-out sets (``report.report``, as its ``report`` step)
with BRISQUE left out on the wallpaper sets, whose BRISQUE figures the committed
reports of the shipped model already hold (it takes about as long as the rest); on the
gcompris sets BRISQUE is read from the work folder's cache.

    python experiments/tools/report_candidate.py WORK
"""
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from default_model_build import calibration, heldout, report  # noqa: E402

WALLPAPER_BRISQUE_LEFT_OUT = 'BRISQUE skipped for the wallpaper sets (committed reports have it)'


def main(work_dir: Path) -> None:
    calibration.calibrate(work_dir)
    for held_out in (heldout.VALSET, heldout.AUDITSET):
        report.report(work_dir, held_out, brisque_left_out=WALLPAPER_BRISQUE_LEFT_OUT)
    for held_out in (heldout.GCOMPRIS_VALSET, heldout.GCOMPRIS_AUDITSET):
        report.report(work_dir, held_out)


if __name__ == '__main__':
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    main(Path(sys.argv[1]))
