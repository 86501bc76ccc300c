"""The embedded default model, the repository as a model directory, and export. Its
build (default_model_build/) is tested in test_default_model_build.py."""
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from modelscope.outputs import OutputKeys
from modelscope.pipelines import pipeline
from modelscope.utils.constant import Tasks

import modelscope_iqa
from default_model_build.recipe import load_calibration
from modelscope_iqa.errors import ModelFolderError
from modelscope_iqa.export import MODEL_FOLDER_FILES, export_model_folder
from modelscope_iqa.pipelines import ImageQualityAssessmentMosPipeline

REPO = Path(__file__).resolve().parent.parent
SAMPLES = sorted((REPO / 'samples').glob('*.jpg'))
GOLDEN = REPO / 'tests' / 'golden' / 'default_model_samples.json'
# Exact mode on another CPU may order float operations differently.
GOLDEN_TOLERANCE = 1e-6


@pytest.fixture(scope='module')
def default_scorer():
    return pipeline(Tasks.image_quality_assessment_mos, model=modelscope_iqa.DEFAULT_MODEL_DIR)


def test_default_weights_are_compact_half_precision():
    path = Path(modelscope_iqa.DEFAULT_MODEL_DIR) / 'pytorch_model.pt'
    assert path.stat().st_size < 30 * 2**20
    state = torch.load(path, weights_only=True)
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}


def test_default_model_scores_the_samples(default_scorer):
    assert isinstance(default_scorer, ImageQualityAssessmentMosPipeline)
    assert len(SAMPLES) >= 4
    scores = {p.stem: default_scorer(str(p))[OutputKeys.SCORE] for p in SAMPLES}
    assert all(0.0 <= s <= 1.0 for s in scores.values())
    # The samples are one held-out photo, pristine and degraded at severity 3 (the JPEG
    # one at quality 12): each degraded sample scores below the pristine one by a
    # margin of at least 0.1, the goal issue 10 set for the default model.
    pristine = scores['cups_pristine']
    degraded = {name: score for name, score in scores.items() if name != 'cups_pristine'}
    assert set(degraded) == {'cups_defocus_blur', 'cups_jpeg_q12', 'cups_sensor_noise',
                             'cups_under_exposed'}
    for name, score in degraded.items():
        assert score <= pristine - load_calibration().sample_margin, (name, scores)


def test_the_samples_keep_their_golden_scores(default_scorer):
    """Scores of the shipped weights, written by the build's `golden` step with the
    weights' hash: any change to the weights or to the scoring path shows here."""
    golden = json.loads(GOLDEN.read_text())
    weights = Path(modelscope_iqa.DEFAULT_MODEL_DIR) / 'pytorch_model.pt'
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == golden['weights_sha256'], (
        'the default weights changed: run `python -m default_model_build golden '
        '--work-dir WORK` and commit tests/golden/default_model_samples.json')
    assert set(golden['scores']) == {p.name for p in SAMPLES}
    for path in SAMPLES:
        assert default_scorer(str(path))[OutputKeys.SCORE] == pytest.approx(
            golden['scores'][path.name], abs=GOLDEN_TOLERANCE), path.name


def test_a_clone_of_the_repo_is_a_model_directory(default_scorer):
    scorer = pipeline(Tasks.image_quality_assessment_mos, model=str(REPO))
    image = str(SAMPLES[0])
    assert scorer(image)[OutputKeys.SCORE] == default_scorer(image)[OutputKeys.SCORE]


def test_export_writes_real_files_and_validates(tmp_path):
    out = export_model_folder(str(tmp_path / 'hub_folder'))
    for name in MODEL_FOLDER_FILES:
        path = os.path.join(out, name)
        assert os.path.isfile(path) and not os.path.islink(path)
    card = open(os.path.join(out, 'README.md'), encoding='utf-8').read()
    assert card.startswith('---\n') and 'tasks:' in card


def test_export_refuses_an_incomplete_folder(tmp_path, our_model_dir):
    source = tmp_path / 'no_card'
    shutil.copytree(our_model_dir, source)
    with pytest.raises(ModelFolderError, match='README.md'):
        export_model_folder(str(tmp_path / 'out'), model_dir=str(source))
