"""How long the README's test command takes on this machine, and how many tests its quick
subset (``pytest -m "not slow"``) holds.

    python benchmarks/test_suite_time.py --results benchmarks/results/test_suite_time.json

Runs ``python -m pytest -q tests`` (the README's and ``.ci/run``'s command) once, with a
JUnit XML report of its tests. The README quotes the time, rounded to minutes;
tests/test_docs.py checks it.
"""
from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from machine import cpu_description  # benchmarks/machine.py

ROOT = Path(__file__).resolve().parent.parent
TEST_COMMAND = [sys.executable, '-m', 'pytest', '-q', 'tests']
QUICK_MARKER = 'not slow'


def node_id(case: ElementTree.Element) -> str:
    """A JUnit test case's pytest id (``tests/test_x.py::test_y[param]``)."""
    module = case.get('classname', '').replace('.', '/')
    return f"{module}.py::{case.get('name')}"


def quick_subset() -> set:
    listing = subprocess.run([*TEST_COMMAND, '--collect-only', '-m', QUICK_MARKER],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {line for line in listing.splitlines()
            if line.startswith('tests/') and '::' in line}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--results', type=Path, required=True, help='JSON file to write')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / 'junit.xml'
        started = time.perf_counter()
        run = subprocess.run([*TEST_COMMAND, f'--junitxml={report}'], cwd=ROOT)
        wall = time.perf_counter() - started
        cases = ElementTree.parse(report).getroot().iter('testcase')
        times = {node_id(case): float(case.get('time', 0)) for case in cases}
        summary = ElementTree.parse(report).getroot().find('testsuite').attrib
    quick = quick_subset()
    result = {
        'command': 'python -m pytest -q tests',
        'exit_status': run.returncode,
        'tests': len(times), 'failures': int(summary['failures']),
        'errors': int(summary['errors']), 'skipped': int(summary['skipped']),
        'wall_s': round(wall, 1),
        'quick_subset': {'marker': QUICK_MARKER, 'tests': len(quick)},
        'cpu': cpu_description(), 'date': datetime.date.today().isoformat(),
    }
    args.results.write_text(json.dumps(result, indent=2) + '\n')
    print(json.dumps(result, indent=2))
    return run.returncode


if __name__ == '__main__':
    sys.exit(main())
