"""Training with ModelScope's trainer: resumption that works, and a trainer that does
not ask the hub about local folders."""
import contextlib
import os
from typing import Iterator, Optional

import numpy as np
import torch
from modelscope.trainers.builder import TRAINERS
from modelscope.trainers.trainer import EpochBasedTrainer
from modelscope.utils.registry import default_group
from numpy._core.multiarray import _reconstruct

from ._modelscope_index import list_in_modelscope_index
from .metainfo import Trainers

# What numpy needs to rebuild the arrays of its random state: data types, no code.
NUMPY_ARRAY_GLOBALS = (_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32)),
                       type(np.dtype(np.float64)))


@contextlib.contextmanager
def trainer_state_loading() -> Iterator[None]:
    """Let ModelScope read back its own ``*_trainer_state.pth`` files.

    ModelScope's trainer stores numpy's random state (arrays) in that file and loads it
    with ``torch.load(weights_only=True)``, which torch >= 2.6 refuses for numpy arrays;
    resuming then fails with ``Unsupported global: numpy._core.multiarray._reconstruct``.
    Inside this context exactly the numpy array types are allowed.
    """
    with torch.serialization.safe_globals(list(NUMPY_ARRAY_GLOBALS)):
        yield


def train(trainer, resume_from: Optional[str] = None) -> None:
    """``trainer.train()``, resuming from ``resume_from`` (an ``epoch_N.pth`` written
    by the trainer's CheckpointHook: weights, optimizer, schedule and counters)."""
    if resume_from is None:
        trainer.train()
        return
    with trainer_state_loading():
        trainer.train(checkpoint_path=resume_from)


@TRAINERS.register_module(module_name=Trainers.iqa_mos)
class IqaMosTrainer(EpochBasedTrainer):
    """ModelScope's ``EpochBasedTrainer`` without its hub round-trip for local folders.

    For a local model folder the default trainer asks the hub whether the folder is the
    latest version of some hub model (``check_local_model_is_latest``); offline that
    costs 7-35 s of retries, whose failure is then ignored. Everything else — model,
    datasets, hooks, evaluation — is the default trainer's. Use it with
    ``build_trainer(name=Trainers.iqa_mos, default_args=...)``.
    """

    def get_or_download_model_dir(self, model, model_revision=None, third_party=None):
        if os.path.isdir(model):
            return model
        return super().get_or_download_model_dir(model, model_revision, third_party)


list_in_modelscope_index(TRAINERS, default_group, Trainers.iqa_mos, __name__)
