"""The network's input scale: uint8 crops to floats in [0, 1] (no mean/std), the one
place the division is written. Scoring moves crops to the device as bytes and scales
them there, in the precision it runs in."""
import numpy as np
import torch

UINT8_MAX = 255.0


def to_unit_range(crops: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 crops (..., H, W, 3) -> ``dtype`` (..., 3, H, W) in [0, 1] (a channels-first
    view of the channels-last data)."""
    return crops.movedim(-1, -3).to(dtype).div_(UINT8_MAX)


def crop_to_float(crop: np.ndarray) -> torch.Tensor:
    """One uint8 crop (H, W, 3) -> float32 (3, H, W) in [0, 1]."""
    return to_unit_range(torch.from_numpy(crop))
