"""Make ``samples/cups_pan.mp4``, the committed sample video: 4 s at 10 frames/s, 1280x720
H.264, panning across ``samples/cups_pristine.jpg``; seconds 2 to 3 are defocus-blurred,
so that its timeline shows where a video is poor.

    python scripts/make_sample_clip.py [--output samples/cups_pan.mp4]
"""
import argparse
from pathlib import Path

import av
import cv2
import numpy as np

SAMPLES = Path(__file__).resolve().parent.parent / 'samples'
SOURCE = SAMPLES / 'cups_pristine.jpg'
SIZE = (1280, 720)
RATE, SECONDS = 10, 4
BLURRED_SECONDS = (2.0, 3.0)
BLUR_SIGMA = 6.0


def frames(photo: np.ndarray):
    """RGB frames: a 1600x900 window moving left to right across the photo."""
    height, width = photo.shape[:2]
    window_w, window_h = 1600, 900
    count = RATE * SECONDS
    for index in range(count):
        left = round((width - window_w) * index / (count - 1))
        top = (height - window_h) // 2
        view = cv2.resize(photo[top:top + window_h, left:left + window_w], SIZE,
                          interpolation=cv2.INTER_AREA)
        if BLURRED_SECONDS[0] <= index / RATE < BLURRED_SECONDS[1]:
            view = cv2.GaussianBlur(view, (0, 0), BLUR_SIGMA)
        yield view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--output', default=str(SAMPLES / 'cups_pan.mp4'))
    args = parser.parse_args()
    photo = cv2.cvtColor(cv2.imread(str(SOURCE)), cv2.COLOR_BGR2RGB)
    with av.open(args.output, 'w') as container:
        stream = container.add_stream('libx264', rate=RATE,
                                      options={'crf': '23', 'preset': 'medium'})
        stream.width, stream.height, stream.pix_fmt = *SIZE, 'yuv420p'
        stream.codec_context.thread_count = 1  # the same bytes on every machine
        for view in frames(photo):
            for packet in stream.encode(av.VideoFrame.from_ndarray(view, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


if __name__ == '__main__':
    main()
