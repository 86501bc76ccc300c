"""What ``score --engine ray`` reads: each PATH argument becomes a Ray Data set with a
column to score and a column that names each row.

- a Parquet file or a folder of them (``*.parquet``): its rows, every column kept; the
  column to score is ``--column``, else the only binary column, else ``path``;
- a WebDataset shard (``*.tar``, or a folder or glob of them): one row per sample, its
  image member's bytes (by extension) scored, its ``__key__`` naming it;
- folders, globs and files of images and videos: their paths, listed as ``score`` lists
  them;
- an object-storage URL (``s3://``, ``gs://``, ``abfs://``...): the image files under
  it, read through pyarrow's file systems as bytes, each named by its URL.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence

PARQUET_SUFFIX = '.parquet'
TAR_SUFFIX = '.tar'
PATH_COLUMN = 'path'
KEY_COLUMN = '__key__'
REMOTE_SCHEMES = ('s3://', 'gs://', 'gcs://', 'abfs://', 'az://', 'hdfs://')


@dataclass
class RaySource:
    """A data set to score: its ``column`` holds what is scored, ``name_column`` (when
    there is one) names each row in errors, and as ``path`` in CSV and JSON Lines."""
    dataset: object
    column: str
    name_column: Optional[str]


def _files(pattern: str) -> List[str]:
    """Every file a PATH argument names: itself, a glob's matches, a folder's files."""
    from .inputs import walk_files
    found: List[str] = []
    for match in sorted(glob.glob(pattern)) or [pattern]:
        found += list(walk_files(match, keep=lambda path: True)) if os.path.isdir(match) \
            else [match]
    return found


def _kind(pattern: str, files: List[str]) -> str:
    if pattern.startswith(REMOTE_SCHEMES):
        return 'remote'
    if any(path.endswith(PARQUET_SUFFIX) for path in files):
        return 'parquet'
    if any(path.endswith(TAR_SUFFIX) for path in files):
        return 'webdataset'
    return 'files'


def read_source(patterns: Sequence[str], column: Optional[str] = None) -> RaySource:
    """The data set the PATH arguments name; all of one kind (see the module
    docstring), else ``ValueError``."""
    import ray.data

    from .inputs import IMAGE_EXTENSIONS, expand_inputs
    listed = {pattern: [] if pattern.startswith(REMOTE_SCHEMES) else _files(pattern)
              for pattern in patterns}  # the kind from one walk of each folder
    kinds = {_kind(pattern, files) for pattern, files in listed.items()}
    if len(kinds) != 1:
        raise ValueError('give inputs of one kind per run: Parquet files, WebDataset '
                         f'shards, object-storage URLs or image and video files (got '
                         f'{", ".join(sorted(kinds))})')
    kind, = kinds
    if kind == 'parquet':
        dataset = ray.data.read_parquet(_with_suffix(listed, PARQUET_SUFFIX))
        chosen = column or _only_binary_column(dataset) or PATH_COLUMN
        names = PATH_COLUMN if PATH_COLUMN in dataset.columns() else None
        _check_column(dataset, chosen)
        return RaySource(dataset, chosen, names)
    if kind == 'webdataset':
        dataset = ray.data.read_webdataset(_with_suffix(listed, TAR_SUFFIX),
                                            decoder=None)
        chosen = column or _image_member(dataset.columns(), IMAGE_EXTENSIONS)
        _check_column(dataset, chosen)
        return RaySource(dataset, chosen, KEY_COLUMN)
    if kind == 'remote':
        extensions = sorted(e.lstrip('.') for e in IMAGE_EXTENSIONS)
        dataset = ray.data.read_binary_files(list(patterns), include_paths=True,
                                             file_extensions=extensions)
        return RaySource(dataset, 'bytes', PATH_COLUMN)
    paths = expand_inputs(patterns)
    dataset = ray.data.from_items([{PATH_COLUMN: path} for path in paths])
    return RaySource(dataset, PATH_COLUMN, PATH_COLUMN)


def _with_suffix(listed, suffix: str) -> List[str]:
    return [path for files in listed.values() for path in files if path.endswith(suffix)]


def _only_binary_column(dataset) -> Optional[str]:
    import pyarrow as pa
    schema = dataset.schema()
    binary = [name for name, kind in zip(schema.names, schema.types)
              if pa.types.is_binary(kind) or pa.types.is_large_binary(kind)]
    return binary[0] if len(binary) == 1 else None


def _image_member(columns: Sequence[str], extensions) -> str:
    members = [c for c in columns if f'.{c.lower()}' in extensions]
    if len(members) != 1:
        raise ValueError(f'the shards\' samples have {len(members)} image members '
                         f'({", ".join(members) or "none"}); name one with --column')
    return members[0]


def _check_column(dataset, column: str) -> None:
    if column not in dataset.columns():
        raise ValueError(f'no column {column!r} (columns: {", ".join(dataset.columns())}); '
                         'name the one to score with --column')
