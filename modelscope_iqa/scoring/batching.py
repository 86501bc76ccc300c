"""Crops of any inputs gathered into batches, one network forward a batch, each score
handed back to the input its crop came from."""
from __future__ import annotations

from typing import List, Optional, Protocol, Tuple

import numpy as np
import torch

from .network import ScoringNetwork
from .workers import MapPhoto


class CropOwner(Protocol):
    """The input a crop belongs to."""

    def scored(self, score: float, grid: Optional[np.ndarray],
               photo: Optional[MapPhoto]) -> None:
        ...


class Batcher:
    """Collects crops until ``batch_size`` are waiting, then runs one forward and hands
    each score (and, with ``map_window``, its local-score grid) to the crop's owner with
    the crop's map photo."""

    def __init__(self, network: ScoringNetwork, batch_size: int, map_window: Optional[int]):
        self.network = network
        self.batch_size = batch_size
        self.map_window = map_window
        self._crops: List[torch.Tensor] = []
        self._owners: List[Tuple[CropOwner, Optional[MapPhoto]]] = []

    def add(self, crop: torch.Tensor, owner: CropOwner, photo: Optional[MapPhoto]) -> int:
        """Queue one crop (H, W, 3); how many crops this scored (0, or a batch)."""
        self._crops.append(crop[None])
        self._owners.append((owner, photo))
        return self.flush() if len(self._crops) >= self.batch_size else 0

    def flush(self) -> int:
        """Score the crops waiting; how many there were."""
        if not self._crops:
            return 0
        batch = torch.cat(self._crops)
        if self.map_window is None:
            scores, grids = self.network(batch).cpu().tolist(), [None] * len(batch)
        else:
            scores, grids = self.network.forward_with_maps(batch, self.map_window)
            scores, grids = scores.cpu().tolist(), list(grids.cpu().numpy())
        for (owner, photo), score, grid in zip(self._owners, scores, grids):
            owner.scored(score, grid, photo)
        self._crops.clear()
        self._owners.clear()
        return len(batch)
