"""The synthetic degradations behind the default model's training data."""
import numpy as np
import pytest
import torch

from modelscope_iqa.synthetic import (FAMILIES, MAX_SEVERITY, SyntheticDistortionDataset,
                                      degrade, quality_target, sample_severities)
from modelscope_iqa.synthetic.distortions import PRISTINE_QUALITY

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
