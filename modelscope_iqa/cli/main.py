"""``modelscope-iqa``: score folders of images and videos, write quality maps, evaluate
on labelled data, serve the demo, export to ONNX. One module per subcommand (its options
and its run); this one builds the parser and runs the chosen command.

Only light modules at import: ``--help``, ``--version`` and usage errors answer before
PyTorch is loaded.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import List, Optional

from . import demo, evaluate, export, map as map_command, score
from .arguments import EXIT_CANNOT_RUN, EXIT_INTERRUPTED, EXIT_NO_INPUTS, EXIT_STATUS_HELP


class _PrintVersion(argparse.Action):
    """``--version``: the package's version and the default weights' short SHA-256
    (hashed only when asked)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from .. import __version__
        from ..identity import default_weights_sha256, short_sha256
        sys.stdout.write(f'modelscope-iqa {__version__} (default model '
                         f'{short_sha256(default_weights_sha256())})\n')
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='modelscope-iqa',
        description='No-reference image quality (MOS in [0, 1], higher is better) for '
        'images and videos, with ModelScope.', epilog=EXIT_STATUS_HELP)
    parser.add_argument('--version', action=_PrintVersion,
                        help="print the version and the default model's SHA-256, and exit")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('-v', '--verbose', action='store_true', help='log progress details')
    commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    parser.set_defaults(command_parsers=commands.choices)
    scoring = score.scoring_options()
    score.add_command(commands, [common, scoring])
    map_command.add_command(commands, [common, scoring])
    evaluate.add_command(commands, [common])
    demo.add_command(commands, [common])
    export.add_command(commands, [common])
    return parser


class _StderrHandler(logging.StreamHandler):
    """The command line's log handler. A subclass on purpose: the first time ModelScope
    logs inside a process group (torchrun), ``modelscope.utils.logger.get_logger`` sets
    every handler of the root logger whose type is exactly ``StreamHandler`` to ERROR,
    which silenced ``--verbose`` on every rank."""


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
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(logging.Formatter('%(levelname)s %(name)s: %(message)s'))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        handlers=[handler])
    from .. import distributed, errors
    previous_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return args.func(args)
    except errors.IqaError as exc:
        print(f'modelscope-iqa: error: {exc}', file=sys.stderr)
        return EXIT_NO_INPUTS if isinstance(exc, errors.NoInputsError) else EXIT_CANNOT_RUN
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
