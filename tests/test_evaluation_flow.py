"""The card's evaluation flow, offline: dataset -> build_trainer(...).evaluate()."""
import csv

import datasets
import pytest
import torch
from modelscope.msdatasets import MsDataset
from modelscope.msdatasets.dataset_cls.custom_datasets.image_quality_assmessment_mos import \
    ImageQualityAssessmentMosDataset as BuiltinDataset
from modelscope.trainers import build_trainer
from modelscope.utils.config import Config

from modelscope_iqa import ImageQualityAssessmentMosDataset
from modelscope_iqa.errors import DatasetError
from modelscope_iqa.metainfo import MetricKeys

MOS_VALUES = [4.1, 1.7, 3.3, 2.2, 4.8, 1.2, 3.9, 2.8]


@pytest.fixture(scope='module')
def rows(image_files):
    return [{'image:FILE': path, 'mos': mos} for path, mos in zip(image_files, MOS_VALUES)]


def _evaluate(model_dir, eval_dataset, work_dir, batch_size=None):
    kwargs = dict(model=str(model_dir), train_dataset=None, eval_dataset=eval_dataset,
                  work_dir=str(work_dir))
    if batch_size is not None:
        kwargs['cfg_options'] = {'evaluation.dataloader.batch_size_per_gpu': batch_size}
    return build_trainer(default_args=kwargs).evaluate()


# The metrics are compared on a trained checkpoint (the default model's weights):
# evaluation scores with the pipeline's network, BatchNorm folded, whose scores stay
# within about 1e-8 of ModelScope's on trained weights. (On the random checkpoint with
# perturbed BatchNorm statistics of `our_model_dir`, folding moves its near-constant
# predictions enough to shift PLCC by 1e-5; test_inference checks folding's accuracy
# on any checkpoint against a float64 reference.)
@pytest.fixture(scope='module')
def builtin_metrics(trained_builtin_model_dir, rows, tmp_path_factory):
    config = Config.from_file(str(trained_builtin_model_dir / 'configuration.json'))
    dataset = BuiltinDataset(datasets.Dataset.from_list(rows), config.dataset)
    return _evaluate(trained_builtin_model_dir, dataset,
                     tmp_path_factory.mktemp('builtin_eval'))


def test_dataset_items(our_model_dir, rows):
    config = Config.from_file(str(our_model_dir / 'configuration.json'))
    dataset = ImageQualityAssessmentMosDataset(datasets.Dataset.from_list(rows), config.dataset)
    assert len(dataset) == len(rows)
    item = dataset[0]
    assert item['input'].shape == (3, 720, 1280)
    assert item['target'] == pytest.approx(MOS_VALUES[0] * 0.2)


@pytest.mark.slow
def test_card_flow_matches_builtin(trained_our_model_dir, rows, tmp_path, builtin_metrics):
    config = Config.from_file(str(trained_our_model_dir / 'configuration.json'))
    dataset = ImageQualityAssessmentMosDataset(datasets.Dataset.from_list(rows), config.dataset)
    ours = _evaluate(trained_our_model_dir, dataset, tmp_path, batch_size=1)
    assert set(ours) == {MetricKeys.PLCC, MetricKeys.SRCC, MetricKeys.KRCC, MetricKeys.RMSE}
    assert all(type(v) is float for v in ours.values())
    # ModelScope's metric computes in float32; ours in float64 on the same predictions.
    for key in (MetricKeys.PLCC, MetricKeys.SRCC, MetricKeys.RMSE):
        assert ours[key] == pytest.approx(float(builtin_metrics[key]), abs=1e-6), key


@pytest.mark.slow
def test_batched_evaluation(trained_our_model_dir, rows, tmp_path, builtin_metrics):
    dataset = ImageQualityAssessmentMosDataset(datasets.Dataset.from_list(rows))
    ours = _evaluate(trained_our_model_dir, dataset, tmp_path, batch_size=4)
    # Batched forwards differ from single ones only by float32 summation order.
    for key in (MetricKeys.PLCC, MetricKeys.RMSE):
        assert ours[key] == pytest.approx(float(builtin_metrics[key]), abs=1e-4), key
    assert ours[MetricKeys.SRCC] == pytest.approx(float(builtin_metrics[MetricKeys.SRCC]))


@pytest.mark.slow
def test_msdataset_load_of_a_local_csv(trained_our_model_dir, rows, tmp_path,
                                       builtin_metrics):
    csv_path = tmp_path / 'val.csv'
    with open(csv_path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=['image:FILE', 'mos'])
        writer.writeheader()
        writer.writerows(rows)
    hf_dataset = MsDataset.load('csv', data_files=str(csv_path), split='train')._hf_ds
    dataset = ImageQualityAssessmentMosDataset(hf_dataset)
    ours = _evaluate(trained_our_model_dir, dataset, tmp_path / 'work', batch_size=2)
    assert ours[MetricKeys.SRCC] == pytest.approx(float(builtin_metrics[MetricKeys.SRCC]))


def test_bad_rows_name_the_row(rows):
    broken = [dict(rows[0]), {'image:FILE': rows[1]['image:FILE'], 'mos': 'n/a'},
              {'mos': 3.0}]
    dataset = ImageQualityAssessmentMosDataset(broken)
    with pytest.raises(DatasetError, match=r"row 1 .*'n/a' is not a number"):
        dataset[1]
    with pytest.raises(DatasetError, match=r"row 2: missing column 'image:FILE'"):
        dataset[2]


def test_training_forward_returns_an_l1_loss(our_model_dir):
    from modelscope_iqa.models import ImageQualityAssessmentMosModel
    model = ImageQualityAssessmentMosModel(str(our_model_dir)).train()
    batch = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([0.3, 0.9], dtype=torch.float64)
    outputs = model(input=batch, target=target)
    expected = (outputs['pred'].flatten() - target.float()).abs().mean()
    assert torch.allclose(outputs['loss'], expected)
    outputs['loss'].backward()
    assert all(p.grad is not None for p in model.parameters())
