"""The ModelScope model: loads a model directory and runs :class:`IqaMosNet`."""
import os
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from modelscope.models.base import TorchModel
from modelscope.models.builder import MODELS

from .._modelscope_index import list_in_modelscope_index
from ..errors import ModelDirError
from ..metainfo import TASK, Models
from .checkpoint import WEIGHTS_FILE, load_weights
from .network import IqaMosNet

__all__ = ['ImageQualityAssessmentMosModel']


@MODELS.register_module(TASK, module_name=Models.iqa_mos_resnet18)
class ImageQualityAssessmentMosModel(TorchModel):
    """MOS predictor for a model directory holding ``pytorch_model.pt``.

    ``forward`` follows the batch in ModelScope's three modes:

    - inference (``target`` absent): ``{'output': (N, 1) scores}``;
    - evaluation (``target`` given, ``eval()`` mode): ``{'pred', 'target'}`` for the metric;
    - training (``train()`` mode): adds ``'loss'``, the L1 distance to the scaled MOS.
    """

    def __init__(self, model_dir: str, *args, **kwargs):
        super().__init__(model_dir, *args, **kwargs)
        weights_path = os.path.join(model_dir, WEIGHTS_FILE)
        if not os.path.isfile(weights_path):
            raise ModelDirError(
                f'{model_dir!r}: no {WEIGHTS_FILE} in the model directory')
        self.network = load_weights(IqaMosNet(), weights_path)
        self.eval()

    def forward(self,
                input: torch.Tensor,
                target: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        pred = self.network(input)
        if target is None:
            return {'output': pred}
        target = torch.as_tensor(target, device=pred.device).to(pred.dtype)
        outputs = {'pred': pred, 'target': target}
        if self.training:
            outputs['loss'] = F.l1_loss(pred.flatten(), target.flatten())
        return outputs


list_in_modelscope_index(MODELS, TASK, Models.iqa_mos_resnet18, __name__)
