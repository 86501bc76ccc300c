"""``modelscope-iqa score``: score images and videos, one row per input (and per frame
with ``--per-frame``), each recording the weights that produced it. Also the scoring run
that ``map`` shares (:func:`run_scoring`)."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import List, Optional, Sequence

from ..config import DEFAULT_MAP_ALPHA, DEFAULT_POOLING, MAX_DEFAULT_WORKERS
from ..identity import IDENTITY_FIELDS
from .progress import LOG_INTERVAL_S
from .arguments import (EXIT_INPUT_FAILED, EXIT_OK, EXIT_STATUS_HELP, add_model, add_precision,
                        check_precision, chosen_device, default_model, non_negative_int,
                        pooling_name, positive_float, positive_int, usage_error)

CUDA_BATCH_SIZE = 8
# A video's row also records how its score was pooled and its frames' statistics, and
# the transfer characteristic of an HDR stream (its frames were scored untone-mapped).
VIDEO_FIELDS = ['pooling', 'frame_mean', 'frame_min', 'frame_std', 'transfer']
SCORE_FIELDS = ['path', 'score', 'error', 'frames', *VIDEO_FIELDS, *IDENTITY_FIELDS]
PER_FRAME_FIELDS = SCORE_FIELDS + ['frame', 'time']
BACKENDS = ('pytorch', 'onnxruntime')
ENGINES = ('local', 'ray')
WORST_FRAME_SUFFIX = '.worst_frame'  # --timeline: NAME.worst_frame.map.png
LOG = logging.getLogger(__name__)
# The --verbose line that times a run; benchmarks/inference_speed.py reads it.
TIMING_MESSAGE = ('scored %d inputs in %.3f s (%.3f inputs/s); the model was ready after '
                  '%.3f s')


def scoring_options() -> argparse.ArgumentParser:
    """The options ``score`` and ``map`` share: the inputs, the model, the result file
    and the run."""
    scoring = argparse.ArgumentParser(add_help=False)
    scoring.add_argument('paths', nargs='+', metavar='PATH')
    add_model(scoring)
    scoring.add_argument('--output', '-o', default=None,
                         help='result file: .csv, or .jsonl/.ndjson for JSON Lines '
                         '(default: CSV on stdout)')
    scoring.add_argument('--resume', action='store_true',
                         help='skip inputs that already have a row in --output and append '
                         '(refused when its rows were written by other weights)')
    scoring.add_argument('--batch-size', type=positive_int, default=None,
                         help='images per network forward (default: 1 on CPU, where '
                         f'larger batches run slower, {CUDA_BATCH_SIZE} on CUDA)')
    add_precision(scoring)
    scoring.add_argument('--workers', type=non_negative_int, default=None,
                         help='decoding/preprocessing processes, at the lowest CPU '
                         'priority so that they fill the gaps of the forward (0: in the '
                         f'main process; default: one per core, at most {MAX_DEFAULT_WORKERS})')
    scoring.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N (default cpu)')
    scoring.add_argument('--quiet', '-q', action='store_true',
                         help='no progress bar (one is drawn on stderr when it is a '
                         'terminal; with --verbose elsewhere, a progress line every '
                         f'{LOG_INTERVAL_S:g} s)')
    frames = scoring.add_mutually_exclusive_group()
    frames.add_argument('--frames', type=positive_int, default=None,
                        help='frames sampled uniformly per video (default 8)')
    frames.add_argument('--fps', type=positive_float, default=None,
                        help='frames sampled per second of presentation time (variable '
                        'frame rate video is sampled evenly in time)')
    return scoring


def add_command(commands, parents: Sequence[argparse.ArgumentParser]) -> None:
    score = commands.add_parser(
        'score', help='score images and videos', parents=list(parents),
        description='Score image and video files. PATH may be a file, a folder (searched '
        'recursively for image and video files) or a glob. Writes one row per input '
        '(path, score, error, frames, model_version, model_sha256) as each completes; a '
        'file that cannot be read gets an empty score and an error.',
        epilog=EXIT_STATUS_HELP)
    score.add_argument('--pooling', type=pooling_name, default=DEFAULT_POOLING,
                       help='how a video\'s frame scores make its score: mean (default), '
                       'harmonic, min, or pNN, the NN-th percentile (e.g. p10)')
    score.add_argument('--per-frame', action='store_true',
                       help="also write one row per scored video frame (columns 'frame' "
                       "and 'time', in seconds)")
    score.add_argument('--timeline', default=None, metavar='DIR',
                       help='write each video\'s NAME.timeline.csv (frame, time, score), '
                       'NAME.timeline.png (score over time, the worst stretch marked) and '
                       'its worst frame\'s quality map NAME.worst_frame.map.png/.npy to DIR')
    score.add_argument('--backend', choices=BACKENDS, default=BACKENDS[0],
                       help='pytorch (default), or onnxruntime to score with an exported '
                       'ONNX file (--onnx) through the same decoding and cropping')
    score.add_argument('--onnx', default=None, metavar='FILE',
                       help='the ONNX file for --backend onnxruntime (written by export); '
                       'its preprocessing comes from its metadata')
    score.add_argument('--maps', default=None, metavar='DIR',
                       help='also write each image\'s quality map to DIR, as the map '
                       'command does (a video\'s: its worst frame\'s)')
    score.add_argument('--engine', choices=ENGINES, default=ENGINES[0],
                       help='local (default: this machine, or the ranks of torchrun), or '
                       'ray: a Ray Data pipeline that also reads Parquet files (a column '
                       'of image bytes or paths) and WebDataset shards, and writes .parquet '
                       '(docs/scale.md); needs the ray extra')
    score.add_argument('--ray-address', default=None, metavar='ADDRESS',
                       help='--engine ray: a running Ray cluster to join (default: start '
                       'a local one for the run)')
    score.add_argument('--ray-actors', type=positive_int, default=None, metavar='N',
                       help='--engine ray: scoring actors, each with its own model '
                       '(default 1)')
    score.add_argument('--column', default=None,
                       help='--engine ray, Parquet or WebDataset input: the column (member) '
                       'to score (default: the only binary column, or path; the only '
                       'image member)')
    score.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    fields = PER_FRAME_FIELDS if args.per_frame else SCORE_FIELDS
    if args.engine == 'ray':
        from .score_on_ray import run_on_ray
        return run_on_ray(args, fields)
    for given, option in ((args.ray_address, '--ray-address'),
                          (args.ray_actors, '--ray-actors'), (args.column, '--column')):
        if given:
            usage_error(args, f'{option} needs --engine ray')
    return run_scoring(args, fields, args.maps, DEFAULT_MAP_ALPHA)


def _onnx_backend(args: argparse.Namespace) -> Optional[str]:
    """The ONNX file to score with, or None for PyTorch; refuses options that do not
    apply to it."""
    from ..config import EXACT_PRECISION
    from ..errors import MissingExtraError
    if getattr(args, 'backend', BACKENDS[0]) != 'onnxruntime':
        if getattr(args, 'onnx', None):
            usage_error(args, '--onnx needs --backend onnxruntime')
        return None
    if not args.onnx:
        usage_error(args, '--backend onnxruntime needs --onnx FILE')
    for given, option in ((args.model, '--model'), (args.maps, '--maps'),
                          (args.timeline, '--timeline'),
                          (args.precision != EXACT_PRECISION, '--precision'),
                          (args.device != 'cpu', '--device')):
        if given:
            usage_error(args, f'{option} does not apply to --backend onnxruntime (the '
                        'ONNX file fixes the model and its precision; it runs on CPU)')
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        usage_error(args, str(MissingExtraError('--backend onnxruntime needs onnxruntime',
                                                'onnx')))
    return args.onnx


def run_scoring(args: argparse.Namespace, fields: List[str], maps_dir: Optional[str],
                alpha: float, only_maps: bool = False) -> int:
    """Score ``args.paths`` into rows with ``fields``, writing quality maps to
    ``maps_dir`` when given (a video's is its worst frame's). ``only_maps`` (the ``map``
    command): each row names its map file."""
    from .. import distributed
    from ..hub import load_model, open_model_folder
    from ..maps import LOCAL_WINDOW
    from ..scoring import default_workers, score_files
    from .map_files import map_names, write_map
    from .progress import RunProgress
    from .results import RunOutput, check_output_path

    started = time.perf_counter()
    frame_count, fps = getattr(args, 'frames', None), getattr(args, 'fps', None)
    onnx_file = _onnx_backend(args)
    if args.output is not None:
        try:
            check_output_path(args.output)
        except ValueError as exc:
            usage_error(args, f'--output: {exc}')
    device = chosen_device(args)
    check_precision(args, device)
    if args.resume and args.output is None:
        usage_error(args, '--resume needs --output')
    if distributed.launched_with_several_processes() and args.output is None:
        usage_error(args, 'several processes (torchrun) need --output')
    ranks = distributed.setup(device)
    inputs = _inputs_on_every_rank(args.paths, ranks)  # before the model: fail fast
    if onnx_file is not None:
        from ..export import OnnxNetwork
        network = OnnxNetwork(onnx_file)
        preprocess_config, identity = network.preprocess_config, network.identity
    else:
        folder = open_model_folder(args.model or default_model())
        model = load_model(folder)
        preprocess_config, identity = folder.preprocess_config, folder.identity
        network = model.inference_network(args.precision, device, preprocess_config)
    batch_size = args.batch_size or (CUDA_BATCH_SIZE if device.type == 'cuda' else 1)
    timeline_dir = getattr(args, 'timeline', None)
    names = map_names(inputs) if maps_dir is not None or timeline_dir else {}
    pooling = getattr(args, 'pooling', DEFAULT_POOLING)
    run_output = RunOutput(args.output, fields, args.resume, identity)
    try:
        todo = run_output.start(inputs)
        mine = distributed.shard(todo, ranks)
        writer = run_output.writer()
        failures = 0
        progress = RunProgress(len(mine), sys.stderr, show=ranks.is_main and not args.quiet,
                               verbose=args.verbose)
        try:
            workers = default_workers() if args.workers is None else args.workers
            map_window = LOCAL_WINDOW if maps_dir is not None or timeline_dir else None
            ready = time.perf_counter()
            for result in score_files(network, mine, preprocess_config, batch_size, workers,
                                      frame_count, fps, map_window=map_window,
                                      pooling=pooling, progress=progress):
                if result.error is not None:
                    failures += 1
                    writer.write({'path': result.path, 'error': result.error})
                else:  # its files are written before its row: resume finds them
                    map_file = None
                    if result.quality_map is not None and maps_dir is not None:
                        map_file = write_map(result.quality_map, maps_dir, names[result.path],
                                             alpha, identity)
                    if timeline_dir and result.is_video:
                        write_video_timeline(result, timeline_dir, names[result.path], alpha,
                                             identity)
                    if 'frame' in fields:
                        for number, time_s, score in zip(result.frame_numbers,
                                                         result.frame_times,
                                                         result.frame_scores):
                            writer.write({'path': result.path, 'score': score,
                                          'frame': number, 'time': time_s})
                    row = {'path': result.path, 'score': result.score, **video_columns(result)}
                    if only_maps:
                        row['map'] = map_file
                    writer.write(row)
            scoring = time.perf_counter() - ready
            LOG.info(TIMING_MESSAGE, len(mine), scoring, len(mine) / max(scoring, 1e-9),
                     ready - started)
        finally:
            progress.close()
            writer.close()
        run_output.finish(todo)
        failures = sum(distributed.all_gather(failures))
        if failures and ranks.is_main:
            where = args.output or 'the output'
            print(f'modelscope-iqa: {failures} of {len(todo)} inputs failed; their rows in '
                  f'{where} have an empty score and the reason in the error column',
                  file=sys.stderr)
        return EXIT_INPUT_FAILED if failures else EXIT_OK
    finally:
        run_output.close()


def _inputs_on_every_rank(patterns: Sequence[str], ranks) -> List[str]:
    """The files to score, listed by rank 0 and sent to every rank; when there are none,
    every rank raises rank 0's :class:`~modelscope_iqa.errors.NoInputsError`."""
    from .. import distributed
    from ..errors import NoInputsError
    from .inputs import expand_inputs
    listed = None
    if ranks.is_main:
        try:
            listed = expand_inputs(patterns)
        except NoInputsError as exc:
            listed = str(exc)
    listed = distributed.broadcast_from_main(listed)
    if isinstance(listed, str):
        raise NoInputsError(listed)
    return listed


def video_columns(result) -> dict:
    """A result's ``frames`` and video columns (none for an image)."""
    if not result.is_video:
        return {}
    statistics = result.statistics
    return {'frames': len(result.frame_numbers), 'pooling': result.pooling,
            'frame_mean': statistics.mean, 'frame_min': statistics.minimum,
            'frame_std': statistics.std, 'worst_frame': statistics.worst_frame,
            'transfer': result.transfer}


def write_video_timeline(result, directory: str, name: str, alpha: float, identity) -> None:
    """``--timeline``: the video's timeline CSV and plot, and its worst frame's map."""
    import os

    from ..errors import OutputError
    from ..video.timeline import write_timeline
    from .map_files import write_map
    stem = os.path.join(directory, name)
    try:
        write_timeline(stem, result.frame_numbers, result.frame_times, result.frame_scores,
                       result.score, result.pooling, os.path.basename(result.path))
    except OSError as exc:
        raise OutputError(f'{stem!r}: cannot write the timeline ({exc.strerror or exc})'
                          ) from exc
    if result.quality_map is not None:
        write_map(result.quality_map, directory, name + WORST_FRAME_SUFFIX, alpha, identity)
