"""The task dataset: rows with an image (or video) file and a MOS -> network input and
scaled MOS."""
import math
import os
from typing import Any, Dict, Mapping, Optional, Union

import numpy as np
import torch
from modelscope.msdatasets.dataset_cls.custom_datasets import (
    CUSTOM_DATASETS, TorchCustomDataset)
from modelscope.utils.constant import ModeKeys

from ..config import DatasetConfig
from ..errors import DatasetError, UnreadableVideoError
from ..metainfo import TASK, CustomDatasets
from ..preprocessors import (ImageQualityAssessmentMosPreprocessor, crop_to_float, decode,
                             network_crop)
from ..video import FrameSampling, VideoReader, is_video
from ..video.pooling import DEFAULT_POOLING, Pooling

__all__ = ['ImageQualityAssessmentMosDataset']


@CUSTOM_DATASETS.register_module(TASK, module_name=CustomDatasets.iqa_mos)
class ImageQualityAssessmentMosDataset(TorchCustomDataset):
    """Wraps any indexable table of rows (a Hugging Face ``datasets.Dataset``, an
    ``MsDataset``'s ``_hf_ds``, a list of dicts) with an image column (default
    ``image:FILE``) and a MOS column (default ``mos``).

    Items are ``{'input': (3, H, W) tensor, 'target': mos * mos_scale}``; the default
    scale 0.2 maps a 1-5 MOS into [0.2, 1], as ModelScope's dataset for the card does.
    In evaluation and inference modes the input is the preprocessor's centre crop; in
    training mode it is a random ``train_crop_size`` crop of the same resized image,
    mirrored half of the time (the CenseoQoE recipe).

    A row whose file is a video (by extension; the KoNViD-1k, YouTube-UGC and LIVE-VQC
    layout: a table of video files and MOS) is sampled as the configuration's
    ``video_frames`` / ``video_fps`` say (default 8 frames, as the command line). In
    evaluation its item's input is (K, 3, H, W), the K sampled frames' crops, with
    ``'pooling'``: the model scores each frame and pools them into the video's score, as
    ``modelscope-iqa score`` does (:meth:`collate` batches such items). In training each
    draw is one sampled frame, chosen at random, with the video's MOS (the card's
    validation protocol: one frame a video, scored against the video's MOS).

    Args:
        dataset: the rows.
        opt: the configuration's ``dataset`` section (column names, ``mos_scale``) or
            a :class:`~modelscope_iqa.config.DatasetConfig`; None takes the package
            defaults.
        preprocessor: image -> network input; None builds the default one.
        mode: ModelScope's mode key (train, eval, inference).
    """

    def __init__(self,
                 dataset,
                 opt: Union[Mapping[str, Any], DatasetConfig, None] = None,
                 preprocessor: Optional[ImageQualityAssessmentMosPreprocessor] = None,
                 mode: str = ModeKeys.EVAL):
        self.dataset = dataset
        self.config = opt if isinstance(opt, DatasetConfig) else DatasetConfig.from_mapping(opt)
        self.preprocessor = preprocessor or ImageQualityAssessmentMosPreprocessor()
        self.mode = mode
        self._rng = None
        self._rng_pid = None
        self.sampling = FrameSampling(self.config.video_frames, self.config.video_fps)
        self.pooling = Pooling(self.config.video_pooling or DEFAULT_POOLING).name

    def _training_rng(self) -> np.random.Generator:
        # One generator per process: DataLoader workers are forked with distinct torch
        # seeds (ModelScope seeds them from the trainer's seed), so crops are
        # reproducible and differ between workers and epochs.
        if self._rng_pid != os.getpid():
            self._rng = np.random.default_rng(torch.initial_seed() % 2**63)
            self._rng_pid = os.getpid()
        return self._rng

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        row = self.dataset[index]
        image_column, mos_column = self.config.image_column, self.config.mos_column
        try:
            image, raw_mos = row[image_column], row[mos_column]
        except KeyError as exc:
            raise DatasetError(f'row {index}: missing column {exc}; '
                               f'expected {image_column!r} and {mos_column!r}') from None
        try:
            mos = float(raw_mos)
        except (TypeError, ValueError):
            mos = math.nan
        if not math.isfinite(mos):
            raise DatasetError(f'row {index} ({image!r}): MOS {raw_mos!r} is not a number')
        target = self.config.target(mos)
        if isinstance(image, (str, os.PathLike)) and is_video(image):
            return self._video_item(os.fspath(image), target)
        if self.mode == ModeKeys.TRAIN:
            network_input = crop_to_float(network_crop(
                decode(image), self.preprocessor.config, self._training_rng(),
                self.config.train_crop_size))
        else:
            network_input = self.preprocessor(image)['input'].squeeze(0)
        return {'input': network_input, 'target': target}

    def _video_item(self, path: str, target: float) -> Dict[str, Any]:
        with VideoReader(path) as reader:
            if self.mode == ModeKeys.TRAIN:
                numbers = self.sampling.frame_numbers(reader.frame_count,
                                                      reader.frame_times)
                if not numbers:
                    raise UnreadableVideoError(f'{path!r}: the video has no frames')
                rng = self._training_rng()
                number = int(rng.choice(numbers))
                frame = next(reader.frames([number]), None)
                if frame is None:
                    raise UnreadableVideoError(f'{path!r}: frame {number} does not decode')
                crop = network_crop(decode(frame.pixels), self.preprocessor.config, rng,
                                    self.config.train_crop_size)
                return {'input': crop_to_float(crop), 'target': target}
            crops = [self.preprocessor(frame.pixels)['input'].squeeze(0)
                     for frame in reader.sample(self.sampling)]
        return {'input': torch.stack(crops), 'target': target, 'pooling': self.pooling}

    @staticmethod
    def collate(items):
        """Batches items of images and videos together: ``input`` is a stacked tensor
        when every item's has one shape, else the list of them (the model scores each
        video's frames and pools them); ``pooling`` is the videos' pooling."""
        inputs = [item['input'] for item in items]
        same_shape = all(tensor.shape == inputs[0].shape for tensor in inputs)
        batch = {'input': torch.stack(inputs) if same_shape else inputs,
                 'target': torch.tensor([float(item['target']) for item in items],
                                       dtype=torch.float64)}  # as default_collate
        poolings = {item['pooling'] for item in items if 'pooling' in item}
        if poolings:
            batch['pooling'] = poolings.pop()
        return batch
