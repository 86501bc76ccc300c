from .image_io import ImageInput, load_rgb
from .iqa_mos_preprocessor import ImageQualityAssessmentMosPreprocessor
from .transforms import to_network_input, to_random_training_input
