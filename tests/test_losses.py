"""The training objective: L1 plus a pairwise ranking hinge that tells pairs within a
group (one content at several levels) from pairs across groups; head in float32."""
import pytest
import torch

from modelscope_iqa.models import ImageQualityAssessmentMosModel
from modelscope_iqa.models.iqa_mos_model import pairwise_rank_loss


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


def test_groups_of_views_train_as_one_batch(our_model_dir):
    """N groups of K views (SyntheticLadderDataset's 5-D batches): each view scores as it
    would alone (frozen BatchNorm), and the ranking hinge knows each view's group."""
    model = ImageQualityAssessmentMosModel(str(our_model_dir), freeze_batchnorm=True,
                                           rank_loss_weight=1.0,
                                           rank_cross_min_gap=0.3).train()
    generator = torch.Generator().manual_seed(1)
    views = torch.rand(3, 4, 3, 64, 64, generator=generator)
    targets = torch.tensor([[0.9, 0.7, 0.5, 0.2], [0.8, 0.7, 0.5, 0.2], [0.9, 0.6, 0.4, 0.25]])
    out = model(input=views, target=targets)
    assert out['pred'].shape == (12, 1)
    alone = torch.cat([model(input=group, target=target)['pred']
                       for group, target in zip(views, targets)])
    assert torch.allclose(out['pred'], alone)
    assert torch.equal(out['target'], targets.flatten())
    groups = torch.tensor([0] * 4 + [1] * 4 + [2] * 4)
    assert torch.allclose(out['rank_loss'],
                          pairwise_rank_loss(out['pred'], out['target'], groups,
                                             cross_min_gap=0.3))
    assert not torch.allclose(out['rank_loss'],
                              pairwise_rank_loss(out['pred'], out['target'],
                                                 torch.tensor([0] * 4 + [1] * 4 + [0] * 4),
                                                 cross_min_gap=0.3))
    out['loss'].backward()


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
