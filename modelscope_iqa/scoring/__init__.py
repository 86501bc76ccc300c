"""Batch scoring of image and video files: :func:`score_files` overlaps decoding in
worker processes with batched forwards and yields results in input order."""
from .engine import FileResult, default_workers, score_files
from .video import is_video, sample_frames
