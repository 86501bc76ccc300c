from .dataset import SyntheticDistortionDataset
from .distortions import FAMILIES, MAX_SEVERITY, degrade, quality_target, sample_severities
