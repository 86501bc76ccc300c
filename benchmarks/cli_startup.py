"""Start-up time of the command line and of the package's import, measured in one run.

    python benchmarks/cli_startup.py [--repeats 5]

Each command runs in a fresh interpreter, ``--repeats`` times; the median wall time is
printed with its ratio to a bare interpreter start and to the heavy import (the
subpackages that load PyTorch and ModelScope), which is what scoring pays once.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = [
    ('python (bare interpreter)', ['-c', 'pass']),
    ('import modelscope_iqa', ['-c', 'import modelscope_iqa']),
    ('modelscope-iqa --help', ['-m', 'modelscope_iqa', '--help']),
    ('modelscope-iqa score --help', ['-m', 'modelscope_iqa', 'score', '--help']),
    ('usage error (unknown flag)', ['-m', 'modelscope_iqa', 'score', '--no-such-flag']),
    ('import modelscope_iqa.pipelines (heavy)', ['-c', 'import modelscope_iqa.pipelines']),
]


def seconds(arguments, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, *arguments], capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args()
    results = [(name, seconds(arguments, args.repeats)) for name, arguments in COMMANDS]
    bare, heavy = results[0][1], results[-1][1]
    print(f'{"command":<42} {"median s":>9} {"x bare":>8} {"x heavy":>8}')
    for name, value in results:
        print(f'{name:<42} {value:9.3f} {value / bare:8.2f} {value / heavy:8.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
