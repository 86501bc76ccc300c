"""Inference speed, accuracy and memory: ModelScope's built-in pipeline against our
pipeline and our command line in every CPU precision, measured in one run on this machine,
with a guard on each command-line mode's ratio.

    python benchmarks/inference_speed.py [--images DIR] [--count 16] [--workers 2]
                                         [--passes 2] [--results FILE]

Each way (:func:`ways`) is a runner of ``speed_runners.py``, run in a fresh process, one
after the other, so that none shares the CPU or the memory figures of another; each
scores the same images ``--passes`` times and keeps its fastest pass. The command-line
ways run ``modelscope-iqa score`` itself (its ``main``, with the options a user would
give), once on one image to warm up (imports, the int8 calibration cache) and then on
the whole set; their time is the command's own ``--verbose`` timing line, from the
first input to the last row (the start-up until the model is ready is its own column).

Printed for each way: images/s and the ratio to the built-in pipeline, max |difference|
and SRCC against our exact scores, the network forward alone (seconds per crop, GFLOP/s
and the share of this machine's matmul peak), and for the command-line modes whether
they keep their precision's bound (config.PRECISION_BOUNDS) and their ratio floor, and
their ceiling: the ratio they would reach if decoding overlapped the forward perfectly
(the set's decoding and cropping on one core, timed alone, plus the forward's seconds on
every core). Then the peak RSS of scoring one 8000x6000 JPEG. ``--results`` writes it
all as JSON (the README's speed table reads the committed run,
``benchmarks/results/inference_speed_*.json``). Exit status 1 when a mode falls below
its floor or outside its bound: a change that loses speed shows here. Nothing is
compiled.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import speed_runners  # noqa: E402  (beside this file)
from machine import cpu_description  # noqa: E402

BIG_JPEG_SIZE = (8000, 6000)  # width, height
# Every way scores the whole set this many times and keeps its fastest pass: one pass
# alone let the built-in pipeline's time, and so every ratio, vary between runs.
PASSES = 2
MATMUL_SIZE = 4096
# The CPU features that decide the precisions' speed, as the results record them.
CPU_FEATURES = ('avx512_vnni', 'avx512_bf16', 'amx_bf16', 'amx_int8')


@dataclass(frozen=True)
class Way:
    """One way of scoring the set: ``runner`` (of speed_runners.py) called with the
    images, the passes and ``options``. A command-line mode has a ``floor``: the ratio
    to the built-in pipeline below which it has lost speed."""
    name: str
    description: str
    runner: Callable[..., Dict[str, object]]
    options: Dict[str, object] = field(default_factory=dict)
    precision: str = 'fp32'
    floor: Optional[float] = None

    @property
    def command_line(self) -> bool:
        return self.floor is not None


REFERENCE, EXACT = 'builtin', 'exact-pipeline'


def ways(workers: int, onnx_file: str) -> Tuple[Way, ...]:
    """Every way measured, in order: decoding in ``workers`` processes where the way
    has them; the ONNX way scores with ``onnx_file``.

    The floors were set on a 2-core AMD EPYC (AVX512-BF16 and VNNI, no AMX) a little
    below what it measured (benchmarks/results/inference_speed_amd_epyc.json); fp32's
    is the project's goal. A CPU without native bfloat16 or VNNI runs bf16 and int8
    slower, one with AMX faster."""
    runners = speed_runners
    return (
        Way(REFERENCE, "ModelScope's pipeline, one image at a time",
            runners.builtin_one_by_one),
        Way(EXACT, 'our pipeline, fp32, one image at a time', runners.ours_one_by_one),
        Way('exact-pipe-list', 'our pipeline, fp32, the whole list in one call (the engine)',
            runners.ours_as_a_list, {'workers': workers}),
        Way('cli-fp32', 'modelscope-iqa score --precision fp32 (the default)',
            runners.score_command, {'workers': workers, 'precision': 'fp32'}, 'fp32', 1.35),
        Way('cli-bf16', 'modelscope-iqa score --precision bf16',
            runners.score_command, {'workers': workers, 'precision': 'bf16'}, 'bf16', 2.3),
        Way('cli-int8', 'modelscope-iqa score --precision int8',
            runners.score_command, {'workers': workers, 'precision': 'int8'}, 'int8', 2.9),
        Way('cli-onnx', 'modelscope-iqa score --backend onnxruntime on the exported fp32 file',
            runners.onnx_score_command, {'workers': workers, 'onnx_file': onnx_file},
            'fp32', 1.5),
    )


def matmul_peaks() -> Dict[str, float]:
    """Best GFLOP/s of a 4096^3 matmul in float32 and bfloat16 (all threads)."""
    import time

    import torch
    peaks = {}
    for name, dtype in (('fp32', torch.float32), ('bf16', torch.bfloat16)):
        a = torch.randn(MATMUL_SIZE, MATMUL_SIZE, dtype=dtype)
        b = torch.randn(MATMUL_SIZE, MATMUL_SIZE, dtype=dtype)
        a @ b
        best = float('inf')
        for _ in range(3):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
        peaks[name] = 2 * MATMUL_SIZE ** 3 / best / 1e9
    return peaks


def forward_gflop() -> float:
    """GFLOP of one forward on a network crop (2 x multiply-adds of every conv and
    linear)."""
    import torch

    from modelscope_iqa.models import IqaMosNet
    network = IqaMosNet().eval()
    macs = []

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            kernel = module.weight.shape[1] * module.weight.shape[2] * module.weight.shape[3]
            macs.append(output.numel() * kernel)
        elif isinstance(module, torch.nn.Linear):
            macs.append(output.numel() * module.in_features)
    for module in network.modules():
        module.register_forward_hook(count)
    with torch.no_grad():
        network(torch.zeros(1, 3, *speed_runners.crop_size()))
    return 2 * sum(macs) / 1e9


def spearman(a, b) -> float:
    from scipy.stats import spearmanr
    return float(spearmanr(a, b).statistic)


def make_big_jpeg(folder: str) -> str:
    from PIL import Image

    from image_set import SOURCE, grained_resize
    path = os.path.join(folder, 'big_8000x6000.jpg')
    if not os.path.exists(path):
        source = np.asarray(Image.open(SOURCE).convert('RGB'))
        image = grained_resize(source, BIG_JPEG_SIZE, np.random.default_rng(0))
        Image.fromarray(image).save(path, quality=90)
    return path


def cpu_features() -> Dict[str, object]:
    """machine.py's description, its flags narrowed to :data:`CPU_FEATURES`."""
    cpu = cpu_description()
    return {'name': cpu['name'], 'cores': cpu['cores'],
            'features': [f for f in CPU_FEATURES if f in cpu['flags']]}


def verdicts(way: Way, result: Dict[str, object]) -> List[str]:
    """What a command-line mode misses: its ratio floor, its precision's bound."""
    from modelscope_iqa.config import PRECISION_BOUNDS
    if not way.command_line:
        return []
    bound = PRECISION_BOUNDS[way.precision]
    misses = []
    if result['ratio'] < way.floor:
        misses.append(f'ratio {result["ratio"]:.2f}x < floor {way.floor:.2f}x')
    if result['max_abs_diff'] > bound.max_abs_diff:
        misses.append(f'max|d| {result["max_abs_diff"]:.2g} > bound {bound.max_abs_diff:g}')
    if result['srcc'] < bound.min_srcc:
        misses.append(f'SRCC {result["srcc"]:.4f} < bound {bound.min_srcc:g}')
    return misses


def _share(achieved: float, peaks: Dict[str, float], precision: str) -> str:
    if precision not in peaks:
        return f'{"-":>6}'
    return f'{100 * achieved / peaks[precision]:5.0f}%'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--images', default=os.path.join(tempfile.gettempdir(),
                                                         'modelscope_iqa_bench'))
    parser.add_argument('--count', type=int, default=16)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--passes', type=int, default=PASSES,
                        help=f'passes over the set per way, the fastest kept (default '
                        f'{PASSES})')
    parser.add_argument('--results', help='write the measurements to this JSON file')
    args = parser.parse_args()

    import torch

    from image_set import build_image_set
    from modelscope_iqa import DEFAULT_MODEL_DIR
    from modelscope_iqa.export import export_onnx
    paths = build_image_set(args.images, args.count)
    big_jpeg = make_big_jpeg(args.images)
    cpu = cpu_features()
    print(f'{len(paths)} images in {args.images}; {cpu["name"]}, {cpu["cores"]} cores '
          f'({", ".join(cpu["features"]) or "no VNNI, BF16 or AMX"}); torch '
          f'{torch.__version__}, {torch.get_num_threads()} threads, '
          f'{torch.backends.cpu.get_cpu_capability()}')
    peaks = matmul_peaks()
    gflop = forward_gflop()
    print(f'matmul peak: fp32 {peaks["fp32"]:.0f} GFLOP/s, bf16 {peaks["bf16"]:.0f} GFLOP/s; '
          f'forward: {gflop:.1f} GFLOP per {"x".join(map(str, speed_runners.crop_size()))} '
          'image\n')
    onnx_file = os.path.join(args.images, 'default_model_fp32.onnx')
    export = export_onnx(DEFAULT_MODEL_DIR, onnx_file, 'fp32')
    measured = ways(args.workers, onnx_file)
    results = {way.name: speed_runners.run_in_fresh_process(
        way.runner, paths=paths, passes=args.passes, **way.options) for way in measured}
    decode_s = speed_runners.run_in_fresh_process(speed_runners.decode_and_crop,
                                                  paths=paths)['decode_s']
    cores = os.cpu_count() or 1
    exact = np.array(results[EXACT]['scores'])
    builtin_rate = len(paths) / results[REFERENCE]['seconds']
    header = (f'{"way":15} {"img/s":>6} {"ratio":>6} {"floor":>5} {"ceil":>5} {"max|d|":>9} '
              f'{"SRCC":>7} {"start s":>7} {"RSS+MB":>7} {"fwd s":>6} {"GFLOP/s":>8} '
              f'{"%peak":>6}  verdict')
    print(header)
    print('-' * len(header))
    missed = {}
    for way in measured:
        result = results[way.name]
        scores = np.array(result['scores'])
        result['images_per_s'] = len(paths) / result['seconds']
        result['ratio'] = result['images_per_s'] / builtin_rate
        result['max_abs_diff'] = float(np.abs(scores - exact).max())
        result['srcc'] = spearman(scores, exact)
        achieved = gflop / result['forward_s']
        misses = verdicts(way, result)
        if misses:
            missed[way.name] = misses
        floor = ceiling = ''
        if way.command_line:
            floor = f'{way.floor:4.2f}x'
            work = decode_s + len(paths) * result['forward_s'] * cores  # core-seconds
            result['ceiling_ratio'] = cores * len(paths) / work / builtin_rate
            ceiling = f'{result["ceiling_ratio"]:4.2f}x'
        startup = f'{result["startup_s"]:7.1f}' if 'startup_s' in result else f'{"":7}'
        verdict = '; '.join(misses) if misses else ('kept' if way.command_line else '')
        print(f'{way.name:15} {result["images_per_s"]:6.2f} {result["ratio"]:5.2f}x '
              f'{floor:>5} {ceiling:>5} '
              f'{result["max_abs_diff"]:9.2e} {result["srcc"]:7.4f} {startup} '
              f'{result["peak_over_idle_mb"]:7.0f} {result["forward_s"]:6.3f} '
              f'{achieved:8.0f} {_share(achieved, peaks, way.precision)}  {verdict}')
    print()
    for way in measured:
        print(f'{way.name:15} {way.description}')
    print(f'{"":15} (ONNX file exported and validated in {export.seconds:.1f} s, max |d| '
          f'{export.max_abs_diff:.2g} on {export.images} validation images)')
    print('\nint8 GFLOP/s count the same operations as float (int8 multiply-adds); '
          'the %peak column compares fp32 and bf16 to their matmul peaks only. "start s": '
          'until the command line\'s model was ready (int8 from its calibration cache). '
          f'"ceil": decoding and cropping the set took {decode_s:.2f} s on one core; with '
          f'it overlapping the forward perfectly on {cores} cores, a mode could reach '
          'that ratio at most.')
    print('\nScoring one 8000x6000 JPEG, peak RSS over the idle RSS after loading the model '
          'and one warm-up image:')
    memory = {}
    for name, runner in ((REFERENCE, speed_runners.builtin_memory),
                         (EXACT, speed_runners.our_memory)):
        memory[name] = speed_runners.run_in_fresh_process(runner, image=big_jpeg,
                                                          warm_image=paths[1 % len(paths)])
        print(f'  {name:16} +{memory[name]["peak_over_idle_mb"]:.0f} MB '
              f'(idle {memory[name]["idle_rss_mb"]:.0f} MB)')
    if args.results:
        record = {
            'date': datetime.date.today().isoformat(), 'cpu': cpu,
            'torch': torch.__version__, 'threads': torch.get_num_threads(),
            'images': len(paths), 'workers': args.workers, 'passes': args.passes,
            'matmul_peak_gflops': peaks,
            'ratio_floors': {way.name: way.floor for way in measured if way.command_line},
            'decode_s': decode_s,
            'ways': {name: {k: v for k, v in result.items() if k != 'scores'}
                     for name, result in results.items()},
            'big_jpeg_peak_over_idle_mb': {name: m['peak_over_idle_mb']
                                           for name, m in memory.items()}}
        Path(args.results).write_text(json.dumps(record, indent=2) + '\n')
        print(f'\nwritten to {args.results}')
    if missed:
        print('\nBELOW FLOOR OR OUTSIDE BOUND: ' + ' | '.join(f'{name}: {"; ".join(m)}'
                                                     for name, m in missed.items()))
        return 1
    print('\nevery command-line mode keeps its ratio floor and its precision\'s bound')
    return 0


if __name__ == '__main__':
    sys.exit(main())
