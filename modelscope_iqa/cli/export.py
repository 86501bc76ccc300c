"""``modelscope-iqa export``: the model as an ONNX file, checked against the exact mode
before it is written."""
from __future__ import annotations

import argparse
from typing import Sequence

from ..config import EXACT_PRECISION, PRECISION_BOUNDS
from ..errors import install_extra
from .arguments import EXIT_OK, EXIT_STATUS_HELP, add_model

EXPORT_FORMATS = ('onnx', )


def add_command(commands, parents: Sequence[argparse.ArgumentParser]) -> None:
    export = commands.add_parser(
        'export', help='write the model for other runtimes (ONNX)', parents=list(parents),
        description='Write the model as an ONNX file: input float32 N x 3 x crop height x '
        'crop width in the preprocessor\'s channel order, values in [0, 1]; output the MOS '
        'per image; the preprocessing facts and the weights\' version and SHA-256 in its '
        'metadata. onnxruntime scores generated images with the file before it is '
        f'written: float32, {PRECISION_BOUNDS[EXACT_PRECISION].describe()}, or nothing is '
        'written (exit 3). There is no int8 export: it missed int8\'s bound '
        '(docs/deploy.md). Needs the onnx extra: ' + install_extra('onnx') + '.',
        epilog=EXIT_STATUS_HELP)
    export.add_argument('--format', choices=EXPORT_FORMATS, default=EXPORT_FORMATS[0],
                        help='onnx (the one format; TorchScript is deprecated in PyTorch)')
    export.add_argument('--output', '-o', required=True, metavar='FILE', help='file to write')
    add_model(export)
    export.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export import export_onnx
    report = export_onnx(args.model, args.output)
    print(f'wrote {report.path} ({report.precision}); onnxruntime scored '
          f'{report.images} validation images within {report.max_abs_diff:.2g} of the '
          f'exact mode ({report.seconds:.0f} s)')
    return EXIT_OK
