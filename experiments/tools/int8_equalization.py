"""Issue 33: does cross-layer equalization let ``layer1`` join int8 within its bound?

Each residual block's inner activation (its first convolution's BatchNorm output, after
the ReLU) is scaled per channel by k > 0 and the second convolution's input weights by
1/k, which leaves the float network unchanged (ReLU(k x) = k ReLU(x)) while the
per-tensor int8 step of that activation covers its channels more evenly. The ranges are
each channel's largest activation on int8's own calibration crops. Variants: none; every
channel raised to its block's largest range ("max"), in layer1 or in every layer; the
same at most CAP times; balanced against the second convolution's input weights (k
proportional to the square root of weight range / activation range). Each is then
quantized whole (no float stage) as experiments/tools/int8_splits.py quantizes, and
printed as int8_splits.py prints: the largest difference from the exact scores and the
SRCC with them on the 19 test views, the benchmark's images and every sixth validation
image; and the largest float difference the equalization itself made.

    python experiments/tools/int8_equalization.py BENCH_IMAGES WORK_DIR
"""
import copy
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import int8_splits  # noqa: E402

from modelscope_iqa import DEFAULT_MODEL_DIR  # noqa: E402
from modelscope_iqa.hub import load_model, open_model_folder  # noqa: E402
from modelscope_iqa.models import quantization as q  # noqa: E402
from modelscope_iqa.models.inference import fold_batch_norms  # noqa: E402

LAYERS = ('layer1', 'layer2', 'layer3', 'layer4')
CAP = 8.0
# (label, layers equalized, rule)
VARIANTS = [('none', (), 'max'), ('layer1, max', ('layer1', ), 'max'),
            ('all, max', LAYERS, 'max'), ('layer1, capped', ('layer1', ), 'capped'),
            ('all, capped', LAYERS, 'capped'), ('all, balanced', LAYERS, 'balanced')]


def inner_ranges(trunk, crops) -> dict:
    """'layerN.i' -> each channel's largest inner activation over ``crops``."""
    ranges, hooks = {}, []
    for name in LAYERS:
        for index, block in enumerate(getattr(trunk, name)):
            def hook(_module, _inputs, output, key=f'{name}.{index}'):
                largest = output.clamp(min=0).amax(dim=(0, 2, 3))
                ranges[key] = torch.maximum(ranges.get(key, largest), largest)
            hooks.append(block.bn1.register_forward_hook(hook))
    with torch.inference_mode():
        for crop in crops:
            trunk(torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255)
    for hook in hooks:
        hook.remove()
    return ranges


def equalized(trunk, ranges: dict, layers, rule: str):
    trunk = copy.deepcopy(trunk)
    for key, largest in ranges.items():
        name, index = key.split('.')
        if name not in layers:
            continue
        block = getattr(trunk, name)[int(index)]
        largest = largest.clamp(min=1e-6)
        if rule == 'balanced':
            weights = block.conv2.weight.detach().abs().amax(dim=(0, 2, 3)).clamp(min=1e-8)
            k = torch.sqrt(weights / largest)
            k = k / k.min()
        else:
            k = largest.max() / largest
            if rule == 'capped':
                k = k.clamp(max=CAP)
        with torch.no_grad():
            block.bn1.weight.mul_(k)
            block.bn1.bias.mul_(k)
            block.conv2.weight.div_(k.view(1, -1, 1, 1))
    return trunk


def main(bench_images: str, work_dir: str) -> None:
    warnings.filterwarnings('ignore')
    folder = open_model_folder(DEFAULT_MODEL_DIR)
    model = load_model(folder)
    config = folder.preprocess_config
    crops, exact_scores, score = int8_splits.evaluation_sets(model, config, bench_images,
                                                             work_dir)
    trunk = model.network.backbone.eval()
    ranges = inner_ranges(trunk, q.calibration_crops(config))
    for key, largest in ranges.items():
        print(f'{key} inner activation ranges {largest.min():.3f} to {largest.max():.3f}, '
              f'median {largest.median():.3f}')
    probe = crops['test views'][:2].permute(0, 3, 1, 2).float() / 255
    for label, layers, rule in VARIANTS:
        equal = equalized(trunk, ranges, layers, rule)
        with torch.inference_mode():
            moved = float((trunk(probe) - equal(probe)).abs().max())
        quantized = int8_splits.build(equal, fold_batch_norms(equal), config, (), None)
        print(f'{label:16} float |d| {moved:.1e} | '
              + int8_splits.agreement(quantized, crops, exact_scores, score), flush=True)


if __name__ == '__main__':
    main(*sys.argv[1:3])
