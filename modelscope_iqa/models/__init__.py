"""The network (:class:`IqaMosNet`), its weights files, its inference forms in each
precision (:class:`InferenceNetwork`) and the ModelScope Model that wraps them."""

from .._lazy import lazy_namespace

# name -> the module that defines it, imported on first use
_EXPORTS = {
    'WEIGHTS_FILE': '.checkpoint', 'load_weights': '.checkpoint',
    'read_state_dict': '.checkpoint', 'save_weights': '.checkpoint',
    'ImageQualityAssessmentMosModel': '.iqa_mos_model',
    'IqaMosNet': '.network',
    'EXACT_PRECISION': '.inference', 'PRECISION_DTYPES': '.inference',
    'InferenceNetwork': '.inference', 'validate_precision': '.inference',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
