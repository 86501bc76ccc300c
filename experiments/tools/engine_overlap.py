"""Issue 33: can the scoring engine overlap decoding and the int8 forward better?

Scores the speed benchmark's 16 images with int8 through
``modelscope_iqa.scoring.score_files`` under several arrangements (decoding workers,
their niceness, forward threads, in-order or out-of-order loading) and prints images/s,
the faster of two passes after a warm-up; then the forward alone and the decoding alone
(no forward) over the same images, and both together with the forwards timed inside.

    python experiments/tools/engine_overlap.py [BENCH_IMAGES] [--rounds N]

BENCH_IMAGES: the folder ``benchmarks/inference_speed.py --images`` builds (default
$TMPDIR/modelscope_iqa_bench). ``--rounds``: the arrangements run N times in turn, so
that a shared machine's drift shows as the spread of one arrangement's figures between
rounds. Run it on a quiet machine.
"""
import argparse
import functools
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'benchmarks'))
from image_set import build_image_set  # noqa: E402

from modelscope_iqa import DEFAULT_MODEL_DIR  # noqa: E402
from modelscope_iqa.hub import load_model, open_model_folder  # noqa: E402
from modelscope_iqa.preprocessors import decode, network_crop  # noqa: E402
from modelscope_iqa.scoring import engine  # noqa: E402

# (label, workers, in order, forward threads, worker niceness)
ARRANGEMENTS = [
    ('as shipped: 2 workers at nice 19, 2 threads', 2, True, 2, 19),
    ('out-of-order loading', 2, False, 2, 19),
    ('1 forward thread', 2, True, 1, 19),
    ('workers at nice 0', 2, True, 2, 0),
    ('out-of-order, 3 workers', 3, False, 2, 19),
    ('1 thread, 1 worker at nice 0', 1, True, 1, 0),
    ('1 thread, 1 worker at nice 19', 1, True, 1, 19),
    ('2 threads, 1 worker at nice 19', 1, True, 2, 19),
]


class _Timed(torch.nn.Module):
    def __init__(self, network):
        super().__init__()
        self.network, self.seconds = network, 0.0

    def forward(self, batch):
        start = time.perf_counter()
        scores = self.network(batch)
        self.seconds += time.perf_counter() - start
        return scores


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main(images: str, rounds: int = 1) -> None:
    warnings.filterwarnings('ignore')
    folder = open_model_folder(DEFAULT_MODEL_DIR)
    config = folder.preprocess_config
    network = load_model(folder).inference_network('int8', 'cpu', config)
    paths = build_image_set(images, 16)
    loader, niceness = torch.utils.data.DataLoader, engine.WORKER_NICENESS
    try:
        for label, workers, in_order, threads, nice in ARRANGEMENTS * rounds:
            torch.set_num_threads(threads)
            engine.WORKER_NICENESS = nice
            engine.torch.utils.data.DataLoader = functools.partial(loader, in_order=in_order)
            list(engine.score_files(network, paths[:2], config, workers=workers))
            best = min(_seconds(lambda: list(engine.score_files(network, paths, config,
                                                                 workers=workers)))
                       for _ in range(2))
            print(f'{label:44} {len(paths) / best:.2f} img/s', flush=True)
    finally:
        engine.torch.utils.data.DataLoader, engine.WORKER_NICENESS = loader, niceness
        torch.set_num_threads(os.cpu_count() or 1)
    crops = [torch.from_numpy(network_crop(decode(p), config))[None] for p in paths]
    network(crops[0])
    forward = _seconds(lambda: [network(c) for c in crops])
    null = _Timed(lambda batch: torch.zeros(batch.shape[0]))
    list(engine.score_files(null, paths[:2], config, workers=2))
    decoding = _seconds(lambda: list(engine.score_files(null, paths, config, workers=2)))
    timed = _Timed(network)
    both = _seconds(lambda: list(engine.score_files(timed, paths, config, workers=2)))
    print(f'forward alone {forward:.2f} s ({forward / len(paths):.3f} s an image); decoding '
          f'alone, 2 workers, {decoding:.2f} s; both {both:.2f} s, of which forwards '
          f'{timed.seconds:.2f} s ({timed.seconds / len(paths):.3f} s an image)')


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('images', nargs='?',
                        default=os.path.join(tempfile.gettempdir(), 'modelscope_iqa_bench'))
    parser.add_argument('--rounds', type=int, default=1)
    arguments = parser.parse_args()
    main(arguments.images, arguments.rounds)
