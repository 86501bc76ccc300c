"""Quality maps: the score is the pipeline's, the grid is oriented as the user sees the
photo, and it is lower exactly where a photo was degraded."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from modelscope.outputs import OutputKeys
from modelscope.pipelines import pipeline
from modelscope.utils.constant import Tasks
from PIL import Image

from modelscope_iqa import DEFAULT_MODEL_DIR
from modelscope_iqa.cli.map_files import map_names
from modelscope_iqa.maps import LOCAL_WINDOW, QualityMapper, quality_map
from modelscope_iqa.maps.overlay import OUTSIDE_BRIGHTNESS, _colours
from modelscope_iqa.models.network import MosHead
from modelscope_iqa.scoring import score_files

SAMPLE = Path(__file__).resolve().parent.parent / 'samples' / 'cups_pristine.jpg'
# The network's crop is 720 x 1280: 23 x 40 feature positions.
LANDSCAPE_GRID = (23, 40)
# A degraded part must score lower than the intact part by at least this much (means of
# the grid over each part). Measured with the shipped default model: 0.71 blur, 0.77
# noise, 0.25 darkening (window 5).
CLEAR_GAP = 0.15
EXIF_ROTATE_90_CW = 6  # EXIF orientation: shown turned 90 degrees clockwise


@pytest.fixture(scope='module')
def photo():
    """The committed sample photo, BGR 1080 x 1920."""
    return cv2.imread(str(SAMPLE))


@pytest.fixture(scope='module')
def mapper():
    return QualityMapper()


@pytest.fixture(scope='module')
def exact_pipeline():
    return pipeline(Tasks.image_quality_assessment_mos, model=DEFAULT_MODEL_DIR)


def _write(folder, name, bgr, **save):
    path = folder / name
    Image.fromarray(bgr[:, :, ::-1]).save(path, **save)
    return str(path)


def _blurred(bgr):
    return cv2.GaussianBlur(bgr, (0, 0), 6)


def _noisy(bgr):
    rng = np.random.default_rng(0)
    return np.clip(bgr + rng.normal(0, 25, bgr.shape), 0, 255).astype(np.uint8)


def _darkened(bgr):
    return (bgr * 0.25).astype(np.uint8)


def _halves(grid, axis):
    """Means of the first and second half of ``grid`` along ``axis``, leaving out the
    middle row or column where the two halves meet."""
    size = grid.shape[axis]
    first = np.take(grid, range(size // 2 - 1), axis=axis)
    second = np.take(grid, range(size // 2 + 1, size), axis=axis)
    return float(first.mean()), float(second.mean())


@pytest.mark.parametrize('precision', ['fp32', 'bf16'])
def test_score_is_the_pipelines_exactly(photo, tmp_path, precision):
    iqa = pipeline(Tasks.image_quality_assessment_mos, model=DEFAULT_MODEL_DIR,
                   precision=precision)
    landscape = _write(tmp_path, 'landscape.jpg', photo, quality=90)
    portrait = _write(tmp_path, 'portrait.png', np.ascontiguousarray(np.rot90(photo)))
    for image in (landscape, portrait, photo[:700, :900]):
        result = quality_map(image, precision=precision)
        assert result.score == iqa(image)[OutputKeys.SCORE]


def test_grid_shape_range_and_region(mapper, photo):
    result = mapper(photo)
    assert result.grid.shape == LANDSCAPE_GRID and result.grid.dtype == np.float32
    assert 0.0 <= result.grid.min() < result.grid.max() <= 1.0
    # A 1080 x 1920 photo is cropped to its centre 720 x 1280 without resizing.
    assert result.region == (320.0, 180.0, 1600.0, 900.0)
    assert result.photo.shape == photo.shape
    np.testing.assert_array_equal(result.photo, photo[:, :, ::-1])


@pytest.mark.parametrize('degrade, part', [(_blurred, 'left'), (_noisy, 'right')])
def test_map_is_lower_on_the_degraded_half(mapper, photo, degrade, part):
    image = photo.copy()
    half = slice(None, photo.shape[1] // 2) if part == 'left' else slice(
        photo.shape[1] // 2, None)
    image[:, half] = degrade(photo)[:, half]
    left, right = _halves(mapper(image).grid, axis=1)
    degraded, intact = (left, right) if part == 'left' else (right, left)
    assert degraded < intact - CLEAR_GAP


def test_map_is_lower_on_a_darkened_quadrant(mapper, photo):
    image = photo.copy()
    height, width = photo.shape[:2]
    image[height // 2:, width // 2:] = _darkened(photo[height // 2:, width // 2:])
    grid = mapper(image).grid
    rows, cols = grid.shape
    quadrant = grid[rows // 2 + 1:, cols // 2 + 1:]
    mask = np.ones(grid.shape, bool)
    mask[rows // 2 - 1:, cols // 2 - 1:] = False  # the quadrant and its border
    assert quadrant.mean() < grid[mask].mean() - CLEAR_GAP


def test_portrait_and_exif_rotated_maps_are_in_the_users_orientation(mapper, photo,
                                                                       tmp_path):
    image = photo.copy()
    image[:, :photo.shape[1] // 2] = _blurred(photo)[:, :photo.shape[1] // 2]
    # Turned clockwise, the blurred left half becomes the top half of a portrait photo.
    portrait = np.ascontiguousarray(np.rot90(image, -1))
    grid = mapper(portrait).grid
    assert grid.shape == LANDSCAPE_GRID[::-1]
    top, bottom = _halves(grid, axis=0)
    assert top < bottom - CLEAR_GAP
    # The same picture stored landscape with an EXIF tag that shows it turned clockwise:
    # the user sees the portrait, and so does the map (equal to the portrait's).
    exif = Image.Exif()
    exif[0x0112] = EXIF_ROTATE_90_CW
    stored = _write(tmp_path, 'exif.jpg', image, quality=95, exif=exif.tobytes())
    rotated = mapper(stored)
    assert rotated.grid.shape == LANDSCAPE_GRID[::-1]
    assert rotated.photo.shape[:2] == portrait.shape[:2]
    top, bottom = _halves(rotated.grid, axis=0)
    assert top < bottom - CLEAR_GAP


def test_local_scores_equal_the_score_when_features_are_uniform():
    """On a feature map that is the same everywhere, every window's mean is the global
    mean, so every local logit is the image's logit."""
    torch.manual_seed(0)
    head = MosHead().eval()
    features = torch.rand(2, 512, 1, 1).expand(2, 512, 9, 14)
    local = head.local_logits(features, LOCAL_WINDOW)
    assert local.shape == (2, 9, 14)
    torch.testing.assert_close(local, head(features)[:, :, None].expand(2, 9, 14),
                               rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match='odd'):
        head.local_logits(features, 4)


def test_maps_come_from_the_scoring_forward(mapper, photo):
    """forward_with_maps gives forward's scores bit for bit, batched or not."""
    network = mapper.network
    crops = torch.from_numpy(np.stack([photo[:720, :1280], photo[360:, 640:]]))
    scores, grids = network.forward_with_maps(crops, LOCAL_WINDOW)
    assert torch.equal(scores, network(crops))
    assert grids.shape == (2, *LANDSCAPE_GRID)


def test_engine_maps_equal_the_mappers(mapper, photo, tmp_path):
    big = cv2.resize(photo, (3840, 2160), interpolation=cv2.INTER_CUBIC)
    paths = [_write(tmp_path, 'big.png', big),
             _write(tmp_path, 'tall.jpg', np.ascontiguousarray(np.rot90(photo)), quality=90)]
    results = list(score_files(mapper.network, paths, mapper.preprocess_config,
                               batch_size=2, map_window=LOCAL_WINDOW))
    for path, result in zip(paths, results):
        expected = mapper(path)
        assert result.score == expected.score == result.quality_map.score
        np.testing.assert_allclose(result.quality_map.grid, expected.grid, atol=1e-6)
    # The engine keeps a preview (longest side 1920) and scales the region with it.
    preview = results[0].quality_map
    assert preview.photo.shape == (1080, 1920, 3)
    assert preview.region == pytest.approx((320.0, 180.0, 1600.0, 900.0))


def test_overlay_draws_the_map_inside_the_region_and_dims_the_rest(mapper, photo):
    result = mapper(photo)
    left, top, right, bottom = (int(v) for v in result.region)
    header = result.overlay().height - photo.shape[0]
    plain = np.asarray(result.overlay(alpha=0.0))
    body = plain[header:header + photo.shape[0], :photo.shape[1]]
    rgb = photo[:, :, ::-1]
    inner = (slice(top + 4, bottom - 4), slice(left + 4, right - 4))
    np.testing.assert_array_equal(body[inner], rgb[inner])  # alpha 0: the photo itself
    dimmed = (rgb[:top - 4].astype(np.float32) * OUTSIDE_BRIGHTNESS).astype(np.uint8)
    np.testing.assert_array_equal(body[:top - 4], dimmed)
    solid = np.asarray(result.overlay(alpha=1.0))
    body = solid[header:header + photo.shape[0], :photo.shape[1]]
    # alpha 1: the colour map of the grid, interpolated between cell centres. The centre
    # of the region lies in the middle row (23 rows) and between the two middle
    # columns (40 columns): their mean's colour.
    centre = body[(top + bottom) // 2, (left + right) // 2].astype(int)
    rows, cols = result.grid.shape
    assert rows % 2 == 1 and cols % 2 == 0
    middle = result.grid[rows // 2, cols // 2 - 1:cols // 2 + 1].mean(keepdims=True)
    expected = _colours(middle)[0].astype(int)
    assert np.abs(centre - expected).max() <= 4
    small = result.overlay(max_side=640)
    assert max(small.size) < 640 * 1.3
    with pytest.raises(ValueError):
        result.overlay(alpha=1.5)


def test_map_names_keep_folders_and_separate_clashes():
    names = map_names(['p/a/x.jpg', 'p/b/x.jpg', 'p/a/y.jpg', 'p/a/y.png',
                       'https://host/img/z.webp?size=1'])
    assert names == {'p/a/x.jpg': 'a/x', 'p/b/x.jpg': 'b/x', 'p/a/y.jpg': 'a/y.jpg',
                     'p/a/y.png': 'a/y.png', 'https://host/img/z.webp?size=1': 'z'}
    assert map_names(['one/photo.jpg']) == {'one/photo.jpg': 'photo'}
    assert map_names(['a/x.jpg', 'https://h/x.jpg']) == {'a/x.jpg': 'x.jpg',
                                                          'https://h/x.jpg': 'x.jpg-2'}
