"""Shared fixtures: a seeded random checkpoint in the hub format, model directories for
ModelScope's built-in classes and for ours, and generated test images.

Two checkpoints: the seeded random one has perturbed BatchNorm statistics and a head
rescaled to spread scores over (0, 1), which makes it ill-conditioned (float32 rounding
alone moves its scores by ~3e-5); bit-equality tests use it. The trained one (the
embedded default model's weights) is conditioned like real checkpoints; tests of the
1e-5 parity bound of the optimised inference use it.

ModelScope's own implementation (``CenseoIVQAModel`` and its pipeline, dataset and
metric) is the numerical reference every parity test compares against.
"""
import copy
import functools
import hashlib
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import modelscope_iqa  # noqa: F401  (registers the plugin)
from modelscope_iqa.builtin import builtin_configuration
from modelscope_iqa.config import CONFIGURATION_FILE, DEFAULT_MODEL_PATH
from modelscope_iqa.models import WEIGHTS_FILE, read_state_dict

REFERENCE_SEED = 20211115


# A configuration naming ModelScope's built-in classes for this task, as the official
# hub model's does (their names read from modelscope.metainfo), with what a trainer needs.
BUILTIN_CONFIGURATION = builtin_configuration()
BUILTIN_CONFIGURATION.update({
    'dataset': {},
    'train': {'max_epochs': 1, 'work_dir': './work_dir'},
})
BUILTIN_CONFIGURATION['evaluation']['dataloader'] = {
    'batch_size_per_gpu': 1, 'workers_per_gpu': 0, 'shuffle': False}

# (height, width): landscape, portrait, square, below 720p, above 4K, odd sizes.
IMAGE_SIZES = [(1080, 1920), (1920, 1080), (600, 600), (360, 640), (480, 270),
               (2200, 4200), (731, 1283), (1001, 757)]


def make_reference_network(seed: int = REFERENCE_SEED) -> torch.nn.Module:
    """A fresh copy of :func:`_reference_network` (built once per seed)."""
    return copy.deepcopy(_reference_network(seed))


@functools.lru_cache(maxsize=None)
def _reference_network(seed: int) -> torch.nn.Module:
    """ModelScope's CenseoIVQAModel with seeded weights and perturbed BatchNorm
    statistics, so that scores spread over (0, 1) instead of saturating."""
    from modelscope.models.cv.image_quality_assessment_mos.censeo_ivqa_model import \
        CenseoIVQAModel
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        network = CenseoIVQAModel(pretrained=False)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                module.weight.copy_(0.5 + 0.5 * torch.rand(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))
        # Rescale the last layer so that logits of generated images spread around 0:
        # random features pool to nearly the same vector for every image.
        network.eval()
        calibration = torch.stack([
            torch.from_numpy(make_image(720, 1280, seed=s)).permute(2, 0, 1).float() / 255
            for s in range(4)])
        logits = torch.logit(network(calibration).flatten().double())
        scale = 1.0 / logits.std().item()
        last = network.head.fc_out[2]
        last.weight.mul_(scale)
        last.bias.sub_(logits.mean().item()).mul_(scale)
    return network


def make_image(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth RGB uint8 image with edges and noise, so that resizing matters."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([
        128 + 100 * np.sin(x / (7 + seed) + y / 13),
        128 + 90 * np.cos(y / (5 + seed % 4) - x / 29),
        (x * 255 / max(width - 1, 1) + y * 0.3) % 256,
    ], axis=-1)
    base += rng.normal(0, 12 + 4 * seed, size=base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


def identity_columns(model_dir) -> dict:
    """The model columns every result of ``model_dir``'s weights must carry, computed
    here from the file: its SHA-256's first 12 hex digits and the version its
    configuration declares (the package's for the embedded default weights, else none)."""
    folder = Path(model_dir)
    sha256 = hashlib.sha256((folder / WEIGHTS_FILE).read_bytes()).hexdigest()
    default = hashlib.sha256((DEFAULT_MODEL_PATH / WEIGHTS_FILE).read_bytes()).hexdigest()
    version = json.loads((folder / 'configuration.json').read_text()).get('model_version')
    if version is None and sha256 == default:
        version = modelscope_iqa.__version__
    return {'model_version': version, 'model_sha256': 'sha256:' + sha256[:12]}


def png_header_only(path, width, height):
    """A PNG whose header claims width x height and whose pixel data is a few bytes."""
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + \
            struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) +
                     chunk(b'IDAT', zlib.compress(b'\0' * 16)) + chunk(b'IEND', b''))


@pytest.fixture(scope='session', autouse=True)
def int8_calibration_cache(tmp_path_factory) -> Path:
    """Tests (and the command lines they start) cache int8 calibrations in a folder of
    their own, never in the user's cache."""
    from modelscope_iqa.models.calibration_cache import CACHE_ENV
    folder = tmp_path_factory.mktemp('int8_cache')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(folder))
        yield folder


@pytest.fixture(scope='session')
def reference_weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp('weights') / 'pytorch_model.pt'
    torch.save(make_reference_network().state_dict(), path)
    return path




def _model_dir(folder: Path, configuration: dict, weights: Path) -> Path:
    (folder / 'configuration.json').write_text(json.dumps(configuration))
    shutil.copy(weights, folder / WEIGHTS_FILE)
    return folder


@pytest.fixture(scope='session')
def builtin_model_dir(tmp_path_factory, reference_weights) -> Path:
    return _model_dir(tmp_path_factory.mktemp('builtin_model'), BUILTIN_CONFIGURATION,
                      reference_weights)


@pytest.fixture(scope='session')
def our_model_dir(tmp_path_factory, reference_weights) -> Path:
    return _model_dir(tmp_path_factory.mktemp('our_model'),
                      json.loads(CONFIGURATION_FILE.read_text()), reference_weights)


@pytest.fixture(scope='session')
def trained_weights(tmp_path_factory) -> Path:
    """The default model's weights, stored in float32 as a hub checkpoint would be."""
    path = tmp_path_factory.mktemp('trained_weights') / WEIGHTS_FILE
    state = read_state_dict(str(DEFAULT_MODEL_PATH / WEIGHTS_FILE))
    torch.save({k: v.float() for k, v in state.items()}, path)
    return path


@pytest.fixture(scope='session')
def trained_builtin_model_dir(tmp_path_factory, trained_weights) -> Path:
    return _model_dir(tmp_path_factory.mktemp('trained_builtin'), BUILTIN_CONFIGURATION,
                      trained_weights)


@pytest.fixture(scope='session')
def trained_our_model_dir(tmp_path_factory, trained_weights) -> Path:
    return _model_dir(tmp_path_factory.mktemp('trained_ours'),
                      json.loads(CONFIGURATION_FILE.read_text()), trained_weights)


@pytest.fixture(scope='session')
def small_model_dir(tmp_path_factory, trained_weights) -> Path:
    """Trained weights with small resize and crop sizes: fast enough to score hundreds
    of inputs in a test."""
    configuration = json.loads(CONFIGURATION_FILE.read_text())
    configuration['preprocessor'].update(resize_size=[96, 160], crop_size=[64, 128])
    return _model_dir(tmp_path_factory.mktemp('small_model'), configuration, trained_weights)


@pytest.fixture(scope='session')
def image_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('images')
    paths = []
    for i, (h, w) in enumerate(IMAGE_SIZES):
        suffix = '.jpg' if i % 2 else '.png'
        path = folder / f'img{i}_{w}x{h}{suffix}'
        Image.fromarray(make_image(h, w, i)).save(path, quality=85)
        paths.append(str(path))
    return paths


@pytest.fixture(autouse=True)
def no_hub_traffic(monkeypatch):
    """Tests never reach the network.

    ModelScope's trainer checks every *local* model directory against the hub
    (``check_local_model_is_latest``); offline that costs about 7 s of retries per
    trainer and its failure is ignored, so tests skip it. Any other hub call goes to a
    loopback port where nothing listens and fails at once.
    """
    import modelscope.trainers.base as trainer_base
    import modelscope.trainers.trainer as trainer_module
    monkeypatch.setenv('MODELSCOPE_ENDPOINT', 'http://127.0.0.1:9')
    for module in (trainer_base, trainer_module):
        if hasattr(module, 'check_local_model_is_latest'):
            monkeypatch.setattr(module, 'check_local_model_is_latest',
                                lambda *args, **kwargs: None)
