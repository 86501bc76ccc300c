"""Model directories: local folders, and hub ids fetched from ModelScope when online.

Nothing here touches the network unless a caller passes a hub id.
"""
from __future__ import annotations

import json
import os
import socket
from typing import Optional
from urllib.parse import urlsplit

from .errors import HubUnreachableError, ModelDirError

CONFIGURATION_FILE = 'configuration.json'
HUB_PROBE_TIMEOUT_S = 5.0
OFFLINE_ADVICE = (
    'Offline, pass a local model directory instead: a folder with configuration.json '
    'and pytorch_model.pt (e.g. one copied from a machine where '
    "`modelscope.snapshot_download(model_id)` worked, or a clone of the hub repo).")


def is_model_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, CONFIGURATION_FILE))


def read_model_config(model_dir: str) -> dict:
    """The parsed configuration.json of ``model_dir``."""
    path = os.path.join(model_dir, CONFIGURATION_FILE)
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        raise ModelDirError(f'{model_dir!r}: no {CONFIGURATION_FILE}') from None
    except (OSError, ValueError) as exc:
        raise ModelDirError(f'{path!r}: unreadable configuration ({exc})') from exc


def _hub_endpoint() -> str:
    from modelscope_hub.config import HubConfig
    return HubConfig().endpoint


def _probe_hub(model_id: str, timeout: float) -> None:
    endpoint = _hub_endpoint()
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == 'https' else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        raise HubUnreachableError(
            f'{model_id!r}: the ModelScope hub at {endpoint} is unreachable ({exc}). '
            + OFFLINE_ADVICE) from exc


def download_model(model_id: str,
                   revision: Optional[str] = None,
                   timeout: float = HUB_PROBE_TIMEOUT_S) -> str:
    """Fetch ``model_id`` from the ModelScope hub (or its cache) and return its folder.

    Raises :class:`HubUnreachableError` within about ``timeout`` seconds when the hub
    cannot be reached, with advice on using a local directory.
    """
    from modelscope.hub.snapshot_download import snapshot_download
    _probe_hub(model_id, timeout)
    kwargs = {} if revision is None else {'revision': revision}
    try:
        return snapshot_download(model_id, **kwargs)
    except ConnectionError as exc:
        raise HubUnreachableError(
            f'{model_id!r}: download from the ModelScope hub failed ({exc}). '
            + OFFLINE_ADVICE) from exc


def resolve_model_dir(model: str, revision: Optional[str] = None) -> str:
    """A local model directory for ``model``: a folder as is, a hub id downloaded."""
    if os.path.isdir(model):
        if not is_model_dir(model):
            raise ModelDirError(f'{model!r}: no {CONFIGURATION_FILE} in this folder')
        return model
    if os.path.exists(model) or model.count('/') != 1 or model.startswith(('.', '/')):
        raise ModelDirError(
            f'{model!r}: not a model directory, nor a hub id of the form owner/name')
    return download_model(model, revision=revision)
