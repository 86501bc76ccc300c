"""A published model folder (``export_model_folder``) runs with stock ModelScope, in a
process that imports nothing of ours, and with our pipeline, command line and trainer."""
import csv
import json
import os
import subprocess
import sys
import textwrap

import datasets
import numpy as np
import pytest
from modelscope.outputs import OutputKeys
from modelscope.pipelines import pipeline
from modelscope.trainers import build_trainer
from modelscope.utils.constant import Tasks
from PIL import Image

from conftest import make_image
from modelscope_iqa import DEFAULT_MODEL_DIR, ImageQualityAssessmentMosDataset
from modelscope_iqa.cli.main import main
from modelscope_iqa.config import CONFIGURATION_FILE
from modelscope_iqa.export import (PUBLISHED_TOLERANCE, export_model_folder,
                                   published_configuration)
from modelscope_iqa.hub import (OUR_SECTIONS_KEY, load_model, open_model_folder,
                                our_configuration)
from modelscope_iqa.metainfo import Models, Pipelines, Trainers
from modelscope_iqa.models import ImageQualityAssessmentMosModel
from modelscope_iqa.pipelines import ImageQualityAssessmentMosPipeline

STOCK_SCORING = textwrap.dedent('''
    import json, sys
    from modelscope.outputs import OutputKeys
    from modelscope.pipelines import pipeline
    from modelscope.utils.constant import Tasks
    folder, images = sys.argv[1], sys.argv[2:]
    scorer = pipeline(Tasks.image_quality_assessment_mos, model=folder)
    scores = [scorer(path)[OutputKeys.SCORE] for path in images]
    print(json.dumps({'scores': scores, 'pipeline': type(scorer).__module__,
                      'ours_imported': any(m.startswith('modelscope_iqa')
                                           for m in sys.modules)}))
''')


@pytest.fixture(scope='module')
def published(tmp_path_factory):
    return export_model_folder(str(tmp_path_factory.mktemp('published')))


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp('published_images')
    paths = []
    for i, (height, width) in enumerate([(1080, 1920), (1280, 720), (500, 900)]):
        path = folder / f'image{i}.png'
        Image.fromarray(make_image(height, width, seed=20 + i)).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope='module')
def exact_scores(images):
    ours = pipeline(Tasks.image_quality_assessment_mos, model=DEFAULT_MODEL_DIR)
    return [ours(path)[OutputKeys.SCORE] for path in images]


def test_published_configuration_names_the_builtin_classes_and_keeps_ours():
    ours = json.loads(CONFIGURATION_FILE.read_text())
    published = published_configuration(ours)
    assert published['model'] == {'type': 'image-quality-assessment-mos'}
    assert published['pipeline'] == {'type': 'image-quality-assessment-mos'}
    assert published['preprocessor'] == {'type': 'image-quality_assessment-mos-preprocessor'}
    assert published['evaluation']['metrics'] == ['image-quality-assessment-mos-metric']
    assert published[OUR_SECTIONS_KEY]['model']['type'] == Models.iqa_mos_resnet18
    assert 'plugins' not in published
    assert our_configuration(published) == ours
    assert our_configuration(ours) == ours


@pytest.mark.slow
def test_stock_modelscope_scores_it_without_our_package(published, images, exact_scores):
    result = subprocess.run(
        [sys.executable, '-c', STOCK_SCORING, published, *images], capture_output=True,
        text=True, timeout=600, check=True,
        env={**os.environ, 'MODELSCOPE_ENDPOINT': 'http://127.0.0.1:9'})
    stock = json.loads(result.stdout.strip().splitlines()[-1])
    assert not stock['ours_imported']
    assert stock['pipeline'].startswith('modelscope.pipelines.cv')
    np.testing.assert_allclose(stock['scores'], exact_scores, rtol=0,
                               atol=PUBLISHED_TOLERANCE)


def test_our_pipeline_and_command_line_take_it(published, images, exact_scores, capsys):
    folder = open_model_folder(published)
    assert folder.published and folder.names_our_model
    assert folder.config == json.loads(CONFIGURATION_FILE.read_text())
    ours = pipeline(Tasks.image_quality_assessment_mos, model=published,
                    pipeline_name=Pipelines.iqa_mos)
    assert isinstance(ours, ImageQualityAssessmentMosPipeline)
    assert [ours(path)[OutputKeys.SCORE] for path in images] == exact_scores
    assert main(['score', *images, '--model', published, '--workers', '0', '-q']) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [float(row['score']) for row in rows] == exact_scores


def test_load_model_takes_our_model_section_back(published):
    """Our settings (training precision, loss weights, frozen BatchNorm) come from the
    section kept aside, not from the built-in model's section."""
    section = json.loads(CONFIGURATION_FILE.read_text())['model']
    model = load_model(published)
    assert {key: getattr(model, key) for key in section if key != 'type'} == {
        key: value for key, value in section.items() if key != 'type'}


@pytest.mark.slow
def test_our_trainer_and_evaluate_take_it(published, images, tmp_path, capsys):
    rows = [{'image:FILE': path, 'mos': mos} for path, mos in zip(images, (4.2, 1.5, 3.0))]
    config = open_model_folder(published).dataset
    dataset = ImageQualityAssessmentMosDataset(datasets.Dataset.from_list(rows),
                                               {'mos_scale': config.mos_scale})

    def evaluate(model_dir, work_dir):
        trainer = build_trainer(name=Trainers.iqa_mos, default_args=dict(
            model=model_dir, train_dataset=None, eval_dataset=dataset,
            work_dir=str(work_dir)))
        assert isinstance(trainer.model, ImageQualityAssessmentMosModel)
        return trainer.evaluate()

    assert evaluate(published, tmp_path / 'published') == evaluate(
        DEFAULT_MODEL_DIR, tmp_path / 'default')
    labels = tmp_path / 'labels.csv'
    with open(labels, 'w', newline='') as f:
        writer = csv.DictWriter(f, ['image:FILE', 'mos'])
        writer.writeheader()
        writer.writerows(rows)
    assert main(['evaluate', '--data', str(labels), '--model', published]) == 0
    published_metrics = json.loads(capsys.readouterr().out)
    assert main(['evaluate', '--data', str(labels)]) == 0
    assert published_metrics == json.loads(capsys.readouterr().out)
