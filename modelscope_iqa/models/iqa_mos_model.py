"""The ModelScope model: loads a model directory and runs :class:`IqaMosNet`."""
import contextlib
import os
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from modelscope.models.base import TorchModel
from modelscope.models.builder import MODELS

from ..config import PreprocessConfig
from ..errors import ModelFolderError
from ..metainfo import TASK, Models, Pipelines
from .checkpoint import WEIGHTS_FILE, load_weights
from .inference import EXACT_PRECISION, InferenceNetwork, validate_precision
from .network import IqaMosNet, mos_from_logits

__all__ = ['ImageQualityAssessmentMosModel', 'TRAIN_PRECISIONS']

TRAIN_PRECISIONS = ('fp32', 'bf16', 'fp16')


def pairwise_rank_loss(pred: torch.Tensor, target: torch.Tensor,
                       groups: Optional[torch.Tensor] = None,
                       margin_cap: Optional[float] = None,
                       cross_min_gap: float = 0.0) -> torch.Tensor:
    """Hinge on every pair of the batch whose targets differ: the better image must
    score higher, by at least the targets' difference (at most ``margin_cap`` when
    given: a full-gap margin on sigmoid scores pushes them towards 0 and 1).

    With ``groups`` (one id per image; a group is one content at several degradation
    levels), the mean over pairs within a group and the mean over pairs across groups
    are added: the first teaches the order of levels free of content, the second that a
    score means the same on every content. Pairs across groups count only when their
    targets differ by at least ``cross_min_gap``: close levels of different contents
    are not comparable by eye either.
    """
    pred, target = pred.flatten(), target.flatten()
    pred_diff = pred[:, None] - pred[None, :]
    target_diff = target[:, None] - target[None, :]
    margin = target_diff if margin_cap is None else target_diff.clamp(max=margin_cap)
    ordered = target_diff > 0
    masks = [ordered]
    if groups is not None:
        same = groups.flatten()[:, None] == groups.flatten()[None, :]
        masks = [ordered & same, ordered & ~same & (target_diff >= cross_min_gap)]
    loss = pred.sum() * 0.0
    for mask in masks:
        if mask.any():
            loss = loss + F.relu(margin[mask] - pred_diff[mask]).mean()
    return loss


@MODELS.register_module(TASK, module_name=Models.iqa_mos_resnet18)
class ImageQualityAssessmentMosModel(TorchModel):
    """MOS predictor for a model directory holding ``pytorch_model.pt``.

    ``forward`` follows the batch in ModelScope's three modes:

    - inference (``target`` absent): ``{'output': (N, 1) scores}``;
    - evaluation (``target`` given, ``eval()`` mode): ``{'pred', 'target'}`` for the metric.
      Both run :meth:`inference_network` in ``inference_precision``: what the pipeline
      and the command line score with, so evaluation measures what scoring ships;
    - training (``train()`` mode): adds ``'loss'``: ``l1_loss_weight`` times the L1
      distance to the scaled MOS plus ``rank_loss_weight`` times a pairwise ranking
      hinge. A 5-D ``input`` (N, K, 3, H, W) with ``target`` (N, K) is N groups of K
      views of one content (:class:`~modelscope_iqa.synthetic.SyntheticLadderDataset`);
      the ranking hinge then tells pairs within a group from pairs across groups.

    Its ``state_dict`` is the network's, with the hub checkpoint's keys, so the
    checkpoints ModelScope's trainer writes load into ModelScope's built-in model too.

    Args:
        model_dir: folder with ``pytorch_model.pt`` (and ``configuration.json``).
        train_precision: ``'fp32'``; ``'bf16'`` autocasts the training trunk on CPU
            (AVX-512 BF16/AMX make it several times faster) or CUDA; ``'fp16'`` is CUDA
            autocast (pair it with the trainer's ``use_fp16`` for loss scaling). The
            head, sigmoid and loss always run in float32: bfloat16 keeps 8 significant
            bits, so a score above 0.5 would move in steps of 2**-8, too coarse for the
            ranking hinge.
        l1_loss_weight: weight of the L1 term.
        rank_loss_weight: weight of the pairwise ranking term (0 = plain L1).
        rank_margin_cap: the hinge's largest margin (None: the whole target gap).
        rank_cross_min_gap: the smallest target gap of a pair across groups that the
            hinge counts.
        freeze_batchnorm: keep BatchNorm in inference mode while training (running
            statistics fixed, affine parameters still learn), so a batch of few contents
            (ladders) normalises as inference does.
        inference_precision: the precision of inference and evaluation forwards
            (``'fp32'`` exact, ``'bf16'``, ``'fp16'`` on CUDA, ``'int8'`` on CPU; see
            :mod:`.inference`).
    """

    def __init__(self,
                 model_dir: str,
                 *args,
                 train_precision: str = 'fp32',
                 l1_loss_weight: float = 1.0,
                 rank_loss_weight: float = 0.0,
                 rank_margin_cap: Optional[float] = None,
                 rank_cross_min_gap: float = 0.0,
                 freeze_batchnorm: bool = False,
                 inference_precision: str = EXACT_PRECISION,
                 **kwargs):
        super().__init__(model_dir, *args, **kwargs)
        if train_precision not in TRAIN_PRECISIONS:
            raise ValueError(f'train_precision must be one of {TRAIN_PRECISIONS}, '
                             f'got {train_precision!r}')
        self.train_precision = train_precision
        self.l1_loss_weight = float(l1_loss_weight)
        self.rank_loss_weight = float(rank_loss_weight)
        self.rank_margin_cap = None if rank_margin_cap is None else float(rank_margin_cap)
        self.rank_cross_min_gap = float(rank_cross_min_gap)
        self.freeze_batchnorm = bool(freeze_batchnorm)
        validate_precision(inference_precision)
        self.inference_precision = inference_precision
        # (precision, device, preprocessing) -> InferenceNetwork of the current weights;
        # emptied whenever they may change (training mode, loading a state dict).
        self._inference_networks: Dict[tuple, InferenceNetwork] = {}
        if self.l1_loss_weight < 0 or self.rank_loss_weight < 0 or not (
                self.l1_loss_weight or self.rank_loss_weight):
            raise ValueError('l1_loss_weight and rank_loss_weight must be >= 0 and not '
                             f'both 0, got {l1_loss_weight!r} and {rank_loss_weight!r}')
        weights_path = os.path.join(model_dir, WEIGHTS_FILE)
        if not os.path.isfile(weights_path):
            raise ModelFolderError(
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
        self._inference_networks.clear()
        return self.network.load_state_dict(state_dict, strict=strict, assign=assign)

    def inference_network(self, precision: Optional[str] = None, device=None,
                          preprocess_config: Optional[PreprocessConfig] = None
                          ) -> InferenceNetwork:
        """The network prepared for scoring (:class:`InferenceNetwork`: BatchNorm folded,
        ``precision``, default ``inference_precision``, on ``device``, default CPU), built
        once per (precision, device, preprocessing) from the current weights.
        ``preprocess_config`` gives the crop size that ``int8`` calibrates on (default:
        the package's)."""
        precision = precision or self.inference_precision
        device = torch.device(device or 'cpu')
        preprocess_config = preprocess_config or PreprocessConfig.from_mapping()
        key = (precision, str(device), preprocess_config)
        if key not in self._inference_networks:
            self._inference_networks[key] = InferenceNetwork(self.network, precision, device,
                                                             preprocess_config)
        return self._inference_networks[key]

    def _evaluation_scores(self, input, pooling: Optional[str]) -> torch.Tensor:
        if isinstance(input, torch.Tensor) and input.dim() == 4:
            return self.inference_network(device=input.device)(input).reshape(-1, 1)
        from ..video.pooling import DEFAULT_POOLING, Pooling
        pool = Pooling(pooling or DEFAULT_POOLING)
        items = list(input)
        network = self.inference_network(device=items[0].device)
        frames = [item if item.dim() == 4 else item[None] for item in items]
        scores = network(torch.cat(frames)).flatten()
        pooled, first = [], 0
        for item, clip in zip(items, frames):
            item_scores = scores[first:first + len(clip)]
            first += len(clip)
            pooled.append(item_scores[0] if item.dim() == 3 else torch.tensor(
                pool(item_scores.tolist()), dtype=scores.dtype, device=scores.device))
        return torch.stack(pooled).reshape(-1, 1)

    def train(self, mode: bool = True):
        if mode:
            self._inference_networks.clear()
        super().train(mode)
        if mode and self.freeze_batchnorm:
            for module in self.network.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def _training_autocast(self, device: torch.device):
        if self.train_precision == 'fp32':
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.train_precision == 'bf16' else torch.float16
        return torch.autocast(device.type, dtype=dtype)

    def _training_scores(self, views: torch.Tensor) -> torch.Tensor:
        """Scores (N, 1) of a batch of views (N, 3, H, W) in training: the trunk in
        ``train_precision``, the head and sigmoid in float32."""
        with self._training_autocast(views.device):
            features = self.network.forward_features(views)
        return mos_from_logits(self.network.forward_head(features.float()))

    def _training_scores_of_groups(self, views: torch.Tensor, target: torch.Tensor
                                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """N groups of K views (N, K, 3, H, W) and their (N, K) targets: the scores and
        targets of every view, flat, and each view's group."""
        count, rungs = views.shape[:2]
        pred = self._training_scores(views.flatten(0, 1))
        target = torch.as_tensor(target, device=views.device).reshape(-1).to(pred.dtype)
        groups = torch.arange(count, device=views.device).repeat_interleave(rungs)
        return pred, target, groups

    def forward(self,
                input: torch.Tensor,
                target: Optional[torch.Tensor] = None,
                pooling: Optional[str] = None) -> Dict[str, torch.Tensor]:
        """In evaluation, ``input`` may also hold videos: a (B, K, 3, H, W) tensor or a
        list of (3, H, W) images and (K, 3, H, W) videos; a video's prediction is its K
        frames' scores pooled by ``pooling`` (default ``mean``), as the command line
        pools them."""
        if not self.training:
            pred = self._evaluation_scores(input, pooling)
            if target is None:
                return {'output': pred}
            return {'pred': pred, 'target': torch.as_tensor(target, device=pred.device)}
        if input.dim() == 5:
            pred, target, groups = self._training_scores_of_groups(input, target)
        else:
            groups = None
            pred = self._training_scores(input)
            target = torch.as_tensor(target, device=pred.device).to(pred.dtype).reshape(-1)
        l1_loss = F.l1_loss(pred.flatten(), target.flatten())
        rank_loss = pairwise_rank_loss(pred, target, groups, self.rank_margin_cap,
                                       self.rank_cross_min_gap)
        loss = self.l1_loss_weight * l1_loss + self.rank_loss_weight * rank_loss
        # ModelScope's trainer logs every output whose key contains 'loss'.
        return {'pred': pred, 'target': target, 'loss': loss,
                'l1_loss': l1_loss.detach(), 'rank_loss': rank_loss.detach()}
