from .dataset import SyntheticDistortionDataset
from .dead_leaves import dead_leaves
from .distortions import FAMILIES, MAX_SEVERITY, degrade, quality_target, sample_severities
from .ladders import SyntheticLadderDataset
