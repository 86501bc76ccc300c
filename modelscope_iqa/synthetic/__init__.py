"""Synthetic training data: degradations of photos by family and severity, ladders of
rising severity, dead-leaves charts."""

from .._lazy import lazy_namespace

# name -> the module that defines it, imported on first use
_EXPORTS = {
    'SyntheticDistortionDataset': '.dataset',
    'dead_leaves': '.charts',
    'FAMILIES': '.distortions', 'MAX_SEVERITY': '.distortions', 'degrade': '.distortions',
    'quality_target': '.distortions', 'sample_severities': '.distortions',
    'scene_key': '.distortions',
    'SyntheticLadderDataset': '.ladders', 'collate_ladders': '.ladders',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
