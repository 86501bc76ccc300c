"""The machine a benchmark ran on, as its results record it."""
from __future__ import annotations

import os
import platform
import subprocess
from typing import Dict

# The CPU flags that decide the forward's speed in each precision.
SPEED_FLAGS = ('avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_bf16', 'amx_int8', 'amx_tile')


def cpu_description() -> Dict[str, object]:
    """This machine's CPU as lscpu names it, its cores, and which of
    :data:`SPEED_FLAGS` it has."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        listing = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
    except OSError:
        listing = ''
    for line in listing.splitlines():
        key, _, value = line.partition(':')
        if key.strip() == 'Model name':
            name = value.strip()
        elif key.strip() == 'Flags':
            flags = set(value.split())
    return {'name': name, 'cores': os.cpu_count(),
            'flags': [flag for flag in SPEED_FLAGS if flag in flags]}
