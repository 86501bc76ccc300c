"""The ModelScope pipeline: image(s) -> ``{OutputKeys.SCORE: float}``."""
from typing import Any, Dict, List, Optional, Union

import torch
from modelscope.outputs import OutputKeys
from modelscope.pipelines.base import Pipeline
from modelscope.pipelines.builder import PIPELINES

from ..hub import load_model, open_model_folder
from ..metainfo import TASK, Pipelines
from ..models import EXACT_PRECISION, ImageQualityAssessmentMosModel
from ..preprocessors import ImageQualityAssessmentMosPreprocessor, decode, network_crop

__all__ = ['ImageQualityAssessmentMosPipeline']


@PIPELINES.register_module(TASK, module_name=Pipelines.iqa_mos)
class ImageQualityAssessmentMosPipeline(Pipeline):
    """Scores images with :class:`ImageQualityAssessmentMosModel`.

    ``pipeline(Tasks.image_quality_assessment_mos, model=DIR)`` builds it when DIR's
    configuration names it. Call it with one image (path, URL, PIL image, BGR array) for
    ``{OutputKeys.SCORE: float}``, or with a list for a list of such dicts;
    ``batch_size=N`` runs N images per network forward (portrait and landscape mix
    freely: every crop is landscape after preprocessing). A list is scored by the
    command line's engine (:func:`modelscope_iqa.scoring.score_files`): images are
    decoded in worker processes while the network runs, with the same scores as one by
    one; the first bad image raises its error, as a single call would.

    Args:
        precision: ``'fp32'`` (default, exact: within 1e-5 of ModelScope's built-in
            pipeline), ``'bf16'`` (CPU or CUDA), ``'fp16'`` (CUDA) or ``'int8'`` (x86
            CPU, calibrated for about 10 s the first time a model is used, cached
            after): faster, within a documented bound
            of fp32 (see :mod:`modelscope_iqa.models.inference`).
        workers: decoding processes for list inputs (0: decode in the calling process;
            default: one per core, at most 4, for lists of two or more images).
    """

    def __init__(self,
                 model: Union[ImageQualityAssessmentMosModel, str],
                 preprocessor: Optional[ImageQualityAssessmentMosPreprocessor] = None,
                 precision: str = EXACT_PRECISION,
                 workers: Optional[int] = None,
                 **kwargs):
        if workers is not None and workers < 0:
            raise ValueError(f'workers must be >= 0, got {workers}')
        folder = None  # the model folder, read once if needed
        if isinstance(model, str):
            folder = open_model_folder(model)
            model = load_model(folder)
        if preprocessor is None:
            folder = folder or open_model_folder(model.model_dir)
            preprocessor = ImageQualityAssessmentMosPreprocessor.from_config(
                folder.preprocess_config)
        super().__init__(model=model, preprocessor=preprocessor, **kwargs)
        self.inference_network = model.inference_network(
            precision, self.device, getattr(preprocessor, 'config', None))
        self.workers = workers

    def __call__(self, input: Any, *args, **kwargs):
        if (isinstance(input, list) and not args and set(kwargs) <= {'batch_size'}
                and isinstance(self.preprocessor, ImageQualityAssessmentMosPreprocessor)):
            return self._score_list(input, kwargs.get('batch_size') or 1)
        return super().__call__(input, *args, **kwargs)

    def _score_list(self, inputs: List[Any], batch_size: int) -> List[Dict[str, float]]:
        from ..scoring import default_workers, score_files
        workers = self.workers
        if workers is None:
            workers = default_workers() if len(inputs) > 1 else 0
        outputs = []
        for result in score_files(self.inference_network, inputs, self.preprocessor.config,
                                  batch_size, workers, videos=False):
            if result.exception is not None:
                raise result.exception
            outputs.append({OutputKeys.SCORE: result.score})
        return outputs

    def preprocess(self, input: Any, **preprocess_params) -> Dict[str, Any]:
        if not isinstance(self.preprocessor, ImageQualityAssessmentMosPreprocessor):
            return self.preprocessor(input)  # someone else's: a float tensor batch
        crop = network_crop(decode(input), self.preprocessor.config)
        return {'input': torch.from_numpy(crop).unsqueeze(0)}

    def forward(self, input: Dict[str, Any], **forward_params) -> Dict[str, Any]:
        return {'output': self.inference_network(input['input'])}

    def postprocess(self, inputs: Dict[str, Any], **post_params) -> Dict[str, Any]:
        return {OutputKeys.SCORE: float(inputs['output'].reshape(-1)[0])}
