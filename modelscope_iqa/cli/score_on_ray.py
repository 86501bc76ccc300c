"""``modelscope-iqa score --engine ray``: the inputs read as a Ray Data set
(:mod:`.ray_sources`), scored by :func:`modelscope_iqa.ray.score_dataset`, the rows
written as they stream back: one Parquet file (``.parquet``), a folder of Parquet files
written by the Ray workers themselves (an ``--output`` ending in ``/``, local or
object storage), or CSV / JSON Lines as the default engine writes them. A local Ray is
started for the run unless ``--ray-address`` names a running cluster."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from .arguments import EXIT_INPUT_FAILED, EXIT_OK, default_model, usage_error

PARQUET_SUFFIX = '.parquet'
# What the default engine does that this one does not (yet): refused, not ignored.
NOT_ON_RAY = (('resume', '--resume'), ('per_frame', '--per-frame'),
              ('timeline', '--timeline'), ('maps', '--maps'), ('onnx', '--onnx'))


def check_arguments(args: argparse.Namespace) -> None:
    for name, option in NOT_ON_RAY:
        if getattr(args, name, None):
            usage_error(args, f'{option} does not apply to --engine ray')
    output = args.output
    if output is not None and not (output.endswith(('/', PARQUET_SUFFIX))):
        from .results import check_output_path
        try:
            check_output_path(output)
        except ValueError as exc:
            usage_error(args, f'--output: {exc}, .parquet, or a folder ending in /')


def run_on_ray(args: argparse.Namespace, fields: List[str]) -> int:
    """Score ``args.paths`` on Ray; the exit status as the default engine's."""
    import ray

    from ..ray import score_dataset
    from .ray_sources import read_source
    check_arguments(args)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=args.ray_address, include_dashboard=False,
                 logging_level=logging.INFO if args.verbose else logging.ERROR,
                 log_to_driver=args.verbose)
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # rows in input order
        context.enable_progress_bars = not args.quiet and sys.stderr.isatty()
        if not args.verbose:  # Ray Data's plan and timing lines: with -v only
            context.print_on_execution_start = False
            logging.getLogger('ray.data').setLevel(logging.ERROR)
        try:
            source = read_source(args.paths, args.column)
        except ValueError as exc:
            usage_error(args, str(exc))
        scored = score_dataset(
            source.dataset, source.column, model=args.model or default_model(),
            precision=args.precision, device=args.device, frames=args.frames,
            fps=args.fps, pooling=args.pooling, batch_size=args.batch_size,
            name_column=source.name_column, concurrency=args.ray_actors)
        failures = _write(scored, args.output, source.name_column, fields)
    finally:
        if started_here:
            ray.shutdown()
    if failures:
        print(f'modelscope-iqa: {failures} inputs failed; their rows in '
              f'{args.output or "the output"} have an empty score and the reason in the '
              'error column', file=sys.stderr)
    return EXIT_INPUT_FAILED if failures else EXIT_OK


def _write(scored, output, name_column: Optional[str], fields: List[str]) -> int:
    """Write the scored rows to ``output``; the number of rows with an error."""
    if output is not None and output.endswith('/'):
        scored = scored.materialize()  # scored once: written, then its errors counted
        scored.write_parquet(output)
        return sum(len(batch) - batch.column('error').null_count
                   for batch in scored.iter_batches(batch_format='pyarrow'))
    if output is not None and output.endswith(PARQUET_SUFFIX):
        return _write_parquet_file(scored, output)
    return _write_rows(scored, output, name_column, fields)


def _write_parquet_file(scored, output: str) -> int:
    import pyarrow.parquet as pq
    failures = 0
    writer = None
    try:
        for batch in scored.iter_batches(batch_format='pyarrow', batch_size=None):
            if writer is None:
                writer = pq.ParquetWriter(output, batch.schema)
            writer.write_table(batch)
            failures += len(batch) - batch.column('error').null_count
    finally:
        if writer is not None:
            writer.close()
    return failures


def _write_rows(scored, output, name_column: Optional[str], fields: List[str]) -> int:
    from ..ray import RESULT_COLUMNS
    from .results import ResultWriter
    writer = ResultWriter(output, fields)
    failures = 0
    try:
        for batch in scored.iter_batches(batch_format='pyarrow', batch_size=None):
            names = (batch.column(name_column).to_pylist() if name_column else
                     [None] * len(batch))
            results = batch.select(list(RESULT_COLUMNS)).to_pylist()
            for name, row in zip(names, results):
                failures += row['error'] is not None
                writer.write({'path': name, **row})
    finally:
        writer.close()
    return failures
