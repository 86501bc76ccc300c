"""The network as one exportable graph: the exact mode's network (BatchNorm folded in
float64, then float32), global mean pooling and the MLP head on the whole batch, and the
output function (:func:`~modelscope_iqa.models.network.mos_from_logits`). Float32
(N, 3, H, W) in [0, 1] -> MOS (N,) in [0, 1].

The one difference from the exact mode: our head runs one image at a time (so a score
never depends on its batch), the exported one as a batched matrix product, which a
runtime is free to order as it likes; the export checks that its scores stay within
fp32's bound (:mod:`.validation`).
"""
import copy

import torch
from torch import nn

from ..models.inference import fold_batch_norms
from ..models.network import IqaMosNet, mos_from_logits

INPUT_NAME = 'image'
OUTPUT_NAME = 'mos'


class ExportNetwork(nn.Module):
    def __init__(self, network: IqaMosNet):
        super().__init__()
        self.trunk = fold_batch_norms(network.backbone).float().eval()
        self.fc_out = copy.deepcopy(network.head.fc_out).float()
        self.eval()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        pooled = self.trunk(image).mean(dim=(2, 3))
        return mos_from_logits(self.fc_out(pooled)).flatten()
