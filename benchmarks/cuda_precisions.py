"""Scoring on a CUDA device in each precision (fp32, bf16, fp16) against the exact CPU
scores, and against ModelScope's built-in pipeline on the same device, measured in one
run on this machine.

    python benchmarks/cuda_precisions.py [--images DIR] [--count 24] [--device cuda]

Two image sets: the benchmark's own (``image_set.py``: 720p to 6K, JPEG and PNG, every
degradation family) and the sample photo's 19 views (clean, and each family at severity
1.5 and 3.5), whose scores spread over most of the range. For each precision it prints
the max |difference| and SRCC against our exact CPU pipeline on each set, the network
forward alone (milliseconds per image in batches of ``--batch-size`` network crops, and
the ratio to fp32), and end-to-end images/s of the pipeline scoring the benchmark set as
a list (decoding in ``--workers`` processes) with the ratio to ModelScope's built-in
pipeline, one image at a time, on the same device. ``--device cpu`` runs what a CPU can
(fp32, bf16) as a dry run of the script.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SAMPLE_SEVERITIES = (1.5, 3.5)


def sample_views() -> List[np.ndarray]:
    """The sample photo clean and under each family at ``SAMPLE_SEVERITIES`` (BGR)."""
    from PIL import Image

    from image_set import SOURCE
    from modelscope_iqa.synthetic.distortions import FAMILIES
    base = np.asarray(Image.open(SOURCE).convert('RGB'))
    rng = np.random.default_rng(0)
    views = [base] + [FAMILIES[f](base, s, rng) for f in sorted(FAMILIES)
                      for s in SAMPLE_SEVERITIES]
    return [np.ascontiguousarray(v[:, :, ::-1]) for v in views]


def forward_ms(network, device: str, batch_size: int) -> float:
    """Milliseconds per image of the network alone on uint8 crops already on ``device``
    (each call waits for the device to finish)."""
    import torch

    from speed_runners import crop_size, seconds_per_call
    crops = torch.randint(0, 256, (batch_size, *crop_size(), 3), dtype=torch.uint8,
                          device=device)

    def forward() -> None:
        network(crops)
        if device.startswith('cuda'):
            torch.cuda.synchronize()
    return 1e3 * seconds_per_call(forward) / batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--images', default=os.path.join(tempfile.gettempdir(),
                                                         'modelscope_iqa_bench'))
    parser.add_argument('--count', type=int, default=24)
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--workers', type=int, default=4)
    args = parser.parse_args()

    import torch
    from modelscope.pipelines import pipeline
    from modelscope.utils.constant import Tasks

    from image_set import build_image_set
    from inference_speed import spearman
    from modelscope_iqa import DEFAULT_MODEL_DIR
    from modelscope_iqa.config import PRECISION_BOUNDS
    from speed_runners import builtin_pipeline

    on_cuda = args.device.startswith('cuda')
    if on_cuda and not torch.cuda.is_available():
        raise SystemExit('no CUDA device here: run with --device cpu for a dry run')
    paths = build_image_set(args.images, args.count)
    views = sample_views()
    where = torch.cuda.get_device_name(args.device) if on_cuda else 'CPU'
    print(f'device: {where}; torch {torch.__version__}; {len(paths)} benchmark images, '
          f'{len(views)} sample views', flush=True)

    def scores(pipe, images) -> np.ndarray:
        return np.array([pipe(image)['score'] for image in images])

    exact_cpu = pipeline(Tasks.image_quality_assessment_mos, model=DEFAULT_MODEL_DIR,
                         device='cpu')
    reference = {'benchmark': scores(exact_cpu, paths), 'sample views': scores(exact_cpu, views)}

    builtin = builtin_pipeline(DEFAULT_MODEL_DIR, device=args.device)
    builtin(paths[0])
    start = time.perf_counter()
    builtin_scores = scores(builtin, paths)
    builtin_rate = len(paths) / (time.perf_counter() - start)
    builtin_diff = np.abs(builtin_scores - reference['benchmark']).max()
    print(f"ModelScope's pipeline on {args.device}: {builtin_rate:.2f} images/s, "
          f'max |diff| to our exact CPU scores {builtin_diff:.2e}', flush=True)

    header = (f'{"precision":<10}{"set":<14}{"max |diff|":>12}{"SRCC":>8}'
              f'{"forward ms/img":>16}{"vs fp32":>9}{"images/s":>10}{"vs builtin":>12}')
    print(header)
    forward: Dict[str, float] = {}
    for precision, bound in PRECISION_BOUNDS.items():
        if ('cuda' if on_cuda else 'cpu') not in bound.devices:
            continue
        pipe = pipeline(Tasks.image_quality_assessment_mos, model=DEFAULT_MODEL_DIR,
                        device=args.device, precision=precision, workers=args.workers)
        forward[precision] = forward_ms(pipe.inference_network, args.device,
                                        args.batch_size)
        pipe(paths[:2], batch_size=args.batch_size)  # warm-up: workers, kernels
        start = time.perf_counter()
        listed = np.array([r['score'] for r in pipe(paths, batch_size=args.batch_size)])
        rate = len(paths) / (time.perf_counter() - start)
        got = {'benchmark': listed, 'sample views': scores(pipe, views)}
        for name, expected in reference.items():
            diff = np.abs(got[name] - expected).max()
            timing = ''
            if name == 'benchmark':
                timing = (f'{forward[precision]:16.2f}'
                          f'{forward["fp32"] / forward[precision]:8.2f}x'
                          f'{rate:10.2f}{rate / builtin_rate:11.2f}x')
            print(f'{precision:<10}{name:<14}{diff:12.2e}'
                  f'{spearman(got[name], expected):8.4f}{timing}', flush=True)


if __name__ == '__main__':
    main()
