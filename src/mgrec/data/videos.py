"""Videos as data: streaming decoding with PyAV, and a video as clips on the feature grid.

Frames are decoded at the video's native frame rate, one at a time, and resized straight to
size x size (aspect ratio not kept; turned upright first where the container says the video is
shown rotated), as the paper ("all frames are resized to 224x224") and the
official VideoMAE V2 feature extraction do. Nothing holds the whole video: `sliding_windows`
keeps a ring buffer of `window` items.

`VideoClips` is one video seen as the clips of its feature grid: clip i samples
`frames_per_clip` frames of window i, frames [i*stride, i*stride + window). Training reads a
random crop of clips (`clips`, which seeks) and validation every clip (`iter_clips`, one pass);
both give the same pixels that extraction (`mgrec.extract`) decodes from the same file.

This lives in `data`, not `extract`, because end-to-end training decodes video and may not
import `extract`. There is no OpenCV fallback: PyAV reads every container and codec FFmpeg knows.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO, NamedTuple, TypeVar

import numpy as np

from mgrec.errors import InputError
from mgrec.files import counted, id_from_name, safe_child
from mgrec.smg_csv import MAX_FPS, MIN_FPS, fps_problem

# The containers mgrec takes for videos (PyAV reads them all): phones and cameras (.mp4, .m4v, .mov, .3gp, .3g2,
# AVCHD's .mts/.m2ts), professional cameras and tape (.mxf, .dv), DVDs (.vob), screen and stream recorders (OBS's .mkv,
# .flv, .f4v, .ts), and the older ones (.avi, .mpg, .wmv, .asf). A folder's file under another name that FFmpeg opens as
# a video is refused, not passed by (`mgrec.extract.video.collect_inputs`).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mts", ".m2ts", ".ts", ".flv", ".f4v", ".mpg",
                  ".mpeg", ".vob", ".wmv", ".asf", ".3gp", ".3g2", ".ogv", ".mxf", ".dv")

# SMG names its files SampleXXXX_color.mp4, SampleXXXX_skeleton.csv, ... while the annotations
# use SampleXXXX; dropping these suffixes, in any case (`Sample0002_Color.MP4`, as a copy through Windows or a
# renaming tool leaves it, is the same video), gives features the ids the annotations use.
MODALITY_SUFFIXES = ("_color", "_skeleton")

# The file names an annotation id may have as a video: `find_video`.
VIDEO_NAME_SUFFIXES = ("", "_color")

# FFmpeg's disposition of a stream that is a still picture attached to the file (AV_DISPOSITION_ATTACHED_PIC).
_ATTACHED_PICTURE = 0x400
# FFmpeg's flag of a container format that records no timestamps (AVFMT_NOTIMESTAMPS): a raw elementary stream (a
# camera's .h264, .hevc, .m4v, an MJPEG stream, an HTTP camera's multipart JPEG), whose frame rate is in the codec's
# header where anywhere.
_NO_TIMESTAMPS = 0x80

# How far a video's frame rate may be from the annotations' before their frame numbers disagree.
FPS_TOLERANCE = 0.01

# How far a frame's timestamp may be from where a constant frame rate puts it (index / fps) before the video
# is refused as having a variable frame rate: half a second moves a micro-gesture by a good part of its length.
MAX_TIMESTAMP_DRIFT_S = 0.5

Item = TypeVar("Item")


def video_id(path: Path) -> str:
    """The id a video's features are stored under: the file stem without an SMG modality suffix."""
    stem = id_from_name(path)
    for suffix in MODALITY_SUFFIXES:
        if stem.lower().endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def names_video(stem: str, video_id: str) -> bool:
    """Whether a file's name without its ending is one the video of `video_id` is read under (`find_video`): the id
    as written, then a suffix of VIDEO_NAME_SUFFIXES in any case (`Sample0001_Color`), as `video_id` drops it."""
    return stem.startswith(video_id) and stem[len(video_id):].lower() in VIDEO_NAME_SUFFIXES


def find_video(folder: Path, video_id: str) -> Path:
    """The video file of an annotation id in `folder` (not recursive): `{id}.mp4`, `{id}_color.mp4`, ...
    with any extension of VIDEO_SUFFIXES in any case.

    InputError when the id is not a plain file name (`files.safe_child`: it could name a file outside
    `folder`), when `folder` is not a folder, when it holds none of those names, or more than one, or
    when the one it holds is not a readable file (a folder, a dangling link).
    """
    folder = Path(folder)
    safe_child(folder, video_id, "video id")
    if not folder.is_dir():
        problem = "not a folder" if folder.exists() else "no such folder"
        raise InputError(f"{folder}: {problem} (looking for the video of '{video_id}')")
    named = sorted(
        path for path in folder.iterdir()
        if path.suffix.lower() in VIDEO_SUFFIXES and names_video(path.name[: -len(path.suffix)], video_id)
    )
    found = [path for path in named if path.is_file()]
    if not found:
        if named:  # the name is there, but no file behind it: say so rather than "no video"
            raise InputError(f"{named[0]}: not a file (a folder, or a link to nothing); expected the video of "
                             f"'{video_id}'")
        names = " and ".join(video_id + suffix for suffix in VIDEO_NAME_SUFFIXES)
        raise InputError(f"{folder}: no video for '{video_id}'; looked for {names} with any of "
                         f"{', '.join(VIDEO_SUFFIXES)} (in any case)")
    if len(found) > 1:
        raise InputError(
            f"{folder}: two videos for '{video_id}': {found[0].name} and {found[1].name}; keep one of them"
        )
    return found[0]


@dataclass(frozen=True)
class VideoStream:
    path: Path
    fps: float
    width: int
    height: int
    declared_frames: int  # from the container header; 0 when the container does not say
    # how long after the file's start (its earliest track) the video's first frame is shown: a player's timeline
    # counts from the file's start, mgrec's times from the first frame (0 where the file does not say)
    late_start: float = 0.0
    # the file's video streams, attached pictures left out: of several (a dashcam's front and rear cameras, a
    # recorder's second camera), mgrec reads the first
    video_streams: int = 1

    def several_streams_note(self) -> str:
        """What a message about this video adds where the file holds several video streams ('' where one)."""
        if self.video_streams < 2:
            return ""
        return (f"it holds {self.video_streams} video streams and mgrec reads the first, {self.width}x{self.height}; "
                "to read another, copy it into a file of its own: ffmpeg -i IN -map 0:v:1 -c copy OUT.mkv")


def probe_video(path: Path) -> VideoStream:
    """Open a video and read its video stream's (`video_stream`) frame rate and size."""
    import av

    try:
        with av.open(str(path)) as container:
            refuse_a_still_image(path, container)
            if not container.streams.video:  # an MP4 cut short may open as a file of no streams
                _refuse_an_mp4_without_index(path)
            stream = video_stream(container)
            rate = video_rate(path, stream, container)
            late = 0.0
            if stream.start_time is not None and container.start_time is not None:
                late = float(stream.start_time * stream.time_base) - container.start_time / av.time_base
            videos = sum(not other.disposition & _ATTACHED_PICTURE for other in container.streams.video)
            return VideoStream(
                path, rate, stream.codec_context.width, stream.codec_context.height, stream.frames, max(0.0, late),
                videos,
            )
    except av.FFmpegError as exc:
        _refuse_an_mp4_without_index(path)
        raise InputError(f"{path}: cannot open the video (corrupt or truncated file?): {ffmpeg_reason(exc)}") from None


def _refuse_an_mp4_without_index(path: Path) -> None:
    """InputError where `path`, which FFmpeg could not open or found no video in, is an MP4 without its index."""
    if _mp4_without_index(Path(path)):
        raise InputError(
            f"{path}: an MP4 whose index (its moov box) is missing or cut short: a recording that was not stopped "
            "cleanly (a phone or camera that lost power or space) or a copy cut short, which FFmpeg cannot read "
            "without it; copy it again from its source, or rebuild the index from a whole recording of the same "
            "camera (the untrunc tool)") from None


# The boxes an MP4 (or MOV, 3GP) file may begin with: the file type, or, in old QuickTime files, the others.
MP4_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


def _mp4_without_index(path: Path) -> bool:
    """Whether `path` is an MP4/MOV file (by its first box, whatever its name) that holds its media (`mdat`) but no
    whole index (`moov`, absent or cut short): what a recorder leaves when it stops before writing the index at the
    end, or a copy cut short after the media began. Only the top-level box headers are read."""
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            offset, seen, indexed = 0, set(), False
            while offset + 8 <= size:
                file.seek(offset)
                header = file.read(16)
                length, kind = int.from_bytes(header[:4], "big"), header[4:8]
                if offset == 0 and kind not in MP4_FIRST_BOXES:
                    return False
                seen.add(kind)
                if length == 1 and len(header) == 16:  # a 64-bit size follows
                    length = int.from_bytes(header[8:16], "big")
                if length == 0:  # the box runs to the end of the file
                    break
                if length < 8:
                    return False  # not a box: damaged, or no MP4
                indexed = indexed or (kind == b"moov" and offset + length <= size)
                offset += length
    except OSError:
        return False
    return b"mdat" in seen and not indexed


def refuse_a_still_image(path: Path | str, container) -> None:
    """A still image under a video's name (a photo or a video's thumbnail saved as `clip.mp4`, a download that
    was an image): FFmpeg opens it as a video of one frame at a made-up 25 fps (its image demuxers, `png_pipe`,
    `jpeg_pipe`, ..., are named `<kind>_pipe`), which was refused as `1 frames, shorter than one window`, as if a
    video had been cut short. An animated GIF (demuxer `gif`) is a video and is read as one."""
    name = container.format.name
    if _is_image_format(name):
        kind = name.removesuffix("_pipe").upper() if name != "image2" else "image"
        raise InputError(f"{path}: a still image ({kind}), not a video, though named {Path(str(path)).suffix or 'so'}; "
                         "give the video itself")


def _is_image_format(name: str) -> bool:
    """Whether FFmpeg's format `name` is one of its still-image demuxers (`image2`, `png_pipe`, `jpeg_pipe`, ...)."""
    return name == "image2" or name.endswith("_pipe")


class ForeignVideo(NamedTuple):
    """A video under a name mgrec does not read as one (`video_under_another_name`): what FFmpeg calls its container
    (said as the video's `str`), and whether it is a raw elementary stream, which has no container at all."""

    container: str
    raw: bool

    def __str__(self) -> str:
        return self.container


def rewrap_command(raw: bool) -> str:
    """The FFmpeg command that puts a video into a Matroska file without re-encoding. A raw elementary stream (a
    camera's .h264, .hevc, MJPEG: no container, no timestamps) needs its rate given before `-i`: without it FFmpeg's
    raw demuxers time its frames at 25 fps, whatever the camera recorded (`ffmpeg -i cam.h264 -c copy OUT.mkv` of a
    10-fps camera made a video 2.5 times faster, every gesture early)."""
    return f"ffmpeg {'-framerate FPS ' if raw else ''}-i IN -c copy OUT.mkv"


# Said after `rewrap_command(raw=True)`: what FPS is, and why it is there.
RAW_RATE_WORDS = "FPS the rate it was recorded at: without -framerate FFmpeg times a raw stream's frames at 25 fps"


def video_under_another_name(path: Path) -> ForeignVideo | None:
    """What FFmpeg calls the container of `path`, a file whose name does not end in one of VIDEO_SUFFIXES, where it
    opens it as a video (a professional camera's MXF, a DVD's VOB, a DV tape's .dv, a camcorder's .MOD, a camera's raw
    .h264): such a file was refused as `not a video file` by extract and `cannot read features` by detect; None where
    it is none (for the failure paths of those readers only: it opens the file)."""
    import av

    try:
        with av.open(str(path)) as container:
            name = container.format.name
            stream = video_stream(container)
            # bytes FFmpeg can guess a raw stream in say no size or rate: only a container that does is a video
            if stream is None or _is_image_format(name) or not stream.codec_context.width \
                    or _frame_rate(stream) is None:
                return None
            return ForeignVideo(container.format.long_name or name, _without_timestamps(stream))
    except (av.FFmpegError, OSError, ValueError):
        return None


def another_name_advice(path: Path, video: ForeignVideo) -> str:
    """What to do with a video (`video`: FFmpeg's name for its container, and whether it is a raw stream) under a
    name mgrec does not read as one."""
    how = (f"{rewrap_command(raw=True)} puts it into a container without re-encoding, {RAW_RATE_WORDS}" if video.raw
           else f"{rewrap_command(raw=False)} rewrites its container without re-encoding")
    return (f"{path}: a video ({video}) under a name mgrec does not read as one; give it one of the endings "
            f"{', '.join(VIDEO_SUFFIXES)} ({how})")


def video_stream(container):
    """The video stream mgrec reads of an opened container: its first, leaving out attached pictures (the cover art
    of an audio file or of a video, which FFmpeg lists as a video stream of one frame at its timestamps' rate, 90000
    fps); None where it holds no other."""
    for stream in container.streams.video:
        if not stream.disposition & _ATTACHED_PICTURE:
            return stream
    return None


def video_rate(path: Path | str, stream, container=None) -> float:
    """The frame rate of an opened container's video `stream` (`video_stream`; None: the container has none),
    checked: `path` names the video in messages, and `container` says what the file holds instead."""
    if stream is None:
        if container is not None and container.streams.video:
            raise InputError(f"{path}: no video stream in this file, only a still picture (cover art"
                             f"{' beside its audio' if container.streams.audio else ''}); give the video itself")
        raise InputError(f"{path}: no video stream in this file")
    rate = _frame_rate(stream)
    if rate is None and _without_timestamps(stream):
        raise InputError(f"{path}: a {stream.container.format.long_name or 'raw video'} stream without a container, "
                         "and its codec's header gives no frame rate: nothing says when its frames are shown (FFmpeg "
                         "would assume 25 fps); put it into a container at the rate it was recorded, "
                         f"{rewrap_command(raw=True)}")
    if rate is None:
        raise InputError(f"{path}: the video stream has no frame rate")
    if fps_problem(rate) is not None:  # the rule every sidecar is read by: one written past it is unreadable
        raise InputError(f"{path}: the video stream's frame rate is {rate:g} fps; mgrec places frames by "
                         f"rates of {MIN_FPS:g} to {MAX_FPS:g} fps")
    return rate


# What a pipe can carry: an MP4 usually keeps its index at its end, where a reader that cannot seek never finds it.
PIPE_FORMATS = "pipe Matroska or MPEG-TS (ffmpeg ... -f matroska -, or -f mpegts -), not MP4"


class _CountedReader:
    """A pipe read through, counting its bytes (a pipe cannot be peeked at without taking what it holds)."""

    def __init__(self, pipe: BinaryIO) -> None:
        self.pipe, self.bytes_read = pipe, 0
        self.name = getattr(pipe, "name", "<pipe>")  # what FFmpeg's messages call it

    def read(self, size: int = -1) -> bytes:
        data = self.pipe.read(size)
        self.bytes_read += len(data or b"")
        return data


def open_piped_video(pipe: BinaryIO, name: str) -> tuple[object, float]:
    """A video container read from `pipe` (what `ffmpeg ... -f matroska -` writes to a pipe: a camera's frames as
    they are captured), opened once, as a pipe cannot be read twice: the container, for `iter_frames(name, ...,
    container=...)`, and its checked frame rate. `name` stands for it in messages."""
    import av

    counted = _CountedReader(pipe)
    try:
        container = av.open(counted, mode="r")
    except av.FFmpegError as exc:
        if counted.bytes_read == 0:  # an empty pipe was "Invalid data found when processing input; ... not MP4"
            raise InputError(f"{name}: nothing was piped (it ended before its first byte: the sender wrote nothing, "
                             f"or failed before its first frame); {PIPE_FORMATS}") from None
        raise InputError(f"{name}: cannot read a video container from it ({exc}); {PIPE_FORMATS}") from None
    try:
        refuse_a_still_image(name, container)
        return container, video_rate(name, video_stream(container), container)
    except InputError:
        container.close()
        raise


# `mgrec stream RUN rtsp://...`: a video read from the network as it arrives, through PyAV's own FFmpeg (no ffmpeg
# program in between). Seconds to wait for the connection, and then for each read: a camera that stops sending ends
# its stream with an error naming it, instead of a session that waits for ever.
NETWORK_TIMEOUTS_S = (10.0, 10.0)
NETWORK_HOW = "or pipe it in: ffmpeg -i URL -c copy -f matroska - | mgrec stream RUN -"


# A URL's scheme, and its login (user:password@, up to the last `@`: a password typed unescaped may hold `/`, `?`,
# `#` or `@`, where a URL parser ends the host, or the login, early; an `@` further on masks more than the login).
URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
URL_LOGIN = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://).+@")


@dataclass(frozen=True)
class NetworkSource:
    """A video read from the network as it arrives: any URL PyAV's FFmpeg opens (rtsp://, http(s)://, rtmp://,
    tcp://, udp://, ...). Shown (`str`, `repr`) without the user and password a camera's URL often holds, its query
    and fragment (where a stream's access token goes) and an rtmp URL's last part (its stream key), so that no
    message or video id repeats them."""

    url: str

    def __str__(self) -> str:
        masked = URL_LOGIN.sub(r"\1***@", self.url)
        scheme = URL_SCHEME.match(masked).end()
        rest = re.split(r"([?#])", masked[scheme:], maxsplit=1)
        address = rest[0]
        if masked.lower().startswith("rtmp") and address.count("/") > 1:
            address = address.rpartition("/")[0] + "/***"
        return masked[:scheme] + address + (rest[1] + "***" if len(rest) > 1 else "")

    def __repr__(self) -> str:
        return f"NetworkSource({str(self)!r})"

    @property
    def video_id(self) -> str:
        """Its video id: host and path (an rtmp URL's without its last part, the stream key), every character outside
        [A-Za-z0-9.-] as `_`, a video suffix dropped (rtsp://user:pw@10.0.0.5:554/cam/1 -> 10.0.0.5_cam_1;
        http://host/clip.mkv -> host_clip)."""
        shown = str(self)
        address = re.split(r"[?#]", shown[URL_SCHEME.match(shown).end():].removeprefix("***@"), maxsplit=1)[0]
        host, _, path = address.partition("/")
        host = host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]  # without the port
        path = path.removesuffix("/***")  # an rtmp URL's stream key
        if path.lower().endswith(VIDEO_SUFFIXES):
            path = path.rsplit(".", 1)[0]
        return re.sub(r"[^A-Za-z0-9.-]+", "_", f"{host}/{path}").strip("_.") or "network"


def stream_source(text: str) -> Path | NetworkSource:
    """An input of `mgrec stream`: a URL (`scheme://...`) is a `NetworkSource`, anything else a path (a URL made a
    path lost a slash: rtsp:/host)."""
    return NetworkSource(text) if URL_SCHEME.match(text) else Path(text)


def open_network_video(source: NetworkSource) -> tuple[object, float]:
    """The container of a video read from the network (`NetworkSource`), opened once, for `iter_frames(str(source),
    ..., container=...)`, and its checked frame rate. RTSP is read over TCP: over UDP a lost packet is a broken
    frame."""
    import av

    options = {"rtsp_transport": "tcp"} if source.url.lower().startswith("rtsp") else {}
    try:
        container = av.open(source.url, mode="r", timeout=NETWORK_TIMEOUTS_S, options=options)
    except av.error.ProtocolNotFoundError:
        raise InputError(f"{source}: PyAV's FFmpeg reads no {source.url.split(':', 1)[0]}:// source; "
                         f"{NETWORK_HOW}") from None
    except av.FFmpegError as exc:
        raise InputError(f"{source}: cannot open it ({ffmpeg_reason(exc, waited=NETWORK_TIMEOUTS_S[0])}); "
                         f"{NETWORK_HOW}") from None
    try:
        return container, video_rate(str(source), video_stream(container), container)
    except InputError:
        container.close()
        raise


def ffmpeg_reason(exc: Exception, waited: float | None = None) -> str:
    """What went wrong, in FFmpeg's words (and its last error log, where PyAV kept one), without the file name it
    names (a network source's URL, with its password: the message names the source shown without it). A read that
    timed out after `waited` seconds (default: a read's timeout) says so (FFmpeg's words are 'Immediate exit
    requested')."""
    import av

    if isinstance(exc, av.error.ExitError):
        return f"nothing arrived for {NETWORK_TIMEOUTS_S[1] if waited is None else waited:g} s"
    text = str(exc)
    if getattr(exc, "filename", None):
        text = text.replace(f": {exc.filename!r}", "").replace(str(exc.filename), "(the source)")
    return re.sub(r"^\[Errno -?\d+\] ", "", text) or type(exc).__name__


def _frame_rate(stream) -> float | None:
    """The frame rate mgrec places a video's frames by (its feature grid's fps): the stream's average
    rate, else FFmpeg's guess; None when neither is a positive number.
    A raw elementary stream (`_without_timestamps`) has no rate of its container: its average rate is the raw
    demuxer's default, 25 fps whatever the video's (a 10-fps camera's .h264 was extracted at 25 fps, every time
    2.5 times early, and a 10-fps .m4v refused as a variable frame rate); its rate is the one its codec's header
    gives (H.264 and HEVC timing, an MPEG-4 VOL, an MPEG-2 sequence header), None where it gives none (MJPEG)."""
    if _without_timestamps(stream):
        rate = stream.codec_context.framerate
    else:
        rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate and rate > 0 else None


def _without_timestamps(stream) -> bool:
    """Whether `stream` is read from a container format that records no timestamps (a raw elementary stream)."""
    return bool(stream.container.format.flags & _NO_TIMESTAMPS)


# Frames narrower or lower than this many pixels are refused: a gesture cannot be seen in them (a 2x2 video scaled up
# to a backbone's 224x224 made features of a blur, without a word).
MIN_FRAME_SIDE = 16
# Frames scaled up by more than this on a side to the backbone's input are warned of, once per video.
MAX_UPSCALE = 4.0


def check_frame_size(path: Path | str, width: int, height: int, size: int | None) -> str | None:
    """The one rule of every reader of video frames for features (extraction, `detect` and `stream` of a video, an
    end-to-end run's clips, pose landmarks): frames under MIN_FRAME_SIDE pixels on a side are refused (InputError
    naming the file, its size and the floor); frames that `size` (the backbone's input, None: read at their own size)
    scales up by more than MAX_UPSCALE on a side are a warning, returned (beginning with the video's path) for the
    caller to say once per video through its own channel of warnings (`ExtractResult.warnings`, which the command
    line prints; `mgrec stream`'s stderr; `mgrec data check`'s warnings, which training logs); None otherwise.
    Nothing here prints, and nothing is kept between calls.
    A side of 0 is a size unknown, not a small one: the size a header gives (`probe_video`: `mgrec stream` of a file,
    an end-to-end run's videos) where FFmpeg read none, its video stream's parameters missing (a stream remuxed
    without its codec's setup, a damaged or cut file): refused as what it is (it was blamed on a 0x0 frame size, and
    the way out named, 'give the video at its recorded size', was no way out), as decoding it would be."""
    if not width or not height:
        raise InputError(f"{path}: FFmpeg reads no frame size from its video stream ({width}x{height}: the "
                         "parameters of its codec are missing or damaged; a corrupt or truncated file, or one remuxed "
                         "without them?), so its frames cannot be decoded; give the file it was made from, or a "
                         "copy a player shows")
    if min(width, height) < MIN_FRAME_SIDE:
        raise InputError(f"{path}: its frames are {width}x{height} pixels, under the {MIN_FRAME_SIDE} pixels a side "
                         "that mgrec reads gestures in (scaled up to a backbone's input, they are features of a "
                         "blur); give the video at its recorded size")
    if size is None:
        return None
    scale = max(size / width, size / height)
    if scale <= MAX_UPSCALE:
        return None
    return (f"{path}: its frames are {width}x{height} pixels, scaled up {scale:.1f}x (more than {MAX_UPSCALE:g}x on a "
            f"side) to the backbone's input of {size}x{size}: its features see little of each gesture; a larger "
            "recording gives better ones")


def _to_rgb(frame, size: int | None, path: Path | str) -> np.ndarray:
    """The frame as a player shows it: resized (swscale's bilinear filter widens with the scale factor, so
    downscaling is anti-aliased), then turned by the rotation of its display matrix, as FFmpeg's players
    and `ffmpeg` itself do (a phone's portrait video is stored landscape with a rotation of -90 degrees).
    A rotation of no quarter turns is refused (45 degrees was rounded to none, 135 to 180)."""
    if frame.rotation % 90:
        raise InputError(f"{path}: a frame is to be shown turned by {frame.rotation:g} degrees; mgrec turns frames "
                         "by quarter turns only: re-encode the video upright")
    array = frame.to_ndarray(width=size, height=size, format="rgb24", interpolation="BILINEAR")
    quarter_turns = round(frame.rotation / 90) % 4  # counterclockwise, as np.rot90 turns
    return np.ascontiguousarray(np.rot90(array, quarter_turns)) if quarter_turns else array


def _check_constant_rate(path: Path | str, index: int, seconds: float, fps: float, arriving: bool = False) -> None:
    """Features place frame `index` at index / fps seconds; a frame shown more than `MAX_TIMESTAMP_DRIFT_S`
    away from there (a variable frame rate, dropped frames) would put every later detection off by as much.
    `arriving`: a source read as it arrives (piped, or from the network), which cannot be re-encoded as a file is."""
    expected = index / fps
    if abs(seconds - expected) > MAX_TIMESTAMP_DRIFT_S:
        fix = (f"a live source that drops frames, or whose clock drifts: have ffmpeg keep its rate constant (ffmpeg -i "
               f"SOURCE -fps_mode cfr -r {fps:.3f} -f matroska - | mgrec stream RUN -)" if arriving else
               f"re-encode the video at a constant rate (ffmpeg -i IN -fps_mode cfr -r {fps:.3f} OUT.mp4)")
        raise InputError(
            f"{path}: variable frame rate: frame {index} is shown at {seconds:.2f} s, but at the stream's "
            f"average {fps:.3f} fps mgrec would place it at {expected:.2f} s; {fix}"
        )


def _refuse_time_going_back(path: Path | str, index: int, seconds: float, previous: float, fps: float | None,
                            arriving: bool = False, what: str = "frame") -> None:
    """Frames come in display order, packets in decoding order, each later than the last: a timestamp more than half a
    frame before the previous one is a second stream after the first in one file (MPEG-TS files joined byte by byte,
    `cat a.ts b.ts > c.ts`, or a recorder restarted into one file). Its frames were refused as a variable frame rate
    (re-encoding at a constant rate, the advice then, drops the second part), or, where the first part lasts less than
    `MAX_TIMESTAMP_DRIFT_S`, decoded on without a word. `seconds`, `previous`: from the stream's first timestamp."""
    if seconds >= previous - 0.5 / (fps or MAX_FPS):
        return
    fix = ("stream each part on its own, or join the parts with ffmpeg's concat demuxer, which starts each part's "
           "timestamps where the last ended (ffmpeg -f concat -safe 0 -i parts.txt -c copy -f mpegts - | mgrec stream "
           "RUN -, parts.txt holding a line file 'PART' for each)" if arriving else
           "give each part on its own, or join the parts with ffmpeg's concat demuxer, which starts each part's "
           "timestamps where the last ended (ffmpeg -f concat -safe 0 -i parts.txt -c copy OUT.ts, parts.txt holding a "
           "line file 'PART' for each)")
    raise InputError(f"{path}: its timestamps go back at {what} {index}, from {previous:.2f} s to {seconds:.2f} s: it "
                     "holds two streams one after the other (videos joined byte by byte, cat a.ts b.ts > c.ts, or a "
                     f"recorder restarted), which one clock cannot place; {fix}")


def _refuse_a_lost_start(path: Path | str, seconds: float, stream, fps: float) -> None:
    """The first frame decoded, shown at `seconds`, must be the stream's first: a decoder drops the frames before the
    first keyframe it reads (a file cut with `ffmpeg -ss ... -c copy` between keyframes, damage at its start) without
    an error, and features counted from the frame it gave placed every later time that much early, against a player and
    the annotations alike. More than `MAX_TIMESTAMP_DRIFT_S` lost (the rule of a variable frame rate) is refused; an
    open GOP's few leading frames are not."""
    if stream.start_time is None:
        return
    start = float(stream.start_time * stream.time_base)
    lost = seconds - start
    if lost > MAX_TIMESTAMP_DRIFT_S:
        raise InputError(
            f"{path}: its first {counted(round(lost * fps), 'frame')} ({lost:.2f} s) could not be decoded: the "
            f"stream starts at {start:.2f} s but its first frame that decodes is shown at {seconds:.2f} s (it starts "
            "without a keyframe: cut with -c copy between keyframes, or damaged at its start); mgrec counts times "
            f"from the first frame it decodes, which would put every time {lost:.2f} s early. Cut it again at a "
            "keyframe or from a whole copy, or, to detect in what decodes with times counted from there, re-encode it "
            "to start at that frame (ffmpeg -i IN -vf setpts=PTS-STARTPTS OUT.mp4)")


def iter_frames(path: Path | str, size: int | None, keep: Callable[[int], bool] | None = None, container=None,
                warn: Callable[[str], None] | None = None) -> Iterator[np.ndarray | None]:
    """Every frame of the video in display order as a (size, size, 3) uint8 RGB array; `size=None`:
    at the video's own size and aspect (what a landmark model wants: `mgrec.extract.pose`).
    `keep(index)` False: that frame is decoded (later frames depend on it) but not converted, and
    None stands in its place (a backbone that reads only some frames of each window).

    Raises InputError naming the file and the frame index where decoding failed, including a
    stream that ends before the number of frames its container declares (a truncated file), and
    naming the first frame shown more than MAX_TIMESTAMP_DRIFT_S from index / fps (a variable frame
    rate: the feature grid assumes a constant one), and a file whose first frame decoded is shown more than that after
    its stream starts (`_refuse_a_lost_start`). Frames are turned upright by their display matrix.
    `container`: one opened already (`open_piped_video`, `open_network_video`), read instead of opening `path`, and
    closed at the end; `path` then names it in messages. `warn`: takes the warning of `check_frame_size` of the first
    frame decoded (frames scaled up more than MAX_UPSCALE), once, for the caller's channel of warnings (extraction:
    its `ExtractResult.warnings`); None: a Python `UserWarning` (`warnings.warn`), which a caller may catch.
    """
    import av

    index, seconds, opened = 0, None, container is not None  # opened by the caller: a source read as it arrives
    try:
        with container if opened else av.open(str(path)) as container:
            stream = video_stream(container)
            stream.thread_type = "AUTO"  # frame- and slice-threaded decoding inside FFmpeg
            fps, first_seconds = _frame_rate(stream), None
            for frame in container.decode(stream):
                if frame.pts is not None and fps is not None:
                    previous, seconds = seconds, float(frame.pts * stream.time_base)
                    if first_seconds is None and not opened:  # a source read as it arrives starts where it starts
                        _refuse_a_lost_start(path, seconds, stream, fps)
                    first_seconds = seconds if first_seconds is None else first_seconds
                    if previous is not None:
                        _refuse_time_going_back(path, index, seconds - first_seconds, previous - first_seconds, fps,
                                                arriving=opened)
                    _check_constant_rate(path, index, seconds - first_seconds, fps, arriving=opened)
                if index == 0:  # the size decoded, also of a source read as it arrives (no header probed)
                    said = check_frame_size(path, frame.width, frame.height, size)
                    if said is not None:
                        _say(said, warn)
                yield _to_rgb(frame, size, path) if keep is None or keep(index) else None
                index += 1
            declared, declared_end = stream.frames, _declared_end(container, stream)
    except av.FFmpegError as exc:
        raise InputError(f"{path}: decoding failed at frame {index} (corrupt or truncated file?): "
                         f"{ffmpeg_reason(exc)}") from None
    check_whole(path, index, seconds, declared, declared_end, fps)


def _say(warning: str, warn: Callable[[str], None] | None) -> None:
    """`warning` given to the caller's `warn`, else a Python UserWarning."""
    if warn is not None:
        warn(warning)
    else:
        import warnings

        warnings.warn(warning, UserWarning, stacklevel=3)


# How much shorter than its declared duration a video without a frame count may decode: its last frame is
# shown for 1/fps, and a declared duration is rounded.
MAX_MISSING_SECONDS = 1.0


def check_whole(path: Path | str, frames: int, last_seconds: float | None, declared_frames: int,
                declared_end: float | None, fps: float | None, stopped: str = "decoding stopped") -> None:
    """The rule by which a video read to its end is whole, for extraction (`iter_frames`, frames decoded) and
    end-to-end training (`VideoClips.open`, packets counted) alike: `frames` found, the last shown at
    `last_seconds` (its timestamp; None when the stream has none), are not fewer than the container's frame
    count, or, where it declares none (Matroska and WebM declare only a duration, and a file cut short reads
    without an error), end no more than MAX_MISSING_SECONDS before its declared end (`_declared_end`).
    InputError naming the file, what it declares and what was found; `stopped` says how it was found."""
    if declared_frames and frames < declared_frames:
        raise InputError(f"{path}: {stopped} at frame {frames}, but the container declares {declared_frames} frames "
                         "(truncated file?)")
    if not declared_frames and declared_end is not None and last_seconds is not None and fps is not None:
        shown_end = last_seconds + 1 / fps
        if shown_end < declared_end - MAX_MISSING_SECONDS:
            raise InputError(
                f"{path}: {stopped} at {shown_end:.2f} s (frame {frames}), but the container declares "
                f"{declared_end:.2f} s (truncated file?); if the video plays to its end, rewrite its header: "
                f"ffmpeg -i IN -c copy OUT.{Path(path).suffix.lstrip('.') or 'mkv'}")


def _declared_end(container, stream) -> float | None:
    """Where the container says the video stream ends, in seconds of its timestamps: the track's own duration
    (Matroska keeps it as a DURATION tag, which FFmpeg and mkvmerge write), else the stream's, else the container's
    where the video is its only stream (the container's covers every track: an audio track may outlast the video);
    None when none is known. Compared with the end of the last frame decoded, which includes any start offset, so
    a declared duration read as an end can only be more lenient."""
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    if tag:
        match = re.fullmatch(r"(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", tag.strip())
        if match:
            hours, minutes, seconds = match.groups()
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if stream.duration is not None and stream.duration > 0:
        return float(((stream.start_time or 0) + stream.duration) * stream.time_base)
    if len(container.streams) == 1 and container.duration is not None and container.duration > 0:
        import av

        return container.duration / av.time_base
    return None


def sliding_windows(items: Iterable[Item], window: int, stride: int) -> Iterator[list[Item]]:
    """Windows [i*stride, i*stride + window) over a stream, complete windows only.

    Keeps only the last `window` items (a ring buffer). Consumes the whole stream, so that a
    decoding error after the last complete window still surfaces.
    """
    buffer: deque[Item] = deque(maxlen=window)
    for count, item in enumerate(items, start=1):
        buffer.append(item)
        if count >= window and (count - window) % stride == 0:
            yield list(buffer)


def batched(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    """Consecutive lists of `size` items (the last one may be shorter)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def clip_frame_picks(window: int, frames_per_clip: int) -> np.ndarray:
    """The frames of a window that its clip holds: `frames_per_clip` offsets spread uniformly over
    [0, window - 1], first and last included (a longer window is sampled down to the model's clip)."""
    if frames_per_clip < 1 or window < frames_per_clip:
        raise InputError(
            f"window {window}: a clip takes {frames_per_clip} frames of its window; use a window >= that (and >= 1)"
        )
    return np.linspace(0, window - 1, frames_per_clip).round().astype(int)


def window_clips(frames: Iterable[np.ndarray], window: int, stride: int, frames_per_clip: int, first: int = 0
                 ) -> Iterator[np.ndarray]:
    """The clip of every complete window of a frame stream, in order: (frames_per_clip, H, W, 3), the
    window's frames at `clip_frame_picks` (what a VideoMAE reads, in extraction and in training alike).
    `first`: the clips of the windows before it are left out (their frames may be None: a resumed extraction)."""
    picks = clip_frame_picks(window, frames_per_clip)
    for index, frames in enumerate(sliding_windows(frames, window, stride)):
        if index >= first:
            yield np.stack([frames[i] for i in picks])


def _count_packets(path: Path) -> int:
    """Frames of the first video stream counted by demuxing (no decoding): for containers that do
    not declare a frame count. InputError where they end before the duration the container declares, by the
    rule extraction decodes by (`check_whole`): a Matroska file cut short demuxes without an error."""
    import av

    count, last_seconds, first_at, decoded_at = 0, None, None, None
    try:
        with av.open(str(path)) as container:
            stream = video_stream(container)
            fps = _frame_rate(stream)
            for packet in container.demux(stream):
                if not packet.size:  # the demuxer ends with an empty flush packet, which is no frame
                    continue
                if packet.dts is not None:  # decoding order: each packet's decoding time after the last's
                    at = float(packet.dts * stream.time_base)
                    first_at = at if first_at is None else first_at
                    at -= first_at  # seconds from the first, as iter_frames says them
                    if decoded_at is not None:
                        _refuse_time_going_back(path, count, at, decoded_at, fps, what="packet")
                    decoded_at = at
                count += 1
                if packet.pts is not None:  # the last frame shown has the largest timestamp, as in display order
                    seconds = float(packet.pts * stream.time_base)
                    last_seconds = seconds if last_seconds is None else max(last_seconds, seconds)
            declared_end = _declared_end(container, stream)
    except av.FFmpegError as exc:
        raise InputError(f"{path}: cannot read the video (corrupt or truncated file?): {exc}") from None
    check_whole(path, count, last_seconds, 0, declared_end, fps, stopped="its frames stop")
    return count


@dataclass(frozen=True)
class VideoClips:
    """One video as the sequence of clips on its feature grid, decoded on demand.

    Clip i is window i, frames [i*stride, i*stride + window), sampled down to `frames_per_clip`
    frames (`clip_frame_picks`), each resized to image_size x image_size RGB as `iter_frames`
    does. Cheap to keep and to pickle (into DataLoader workers): it holds no open file.
    """

    path: Path
    fps: float
    frame_count: int
    stride: int
    window: int
    frames_per_clip: int
    image_size: int
    # what its probe found worth a word (`check_frame_size`'s upscale warning), each beginning with its path: said
    # by `mgrec data check` (whose warnings training logs), once per video
    warnings: tuple[str, ...] = ()

    @classmethod
    def open(
        cls, path: Path, *, stride: int, window: int, frames_per_clip: int, image_size: int,
        expected_fps: float | None = None,
    ) -> VideoClips:
        """Probe `path`. `expected_fps` (the annotations' frame rate): refused when the video's
        differs by more than 0.01 fps, since the annotations' frame numbers would not be this video's."""
        path = Path(path)
        for name, value in (("stride", stride), ("window", window), ("frames_per_clip", frames_per_clip),
                            ("image_size", image_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{path}: {name} must be a positive integer, got {value!r}")
        clip_frame_picks(window, frames_per_clip)
        info = probe_video(path)
        # before training: not at a crop epochs in
        warnings = tuple(filter(None, [check_frame_size(path, info.width, info.height, image_size)]))
        # `not <=`: a NaN frame rate compares unequal to everything and must not pass as a match
        if expected_fps is not None and not abs(info.fps - expected_fps) <= FPS_TOLERANCE:
            raise InputError(
                f"{path}: the video runs at {info.fps:.3f} fps but its annotations at {expected_fps:.3f} fps; "
                "re-encode the video or fix the annotations' fps"
            )
        frame_count = info.declared_frames or _count_packets(path)
        if frame_count < window:
            # No clip at all: nothing to train on or to detect in (extraction refuses it the same way).
            raise InputError(f"{path}: {counted(frame_count, 'frame')}, shorter than one window of {window} frames")
        return cls(path, info.fps, frame_count, stride, window, frames_per_clip, image_size, warnings)

    @property
    def length(self) -> int:
        """The number of complete windows (feature steps) of the video."""
        if self.frame_count < self.window:
            return 0
        return (self.frame_count - self.window) // self.stride + 1

    def __len__(self) -> int:
        return self.length

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        """What `clips(0, length)` would return: (length, frames_per_clip, image_size, image_size, 3)."""
        return (self.length, self.frames_per_clip, self.image_size, self.image_size, 3)

    def __getitem__(self, key: slice) -> np.ndarray:
        """`video[a:b]`: the clips of windows a..b-1, clamped to the video as numpy slicing does (so
        code written for a feature array, `features[start:start + crop]`, takes clips the same way)."""
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError(f"VideoClips takes a slice with step 1, got {key!r}")
        start, stop, _ = key.indices(self.length)
        if stop <= start:
            return np.empty((0, *self.shape[1:]), dtype=np.uint8)
        return self.clips(start, stop)

    def check_readable(self) -> None:
        """Decode the first frame and the last frame any clip takes; InputError naming the file when either
        cannot be: above all a truncated file whose header still declares every frame (its index up front),
        which opens and probes fine and would otherwise fail only when training reaches its end.

        Cheap where the file can seek (two short decodes, from the keyframes before those frames); a
        stream without an index is decoded from its start. Damage between the two frames is not seen."""
        self._decode(np.array([0]))
        last = (self.length - 1) * self.stride + self.window - 1
        if last > 0:
            self._decode(np.array([last]))

    def clips(self, start: int, stop: int) -> np.ndarray:
        """uint8 (stop - start, frames_per_clip, image_size, image_size, 3): the clips of windows
        start..stop-1, decoding only their frames (from the keyframe at or before the first).

        Frames are found by their timestamps, index = round((pts - stream start) * fps): this
        assumes a constant frame rate, as the feature grid does.
        """
        if not 0 <= start < stop <= self.length:
            raise InputError(f"{self.path}: clips [{start}, {stop}) outside the video's {self.length} windows")
        picks = clip_frame_picks(self.window, self.frames_per_clip)
        wanted = (np.arange(start, stop)[:, None] * self.stride + picks[None, :])  # (clips, frames_per_clip)
        frames = self._decode(np.unique(wanted))
        return np.stack([np.stack([frames[i] for i in row]) for row in wanted])

    def _decode(self, needed: np.ndarray) -> dict[int, np.ndarray]:
        """The frames with the (sorted) indices `needed`, resized; InputError for any that is missing."""
        frames = self._decode_frames(needed, seek=needed[0] > 0)
        if frames is None:  # the seek failed or landed past the first frame: read from the start instead
            frames = self._decode_frames(needed, seek=False)
        missing = set(needed.tolist()) - frames.keys()
        if missing:
            raise InputError(
                f"{self.path}: frame {min(missing)} could not be decoded, but the video should have "
                f"{self.frame_count} frames (truncated file?)"
            )
        return frames

    def _decode_frames(self, needed: np.ndarray, seek: bool) -> dict[int, np.ndarray] | None:
        """Decode from the keyframe at or before needed[0] (`seek`) or from the start, up to needed[-1].
        None when seeking does not work for this file: the seek fails, or lands past needed[0]."""
        import av

        first, last = int(needed[0]), int(needed[-1])
        needed_set = set(needed.tolist())
        frames: dict[int, np.ndarray] = {}
        index = first if seek else 0  # the next frame expected, for error messages
        try:
            with av.open(str(self.path)) as container:
                stream = video_stream(container)
                stream.thread_type = "AUTO"  # frame- and slice-threaded decoding inside FFmpeg
                origin = stream.start_time or 0
                seconds_per_tick = float(stream.time_base)
                if seek:
                    try:
                        # In the stream's time base; backward: the keyframe at or before the target.
                        container.seek(origin + int(first / self.fps / seconds_per_tick), stream=stream, backward=True)
                    except av.FFmpegError:  # e.g. a raw elementary stream, which has no index to seek in
                        return None
                for number, frame in enumerate(container.decode(stream)):
                    if frame.pts is not None:
                        current = round((frame.pts - origin) * seconds_per_tick * self.fps)
                    elif not seek:
                        current = number  # no timestamps: counting is right when decoding from the start
                    else:
                        return None
                    if seek and number == 0 and current > first:
                        return None
                    if current in needed_set:
                        frames[current] = _to_rgb(frame, self.image_size, self.path)
                    if current >= last:
                        break
                    index = max(index, current + 1)
        except av.FFmpegError as exc:
            raise InputError(
                f"{self.path}: decoding failed at frame {index} (corrupt or truncated file?): {exc}"
            ) from None
        return frames

    def iter_clips(self, batch: int) -> Iterator[np.ndarray]:
        """Every clip in order, in uint8 arrays of up to `batch` clips (n, frames_per_clip, S, S, 3):
        one sequential pass over the video, holding only the last `window` frames."""
        if batch < 1:
            raise InputError(f"batch must be a positive integer, got {batch}")
        # its frame size was said once, by its probe (`warnings`): not again at every pass over it
        frames = iter_frames(self.path, self.image_size, warn=lambda _: None)
        every = window_clips(frames, self.window, self.stride, self.frames_per_clip)
        # A stream longer than its declared frame count has windows past `length`; they are not on
        # the grid the rest of mgrec uses for this video (and the stream is still read to its end).
        clips = (clip for i, clip in enumerate(every) if i < self.length)
        for chunk in batched(clips, batch):
            yield np.stack(chunk)
