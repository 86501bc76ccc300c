"""Issue 33: where does the int8 forward's time go?

The shipped default model's ``int8`` network (as ``modelscope-iqa score --precision int8``
builds it) on one 720x1280 crop: the seconds of each trunk part (the first convolution,
the max-pool, the float stage, each quantized convolution of layers 2-4), timed by
forward hooks, the mean of REPEATS forwards after WARMUP; with each part's multiply-adds,
its rate in GMAC/s, and the whole forward timed without hooks.

    python experiments/tools/int8_stage_times.py

Run it on a quiet machine: the times are wall-clock.
"""
import time
import warnings
from collections import defaultdict

import torch

from modelscope_iqa import DEFAULT_MODEL_DIR
from modelscope_iqa.hub import load_model, open_model_folder
from modelscope_iqa.models.quantization import FLOAT_STAGE

WARMUP, REPEATS = 3, 10


def multiply_adds(module: torch.nn.Module, output: torch.Tensor) -> int:
    """The multiply-adds of ``module``'s convolutions, each of which (a single one, or
    those of the float stage, all of stride 1) gives ``output``'s height and width."""
    height, width = output.shape[-2:]
    return sum(height * width * conv.out_channels * conv.in_channels // conv.groups
               * conv.kernel_size[0] * conv.kernel_size[1] for conv in module.modules()
               if hasattr(conv, 'in_channels') and hasattr(conv, 'kernel_size'))


def main() -> None:
    warnings.filterwarnings('ignore')
    folder = open_model_folder(DEFAULT_MODEL_DIR)
    network = load_model(folder).inference_network('int8', 'cpu', folder.preprocess_config)
    crop = torch.randint(0, 256, (1, *folder.preprocess_config.crop_size, 3),
                         dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for _ in range(WARMUP):
        network(crop)
    start = time.perf_counter()
    for _ in range(REPEATS):
        network(crop)
    whole = (time.perf_counter() - start) / REPEATS

    seconds, macs, started = defaultdict(float), {}, {}
    parts = [(name, module) for name, module in network.trunk.named_modules()
             if name == FLOAT_STAGE or (name and not name.startswith(FLOAT_STAGE)
                                        and not list(module.children()))]
    for name, module in parts:
        module.register_forward_pre_hook(
            lambda _m, _i, name=name: started.__setitem__(name, time.perf_counter()))

        def done(module, _inputs, output, name=name):
            seconds[name] += time.perf_counter() - started[name]
            macs[name] = multiply_adds(module, output)
        module.register_forward_hook(done)
    network(crop)
    seconds.clear()
    for _ in range(REPEATS):
        network(crop)
    print(f'int8 forward, one {tuple(crop.shape[1:3])} crop: {whole * 1000:.1f} ms '
          f'(mean of {REPEATS}, no hooks)')
    print(f'{"part":22} {"ms":>7} {"GMAC":>6} {"GMAC/s":>7}')
    for name, _ in parts:
        ms = seconds[name] / REPEATS * 1000
        rate = f'{macs[name] / 1e9 / (ms / 1000):7.0f}' if macs[name] else f'{"":7}'
        print(f'{name:22} {ms:7.2f} {macs[name] / 1e9:6.2f} {rate}')
    total = sum(seconds.values()) / REPEATS * 1000
    print(f'{"parts, in all":22} {total:7.2f} {sum(macs.values()) / 1e9:6.2f}')


if __name__ == '__main__':
    main()
