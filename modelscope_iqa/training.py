"""Training with ModelScope's trainer: resumption that works, and a trainer that does
not ask the hub about local folders and evaluates exactly under torchrun."""
import contextlib
import os
from typing import Iterator, Optional

import numpy as np
import torch
from modelscope.metrics.prediction_saving_wrapper import PredictionSavingWrapper
from modelscope.trainers.builder import TRAINERS
from modelscope.trainers.hooks import Hook
from modelscope.trainers.hooks.priority import Priority
from modelscope.trainers.trainer import EpochBasedTrainer
from modelscope.trainers.utils.inference import evaluate_batch, merge_metrics
from modelscope.utils.constant import TrainerStages
from modelscope.utils.data_utils import to_device
from modelscope.utils.registry import default_group

from . import distributed
from .metainfo import Trainers

# What numpy needs to rebuild the arrays of its random state: data types, no code. The
# rebuilding function is taken from numpy's public pickle protocol, not its private
# module (numpy._core in numpy 2, numpy.core before).
_reconstruct = np.zeros(0).__reduce__()[0]
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


class NextEpochAfterLoading(Hook):
    """Resume an ``epoch_N.pth`` at the start of epoch N + 1, not at the end of epoch N.

    ModelScope's CheckpointHook saves at the end of an epoch, before the trainer counts
    the epoch done, so the file's counters say "epoch N, its last iteration". Resuming,
    the trainer then re-enters epoch N: it draws (and skips) the whole epoch's batches,
    and runs the end-of-epoch hooks a second time, which steps the learning-rate
    schedule once more: every later epoch trains at the rate meant for the epoch after
    it (with a cosine schedule over 8 epochs, epoch 7 at epoch 8's rate), and epoch N is
    saved and evaluated again. Runs after the checkpoint is loaded (LoadCheckpointHook's
    priority is HIGH) and moves the counters to the next epoch's start."""
    PRIORITY = Priority.NORMAL

    def before_run(self, trainer):
        if trainer._inner_iter + 1 >= trainer.iters_per_epoch:
            trainer._epoch += 1
            trainer._inner_iter = 0


def train(trainer, resume_from: Optional[str] = None) -> None:
    """``trainer.train()``, resuming from ``resume_from`` (an ``epoch_N.pth`` written
    by the trainer's CheckpointHook: weights, optimizer, schedule and counters) at the
    start of the next epoch, with the schedule where it stood."""
    if resume_from is None:
        trainer.train()
        return
    trainer.register_hook(NextEpochAfterLoading())
    with trainer_state_loading():
        trainer.train(checkpoint_path=resume_from)


@TRAINERS.register_module(module_name=Trainers.iqa_mos)
class IqaMosTrainer(EpochBasedTrainer):
    """ModelScope's ``EpochBasedTrainer`` with the changes below; use it with
    ``build_trainer(name=Trainers.iqa_mos, default_args=...)``.

    - No hub round-trip for local folders. For a local model folder the default trainer
      asks the hub whether the folder is the latest version of some hub model
      (``check_local_model_is_latest``); offline that costs seconds of retries, whose
      failure is then ignored.
    - Evaluation in a process group of several ranks (``torchrun``, CPU/gloo or
      CUDA/NCCL) gives the single-process result. Each rank evaluates a disjoint stride
      of the dataset (:class:`~modelscope_iqa.distributed.ShardSampler`) and the ranks'
      metric states are gathered and merged. ModelScope's own distributed evaluation
      pads the shards with repeated samples (``DistributedSampler``), which changes the
      metrics, needs ``launcher`` with CUDA, and collects through a temporary folder
      that must be shared between machines.
    - The evaluation loop draws no progress bar (ModelScope's writes a tqdm bar to
      stderr around every evaluation).
    - A published model folder (configuration naming ModelScope's built-in classes,
      ours kept aside) trains and evaluates with our classes.
    - Evaluation batches with the dataset's own ``collate`` when it has one (video rows
      of :class:`~modelscope_iqa.msdatasets.ImageQualityAssessmentMosDataset`) and no
      ``data_collator`` was given.
    - ModelScope's configuration and hook tables are logged at DEBUG, not INFO.

    Everything else (model, datasets, hooks, training) is the default trainer's.
    """

    def rebuild_config(self, cfg):
        """A published folder (:func:`modelscope_iqa.export.export_model_folder`) names
        ModelScope's built-in classes for stock users; the trainer takes our sections."""
        from modelscope.utils.config import Config

        from .hub import OUR_SECTIONS_KEY, our_configuration
        if OUR_SECTIONS_KEY in cfg:
            cfg = Config(our_configuration(cfg.to_dict()), filename=cfg.filename)
        return super().rebuild_config(cfg)

    def get_or_download_model_dir(self, model, model_revision=None, third_party=None):
        if os.path.isdir(model):
            return model
        return super().get_or_download_model_dir(model, model_revision, third_party)

    # ModelScope logs the whole configuration and a table of every hook (over a hundred
    # lines) at INFO on the console at each train() and evaluate(); here they go to
    # DEBUG (MODELSCOPE_LOG_LEVEL=10 shows them). The configuration is saved beside the
    # weights anyway.
    def print_cfg(self):
        self.logger.debug('configuration: %s', self.cfg.to_dict())

    def print_hook_info(self):
        self.logger.debug('hooks:\n%s', self.get_hook_info())

    def get_eval_data_loader(self):
        from torch.utils.data import default_collate
        dataset_collate = getattr(self.eval_dataset, 'collate', None)
        if dataset_collate is not None and self.eval_data_collator is default_collate:
            self.eval_data_collator = dataset_collate  # batches video rows' frames too
        ranks = distributed.current()
        if not ranks.distributed:
            return super().get_eval_data_loader()
        config = {'shuffle': False, **self.cfg.evaluation.get('dataloader', {})}
        return self._build_dataloader_with_dataset(
            self.eval_dataset, dist=False, seed=self._seed,
            collate_fn=self.eval_data_collator,
            sampler=distributed.ShardSampler(len(self.eval_dataset), ranks), **config)

    def evaluation_loop(self, data_loader, metric_classes):
        self.invoke_hook(TrainerStages.before_val)
        for batch in data_loader:
            evaluate_batch(self, to_device(batch, self.device), metric_classes, None)
        # Prediction savers stay on their rank: they hold callables, not metric state.
        mergeable = [m for m in metric_classes if not isinstance(m, PredictionSavingWrapper)]
        merged = merge_metrics(distributed.all_gather(mergeable))
        values = {}
        for metric in merged:
            values.update(metric.evaluate())
        self.invoke_hook(TrainerStages.after_val)
        return values
