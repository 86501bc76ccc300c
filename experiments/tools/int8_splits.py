"""Issue 33: which parts of the trunk can leave float for int8 within int8's bound?

For each split (the trunk stages kept out of int8, run in bfloat16 or float32 with their
BatchNorms folded, as modelscope_iqa.models.quantization does with ``FLOAT_STAGE``), on
the default model: the seconds of one 720x1280 forward (after a warm-up, mean of 5), and
the largest difference from the exact mode and the SRCC with it on three sets: the 19
views of tests/test_inference.py (the sample photo pristine and under every family at
severities 1.5 and 3.5), the speed benchmark's 16 images, and every sixth image of a
build's wallpaper validation set.

    python experiments/tools/int8_splits.py BENCH_IMAGES WORK_DIR

BENCH_IMAGES: the folder ``benchmarks/inference_speed.py --images`` builds (its default
is $TMPDIR/modelscope_iqa_bench); WORK_DIR: a build work folder with ``valset/``.
Run it on a quiet machine: the forward times are wall-clock.
"""
import copy
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.stats import spearmanr
from torch.ao.quantization.fx.custom_config import PrepareCustomConfig
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

from modelscope_iqa import DEFAULT_MODEL_DIR
from modelscope_iqa.hub import load_model, open_model_folder
from modelscope_iqa.models import quantization as q
from modelscope_iqa.models.inference import InferenceNetwork, fold_batch_norms
from modelscope_iqa.preprocessors import decode, network_crop
from modelscope_iqa.synthetic import FAMILIES

SAMPLE = Path(__file__).resolve().parents[2] / 'samples' / 'cups_pristine.jpg'
# (stages kept out of int8, their dtype)
# (the partial layer1 splits leave out of int8 each block's first convolution, each
# block's second, or all of layer1 but the second block's first)
SPLITS = [(('layer1', ), torch.float32), (('layer1', ), torch.bfloat16),
          (('layer1.0', ), torch.bfloat16), (('layer1.1', ), torch.bfloat16),
          (('layer1.0.conv1', 'layer1.1.conv1'), torch.bfloat16),
          (('layer1.0.conv2', 'layer1.1.conv2'), torch.bfloat16),
          (('layer1.0', 'layer1.1.conv2'), torch.bfloat16),
          (('conv1', 'layer1'), torch.bfloat16), ((), None)]


def build(trunk, folded, config, names, dtype):
    """The trunk in int8 but for ``names``, calibrated as the package calibrates."""
    mapping = q.qconfig_mapping(q.full_range_activations())
    mapping = mapping.set_module_name(q.FLOAT_STAGE, mapping.global_qconfig)
    for name in names:
        mapping = mapping.set_module_name(name, None)
    example = torch.zeros(1, 3, *config.crop_size)
    with q.quantized_engine():
        prepared = prepare_fx(copy.deepcopy(trunk).float().eval(), mapping,
                              example_inputs=(example, ),
                              prepare_custom_config=PrepareCustomConfig()
                              .set_non_traceable_module_names(list(names)))
        with torch.inference_mode():
            for crop in q.calibration_crops(config):
                prepared(torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255)
        converted = convert_fx(prepared)
    for name in names:
        stage = copy.deepcopy(folded.get_submodule(name)).float()
        converted.set_submodule(name, q.FloatStage(stage, dtype))
    return converted


def evaluation_sets(model, config, bench_images: str, work_dir: str):
    """(uint8 crops by set, the exact scores by set, a function scoring a trunk on a
    set's crops with the model's head) for the three sets the module docstring names."""
    base = np.asarray(Image.open(SAMPLE).convert('RGB'))
    rng = np.random.default_rng(0)
    views = [base] + [FAMILIES[f](base, s, rng) for f in sorted(FAMILIES) for s in (1.5, 3.5)]
    sets = {
        'test views': [Image.fromarray(v) for v in views],
        'benchmark': sorted(str(p) for p in Path(bench_images).glob('[0-9]*_*')),
        'valset/6': sorted(str(p) for p in Path(work_dir, 'valset').glob('*.png'))[::6]}
    crops = {name: torch.from_numpy(np.stack([network_crop(decode(i), config) for i in items]))
             for name, items in sets.items()}
    exact = InferenceNetwork(model.network, 'fp32', 'cpu', config)
    head = model.network.head.eval()
    exact_scores = {name: exact(batch).numpy() for name, batch in crops.items()}

    def scores(trunk, batch):
        with torch.inference_mode(), q.quantized_engine():
            return np.array([torch.sigmoid(head(trunk(
                (c.permute(2, 0, 1)[None].float() / 255).contiguous(
                    memory_format=torch.channels_last)).float())).item() for c in batch])
    return crops, exact_scores, scores


def agreement(trunk, crops, exact_scores, scores) -> str:
    """Per set: the largest difference of ``trunk``'s scores from the exact ones / their
    SRCC with them."""
    cells = []
    for name, batch in crops.items():
        got = scores(trunk, batch)
        cells.append(f'{name} {np.abs(got - exact_scores[name]).max():.3f} / '
                     f'{spearmanr(got, exact_scores[name]).statistic:.4f}')
    return ' | '.join(cells)


def main(bench_images: str, work_dir: str) -> None:
    warnings.filterwarnings('ignore')
    folder = open_model_folder(DEFAULT_MODEL_DIR)
    model = load_model(folder)
    config = folder.preprocess_config
    crops, exact_scores, scores = evaluation_sets(model, config, bench_images, work_dir)
    folded = fold_batch_norms(model.network.backbone)

    for names, dtype in SPLITS:
        trunk = build(model.network.backbone, folded, config, names, dtype)
        one = (crops['benchmark'][0].permute(2, 0, 1)[None].float() / 255).contiguous(
            memory_format=torch.channels_last)
        with torch.inference_mode(), q.quantized_engine():
            trunk(one)
            start = time.perf_counter()
            for _ in range(5):
                trunk(one)
            seconds = (time.perf_counter() - start) / 5
        label = f'{"+".join(names) or "nothing"} out ({dtype})'.replace('torch.', '')
        print(f'{label:36} forward {seconds:.3f} s | '
              + agreement(trunk, crops, exact_scores, scores), flush=True)


if __name__ == '__main__':
    main(*sys.argv[1:3])
