"""The ModelScope model: loads a model directory and runs :class:`IqaMosNet`."""
import contextlib
import os
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from modelscope.models.base import TorchModel
from modelscope.models.builder import MODELS

from .._modelscope_index import list_in_modelscope_index
from ..errors import ModelDirError
from ..metainfo import TASK, Models, Pipelines
from .checkpoint import WEIGHTS_FILE, load_weights
from .network import IqaMosNet

__all__ = ['ImageQualityAssessmentMosModel', 'TRAIN_PRECISIONS']

TRAIN_PRECISIONS = ('fp32', 'bf16', 'fp16')


def pairwise_rank_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean hinge on every pair of the batch whose targets differ: the better image must
    score higher, by at least the targets' difference."""
    pred, target = pred.flatten(), target.flatten()
    pred_diff = pred[:, None] - pred[None, :]
    target_diff = target[:, None] - target[None, :]
    ordered = target_diff > 0
    if not ordered.any():
        return pred.sum() * 0.0
    return F.relu(target_diff[ordered] - pred_diff[ordered]).mean()


@MODELS.register_module(TASK, module_name=Models.iqa_mos_resnet18)
class ImageQualityAssessmentMosModel(TorchModel):
    """MOS predictor for a model directory holding ``pytorch_model.pt``.

    ``forward`` follows the batch in ModelScope's three modes:

    - inference (``target`` absent): ``{'output': (N, 1) scores}``;
    - evaluation (``target`` given, ``eval()`` mode): ``{'pred', 'target'}`` for the metric;
    - training (``train()`` mode): adds ``'loss'``: L1 to the scaled MOS, plus
      ``rank_loss_weight`` times a pairwise ranking hinge.

    Its ``state_dict`` is the network's, with the hub checkpoint's keys, so the
    checkpoints ModelScope's trainer writes load into ModelScope's built-in model too.

    Args:
        model_dir: folder with ``pytorch_model.pt`` (and ``configuration.json``).
        train_precision: ``'fp32'``; ``'bf16'`` autocasts the training forward on CPU
            (AVX-512 BF16/AMX make it several times faster) or CUDA; ``'fp16'`` is CUDA
            autocast (pair it with the trainer's ``use_fp16`` for loss scaling).
        rank_loss_weight: weight of the pairwise ranking term (0 = plain L1).
    """

    def __init__(self,
                 model_dir: str,
                 *args,
                 train_precision: str = 'fp32',
                 rank_loss_weight: float = 0.0,
                 **kwargs):
        super().__init__(model_dir, *args, **kwargs)
        if train_precision not in TRAIN_PRECISIONS:
            raise ValueError(f'train_precision must be one of {TRAIN_PRECISIONS}, '
                             f'got {train_precision!r}')
        self.train_precision = train_precision
        self.rank_loss_weight = float(rank_loss_weight)
        weights_path = os.path.join(model_dir, WEIGHTS_FILE)
        if not os.path.isfile(weights_path):
            raise ModelDirError(
                f'{model_dir!r}: no {WEIGHTS_FILE} in the model directory')
        self.network = load_weights(IqaMosNet(), weights_path)
        self.eval()

    def save_pretrained(self, target_folder, *args, config=None, **kwargs):
        """ModelScope's checkpoint hook sets the saved configuration's pipeline to the
        task name whenever a built-in pipeline carries that name, as ModelScope's own
        does for this task; a folder saved so would load the built-in pipeline on our
        model. Keep ours."""
        if config is None:
            config = getattr(self, 'cfg', None)
        if config is not None:
            config['pipeline'] = {'type': Pipelines.iqa_mos}
        return super().save_pretrained(target_folder, *args, config=config, **kwargs)

    def state_dict(self, *args, **kwargs):
        return self.network.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.network.load_state_dict(state_dict, strict=strict, assign=assign)

    def _training_autocast(self, device: torch.device):
        if self.train_precision == 'fp32':
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.train_precision == 'bf16' else torch.float16
        return torch.autocast(device.type, dtype=dtype)

    def forward(self,
                input: torch.Tensor,
                target: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        if not self.training:
            pred = self.network(input)
            if target is None:
                return {'output': pred}
            return {'pred': pred, 'target': torch.as_tensor(target, device=pred.device)}
        with self._training_autocast(input.device):
            pred = self.network(input)
        pred = pred.float()
        target = torch.as_tensor(target, device=pred.device).to(pred.dtype)
        loss = F.l1_loss(pred.flatten(), target.flatten())
        if self.rank_loss_weight:
            loss = loss + self.rank_loss_weight * pairwise_rank_loss(pred, target)
        return {'pred': pred, 'target': target, 'loss': loss}


list_in_modelscope_index(MODELS, TASK, Models.iqa_mos_resnet18, __name__)
