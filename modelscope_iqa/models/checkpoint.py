"""Reading and writing weights in the hub checkpoint format.

The hub's ``pytorch_model.pt`` is a plain state dict of :class:`IqaMosNet` (the keys of
ModelScope's ``CenseoIVQAModel``). Some training tools wrap it under ``params`` or
prefix keys with ``module.`` (DataParallel); both are accepted.
"""
import os
from typing import Dict

import torch
from torch import nn

from ..config import WEIGHTS_FILE  # noqa: F401  (re-exported)
from ..errors import CheckpointError

WRAPPER_KEYS = ('params', 'state_dict')
PARALLEL_PREFIX = 'module.'


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Load a state dict safely (``weights_only=True``) and normalise its layout."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f'{path!r}: checkpoint file not found')
    try:
        loaded = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        raise CheckpointError(
            f'{path!r}: not a loadable weights-only checkpoint ({exc})') from exc
    for key in WRAPPER_KEYS:
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    if not isinstance(loaded, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor)
            for k, v in loaded.items()):
        raise CheckpointError(
            f'{path!r}: expected a state dict of tensors, got {type(loaded).__name__}')
    return {
        (k[len(PARALLEL_PREFIX):] if k.startswith(PARALLEL_PREFIX) else k): v
        for k, v in loaded.items()
    }


def load_weights(network: nn.Module, path: str) -> nn.Module:
    """Load ``path`` into ``network``; every key and shape must match."""
    state_dict = read_state_dict(path)
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = sorted(
        k for k in set(expected) & set(state_dict)
        if expected[k].shape != state_dict[k].shape)
    if missing or unexpected or wrong_shape:
        details = []
        for label, keys in (('missing', missing), ('unexpected', unexpected),
                            ('wrong shape', wrong_shape)):
            if keys:
                shown = ', '.join(keys[:5]) + (' ...' if len(keys) > 5 else '')
                details.append(f'{len(keys)} {label} ({shown})')
        raise CheckpointError(
            f'{path!r}: does not fit {type(network).__name__}: ' + '; '.join(details))
    network.load_state_dict(state_dict, strict=True)
    return network


def save_weights(network: nn.Module, path: str) -> None:
    """Write ``network``'s state dict in the hub format (plain dict, no prefixes)."""
    torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, path)
