"""What a quality map costs beside the score: one 12-megapixel JPEG (4000 x 3000, made
from the committed sample) scored by the pipeline, by ``quality_map`` (score and map
from one forward pass), and by ``quality_map`` plus drawing its overlay, fp32 on this
machine, in one run.

    python benchmarks/quality_map_speed.py [--repeats 7]

Prints the median seconds of each and its ratio to the pipeline's score.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

SAMPLE = Path(__file__).resolve().parent.parent / 'samples' / 'cups_pristine.jpg'
PHOTO_SIZE = (4000, 3000)  # width, height: 12 megapixels
JPEG_QUALITY = 92


def _median_seconds(call, repeats: int) -> float:
    call()  # warm-up: first-call allocations and caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--repeats', type=int, default=7)
    args = parser.parse_args(argv)

    import modelscope_iqa
    from modelscope.outputs import OutputKeys
    from modelscope.pipelines import pipeline
    from modelscope.utils.constant import Tasks
    from modelscope_iqa.maps import QualityMapper

    with tempfile.TemporaryDirectory() as folder:
        photo = str(Path(folder) / 'photo_12mp.jpg')
        cv2.imwrite(photo, cv2.resize(cv2.imread(str(SAMPLE)), PHOTO_SIZE,
                                      interpolation=cv2.INTER_CUBIC),
                    [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        iqa = pipeline(Tasks.image_quality_assessment_mos,
                       model=modelscope_iqa.DEFAULT_MODEL_DIR)
        mapper = QualityMapper()
        assert mapper(photo).score == iqa(photo)[OutputKeys.SCORE]
        ways = {
            'pipeline score': lambda: iqa(photo),
            'quality_map (score + grid)': lambda: mapper(photo),
            'quality_map + overlay': lambda: mapper(photo).overlay(),
        }
        seconds = {name: _median_seconds(call, args.repeats) for name, call in ways.items()}
    base = seconds['pipeline score']
    print(f'12 MP JPEG ({PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}), fp32, median of {args.repeats}:')
    for name, value in seconds.items():
        print(f'  {name:<28} {value:6.3f} s   {value / base:5.2f}x the score')
    return 0


if __name__ == '__main__':
    sys.exit(main())
