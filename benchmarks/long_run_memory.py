"""Memory over a long scoring run: 10,000 small generated PNGs scored by one
``modelscope-iqa score`` process (small crop size, so the run takes minutes), with the
process's RSS sampled at every tenth of the run.

    python benchmarks/long_run_memory.py [--images 10000] [--workers 1]

Prints RSS (MB) at 10%, 20%, ... 100% of the rows written, and the growth from 10% to
the end.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

SMALL_SIZES = {'resize_size': [96, 160], 'crop_size': [64, 128]}
IMAGE_SHAPE = (24, 40, 3)


def rss_mb(pid: int) -> float:
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    raise RuntimeError('no VmRSS')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=10_000)
    parser.add_argument('--workers', type=int, default=1)
    args = parser.parse_args(argv)
    from modelscope_iqa.config import CONFIGURATION_FILE, DEFAULT_MODEL_PATH
    with tempfile.TemporaryDirectory() as scratch:
        model = Path(scratch) / 'model'
        model.mkdir()
        configuration = json.loads(CONFIGURATION_FILE.read_text())
        configuration['preprocessor'].update(SMALL_SIZES)
        (model / 'configuration.json').write_text(json.dumps(configuration))
        shutil.copy(DEFAULT_MODEL_PATH / 'pytorch_model.pt', model)
        images = Path(scratch) / 'images'
        images.mkdir()
        rng = np.random.default_rng(0)
        for i in range(args.images):
            cv2.imwrite(str(images / f'{i:05d}.png'), rng.integers(0, 256, IMAGE_SHAPE, np.uint8))
        output = Path(scratch) / 'scores.csv'
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, '-m', 'modelscope_iqa', 'score', str(images), '--model',
             str(model), '--output', str(output), '--workers', str(args.workers), '-q'],
            stdout=subprocess.DEVNULL)
        marks = [args.images * tenth // 10 for tenth in range(1, 11)]
        samples = {}
        while process.poll() is None:
            done = output.read_bytes().count(b'\n') - 1 if output.exists() else 0
            for mark in marks:
                if done >= mark and mark not in samples:
                    samples[mark] = rss_mb(process.pid)
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        rows = output.read_bytes().count(b'\n') - 1
    print(f'{rows} rows of {args.images} images in {seconds:.0f} s '
          f'(exit status {process.returncode}); RSS of the scoring process:')
    for mark in marks:
        if mark in samples:
            print(f'  {100 * mark // args.images:3d}%  {samples[mark]:7.1f} MB')
    if marks[0] in samples and samples:
        last = samples[max(samples)]
        print(f'growth from 10% to {100 * max(samples) // args.images}%: '
              f'{last - samples[marks[0]]:+.1f} MB')
    return 0 if process.returncode == 0 and rows == args.images else 1


if __name__ == '__main__':
    sys.exit(main())
