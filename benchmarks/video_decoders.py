"""Frame-accurate seeking: PyAV against torchcodec, decord and OpenCV, measured in one run
on this machine.

    python benchmarks/video_decoders.py [--work DIR] [--results benchmarks/results/video_decoders.json]

The script makes its own test videos with the ffmpeg command line (into --work, default
a folder in the temp directory; videos already there are reused). Every frame carries its
own index in its pixels: a row of 24 large black/white blocks, the frame number in binary
(16 bits) and an 8-bit checksum, drawn over a moving, noisy background, so a frame
returned by any decoder can be identified after colour conversion and lossy compression.
Before any decoder is timed, each video is decoded once from start to end with PyAV and
every frame's code is checked against its position in presentation order (the ground
truth: frame N is the N-th frame in presentation order).

For every video and decoder, about 14 frame numbers (the first and last frames, the
frames around the first keyframes, the rest random) are requested in ascending order and
again in a random order, each time with a freshly opened decoder. Each decoder runs in its
own process (a crash is recorded, it does not end the run). Reported: frames exactly
right out of requested, wrong frames with their offset (returned - requested) or errors,
the time to open the file (including any index scan) and the time per requested frame,
and the frame count the decoder reports against the true count.

Then, on a 64 s 1280x720 H.264 video (3 B-frames, keyframe every 250 frames), the time
to get 8 uniformly spread frames with each decoder (open included; the faster of 2 runs)
against OpenCV reading every frame sequentially up to the last one.

Decoders, each allowed every core:
  pyav          PyAV: demux once (no decoding) for every frame's pts and the keyframes;
                for frame N (N-th smallest pts T) seek to the last keyframe with pts <= T,
                decode forward skipping non-reference frames (skip_frame='NONREF' on
                packets whose pts != T) until the frame with pts == T;
                to_ndarray(format='bgr24', interpolation='BICUBIC'). thread_type AUTO.
  pyav-noskip   the same without skipping non-reference frames.
  pyav-batch    pyav given the whole list: sorted, no requested frame skipped, and a later
                frame behind the same keyframe as the previous one decoded on from there
                instead of seeking again (what torchcodec and decord get: the whole list).
  torchcodec    VideoDecoder(path, seek_mode='exact', num_ffmpeg_threads=0).get_frames_at
  decord        VideoReader(path).get_batch(indices)
  opencv-seek   cap.set(CAP_PROP_POS_FRAMES, N); cap.read()
  opencv-seq    cap.read() every frame from the start up to the last requested one.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from machine import cpu_description  # benchmarks/machine.py

HERE = Path(__file__).resolve().parent

BITS = 16
CHECK_BITS = 8
BLOCKS = BITS + CHECK_BITS
BLACK, WHITE = 16, 235
FPS = 30
SHORT_SIZE = (640, 360)
SHORT_FRAMES = 450  # 15 s
LONG_SIZE = (1280, 720)
LONG_FRAMES = 1920  # 64 s
N_REQUEST = 14
LONG_REQUEST = 8
LONG_REPEATS = 2
SEED = 1234

X264_BF = ['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-pix_fmt', 'yuv420p']
# name: (description, extension, ffmpeg output arguments or ('remux', source case))
CASES = {
    'mp4_h264_bframes': ('MP4, H.264, 3 B-frames, keyframe every 250', 'mp4',
                         X264_BF + ['-bf', '3', '-g', '250', '-sc_threshold', '0']),
    'mov_h264_bframes': ('MOV, the same H.264 stream (remuxed)', 'mov', ('remux', 'mp4_h264_bframes')),
    'mkv_h264_bframes': ('MKV, the same H.264 stream (remuxed; no frame count in the header)', 'mkv',
                         ('remux', 'mp4_h264_bframes')),
    'webm_vp9_altref': ('WebM, VP9 (libvpx-vp9, alt-ref frames), keyframe every 150', 'webm',
                        ['-c:v', 'libvpx-vp9', '-b:v', '1M', '-deadline', 'good', '-cpu-used', '5',
                         '-row-mt', '1', '-auto-alt-ref', '1', '-lag-in-frames', '25', '-g', '150',
                         '-pix_fmt', 'yuv420p']),
    'mp4_h264_vfr': ('MP4, H.264 variable frame rate like a phone (frame steps jitter around 33 ms, '
                     'one frame left out every 45), 3 B-frames, keyframe every 90', 'mp4',
                     ['-vf', "settb=1/90000,setpts='floor((N/30+0.004*sin(1.3*N)+floor(N/45)/30)/TB)'",
                      '-fps_mode', 'passthrough', '-enc_time_base', '1/90000',
                      '-video_track_timescale', '90000']
                     + X264_BF + ['-bf', '3', '-g', '90', '-sc_threshold', '0']),
    'mp4_h264_opengop': ('MP4, H.264 open GOP, 3 B-frames, keyframe every 60', 'mp4',
                         X264_BF + ['-bf', '3', '-g', '60', '-sc_threshold', '0',
                                    '-x264-params', 'open-gop=1']),
    'mp4_hevc_opengop': ('MP4, HEVC (libx265) open GOP, keyframe every 60', 'mp4',
                         ['-c:v', 'libx265', '-preset', 'fast', '-crf', '26', '-pix_fmt', 'yuv420p',
                          '-x265-params', 'keyint=60:open-gop=1:log-level=error', '-tag:v', 'hvc1']),
}
LONG_CASE = ('long_720p_h264', 'MP4, H.264 1280x720, 64 s, 3 B-frames, keyframe every 250', 'mp4',
             X264_BF + ['-bf', '3', '-g', '250', '-sc_threshold', '0'])

DECODERS = ['pyav', 'pyav-noskip', 'pyav-batch', 'torchcodec', 'decord', 'opencv-seek', 'opencv-seq']
LONG_DECODERS = ['pyav', 'pyav-noskip', 'pyav-batch', 'torchcodec', 'decord', 'opencv-seek']


# ---------------------------------------------------------------- frames with their index

def checksum(index: int) -> int:
    return ((index * 167 + 89) ^ (index >> 8) ^ 0xA5) & 0xFF


def block_geometry(width: int, height: int):
    size = width // (BLOCKS + 2)
    return size, size, size  # block side, left margin, top


def frame_maker(width: int, height: int, seed: int = SEED):
    import cv2
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 8, (2 * width) // 8, 3), dtype=np.uint8)
    texture = cv2.resize(small, (2 * width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    grain = [rng.integers(-14, 15, (height, width, 3), dtype=np.int16) for _ in range(12)]
    side, left, top = block_geometry(width, height)
    yy, xx = np.mgrid[0:height, 0:width]

    def make(index: int) -> np.ndarray:
        shift = (index * 5) % width
        img = texture[:, shift:shift + width] + grain[index % len(grain)]
        # a moving bright disc, for motion that is not a pure pan
        cx = int(width * (0.5 + 0.35 * np.sin(index / 17.0)))
        cy = int(height * (0.6 + 0.25 * np.cos(index / 23.0)))
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < (height // 8) ** 2] += 60
        img = np.clip(img, 0, 255).astype(np.uint8)
        word = (index << CHECK_BITS) | checksum(index)
        for b in range(BLOCKS):
            bit = (word >> (BLOCKS - 1 - b)) & 1
            x0 = left + b * side
            img[top:top + side, x0:x0 + side] = WHITE if bit else BLACK
        return img

    return make


def read_index(img: np.ndarray):
    """The index a frame carries, or None when its blocks do not read (bad checksum).
    Takes any (H, W, 3) uint8 array, RGB or BGR."""
    img = np.asarray(img)
    height, width = img.shape[:2]
    side, left, top = block_geometry(width, height)
    q = side // 4
    word = 0
    for b in range(BLOCKS):
        x0 = left + b * side
        patch = img[top + q:top + side - q, x0 + q:x0 + side - q]
        word = (word << 1) | int(patch.mean() > (BLACK + WHITE) / 2)
    index, check = word >> CHECK_BITS, word & 0xFF
    return index if checksum(index) == check else None


# ---------------------------------------------------------------- making the videos

def encode(path: Path, size, frames: int, out_args) -> None:
    width, height = size
    make = frame_maker(width, height)
    tmp = path.with_name(path.stem + '.partial' + path.suffix)
    cmd = ['ffmpeg', '-y', '-loglevel', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24',
           '-s', f'{width}x{height}', '-r', str(FPS), '-i', '-'] + list(out_args) + [str(tmp)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for i in range(frames):
        proc.stdin.write(make(i).tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError(f'ffmpeg failed: {" ".join(cmd)}')
    tmp.rename(path)


def make_videos(work: Path, with_long: bool = True):
    work.mkdir(parents=True, exist_ok=True)
    paths = {}
    todo = [(name, desc, ext, args, SHORT_SIZE, SHORT_FRAMES) for name, (desc, ext, args) in CASES.items()]
    if with_long:
        name, desc, ext, args = LONG_CASE
        todo.append((name, desc, ext, args, LONG_SIZE, LONG_FRAMES))
    for name, desc, ext, args, size, frames in todo:
        path = work / f'{name}.{ext}'
        paths[name] = path
        if path.exists():
            continue
        t0 = time.perf_counter()
        if isinstance(args, tuple) and args[0] == 'remux':
            src = paths[args[1]]
            tmp = path.with_name(path.stem + '.partial' + path.suffix)
            subprocess.run(['ffmpeg', '-y', '-loglevel', 'error', '-i', str(src), '-c', 'copy',
                            str(tmp)], check=True)
            tmp.rename(path)
        else:
            encode(path, size, frames, args)
        print(f'made {path.name} in {time.perf_counter() - t0:.1f} s', flush=True)
    return paths


# ---------------------------------------------------------------- ground truth

def ground_truth(path: Path) -> dict:
    """Decode every frame with PyAV, no seeking: each frame's code must equal its
    position in presentation order."""
    import av
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = 'AUTO'
        header_frames = stream.frames
        codes, pts = [], []
        for frame in container.decode(stream):
            codes.append(read_index(frame.to_ndarray(format='rgb24')))
            pts.append(frame.pts)
        tb = stream.time_base
    bad = [i for i, c in enumerate(codes) if c != i]
    steps = np.diff(np.array(pts, dtype=np.float64) * float(tb)) * 1000
    return {'frames': len(codes), 'header_frames': header_frames, 'mismatches': len(bad),
            'first_mismatches': bad[:5], 'pts_sorted': pts == sorted(pts),
            'frame_step_ms': [round(float(steps.min()), 2), round(float(np.median(steps)), 2),
                              round(float(steps.max()), 2)],
            'codec': None}


def probe_index(path: Path) -> dict:
    """Demux only: frames and keyframes (in presentation order) and codec."""
    import av
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts, key = [], []
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            pts.append(packet.pts)
            key.append(packet.is_keyframe)
        order = np.argsort(pts, kind='stable')
        key = np.array(key)[order]
        return {'codec': stream.codec_context.name, 'frames': len(pts),
                'keyframes': [int(i) for i in np.flatnonzero(key)]}


def choose_requests(n: int, keyframes, count: int = N_REQUEST, seed: int = SEED):
    want = {0, 1, n - 2, n - 1}
    for k in [k for k in keyframes if k > 0][:2]:
        want.update({k - 2, k - 1, k, k + 1})
    rng = np.random.default_rng(seed)
    while len(want) < count:
        want.add(int(rng.integers(0, n)))
    ordered = sorted(i for i in want if 0 <= i < n)
    shuffled = list(ordered)
    rng.shuffle(shuffled)
    return ordered, [int(i) for i in shuffled]


# ---------------------------------------------------------------- decoders (worker side)

class PyAVSeeker:
    """The project's method: a demux-only index, seek to the keyframe at or before the
    wanted frame, decode forward. get_batch sorts the frames it is given, decodes every
    one of them (not skipped), and for a later frame behind the same keyframe as the
    previous one goes on decoding from there instead of seeking again."""

    def __init__(self, path, skip_nonref: bool = True):
        import av
        self.container = av.open(str(path))
        self.stream = self.container.streams.video[0]
        self.header_frames = self.stream.frames
        pts, key = [], []
        for packet in self.container.demux(self.stream):
            if packet.pts is None or packet.size == 0:
                continue
            pts.append(packet.pts)
            key.append(packet.is_keyframe)
        pts = np.array(pts, dtype=np.int64)
        self.pts = np.sort(pts)
        self.key_pts = np.sort(pts[np.array(key, dtype=bool)])
        self.skip_nonref = skip_nonref
        self.reuse = False
        self._keep = frozenset()
        self.stream.codec_context.thread_type = 'AUTO'
        self.fallbacks = 0
        self._frames_iter = None
        self._iter_key = None
        self._last_pts = None
        self._target = None

    def __len__(self):
        return len(self.pts)

    def _frames(self):
        ctx = self.stream.codec_context
        for packet in self.container.demux(self.stream):
            if self.skip_nonref:
                keep = packet.pts == self._target or packet.pts in self._keep
                ctx.skip_frame = 'DEFAULT' if keep else 'NONREF'
            yield from packet.decode()

    def _find(self, k: int, target: int, reuse: bool):
        if not (reuse and self._frames_iter is not None and self._iter_key == k
                and target > self._last_pts):
            self.stream.codec_context.skip_frame = 'DEFAULT'
            self.container.seek(int(self.key_pts[k]), stream=self.stream, backward=True)
            self._frames_iter, self._iter_key = self._frames(), k
        self._target = target
        for frame in self._frames_iter:
            if frame.pts == target:
                self._last_pts = target
                return frame
            if frame.pts is not None and frame.pts > target:
                break
        self._frames_iter = None
        return None

    def get(self, n: int) -> np.ndarray:
        target = int(self.pts[n])
        k = int(np.searchsorted(self.key_pts, target, side='right')) - 1
        reuse = self.reuse
        while k >= 0:
            frame = self._find(k, target, reuse)
            if frame is None and reuse:  # retry with a fresh seek before going further back
                self.fallbacks += 1
                reuse = False
                frame = self._find(k, target, reuse)
            if frame is not None:
                return frame.to_ndarray(format='bgr24', interpolation='BICUBIC')
            self.fallbacks += 1  # not found from this keyframe: start one keyframe earlier
            k -= 1
        raise RuntimeError(f'frame {n} (pts {target}) not found')

    def get_batch(self, indices):
        wanted = sorted(set(int(n) for n in indices))
        self._keep = frozenset(int(self.pts[n]) for n in wanted)
        self.reuse = True
        try:
            got = {n: self.get(n) for n in wanted}
        finally:
            self._keep, self.reuse, self._frames_iter = frozenset(), False, None
        return [got[int(n)] for n in indices]

    def close(self):
        self.container.close()


def run_decoder(decoder: str, path: str, orders):
    """Open a fresh decoder for each order of requests; return timings and what came back."""
    out = []
    # imports are not timed
    if decoder.startswith('pyav'):
        import av  # noqa: F401
    elif decoder == 'torchcodec':
        from torchcodec.decoders import VideoDecoder
    elif decoder == 'decord':
        import decord
    else:
        import cv2
    for indices in orders:
        rec = {'returned': [], 'errors': []}
        t0 = time.perf_counter()
        if decoder.startswith('pyav'):
            dec = PyAVSeeker(path, skip_nonref=decoder != 'pyav-noskip')
            rec['count'] = len(dec)
            rec['header_count'] = dec.header_frames
            t1 = time.perf_counter()
            if decoder == 'pyav-batch':
                try:
                    rec['returned'] = [read_index(f) for f in dec.get_batch(indices)]
                except Exception as exc:  # noqa: BLE001
                    rec['returned'] = [None] * len(indices)
                    rec['errors'].append(f'batch: {type(exc).__name__}: {exc}')
            for n in (indices if decoder != 'pyav-batch' else []):
                try:
                    rec['returned'].append(read_index(dec.get(n)))
                except Exception as exc:  # noqa: BLE001
                    rec['returned'].append(None)
                    rec['errors'].append(f'{n}: {type(exc).__name__}: {exc}')
            rec['fallbacks'] = dec.fallbacks
            dec.close()
        elif decoder == 'torchcodec':
            dec = VideoDecoder(path, seek_mode='exact', dimension_order='NHWC', num_ffmpeg_threads=0)
            rec['count'] = int(dec.metadata.num_frames)
            rec['header_count'] = dec.metadata.num_frames_from_header
            t1 = time.perf_counter()
            try:
                batch = dec.get_frames_at(list(indices)).data.numpy()
                rec['returned'] = [read_index(f) for f in batch]
            except Exception as exc:  # noqa: BLE001
                rec['returned'] = [None] * len(indices)
                rec['errors'].append(f'batch: {type(exc).__name__}: {exc}')
        elif decoder == 'decord':
            dec = decord.VideoReader(path, ctx=decord.cpu(0))
            rec['count'] = len(dec)
            t1 = time.perf_counter()
            try:
                batch = dec.get_batch(list(indices)).asnumpy()
                rec['returned'] = [read_index(f) for f in batch]
            except Exception as exc:  # noqa: BLE001
                rec['returned'] = [None] * len(indices)
                rec['errors'].append(f'batch: {type(exc).__name__}: {exc}')
        elif decoder == 'opencv-seek':
            cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
            rec['count'] = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            t1 = time.perf_counter()
            for n in indices:
                cap.set(cv2.CAP_PROP_POS_FRAMES, n)
                ok, img = cap.read()
                rec['returned'].append(read_index(img) if ok else None)
                if not ok:
                    rec['errors'].append(f'{n}: read() returned False')
            cap.release()
        elif decoder == 'opencv-seq':
            cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
            rec['count'] = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            t1 = time.perf_counter()
            wanted, got, i = set(indices), {}, 0
            last = max(indices)
            while i <= last:
                ok, img = cap.read()
                if not ok:
                    break
                if i in wanted:
                    got[i] = read_index(img)
                i += 1
            for n in indices:
                rec['returned'].append(got.get(n))
                if n not in got:
                    rec['errors'].append(f'{n}: stream ended after {i} frames')
            cap.release()
        else:
            raise ValueError(decoder)
        t2 = time.perf_counter()
        rec['open_s'] = t1 - t0
        rec['get_s'] = t2 - t1
        out.append(rec)
    return out


def worker_main(decoder: str, path: str, orders_json: str) -> None:
    orders = json.loads(orders_json)
    try:
        result = {'ok': True, 'runs': run_decoder(decoder, path, orders)}
    except Exception as exc:  # noqa: BLE001
        result = {'ok': False, 'error': f'{type(exc).__name__}: {exc}',
                  'traceback': traceback.format_exc()[-2000:]}
    print('RESULT ' + json.dumps(result), flush=True)


def call_worker(decoder: str, path: Path, orders, timeout: int = 600) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), '--worker', decoder, str(path),
           json.dumps(orders)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {'ok': False, 'error': f'timed out after {timeout} s'}
    for line in proc.stdout.splitlines():
        if line.startswith('RESULT '):
            return json.loads(line[len('RESULT '):])
    tail = (proc.stderr or '').strip().splitlines()[-3:]
    return {'ok': False, 'error': f'worker exited with status {proc.returncode} and no result'
                                  + (f': {" | ".join(tail)}' if tail else '')}


# ---------------------------------------------------------------- summary helpers

def score(indices, returned):
    right, wrong, unreadable = 0, [], []
    for n, code in zip(indices, returned):
        if code == n:
            right += 1
        elif code is None:
            unreadable.append(n)
        else:
            wrong.append((n, code - n))
    return right, wrong, unreadable


def _module_version(name: str) -> str:
    """``name.__version__``, or why it cannot be imported."""
    try:
        return importlib.import_module(name).__version__
    except Exception as exc:  # noqa: BLE001
        return f'not importable: {exc}'


def versions() -> dict:
    out = {'python': platform.python_version()}
    for name in ('av', 'torch', 'decord'):
        out[name] = _module_version(name)
    try:
        import av
        out['av_ffmpeg'] = getattr(av, 'ffmpeg_version_info', None)
    except ImportError:
        out['av_ffmpeg'] = None
    try:
        r = subprocess.run([sys.executable, '-c', 'import torchcodec, torchcodec.decoders;'
                            'print(torchcodec.__version__)'], capture_output=True, text=True, timeout=120)
        out['torchcodec'] = r.stdout.strip() if r.returncode == 0 else \
            'not importable: ' + ' | '.join(r.stderr.strip().splitlines()[-2:])
    except Exception as exc:  # noqa: BLE001
        out['torchcodec'] = f'not importable: {exc}'
    try:
        import cv2
        out['opencv'] = cv2.__version__
        out['opencv_avcodec'] = next((line.split(':', 1)[1].strip() for line in
                                      cv2.getBuildInformation().splitlines()
                                      if 'avcodec:' in line), None)
    except Exception as exc:  # noqa: BLE001
        out['opencv'] = f'not importable: {exc}'
    try:
        first = subprocess.run(['ffmpeg', '-version'], capture_output=True, text=True).stdout.splitlines()[0]
        out['system_ffmpeg'] = first.split(' Copyright')[0]
    except Exception:  # noqa: BLE001
        out['system_ffmpeg'] = None
    return out


def describe_wrong(wrong, unreadable, errors):
    parts = []
    if wrong:
        offs = {}
        for n, off in wrong:
            offs.setdefault(off, []).append(n)
        parts.append('; '.join(f'{off:+d} at {",".join(map(str, ns))}' for off, ns in sorted(offs.items())))
    if unreadable:
        parts.append('unreadable/none at ' + ','.join(map(str, unreadable)))
    if errors:
        parts.append(f'{len(errors)} error(s): {errors[0]}')
    return ' / '.join(parts)


# ---------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work', type=Path, default=Path(tempfile.gettempdir()) / 'iqa_video_decoders')
    parser.add_argument('--results', type=Path, default=HERE / 'results' / 'video_decoders.json')
    parser.add_argument('--text', type=Path, default=None,
                        help='where to write the printed output (default: --results with .txt)')
    parser.add_argument('--no-long', action='store_true', help='skip the 64 s 720p timing')
    args = parser.parse_args()
    text_path = args.text or args.results.with_suffix('.txt')
    lines = []

    def say(s=''):
        print(s, flush=True)
        lines.append(s)

    started = time.perf_counter()
    paths = make_videos(args.work, with_long=not args.no_long)
    info = {'cpu': cpu_description()['name'], 'cores': os.cpu_count(),
            'platform': platform.platform(),
            'versions': versions(), 'date': datetime.date.today().isoformat()}
    say('Frame-accurate seeking: video decoders compared (benchmarks/video_decoders.py)')
    say(f"CPU: {info['cpu']}, {info['cores']} cores; {info['platform']}")
    say('Versions: ' + ', '.join(f'{k} {v}' for k, v in info['versions'].items()))
    say()

    results = {'machine': info, 'videos': {}, 'seek': {}, 'long': None,
               'request_count': N_REQUEST, 'decoders': DECODERS}
    rows = []
    for name, (desc, ext, _) in CASES.items():
        path = paths[name]
        gt = ground_truth(path)
        idx = probe_index(path)
        gt['codec'] = idx['codec']
        gt['keyframes'] = idx['keyframes']
        gt['demuxed_frames'] = idx['frames']
        gt['description'] = desc
        gt['file'] = path.name
        results['videos'][name] = gt
        n = gt['frames']
        ordered, shuffled = choose_requests(n, idx['keyframes'])
        say(f"{name}: {desc}; {gt['codec']}, {n} frames (header says {gt['header_frames']}), "
            f"keyframes at {idx['keyframes'][:8]}{'...' if len(idx['keyframes']) > 8 else ''}, "
            f"frame steps min/median/max {gt['frame_step_ms']} ms; ground truth "
            f"{'OK' if gt['mismatches'] == 0 and n == SHORT_FRAMES else 'MISMATCH ' + str(gt['first_mismatches'])}")
        say(f'  requested (ascending): {ordered}')
        results['seek'][name] = {'requested_ascending': ordered, 'requested_shuffled': shuffled}
        for decoder in DECODERS:
            orders = [ordered] if decoder == 'opencv-seq' else [ordered, shuffled]
            res = call_worker(decoder, path, orders)
            entry = {'ok': res['ok']}
            if not res['ok']:
                entry['error'] = res['error']
                rows.append((name, decoder, '-', 'FAILED: ' + res['error'][:90], '', '', ''))
            else:
                total_req = right_all = 0
                wrong_all, unread_all, errs_all = [], [], []
                open_s, get_s = [], []
                for indices, run, label in zip(orders, res['runs'], ['ascending', 'shuffled']):
                    right, wrong, unread = score(indices, run['returned'])
                    run['right'] = right
                    run['wrong'] = wrong
                    run['unreadable'] = unread
                    entry[label] = run
                    total_req += len(indices)
                    right_all += right
                    wrong_all += wrong
                    unread_all += unread
                    errs_all += run['errors']
                    open_s.append(run['open_s'])
                    get_s.append(run['get_s'] / len(indices))
                entry['right'] = right_all
                entry['requested'] = total_req
                entry['count_reported'] = res['runs'][0].get('count')
                entry['header_count'] = res['runs'][0].get('header_count')
                entry['open_s_mean'] = float(np.mean(open_s))
                entry['ms_per_frame_mean'] = float(np.mean(get_s)) * 1000
                entry['fallbacks'] = sum(r.get('fallbacks', 0) for r in res['runs'])
                count = entry['count_reported']
                rows.append((name, decoder, f'{right_all}/{total_req}',
                             describe_wrong(sorted(set(wrong_all)), sorted(set(unread_all)), errs_all),
                             f"{entry['open_s_mean']:.3f}", f"{entry['ms_per_frame_mean']:.1f}",
                             f'{count}' + ('' if count == n else f' (true {n})')))
            results['seek'][name][decoder] = entry
            print(f'  {decoder}: {rows[-1][2]} {rows[-1][3]}', flush=True)
        say()

    say('Seeking to about 14 frames per video, ascending and shuffled, fresh decoder each '
        '(opencv-seq: ascending only)')
    head = ('video', 'decoder', 'right', 'wrong (offset at frames) / errors', 'open s', 'ms/frame',
            'frame count')
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    widths[3] = min(widths[3], 70)
    fmt = '  '.join(f'{{:{"<" if i in (0, 1, 3) else ">"}{w}}}' for i, w in enumerate(widths))
    say(fmt.format(*head))
    for r in rows:
        cells = list(r)
        if len(cells[3]) > 70:
            cells[3] = cells[3][:67] + '...'
        say(fmt.format(*cells))
    say()
    full = [(r[0], r[1], r[3]) for r in rows if len(r[3]) > 70]
    if full:
        say('Full text of the long cells above:')
        for video, decoder, text in full:
            say(f'  {video} / {decoder}: {text}')
        say()

    if not args.no_long:
        name, desc, ext, _ = LONG_CASE
        path = paths[name]
        idx = probe_index(path)
        n = idx['frames']
        targets = [int(round(x)) for x in np.linspace(0, n - 1, LONG_REQUEST)]
        say(f'{name}: {desc}; {n} frames, keyframes at {idx["keyframes"]}')
        say(f'  {LONG_REQUEST} uniformly spread frames: {targets}')
        long_res = {'description': desc, 'frames': n, 'keyframes': idx['keyframes'], 'targets': targets}
        lrows = []
        for decoder in LONG_DECODERS + ['opencv-seq']:
            repeats = 1 if decoder == 'opencv-seq' else LONG_REPEATS
            res = call_worker(decoder, path, [targets] * repeats)
            if not res['ok']:
                long_res[decoder] = {'ok': False, 'error': res['error']}
                lrows.append((decoder, 'FAILED', '', '', res['error'][:80]))
                continue
            best = min(res['runs'], key=lambda r: r['open_s'] + r['get_s'])
            right, wrong, unread = score(targets, best['returned'])
            long_res[decoder] = {'ok': True, 'open_s': best['open_s'], 'get_s': best['get_s'],
                                 'total_s': best['open_s'] + best['get_s'], 'right': right,
                                 'wrong': wrong, 'unreadable': unread, 'errors': best['errors'],
                                 'runs': [{'open_s': r['open_s'], 'get_s': r['get_s']} for r in res['runs']]}
            lrows.append((decoder, f'{best["open_s"] + best["get_s"]:.2f}', f'{best["open_s"]:.2f}',
                          f'{right}/{len(targets)}',
                          describe_wrong(wrong, unread, best['errors'])))
            print(f'  {decoder}: {lrows[-1]}', flush=True)
        seq = long_res.get('opencv-seq', {})
        for row_i, (decoder, *_rest) in enumerate(lrows):
            entry = long_res[decoder]
            if entry.get('ok') and seq.get('ok'):
                entry['speedup_vs_opencv_seq'] = seq['total_s'] / entry['total_s']
        say(f'Time to get the {LONG_REQUEST} frames (open included; fastest of {LONG_REPEATS} runs, '
            'opencv-seq 1 run)')
        head = ('decoder', 'total s', 'open s', 'right', 'x faster than opencv-seq', 'wrong / errors')
        lr = []
        for decoder, total, opened, right, wrong in lrows:
            sp = long_res[decoder].get('speedup_vs_opencv_seq')
            lr.append((decoder, total, opened, right, f'{sp:.1f}' if sp else '', wrong))
        widths = [max(len(str(r[i])) for r in lr + [head]) for i in range(len(head))]
        fmt = '  '.join(f'{{:{"<" if i in (0, 5) else ">"}{w}}}' for i, w in enumerate(widths))
        say(fmt.format(*head))
        for r in lr:
            say(fmt.format(*r))
        say()
        results['long'] = long_res

    notes = []
    mkv = results['videos'].get('mkv_h264_bframes')
    if mkv:
        notes.append(f"MKV header frame count: {mkv['header_frames']} (true {mkv['frames']}); "
                     + ', '.join(f"{d} reports {results['seek']['mkv_h264_bframes'][d].get('count_reported')}"
                                 for d in DECODERS if results['seek']['mkv_h264_bframes'][d].get('ok')))
    for note in notes:
        say('Note: ' + note)
    say(f'Whole run: {time.perf_counter() - started:.0f} s')
    results['notes'] = notes

    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1, default=str) + '\n')
    text_path.write_text('\n'.join(lines) + '\n')
    print(f'wrote {args.results} and {text_path}')
    return 0


if __name__ == '__main__':
    if len(sys.argv) >= 2 and sys.argv[1] == '--worker':
        worker_main(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(main())
