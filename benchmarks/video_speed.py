"""What scoring a video costs against scoring the same sampled frames as images: whole
``modelscope-iqa score`` processes, measured in one run on this machine.

    python benchmarks/video_speed.py [--work DIR] [--repeats 3] [--quick]
                                     [--results benchmarks/results/video_speed_amd_epyc.json]

The script makes its own videos with the ffmpeg command line (into --work, default a
folder in the temp directory; videos already there are reused): UGC-like content (a slow
camera pan over the committed sample photo, with temporal grain: ``noise=alls=12:allf=t``)
encoded as phones upload it, H.264 ``-preset veryfast``, 3 B-frames, a keyframe every 250
frames (no scene-cut keyframes), yuv420p, at a target bitrate:

  1080p60s   60 s 1920x1080 30 fps H.264, 6 Mb/s
  720p10min  10 min 1280x720 30 fps H.264, 2.5 Mb/s
  720p1h     one hour: 720p10min six times over, joined by the concat demuxer with
             ``-c copy`` (no re-encode)
  hevc1080p  60 s 1920x1080 30 fps HEVC (libx265 veryfast), 4 Mb/s

(``--quick``: 5 s versions, and a 30 s "hour", to try the script.) For each video, three
things are timed as whole processes (wall clock):

  video      ``modelscope-iqa score VIDEO --frames 8 -q --output DIR/x.csv`` (fp32, default
             --workers; ``-v`` too, for its timing line: the seconds until the model was
             ready and of scoring after): the decoder indexes the packets, seeks to the
             keyframe at or before each sampled frame and decodes forward;
  8 PNGs     ``modelscope-iqa score F1.png ... F8.png -q --output DIR/x.csv``, the same 8
             frames (``sample_frames(path, FrameSampling(frames=8))``) written losslessly
             as PNG: what the 8 frames cost without a video around them;
  all frames a Python process decoding every frame of the video sequentially with PyAV
             (``for f in container.decode(video=0): f.to_ndarray(format='bgr24')``, frame
             threads on, as the package's decoder has them): what reading the whole video
             would cost. For the hour it is 720p10min's time x 6 (the same stream six
             times), marked so.

Video and PNG runs are interleaved (video, PNGs, video, PNGs, ... ``--repeats`` pairs) so
that a load from elsewhere falls on both; the medians and their ratio are printed. Then
the video's per-frame scores (``--per-frame --output x.jsonl``) are checked against the
PNGs' scores bit for bit (H.264/HEVC 8-bit frames and lossless PNG: they must be equal).
Goals printed beside the ratios: 10-minute 720p <= 1.3x the PNGs, 60 s 1080p <= 1.4x, the
hour about what the 10-minute video costs. ``--results`` writes everything as JSON.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from machine import cpu_description  # benchmarks/machine.py

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SAMPLE = REPO / 'samples' / 'cups_pristine.jpg'
BASE_SIZE = (2880, 1620)  # the photo the camera pans over: 1.5x 1080p
FPS = 30
FRAMES = 8
CONCAT_TIMES = 6
QUICK_SECONDS = 5
X264 = ['-c:v', 'libx264', '-preset', 'veryfast', '-bf', '3', '-g', '250',
        '-keyint_min', '250', '-sc_threshold', '0', '-pix_fmt', 'yuv420p']
X265 = ['-c:v', 'libx265', '-preset', 'veryfast', '-tag:v', 'hvc1', '-pix_fmt', 'yuv420p',
        '-x265-params', 'keyint=250:min-keyint=250:scenecut=0:bframes=3:log-level=error']


@dataclass(frozen=True)
class VideoCase:
    name: str
    description: str
    seconds: int
    width: int
    height: int
    codec: str  # 'h264' or 'hevc'
    kbps: int
    concat_of: Optional[str] = None  # made by joining this case CONCAT_TIMES times
    goal: Optional[str] = None


def video_cases(quick: bool) -> List[VideoCase]:
    short = QUICK_SECONDS if quick else 60
    ten_min = QUICK_SECONDS if quick else 600
    return [
        VideoCase('1080p60s', f'{short} s 1080p30 H.264', short, 1920, 1080, 'h264', 6000,
                  goal='<= 1.4x'),
        VideoCase('720p10min', f'{ten_min} s 720p30 H.264', ten_min, 1280, 720, 'h264',
                  2500, goal='<= 1.3x'),
        VideoCase('720p1h', f'{ten_min * CONCAT_TIMES} s 720p30 H.264 (720p10min x 6, '
                  'concat -c copy)', ten_min * CONCAT_TIMES, 1280, 720, 'h264', 2500,
                  concat_of='720p10min', goal='~ 720p10min'),
        VideoCase('hevc1080p', f'{short} s 1080p30 HEVC', short, 1920, 1080, 'hevc', 4000),
    ]


def video_file(work: Path, case: VideoCase) -> Path:
    return work / f'{case.name}_{case.seconds}s_{case.codec}_{case.kbps}k.mp4'


def _ffmpeg(arguments: List[str]) -> None:
    command = ['ffmpeg', '-y', '-hide_banner', '-loglevel', 'error', '-nostdin', *arguments]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f'ffmpeg failed ({done.returncode}): {" ".join(command)}\n'
                         f'{done.stderr[-2000:]}')


def _base_photo(work: Path) -> Path:
    """The committed sample photo, enlarged so that a 1080p window can pan over it."""
    path = work / f'pan_base_{BASE_SIZE[0]}x{BASE_SIZE[1]}.png'
    if not path.exists():
        partial = path.with_suffix('.part.png')
        _ffmpeg(['-i', str(SAMPLE), '-vf', f'scale={BASE_SIZE[0]}:{BASE_SIZE[1]}:'
                 'flags=lanczos', str(partial)])
        partial.replace(path)
    return path


def make_video(work: Path, case: VideoCase, cases: Dict[str, VideoCase]) -> float:
    """Makes ``case``'s file unless it exists; the seconds it took (0: reused)."""
    path = video_file(work, case)
    if path.exists():
        return 0.0
    start = time.perf_counter()
    partial = path.with_name(path.stem + '.part.mp4')  # renamed once complete
    if case.concat_of:
        source = video_file(work, cases[case.concat_of])
        listing = work / f'{case.name}.concat.txt'
        listing.write_text(f"file '{source.resolve()}'\n" * CONCAT_TIMES)
        _ffmpeg(['-f', 'concat', '-safe', '0', '-i', str(listing), '-c', 'copy',
                 str(partial)])
    else:
        base = _base_photo(work)
        # The photo (converted to yuv420p once, repeated), a window panning over it on
        # slow sinusoids, temporal grain on every frame.
        source = (f'movie={base},format=yuv420p,loop=loop=-1:size=1:start=0,'
                  f'setpts=N/{FPS}/TB')
        pan = (f"crop={case.width}:{case.height}:x='(iw-ow)/2*(1+sin(t/5))':"
               f"y='(ih-oh)/2*(1+sin(t/7))',noise=alls=12:allf=t")
        codec = X264 if case.codec == 'h264' else X265
        rate = ['-b:v', f'{case.kbps}k', '-maxrate', f'{case.kbps * 3 // 2}k',
                '-bufsize', f'{case.kbps * 2}k']
        _ffmpeg(['-f', 'lavfi', '-i', source, '-t', str(case.seconds), '-vf', pan,
                 '-r', str(FPS), *codec, *rate, '-movflags', '+faststart', str(partial)])
    partial.replace(path)
    return time.perf_counter() - start


def make_videos(work: Path, quick: bool) -> Dict[str, float]:
    work.mkdir(parents=True, exist_ok=True)
    cases = {case.name: case for case in video_cases(quick)}
    return {name: make_video(work, case, cases) for name, case in cases.items()}



# ------------------------------------------------------------------ what is measured
def stream_facts(path: Path) -> Dict[str, object]:
    """Duration, size, codec, frame count and bitrate, as ffprobe reads the file."""
    done = subprocess.run(
        ['ffprobe', '-v', 'error', '-select_streams', 'v:0', '-show_entries',
         'stream=codec_name,width,height,nb_frames,r_frame_rate:format=duration,bit_rate',
         '-of', 'json', str(path)], capture_output=True, text=True, check=True)
    probe = json.loads(done.stdout)
    stream, container = probe['streams'][0], probe['format']
    return {'codec': stream['codec_name'], 'width': stream['width'],
            'height': stream['height'], 'frames': int(stream.get('nb_frames') or 0),
            'duration_s': float(container['duration']),
            'kbps': int(container['bit_rate']) / 1000, 'bytes': path.stat().st_size}


def write_sampled_frames(video: Path, folder: Path) -> List[Dict[str, object]]:
    """The frames ``score --frames 8`` scores, written as PNG (lossless) into ``folder``:
    [{'number', 'time', 'png'}] in order. Reused when written before for this file."""
    import cv2

    from modelscope_iqa.video import FrameSampling, sample_frames
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / 'frames.json'
    stamp = {'video': str(video), 'bytes': video.stat().st_size,
             'mtime': video.stat().st_mtime}
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved['stamp'] == stamp and all(Path(f['png']).exists() for f in saved['frames']):
            return saved['frames']
    frames = []
    for index, frame in enumerate(sample_frames(str(video), FrameSampling(frames=FRAMES))):
        png = folder / f'f{index + 1}_frame{frame.number}.png'
        if not cv2.imwrite(str(png), frame.pixels):
            raise SystemExit(f'cannot write {png}')
        frames.append({'number': frame.number, 'time': frame.time, 'png': str(png)})
    if len(frames) != FRAMES:
        raise SystemExit(f'{video}: {len(frames)} frames sampled, not {FRAMES}')
    manifest.write_text(json.dumps({'stamp': stamp, 'frames': frames}, indent=1))
    return frames


def cli_command() -> List[str]:
    script = Path(sys.executable).parent / 'modelscope-iqa'
    return [str(script)] if script.exists() else [sys.executable, '-m', 'modelscope_iqa']


def timed_score(paths: List[str], output: Path, extra: List[str]) -> Dict[str, float]:
    """One ``modelscope-iqa score`` process: its wall seconds, and from its ``-v`` timing
    line the seconds until the model was ready and the seconds of scoring after it."""
    if output.exists():
        output.unlink()
    command = [*cli_command(), 'score', *paths, *extra, '-q', '-v', '--output', str(output)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f'exit {done.returncode}: {" ".join(command)}\n{done.stderr[-3000:]}')
    timing = next((line for line in done.stderr.splitlines() if 'inputs in' in line), '')
    words = timing.replace('(', ' ').split()
    try:
        scoring = float(words[words.index('in') + 1])
        ready = float(words[-2])
    except (ValueError, IndexError):
        scoring = ready = float('nan')
    return {'wall_s': wall, 'scoring_s': scoring, 'ready_s': ready}


DECODE_ALL = '''
import json, sys, time
import av
start = time.perf_counter()
count = 0
with av.open(sys.argv[1]) as container:
    container.streams.video[0].thread_type = 'AUTO'
    for frame in container.decode(video=0):
        frame.to_ndarray(format='bgr24')
        count += 1
print(json.dumps({'frames': count, 'decode_s': time.perf_counter() - start}))
'''


def decode_all(video: Path) -> Dict[str, float]:
    """A process decoding every frame of ``video`` to BGR: wall seconds, frames."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, '-c', DECODE_ALL, str(video)], capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f'decoding {video} failed:\n{done.stderr[-3000:]}')
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {'wall_s': wall, 'frames': result['frames'], 'decode_s': result['decode_s']}


def read_jsonl(path: Path) -> List[Dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def exactness(video: Path, frames: List[Dict[str, object]], work: Path) -> Dict[str, object]:
    """The video's per-frame scores against the PNGs' scores: equal bit for bit?"""
    video_out, png_out = work / 'check_video.jsonl', work / 'check_pngs.jsonl'
    timed_score([str(video)], video_out, ['--frames', str(FRAMES), '--per-frame'])
    timed_score([f['png'] for f in frames], png_out, [])
    per_frame = {row['frame']: row['score'] for row in read_jsonl(video_out)
                 if row.get('frame') is not None}
    png_score = {os.path.basename(row['path']): row['score'] for row in read_jsonl(png_out)}
    pairs = [(f['number'], per_frame.get(f['number']), png_score.get(os.path.basename(f['png'])))
             for f in frames]
    same_numbers = sorted(per_frame) == [f['number'] for f in frames]
    equal = same_numbers and all(v is not None and v == p for _, v, p in pairs)
    differences = [abs(v - p) for _, v, p in pairs if v is not None and p is not None]
    return {'equal': equal, 'frame_numbers': [f['number'] for f in frames],
            'video_frame_numbers': sorted(per_frame), 'same_frame_numbers': same_numbers,
            'max_abs_diff': max(differences) if differences else None,
            'scores_video': [v for _, v, _ in pairs], 'scores_png': [p for _, _, p in pairs]}


def measure(video: Path, work: Path, repeats: int) -> Dict[str, object]:
    frames = write_sampled_frames(video, work / 'frames' / video.stem)
    pngs = [f['png'] for f in frames]
    output = work / 'scores.csv'
    video_runs, png_runs = [], []
    for _ in range(repeats):  # interleaved: a load from elsewhere falls on both
        video_runs.append(timed_score([str(video)], output, ['--frames', str(FRAMES)]))
        png_runs.append(timed_score(pngs, output, []))

    def median(runs, key):
        return statistics.median(run[key] for run in runs)

    return {'video_s': median(video_runs, 'wall_s'), 'pngs_s': median(png_runs, 'wall_s'),
            'video_scoring_s': median(video_runs, 'scoring_s'),
            'pngs_scoring_s': median(png_runs, 'scoring_s'),
            'video_ready_s': median(video_runs, 'ready_s'),
            'pngs_ready_s': median(png_runs, 'ready_s'),
            'video_runs': video_runs, 'png_runs': png_runs,
            'exactness': exactness(video, frames, work)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work', help='folder for the videos, frames and outputs '
                        '(reused; default: a folder in the temp directory)')
    parser.add_argument('--repeats', type=int, default=3,
                        help='interleaved (video, PNGs) pairs per video')
    parser.add_argument('--quick', action='store_true',
                        help='5 s videos (a 30 s "hour"): to try the script')
    parser.add_argument('--results', help='write the measurements to this JSON file')
    args = parser.parse_args(argv)
    work = Path(args.work or os.path.join(tempfile.gettempdir(), 'modelscope_iqa_video_speed'))
    cases = video_cases(args.quick)
    cpu = cpu_description()
    load_before = os.getloadavg()
    print(f'{cpu["name"]}, {cpu["cores"]} cores ({", ".join(cpu["flags"]) or "no AVX-512"});'
          f' load average {load_before[0]:.2f} (1 min), {load_before[1]:.2f} (5 min) '
          'at the start', flush=True)
    made = make_videos(work, args.quick)
    for case in cases:
        seconds = made[case.name]
        print(f'  {video_file(work, case).name}: '
              + (f'made in {seconds:.0f} s' if seconds else 'reused'), flush=True)
    rows: Dict[str, Dict[str, object]] = {}
    decoded: Dict[str, Dict[str, float]] = {}
    for case in cases:
        video = video_file(work, case)
        row: Dict[str, object] = {'description': case.description, 'file': video.name,
                                  **stream_facts(video)}
        print(f'\n{case.name}: scoring, {args.repeats} interleaved pairs ...', flush=True)
        row.update(measure(video, work, args.repeats))
        if case.concat_of:  # the same stream CONCAT_TIMES times: its decoding x 6
            source = decoded[case.concat_of]
            row['decode_all'] = {key: value * CONCAT_TIMES for key, value in source.items()}
            row['decode_all_scaled_from'] = case.concat_of
        else:
            print(f'{case.name}: decoding every frame ...', flush=True)
            row['decode_all'] = decoded[case.name] = decode_all(video)
        row['ratio'] = row['video_s'] / row['pngs_s']
        rows[case.name] = row
        check = row['exactness']
        print(f'{case.name}: video {row["video_s"]:.2f} s, 8 PNGs {row["pngs_s"]:.2f} s, '
              f'{row["ratio"]:.2f}x; per-frame scores '
              + ('equal bit for bit' if check['equal'] else
                 f'DIFFER (max |d| {check["max_abs_diff"]}, frames '
                 f'{check["video_frame_numbers"]} vs {check["frame_numbers"]})'), flush=True)
    load_after = os.getloadavg()

    hour = next((case for case in cases if case.concat_of), None)
    if hour is not None:
        rows[hour.name]['over_source'] = rows[hour.name]['video_s'] / \
            rows[hour.concat_of]['video_s']
    print(f'\n{cpu["name"]}, {cpu["cores"]} cores ({", ".join(cpu["flags"])}); fp32, '
          f'--workers default, --frames {FRAMES}; median of {args.repeats} interleaved '
          'pairs of whole processes (wall s)\n')
    header = (f'{"video":<10} {"duration":>8} {"size":>9} {"codec":>5} {"Mb/s":>5} '
              f'{"frames":>6} {"video s":>7} {"8 PNG s":>7} {"ratio":>6} {"goal":>11} '
              f'{"decode-all s":>12} {"fps":>5} {"exact":>5}')
    print(header)
    print('-' * len(header))
    for case in cases:
        row = rows[case.name]
        goal = case.goal or '-'
        if case.concat_of:
            goal = f'{row["over_source"]:.2f}x 10min'
        decode = row['decode_all']
        decode_text = f'{decode["wall_s"]:.1f}' + ('*' if case.concat_of else '')
        fps = decode['frames'] / decode['wall_s']
        print(f'{case.name:<10} {row["duration_s"]:7.0f}s {row["width"]}x{row["height"]:<4} '
              f'{row["codec"]:>5} {row["kbps"] / 1000:5.2f} {row["frames"]:6d} '
              f'{row["video_s"]:7.2f} {row["pngs_s"]:7.2f} {row["ratio"]:5.2f}x '
              f'{goal:>11} {decode_text:>12} {fps:5.0f} '
              f'{"yes" if row["exactness"]["equal"] else "NO":>5}')
    print('\nratio: score VIDEO --frames 8 over score of the same 8 frames as PNG files. '
          'goals: 10-minute 720p <= 1.3x, 60 s 1080p <= 1.4x, the hour about what the '
          '10-minute video costs (its "goal" column: hour / 10-minute video seconds).')
    print('decode-all: a process decoding every frame to BGR with PyAV (frame threads), '
          'wall s; fps = frames / that.' + (f' * the hour: {hour.concat_of}\'s x '
                                            f'{CONCAT_TIMES} (the same stream six times).'
                                            if hour else ''))
    print('\nwhere the time goes (medians, s; "ready": process start until the model was '
          'ready, "scoring": from then to the last row, from the -v timing line):')
    for case in cases:
        row = rows[case.name]
        print(f'  {case.name:<10} video: ready {row["video_ready_s"]:5.2f}, scoring '
              f'{row["video_scoring_s"]:5.2f}   8 PNGs: ready {row["pngs_ready_s"]:5.2f}, '
              f'scoring {row["pngs_scoring_s"]:5.2f}   scoring difference '
              f'{row["video_scoring_s"] - row["pngs_scoring_s"]:+5.2f}')
    exact = all(row['exactness']['equal'] for row in rows.values())
    print('\nper-frame scores of every video equal its PNGs\' scores bit for bit: '
          + ('yes' if exact else 'NO'))
    print(f'load average 1 min: {load_before[0]:.2f} at the start, {load_after[0]:.2f} at '
          f'the end (5 min: {load_before[1]:.2f}, {load_after[1]:.2f}; {cpu["cores"]} cores)')
    if args.results:
        record = {'date': datetime.date.today().isoformat(), 'cpu': cpu,
                  'quick': args.quick, 'repeats': args.repeats, 'frames': FRAMES,
                  'precision': 'fp32', 'load_average_start': list(load_before),
                  'load_average_end': list(load_after),
                  'goals': {case.name: case.goal for case in cases if case.goal},
                  'made_s': made, 'all_frames_exact': exact, 'videos': rows}
        Path(args.results).parent.mkdir(parents=True, exist_ok=True)
        Path(args.results).write_text(json.dumps(record, indent=2) + '\n')
        print(f'\nwritten to {args.results}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
