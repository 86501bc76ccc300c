"""The synthetic degradations behind the default model's training data."""
import numpy as np
import pytest
import torch

from modelscope_iqa.synthetic import (FAMILIES, MAX_SEVERITY, SyntheticDistortionDataset,
                                      SyntheticLadderDataset, dead_leaves, degrade,
                                      quality_target, sample_severities, scene_key)
from modelscope_iqa.synthetic import distortions, ladders
from modelscope_iqa.synthetic.distortions import AVERAGE_KEY, PRISTINE_QUALITY

from conftest import make_image


@pytest.fixture(scope='module')
def photo():
    return make_image(270, 480, seed=5)


def test_quality_target_range_and_monotonicity():
    assert quality_target({}) == PRISTINE_QUALITY
    for family in FAMILIES:
        levels = [quality_target({family: s}) for s in range(5)]
        assert levels == sorted(levels, reverse=True)
        assert levels[-1] == pytest.approx(PRISTINE_QUALITY * 0.25)
    assert quality_target({'defocus_blur': 4, 'sensor_noise': 4}) < 0.1
    with pytest.raises(ValueError, match='unknown'):
        quality_target({'vignetting': 1})
    with pytest.raises(ValueError, match='severity'):
        quality_target({'defocus_blur': MAX_SEVERITY + 1})


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_each_family_changes_the_image_more_with_severity(photo, family):
    changes = []
    for severity in (0, 1, 2, 4):
        out = degrade(photo, {family: float(severity)}, np.random.default_rng(0))
        assert out.shape == photo.shape and out.dtype == np.uint8
        changes.append(np.abs(out.astype(np.int16) - photo).mean())
    assert changes[0] == 0
    assert changes[1] < changes[2] < changes[3]


def _scaled_key(photo, key):
    """``photo`` with its linear light scaled to mean ``key`` (no clipping at these keys)."""
    return distortions._from_linear(distortions.to_linear(photo) * key / scene_key(photo))


def test_exposure_faults_are_relative_to_the_scene(photo):
    rng = np.random.default_rng(0)
    dark, average, pale = (_scaled_key(photo, k) for k in (0.02, AVERAGE_KEY, 0.45))
    assert scene_key(dark) < 0.03 and scene_key(pale) > 0.4
    # A scene of average key gets the table's gain; a dark one over-exposed, and a pale
    # one under-exposed, end at least as far from average key as it does.
    for family, sign in (('over_exposure', 1), ('under_exposure', -1)):
        for severity in (1.0, 3.0):
            reference = scene_key(degrade(average, {family: severity}, rng))
            for scene in (dark, pale):
                out = scene_key(degrade(scene, {family: severity}, rng))
                assert sign * (out - reference) >= -0.05 * reference, (family, severity)
    # Severe over-exposure of the dark scene clips much of it; a fixed gain would not.
    clipped = degrade(dark, {'over_exposure': 4.0}, rng).max(axis=2) >= 255
    assert clipped.mean() > 0.2
    # A window degraded with its photo's key is the photo degraded, then cropped.
    window = dark[40:200, 100:300]
    whole = degrade(dark, {'over_exposure': 2.0}, rng)[40:200, 100:300]
    assert np.array_equal(degrade(window, {'over_exposure': 2.0}, rng, scene_key(dark)),
                          whole)


def test_recipes_are_valid_and_varied():
    rng = np.random.default_rng(1)
    recipes = [sample_severities(rng) for _ in range(400)]
    assert any(not r for r in recipes)
    assert any(len(r) == 1 for r in recipes) and any(len(r) >= 2 for r in recipes)
    for recipe in recipes:
        assert set(recipe) <= set(FAMILIES)
        assert all(0 < s <= MAX_SEVERITY for s in recipe.values())


def test_dataset_items_are_reproducible(photo):
    dataset = SyntheticDistortionDataset([photo], length=6, crop_size=(64, 96), seed=3)
    first, again = dataset[2], SyntheticDistortionDataset([photo], 6, (64, 96), seed=3)[2]
    assert first['input'].shape == (3, 64, 96) and first['input'].dtype == torch.float32
    assert torch.equal(first['input'], again['input'])
    assert first['target'] == again['target']
    targets = [dataset[i]['target'] for i in range(len(dataset))]
    assert all(0.0 < t <= PRISTINE_QUALITY for t in targets)


def test_ladder_items_are_one_window_at_rising_severities(photo):
    dataset = SyntheticLadderDataset([photo], length=40, crop_size=(64, 64), seed=2,
                                     scales=(1.0,))
    saw_mixture = False
    for index in range(len(dataset)):
        item = dataset[index]
        # The model's forward takes exactly these (ModelScope's trainer passes the batch's
        # keys as its arguments).
        assert set(item) == {'input', 'target'}
        assert item['input'].shape == (4, 3, 64, 64) and item['input'].dtype == torch.float32
        targets = item['target'].tolist()
        # Best first, strictly falling: every pair within a group is ordered.
        assert all(a > b for a, b in zip(targets, targets[1:])), targets
        saw_mixture |= targets[0] < PRISTINE_QUALITY
    assert saw_mixture
    again = SyntheticLadderDataset([photo], 40, (64, 64), seed=2, scales=(1.0,))[7]
    assert torch.equal(dataset[7]['input'], again['input'])


def _drawn_ladders(dataset, draws=2000):
    """``draws`` groups' recipes, each with the family its ladder varies, and how often
    each family was that one."""
    rng = np.random.default_rng(0)
    ladders, counts = [], {family: 0 for family in FAMILIES}
    for _ in range(draws):
        family, recipes = dataset.recipes(rng)
        assert [f for f in recipes[-1] if recipes[-1][f] != recipes[0].get(f)] == [family]
        ladders.append((family, recipes))
        counts[family] += 1
    return ladders, counts


def test_ladders_take_the_most_detailed_of_their_windows():
    # Left half flat grey, right half fine texture: a 64-pixel window (with its margin)
    # lies wholly in the flat half for about a third of the draws.
    rng = np.random.default_rng(3)
    photo = np.full((160, 640, 3), 128, np.uint8)
    photo[:, 320:] = rng.integers(0, 256, (160, 320, 3), dtype=np.uint8)

    def flat_base_views(windows):
        dataset = SyntheticLadderDataset([photo], 120, (64, 64), seed=5, scales=(1.0, ),
                                         windows=windows, mixture_share=0.0)
        return [i for i in range(len(dataset)) if dataset[i]['input'][0].std() < 0.01]

    assert flat_base_views(8) == []  # of 8 windows one is textured, nearly always
    assert len(flat_base_views(1)) > 20  # one window as drawn: flat a third of the time


def test_ladder_exposure_faults_are_relative_to_the_photos_key(monkeypatch):
    seen = []
    real = ladders.degrade
    monkeypatch.setattr(ladders, 'degrade',
                        lambda rgb, recipe, rng, scene: seen.append(scene) or real(
                            rgb, recipe, rng, scene))
    photo = make_image(200, 300, seed=4)
    dataset = SyntheticLadderDataset([photo], 3, (64, 64), scales=(1.0, ))
    dataset[0]
    # Every rung is degraded with the whole photo's key, not its window's (None).
    assert seen == [scene_key(photo)] * dataset.rungs


def test_ladder_groups_batch_as_the_default_collation_and_in_one_shape_only(photo):
    items = [SyntheticLadderDataset([photo], 6, (64, 64), scales=(1.0, ))[i]
             for i in range(6)]
    batch = ladders.collate_ladders(items)
    default = torch.utils.data.default_collate(items)
    assert batch['input'].shape == (6, 4, 3, 64, 64) and batch['target'].shape == (6, 4)
    assert torch.equal(batch['input'], default['input'])
    assert torch.equal(batch['target'], default['target'])
    wide = SyntheticLadderDataset([photo], 1, (64, 96), scales=(1.0, ))[0]
    with pytest.raises(ValueError, match=r'one shape.*\(4, 3, 64, 96\)'):
        ladders.collate_ladders(items + [wide])


@pytest.mark.parametrize('removed', [
    dict(detail_families=['defocus_blur']), dict(exposure_key='window'),
    dict(whole_share=0.5), dict(whole_families=['over_exposure']),
    dict(whole_size=(72, 128)),
])
def test_ladder_options_of_the_explorations_not_kept_are_refused(photo, removed):
    """Whole-view ladders, a window's own exposure key and partial detail families
    were tried for the default model and not kept (experiments/ holds their results)."""
    with pytest.raises(TypeError, match=next(iter(removed))):
        SyntheticLadderDataset([photo], 1, (64, 64), scales=(1.0, ), **removed)


def test_ladder_recipes_cover_every_family_jpeg_most():
    dataset = SyntheticLadderDataset([make_image(200, 200, seed=1)], length=1,
                                     crop_size=(64, 64), scales=(1.0,))
    ladders, counts = _drawn_ladders(dataset)
    for family, recipes in ladders:
        assert all(set(recipes[0]) <= set(r) for r in recipes)
        assert [r[family] for r in recipes[1:]] == sorted(r[family] for r in recipes[1:])
    others = [c for f, c in counts.items() if f != 'jpeg_compression']
    assert min(others) > 100
    assert counts['jpeg_compression'] > 1.5 * np.mean(others)


def test_ladder_family_weights_override_the_defaults():
    photo = make_image(200, 200, seed=1)
    dataset = SyntheticLadderDataset([photo], length=1, crop_size=(64, 64), scales=(1.0,),
                                     family_weights={'jpeg_compression': 0.0,
                                                     'motion_blur': 4.0})
    _, counts = _drawn_ladders(dataset)
    assert counts['jpeg_compression'] == 0
    others = [c for f, c in counts.items() if f not in ('jpeg_compression', 'motion_blur')]
    # motion blur 4 of 11 weights (expected 727 of 2000), each other family 1 of 11 (182)
    assert counts['motion_blur'] > 3 * max(others)
    assert min(others) > 100
    with pytest.raises(ValueError, match='unknown families'):
        SyntheticLadderDataset([photo], length=1, crop_size=(64, 64),
                               family_weights={'jpeg': 2.0})
    with pytest.raises(ValueError, match='must be >= 0'):
        SyntheticLadderDataset([photo], length=1, crop_size=(64, 64),
                               family_weights={'motion_blur': -1.0})


def _grid_offsets_seen(monkeypatch, axis, **options):
    """The offsets (mod 16) from the degraded window's corner, where the JPEG grid starts,
    at which the views' first pixel lies along ``axis`` (0: rows, 1: columns)."""
    period = ladders.JPEG_MACROBLOCK

    def stamp(window, recipe, rng, scene):
        # Every pixel's position along the axis, mod 16, instead of the degraded image.
        position = np.indices(window.shape[:2])[axis] % period * (256 // period)
        return np.repeat(position[:, :, None], 3, axis=2).astype(np.uint8)

    monkeypatch.setattr(ladders, 'degrade', stamp)
    dataset = SyntheticLadderDataset([make_image(200, 300, seed=1)], length=300,
                                     crop_size=(64, 64), scales=(1.0, ), **options)
    return {round(float(dataset[i]['input'][0, 0, 0, 0]) * 255 / (256 // period))
            for i in range(len(dataset))}


def test_ladder_views_start_at_every_offset_of_the_jpeg_colour_grid(monkeypatch):
    """With 4:2:0 chroma subsampling JPEG's grid repeats every 16 pixels, and where a view
    starts on it decides what the network sees of the blocking: every offset is trained."""
    for axis in (0, 1):
        assert _grid_offsets_seen(monkeypatch, axis) == set(range(16)), axis
    # As stages 2 and 3 of the shipped model drew it: half the row offsets never, among
    # them 4, where the centre crop of a 1080x1920 photo starts (row 180).
    rows = _grid_offsets_seen(monkeypatch, 0, grid_period=8)
    assert rows == {0, *range(9, 16)}
    with pytest.raises(ValueError, match='grid_period'):
        SyntheticLadderDataset([make_image(200, 300, seed=1)], length=1,
                               crop_size=(64, 64), grid_period=0)


def test_ladder_photos_are_used_downscaled_never_upscaled():
    big, small = make_image(400, 600, seed=1), make_image(150, 200, seed=2)
    dataset = SyntheticLadderDataset([big, small], length=1, crop_size=(64, 64),
                                     scales=(1.0, 0.5))
    shapes = sorted(image.shape[:2] for image, _, _ in dataset.images)
    # The small photo at half scale (75 px) cannot hold a crop and its margins.
    assert shapes == [(150, 200), (200, 300), (400, 600)]
    with pytest.raises(ValueError, match='large enough'):
        SyntheticLadderDataset([small], length=1, crop_size=(128, 128))


def test_dead_leaves_cover_the_chart_with_discs_of_every_scale():
    chart = dead_leaves(270, 480, np.random.default_rng(0), discs=20000)
    assert chart.shape == (270, 480, 3) and chart.dtype == np.uint8
    again = dead_leaves(270, 480, np.random.default_rng(0), discs=20000)
    assert np.array_equal(chart, again)
    # Edges at every scale: the mean difference between pixels d apart grows with d,
    # but slower than d (white noise: flat in d; a smooth ramp: tiny, and linear in d).
    grey = chart.mean(axis=2)
    spread = [np.abs(grey[:, d:] - grey[:, :-d]).mean() for d in (1, 2, 4, 8)]
    assert spread[0] > 3, spread
    assert all(a < b for a, b in zip(spread, spread[1:])), spread
    assert 1.5 < spread[-1] / spread[0] < 7, spread
    assert len(np.unique(chart.reshape(-1, 3), axis=0)) > 1000
