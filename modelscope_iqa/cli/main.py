"""``modelscope-iqa``: score folders of images and videos, evaluate on labelled data."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
from typing import Iterator, List, Optional

# Only light modules here: --help and usage errors must not wait for PyTorch.
from ..errors import MissingExtraError
from ..config import (DEFAULT_MAP_ALPHA, EXACT_PRECISION, MAX_DEFAULT_WORKERS,
                      PRECISION_BOUNDS, PRECISIONS)

LOG = logging.getLogger('modelscope_iqa.cli')

# 1: the run finished but some inputs failed (their rows say why); 2: the command line
# is wrong (argparse's own code); 3: the job could not run (unusable data, model folder
# or output file).
EXIT_OK, EXIT_INPUT_FAILED, EXIT_USAGE, EXIT_CANNOT_RUN = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # the shell's code for a run stopped by a signal (128 + SIGINT)
CUDA_BATCH_SIZE = 8
SCORE_FIELDS = ['path', 'score', 'error', 'frames']
PER_FRAME_FIELDS = SCORE_FIELDS + ['frame']
MAP_FIELDS = ['path', 'score', 'error', 'map']
BACKENDS = ('pytorch', 'onnxruntime')
EXPORT_FORMATS = ('onnx', )


def _default_model() -> str:
    from .. import DEFAULT_MODEL_DIR
    return DEFAULT_MODEL_DIR


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {value}')
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f'must be a port number (1-65535), got {text}')
    return value


def _unit_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f'must lie in [0, 1], got {text}')
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f'must be a positive number, got {text}')
    return value


class _PrintVersion(argparse.Action):
    """``--version``: the package's version and the default weights' short SHA-256
    (hashed only when asked)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from .. import DEFAULT_MODEL_PATH, __version__
        from ..config import WEIGHTS_FILE
        from ..identity import file_sha256, short_sha256
        sha256 = file_sha256(str(DEFAULT_MODEL_PATH / WEIGHTS_FILE))
        sys.stdout.write(f'modelscope-iqa {__version__} (default model '
                         f'{short_sha256(sha256)})\n')
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='modelscope-iqa',
        description='No-reference image quality (MOS in [0, 1], higher is better) for '
        'images and videos, with ModelScope.')
    parser.add_argument('--version', action=_PrintVersion,
                        help="print the version and the default model's SHA-256, and exit")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('-v', '--verbose', action='store_true', help='log progress details')
    commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    parser.set_defaults(command_parsers=commands.choices)

    # What score and map share: the inputs, the model, the result file and the run.
    scoring = argparse.ArgumentParser(add_help=False)
    scoring.add_argument('paths', nargs='+', metavar='PATH')
    _add_model(scoring)
    scoring.add_argument('--output', '-o', default=None,
                         help='result file: .csv, or .jsonl/.ndjson for JSON Lines '
                         '(default: CSV on stdout)')
    scoring.add_argument('--resume', action='store_true',
                         help='skip inputs that already have a row in --output and append')
    scoring.add_argument('--batch-size', type=_positive_int, default=None,
                         help='images per network forward (default: 1 on CPU, where '
                         f'larger batches run slower, {CUDA_BATCH_SIZE} on CUDA)')
    _add_precision(scoring)
    scoring.add_argument('--workers', type=_non_negative_int, default=None,
                         help='decoding/preprocessing processes, at the lowest CPU '
                         'priority so that they fill the gaps of the forward (0: in the '
                         f'main process; default: one per core, at most {MAX_DEFAULT_WORKERS})')
    scoring.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N (default cpu)')
    scoring.add_argument('--quiet', '-q', action='store_true', help='no progress bar')

    score = commands.add_parser(
        'score', help='score images and videos', parents=[common, scoring],
        description='Score image and video files. PATH may be a file, a folder (searched '
        'recursively for image and video files) or a glob. Writes one row per input '
        '(path, score, error, frames) as each completes; a file that cannot be read gets '
        'an empty score and an error. Exit status 1 if any input failed, 2 for a wrong '
        'command line, 3 when the job cannot run (unusable model folder or output).')
    frames = score.add_mutually_exclusive_group()
    frames.add_argument('--frames', type=_positive_int, default=None,
                        help='frames sampled uniformly per video (default 8)')
    frames.add_argument('--fps', type=_positive_float, default=None,
                        help='frames sampled per second of video')
    score.add_argument('--per-frame', action='store_true',
                       help="also write one row per scored video frame (column 'frame')")
    score.add_argument('--backend', choices=BACKENDS, default=BACKENDS[0],
                       help='pytorch (default), or onnxruntime to score with an exported '
                       'ONNX file (--onnx) through the same decoding and cropping')
    score.add_argument('--onnx', default=None, metavar='FILE',
                       help='the ONNX file for --backend onnxruntime (written by export); '
                       'its preprocessing comes from its metadata')
    score.add_argument('--maps', default=None, metavar='DIR',
                       help='also write each image\'s quality map to DIR, as the map '
                       'command does (videos get none)')
    score.set_defaults(func=run_score)

    quality_map = commands.add_parser(
        'map', help='write quality maps: where each image is poor',
        parents=[common, scoring],
        description='Write each image\'s quality map: NAME.map.png (the photo with local '
        'scores drawn over the part the model sees, and the score) and NAME.map.npy (the '
        'grid of local scores, float32 in [0, 1], in the photo\'s orientation), where '
        'NAME is the image\'s path relative to the inputs\' common folder, without its '
        'extension. Writes one row per input (path, score, error, map) like score; exit '
        'status as score\'s.')
    quality_map.add_argument('--output-dir', '-d', required=True, metavar='DIR',
                             help='folder for the map files (created if missing)')
    quality_map.add_argument('--alpha', type=_unit_float, default=DEFAULT_MAP_ALPHA,
                             help=f'opacity of the map on the photo (default '
                             f'{DEFAULT_MAP_ALPHA})')
    quality_map.set_defaults(func=run_map)

    evaluate = commands.add_parser(
        'evaluate', help='evaluate against labelled MOS', parents=[common],
        description="Evaluate on a CSV with columns 'image:FILE' (paths relative to the "
        "CSV) and 'mos', or a folder holding one such CSV. Prints PLCC, SRCC, KRCC and "
        'RMSE as JSON; the same evaluation as build_trainer(...).evaluate().')
    evaluate.add_argument('--data', required=True, help='CSV file, or folder with one CSV')
    _add_model(evaluate)
    evaluate.add_argument('--report', default=None, metavar='DIR',
                          help='write metrics.json, predictions.csv and scatter.png here')
    evaluate.add_argument('--skip-bad', action='store_true',
                          help='leave out rows with a missing image, a missing or '
                          'non-numeric MOS, or a repeated image (listed on stderr and '
                          'in the report\'s skipped.txt) instead of refusing the data')
    evaluate.add_argument('--batch-size', type=_positive_int, default=4)
    evaluate.add_argument('--workers', type=_non_negative_int, default=0)
    evaluate.add_argument('--device', default='cpu')
    _add_precision(evaluate)
    evaluate.set_defaults(func=run_evaluate)

    demo = commands.add_parser(
        'demo', help='serve a page to try the model in (Gradio)', parents=[common],
        description='Serve the demo page: drop photos, see scores, quality maps, a table '
        'sorted by score (CSV), two photos side by side. Needs the demo extra: pip install '
        '"modelscope-iqa[demo]". Runs offline; stop it with Ctrl-C.')
    _add_model(demo)
    demo.add_argument('--host', default=None,
                      help='address to listen on (default 127.0.0.1: this machine only; '
                      '0.0.0.0 to share on the network)')
    demo.add_argument('--port', type=_port, default=None, help='port (default 7860)')
    _add_precision(demo)
    demo.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    demo.set_defaults(func=run_demo)

    export = commands.add_parser(
        'export', help='write the model for other runtimes (ONNX)', parents=[common],
        description='Write the model as an ONNX file: input float32 N x 3 x crop height x '
        'crop width in the preprocessor\'s channel order, values in [0, 1]; output the MOS '
        'per image; the preprocessing facts in its metadata. onnxruntime scores generated '
        'images with the file before it is written: float32, '
        f'{PRECISION_BOUNDS[EXACT_PRECISION].describe()}, or nothing is written (exit 3). '
        'There is no int8 export: it missed int8\'s bound (docs/deploy.md). Needs '
        'the onnx extra: pip install "modelscope-iqa[onnx]".')
    export.add_argument('--format', choices=EXPORT_FORMATS, default=EXPORT_FORMATS[0],
                        help='onnx (the one format; TorchScript is deprecated in PyTorch)')
    export.add_argument('--output', '-o', required=True, metavar='FILE', help='file to write')
    _add_model(export)
    export.set_defaults(func=run_export)
    return parser


def _add_model(command) -> None:
    command.add_argument('--model', default=None,
                         help='model folder (ours, a published or an official hub '
                         'download) or hub id (needs the network); default: the embedded '
                         'default model')


def _add_precision(command) -> None:
    command.add_argument(
        '--precision', choices=sorted(PRECISIONS), default=EXACT_PRECISION,
        help=f'{EXACT_PRECISION} (default, exact: ModelScope\'s scores); bf16 (CPU with '
        'AVX-512 BF16/AMX, or CUDA), fp16 (CUDA) or int8 (x86 CPU; about 10 s of '
        'calibration the first time a model is used, cached after): faster. Tested bounds: '
        + '; '.join(f'{name} {bound.describe()}' for name, bound in PRECISION_BOUNDS.items()))


def _usage_error(args, message: str) -> None:
    """Exit with the command's usage and ``message`` (status 2, as argparse does)."""
    args.command_parsers[args.command].error(message)


def _check_precision(args, device) -> None:
    from ..models import check_precision
    try:
        check_precision(args.precision, device)
    except ValueError as exc:
        _usage_error(args, f'--precision: {exc}')


def _device(args):
    import torch

    from ..distributed import device_for_rank
    device = device_for_rank(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        _usage_error(args, f'--device {args.device}: CUDA is not available')
    return device


def run_score(args) -> int:
    fields = PER_FRAME_FIELDS if args.per_frame else SCORE_FIELDS
    return _run_scoring(args, fields, args.maps, DEFAULT_MAP_ALPHA)


def run_map(args) -> int:
    return _run_scoring(args, MAP_FIELDS, args.output_dir, args.alpha)


def _run_scoring(args, fields: List[str], maps_dir: Optional[str], alpha: float) -> int:
    """``score`` (``fields`` SCORE_FIELDS or PER_FRAME_FIELDS; quality maps too when
    ``maps_dir``) and ``map`` (MAP_FIELDS: maps of images only, a video is an error
    row)."""
    from .. import distributed
    from ..hub import open_model_folder
    from ..maps import LOCAL_WINDOW
    from ..hub import load_model
    from ..scoring import default_workers, score_files
    from ..scoring.video import is_video
    from .inputs import expand_inputs
    from .map_files import map_names, write_map
    from .results import RunOutput, check_output_path

    only_maps = fields == MAP_FIELDS
    frame_count, fps = getattr(args, 'frames', None), getattr(args, 'fps', None)
    onnx_file = _onnx_backend(args)

    if args.output is not None:
        try:
            check_output_path(args.output)
        except ValueError as exc:
            _usage_error(args, f'--output: {exc}')
    device = _device(args)
    _check_precision(args, device)
    if args.resume and args.output is None:
        _usage_error(args, '--resume needs --output')
    if distributed.launched_with_several_processes() and args.output is None:
        _usage_error(args, 'several processes (torchrun) need --output')
    ranks = distributed.setup(device)
    if onnx_file is not None:
        from ..export import OnnxNetwork
        network = OnnxNetwork(onnx_file)
        preprocess_config = network.preprocess_config
    else:
        folder = open_model_folder(args.model or _default_model())
        model = load_model(folder)
        preprocess_config = folder.preprocess_config
        network = model.inference_network(args.precision, device, preprocess_config)
    batch_size = args.batch_size or (CUDA_BATCH_SIZE if device.type == 'cuda' else 1)
    inputs = distributed.broadcast_from_main(
        expand_inputs(args.paths) if ranks.is_main else None)
    names = map_names(inputs) if maps_dir is not None else {}
    run = RunOutput(args.output, fields, args.resume)
    try:
        todo = run.start(inputs)
        mine = distributed.shard(todo, ranks)
        videos = {path for path in mine if only_maps and is_video(path)}
        mine = [path for path in mine if path not in videos]
        writer = run.writer()
        failures = 0
        from tqdm import tqdm
        progress = tqdm(total=len(mine), unit='file', file=sys.stderr,
                        disable=args.quiet or not sys.stderr.isatty() or not ranks.is_main)
        try:
            for path in videos:
                failures += 1
                writer.write({'path': path, 'error': f'{path!r}: a video; quality maps are '
                              'made for images (score videos with the score command)'})
                progress.update(1)
            workers = default_workers() if args.workers is None else args.workers
            for result in score_files(network, mine, preprocess_config, batch_size, workers,
                                      frame_count, fps,
                                      map_window=LOCAL_WINDOW if maps_dir is not None else None):
                if result.error is not None:
                    failures += 1
                    writer.write({'path': result.path, 'error': result.error})
                else:
                    map_file = None
                    if result.quality_map is not None:  # written before its row: resume
                        map_file = write_map(result.quality_map, maps_dir, names[result.path],
                                             alpha)
                    if 'frame' in fields:
                        for number, score in zip(result.frame_numbers, result.frame_scores):
                            writer.write({'path': result.path, 'score': score, 'frame': number})
                    row = {'path': result.path, 'score': result.score}
                    if only_maps:
                        row['map'] = map_file
                    else:
                        row['frames'] = len(result.frame_numbers) or None
                    writer.write(row)
                progress.update(1)
        finally:
            progress.close()
            writer.close()
        run.finish(todo)
        failures = sum(distributed.all_gather(failures))
        if failures and ranks.is_main:
            where = args.output or 'the output'
            print(f'modelscope-iqa: {failures} of {len(todo)} inputs failed; their rows in '
                  f'{where} have an empty score and the reason in the error column',
                  file=sys.stderr)
        return EXIT_INPUT_FAILED if failures else EXIT_OK
    finally:
        run.close()


def _our_model_dir(folder, scratch: str) -> str:
    """The folder itself when its configuration names our model; otherwise a scratch
    folder with its weights and our configuration (a published folder's own sections;
    for an official hub folder the package's), which ModelScope's trainer builds our
    model from."""
    from ..config import CONFIGURATION_FILE
    from ..hub import CONFIGURATION_NAME
    from ..models.checkpoint import WEIGHTS_FILE
    if folder.names_our_model and not folder.published:
        return folder.path
    LOG.info('%s: evaluated with our model class and configuration', folder.path)
    configuration = os.path.join(scratch, CONFIGURATION_NAME)
    if folder.published:
        with open(configuration, 'w', encoding='utf-8') as f:
            json.dump(folder.config, f)
    else:
        shutil.copy(CONFIGURATION_FILE, configuration)
    os.symlink(os.path.abspath(folder.weights), os.path.join(scratch, WEIGHTS_FILE))
    return scratch


@contextlib.contextmanager
def _modelscope_logs(verbose: bool) -> Iterator[None]:
    """ModelScope's INFO logs (its whole configuration, hook tables) only with
    ``--verbose``; its warnings always."""
    logger = logging.getLogger('modelscope')
    keep = logging.DEBUG if verbose else logging.WARNING

    def above(record: logging.LogRecord) -> bool:
        return record.levelno >= keep

    logger.addFilter(above)
    try:
        yield
    finally:
        logger.removeFilter(above)


def run_evaluate(args) -> int:
    from .. import distributed
    from ..hub import open_model_folder
    from .evaluate import load_labels, run_evaluation, write_report

    device = _device(args)
    _check_precision(args, device)
    ranks = distributed.setup(device)
    folder = open_model_folder(args.model or _default_model())
    dataset_config = folder.dataset
    with tempfile.TemporaryDirectory() as scratch:
        our_dir = _our_model_dir(folder, scratch)
        rows, _, skipped = load_labels(args.data, dataset_config, args.skip_bad)
        for problem in skipped:
            LOG.warning('skipped %s', problem)
        with _modelscope_logs(args.verbose):
            metrics, preds, _ = run_evaluation(our_dir, rows, args.batch_size, args.workers,
                                               str(device), args.precision)
    if ranks.is_main:
        print(json.dumps(metrics))
        if args.report:
            write_report(args.report, metrics, rows, dataset_config, preds, skipped)
    return EXIT_OK


def _onnx_backend(args) -> Optional[str]:
    """The ONNX file to score with, or None for PyTorch; refuses options that do not
    apply to it."""
    if getattr(args, 'backend', BACKENDS[0]) != 'onnxruntime':
        if getattr(args, 'onnx', None):
            _usage_error(args, '--onnx needs --backend onnxruntime')
        return None
    if not args.onnx:
        _usage_error(args, '--backend onnxruntime needs --onnx FILE')
    for given, option in ((args.model, '--model'), (args.maps, '--maps'),
                          (args.precision != EXACT_PRECISION, '--precision'),
                          (args.device != 'cpu', '--device')):
        if given:
            _usage_error(args, f'{option} does not apply to --backend onnxruntime (the '
                         'ONNX file fixes the model and its precision; it runs on CPU)')
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        _usage_error(args, str(MissingExtraError('--backend onnxruntime needs onnxruntime',
                                                 'onnx')))
    return args.onnx


def run_export(args) -> int:
    from ..export import export_onnx
    report = export_onnx(args.model, args.output)
    print(f'wrote {report.path} ({report.precision}); onnxruntime scored '
          f'{report.images} validation images within {report.max_abs_diff:.2g} of the '
          f'exact mode ({report.seconds:.0f} s)')
    return EXIT_OK


def run_demo(args) -> int:
    from ..demo.app import DEFAULT_HOST, DEFAULT_PORT, launch_demo
    device = _device(args)
    _check_precision(args, device)
    try:
        launch_demo(args.model, args.precision, str(device), args.host or DEFAULT_HOST,
                    args.port or DEFAULT_PORT, model_note=args.model)
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped: nothing to resume
        return EXIT_OK
    return EXIT_OK


def _exit_on_sigterm(signum, frame) -> None:
    """SIGTERM unwinds like Ctrl-C (closing files, stopping workers) instead of killing
    the process where it stands."""
    raise KeyboardInterrupt


def parse_arguments(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line's arguments; an unknown flag is reported with the usage of the
    command it follows, not the top-level one."""
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:
        args.command_parsers[args.command].error(
            f'unrecognized arguments: {" ".join(unknown)}')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format='%(levelname)s %(name)s: %(message)s', stream=sys.stderr)
    from .. import distributed, errors
    previous_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return args.func(args)
    except errors.IqaError as exc:
        print(f'modelscope-iqa: error: {exc}', file=sys.stderr)
        return EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        # SIGINT, or SIGTERM through _exit_on_sigterm: every finished row is written
        # and flushed, and the output files were closed on the way out.
        print('modelscope-iqa: interrupted; run again with --resume to finish',
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        distributed.teardown()


if __name__ == '__main__':
    sys.exit(main())
