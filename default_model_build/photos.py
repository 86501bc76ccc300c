"""The photos: which wallpapers of which Debian packages, how they are fetched and brought
to the model's working scale, and how they split by whole photo into training, the
held-out (validation) set and the audit set; the dead-leaves charts beside them."""
from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Dict, List, Sequence

import cv2
import numpy as np

from modelscope_iqa.config import PreprocessConfig
from modelscope_iqa.preprocessors.crop import cover_size, oriented
from modelscope_iqa.preprocessors.decoding import decode
from modelscope_iqa.synthetic.charts import dead_leaves

LOG = logging.getLogger(__name__)

DEBIAN_PACKAGES = ('plasma-workspace-wallpapers', 'mate-backgrounds', 'gnome-backgrounds',
                   'lxqt-themes', 'lomiri-wallpapers-16.04', 'lomiri-wallpapers-20.04',
                   'enlightenment-data')
# The photographs among the packages' wallpapers (the rest are drawings and patterns),
# as paths under the extracted /usr/share; plasma wallpapers use their largest image.
# gnome-backgrounds holds no photograph. lxqt-themes' wallpapers are LGPL-2.1+.
MATE_PHOTOS = ['Aqua', 'Blinds', 'Dune', 'FreshFlower', 'Garden', 'LadyBird', 'RainDrops',
               'Storm', 'TwoWings', 'Wood', 'YellowFlower']
PLASMA_PHOTOS = ['BytheWater', 'ColdRipple', 'ColorfulCups', 'DarkestHour', 'EveningGlow',
                 'FallenLeaf', 'Grey', 'Kite', 'OneStandsOut', 'Path', 'Volna',
                 'summer_1am']
LXQT_PHOTOS = ['Butterfly-Kenneth-Wimer.jpg', 'Valendas.png', 'after-the-rain.jpg',
               'appleflower.png', 'beam.png', 'butterfly.png', 'cloud.png', 'drop.png',
               'flowers.png', 'fog.jpg', 'this-is-not-windows.jpg']
# Ubuntu wallpaper-contest photographs, /usr/share/backgrounds/NAME_by_AUTHOR.jpg
# (CC-BY-4.0, CC-BY-SA-3.0/4.0 or CC0-1.0, as each package's copyright file says); the
# packages' drawings and the composite Infinite-Sea are left out.
LOMIRI_PHOTOS = ['Bridge', 'Dragonfly', 'Kleiber', 'Picture_0B', 'Picture_1A', 'Wine',
                 'aitzgorri', 'free', 'friends', 'greentock', 'life', 'picosdeeuropa',
                 'seeding', 'sunset']
# Smaller than 1080x1920 (a mate photo): trained on at its own scale, never upscaled.
NATIVE_SCALE_PHOTOS = ['GreenMeadow']
# Whole photos held out from training (every stage), for validation and the report:
# two or more from each package that has photographs.
HOLDOUT = ['Dune', 'Wood', 'ColorfulCups', 'EveningGlow', 'Path', 'flowers', 'Valendas',
           'aitzgorri', 'greentock']
# The audit set: every photograph among enlightenment-data's backgrounds (© Carsten
# Haitzler and contributors, BSD-2-clause; the drawings Dunes, Flat-Fan,
# Flat-Stone-Pattern, Paper-Flower, Sunset-Hills and the Squiggles left out), chosen
# before any model scored them. Held out from training like HOLDOUT, and also from the
# choices between candidates (recipes, family weights, which one ships), which the
# holdout photos have guided: it measures what those choices cannot have tuned. Each
# .edj holds the photo as JPEGs at 13 sizes; the largest (3840x2160) is used.
AUDIT_PHOTOS = ['Bamboo', 'Foggy-Trees', 'God-Rays', 'Green-Maple', 'Lichen-Branches',
                'Mountain', 'Peaks', 'Red-Maple', 'Sea-of-Lanterns', 'Snow-Trees',
                'Spruce-Needles', 'Sunset-Clouds', 'White-Flower', 'Yellow-Flower']
# The sets a stage's recipe names (photo_sets), by photo name.
PHOTO_SETS: Dict[str, List[str]] = {
    'mate': MATE_PHOTOS, 'plasma': PLASMA_PHOTOS,
    'lxqt': [Path(name).stem for name in LXQT_PHOTOS], 'lomiri': LOMIRI_PHOTOS,
    'native_scale': NATIVE_SCALE_PHOTOS}
# The folders of WORK/pristine: training photos and charts, and the held-out sets'.
TRAIN_SPLIT = 'train'
HOLDOUT_SPLIT = 'holdout'
AUDIT_SPLIT = 'audit'
# Charts the photos step draws beside the training photos (a ladder stage draws its
# recipe's dead_leaves_charts, these among them).
DEAD_LEAVES_CHARTS = 4
# A chart's file name: CHART_STEM + '_' + its index (the seed of its drawing).
CHART_STEM = 'dead_leaves'
# A JPEG stream's start-of-image marker and the first byte of its next marker.
JPEG_START = b'\xff\xd8\xff'


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
    """Downscale cleanly (area filter) to cover the preprocessor's resize size, then
    centre-crop to exactly that size: a pristine image at the network's scale. A photo
    smaller than that is kept as it is: upscaling would itself lose resolution."""
    config = PreprocessConfig.from_mapping()
    height, width = oriented(config.resize_size, portrait=rgb.shape[0] > rgb.shape[1])
    out_h, out_w = cover_size(rgb.shape[0], rgb.shape[1], height, width)
    if out_h > rgb.shape[0]:
        return rgb
    resized = cv2.resize(rgb, (out_w, out_h), interpolation=cv2.INTER_AREA)
    top, left = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
    return np.ascontiguousarray(resized[top:top + height, left:left + width])
