"""The ModelScope preprocessor: any accepted image input -> ``{'input': (1, 3, H, W)}``."""
import dataclasses
from typing import Any, Dict, Optional, Sequence

from modelscope.preprocessors.base import Preprocessor
from modelscope.preprocessors.builder import PREPROCESSORS
from modelscope.utils.constant import ModeKeys

from ..config import PreprocessConfig
from ..metainfo import PREPROCESSOR_FIELD, Preprocessors
from .crop import network_crop
from .decoding import ImageInput, decode
from .scale import crop_to_float

__all__ = ['ImageQualityAssessmentMosPreprocessor']


@PREPROCESSORS.register_module(PREPROCESSOR_FIELD, module_name=Preprocessors.iqa_mos)
class ImageQualityAssessmentMosPreprocessor(Preprocessor):
    """Decodes an image (see :mod:`.decoding` for the accepted kinds) and builds the
    network input (see :mod:`.crop` and :mod:`.scale`). Options left as None take the values of
    the package's ``configuration.json``.

    Args:
        resize_size: landscape (height, width) the image is resized to cover.
        crop_size: landscape (height, width) of the centre crop fed to the network.
        interpolation: resize filter; only ``'bicubic'``.
        channel_order: ``'BGR'`` (the hub model) or ``'RGB'``.
        mode: ModelScope's preprocessor mode (inference, train, eval).
        model_dir: set by ModelScope when built from a model directory; unused.
    """

    def __init__(self,
                 resize_size: Optional[Sequence[int]] = None,
                 crop_size: Optional[Sequence[int]] = None,
                 interpolation: Optional[str] = None,
                 channel_order: Optional[str] = None,
                 mode: str = ModeKeys.INFERENCE,
                 model_dir: Optional[str] = None):
        super().__init__(mode=mode)
        self.config = PreprocessConfig.from_mapping(
            dict(resize_size=resize_size, crop_size=crop_size,
                 interpolation=interpolation, channel_order=channel_order))

    @classmethod
    def from_config(cls, config: PreprocessConfig) -> 'ImageQualityAssessmentMosPreprocessor':
        return cls(**dataclasses.asdict(config))

    def __call__(self, data: ImageInput) -> Dict[str, Any]:
        return {'input': crop_to_float(network_crop(decode(data), self.config)).unsqueeze(0)}
