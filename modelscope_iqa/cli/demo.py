"""``modelscope-iqa demo``: serve the Gradio page to try the model in."""
from __future__ import annotations

import argparse
from typing import Sequence

from ..errors import install_extra
from .arguments import (EXIT_OK, EXIT_STATUS_HELP, add_model, add_precision, check_precision, chosen_device,
                        port)


def add_command(commands, parents: Sequence[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        'demo', help='serve a page to try the model in (Gradio)', parents=list(parents),
        description='Serve the demo page: drop photos, see scores, quality maps, a table '
        'sorted by score (CSV), two photos side by side; videos with their timeline. Needs '
        'the demo extra: ' + install_extra('demo') + '. Runs offline; stop it with Ctrl-C '
        'or SIGTERM.', epilog=EXIT_STATUS_HELP)
    add_model(demo)
    demo.add_argument('--host', default=None,
                      help='address to listen on (default 127.0.0.1: this machine only; '
                      '0.0.0.0 to share on the network)')
    demo.add_argument('--port', type=port, default=None, help='port (default 7860)')
    add_precision(demo)
    demo.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N (default cpu)')
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from ..demo.app import DEFAULT_HOST, DEFAULT_PORT, launch_demo
    device = chosen_device(args)
    check_precision(args, device)
    # Gradio's own lines speak to a Python caller (share=True in launch()); this one
    # says what a command-line user can do.
    page = launch_demo(args.model, args.precision, str(device), args.host or DEFAULT_HOST,
                       args.port or DEFAULT_PORT, model_note=args.model, quiet=True,
                       prevent_thread_lock=True)
    print(f'modelscope-iqa demo: serving {page.local_url} (Ctrl-C stops it)', flush=True)
    try:
        while page.is_running:
            time.sleep(0.2)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM is how a server is stopped
        page.close(verbose=False)
    return EXIT_OK
