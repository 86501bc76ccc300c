"""Inference speed, accuracy and memory: ModelScope's built-in pipeline against our
pipeline and our command line in every CPU precision, measured in one run on this machine,
with a guard on each mode's ratio.

    python benchmarks/inference_speed.py [--images DIR] [--count 16] [--workers 2]
                                         [--results FILE]

The command-line ways run ``modelscope-iqa score`` itself (its ``main``, with the options
a user would give) in a fresh process, once on one image to warm up (imports, the int8
calibration cache) and then on the whole set; their images/s is the run's own
``--verbose`` timing line, from the first input to the last row (the start-up until the
model is ready is its own column). Every way scores the same images PASSES times, its
fastest pass counted, each way in a fresh process, one after the other, so that none shares the CPU or the memory figures of
another. Printed for each: images/s and the ratio to the built-in pipeline, max
|difference| and SRCC against our exact scores, the network forward alone (seconds per
crop, GFLOP/s and the share of this machine's matmul peak), and whether the mode keeps
its precision's bound (config.PRECISION_BOUNDS) and its ratio floor (RATIO_FLOORS), and
its ceiling: the ratio it would reach if decoding overlapped its forward perfectly (the
set's decoding and cropping on one core, timed alone, plus the forward's seconds on
every core). Then the peak RSS of scoring one 8000x6000 JPEG. ``--results`` writes it all as JSON (the
README's speed table reads the committed file). Exit status 1 when a mode falls below its
floor or outside its bound: a change that loses speed shows here. Nothing is compiled.
"""
from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BUILTIN_CONFIGURATION = {
    'framework': 'pytorch', 'task': 'image-quality-assessment-mos',
    'model': {'type': 'image-quality-assessment-mos'},
    'pipeline': {'type': 'image-quality-assessment-mos'},
    'preprocessor': {'type': 'image-quality_assessment-mos-preprocessor'},
}
BIG_JPEG_SIZE = (8000, 6000)  # width, height
FORWARD_REPEATS = 5
# Every way scores the whole set this many times and keeps its fastest pass: one pass
# alone let the built-in pipeline's time, and so every ratio, vary by 10% between runs.
PASSES = 2
MATMUL_SIZE = 4096
WAYS = {
    'builtin': "ModelScope's pipeline, one image at a time",
    'exact-pipeline': 'our pipeline, fp32, one image at a time',
    'exact-pipe-list': 'our pipeline, fp32, the whole list in one call (the engine)',
    'cli-fp32': 'modelscope-iqa score (default precision, decoding workers)',
    'cli-bf16': 'modelscope-iqa score --precision bf16',
    'cli-int8': 'modelscope-iqa score --precision int8',
    'cli-onnx': 'modelscope-iqa score --backend onnxruntime on the exported fp32 file',
}
# Each command-line way: its precision, and the options it adds to `score`.
CLI_WAYS = {'cli-fp32': ('fp32', []), 'cli-bf16': ('bf16', ['--precision', 'bf16']),
            'cli-int8': ('int8', ['--precision', 'int8']),
            'cli-onnx': ('fp32', ['--backend', 'onnxruntime'])}
# The ratio to the built-in pipeline below which a command-line mode has lost speed: set
# on a 2-core AMD EPYC (AVX512-BF16 and VNNI, no AMX) a little below what it measured
# (fp32 1.54x, bf16 2.57x, int8 3.17x, ONNX 1.66x); fp32's is the project's goal. A CPU
# without native bfloat16 or VNNI runs bf16 and int8 slower, one with AMX faster.
RATIO_FLOORS = {'cli-fp32': 1.35, 'cli-bf16': 2.3, 'cli-int8': 2.9, 'cli-onnx': 1.5}
CPU_FEATURES = ('avx512_vnni', 'avx512_bf16', 'amx_bf16', 'amx_int8')


# ---------------------------------------------------------------- in the child process
def _rss_mb() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 1e6


def _reset_peak_rss() -> None:
    """Linux: make the peak RSS (VmHWM) restart from the current RSS."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def _peak_rss_mb() -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1e3
    raise RuntimeError('no VmHWM in /proc/self/status')


def _pipeline(model_dir: str, **options):
    """Our pipeline on CPU (``model_dir``'s configuration names it)."""
    from modelscope.pipelines import pipeline
    from modelscope.utils.constant import Tasks
    return pipeline(Tasks.image_quality_assessment_mos, model=model_dir, device='cpu',
                    **options)


def _builtin_pipeline(model_dir: str, device: str = 'cpu'):
    from modelscope.pipelines import pipeline
    from modelscope.utils.constant import Tasks
    with tempfile.TemporaryDirectory(prefix='builtin_model_') as folder:
        with open(os.path.join(folder, 'configuration.json'), 'w') as f:
            json.dump(BUILTIN_CONFIGURATION, f)
        shutil.copy(os.path.join(model_dir, 'pytorch_model.pt'), folder)
        # The pipeline reads the weights while it is built; the folder can go after.
        return pipeline(Tasks.image_quality_assessment_mos, model=folder, device=device)


def _seconds_per_call(call) -> float:
    """Mean seconds of ``call()`` over FORWARD_REPEATS calls, after one warm-up call."""
    call()
    start = time.perf_counter()
    for _ in range(FORWARD_REPEATS):
        call()
    return (time.perf_counter() - start) / FORWARD_REPEATS


def _crop_size():
    """(height, width) of the network's crop, from the package's configuration."""
    from modelscope_iqa.config import PreprocessConfig
    return PreprocessConfig.from_mapping().crop_size


def _forward_seconds(network) -> float:
    """Seconds per image of our network forward alone (one network crop)."""
    import torch
    crop = torch.randint(0, 256, (1, *_crop_size(), 3), dtype=torch.uint8)
    return _seconds_per_call(lambda: network(crop))


def _builtin_forward_seconds(pipe) -> float:
    import torch
    batch = torch.rand(1, 3, *_crop_size())
    with torch.no_grad():
        return _seconds_per_call(lambda: pipe.model.forward({'input': batch}))


def onnx_file(folder: str) -> str:
    """Where the parent exports the default model's fp32 ONNX file."""
    return os.path.join(folder, 'default_model_fp32.onnx')


class _TimingLine(logging.Handler):
    """Keeps the arguments of the score command's timing line (TIMING_MESSAGE)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.timings = []

    def emit(self, record: logging.LogRecord) -> None:
        from modelscope_iqa.cli.score import TIMING_MESSAGE
        if record.msg == TIMING_MESSAGE:
            self.timings.append(record.args)


def _run_cli(way: str, paths: List[str], workers: int, output: str) -> tuple:
    """``modelscope-iqa score`` as a user runs it, through its ``main``: (inputs, scoring
    seconds, seconds until the model was ready)."""
    from modelscope_iqa.cli.main import main
    options = list(CLI_WAYS[way][1])
    if way == 'cli-onnx':
        options += ['--onnx', onnx_file(os.path.dirname(paths[0]))]
    timing = _TimingLine()
    logger = logging.getLogger('modelscope_iqa.cli.score')
    logger.addHandler(timing)
    try:
        status = main(['score', *paths, *options, '--workers', str(workers), '--output',
                       output, '--quiet', '--verbose'])
    finally:
        logger.removeHandler(timing)
    if status != 0 or len(timing.timings) != 1:
        raise SystemExit(f'{way}: modelscope-iqa score exited {status} with '
                         f'{len(timing.timings)} timing lines')
    inputs, seconds, _, ready = timing.timings[0]
    return inputs, seconds, ready


def run_child(way: str, paths: List[str], workers: int) -> Dict[str, object]:
    import torch

    from modelscope_iqa import DEFAULT_MODEL_DIR
    result: Dict[str, object] = {'way': way}
    model_dir = DEFAULT_MODEL_DIR
    if way in CLI_WAYS:
        from modelscope_iqa.cli.results import read_rows
        with tempfile.TemporaryDirectory(prefix='speed_') as folder:
            output = os.path.join(folder, 'scores.csv')
            _run_cli(way, paths[:1], workers, output)  # imports, the int8 calibration cache
            result['idle_rss_mb'] = _rss_mb()
            _reset_peak_rss()
            passes = []
            for _ in range(PASSES):
                os.remove(output)
                passes.append(_run_cli(way, paths, workers, output))
            inputs, result['seconds'], result['startup_s'] = min(passes, key=lambda p: p[1])
            result['peak_over_idle_mb'] = _peak_rss_mb() - result['idle_rss_mb']
            scores = {row['path']: float(row['score']) for row in read_rows(output)}
        if inputs != len(paths) or set(scores) != set(paths):
            raise SystemExit(f'{way}: scored {inputs} inputs, {len(scores)} rows, of '
                             f'{len(paths)}')
        result['scores'] = [scores[path] for path in paths]
        if way == 'cli-onnx':
            from modelscope_iqa.export import OnnxNetwork
            network = OnnxNetwork(onnx_file(os.path.dirname(paths[0])))
        else:
            from modelscope_iqa.hub import load_model, open_model_folder
            folder = open_model_folder(model_dir)
            network = load_model(folder).inference_network(CLI_WAYS[way][0], 'cpu',
                                                           folder.preprocess_config)
        result['forward_s'] = _forward_seconds(network)
        result['threads'] = torch.get_num_threads()
        return result
    if way == 'builtin':
        pipe = _builtin_pipeline(model_dir)
        pipe(paths[0])  # first call: ModelScope places the model
        result['forward_s'] = _builtin_forward_seconds(pipe)
        score_all = (lambda: [pipe(p)['score'] for p in paths])  # noqa: E731
    elif way == 'exact-pipeline':
        pipe = _pipeline(model_dir)
        pipe(paths[0])
        result['forward_s'] = _forward_seconds(pipe.inference_network)
        score_all = (lambda: [pipe(p)['score'] for p in paths])  # noqa: E731
    else:  # exact-pipe-list
        pipe = _pipeline(model_dir, workers=workers)
        pipe(paths[0])
        result['forward_s'] = _forward_seconds(pipe.inference_network)
        score_all = (lambda: [r['score'] for r in pipe(paths)])  # noqa: E731
    result['idle_rss_mb'] = _rss_mb()
    _reset_peak_rss()
    result['seconds'] = float('inf')
    for _ in range(PASSES):
        start = time.perf_counter()
        result['scores'] = score_all()
        result['seconds'] = min(result['seconds'], time.perf_counter() - start)
    result['peak_over_idle_mb'] = _peak_rss_mb() - result['idle_rss_mb']
    result['threads'] = torch.get_num_threads()
    return result


def run_decode_child(paths: List[str]) -> Dict[str, object]:
    """Seconds to decode and crop the whole set once, on one core (the work the
    decoding workers do)."""
    import cv2
    import torch

    from modelscope_iqa.config import PreprocessConfig
    from modelscope_iqa.preprocessors import decode, network_crop
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    config = PreprocessConfig.from_mapping()
    network_crop(decode(paths[0]), config)
    start = time.perf_counter()
    for path in paths:
        network_crop(decode(path), config)
    return {'decode_s': time.perf_counter() - start}


def run_memory_child(way: str, big_jpeg: str, warm_image: str) -> Dict[str, object]:
    from modelscope_iqa import DEFAULT_MODEL_DIR
    if way == 'builtin':
        pipe = _builtin_pipeline(DEFAULT_MODEL_DIR)
    else:
        pipe = _pipeline(DEFAULT_MODEL_DIR)
    pipe(warm_image)  # the first forward's one-time allocations are not the image's
    idle = _rss_mb()
    _reset_peak_rss()
    pipe(big_jpeg)
    return {'way': way, 'idle_rss_mb': idle, 'peak_over_idle_mb': _peak_rss_mb() - idle}


# --------------------------------------------------------------- in the parent process
def matmul_peaks() -> Dict[str, float]:
    """Best GFLOP/s of a 4096^3 matmul in float32 and bfloat16 (all threads)."""
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
        network(torch.zeros(1, 3, *_crop_size()))
    return 2 * sum(macs) / 1e9


def _share(achieved: float, peaks: Dict[str, float], precision: str) -> str:
    if precision not in peaks:
        return f'{"-":>6}'
    return f'{100 * achieved / peaks[precision]:5.0f}%'


def spearman(a, b) -> float:
    from scipy.stats import spearmanr
    return float(spearmanr(a, b).statistic)


def _child(args: List[str]) -> Dict[str, object]:
    completed = subprocess.run([sys.executable, __file__, *args], capture_output=True,
                               text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f'child {args[:2]} failed:\n{completed.stderr[-3000:]}')
    return json.loads(completed.stdout.strip().splitlines()[-1])


def make_big_jpeg(folder: str) -> str:
    from PIL import Image

    from image_set import SOURCE, grained_resize
    path = os.path.join(folder, 'big_8000x6000.jpg')
    if not os.path.exists(path):
        source = np.asarray(Image.open(SOURCE).convert('RGB'))
        image = grained_resize(source, BIG_JPEG_SIZE, np.random.default_rng(0))
        Image.fromarray(image).save(path, quality=90)
    return path


def cpu_description() -> Dict[str, object]:
    """This machine's CPU: its model name (as torch reads it), cores and the features
    that decide the precisions' speed."""
    import torch
    capabilities = torch.cpu.get_capabilities() if hasattr(torch.cpu, 'get_capabilities') \
        else {}
    name = capabilities.get('cpu_name') or platform.processor() or platform.machine()
    return {'name': name, 'cores': os.cpu_count(),
            'features': [f for f in CPU_FEATURES if capabilities.get(f)]}


def verdicts(way: str, result: Dict[str, object]) -> List[str]:
    """What a command-line mode misses: its ratio floor, its precision's bound."""
    from modelscope_iqa.config import PRECISION_BOUNDS
    if way not in CLI_WAYS:
        return []
    bound = PRECISION_BOUNDS[CLI_WAYS[way][0]]
    misses = []
    if result['ratio'] < RATIO_FLOORS[way]:
        misses.append(f'ratio {result["ratio"]:.2f}x < floor {RATIO_FLOORS[way]:.2f}x')
    if result['max_abs_diff'] > bound.max_abs_diff:
        misses.append(f'max|d| {result["max_abs_diff"]:.2g} > bound {bound.max_abs_diff:g}')
    if result['srcc'] < bound.min_srcc:
        misses.append(f'SRCC {result["srcc"]:.4f} < bound {bound.min_srcc:g}')
    return misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--images', default=os.path.join(tempfile.gettempdir(),
                                                         'modelscope_iqa_bench'))
    parser.add_argument('--count', type=int, default=16)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--results', help='write the measurements to this JSON file')
    parser.add_argument('--child', choices=sorted(WAYS), help=argparse.SUPPRESS)
    parser.add_argument('--memory-child', choices=['builtin', 'exact-pipeline'],
                        help=argparse.SUPPRESS)
    parser.add_argument('--decode-child', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()

    from image_set import build_image_set
    paths = build_image_set(args.images, args.count)
    if args.child:
        print(json.dumps(run_child(args.child, paths, args.workers)))
        return 0
    if args.decode_child:
        print(json.dumps(run_decode_child(paths)))
        return 0
    big_jpeg = make_big_jpeg(args.images)
    if args.memory_child:
        print(json.dumps(run_memory_child(args.memory_child, big_jpeg, paths[1])))
        return 0

    import torch

    from modelscope_iqa import DEFAULT_MODEL_DIR
    from modelscope_iqa.export import export_onnx
    cpu = cpu_description()
    print(f'{len(paths)} images in {args.images}; {cpu["name"]}, {cpu["cores"]} cores '
          f'({", ".join(cpu["features"]) or "no VNNI, BF16 or AMX"}); torch '
          f'{torch.__version__}, {torch.get_num_threads()} threads, '
          f'{torch.backends.cpu.get_cpu_capability()}')
    peaks = matmul_peaks()
    gflop = forward_gflop()
    print(f'matmul peak: fp32 {peaks["fp32"]:.0f} GFLOP/s, bf16 {peaks["bf16"]:.0f} GFLOP/s; '
          f'forward: {gflop:.1f} GFLOP per {"x".join(map(str, _crop_size()))} image\n')
    export = export_onnx(DEFAULT_MODEL_DIR, onnx_file(os.path.dirname(paths[0])), 'fp32')
    results = {way: _child(['--child', way, '--images', args.images, '--count',
                            str(args.count), '--workers', str(args.workers)])
               for way in WAYS}
    decode_s = _child(['--decode-child', '--images', args.images, '--count',
                       str(args.count)])['decode_s']
    cores = os.cpu_count() or 1
    exact = np.array(results['exact-pipeline']['scores'])
    builtin_rate = len(paths) / results['builtin']['seconds']
    header = (f'{"way":15} {"img/s":>6} {"ratio":>6} {"floor":>5} {"ceil":>5} {"max|d|":>9} '
              f'{"SRCC":>7} {"start s":>7} {"RSS+MB":>7} {"fwd s":>6} {"GFLOP/s":>8} '
              f'{"%peak":>6}  verdict')
    print(header)
    print('-' * len(header))
    missed = {}
    for way, result in results.items():
        scores = np.array(result['scores'])
        result['images_per_s'] = len(paths) / result['seconds']
        result['ratio'] = result['images_per_s'] / builtin_rate
        result['max_abs_diff'] = float(np.abs(scores - exact).max())
        result['srcc'] = spearman(scores, exact)
        precision = CLI_WAYS[way][0] if way in CLI_WAYS else 'fp32'
        achieved = gflop / result['forward_s']
        misses = verdicts(way, result)
        if misses:
            missed[way] = misses
        floor = f'{RATIO_FLOORS[way]:4.2f}x' if way in RATIO_FLOORS else ''
        ceiling = ''
        if way in CLI_WAYS:
            work = decode_s + len(paths) * result['forward_s'] * cores  # core-seconds
            result['ceiling_ratio'] = cores * len(paths) / work / builtin_rate
            ceiling = f'{result["ceiling_ratio"]:4.2f}x'
        startup = f'{result["startup_s"]:7.1f}' if 'startup_s' in result else f'{"":7}'
        verdict = '; '.join(misses) if misses else ('kept' if way in CLI_WAYS else '')
        print(f'{way:15} {result["images_per_s"]:6.2f} {result["ratio"]:5.2f}x {floor:>5} '
              f'{ceiling:>5} '
              f'{result["max_abs_diff"]:9.2e} {result["srcc"]:7.4f} {startup} '
              f'{result["peak_over_idle_mb"]:7.0f} {result["forward_s"]:6.3f} '
              f'{achieved:8.0f} {_share(achieved, peaks, precision)}  {verdict}')
    print()
    for way, text in WAYS.items():
        print(f'{way:15} {text}')
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
    for way in ('builtin', 'exact-pipeline'):
        memory[way] = _child(['--memory-child', way, '--images', args.images,
                              '--count', str(args.count)])
        print(f'  {way:16} +{memory[way]["peak_over_idle_mb"]:.0f} MB '
              f'(idle {memory[way]["idle_rss_mb"]:.0f} MB)')
    if args.results:
        record = {
            'date': datetime.date.today().isoformat(), 'cpu': cpu,
            'torch': torch.__version__, 'threads': torch.get_num_threads(),
            'images': len(paths), 'workers': args.workers, 'matmul_peak_gflops': peaks,
            'ratio_floors': RATIO_FLOORS, 'decode_s': decode_s,
            'ways': {way: {k: v for k, v in result.items() if k not in ('scores', 'way')}
                     for way, result in results.items()},
            'big_jpeg_peak_over_idle_mb': {way: m['peak_over_idle_mb']
                                           for way, m in memory.items()}}
        Path(args.results).write_text(json.dumps(record, indent=2) + '\n')
        print(f'\nwritten to {args.results}')
    if missed:
        print('\nBELOW FLOOR OR OUTSIDE BOUND: ' + ' | '.join(f'{way}: {"; ".join(m)}'
                                                     for way, m in missed.items()))
        return 1
    print('\nevery command-line mode keeps its ratio floor and its precision\'s bound')
    return 0


if __name__ == '__main__':
    sys.exit(main())
