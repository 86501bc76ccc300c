"""The ways ``inference_speed.py`` measures, one small runner each, and the measures
they share. ``inference_speed.py`` runs each runner in a fresh process, so that none
shares the CPU, the imports or the memory figures of another:

    python benchmarks/speed_runners.py RUNNER KWARGS_JSON

calls ``RUNNER(**KWARGS)`` (a function of :data:`RUNNERS`) and prints its result as one
JSON line. Every runner that scores the set scores it ``passes`` times and keeps its
fastest pass.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

HERE = Path(__file__).resolve()
FORWARD_REPEATS = 5


# ------------------------------------------------------------------ shared measures
def crop_size() -> Tuple[int, int]:
    """(height, width) of the network's crop, from the package's configuration."""
    from modelscope_iqa.config import PreprocessConfig
    return PreprocessConfig.from_mapping().crop_size


def seconds_per_call(call: Callable[[], object]) -> float:
    """Mean seconds of ``call()`` over FORWARD_REPEATS calls, after one warm-up call."""
    call()
    start = time.perf_counter()
    for _ in range(FORWARD_REPEATS):
        call()
    return (time.perf_counter() - start) / FORWARD_REPEATS


def forward_seconds(network) -> float:
    """Seconds per image of one of our networks' forward alone (one uint8 crop)."""
    import torch
    crop = torch.randint(0, 256, (1, *crop_size(), 3), dtype=torch.uint8)
    return seconds_per_call(lambda: network(crop))


def builtin_pipeline(model_dir: str, device: str = 'cpu'):
    """ModelScope's own pipeline on ``model_dir``'s weights (a folder whose configuration
    names the built-in classes, as the official hub model's does)."""
    from modelscope.pipelines import pipeline

    from modelscope_iqa.builtin import builtin_configuration
    configuration = builtin_configuration()
    with tempfile.TemporaryDirectory(prefix='builtin_model_') as folder:
        with open(os.path.join(folder, 'configuration.json'), 'w') as f:
            json.dump(configuration, f)
        shutil.copy(os.path.join(model_dir, 'pytorch_model.pt'), folder)
        # The pipeline reads the weights while it is built; the folder can go after.
        return pipeline(configuration['task'], model=folder, device=device)


def our_pipeline(model_dir: str, **options):
    """Our pipeline on CPU (``model_dir``'s configuration names it)."""
    from modelscope.pipelines import pipeline

    from modelscope_iqa.metainfo import TASK
    return pipeline(TASK, model=model_dir, device='cpu', **options)


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


def _threads() -> int:
    import torch
    return torch.get_num_threads()


def _fastest_pass(score_all: Callable[[], List[float]], passes: int) -> Dict[str, object]:
    """``score_all`` timed ``passes`` times: the fastest pass's seconds, the scores, and
    the peak RSS over the RSS before the first pass."""
    idle = _rss_mb()
    _reset_peak_rss()
    seconds, scores = float('inf'), []
    for _ in range(passes):
        start = time.perf_counter()
        scores = score_all()
        seconds = min(seconds, time.perf_counter() - start)
    return {'seconds': seconds, 'scores': scores, 'idle_rss_mb': idle,
            'peak_over_idle_mb': _peak_rss_mb() - idle}


# ----------------------------------------------------------- the pipelines' ways
def builtin_one_by_one(paths: List[str], passes: int) -> Dict[str, object]:
    """ModelScope's pipeline, one image at a time."""
    import torch

    from modelscope_iqa import DEFAULT_MODEL_DIR
    pipe = builtin_pipeline(DEFAULT_MODEL_DIR)
    pipe(paths[0])  # first call: ModelScope places the model
    batch = torch.rand(1, 3, *crop_size())
    with torch.no_grad():
        forward_s = seconds_per_call(lambda: pipe.model.forward({'input': batch}))
    result = _fastest_pass(lambda: [pipe(p)['score'] for p in paths], passes)
    return {**result, 'forward_s': forward_s, 'threads': _threads()}


def ours_one_by_one(paths: List[str], passes: int) -> Dict[str, object]:
    """Our pipeline in fp32, one image at a time."""
    from modelscope_iqa import DEFAULT_MODEL_DIR
    pipe = our_pipeline(DEFAULT_MODEL_DIR)
    pipe(paths[0])
    forward_s = forward_seconds(pipe.inference_network)
    result = _fastest_pass(lambda: [pipe(p)['score'] for p in paths], passes)
    return {**result, 'forward_s': forward_s, 'threads': _threads()}


def ours_as_a_list(paths: List[str], passes: int, workers: int) -> Dict[str, object]:
    """Our pipeline in fp32 on the whole list in one call (the scoring engine)."""
    from modelscope_iqa import DEFAULT_MODEL_DIR
    pipe = our_pipeline(DEFAULT_MODEL_DIR, workers=workers)
    pipe(paths[0])
    forward_s = forward_seconds(pipe.inference_network)
    result = _fastest_pass(lambda: [r['score'] for r in pipe(paths)], passes)
    return {**result, 'forward_s': forward_s, 'threads': _threads()}


# --------------------------------------------------------- the command line's ways
class _TimingLine(logging.Handler):
    """Keeps the arguments of the score command's timing line (TIMING_MESSAGE)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.timings = []

    def emit(self, record: logging.LogRecord) -> None:
        from modelscope_iqa.cli.score import TIMING_MESSAGE
        if record.msg == TIMING_MESSAGE:
            self.timings.append(record.args)


def _score_command(paths: List[str], options: List[str], output: str) -> Tuple[int, float, float]:
    """``modelscope-iqa score PATHS OPTIONS`` as a user runs it, through its ``main``:
    (inputs, scoring seconds, seconds until the model was ready), from its
    ``--verbose`` timing line."""
    from modelscope_iqa.cli.main import main
    timing = _TimingLine()
    logger = logging.getLogger('modelscope_iqa.cli.score')
    logger.addHandler(timing)
    try:
        status = main(['score', *paths, *options, '--output', output, '--quiet', '--verbose'])
    finally:
        logger.removeHandler(timing)
    if status != 0 or len(timing.timings) != 1:
        raise SystemExit(f'modelscope-iqa score {" ".join(options)} exited {status} with '
                         f'{len(timing.timings)} timing lines')
    inputs, seconds, _, ready = timing.timings[0]
    return inputs, seconds, ready


def _time_score_command(paths: List[str], options: List[str], passes: int
                        ) -> Dict[str, object]:
    """The score command on one image (imports, the int8 calibration cache), then
    ``passes`` times on the set: the fastest pass, its start-up, and the scores."""
    from modelscope_iqa.cli.results import read_rows
    with tempfile.TemporaryDirectory(prefix='speed_') as folder:
        output = os.path.join(folder, 'scores.csv')
        _score_command(paths[:1], options, output)
        idle = _rss_mb()
        _reset_peak_rss()
        runs = []
        for _ in range(passes):
            os.remove(output)
            runs.append(_score_command(paths, options, output))
        inputs, seconds, startup = min(runs, key=lambda run: run[1])
        peak = _peak_rss_mb() - idle
        scores = {row['path']: float(row['score']) for row in read_rows(output)}
    if inputs != len(paths) or set(scores) != set(paths):
        raise SystemExit(f'score {" ".join(options)}: scored {inputs} inputs, '
                         f'{len(scores)} rows, of {len(paths)}')
    return {'seconds': seconds, 'startup_s': startup, 'scores': [scores[p] for p in paths],
            'idle_rss_mb': idle, 'peak_over_idle_mb': peak}


def score_command(paths: List[str], passes: int, workers: int,
                  precision: str) -> Dict[str, object]:
    """``modelscope-iqa score --precision PRECISION --workers WORKERS``; its forward
    alone is our inference network's in that precision."""
    from modelscope_iqa import DEFAULT_MODEL_DIR
    from modelscope_iqa.hub import load_model, open_model_folder
    result = _time_score_command(
        paths, ['--precision', precision, '--workers', str(workers)], passes)
    folder = open_model_folder(DEFAULT_MODEL_DIR)
    network = load_model(folder).inference_network(precision, 'cpu',
                                                   folder.preprocess_config)
    return {**result, 'forward_s': forward_seconds(network), 'threads': _threads()}


def onnx_score_command(paths: List[str], passes: int, workers: int,
                       onnx_file: str) -> Dict[str, object]:
    """``modelscope-iqa score --backend onnxruntime --onnx ONNX_FILE``; its forward
    alone is the file's in onnxruntime."""
    from modelscope_iqa.export import OnnxNetwork
    result = _time_score_command(
        paths, ['--backend', 'onnxruntime', '--onnx', onnx_file, '--workers', str(workers)],
        passes)
    return {**result, 'forward_s': forward_seconds(OnnxNetwork(onnx_file)),
            'threads': _threads()}


# ------------------------------------------------------------ decoding and memory
def decode_and_crop(paths: List[str]) -> Dict[str, object]:
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


def _memory_of_one_image(pipe, image: str, warm_image: str) -> Dict[str, object]:
    pipe(warm_image)  # the first forward's one-time allocations are not the image's
    idle = _rss_mb()
    _reset_peak_rss()
    pipe(image)
    return {'idle_rss_mb': idle, 'peak_over_idle_mb': _peak_rss_mb() - idle}


def builtin_memory(image: str, warm_image: str) -> Dict[str, object]:
    """Peak RSS of ModelScope's pipeline scoring ``image``, over its RSS before."""
    from modelscope_iqa import DEFAULT_MODEL_DIR
    return _memory_of_one_image(builtin_pipeline(DEFAULT_MODEL_DIR), image, warm_image)


def our_memory(image: str, warm_image: str) -> Dict[str, object]:
    """Peak RSS of our pipeline (fp32) scoring ``image``, over its RSS before."""
    from modelscope_iqa import DEFAULT_MODEL_DIR
    return _memory_of_one_image(our_pipeline(DEFAULT_MODEL_DIR), image, warm_image)


RUNNERS = {runner.__name__: runner for runner in (
    builtin_one_by_one, ours_one_by_one, ours_as_a_list, score_command, onnx_score_command,
    decode_and_crop, builtin_memory, our_memory)}


def run_in_fresh_process(runner: Callable[..., Dict[str, object]],
                         **kwargs) -> Dict[str, object]:
    """``runner(**kwargs)`` in a new Python process; its result."""
    import subprocess
    completed = subprocess.run([sys.executable, str(HERE), runner.__name__,
                                json.dumps(kwargs)], capture_output=True, text=True,
                               check=False)
    if completed.returncode != 0:
        raise SystemExit(f'{runner.__name__} failed:\n{completed.stderr[-3000:]}')
    return json.loads(completed.stdout.strip().splitlines()[-1])


if __name__ == '__main__':
    name, arguments = sys.argv[1:]
    print(json.dumps(RUNNERS[name](**json.loads(arguments))))
