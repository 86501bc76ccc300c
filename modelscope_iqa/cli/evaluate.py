"""``modelscope-iqa evaluate``: PLCC, SRCC, KRCC and RMSE against labelled MOS, with
ModelScope's trainer evaluation (:mod:`.evaluation` runs it), and an optional report."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import tempfile
from typing import Iterator, Sequence

from .arguments import (EXIT_OK, EXIT_STATUS_HELP, add_model, add_precision, check_precision,
                        chosen_device,
                        default_model, non_negative_int, pooling_name, positive_float,
                        positive_int)

LOG = logging.getLogger(__name__)


def add_command(commands, parents: Sequence[argparse.ArgumentParser]) -> None:
    evaluate = commands.add_parser(
        'evaluate', help='evaluate against labelled MOS', parents=list(parents),
        description="Evaluate on a CSV with columns 'image:FILE' (paths relative to the "
        "CSV; images or videos) and 'mos', or a folder holding one such CSV. A video is "
        'scored from its sampled frames, pooled (--frames/--fps, --pooling). Prints '
        'PLCC, SRCC, KRCC and RMSE as JSON; the same evaluation as build_trainer(...).evaluate().',
        epilog=EXIT_STATUS_HELP)
    evaluate.add_argument('--data', required=True, help='CSV file, or folder with one CSV')
    add_model(evaluate)
    evaluate.add_argument('--report', default=None, metavar='DIR',
                          help='write metrics.json (with the model\'s version and '
                          'SHA-256), predictions.csv and scatter.png here')
    evaluate.add_argument('--skip-bad', action='store_true',
                          help='leave out rows with a missing image, a missing or '
                          'non-numeric MOS, or a repeated image (listed on stderr and '
                          'in the report\'s skipped.txt) instead of refusing the data')
    frames = evaluate.add_mutually_exclusive_group()
    frames.add_argument('--frames', type=positive_int, default=None,
                        help='rows whose file is a video: frames sampled uniformly per '
                        'video (default: the configuration\'s dataset.video_frames, else 8)')
    frames.add_argument('--fps', type=positive_float, default=None,
                        help='rows whose file is a video: frames sampled per second')
    evaluate.add_argument('--pooling', type=pooling_name, default=None,
                          help='how a video\'s frame scores make its prediction: mean '
                          '(default), harmonic, min or pNN')
    evaluate.add_argument('--batch-size', type=positive_int, default=4,
                          help='rows per network forward (default 4)')
    evaluate.add_argument('--workers', type=non_negative_int, default=0,
                          help='data loading processes (default 0: in the main process)')
    evaluate.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N (default cpu)')
    add_precision(evaluate)
    evaluate.set_defaults(func=run)


def _our_model_dir(folder, scratch: str) -> str:
    """The folder itself when its configuration names our model; otherwise a scratch
    folder with its weights and our configuration (a published folder's own sections;
    for an official hub folder the package's), which ModelScope's trainer builds our
    model from."""
    from ..config import CONFIGURATION_FILE, WEIGHTS_FILE
    from ..hub import CONFIGURATION_NAME
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


def run(args: argparse.Namespace) -> int:
    from .. import distributed
    from ..hub import open_model_folder
    from .evaluation import load_labels, run_evaluation, write_report

    device = chosen_device(args)
    check_precision(args, device)
    ranks = distributed.setup(device)
    folder = open_model_folder(args.model or default_model())
    dataset_config = folder.dataset
    if args.frames or args.fps:
        dataset_config = dataclasses.replace(dataset_config, video_frames=args.frames,
                                             video_fps=args.fps)
    if args.pooling:
        dataset_config = dataclasses.replace(dataset_config, video_pooling=args.pooling)
    with tempfile.TemporaryDirectory() as scratch:
        our_dir = _our_model_dir(folder, scratch)
        rows, _, skipped = load_labels(args.data, dataset_config, args.skip_bad)
        for problem in skipped:
            LOG.warning('skipped %s', problem)
        with _modelscope_logs(args.verbose):
            metrics, preds, _ = run_evaluation(our_dir, rows, args.batch_size, args.workers,
                                               str(device), args.precision, dataset_config)
    if ranks.is_main:
        print(json.dumps(metrics))
        if args.report:
            write_report(args.report, metrics, rows, dataset_config, preds, skipped,
                         folder.identity)
    return EXIT_OK
