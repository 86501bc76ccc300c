"""Videos: exact frames by seeking, sampling by index and by time, the stream facts
(rotation, missing frame counts, 10-bit and HDR), bad files, pooling, timelines, and
videos in the engine, the pipeline, the dataset, evaluate and map. Every video is made
here with PyAV (its wheels bundle FFmpeg and its encoders)."""
import csv
import json
import math
import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from conftest import make_image
from modelscope_iqa.errors import InputError, UnreadableVideoError
from modelscope_iqa.hub import load_model, open_model_folder
from modelscope_iqa.scoring import score_files
from modelscope_iqa.video import FrameSampling, Pooling, VideoReader, pool, sample_frames
from modelscope_iqa.video.pooling import FrameStatistics
from modelscope_iqa.video.sampling import frames_at_rate, uniform_frames
from modelscope_iqa.video.timeline import worst_stretch, write_timeline

WIDTH, HEIGHT = 320, 180
PQ = 16  # AVColorTransferCharacteristic SMPTE ST 2084


def _frame_pixels(index: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """RGB content that moves from frame to frame (so B-frames and skipping matter)."""
    base = make_image(height, width, seed=index % 5)
    shift = (index * 7) % width
    return np.ascontiguousarray(np.roll(base, shift, axis=1))


def write_video(path, frames: int = 60, rate: int = 30, codec: str = 'libx264',
                options=None, pix_fmt: str = 'yuv420p', times=None, rotation: int = 0,
                transfer=None, size=(WIDTH, HEIGHT)):
    """A video of ``frames`` frames; ``times`` (seconds, one a frame) makes its
    timestamps irregular (variable frame rate)."""
    width, height = size
    with av.open(str(path), 'w') as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = dict(options or {})
        if transfer is not None:
            stream.codec_context.color_trc = transfer
        if rotation:
            stream.set_display_rotation(rotation)
        time_base = Fraction(1, 90000)
        if times is not None:
            stream.codec_context.time_base = time_base
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(_frame_pixels(index, height, width),
                                               format='rgb24')
            if times is not None:
                frame.pts, frame.time_base = round(times[index] / time_base), time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def remux(source, target, options=None):
    """``source``'s video stream copied into ``target``'s container, packets unchanged."""
    with av.open(str(source)) as given, \
            av.open(str(target), 'w', options=options or {}) as written:
        stream = given.streams.video[0]
        copy = written.add_stream_from_template(stream)
        for packet in given.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = copy
            written.mux(packet)
    return target


H264_B_FRAMES = {'bf': '3', 'g': '25', 'sc_threshold': '0'}


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('videos')
    made = {
        'h264.mp4': write_video(folder / 'h264.mp4', 90, options=H264_B_FRAMES),
        'open_gop.mp4': write_video(folder / 'open_gop.mp4', 90, options={
            **H264_B_FRAMES, 'x264-params': 'open-gop=1'}),
        'vp9.webm': write_video(folder / 'vp9.webm', 50, codec='libvpx-vp9',
                                options={'g': '20', 'auto-alt-ref': '1', 'lag-in-frames': '10',
                                         'deadline': 'realtime', 'cpu-used': '8'}),
        'phone_vfr.mp4': write_video(folder / 'phone_vfr.mp4', 40, options=H264_B_FRAMES,
                                     times=[0.0] + list(np.cumsum(
                                         [0.02 if i % 3 else 0.07 for i in range(39)]))),
        'portrait.mp4': write_video(folder / 'portrait.mp4', 12, rotation=90),
        'hevc10.mp4': write_video(folder / 'hevc10.mp4', 12, codec='libx265',
                                  pix_fmt='yuv420p10le',
                                  options={'x265-params': 'log-level=error'}),
        'hdr10.mp4': write_video(folder / 'hdr10.mp4', 12, codec='libx265',
                                 pix_fmt='yuv420p10le', transfer=PQ,
                                 options={'x265-params': 'log-level=error'}),
    }
    # The same stream in Matroska, which states no frame count: it comes from the packets
    made['h264.mkv'] = remux(made['h264.mp4'], folder / 'h264.mkv')
    audio = folder / 'audio_only.mp4'
    with av.open(str(audio), 'w') as container:
        stream = container.add_stream('aac', rate=44100)
        samples = np.zeros((1, 1024), np.float32)
        for _ in range(20):
            frame = av.AudioFrame.from_ndarray(samples, format='fltp', layout='mono')
            frame.sample_rate = 44100
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    made['audio_only.mp4'] = audio
    photo = folder / 'photo.mp4'
    Image.fromarray(make_image(120, 160, seed=3)).save(photo, format='PNG')
    made['photo.mp4'] = photo
    return {name: str(path) for name, path in made.items()}


@pytest.fixture(scope='module')
def small_network(small_model_dir):
    folder = open_model_folder(str(small_model_dir))
    return load_model(folder).inference_network('fp32', 'cpu', folder.preprocess_config), \
        folder.preprocess_config


# --- exact frames -----------------------------------------------------------------

@pytest.mark.parametrize('name', ['h264.mp4', 'h264.mkv', 'open_gop.mp4', 'vp9.webm',
                                  'phone_vfr.mp4', 'hdr10.mp4'])
def test_seeking_gives_the_frames_sequential_decoding_gives(videos, name):
    with VideoReader(videos[name]) as reader:
        every = {frame.number: frame for frame in reader.all_frames()}
        count = reader.info.frame_count
        assert sorted(every) == list(range(count))
        rng = np.random.default_rng(0)
        wanted = sorted({0, count - 1, *rng.choice(count, 10, replace=False).tolist()})
        sought = list(reader.frames(wanted))
    assert [frame.number for frame in sought] == wanted
    for frame in sought:
        assert np.array_equal(frame.pixels, every[frame.number].pixels), frame.number
        assert frame.time == every[frame.number].time


def test_a_frame_passed_by_a_seek_is_decoded_from_the_start_in_order(videos, monkeypatch):
    """A keyframe index that sends a seek past the wanted frame (a damaged index):
    that frame comes from decoding the stream's start, and the order holds."""
    with VideoReader(videos['h264.mp4']) as reader:
        every = {frame.number: frame.pixels for frame in reader.all_frames()}
        right = reader._keyframe_before

        def wrong_for_40(number):
            return right(55) if number == 40 else right(number)

        monkeypatch.setattr(reader, '_keyframe_before', wrong_for_40)
        frames = list(reader.frames([10, 40, 70]))
    assert right(55) > reader._timestamps[40]  # the seek lands after frame 40
    assert [frame.number for frame in frames] == [10, 40, 70]
    assert all(np.array_equal(frame.pixels, every[frame.number]) for frame in frames)


def test_seeking_scores_equal_sequential_scores_bit_for_bit(videos, small_network):
    network, preprocess_config = small_network
    path = videos['h264.mp4']
    result, = score_files(network, [path], preprocess_config, frame_count=8)
    with VideoReader(path) as reader:
        every = {frame.number: frame.pixels for frame in reader.all_frames()}
    frames = [every[number] for number in result.frame_numbers]
    as_images = [r.score for r in score_files(network, frames, preprocess_config)]
    assert result.frame_numbers == uniform_frames(90, 8) == [0, 13, 25, 38, 51, 64, 76, 89]
    assert result.frame_scores == as_images
    assert result.score == sum(as_images) / len(as_images)


def test_the_frames_equal_opencvs_sequential_reading(videos):
    """The conversion to 8-bit BGR is OpenCV's (bicubic chroma), 10-bit included."""
    import cv2
    for name in ('h264.mp4', 'hevc10.mp4'):
        capture = cv2.VideoCapture(videos[name])
        opencv = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            opencv.append(frame)
        capture.release()
        with VideoReader(videos[name]) as reader:
            ours = [frame.pixels for frame in reader.all_frames()]
        assert len(ours) == len(opencv) > 0
        assert all(np.array_equal(a, b) for a, b in zip(ours, opencv)), name


def test_an_mp4_index_comes_from_its_tables_not_its_media_data(videos, tmp_path):
    from modelscope_iqa.video.decoder import (_demuxed_packets, _media_data_ranges,
                                              _table_packets, _WithoutMediaData)
    path = videos['h264.mp4']
    with av.open(path) as container:
        stream = container.streams.video[0]
        from_tables = _table_packets(av, path, stream)
        demuxed = _demuxed_packets(av, container, stream)
    assert from_tables == demuxed and len(demuxed) == 90
    assert sum(key for _, key in demuxed) == 4  # a keyframe every 25 frames
    (start, end), = _media_data_ranges(path)
    data = open(path, 'rb').read()
    assert data[start - 4:start] == b'mdat'
    assert int.from_bytes(data[start - 8:start - 4], 'big') == end - start + 8
    read = _WithoutMediaData(path, [(start, end)]).read()
    assert read[:start] == data[:start] and read[end:] == data[end:]
    assert read[start:end] == bytes(end - start)
    # a truncated file (its tables first, as the web writes them): the tables promise
    # more packets than it holds, so it is demuxed instead, and found truncated
    fast_start = remux(path, tmp_path / 'fast_start.mp4', {'movflags': '+faststart'})
    data = fast_start.read_bytes()
    assert _media_data_ranges(str(fast_start))[0][0] > data.index(b'moov')
    cut = tmp_path / 'cut.mp4'
    cut.write_bytes(data[:len(data) * 2 // 3])
    with av.open(str(cut)) as container:
        assert _table_packets(av, str(cut), container.streams.video[0]) is None
    with pytest.raises(UnreadableVideoError, match='truncated or corrupt'):
        list(sample_frames(str(cut)))
    # Matroska has no such tables
    assert _media_data_ranges(videos['h264.mkv']) == []


# --- sampling ---------------------------------------------------------------------

def test_uniform_frames_and_frames_at_a_rate():
    assert uniform_frames(12, 3) == [0, 6, 11]
    assert uniform_frames(20, 8) == [0, 3, 5, 8, 11, 14, 16, 19]
    assert uniform_frames(5, 8) == [0, 1, 2, 3, 4]
    assert uniform_frames(7, 1) == [0]
    thirty = [n / 30 for n in range(95)]
    assert frames_at_rate(thirty, 1.0) == [0, 30, 60, 90]
    ntsc = [n * 1001 / 30000 for n in range(100)]
    assert frames_at_rate(ntsc, 1.0) == [0, 29, 59, 89]
    # variable frame rate: the frame shown at each instant, not every k-th frame
    irregular = [0.0, 0.1, 0.2, 0.9, 1.0, 1.5, 2.2]
    assert frames_at_rate(irregular, 1.0) == [0, 4, 5]
    assert frames_at_rate(irregular, 2.0) == [0, 2, 4, 5]  # 2.0 s still shows frame 5
    with pytest.raises(ValueError, match='frames or fps'):
        FrameSampling(frames=3, fps=1.0)


def test_fps_samples_variable_frame_rate_evenly_in_time(videos):
    with VideoReader(videos['phone_vfr.mp4']) as reader:
        times = reader.frame_times
    frames = list(sample_frames(videos['phone_vfr.mp4'], FrameSampling(fps=2.0)))
    numbers = [frame.number for frame in frames]
    assert numbers == frames_at_rate(times, 2.0)
    # each sampled frame is the one shown at 0, 0.5, 1.0, ... s
    assert len(frames) == math.floor(times[-1] / 0.5) + 1
    for k, frame in enumerate(frames):
        assert frame.time <= k * 0.5 + 1e-9
        if frame.number + 1 < len(times):
            assert times[frame.number + 1] > k * 0.5 + 1e-9
    by_index = [frame.number for frame in sample_frames(videos['phone_vfr.mp4'],
                                                        FrameSampling(frames=5))]
    assert by_index == uniform_frames(40, 5)


# --- what the stream says -----------------------------------------------------------

def test_a_missing_frame_count_comes_from_the_packets(videos):
    with VideoReader(videos['h264.mkv']) as reader:
        assert reader.info.declared_frame_count == 0
        assert reader.info.frame_count == 90
    with VideoReader(videos['vp9.webm']) as reader:
        assert reader.info.declared_frame_count == 0
        assert reader.info.frame_count == 50
        assert reader.info.frame_rate == 30.0


def test_display_rotation_gives_frames_as_shown(videos):
    with VideoReader(videos['portrait.mp4']) as reader:
        info = reader.info
        first = next(reader.frames([0]))
    assert info.rotation == 90 and (info.width, info.height) == (HEIGHT, WIDTH)
    assert first.pixels.shape == (WIDTH, HEIGHT, 3)
    # the stored frame turned 90 degrees counter-clockwise, as FFmpeg's autorotate
    stored = _frame_pixels(0)[:, :, ::-1]
    turned = np.rot90(stored)
    assert np.abs(first.pixels.astype(int) - turned).mean() < 16  # lossy coding only
    assert np.abs(first.pixels.astype(int) - np.rot90(stored, -1)).mean() > 30


def test_ten_bit_hdr_is_reported(videos, small_network):
    with VideoReader(videos['hdr10.mp4']) as reader:
        info = reader.info
    assert info.bit_depth == 10 and info.pixel_format == 'yuv420p10le'
    assert info.transfer == 'smpte2084' and info.hdr
    # scaled to 8 bits, not tone-mapped: the picture encoded, up to lossy coding
    with VideoReader(videos['hdr10.mp4']) as reader:
        first = next(reader.frames([0]))
    assert np.abs(first.pixels.astype(int) - _frame_pixels(0)[:, :, ::-1]).mean() < 16
    network, preprocess_config = small_network
    result, = score_files(network, [videos['hdr10.mp4']], preprocess_config)
    assert result.error is None and result.transfer == 'smpte2084'
    sdr, = score_files(network, [videos['h264.mp4']], preprocess_config)
    assert sdr.transfer is None


def test_files_that_are_not_videos_are_clear_errors(videos, tmp_path):
    cases = {
        'audio_only.mp4': 'no video stream (audio streams only)',
        'photo.mp4': 'an image (png), not a video',
    }
    (tmp_path / 'zeros.mp4').write_bytes(b'\0' * 256)
    for name, message in cases.items():
        with pytest.raises(UnreadableVideoError, match=message.replace('(', r'\(')
                           .replace(')', r'\)')):
            VideoReader(videos[name])
    with pytest.raises(InputError, match='cannot open as a video'):
        VideoReader(str(tmp_path / 'zeros.mp4'))
    with pytest.raises(InputError, match='no such file'):
        VideoReader(str(tmp_path / 'missing.mp4'))


# --- pooling and the timeline ------------------------------------------------------

def test_poolings_with_values():
    scores = [0.9, 0.5, 0.8, 0.2, 0.6]
    assert pool(scores) == sum(scores) / 5
    assert pool(scores, 'min') == 0.2
    assert pool(scores, 'harmonic') == pytest.approx(5 / sum(1 / s for s in scores))
    assert pool(scores, 'p50') == 0.6
    assert pool(scores, 'p10') == pytest.approx(0.2 + 0.4 * (0.5 - 0.2))
    assert pool(scores, 'p100') == 0.9 and pool(scores, 'p0') == 0.2
    assert pool([0.0, 0.5], 'harmonic') == pytest.approx(2 / (1e6 + 2))
    for bad in ('median', 'p', 'p101', 'P10', 'max'):
        with pytest.raises(ValueError, match='pooling must be one of'):
            Pooling(bad)
    statistics = FrameStatistics.of([0, 10, 20, 30, 40], scores)
    assert statistics.minimum == 0.2 and statistics.worst_frame == 30
    assert statistics.std == pytest.approx(float(np.std(scores)))


def test_worst_stretch():
    times = [float(t) for t in range(20)]
    scores = [0.8] * 20
    scores[11], scores[12] = 0.1, 0.3
    stretch = worst_stretch(times, scores)
    assert (stretch.first, stretch.last) == (11, 12) and stretch.mean == pytest.approx(0.2)
    one = worst_stretch([0.0, 1.0, 2.0], [0.5, 0.2, 0.4])
    assert (one.first, one.last, one.start, one.mean) == (1, 1, 1.0, 0.2)


def test_timeline_files(tmp_path):
    csv_path, png_path = write_timeline(str(tmp_path / 'sub' / 'clip'), [0, 30, 60],
                                        [0.0, 1.0, 2.0], [0.7, 0.25, 0.6], 0.25, 'min',
                                        'clip.mp4')
    with open(csv_path, newline='') as f:
        rows = list(csv.DictReader(f))
    assert [(int(r['frame']), float(r['time']), float(r['score'])) for r in rows] == \
        [(0, 0.0, 0.7), (30, 1.0, 0.25), (60, 2.0, 0.6)]
    with Image.open(png_path) as image:
        assert image.size == (1000, 360)
        pixels = np.asarray(image.convert('RGB')).astype(int)
    # the worst stretch is shaded red somewhere in the plot
    assert ((pixels[:, :, 0] > 230) & (pixels[:, :, 1] < 235) & (pixels[:, :, 2] < 235)).any()


# --- the engine -------------------------------------------------------------------

class OddError(Exception):
    """An exception whose constructor does not take its message alone: pickling
    round-trips it into a TypeError."""

    def __init__(self, a, b):
        super().__init__(f'{a}-{b}')


def test_an_unpicklable_worker_error_is_an_error_row(image_files, small_network,
                                                     monkeypatch):
    import modelscope_iqa.scoring.workers as workers
    network, preprocess_config = small_network
    paths = [str(path) for path in image_files[:3]]
    expected = [r.score for r in score_files(network, paths, preprocess_config)]
    real_decode = workers.decode

    def decode(source):
        if isinstance(source, str) and source == paths[1]:
            raise OddError('x', 'y')
        return real_decode(source)

    monkeypatch.setattr(workers, 'decode', decode)  # the forked workers inherit it
    results = list(score_files(network, paths, preprocess_config, workers=2))
    assert [r.path for r in results] == paths
    assert results[1].score is None and 'OddError: x-y' in results[1].error
    assert paths[1] in results[1].error and isinstance(results[1].exception, InputError)
    assert [results[0].score, results[2].score] == [expected[0], expected[2]]


def test_workers_and_chunks_give_the_same_video_results(videos, small_network):
    network, preprocess_config = small_network
    paths = [videos['h264.mp4'], videos['vp9.webm'], videos['audio_only.mp4'],
             videos['h264.mkv']]
    here = list(score_files(network, paths, preprocess_config, frame_count=9))
    forked = list(score_files(network, paths, preprocess_config, frame_count=9, workers=2))
    for a, b in zip(here, forked):
        assert (a.path, a.score, a.frame_numbers, a.frame_scores, a.error) == \
            (b.path, b.score, b.frame_numbers, b.frame_scores, b.error)
    # batches of 3 crops mix frames of different videos: the same frames, the scores
    # within float32 rounding of batched convolutions
    batched = list(score_files(network, paths, preprocess_config, frame_count=9,
                               workers=2, batch_size=3))
    for a, b in zip(here, batched):
        assert (a.path, a.frame_numbers, a.error) == (b.path, b.frame_numbers, b.error)
        assert b.frame_scores == pytest.approx(a.frame_scores, abs=1e-6)
    assert len(here[0].frame_numbers) == 9 and here[2].score is None
    # the same frames in MP4 and Matroska: the same scores
    assert here[0].frame_scores == here[3].frame_scores


@pytest.mark.parametrize('batch_size, workers', [(1, 0), (3, 2)])
def test_progress_reports_count_files_and_frames(image_files, videos, small_network,
                                                 batch_size, workers):
    """Two images and a video of 8 sampled frames: 10 crops scored, 3 files done; each
    report comes after a forward (frames grow by the batch) or after a result the caller
    took (files grow by one), and no result is reported before the caller has it."""
    from modelscope_iqa.scoring import Progress
    network, preprocess_config = small_network
    paths = [str(image_files[0]), videos['h264.mp4'], str(image_files[1])]
    reports, taken = [], []
    for result in score_files(network, paths, preprocess_config, batch_size=batch_size,
                              workers=workers, progress=reports.append):
        assert all(r.files_done <= len(taken) for r in reports)
        taken.append(result)
    assert [len(r.frame_scores) for r in taken] == [0, 8, 0]
    assert {r.files_total for r in reports} == {3}
    assert (reports[-1].files_done, reports[-1].frames_done) == (3, 10)
    steps = [(b.files_done - a.files_done, b.frames_done - a.frames_done)
             for a, b in zip([Progress(0, 3, 0)] + reports, reports)]
    last_batch = 10 % batch_size or batch_size
    assert set(steps) <= {(1, 0), (0, batch_size), (0, last_batch)}, steps
    assert sum(files for files, _ in steps) == 3
    if batch_size == 1:  # one report a forward: one a crop
        assert [frames for _, frames in steps if frames] == [1] * 10
    # without a hook the results are the same (batches of 3 mix files in an order the
    # workers' timing decides: within float32 rounding of batched convolutions)
    plain = list(score_files(network, paths, preprocess_config, batch_size=batch_size,
                             workers=workers))
    assert [r.path for r in plain] == paths
    assert [r.score for r in taken] == pytest.approx([r.score for r in plain],
                                                     rel=0, abs=0 if batch_size == 1 else 1e-6)


def test_a_file_that_fails_is_reported_done(image_files, small_network, tmp_path):
    network, preprocess_config = small_network
    broken = tmp_path / 'broken.jpg'
    broken.write_text('not an image')
    reports = []
    results = list(score_files(network, [str(image_files[0]), str(broken)],
                               preprocess_config, progress=reports.append))
    assert results[1].error is not None
    assert [(r.files_done, r.frames_done) for r in reports] == [(0, 1), (1, 1), (2, 1)]


def test_both_networks_meet_the_engine_protocol(small_network):
    from modelscope_iqa.export import OnnxNetwork
    from modelscope_iqa.scoring import ScoringNetwork
    network, _ = small_network
    assert isinstance(network, ScoringNetwork)
    # an OnnxNetwork without a session: the protocol is a matter of its methods
    assert isinstance(OnnxNetwork.__new__(OnnxNetwork), ScoringNetwork)
    assert not isinstance(object(), ScoringNetwork)


def test_pooling_in_the_engine(videos, small_network):
    network, preprocess_config = small_network
    mean, = score_files(network, [videos['h264.mp4']], preprocess_config)
    for name in ('min', 'harmonic', 'p10'):
        pooled, = score_files(network, [videos['h264.mp4']], preprocess_config,
                              pooling=name)
        assert pooled.frame_scores == mean.frame_scores
        assert pooled.pooling == name and pooled.score == pool(mean.frame_scores, name)
    assert mean.statistics.mean == mean.score
    assert mean.statistics.minimum == min(mean.frame_scores)


# --- the pipeline, the dataset, evaluate ---------------------------------------------

def test_the_pipeline_scores_a_video(videos, small_model_dir, small_network):
    from modelscope.outputs import OutputKeys
    from modelscope.pipelines import pipeline
    from modelscope.utils.constant import Tasks
    network, preprocess_config = small_network
    expected, = score_files(network, [videos['h264.mp4']], preprocess_config,
                            pooling='p10')
    iqa = pipeline(Tasks.image_quality_assessment_mos, model=str(small_model_dir),
                   pooling='p10', workers=0)
    output = iqa(videos['h264.mp4'])
    assert output == {OutputKeys.SCORE: expected.score,
                      'frame_numbers': expected.frame_numbers,
                      'frame_scores': expected.frame_scores}
    listed = iqa([videos['h264.mp4'], videos['h264.mkv']])
    assert listed[0] == output and listed[1]['frame_scores'] == output['frame_scores']
    with pytest.raises(UnreadableVideoError, match='no video stream'):
        iqa(videos['audio_only.mp4'])


def test_dataset_video_rows(videos, small_model_dir, small_network):
    from modelscope.utils.constant import ModeKeys

    from modelscope_iqa.msdatasets import ImageQualityAssessmentMosDataset
    from modelscope_iqa.preprocessors import ImageQualityAssessmentMosPreprocessor
    folder = open_model_folder(str(small_model_dir))
    preprocessor = ImageQualityAssessmentMosPreprocessor.from_config(folder.preprocess_config)
    config = dict(folder.config['dataset'], video_frames=5, video_pooling='min',
                  train_crop_size=[48, 96])
    rows = [{'image:FILE': videos['h264.mp4'], 'mos': 4.0}]
    evaluation = ImageQualityAssessmentMosDataset(rows, config, preprocessor)
    item = evaluation[0]
    assert item['input'].shape == (5, 3, 64, 128) and item['pooling'] == 'min'
    assert item['target'] == pytest.approx(0.8)
    # the model's evaluation forward pools the frames as the engine does
    model = load_model(folder).eval()
    batch = ImageQualityAssessmentMosDataset.collate([item, item])
    output = model(**batch)
    network, preprocess_config = small_network
    expected, = score_files(network, [videos['h264.mp4']], preprocess_config,
                            frame_count=5, pooling='min')
    assert output['pred'].flatten().tolist() == [pytest.approx(expected.score, abs=1e-7)] * 2
    training = ImageQualityAssessmentMosDataset(rows, config, preprocessor,
                                                mode=ModeKeys.TRAIN)
    drawn = training[0]
    assert drawn['input'].shape == (3, 48, 96)
    assert drawn['target'] == pytest.approx(0.8)


@pytest.mark.slow
def test_evaluate_on_video_rows(videos, small_model_dir, tmp_path):
    table = tmp_path / 'labels.csv'
    with open(table, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['image:FILE', 'mos'])
        for name, mos in (('h264.mp4', 4.1), ('vp9.webm', 2.0), ('open_gop.mp4', 3.3)):
            writer.writerow([videos[name], mos])
    report = tmp_path / 'report'
    result = subprocess.run(
        [sys.executable, '-m', 'modelscope_iqa', 'evaluate', '--data', str(table),
         '--model', str(small_model_dir), '--frames', '4', '--pooling', 'harmonic',
         '--report', str(report)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((report / 'metrics.json').read_text())
    assert metrics['video_rows'] == 3 and metrics['video_sampling'] == '4 frames'
    assert metrics['video_pooling'] == 'harmonic'
    scored = tmp_path / 'scores.csv'
    subprocess.run([sys.executable, '-m', 'modelscope_iqa', 'score', videos['h264.mp4'],
                    videos['vp9.webm'], videos['open_gop.mp4'], '--model',
                    str(small_model_dir), '--frames', '4', '--pooling', 'harmonic',
                    '--output', str(scored), '-q'], check=True, timeout=600)
    with open(scored, newline='') as f:
        scores = [float(row['score']) for row in csv.DictReader(f)]
    with open(report / 'predictions.csv', newline='') as f:
        preds = [float(row['pred']) for row in csv.DictReader(f)]
    assert preds == pytest.approx(scores, abs=1e-6)  # float32 predictions
    assert math.isfinite(metrics['srcc'])


@pytest.mark.slow
def test_score_timeline_and_map_on_a_video(videos, small_model_dir, tmp_path):
    timeline = tmp_path / 'timeline'
    output = tmp_path / 'rows.jsonl'
    result = subprocess.run(
        [sys.executable, '-m', 'modelscope_iqa', 'score', videos['h264.mp4'],
         videos['portrait.mp4'], '--model', str(small_model_dir), '--fps', '10',
         '--per-frame', '--pooling', 'p25', '--timeline', str(timeline), '--output',
         str(output), '-q'], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    whole = {row['path']: row for row in rows if row['frame'] is None}
    frames = [row for row in rows if row['frame'] is not None
              and row['path'] == videos['h264.mp4']]
    assert [row['frame'] for row in frames] == list(range(0, 90, 3))
    assert [row['time'] for row in frames] == pytest.approx([n / 30 for n in range(0, 90, 3)])
    video = whole[videos['h264.mp4']]
    frame_scores = [row['score'] for row in frames]
    assert video['frames'] == 30 and video['pooling'] == 'p25'
    assert video['score'] == pool(frame_scores, 'p25')
    assert video['frame_min'] == min(frame_scores)
    assert video['frame_mean'] == pytest.approx(np.mean(frame_scores))
    assert video['frame_std'] == pytest.approx(np.std(frame_scores))
    with open(timeline / 'h264.timeline.csv', newline='') as f:
        plotted = list(csv.DictReader(f))
    assert [float(r['score']) for r in plotted] == frame_scores
    assert (timeline / 'h264.timeline.png').stat().st_size > 10_000
    grid = np.load(timeline / 'h264.worst_frame.map.npy')
    assert grid.ndim == 2 and 0 <= grid.min() <= grid.max() <= 1
    assert (timeline / 'portrait.worst_frame.map.png').exists()
    # map on a video: its worst frame's map, and that frame's number
    maps = tmp_path / 'maps'
    mapped = tmp_path / 'maps.csv'
    result = subprocess.run(
        [sys.executable, '-m', 'modelscope_iqa', 'map', videos['h264.mp4'], '--fps', '10',
         '--model', str(small_model_dir), '--output-dir', str(maps), '--output',
         str(mapped), '-q'], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    with open(mapped, newline='') as f:
        row, = csv.DictReader(f)
    worst = frames[int(np.argmin(frame_scores))]['frame']
    assert int(row['worst_frame']) == worst and row['frames'] == '30'
    assert np.array_equal(np.load(maps / 'h264.map.npy'), grid)


def test_map_command_help_mentions_videos():
    result = subprocess.run([sys.executable, '-m', 'modelscope_iqa', 'map', '--help'],
                            capture_output=True, text=True, timeout=120)
    assert 'worst sampled frame' in result.stdout
