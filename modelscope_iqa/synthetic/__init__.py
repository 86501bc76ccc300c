from .dataset import SyntheticDistortionDataset
from .dead_leaves import dead_leaves
from .distortions import (FAMILIES, MAX_SEVERITY, degrade, quality_target,
                          sample_severities, scene_key)
from .ladders import SyntheticLadderDataset
