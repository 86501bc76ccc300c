"""``modelscope-iqa demo``: serve the Gradio page to try the model in."""
from __future__ import annotations

import argparse
from typing import Sequence

from .arguments import (EXIT_OK, add_model, add_precision, check_precision, chosen_device,
                        port)


def add_command(commands, parents: Sequence[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        'demo', help='serve a page to try the model in (Gradio)', parents=list(parents),
        description='Serve the demo page: drop photos, see scores, quality maps, a table '
        'sorted by score (CSV), two photos side by side. Needs the demo extra: pip install '
        '"modelscope-iqa[demo]". Runs offline; stop it with Ctrl-C.')
    add_model(demo)
    demo.add_argument('--host', default=None,
                      help='address to listen on (default 127.0.0.1: this machine only; '
                      '0.0.0.0 to share on the network)')
    demo.add_argument('--port', type=port, default=None, help='port (default 7860)')
    add_precision(demo)
    demo.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo.app import DEFAULT_HOST, DEFAULT_PORT, launch_demo
    device = chosen_device(args)
    check_precision(args, device)
    try:
        launch_demo(args.model, args.precision, str(device), args.host or DEFAULT_HOST,
                    args.port or DEFAULT_PORT, model_note=args.model)
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped: nothing to resume
        return EXIT_OK
    return EXIT_OK
