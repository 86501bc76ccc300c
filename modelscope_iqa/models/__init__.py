from .checkpoint import WEIGHTS_FILE, load_weights, read_state_dict, save_weights
from .iqa_mos_model import ImageQualityAssessmentMosModel
from .network import IqaMosNet
from .inference import EXACT_PRECISION, PRECISION_DTYPES, InferenceNetwork, check_precision
