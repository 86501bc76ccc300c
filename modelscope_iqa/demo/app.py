"""The demo page (Gradio): drop photos or videos, see each photo's score and quality map
and each video's score, its frame scores over time and its worst frame's map, a table of
all uploads sorted by score (downloadable as CSV), two photos side by side, and the
committed samples as examples.

Offline by design: Gradio's telemetry and version check are switched off, its default
theme uses the fonts it ships, and the page loads nothing from elsewhere (tested in Chromium with
its network log). Every event is also an endpoint of Gradio's client API
(``gradio_client``): ``/score`` takes one file and returns ``{'score', 'error',
'grid', 'model_version', 'model_sha256'}``, for a video (by extension) also
``frame_numbers``, ``frame_times``, ``frame_scores`` and ``pooling`` (None where it
failed), its ``grid`` its worst frame's; see docs/cli.md.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import List, Optional

from ..config import EXACT_PRECISION
from ..errors import MissingExtraError
from ..video import DEFAULT_FRAME_COUNT, DEFAULT_POOLING, is_video
from .scoring import (TABLE_HEADERS, DemoScorer, comparison, example_images,
                      sorted_by_score, table_rows, write_csv)

DEFAULT_PORT = 7860
DEFAULT_HOST = '127.0.0.1'
MAX_UPLOAD_SIZE = '200mb'  # per file; larger uploads are refused by Gradio with a message
ANALYTICS_ENV = 'GRADIO_ANALYTICS_ENABLED'
# The video section's height, in CSS pixels: a video's timeline and worst frame's map
# read without scrolling
VIDEO_PANEL_HEIGHT = 1000
# What /score adds for a video
VIDEO_FIELDS = ('frame_numbers', 'frame_times', 'frame_scores', 'pooling')

INTRO = f"""\
# Image quality: a score and a map

Drop one or many photos. Each gets a **quality score** in [0, 1] (higher is better) from
the model of *Image Quality Assessment for UGC* (ResNet-18 + MLP), and a **quality
map**: local scores over the part of the photo the model looks at (the framed centre;
the dimmed border is not seen). Dark blue marks where the photo looks poor, yellow
where it looks good. Flat, featureless areas (sky, a wall) read lower locally: the
model cannot tell them from blur.

Videos too: {DEFAULT_FRAME_COUNT} frames spread over each are scored, and the video's
score is their {DEFAULT_POOLING}; its frame scores over time and its worst frame's map
are shown.

Runs on this machine; nothing is sent elsewhere.
"""


def _import_gradio():
    try:
        import gradio
    except ImportError as exc:
        raise MissingExtraError('the demo needs Gradio', 'demo') from exc
    return gradio


def build_demo(model=None, precision: str = EXACT_PRECISION, device: str = 'cpu',
               model_note: Optional[str] = None):
    """The page as a ``gradio.Blocks``, scoring with ``model`` (what ``--model``
    takes; default: the embedded default model)."""
    gr = _import_gradio()
    scorer = DemoScorer(model, precision, device)
    # The CSVs offered for download live as long as the process that serves them.
    downloads = tempfile.mkdtemp(prefix='modelscope-iqa-demo-')
    atexit.register(shutil.rmtree, downloads, ignore_errors=True)

    def score_uploads(paths: Optional[List[str]]):
        if not paths:
            return [], None, [], gr.Gallery(value=[], visible=False), ''
        results = scorer.score(paths)
        failed = [r for r in results if r.error is not None]
        noun = 'files' if any(is_video(r.name) for r in results) else 'photos'
        status = f'{len(results) - len(failed)} of {len(results)} {noun} scored.'
        if failed:
            status += ' Could not score: ' + '; '.join(r.error for r in failed)
            gr.Warning(f'{len(failed)} of {len(results)} uploads could not be scored; '
                       'the table says why.')
        handle, csv_path = tempfile.mkstemp(suffix='.csv', prefix='scores-', dir=downloads)
        os.close(handle)
        write_csv(results, csv_path)
        ranked = sorted_by_score(results)
        gallery = [(r.overlay, f'{r.name}: {r.shown_score}') for r in ranked
                   if r.overlay is not None and not r.is_video]
        videos = [(r.video_panel, r.video_caption()) for r in ranked if r.is_video]
        return (table_rows(results), csv_path, gallery,
                gr.Gallery(value=videos, visible=bool(videos)), status)

    def compare(first: Optional[str], second: Optional[str]):
        if not first or not second:
            return 'Choose two photos to compare.', None, None
        result_a, result_b = scorer.score([first, second])
        return comparison(result_a, result_b), result_a.overlay, result_b.overlay

    identity = scorer.mapper.identity

    def score_one(path: Optional[str]) -> dict:
        if not path:
            return {'score': None, 'error': 'no file given', 'grid': None,
                    **identity.fields()}
        result, = scorer.score([path])
        grid = None if result.quality_map is None else result.quality_map.grid.tolist()
        answer = {'score': result.score, 'error': result.error, 'grid': grid,
                  **identity.fields()}
        if is_video(result.name):
            answer.update({key: getattr(result, key) if result.is_video else None
                           for key in VIDEO_FIELDS})
        return answer

    with gr.Blocks(title='modelscope-iqa: image quality', analytics_enabled=False) as demo:
        gr.Markdown(INTRO + f'\nModel: {model_note + ", " if model_note else ""}'
                    f'{identity.describe()}\n')
        with gr.Tab('Score photos and videos'):
            uploads = gr.File(label='Photos or videos: drop one or many',
                              file_count='multiple', type='filepath', elem_id='uploads')
            status = gr.Markdown(elem_id='status')
            table = gr.Dataframe(headers=TABLE_HEADERS, datatype=['str', 'str', 'str'],
                                 interactive=False, label='All uploads, best first',
                                 elem_id='results')
            csv_file = gr.File(label='The table as CSV', elem_id='csv', interactive=False)
            # shown only once a video is scored; one video at a time, drawn large
            videos = gr.Gallery(label='Videos: frame scores over time, the worst frame',
                                preview=True, format='png', elem_id='videos',
                                height=VIDEO_PANEL_HEIGHT, object_fit='contain',
                                visible=False)
            gallery = gr.Gallery(label='Quality maps', columns=2, format='png',
                                 elem_id='maps', height='auto', object_fit='contain')
            uploads.change(score_uploads, [uploads],
                           [table, csv_file, gallery, videos, status],
                           api_name='score_photos')
            # one example per sample (the input takes a list of files)
            gr.Examples([[[path]] for path in example_images()], inputs=[uploads],
                        label='Examples: one photo, pristine and degraded four ways',
                        elem_id='examples')
        with gr.Tab('Compare two photos'):
            with gr.Row():
                photo_a = gr.File(label='Photo A', type='filepath', elem_id='photo-a')
                photo_b = gr.File(label='Photo B', type='filepath', elem_id='photo-b')
            compare_button = gr.Button('Compare', variant='primary', elem_id='compare')
            verdict = gr.Markdown(elem_id='verdict')
            with gr.Row():
                map_a = gr.Image(label='A', type='pil', format='png', interactive=False,
                                 elem_id='map-a')
                map_b = gr.Image(label='B', type='pil', format='png', interactive=False,
                                 elem_id='map-b')
            compare_button.click(compare, [photo_a, photo_b], [verdict, map_a, map_b],
                                 api_name='compare')
        # An endpoint for programs (gradio_client): one file in, JSON out.
        api_file = gr.File(visible=False, type='filepath')
        api_result = gr.JSON(visible=False)
        gr.Button(visible=False).click(score_one, [api_file], [api_result], api_name='score')
    return demo


def launch_demo(model=None, precision: str = EXACT_PRECISION, device: str = 'cpu',
                host: str = DEFAULT_HOST, port: Optional[int] = DEFAULT_PORT,
                model_note: Optional[str] = None, **launch_options):
    """Serve the page on ``host``:``port``; ``launch_options`` go to Gradio's
    ``launch`` (``prevent_thread_lock=True``: return at once while it serves). Returns
    the running page (its ``local_url``; ``close()`` stops it). Telemetry is off: Gradio
    reads its switch from the environment at launch, so it is set here."""
    os.environ[ANALYTICS_ENV] = 'False'
    demo = build_demo(model, precision, device, model_note)
    demo.queue(default_concurrency_limit=1)  # one CPU-bound scoring job at a time
    demo.launch(server_name=host, server_port=port, max_file_size=MAX_UPLOAD_SIZE,
                show_error=True, **launch_options)
    return demo
