"""What every subcommand shares: exit codes, argument types, the ``--model`` and
``--precision`` options, usage errors, and the device checks.

Only light modules at import: ``--help`` and usage errors must not wait for PyTorch.
"""
from __future__ import annotations

import argparse
import math

from ..config import EXACT_PRECISION, PRECISION_BOUNDS, PRECISIONS

EXIT_OK, EXIT_INPUT_FAILED, EXIT_USAGE, EXIT_CANNOT_RUN, EXIT_NO_INPUTS = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130  # the shell's code for a run stopped by a signal (128 + SIGINT)
EXIT_STATUS_HELP = (
    f'Exit status: {EXIT_OK} done; {EXIT_INPUT_FAILED} the run finished but some inputs '
    f'failed (their rows say why); {EXIT_USAGE} a wrong command line; {EXIT_CANNOT_RUN} '
    'the job cannot run (unusable model folder, data or output file); '
    f'{EXIT_NO_INPUTS} nothing to score (no image or video file in the folders and globs '
    f'given); {EXIT_INTERRUPTED} interrupted by Ctrl-C or SIGTERM (the rows written stay; '
    '--resume finishes the run).')


def default_model() -> str:
    from .. import DEFAULT_MODEL_DIR
    return DEFAULT_MODEL_DIR


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {value}')
    return value


def port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f'must be a port number (1-65535), got {text}')
    return value


def unit_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f'must lie in [0, 1], got {text}')
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f'must be a positive number, got {text}')
    return value


def pooling_name(text: str) -> str:
    """A video pooling's name (``mean``, ``harmonic``, ``min``, ``pNN``)."""
    from ..video.pooling import Pooling
    try:
        return Pooling(text).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_model(command: argparse.ArgumentParser) -> None:
    command.add_argument('--model', default=None,
                         help='model folder (ours, a published or an official hub '
                         'download) or hub id (needs the network); default: the embedded '
                         'default model')


def add_precision(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        '--precision', choices=sorted(PRECISIONS), default=EXACT_PRECISION,
        help=f'{EXACT_PRECISION} (default, exact: ModelScope\'s scores, '
        f'{PRECISION_BOUNDS[EXACT_PRECISION].describe("its built-in pipeline")} in the '
        'tests), or faster modes held to bounds against the exact scores: ' + '; '.join(
            f'{name} on {" or ".join(bound.devices)}, {bound.describe()}'
            for name, bound in PRECISION_BOUNDS.items() if name != EXACT_PRECISION)
        + '. bf16 is fast on CPUs with AVX-512 BF16 or AMX; int8 needs an x86 CPU and is '
        'calibrated the first time a model is used (cached after)')


def usage_error(args: argparse.Namespace, message: str) -> None:
    """Exit with the command's usage and ``message`` (status 2, as argparse does)."""
    args.command_parsers[args.command].error(message)


def check_precision(args: argparse.Namespace, device) -> None:
    """A usage error when ``--precision`` cannot run on ``device``
    (:func:`~modelscope_iqa.models.inference.validate_precision` says why)."""
    from ..models import validate_precision
    try:
        validate_precision(args.precision, device)
    except ValueError as exc:
        usage_error(args, f'--precision: {exc}')


def chosen_device(args: argparse.Namespace):
    """The ``torch.device`` of ``--device`` (the rank's own under torchrun); a usage
    error when it names CUDA on a machine without it."""
    import torch

    from ..distributed import device_for_rank
    device = device_for_rank(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        usage_error(args, f'--device {args.device}: CUDA is not available')
    return device
