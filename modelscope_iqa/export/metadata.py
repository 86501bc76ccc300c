"""What a foreign runtime needs to know to feed an exported file, stored in the ONNX
file's metadata (``metadata_props``, strings), from the model folder's
``configuration.json``: the preprocessor and dataset sections as JSON, and sentences that
spell the rest out."""
from __future__ import annotations

import dataclasses
import json
from typing import Dict

from ..config import DatasetConfig, PreprocessConfig
from ..identity import ModelIdentity
from ..preprocessors.scale import UINT8_MAX

PREFIX = 'modelscope_iqa.'
PREPROCESSOR_KEY = PREFIX + 'preprocessor'
DATASET_KEY = PREFIX + 'dataset'
PRECISION_KEY = PREFIX + 'precision'
WEIGHTS_SHA256_KEY = PREFIX + 'weights_sha256'
MODEL_VERSION_KEY = PREFIX + 'model_version'


def export_metadata(preprocess: PreprocessConfig, dataset: DatasetConfig, precision: str,
                    identity: ModelIdentity, version: str) -> Dict[str, str]:
    """The metadata of a file exported by package ``version`` from the weights
    ``identity``."""
    crop_h, crop_w = preprocess.crop_size
    resize_h, resize_w = preprocess.resize_size
    weights = {WEIGHTS_SHA256_KEY: identity.sha256}
    if identity.version is not None:
        weights[MODEL_VERSION_KEY] = identity.version
    return {
        PREFIX + 'version': version,
        **weights,
        PRECISION_KEY: precision,
        PREPROCESSOR_KEY: json.dumps(dataclasses.asdict(preprocess)),
        DATASET_KEY: json.dumps(dataclasses.asdict(dataset)),
        PREFIX + 'input': (f'image: float32 (N, 3, {crop_h}, {crop_w}), channels in '
                           f'{preprocess.channel_order} order, values = uint8 pixel / '
                           f'{UINT8_MAX:g} in [0, 1], no mean or std'),
        PREFIX + 'preprocessing': (
            f'resize keeping the aspect ratio to the smallest size that covers '
            f'{resize_h}x{resize_w} (height x width; each side rounded up; '
            f'{preprocess.interpolation}), then take the centre {crop_h}x{crop_w}. An '
            f'image taller than wide uses both sizes transposed ({resize_w}x{resize_h}, '
            f'{crop_w}x{crop_h}) and its crop is rotated 90 degrees counter-clockwise '
            f'to {crop_h}x{crop_w}. EXIF orientation is applied when decoding.'),
        PREFIX + 'output': ('mos: float32 (N,), quality in [0, 1], higher is better; a '
                            f"dataset's MOS times {dataset.mos_scale:g} is on this scale"),
    }


def metadata_identity(metadata: Dict[str, str]) -> ModelIdentity:
    """The weights an exported file was made from, as its metadata records them."""
    return ModelIdentity(metadata[WEIGHTS_SHA256_KEY], metadata.get(MODEL_VERSION_KEY))


def read_onnx_metadata(path: str) -> Dict[str, str]:
    """The ``metadata_props`` of an ONNX file (without loading its weights)."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    return {prop.key: prop.value for prop in model.metadata_props}
