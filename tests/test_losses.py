"""The training objective: L1 plus a pairwise ranking hinge that tells pairs within a
group (one content at several levels) from pairs across groups; head in float32."""
import copy

import pytest
import torch

from modelscope_iqa.models import ImageQualityAssessmentMosModel
from modelscope_iqa.models.iqa_mos_model import pairwise_rank_loss
from modelscope_iqa.synthetic.ladders import FAMILY_CLASSES, MIXED_VIEW


def test_rank_loss_by_hand():
    pred = torch.tensor([0.8, 0.5, 0.6, 0.1])
    target = torch.tensor([0.9, 0.4, 0.7, 0.2])
    # Ordered pairs (better, worse) and hinge(target gap - pred gap):
    # within group 0 (0, 1): 0.5 - 0.3 = 0.2; within group 1 (2, 3): 0.5 - 0.5 = 0.
    # across: (0, 2): 0.2 - 0.2 = 0; (0, 3): 0.7 - 0.7 = 0; (2, 1): 0.3 - 0.1 = 0.2;
    # (1, 3): 0.2 - 0.4 < 0 -> 0.
    groups = torch.tensor([0, 0, 1, 1])
    within, across = 0.2 / 2, 0.2 / 4
    assert pairwise_rank_loss(pred, target, groups).item() == pytest.approx(within + across)
    # Without groups: one mean over all six ordered pairs.
    assert pairwise_rank_loss(pred, target).item() == pytest.approx(0.4 / 6)
    assert pairwise_rank_loss(pred, torch.full((4, ), 0.5)).item() == 0.0


def test_rank_loss_margin_cap_and_cross_gap_by_hand():
    pred = torch.tensor([0.6, 0.5, 0.6, 0.45])
    target = torch.tensor([0.9, 0.4, 0.7, 0.2])
    groups = torch.tensor([0, 0, 1, 1])
    # Within: (0, 1) gap 0.5 capped to 0.3, minus 0.1 -> 0.2; (2, 3): 0.3 - 0.15 = 0.15.
    # Across, only gaps >= 0.4 count: (0, 3) gap 0.7 capped to 0.3, minus 0.15 -> 0.15;
    # (2, 1) with gap 0.3 and the 0.2 gaps are left out.
    loss = pairwise_rank_loss(pred, target, groups, margin_cap=0.3, cross_min_gap=0.4)
    assert loss.item() == pytest.approx(0.175 + 0.15)
    # Uncapped, same pairs: within (0.4 + 0.35) / 2, across 0.7 - 0.15.
    loss = pairwise_rank_loss(pred, target, groups, cross_min_gap=0.4)
    assert loss.item() == pytest.approx(0.375 + 0.55)


def test_a_ladder_batch_trains_with_both_terms(our_model_dir):
    model = ImageQualityAssessmentMosModel(str(our_model_dir), train_precision='bf16',
                                           l1_loss_weight=0.5, rank_loss_weight=1.0).train()
    generator = torch.Generator().manual_seed(0)
    batch = torch.rand(3, 4, 3, 64, 64, generator=generator)
    target = torch.tensor([[0.9, 0.7, 0.5, 0.2]] * 3)
    out = model(input=batch, target=target)
    assert out['pred'].shape == (12, 1) and out['target'].shape == (12, )
    # Head, sigmoid and loss in float32 although the trunk runs in bf16.
    assert out['pred'].dtype == torch.float32
    expected_l1 = (out['pred'].flatten() - target.flatten()).abs().mean()
    groups = torch.arange(3).repeat_interleave(4)
    expected_rank = pairwise_rank_loss(out['pred'], out['target'], groups)
    assert torch.allclose(out['l1_loss'], expected_l1)
    assert torch.allclose(out['rank_loss'], expected_rank)
    assert torch.allclose(out['loss'], 0.5 * expected_l1 + expected_rank)
    out['loss'].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert all(p.grad.dtype == torch.float32 for p in model.network.head.parameters())


def test_loss_weights_are_checked(our_model_dir):
    with pytest.raises(ValueError, match='not both 0'):
        ImageQualityAssessmentMosModel(str(our_model_dir), l1_loss_weight=0.0)
    with pytest.raises(ValueError, match='>= 0'):
        ImageQualityAssessmentMosModel(str(our_model_dir), rank_loss_weight=-1.0)


def test_frozen_batchnorm_keeps_running_statistics(our_model_dir):
    model = ImageQualityAssessmentMosModel(str(our_model_dir), freeze_batchnorm=True).train()
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batchnorms and not any(m.training for m in batchnorms)
    assert model.training and model.network.head.training
    before = [m.running_mean.clone() for m in batchnorms]
    out = model(input=torch.rand(4, 3, 64, 64), target=torch.tensor([0.9, 0.7, 0.5, 0.2]))
    out['loss'].backward()
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, batchnorms))
    assert all(m.weight.grad is not None for m in batchnorms)
    # Unfrozen (the default), training updates the running statistics.
    model = ImageQualityAssessmentMosModel(str(our_model_dir)).train()
    batchnorm = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = batchnorm.running_mean.clone()
    model(input=torch.rand(4, 3, 64, 64), target=torch.tensor([0.9, 0.7, 0.5, 0.2]))
    assert not torch.equal(before, batchnorm.running_mean)


def test_the_anchor_term_holds_flagged_views_to_the_anchor_network(our_model_dir):
    model = ImageQualityAssessmentMosModel(str(our_model_dir), anchor_loss_weight=2.0).train()
    last = model.network.head.fc_out[2]
    with torch.no_grad():
        # Logits near 0 (the test weights saturate the sigmoid), then an anchor whose
        # scores differ from the model's.
        last.weight.mul_(1e-3)
        last.bias.zero_()
        anchor = copy.deepcopy(model.network)
        anchor.head.fc_out[2].bias.add_(1.0)
    model.anchor_to(anchor)
    generator = torch.Generator().manual_seed(1)
    batch = torch.rand(2, 3, 3, 64, 64, generator=generator)
    target = torch.tensor([[0.9, 0.5, 0.2]] * 2)
    flags = torch.tensor([[True, False, True], [False, False, True]])
    out = model(input=batch, target=target, anchor=flags)
    anchor.eval()
    with torch.no_grad():
        logits = anchor.forward_head(anchor.forward_features(batch.flatten(0, 1)))
        expected = torch.sigmoid(logits).flatten()
    chosen = flags.flatten()
    want = (out['pred'].flatten()[chosen] - expected[chosen]).abs().mean()
    assert out['anchor_loss'].item() == pytest.approx(want.item(), rel=1e-5)
    assert out['anchor_loss'].item() > 0.05
    assert out['loss'].item() == pytest.approx(
        out['l1_loss'].item() + 2.0 * out['anchor_loss'].item(), rel=1e-5)
    # The anchor is frozen and outside the model: not trained, not in the state dict.
    out['loss'].backward()
    assert all(p.grad is None for p in anchor.parameters())
    assert set(model.state_dict()) == set(anchor.state_dict())
    assert not any(p is q for p in model.parameters() for q in anchor.parameters())
    # No flagged view: the term is zero.
    out = model(input=batch, target=target, anchor=torch.zeros(2, 3, dtype=torch.bool))
    assert out['anchor_loss'].item() == 0.0


def test_the_anchor_term_needs_an_anchor_and_flags(our_model_dir):
    model = ImageQualityAssessmentMosModel(str(our_model_dir), anchor_loss_weight=1.0).train()
    batch, target = torch.rand(2, 3, 64, 64), torch.tensor([0.9, 0.2])
    with pytest.raises(ValueError, match='anchor_to'):
        model(input=batch, target=target, anchor=torch.tensor([True, False]))
    model.anchor_to(model.network)
    with pytest.raises(ValueError, match='anchor_to'):
        model(input=batch, target=target)
    with pytest.raises(ValueError, match='>= 0'):
        ImageQualityAssessmentMosModel(str(our_model_dir), anchor_loss_weight=-1.0)


def test_the_family_head_trains_the_trunk_and_stays_out_of_the_checkpoint(our_model_dir):
    model = ImageQualityAssessmentMosModel(str(our_model_dir), family_loss_weight=0.5).train()
    batch = torch.rand(2, 3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    target = torch.tensor([[0.9, 0.5, 0.2]] * 2)
    family = torch.tensor([[0, 4, 4], [2, MIXED_VIEW, MIXED_VIEW]])
    out = model(input=batch, target=target, family=family)
    with torch.no_grad():
        features = model.network.forward_features(batch.flatten(0, 1))
        logits = model.family_head(features.mean(dim=(2, 3)))
    kept = family.flatten() != MIXED_VIEW
    want = torch.nn.functional.cross_entropy(logits[kept], family.flatten()[kept])
    assert out['family_loss'].item() == pytest.approx(want.item(), rel=1e-4)
    assert out['loss'].item() == pytest.approx(
        out['l1_loss'].item() + 0.5 * out['family_loss'].item(), rel=1e-5)
    out['loss'].backward()
    # The head learns and its gradient reaches the trunk; it is not in the state dict.
    assert model.family_head.weight.grad.abs().sum() > 0
    assert model.family_head.weight.shape[0] == len(FAMILY_CLASSES)
    assert any(p is model.family_head.weight for p in model.parameters())
    assert not any(k.startswith('family_head') for k in model.state_dict())
    assert set(model.state_dict()) == set(model.network.state_dict())
    # Only mixed views: no term; no labels at all: a clear error.
    out = model(input=batch, target=target, family=torch.full((2, 3), MIXED_VIEW))
    assert out['family_loss'].item() == 0.0
    with pytest.raises(ValueError, match="'family'"):
        model(input=batch, target=target)
    # Off by default: no head.
    assert ImageQualityAssessmentMosModel(str(our_model_dir)).family_head is None
