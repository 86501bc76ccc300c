"""The photos: which wallpapers of which Debian packages (the catalogue,
recipes/photos.yaml), how they are fetched and brought to the model's working scale, and
how they split by whole photo into training, the held-out (validation) set and the audit
set; the dead-leaves charts beside them."""
from __future__ import annotations

import json
import logging
import math
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import cv2
import numpy as np
import yaml

from modelscope_iqa.config import PreprocessConfig
from modelscope_iqa.preprocessors.crop import (centre_window, cover_resize, cover_size,
                                               is_portrait, oriented)
from modelscope_iqa.preprocessors.decoding import decode
from modelscope_iqa.synthetic.charts import dead_leaves

LOG = logging.getLogger(__name__)

CATALOGUE_FILE = Path(__file__).resolve().parent / 'recipes' / 'photos.yaml'
# The catalogue's keys, and those of its sections.
CATALOGUE_KEYS = ('debian_packages', 'photo_sets', 'holdout', 'audit', 'gcompris')
SECTION_KEYS = {'photo_sets': ('mate', 'plasma', 'lxqt', 'lomiri', 'native_scale'),
                'gcompris': ('package', 'rcc_dir', 'archives', 'min_side', 'clean_bits',
                             'holdout', 'audit')}


def load_catalogue(path: Path = CATALOGUE_FILE) -> Dict[str, Any]:
    """The photo catalogue; ValueError unless it and its sections have exactly their
    keys (:data:`CATALOGUE_KEYS`, :data:`SECTION_KEYS`)."""
    with open(path, encoding='utf-8') as f:
        catalogue = _with_keys(yaml.safe_load(f), CATALOGUE_KEYS, str(path))
    for section, keys in SECTION_KEYS.items():
        _with_keys(catalogue[section], keys, f'{path}: {section}')
    return catalogue


def _with_keys(mapping, keys: Sequence[str], where: str):
    if not isinstance(mapping, Mapping) or sorted(mapping) != sorted(keys):
        got = sorted(mapping) if isinstance(mapping, Mapping) else mapping
        raise ValueError(f'{where}: expected the keys {list(keys)}, got {got!r}')
    return mapping


_CATALOGUE = load_catalogue()
DEBIAN_PACKAGES = tuple(_CATALOGUE['debian_packages'])
MATE_PHOTOS = _CATALOGUE['photo_sets']['mate']
PLASMA_PHOTOS = _CATALOGUE['photo_sets']['plasma']
LXQT_PHOTOS = _CATALOGUE['photo_sets']['lxqt']  # file names
LOMIRI_PHOTOS = _CATALOGUE['photo_sets']['lomiri']
NATIVE_SCALE_PHOTOS = _CATALOGUE['photo_sets']['native_scale']
HOLDOUT = _CATALOGUE['holdout']
AUDIT_PHOTOS = _CATALOGUE['audit']
GCOMPRIS_PACKAGE = _CATALOGUE['gcompris']['package']
GCOMPRIS_RCC_DIR = _CATALOGUE['gcompris']['rcc_dir']
# Archive -> how many photos it holds, and those archives, in the catalogue's order.
GCOMPRIS_COUNTS = _CATALOGUE['gcompris']['archives']
GCOMPRIS_ARCHIVES = tuple(GCOMPRIS_COUNTS)
GCOMPRIS_MIN_SIDE = _CATALOGUE['gcompris']['min_side']
GCOMPRIS_CLEAN_BITS = _CATALOGUE['gcompris']['clean_bits']
GCOMPRIS_HOLDOUT = _CATALOGUE['gcompris']['holdout']
GCOMPRIS_AUDIT = _CATALOGUE['gcompris']['audit']
GCOMPRIS_PHOTOS = [f'{archive}_{index:02d}' for archive, count in GCOMPRIS_COUNTS.items()
                   for index in range(count)]
# The sets a stage's recipe names (photo_sets), by photo name.
PHOTO_SETS: Dict[str, List[str]] = {
    'mate': MATE_PHOTOS, 'plasma': PLASMA_PHOTOS,
    'lxqt': [Path(name).stem for name in LXQT_PHOTOS], 'lomiri': LOMIRI_PHOTOS,
    'native_scale': NATIVE_SCALE_PHOTOS,
    'gcompris': sorted(set(GCOMPRIS_PHOTOS) - set(GCOMPRIS_HOLDOUT) - set(GCOMPRIS_AUDIT))}
# The folders of WORK/pristine: training photos and charts, and the held-out sets'.
TRAIN_SPLIT = 'train'
HOLDOUT_SPLIT = 'holdout'
AUDIT_SPLIT = 'audit'
GCOMPRIS_HOLDOUT_SPLIT = 'gcompris_holdout'
GCOMPRIS_AUDIT_SPLIT = 'gcompris_audit'
# What the photos step records of each gcompris photo (WORK/pristine/GCOMPRIS_MANIFEST).
GCOMPRIS_MANIFEST = 'gcompris.json'
# Charts the photos step draws beside the training photos (a ladder stage draws its
# recipe's dead_leaves_charts, these among them).
DEAD_LEAVES_CHARTS = 4
# A chart's file name: CHART_STEM + '_' + its index (the seed of its drawing).
CHART_STEM = 'dead_leaves'
# A JPEG stream's start-of-image marker and the first byte of its next marker.
JPEG_START = b'\xff\xd8\xff'
# A RIFF chunk: 'RIFF', its little-endian size, then the form type.
RIFF, WEBP_FORM = b'RIFF', b'WEBP'


def training_photos(photo_sets: Sequence[str]) -> List[str]:
    """The names of the photos of ``photo_sets`` that training may see (sorted)."""
    return sorted({name for s in photo_sets for name in PHOTO_SETS[s]} - set(HOLDOUT))


def _run(command, cwd=None):
    LOG.info('$ %s', ' '.join(command))
    subprocess.run(command, check=True, cwd=cwd)


def fetch_photos(work_dir: Path, seed: int) -> None:
    """apt-get download + dpkg -x the packages into WORK/debs, then every photo at the
    working scale into WORK/pristine/SPLIT and the first charts into the training split."""
    debs, root = work_dir / 'debs', work_dir / 'debs' / 'root'
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in DEBIAN_PACKAGES if not list(debs.glob(f'{p}_*.deb'))]
    if missing:
        _run(['apt-get', 'download', *missing], cwd=debs)
    for deb in sorted(debs.glob('*.deb')):
        _run(['dpkg', '-x', str(deb), str(root)])
    share = root / 'usr' / 'share'
    sources = {name: share / 'backgrounds' / 'mate' / 'nature' / f'{name}.jpg'
               for name in MATE_PHOTOS + NATIVE_SCALE_PHOTOS}
    for name in PLASMA_PHOTOS:
        images = list((share / 'wallpapers' / name / 'contents' / 'images').glob('*'))
        sources[name] = max(images, key=lambda p: _pixels(p.stem))
    for file_name in LXQT_PHOTOS:
        sources[Path(file_name).stem] = share / 'lxqt' / 'wallpapers' / file_name
    for name in LOMIRI_PHOTOS:
        sources[name], = (share / 'backgrounds').glob(f'{name}_by_*.jpg')
    out = work_dir / 'pristine'
    for name, path in sorted(sources.items()):
        split = HOLDOUT_SPLIT if name in HOLDOUT else TRAIN_SPLIT
        _write_pristine(out / split / f'{name}.png', decode(path).rgb(), path.name)
    for name in AUDIT_PHOTOS:
        path = share / 'enlightenment' / 'data' / 'backgrounds' / f'{name}.edj'
        _write_pristine(out / AUDIT_SPLIT / f'{name}.png',
                        largest_jpeg(path.read_bytes()), path.name)
    draw_charts(out / TRAIN_SPLIT, seed, range(DEAD_LEAVES_CHARTS))
    write_gcompris(extract_gcompris(debs), out)


def gcompris_split(name: str) -> str:
    if name in GCOMPRIS_HOLDOUT:
        return GCOMPRIS_HOLDOUT_SPLIT
    return GCOMPRIS_AUDIT_SPLIT if name in GCOMPRIS_AUDIT else TRAIN_SPLIT


def at_network_scale(rgb: np.ndarray) -> np.ndarray:
    """A photo smaller than the working size enlarged as the pipeline enlarges it
    (``cover_resize``: bicubic, covering the working size) and centre-cropped to that
    size, so that degradations made on it are at the scale the network sees."""
    config = PreprocessConfig.from_mapping()
    resized, portrait = cover_resize(rgb, config)
    return np.ascontiguousarray(centre_window(resized, oriented(config.resize_size, portrait)))


def write_gcompris(rcc_dir: Path, out: Path) -> None:
    """The gcompris photos, each downscaled by its :func:`clean_scale`, into its split's
    folder of ``out`` (WORK/pristine), and a manifest of what each one is. Held-out and
    audit photos are then enlarged to the working size (:func:`at_network_scale`):
    degraded at their own small size and enlarged by the pipeline afterwards, sensor
    noise and JPEG blocks would be smoothed into something else (the shipped model's
    mean SRCC on the held-out photos so: 0.668, sensor noise 0.192). Training photos
    stay small: the ladder stages take windows at several scales."""
    found = gcompris_photos(rcc_dir)
    if sorted(found) != sorted(GCOMPRIS_PHOTOS):
        raise ValueError(f'{rcc_dir}: expected the photos {GCOMPRIS_COUNTS}, found '
                         f'{len(found)} others; is it another version of {GCOMPRIS_PACKAGE}?')
    manifest = {}
    for name, (rgb, bits) in sorted(found.items()):
        scale = clean_scale(bits)
        kept = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale,
                                                   interpolation=cv2.INTER_AREA)
        split = gcompris_split(name)
        if split != TRAIN_SPLIT:
            kept = at_network_scale(kept)
        _write_pristine(out / split / f'{name}.png', kept, f'{name} (webp)')
        manifest[name] = {'split': split, 'webp_size': list(rgb.shape[1::-1]),
                          'bits_per_pixel': round(bits, 4), 'scale': round(scale, 4),
                          'size': list(kept.shape[1::-1]),
                          'mean_pixel': round(float(rgb.mean()), 2)}
    (out / GCOMPRIS_MANIFEST).write_text(json.dumps(manifest, indent=1) + '\n')


def _write_pristine(target: Path, rgb: np.ndarray, source: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    rgb = working_scale(rgb)
    cv2.imwrite(str(target), rgb[:, :, ::-1])
    LOG.info('%s -> %s %s', source, target, rgb.shape)


def largest_jpeg(container: bytes) -> np.ndarray:
    """The largest JPEG image inside a container file (an Edje .edj stores each image
    as a JPEG stream among its other entries), as RGB: each JPEG start marker is decoded
    up to its end marker, and what does not decode is skipped."""
    view = np.frombuffer(container, np.uint8)
    best = None
    start = container.find(JPEG_START)
    while start >= 0:
        bgr = cv2.imdecode(view[start:], cv2.IMREAD_COLOR)
        if bgr is not None and (best is None or bgr.size > best.size):
            best = bgr
        start = container.find(JPEG_START, start + 1)
    if best is None:
        raise ValueError('no JPEG image in the container')
    return np.ascontiguousarray(best[:, :, ::-1])


def draw_charts(out_dir: Path, seed: int, indices) -> List[Path]:
    """Dead-leaves charts at the model's working scale, one per index (seeded by
    ``[seed, index]``), as out_dir/CHART_STEM_INDEX.png; drawn once, then reused."""
    config = PreprocessConfig.from_mapping()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in indices:
        target = out_dir / f'{CHART_STEM}_{index}.png'
        if not target.is_file():
            chart = dead_leaves(*config.resize_size, np.random.default_rng([seed, index]))
            cv2.imwrite(str(target), chart[:, :, ::-1])
            LOG.info('dead-leaves chart -> %s', target)
        paths.append(target)
    return paths


def _pixels(stem: str) -> int:
    try:
        width, height = (int(v) for v in stem.split('x'))
        return width * height
    except ValueError:
        return 0


def working_scale(rgb: np.ndarray) -> np.ndarray:
    """Downscale cleanly (area filter, where the pipeline's resize is bicubic) to cover
    the preprocessor's resize size, then centre-crop to exactly that size: a pristine
    image at the network's scale. A photo smaller than that is kept as it is: upscaling
    would itself lose resolution."""
    config = PreprocessConfig.from_mapping()
    height, width = rgb.shape[:2]
    size = oriented(config.resize_size, is_portrait(height, width, config))
    out_h, out_w = cover_size(height, width, *size)
    if out_h > height:
        return rgb
    resized = cv2.resize(rgb, (out_w, out_h), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(centre_window(resized, size))


def webp_images(container: bytes) -> List[bytes]:
    """The WebP files stored whole inside a container (a Qt .rcc keeps each as its
    RIFF....WEBP bytes), in the order they appear."""
    found = []
    start = container.find(RIFF)
    while start >= 0:
        size = int.from_bytes(container[start + 4:start + 8], 'little')
        end = start + 8 + size
        if container[start + 8:start + 12] == WEBP_FORM and end <= len(container):
            found.append(container[start:end])
            start = container.find(RIFF, end)
        else:
            start = container.find(RIFF, start + 1)
    return found


def gcompris_photos(rcc_dir: Path) -> Dict[str, Tuple[np.ndarray, float]]:
    """``ARCHIVE_NN`` -> (RGB, coded bits per pixel) for the photographs of the five
    archives (:data:`GCOMPRIS_ARCHIVES`) in ``rcc_dir``."""
    found = {}
    for archive in GCOMPRIS_ARCHIVES:
        photos_seen = 0
        for blob in webp_images((rcc_dir / f'{archive}.rcc').read_bytes()):
            bgr = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
            if bgr is None or min(bgr.shape[:2]) < GCOMPRIS_MIN_SIDE:
                continue
            bits = 8 * len(blob) / (bgr.shape[0] * bgr.shape[1])
            found[f'{archive}_{photos_seen:02d}'] = (np.ascontiguousarray(bgr[:, :, ::-1]),
                                                     bits)
            photos_seen += 1
    return found


def clean_scale(bits_per_pixel: float) -> float:
    """The downscale factor that gives a WebP photo ``GCOMPRIS_CLEAN_BITS`` coded bits per
    kept pixel (1.0 where it has them already)."""
    return min(1.0, math.sqrt(bits_per_pixel / GCOMPRIS_CLEAN_BITS))


def extract_gcompris(debs: Path) -> Path:
    """Download the package into ``debs`` (once) and extract only the five archives
    (``dpkg-deb --fsys-tarfile`` piped to ``tar`` naming them); their folder."""
    if not list(debs.glob(f'{GCOMPRIS_PACKAGE}_*.deb')):
        _run(['apt-get', 'download', GCOMPRIS_PACKAGE], cwd=debs)
    deb, = debs.glob(f'{GCOMPRIS_PACKAGE}_*.deb')
    out = debs / 'gcompris'
    out.mkdir(parents=True, exist_ok=True)
    members = [f'./{GCOMPRIS_RCC_DIR}/{archive}.rcc' for archive in GCOMPRIS_ARCHIVES]
    LOG.info('$ dpkg-deb --fsys-tarfile %s | tar -x %s', deb.name, ' '.join(members))
    tarball = subprocess.run(['dpkg-deb', '--fsys-tarfile', str(deb)], check=True,
                             capture_output=True).stdout
    subprocess.run(['tar', '-x', '-C', str(out), *members], input=tarball, check=True)
    return out / GCOMPRIS_RCC_DIR
