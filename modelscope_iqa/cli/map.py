"""``modelscope-iqa map``: each image's quality map (where it is poor) as a PNG overlay
and a grid of local scores, with one row per input like ``score``."""
from __future__ import annotations

import argparse
from typing import Sequence

from ..config import DEFAULT_MAP_ALPHA
from ..identity import IDENTITY_FIELDS
from .arguments import EXIT_STATUS_HELP, unit_float
from .score import run_scoring

MAP_FIELDS = ['path', 'score', 'error', 'map', 'frames', 'worst_frame', *IDENTITY_FIELDS]


def add_command(commands, parents: Sequence[argparse.ArgumentParser]) -> None:
    quality_map = commands.add_parser(
        'map', help='write quality maps: where each image is poor', parents=list(parents),
        description='Write each image\'s quality map: NAME.map.png (the photo with local '
        'scores drawn over the part the model sees, and the score; the model\'s version '
        'and SHA-256 in its text chunks) and NAME.map.npy (the grid of local scores, '
        'float32 in [0, 1], in the photo\'s orientation), where NAME is the image\'s path '
        'relative to the inputs\' common folder, without its extension. Writes one row '
        'per input (path, score, error, map, frames, worst_frame, model_version, '
        'model_sha256) like score; exit status as score\'s. A video is mapped on its '
        'worst sampled frame (worst_frame: its number; score: the video\'s, the mean of '
        'its frames).', epilog=EXIT_STATUS_HELP)
    quality_map.add_argument('--output-dir', '-d', required=True, metavar='DIR',
                             help='folder for the map files (created if missing)')
    quality_map.add_argument('--alpha', type=unit_float, default=DEFAULT_MAP_ALPHA,
                             help=f'opacity of the map on the photo (default '
                             f'{DEFAULT_MAP_ALPHA})')
    quality_map.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_scoring(args, MAP_FIELDS, args.output_dir, args.alpha, only_maps=True)
