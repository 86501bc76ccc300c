"""Scoring a Ray Data set: :class:`IqaScorer`, the callable class ``Dataset.map_batches``
runs in its actors (the model loaded once per actor), and :func:`score_dataset`, the
one call that applies it.

A column holds, per row, the encoded bytes of an image (a Parquet column of JPEG/PNG
bytes, a WebDataset member read with ``decoder=None``), or a path or http(s) URL of an
image or video. Each row gains the command line's columns: ``score``, ``error`` (a bad
row gets its error; the job goes on), ``frames`` and ``pooling`` for a video, and the
weights' ``model_version`` and ``model_sha256``. Every other column is kept, so a data
set can be filtered by score and keep the rest of its columns.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Union

from ..config import DEFAULT_POOLING, EXACT_PRECISION
from ..identity import IDENTITY_FIELDS
from ..preprocessors.decoding import EncodedImage

if TYPE_CHECKING:
    import pyarrow

# Columns each row gains, in this order.
RESULT_COLUMNS = ('score', 'error', 'frames', 'pooling', *IDENTITY_FIELDS)
# Rows per map_batches batch: one scorer call, so a restarted actor redoes at most this
# many rows.
DEFAULT_ROWS_PER_BATCH = 16
CUDA_BATCH_SIZE = 8


class IqaScorer:
    """Scores the ``column`` of each batch (see the module docstring) as
    ``modelscope-iqa score`` scores files: the same decoding, cropping and network, so
    that fp32 scores equal its scores to the bit.

    Args:
        column: the column to score: image bytes, or paths / URLs of images and videos.
        model: a model folder or hub id (default: the embedded default model).
        precision, device: as the command line's ``--precision`` and ``--device``.
        frames, fps: a video's sampling (``--frames`` / ``--fps``; default 8 frames).
        pooling: how a video's frame scores make its score (``--pooling``).
        batch_size: crops per network forward (default: 1 on CPU, 8 on CUDA).
        name_column: a column that names each row in its error message (a path, a
            WebDataset ``__key__``); default: the column's name and the row's place in
            its batch.
        threads: the forward's threads (default: as Ray starts its workers, one);
            :func:`score_dataset` passes the calling process's count, the one
            ``modelscope-iqa score`` runs with.
    """

    def __init__(self, column: str = 'image', model: Optional[str] = None,
                 precision: str = EXACT_PRECISION, device: str = 'cpu',
                 frames: Optional[int] = None, fps: Optional[float] = None,
                 pooling: str = DEFAULT_POOLING, batch_size: Optional[int] = None,
                 name_column: Optional[str] = None, threads: Optional[int] = None):
        import torch

        from .. import DEFAULT_MODEL_DIR
        from ..hub import load_model, open_model_folder
        from ..models import validate_precision
        from ..video import FrameSampling, Pooling
        if threads is not None:
            torch.set_num_threads(threads)
        self.column, self.name_column = column, name_column
        self.sampling = FrameSampling(frames, fps)
        self.pooling = Pooling(pooling).name
        torch_device = torch.device(device)
        validate_precision(precision, torch_device)
        folder = open_model_folder(model or DEFAULT_MODEL_DIR)
        self.preprocess_config = folder.preprocess_config
        self.identity = folder.identity.fields()
        self.network = load_model(folder).inference_network(precision, torch_device,
                                                            folder.preprocess_config)
        self.batch_size = batch_size or (CUDA_BATCH_SIZE if torch_device.type == 'cuda'
                                         else 1)

    def __call__(self, batch: 'pyarrow.Table') -> 'pyarrow.Table':
        import pyarrow as pa

        from ..scoring import score_files
        values = batch.column(self.column).to_pylist()
        names = (batch.column(self.name_column).to_pylist() if self.name_column else
                 [f'{self.column}[{i}]' for i in range(len(values))])
        sources = [_source(value, str(name)) for value, name in zip(values, names)]
        scorable = [source for source in sources if not isinstance(source, _Refused)]
        results = iter(score_files(self.network, scorable, self.preprocess_config,
                                   self.batch_size, workers=0,
                                   frame_count=self.sampling.frames, fps=self.sampling.fps,
                                   pooling=self.pooling))
        rows = [_refused_row(source) if isinstance(source, _Refused) else
                _result_row(next(results)) for source in sources]
        for field in result_schema():
            cells = ([self.identity[field.name]] * len(rows) if field.name in IDENTITY_FIELDS
                     else [row[field.name] for row in rows])
            if field.name in batch.column_names:  # a scored data set scored again
                batch = batch.drop_columns([field.name])
            batch = batch.append_column(field, pa.array(cells, field.type))
        return batch


def result_schema() -> 'pyarrow.Schema':
    """The Arrow types of :data:`RESULT_COLUMNS` (nulls where a row has none)."""
    import pyarrow as pa
    kinds = {'score': pa.float64(), 'frames': pa.int64()}
    return pa.schema([(column, kinds.get(column, pa.string())) for column in RESULT_COLUMNS])


class _Refused(str):
    """A row's value that is no image: its error message."""


def _source(value, name: str) -> Union[str, EncodedImage, _Refused]:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return EncodedImage(name, bytes(value))
    if isinstance(value, str):
        return value
    if value is None:
        return _Refused(f'{name!r}: no value')
    return _Refused(f'{name!r}: expected image bytes or a path or URL, got '
                    f'{type(value).__name__} (read WebDataset shards with decoder=None; '
                    'ray.data.read_images gives decoded RGB arrays)')


def _result_row(result) -> Dict[str, object]:
    video = result.is_video and result.error is None
    return {'score': result.score, 'error': result.error,
            'frames': len(result.frame_numbers) if video else None,
            'pooling': result.pooling if video else None}


def _refused_row(message: str) -> Dict[str, object]:
    return {'score': None, 'error': str(message), 'frames': None, 'pooling': None}


def score_dataset(dataset, column: str = 'image', *, model: Optional[str] = None,
                  precision: str = EXACT_PRECISION, device: str = 'cpu',
                  frames: Optional[int] = None, fps: Optional[float] = None,
                  pooling: str = DEFAULT_POOLING, batch_size: Optional[int] = None,
                  name_column: Optional[str] = None,
                  rows_per_batch: int = DEFAULT_ROWS_PER_BATCH,
                  concurrency: Optional[int] = None, num_cpus: Optional[float] = None,
                  num_gpus: float = 0, threads: Optional[int] = None):
    """``dataset`` (a ``ray.data.Dataset``) with its ``column`` scored (see
    :class:`IqaScorer` for the scoring options). ``concurrency`` scoring actors (default:
    one), each reserving ``num_cpus`` and ``num_gpus`` (``num_gpus=1`` with
    ``device='cuda'`` puts each actor on a GPU)."""
    import torch
    options = dict(column=column, model=model, precision=precision, device=device,
                   frames=frames, fps=fps, pooling=pooling, batch_size=batch_size,
                   name_column=name_column, threads=threads or torch.get_num_threads())
    remote = {'num_gpus': num_gpus} if num_gpus else {}
    if num_cpus is not None:
        remote['num_cpus'] = num_cpus
    from ray.data import ActorPoolStrategy
    return dataset.map_batches(IqaScorer, fn_constructor_kwargs=options,
                               batch_size=rows_per_batch, batch_format='pyarrow',
                               compute=ActorPoolStrategy(size=concurrency or 1), **remote)
