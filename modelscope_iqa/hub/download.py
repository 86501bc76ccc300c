"""Hub ids: a model fetched from the ModelScope hub (or its cache), failing fast and
clearly offline. The only code here that opens a connection, and only when called."""
from __future__ import annotations

import socket
from typing import Optional
from urllib.parse import urlsplit

from ..errors import HubUnreachableError

HUB_PROBE_TIMEOUT_S = 5.0
OFFLINE_ADVICE = (
    'Offline, pass a local model directory instead: a folder with configuration.json '
    'and pytorch_model.pt (e.g. one copied from a machine where '
    "`modelscope.snapshot_download(model_id)` worked, or a clone of the hub repo).")


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
