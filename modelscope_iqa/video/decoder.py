"""Decoding exactly the sampled frames of a video, with PyAV (its wheels bundle FFmpeg).

:class:`VideoReader` first reads the video stream's packets without decoding them (a
demuxing pass, about a hundredth of decoding's cost): their presentation timestamps give
every frame's number (frame ``n`` is the ``n``-th in presentation order) and time, and
which frames are keyframes. Each wanted frame is then decoded by seeking to the last
keyframe shown at or before it and decoding forward, skipping the frames no other frame
refers to (FFmpeg's ``skip_frame = NONREF``: they change no other frame), until the
frame whose timestamp is the wanted one. The frame returned is identified by its
timestamp, never by counting after a seek, so it is exactly frame ``n``; a frame not
reached so (a keyframe whose leading frames need the group before it, a damaged index) is
decoded again from the start of the stream. The cost follows the number of sampled
frames (and the keyframe interval), not the video's length. docs/video_decoders.md
compares this with torchcodec, decord and OpenCV.

Pixels are converted to 8-bit BGR by FFmpeg's libswscale with bicubic chroma
upsampling, the conversion OpenCV's ``VideoCapture`` makes (so its frames are the same,
bit for bit, 10-bit video included), then turned as the video is shown (its display
matrix: phone video stored landscape plays portrait). 10- and 12-bit samples are scaled
to 8 bits and rounded; no tone mapping is applied to HDR (PQ or HLG) video, whose frames
are scored as they decode: :attr:`VideoStreamInfo.transfer` names the transfer
characteristic so that a caller can say so.
"""
from __future__ import annotations

import bisect
import functools
import os
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Deque, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from ..errors import UnreadableVideoError
from .sampling import FrameSampling

# FFmpeg's AVColorTransferCharacteristic values with a name (ITU-T H.273).
TRANSFER_NAMES = {1: 'bt709', 4: 'gamma22', 5: 'gamma28', 6: 'smpte170m', 7: 'smpte240m',
                  8: 'linear', 9: 'log100', 10: 'log316', 11: 'iec61966-2-4',
                  12: 'bt1361e', 13: 'iec61966-2-1', 14: 'bt2020-10', 15: 'bt2020-12',
                  16: 'smpte2084', 17: 'smpte428', 18: 'arib-std-b67'}
HDR_TRANSFERS = frozenset({'smpte2084', 'arib-std-b67'})  # PQ and HLG
# FFmpeg's demuxers of single images: an image file named like a video opens as one.
IMAGE_FORMAT_SUFFIX = '_pipe'
IMAGE_FORMATS = frozenset({'image2', 'webp_pipe'})
MP4_FORMAT = 'mov,mp4,m4a,3gp,3g2,mj2'  # FFmpeg's demuxer of MP4, MOV and their kin
BOX_HEADER = 8
RIGHT_ANGLE = 90


@dataclass(frozen=True)
class VideoStreamInfo:
    """What a video's stream says of itself, and what its packets show.

    ``frame_count`` is the number of frames found in the stream; ``declared_frame_count``
    the container header's (0 when it gives none, as Matroska and WebM do). ``width`` and
    ``height`` are as the video is shown, after ``rotation`` (degrees counter-clockwise,
    from the display matrix) is applied. ``transfer`` names the transfer characteristic (``'smpte2084'``: PQ,
    ``'arib-std-b67'``: HLG), None when the stream leaves it unspecified."""
    path: str
    frame_count: int
    declared_frame_count: int
    frame_rate: float
    duration: float
    width: int
    height: int
    rotation: int
    pixel_format: str
    bit_depth: int
    transfer: Optional[str]

    @property
    def hdr(self) -> bool:
        """Whether the transfer characteristic is an HDR one (PQ or HLG): its frames are
        scored untone-mapped."""
        return self.transfer in HDR_TRANSFERS


@dataclass(frozen=True)
class SampledFrame:
    """Frame ``number`` (in presentation order, from 0), shown ``time`` seconds after
    the first frame; ``pixels`` uint8 (H, W, 3) BGR, as the video is shown."""
    number: int
    time: float
    pixels: np.ndarray


class VideoReader:
    """An opened video file: its frames' count (:attr:`frame_count`; the header's,
    :attr:`declared_frame_count`), times (:attr:`frame_times`) and rate, its transfer
    characteristic, the stream's :attr:`info` (on first use), and decoding of chosen
    frames (:meth:`frames`, :meth:`sample`) or of all (:meth:`all_frames`). Raises
    :class:`~modelscope_iqa.errors.UnreadableVideoError` for a file that is missing or
    not a video (an image named like one, an audio-only file). Use as a context manager,
    or :meth:`close` it."""

    def __init__(self, path: str):
        import av
        self.path = os.fspath(path)
        self._av = av
        if os.path.isdir(self.path):
            raise UnreadableVideoError(f'{self.path!r}: is a directory')
        if not os.path.exists(self.path):
            raise UnreadableVideoError(f'{self.path!r}: no such file')
        try:
            self._container = av.open(self.path, metadata_errors='ignore')
        except (av.FFmpegError, UnicodeDecodeError) as exc:
            raise UnreadableVideoError(f'{self.path!r}: cannot open as a video '
                                       f'({_reason(exc)})') from None
        try:
            self._stream = self._video_stream()
            self._index_packets()
        except BaseException:
            self._container.close()
            raise

    def _video_stream(self):
        container = self._container
        format_name = container.format.name
        if format_name in IMAGE_FORMATS or format_name.endswith(IMAGE_FORMAT_SUFFIX):
            kind = format_name.removesuffix(IMAGE_FORMAT_SUFFIX)
            raise UnreadableVideoError(f'{self.path!r}: an image ({kind}), not a video; '
                                       'give it an image extension to score it as one')
        if not container.streams.video:
            others = sorted({stream.type for stream in container.streams}) or ['no']
            raise UnreadableVideoError(f'{self.path!r}: no video stream ({", ".join(others)}'
                                       ' streams only)')
        stream = container.streams.video[0]
        stream.thread_type = 'AUTO'
        return stream

    def _index_packets(self) -> None:
        """Every frame's timestamp (presentation order) and the keyframes', from one
        demuxing pass. An MP4 or MOV file's pass reads its media data as zeros: the
        timestamps come from its tables and the keyframes from its index, so the frames'
        bytes are not read from disk (:func:`_table_packets`)."""
        stream = self._stream
        packets = None
        if self._container.format.name == MP4_FORMAT:
            packets = _table_packets(self._av, self.path, stream)
        if packets is None:
            packets = _demuxed_packets(self._av, self._container, stream)
        timestamps = [timestamp for timestamp, _ in packets]
        keyframes = [timestamp for timestamp, key in packets if key]
        # Packets without timestamps (some raw and AVI streams): frames are numbered in
        # the order they decode, and read sequentially.
        self._sequential = any(timestamp is None for timestamp in timestamps)
        self._timestamps = [] if self._sequential else sorted(set(timestamps))
        self._keyframes = [] if self._sequential else sorted(set(keyframes))
        self._number_of = {pts: number for number, pts in enumerate(self._timestamps)}
        # distinct timestamps: a frame each (packets repeating one add no frame)
        frame_count = len(timestamps) if self._sequential else len(self._timestamps)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        frame_rate = float(rate) if rate else 0.0
        time_base = stream.time_base or Fraction(1, 1)
        if self._sequential:
            self.frame_times = [number / frame_rate if frame_rate else 0.0
                                for number in range(frame_count)]
        else:
            first = self._timestamps[0] if self._timestamps else 0
            self.frame_times = [float((pts - first) * time_base) for pts in self._timestamps]
        self.frame_count = frame_count
        self.declared_frame_count = stream.frames or 0
        self.frame_rate = frame_rate
        self.transfer = TRANSFER_NAMES.get(stream.codec_context.color_trc)

    @property
    def hdr_transfer(self) -> Optional[str]:
        """The transfer characteristic when it is an HDR one (PQ or HLG), else None."""
        return self.transfer if self.transfer in HDR_TRANSFERS else None

    @functools.cached_property
    def info(self) -> VideoStreamInfo:
        """The stream's facts (on first use: its rotation needs a frame decoded)."""
        context = self._stream.codec_context
        rotation = self._first_frame_rotation()
        width, height = context.width, context.height
        if rotation % (2 * RIGHT_ANGLE):
            width, height = height, width
        pixel_format = context.format.name if context.format else 'unknown'
        duration = (self.frame_times[-1] + 1 / self.frame_rate) if self.frame_times and \
            self.frame_rate else 0.0
        return VideoStreamInfo(
            path=self.path, frame_count=self.frame_count,
            declared_frame_count=self.declared_frame_count, frame_rate=self.frame_rate,
            duration=duration, width=width, height=height, rotation=rotation,
            pixel_format=pixel_format, bit_depth=_bit_depth(context),
            transfer=self.transfer)

    def _first_frame_rotation(self) -> int:
        """The display rotation (degrees counter-clockwise) of the first frame that
        decodes, read through a container of its own (a decoding run of this reader
        keeps its place); 0 when none does (the error is reported when frames are asked
        for)."""
        av = self._av
        try:
            with av.open(self.path, metadata_errors='ignore') as container:
                stream = container.streams.video[
                    list(self._container.streams.video).index(self._stream)]
                for frame in container.decode(stream):
                    return _quarter_turns(frame) * RIGHT_ANGLE
        except av.FFmpegError:
            pass
        return 0

    # --- decoding -------------------------------------------------------------------

    def frames(self, numbers: Iterable[int]) -> Iterator[SampledFrame]:
        """The frames ``numbers``, each decoded exactly, in ascending order; numbers
        that do not decode (damaged data, past the frames found) are left out: compare
        the numbers yielded with those asked for."""
        wanted = sorted({number for number in numbers if 0 <= number < self.frame_count})
        if self._sequential:
            yield from self._sequential_frames(wanted)
            return
        for number, frame in self._seek_and_decode(wanted):
            yield self._sampled(number, frame)

    def sample(self, sampling: FrameSampling = FrameSampling()) -> Iterator[SampledFrame]:
        """The frames ``sampling`` chooses, in order. Raises
        :class:`~modelscope_iqa.errors.UnreadableVideoError` when no sampled frame
        decodes, and, after the frames that did, when some did not (a truncated or
        damaged file: the message lists those decoded; no score is given from part of a
        video)."""
        path = self.path
        # A header that counts more frames than the file holds: a truncated file. Its
        # frames are sampled over the count it claims, and the missing ones reported.
        claimed = max(self.frame_count, self.declared_frame_count)
        wanted = sampling.frame_numbers(claimed, self.frame_times)
        if not wanted:
            raise UnreadableVideoError(f'{path!r}: the video has no frames')
        decoded = []
        for frame in self.frames(wanted):
            decoded.append(frame.number)
            yield frame
        if not decoded:
            raise UnreadableVideoError(
                f'{path!r}: no decodable frame (the video reports {claimed} frames; '
                f'frame {wanted[0]} did not decode)')
        if len(decoded) < len(wanted):
            first_missing = min(set(wanted) - set(decoded))
            raise UnreadableVideoError(
                f'{path!r}: truncated or corrupt: decoded {len(decoded)} of the '
                f'{len(wanted)} sampled frames (frames {decoded}; of {claimed} reported, '
                f'frame {first_missing} did not decode); not scored')

    def all_frames(self) -> Iterator[SampledFrame]:
        """Every frame, decoded sequentially from the start (the reference that seeking
        must equal; slow for long videos)."""
        if self._sequential:
            yield from self._sequential_frames(None)
            return
        for number, frame in self._decode_from(None, None, skip_others=False):
            yield self._sampled(number, frame)

    def _seek_and_decode(self, wanted: List[int]) -> Iterator[Tuple[int, object]]:
        """Frames ``wanted`` (ascending), each reached from the last keyframe at or
        before it; a decoding run goes on to the next wanted frame unless a keyframe
        lies between (then it seeks). A frame passed without appearing is decoded again
        from the stream's start, before any later frame: the order holds."""
        pending: Deque[int] = deque(wanted)
        while pending:
            passed = None
            for number, frame in self._decode_from(self._keyframe_before(pending[0]),
                                                   set(pending), skip_others=True):
                if number > pending[0]:
                    passed = pending[0]
                    break
                if number == pending[0]:
                    pending.popleft()
                    yield number, frame
                    if not pending or self._keyframe_before(pending[0]) > \
                            self._timestamps[number]:
                        break  # done, or a keyframe nearer the next wanted frame: seek
            else:  # the stream ended first: the rest, once more from the start
                yield from self._decode_from(None, set(pending), skip_others=False)
                return
            if passed is not None:
                pending.popleft()
                for found in self._decode_from(None, {passed}, skip_others=False):
                    yield found
                    break

    def _decode_from(self, keyframe: Optional[int], wanted: Optional[set],
                     skip_others: bool) -> Iterator[Tuple[int, object]]:
        """Decode from the keyframe with timestamp ``keyframe`` (None: the stream's
        start), yielding ``(number, frame)`` for the frames ``wanted`` (None: all).
        With ``skip_others``, frames no other refers to are not decoded unless wanted."""
        av, stream = self._av, self._stream
        context = stream.codec_context
        wanted_pts = None if wanted is None else {self._timestamps[n] for n in wanted}
        self._container.seek(self._timestamps[0] if keyframe is None else keyframe,
                             stream=stream, backward=True)
        try:
            for packet in self._container.demux(stream):
                if skip_others and wanted_pts is not None:
                    context.skip_frame = 'DEFAULT' if packet.pts in wanted_pts or \
                        packet.pts is None else 'NONREF'
                try:
                    decoded = packet.decode()
                except av.FFmpegError:
                    continue  # a damaged packet: its frame is missed
                for frame in decoded:
                    number = self._number_of.get(frame.pts)
                    if number is None:
                        continue
                    if wanted is None or number in wanted:
                        yield number, frame
        finally:
            context.skip_frame = 'DEFAULT'

    def _sequential_frames(self, wanted: Optional[List[int]]) -> Iterator[SampledFrame]:
        av = self._av
        wanted_set = None if wanted is None else set(wanted)
        last = None if wanted is None else (wanted[-1] if wanted else -1)
        self._container.seek(0)
        number = 0
        try:
            for frame in self._container.decode(self._stream):
                if last is not None and number > last:
                    return
                if wanted_set is None or number in wanted_set:
                    yield self._sampled(number, frame)
                number += 1
        except av.FFmpegError:
            return  # decoding stopped: the frames after it are missed

    def _keyframe_before(self, number: int) -> int:
        """Timestamp of the last keyframe shown at or before frame ``number`` (the first
        frame's, for frames before every keyframe)."""
        pts = self._timestamps[number]
        position = bisect.bisect_right(self._keyframes, pts) - 1
        return self._keyframes[position] if position >= 0 else self._timestamps[0]

    def _sampled(self, number: int, frame) -> SampledFrame:
        # One thread: libswscale's thread pool does not survive fork(), and a process
        # that converted frames with it hangs the decoding workers it forks.
        pixels = frame.to_ndarray(format='bgr24', interpolation='BICUBIC', threads=1)
        turns = _quarter_turns(frame)
        if turns:
            pixels = np.ascontiguousarray(np.rot90(pixels, turns))
        return SampledFrame(number, self.frame_times[number], pixels)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> 'VideoReader':
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def sample_frames(path: str, sampling: FrameSampling = FrameSampling()
                  ) -> Iterator[SampledFrame]:
    """The frames ``sampling`` chooses from the video at ``path``, in order (see
    :meth:`VideoReader.sample`)."""
    with VideoReader(path) as reader:
        yield from reader.sample(sampling)


def video_info(path: str) -> VideoStreamInfo:
    """The stream information of the video at ``path`` (its packets read, none decoded)."""
    with VideoReader(path) as reader:
        return reader.info


def _quarter_turns(frame) -> int:
    """Counter-clockwise quarter turns that show ``frame`` as its display matrix says
    (FFmpeg's ``autorotate``: a phone video stored landscape is shown portrait)."""
    return int(round((frame.rotation or 0) / RIGHT_ANGLE)) % 4


def _bit_depth(context) -> int:
    video_format = context.format
    if video_format is None or not video_format.components:
        return 8
    return max(component.bits for component in video_format.components)


def _reason(exc: BaseException) -> str:
    return getattr(exc, 'strerror', None) or str(exc)


def _demuxed_packets(av, container, stream) -> List[Tuple[Optional[int], bool]]:
    """(timestamp, is keyframe) of each of ``stream``'s packets, in decode order, read
    by demuxing (pts, else dts; a damaged tail ends the list)."""
    packets = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            timestamp = packet.pts if packet.pts is not None else packet.dts
            packets.append((timestamp, packet.is_keyframe))
    except av.FFmpegError:
        pass  # a damaged tail: the frames before it are indexed
    return packets


def _table_packets(av, path: str, stream) -> Optional[List[Tuple[Optional[int], bool]]]:
    """:func:`_demuxed_packets` of an MP4 or MOV file without reading its media data:
    the file is demuxed with its ``mdat`` payloads read as zeros (their timestamps are in
    the file's tables), each packet's keyframe flag taken from the stream's index (the
    sync-sample table; a parser would read it from the zeros). None when the index does
    not match the packets one for one, or the file is fragmented: then demux it."""
    ranges = _media_data_ranges(path)
    entries = stream.index_entries
    if not ranges or entries is None:
        return None
    position = [s.index for s in stream.container.streams.video].index(stream.index)
    try:
        with av.open(_WithoutMediaData(path, ranges),
                     format=MP4_FORMAT.split(',')[0]) as zeros:
            demuxed = _demuxed_packets(av, zeros, zeros.streams.video[position])
    except (av.FFmpegError, OSError, ValueError, KeyError):
        return None  # demuxing the file itself is always right
    if len(demuxed) != len(entries):
        return None
    keys = [entries[i].is_keyframe for i in range(len(entries))]
    return [(timestamp, key) for (timestamp, _), key in zip(demuxed, keys)]


def _media_data_ranges(path: str) -> List[Tuple[int, int]]:
    """Byte ranges of the payloads of an MP4 file's top-level ``mdat`` boxes (clipped to
    the file); none for a fragmented file (its ``moof`` tables are read as they come) or
    one whose boxes do not parse."""
    ranges = []
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
        position = 0
        while position + BOX_HEADER <= size:
            f.seek(position)
            header = f.read(BOX_HEADER)
            length, kind = int.from_bytes(header[:4], 'big'), header[4:8]
            start = position + BOX_HEADER
            if length == 1:  # a 64-bit size follows
                length = int.from_bytes(f.read(8), 'big')
                start += 8
            elif length == 0:  # to the end of the file
                length = size - position
            if length < start - position:
                return []
            if kind == b'moof':
                return []
            if kind == b'mdat':
                ranges.append((start, min(position + length, size)))
            position += length
    return ranges


class _WithoutMediaData:
    """A read-only file whose bytes in ``ranges`` read as zeros, without reading them
    (PyAV's file-object input: ``read``, ``seek``, ``tell``)."""

    def __init__(self, path: str, ranges: List[Tuple[int, int]]):
        self._file = open(path, 'rb')
        self._ranges = ranges
        self._size = os.path.getsize(path)
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        end = self._size if size < 0 else min(self._size, self._position + size)
        chunks = []
        while self._position < end:
            inside = next(((a, b) for a, b in self._ranges if a <= self._position < b), None)
            if inside is not None:
                stop = min(end, inside[1])
                chunks.append(bytes(stop - self._position))
            else:
                following = min((a for a, _ in self._ranges if a > self._position),
                                default=end)
                stop = min(end, following)
                self._file.seek(self._position)
                chunks.append(self._file.read(stop - self._position))
            self._position = stop
        return b''.join(chunks)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}
        self._position = base[whence] + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._file.close()
