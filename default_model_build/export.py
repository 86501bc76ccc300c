"""Shipping the candidate: its weights into the package, and the golden scores the tests
hold the shipped model to."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch

from modelscope_iqa.config import WEIGHTS_FILE
from modelscope_iqa.identity import file_sha256

from . import REPO
from .calibration import SAMPLES_DIR
from .training import machine

LOG = logging.getLogger(__name__)
DEFAULT_EXPORT_DIR = REPO / 'modelscope_iqa' / 'default_model'
GOLDEN_FILE = REPO / 'tests' / 'golden' / 'default_model_samples.json'


def export(work_dir: Path, out_dir: Path = DEFAULT_EXPORT_DIR) -> None:
    """Copy the candidate's float16 weights (those the report measured) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(work_dir / 'model' / WEIGHTS_FILE, out_dir / WEIGHTS_FILE)
    LOG.info('exported %s', out_dir / WEIGHTS_FILE)


def write_golden_scores(model_dir: Path = DEFAULT_EXPORT_DIR,
                        golden_file: Path = GOLDEN_FILE) -> None:
    """The exported model's exact scores of the committed samples, with provenance."""
    from modelscope.pipelines import pipeline
    from modelscope.utils.constant import Tasks
    iqa = pipeline(Tasks.image_quality_assessment_mos, model=str(model_dir))
    record = {
        'made_by': 'python -m default_model_build golden (exact fp32 pipeline)',
        'weights_sha256': file_sha256(str(model_dir / WEIGHTS_FILE)),
        'torch': torch.__version__,
        'machine': machine(torch.device('cpu')),
        'scores': {p.name: iqa(str(p))['score'] for p in sorted(SAMPLES_DIR.glob('*.jpg'))},
    }
    golden_file.parent.mkdir(parents=True, exist_ok=True)
    golden_file.write_text(json.dumps(record, indent=2) + '\n')
    LOG.info('golden scores -> %s: %s', golden_file, record['scores'])
