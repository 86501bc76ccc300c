"""The network: a ResNet-18 trunk without its classifier, and an MLP head that maps the
pooled features to a MOS in [0, 1] (Wen & Wang, arXiv 2111.07104; CenseoQoE).

Parameter names match the hub checkpoint of
``damo/cv_resnet_image-quality-assessment-mos_youtubeUGC`` (``backbone.*``,
``head.fc_out.*``), so its ``pytorch_model.pt`` loads without any key remapping.
"""
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

FEATURE_DIMS = 512
HIDDEN_DIMS = 1024


def mos_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """The head's logits -> MOS in [0, 1]: the output function of every forward that
    scores, trains or exports."""
    return torch.sigmoid(logits)


class ResNet18Trunk(ResNet):
    """torchvision's ResNet-18 up to ``layer4``: no global pooling, no classifier."""

    def __init__(self):
        super().__init__(BasicBlock, [2, 2, 2, 2])
        del self.avgpool, self.fc
        self.output_dims = FEATURE_DIMS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


class MosHead(nn.Module):
    """Global average pooling, then Linear-ReLU-Linear to one logit per image."""

    def __init__(self, in_dims: int = FEATURE_DIMS, hidden_dims: int = HIDDEN_DIMS):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc_out = nn.Sequential(
            nn.Linear(in_dims, hidden_dims), nn.ReLU(inplace=True),
            nn.Linear(hidden_dims, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = torch.flatten(self.pool(features), 1)
        if self.training:
            return self.fc_out(pooled)
        # At inference each image goes through the MLP on its own: a batched matrix
        # product sums in another order than a single row's, which moved scores by up
        # to 6e-5 with the batch size. Now a score does not depend on its batch.
        return torch.cat([self.fc_out(row) for row in pooled.split(1)])

    def local_logits(self, features: torch.Tensor, window: int) -> torch.Tensor:
        """One logit per feature-map position (N, h, w): the MLP applied to the mean of
        the ``window`` x ``window`` positions around it (fewer at the borders) instead of
        the mean of all positions. ``window`` must be odd."""
        if window < 1 or window % 2 == 0:
            raise ValueError(f'window must be an odd number >= 1, got {window}')
        pooled = F.avg_pool2d(features, window, stride=1, padding=window // 2,
                              count_include_pad=False)
        batch, channels, height, width = pooled.shape
        logits = self.fc_out(pooled.permute(0, 2, 3, 1).reshape(-1, channels))
        return logits.reshape(batch, height, width)


class IqaMosNet(nn.Module):
    """Image batch (N, 3, H, W), values in [0, 1] -> MOS (N, 1) in [0, 1]."""

    def __init__(self):
        super().__init__()
        self.backbone = ResNet18Trunk()
        self.head = MosHead(self.backbone.output_dims)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """The trunk's feature maps (N, 512, h, w) -> one logit per image (N, 1): the
        head pools them first. ``forward`` applies :func:`mos_from_logits`."""
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mos_from_logits(self.forward_head(self.forward_features(x)))
