"""Model folders (ours, published, official hub downloads): reading them once
(:mod:`.folders`), the published folder's configuration read back (:mod:`.published`),
and hub ids downloaded (:mod:`.download`). Writing a published folder is an export:
:func:`modelscope_iqa.export.export_model_folder`."""

from .._lazy import lazy_namespace

# name -> the module that defines it, imported on first use
_EXPORTS = {
    'HUB_PROBE_TIMEOUT_S': '.download', 'download_model': '.download',
    'CONFIGURATION_NAME': '.folders', 'ModelFolder': '.folders',
    'is_model_dir': '.folders', 'load_model': '.folders',
    'open_model_folder': '.folders', 'read_model_config': '.folders',
    'resolve_model_dir': '.folders',
    'OUR_SECTIONS_KEY': '.published', 'our_configuration': '.published',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
