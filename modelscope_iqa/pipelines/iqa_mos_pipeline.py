"""The ModelScope pipeline: image(s) -> ``{OutputKeys.SCORE: float}``; a video ->
its pooled score with its sampled frames' numbers and scores."""
import os
from typing import Any, Dict, List, Optional, Union

import torch
from modelscope.outputs import OutputKeys
from modelscope.pipelines.base import Pipeline
from modelscope.pipelines.builder import PIPELINES

from ..hub import load_model, open_model_folder
from ..metainfo import TASK, Pipelines
from ..models import EXACT_PRECISION, ImageQualityAssessmentMosModel
from ..preprocessors import ImageQualityAssessmentMosPreprocessor, decode, network_crop
from ..video import is_video
from ..video.pooling import DEFAULT_POOLING, Pooling

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

    A video file (a path with a video extension, alone or in a list) gives
    ``{OutputKeys.SCORE: pooled, 'frame_numbers': [...], 'frame_scores': [...]}``: its
    sampled frames scored as ``modelscope-iqa score`` scores them (the same frames,
    exactly the same scores).

    Args:
        precision: ``'fp32'`` (default, exact: within 1e-5 of ModelScope's built-in
            pipeline), ``'bf16'`` (CPU or CUDA), ``'fp16'`` (CUDA) or ``'int8'`` (x86
            CPU, calibrated the first time a model is used, cached after): faster, within a documented bound
            of fp32 (see :mod:`modelscope_iqa.models.inference`).
        workers: decoding processes for list inputs (0: decode in the calling process;
            default: one per core, at most 4, for lists of two or more images).
        frames: frames sampled uniformly per video (default 8), or ``fps`` per second.
        pooling: how a video's frame scores make its score: ``mean`` (default),
            ``harmonic``, ``min`` or ``pNN`` (a percentile, e.g. ``p10``).
    """

    def __init__(self,
                 model: Union[ImageQualityAssessmentMosModel, str],
                 preprocessor: Optional[ImageQualityAssessmentMosPreprocessor] = None,
                 precision: str = EXACT_PRECISION,
                 workers: Optional[int] = None,
                 frames: Optional[int] = None,
                 fps: Optional[float] = None,
                 pooling: str = DEFAULT_POOLING,
                 **kwargs):
        if workers is not None and workers < 0:
            raise ValueError(f'workers must be >= 0, got {workers}')
        from ..video import FrameSampling
        FrameSampling(frames, fps)  # refuses a bad sampling before the model loads
        self.frames, self.fps, self.pooling = frames, fps, Pooling(pooling).name
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
        ours = isinstance(self.preprocessor, ImageQualityAssessmentMosPreprocessor)
        if (isinstance(input, list) and not args and set(kwargs) <= {'batch_size'}
                and ours):
            return self._score_list(input, kwargs.get('batch_size') or 1)
        if _is_video_path(input) and ours:
            return self._score_list([input], kwargs.get('batch_size') or 1)[0]
        return super().__call__(input, *args, **kwargs)

    def _score_list(self, inputs: List[Any], batch_size: int) -> List[Dict[str, float]]:
        from ..scoring import default_workers, score_files
        workers = self.workers
        if workers is None:
            workers = default_workers() if len(inputs) > 1 else 0
        outputs = []
        for result in score_files(self.inference_network, inputs, self.preprocessor.config,
                                  batch_size, workers, self.frames, self.fps,
                                  pooling=self.pooling):
            if result.exception is not None:
                raise result.exception
            output = {OutputKeys.SCORE: result.score}
            if result.is_video:
                output.update(frame_numbers=result.frame_numbers,
                              frame_scores=result.frame_scores)
            outputs.append(output)
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


def _is_video_path(input: Any) -> bool:
    return isinstance(input, (str, os.PathLike)) and is_video(os.fspath(input))
