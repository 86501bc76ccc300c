from .image_io import ImageInput, Pixels, load_pixels, load_rgb
from .iqa_mos_preprocessor import ImageQualityAssessmentMosPreprocessor, crop_image
from .transforms import network_crop, to_network_input, to_random_training_input
