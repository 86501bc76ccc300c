"""Inference speed, accuracy and memory: ModelScope's built-in pipeline against our exact
(fp32) and fast (bf16) modes, measured in one run on this machine.

    python benchmarks/inference_speed.py [--images DIR] [--count 24] [--workers 2]

Prints, for each way of scoring the image set (ours in PyTorch, and onnxruntime on the
files ``modelscope-iqa export`` writes): images/s and the ratio to the built-in
pipeline, max |difference| and SRCC against our exact mode, peak RSS over the idle RSS
after loading the model, and the network forward alone (seconds per network crop,
achieved GFLOP/s, and the share of this machine's measured matmul peak in that
precision). Then the peak RSS of scoring one 8000x6000 JPEG. Every way runs in a fresh
process, one after the other, so that none shares the CPU or the memory figures of
another. Nothing is compiled: there is no compilation time to pay back.
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
MATMUL_SIZE = 4096
WAYS = {
    'builtin': "ModelScope's pipeline, one image at a time",
    'exact-pipeline': 'our pipeline, fp32, one image at a time',
    'exact-pipe-list': 'our pipeline, fp32, the whole list in one call (the engine)',
    'exact-cli': 'our CLI path, fp32 (decoding workers)',
    'fast-cli': 'our CLI path, bf16 (decoding workers)',
    'int8-cli': 'our CLI path, int8 (decoding workers)',
    'onnx-fp32': 'onnxruntime on the exported fp32 file, our CLI path (decoding workers)',
    'onnx-int8': 'onnxruntime on the exported int8 file, our CLI path (decoding workers)',
}
CLI_PRECISIONS = {'exact-cli': 'fp32', 'fast-cli': 'bf16', 'int8-cli': 'int8'}
ONNX_PRECISIONS = {'onnx-fp32': 'fp32', 'onnx-int8': 'int8'}


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


def onnx_file(folder: str, way: str) -> str:
    return os.path.join(folder, f'{way}.onnx')


def run_child(way: str, paths: List[str], workers: int) -> Dict[str, object]:
    import torch

    from modelscope_iqa import DEFAULT_MODEL_DIR
    result: Dict[str, object] = {'way': way}
    model_dir = DEFAULT_MODEL_DIR
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
    elif way == 'exact-pipe-list':
        pipe = _pipeline(model_dir, workers=workers)
        pipe(paths[0])
        result['forward_s'] = _forward_seconds(pipe.inference_network)
        score_all = (lambda: [r['score'] for r in pipe(paths)])  # noqa: E731
    else:
        from modelscope_iqa.hub import open_model_folder
        from modelscope_iqa.hub import load_model
        from modelscope_iqa.scoring import score_files
        start = time.perf_counter()
        if way in ONNX_PRECISIONS:  # the file the parent exported
            from modelscope_iqa.export import OnnxNetwork
            network = OnnxNetwork(onnx_file(os.path.dirname(paths[0]), way))
            config = network.preprocess_config
        else:
            folder = open_model_folder(model_dir)
            model = load_model(folder)
            config = folder.preprocess_config
            network = model.inference_network(CLI_PRECISIONS[way], 'cpu', config)
        result['prepare_s'] = time.perf_counter() - start
        result['forward_s'] = _forward_seconds(network)

        def score_all() -> List[float]:
            return [float('nan') if r.score is None else r.score
                    for r in score_files(network, paths, config, workers=workers)]
    result['idle_rss_mb'] = _rss_mb()
    _reset_peak_rss()
    start = time.perf_counter()
    result['scores'] = score_all()
    result['seconds'] = time.perf_counter() - start
    result['peak_over_idle_mb'] = _peak_rss_mb() - result['idle_rss_mb']
    result['threads'] = torch.get_num_threads()
    return result


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--images', default=os.path.join(tempfile.gettempdir(),
                                                         'modelscope_iqa_bench'))
    parser.add_argument('--count', type=int, default=24)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--child', choices=sorted(WAYS), help=argparse.SUPPRESS)
    parser.add_argument('--memory-child', choices=['builtin', 'exact-pipeline'],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()

    from image_set import build_image_set
    paths = build_image_set(args.images, args.count)
    if args.child:
        print(json.dumps(run_child(args.child, paths, args.workers)))
        return
    big_jpeg = make_big_jpeg(args.images)
    if args.memory_child:
        print(json.dumps(run_memory_child(args.memory_child, big_jpeg, paths[1])))
        return

    import torch
    print(f'{len(paths)} images in {args.images}; torch {torch.__version__}, '
          f'{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, '
          f'{torch.backends.cpu.get_cpu_capability()}')
    peaks = matmul_peaks()
    gflop = forward_gflop()
    print(f'matmul peak: fp32 {peaks["fp32"]:.0f} GFLOP/s, bf16 {peaks["bf16"]:.0f} GFLOP/s; '
          f'forward: {gflop:.1f} GFLOP per {"x".join(map(str, _crop_size()))} image\n')
    exports, refused = {}, {}
    for way, precision in ONNX_PRECISIONS.items():  # once, outside the timed children
        from modelscope_iqa import DEFAULT_MODEL_DIR
        from modelscope_iqa.errors import ExportError
        from modelscope_iqa.export import export_onnx
        try:
            exports[way] = export_onnx(DEFAULT_MODEL_DIR,
                                       onnx_file(os.path.dirname(paths[0]), way), precision)
        except ExportError as exc:  # the export's own check refused the file
            refused[way] = str(exc)
    results = {way: _child(['--child', way, '--images', args.images, '--count',
                            str(args.count), '--workers', str(args.workers)])
               for way in WAYS if way not in refused}
    exact = np.array(results['exact-pipeline']['scores'])
    builtin_rate = len(paths) / results['builtin']['seconds']
    header = (f'{"way":16} {"img/s":>6} {"ratio":>6} {"max|d|":>9} {"SRCC":>7} '
              f'{"RSS+MB":>7} {"fwd s":>6} {"GFLOP/s":>8} {"%peak":>6}')
    print(header)
    print('-' * len(header))
    for way, result in results.items():
        scores = np.array(result['scores'])
        rate = len(paths) / result['seconds']
        precision = {**CLI_PRECISIONS, **ONNX_PRECISIONS}.get(way, 'fp32')
        achieved = gflop / result['forward_s']
        print(f'{way:16} {rate:6.2f} {rate / builtin_rate:5.2f}x '
              f'{np.abs(scores - exact).max():9.2e} {spearman(scores, exact):7.4f} '
              f'{result["peak_over_idle_mb"]:7.0f} {result["forward_s"]:6.3f} '
              f'{achieved:8.0f} {_share(achieved, peaks, precision)}')
    print()
    for way, text in WAYS.items():
        if way in refused:
            print(f'{way:16} {text}: not measured, the export was refused: {refused[way]}')
            continue
        prepare = results[way].get('prepare_s')
        print(f'{way:16} {text}' + (f'; preparing the network took {prepare:.1f} s, not '
                                    'counted in img/s' if prepare and prepare > 1 else ''))
    for way, report in exports.items():
        print(f'{way:16} exported and validated in {report.seconds:.1f} s (max |d| '
              f'{report.max_abs_diff:.2g} on {report.images} validation images)')
    print('\nint8 GFLOP/s count the same operations as float (int8 multiply-adds); '
          'the %peak column compares fp32 and bf16 to their matmul peaks only.')
    print('\nScoring one 8000x6000 JPEG, peak RSS over the idle RSS after loading the model '
          'and one warm-up image:')
    for way in ('builtin', 'exact-pipeline'):
        memory = _child(['--memory-child', way, '--images', args.images,
                         '--count', str(args.count)])
        print(f'  {way:16} +{memory["peak_over_idle_mb"]:.0f} MB '
              f'(idle {memory["idle_rss_mb"]:.0f} MB)')


if __name__ == '__main__':
    main()
