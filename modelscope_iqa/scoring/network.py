"""What the engine scores with: :class:`ScoringNetwork`, met by
:class:`~modelscope_iqa.models.InferenceNetwork` and
:class:`~modelscope_iqa.export.OnnxNetwork` by their shape alone (neither imports it)."""
from __future__ import annotations

from typing import Protocol, Tuple, runtime_checkable

import torch


@runtime_checkable
class ScoringNetwork(Protocol):
    """Called on a batch of uint8 crops (N, H, W, 3) for float32 scores (N,) in [0, 1]."""

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        ...

    def forward_with_maps(self, batch: torch.Tensor,
                          window: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Scores (N,) and local scores (N, h, w) over ``window`` x ``window``
        neighbourhoods of the feature map; a network without maps raises
        :class:`ValueError`."""
        ...
