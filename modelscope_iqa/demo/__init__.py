"""A page to try the model in: a Gradio app (the ``demo`` extra: ``.venv/bin/pip install ".[demo]"`` in the project folder).

``modelscope-iqa demo`` serves it; ``app.py`` at the repository's top level is the entry
a ModelScope Studio or Hugging Face Spaces repository runs. :mod:`.scoring` holds what
the page does, without Gradio; :mod:`.app` the page itself.
"""
from .scoring import DemoScorer, UploadResult

__all__ = ['DemoScorer', 'UploadResult', 'build_demo', 'launch_demo']


def build_demo(*args, **kwargs):
    """The Gradio page (``gradio.Blocks``); see :func:`.app.build_demo`."""
    from .app import build_demo as build
    return build(*args, **kwargs)


def launch_demo(*args, **kwargs):
    """Build the page and serve it until stopped; see :func:`.app.launch_demo`."""
    from .app import launch_demo as launch
    return launch(*args, **kwargs)
