"""The demo page, as a ModelScope Studio or Hugging Face Spaces repository runs it
(``python app.py``): the embedded default model, Gradio on the host and port the
platform sets (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT), 127.0.0.1:7860 otherwise.
The same page as ``modelscope-iqa demo``."""
import os

from modelscope_iqa.demo import launch_demo

if __name__ == '__main__':
    launch_demo(host=os.environ.get('GRADIO_SERVER_NAME', '127.0.0.1'),
                port=int(os.environ.get('GRADIO_SERVER_PORT', 7860)))
