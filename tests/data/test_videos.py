"""mgrec.data.videos: decoding, and a video as clips of its feature grid (checked on real clips)."""

import numpy as np
import pytest
from tests.helpers import remuxed

from mgrec.data.videos import (
    VideoClips,
    batched,
    clip_frame_picks,
    find_video,
    iter_frames,
    open_piped_video,
    probe_video,
    sliding_windows,
    video_id,
)
from mgrec.errors import InputError
from mgrec.timeline import FeatureGrid

SIZE = 32


def reference_clips(path, stride, window, frames_per_clip, size=SIZE):
    """Every clip the plain way: all frames in order, complete windows, the window's picks."""
    picks = clip_frame_picks(window, frames_per_clip)
    windows = sliding_windows(iter_frames(path, size), window, stride)
    return np.stack([np.stack([frames[i] for i in picks]) for frames in windows])



@pytest.mark.parametrize("length", [0, 5, 15, 16, 17, 19, 20, 21, 40, 121])
@pytest.mark.parametrize("window,stride", [(16, 4), (16, 16), (8, 3), (1, 1), (4, 6)])
def test_sliding_windows_are_the_complete_windows_of_the_feature_grid(length, window, stride):
    items = list(range(length))
    windows = list(sliding_windows(iter(items), window, stride))
    brute_force = [items[s : s + window] for s in range(0, length - window + 1, stride)]
    assert windows == brute_force
    assert len(windows) == FeatureGrid(30.0, stride, window).num_windows(length)


def test_sliding_windows_consume_the_whole_stream():
    consumed = []

    def stream():
        for item in range(10):
            consumed.append(item)
            yield item

    assert len(list(sliding_windows(stream(), 4, 4))) == 2  # items 8 and 9 belong to no window
    assert consumed == list(range(10))


def test_batched():
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batched([], 3)) == []



def test_video_id_drops_smg_modality_suffixes(tmp_path):
    assert video_id(tmp_path / "Sample0001_color.mp4") == "Sample0001"
    assert video_id(tmp_path / "Sample0001_skeleton.csv") == "Sample0001"
    assert video_id(tmp_path / "clip.b.mp4") == "clip.b"
    assert video_id(tmp_path / "_color.mp4") == "_color"


def test_smg_modality_suffix_in_any_case_names_the_same_video(tmp_path):
    # SMG's Sample0002_color.mp4 copied through Windows or renamed by a tool as Sample0002_Color.MP4: extract stored
    # its features as Sample0002_Color.npy, which no annotation id names, and find_video (data.videos) did not find it
    assert video_id(tmp_path / "Sample0002_Color.MP4") == "Sample0002"
    assert video_id(tmp_path / "Sample0002_COLOR.mp4") == "Sample0002"
    assert video_id(tmp_path / "Sample0002_Skeleton.csv") == "Sample0002"
    (tmp_path / "Sample0002_Color.MP4").write_bytes(b"")
    assert find_video(tmp_path, "Sample0002") == tmp_path / "Sample0002_Color.MP4"
    with pytest.raises(InputError, match="no video for 'sample0002'"):
        find_video(tmp_path, "sample0002")  # the id itself is matched as written
    (tmp_path / "Sample0002_color.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="two videos for 'Sample0002': Sample0002_Color.MP4 and Sample0002_color.mp4"):
        find_video(tmp_path, "Sample0002")



def test_decoding_a_real_video(carphone):
    stream = probe_video(carphone)
    assert stream.fps == pytest.approx(30000 / 1001)
    assert (stream.width, stream.height, stream.declared_frames) == (176, 144, 120)
    frames = list(iter_frames(carphone, 32))
    assert len(frames) == 120
    assert frames[0].shape == (32, 32, 3) and frames[0].dtype == np.uint8
    # A real video: consecutive frames are similar, but the clip is not a still image.
    difference = [np.abs(a.astype(int) - b).mean() for a, b in zip(frames, frames[1:])]
    assert 0 < np.median(difference) < 20
    assert np.abs(frames[0].astype(int) - frames[-1]).mean() > np.median(difference)


def test_a_file_cut_short_is_an_input_error_naming_it(carphone, tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(carphone.read_bytes()[:300_000])  # its index sits at the end: it cannot be opened
    with pytest.raises(InputError, match=r"cut.mp4: an MP4 whose index \(its moov box\) is missing or cut short"):
        probe_video(cut)
    with pytest.raises(InputError, match="cut.mp4: decoding failed at frame 0"):
        list(iter_frames(cut, 32))


@pytest.mark.parametrize("name, codec", [("clip.mkv", "mpeg4"), ("clip.webm", "libvpx-vp9")])
def test_a_matroska_file_cut_short_is_refused_by_its_declared_duration(make_video, tmp_path, name, codec):
    # Matroska and WebM declare no frame count: half a file decoded as a whole, shorter video (exit 0)
    rng = np.random.default_rng(0)
    video = make_video(tmp_path / name, [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(60)],
                       fps=10, codec=codec)
    assert probe_video(video).declared_frames == 0 and len(list(iter_frames(video, 16))) == 60
    cut = tmp_path / f"cut_{name}"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with pytest.raises(InputError, match=rf"cut_{name}: decoding stopped at \d+\.\d+ s \(frame \d+\), but the "
                                         r"container declares 6\.00 s \(truncated file\?\)"):
        list(iter_frames(cut, 16))


@pytest.mark.parametrize("name, codec", [("clip.mkv", "mpeg4"), ("clip.webm", "libvpx-vp9")])
def test_video_clips_refuse_a_matroska_file_cut_short_by_the_rule_extraction_decodes_by(make_video, tmp_path, name,
                                                                                        codec):
    # end to end, a Matroska file's packets were counted: 60 % of a 6-s file opened as a whole 3.2-s video, and
    # training cropped its clips and placed its labels on 32 of 60 frames without a word (extraction refused it)
    rng = np.random.default_rng(0)
    video = make_video(tmp_path / name, [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(60)],
                       fps=10, codec=codec)
    clips = VideoClips.open(video, stride=4, window=8, frames_per_clip=4, image_size=SIZE)
    assert clips.frame_count == 60 and clips.length == 14  # a whole file keeps every frame
    np.testing.assert_array_equal(clips.clips(10, 14), reference_clips(video, 4, window=8, frames_per_clip=4)[10:])
    cut = tmp_path / f"cut_{name}"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size * 6 // 10])
    with pytest.raises(InputError) as decoded:
        list(iter_frames(cut, SIZE))
    with pytest.raises(InputError, match=rf"cut_{name}: its frames stop at \d+\.\d+ s \(frame \d+\), but the "
                                         r"container declares 6\.00 s \(truncated file\?\); if the video plays to "
                                         r"its end, rewrite its header") as opened:
        VideoClips.open(cut, stride=4, window=8, frames_per_clip=4, image_size=SIZE)
    # the same file found as long by both paths: one rule, `check_whole`
    assert str(opened.value).split(" at ", 1)[1] == str(decoded.value).split(" at ", 1)[1]


def test_a_matroska_file_whose_audio_outlasts_its_video_or_which_starts_late_is_whole(tmp_path):
    # the container's duration covers every track: 2 s of video beside 5 s of audio was refused as truncated, and a
    # start offset was counted twice
    import av

    rng = np.random.default_rng(0)
    for name, audio, offset in (("audio.mkv", True, 0), ("late.mkv", False, 100)):
        with av.open(str(tmp_path / name), "w") as out:
            video = out.add_stream("mpeg4", rate=10)
            video.width = video.height = 32
            video.pix_fmt = "yuv420p"
            sound = out.add_stream("flac", rate=48000) if audio else None
            for index in range(20):
                frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), format="rgb24")
                frame.pts = index + offset
                for packet in video.encode(frame):
                    out.mux(packet)
            for packet in video.encode():
                out.mux(packet)
            for start in range(0, 5 * 48000, 960) if audio else ():
                samples = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.int16), format="s16", layout="mono")
                samples.sample_rate, samples.pts = 48000, start
                for packet in sound.encode(samples):
                    out.mux(packet)
            for packet in sound.encode() if audio else ():
                out.mux(packet)
        assert len(list(iter_frames(tmp_path / name, 16))) == 20, name
        assert VideoClips.open(tmp_path / name, stride=4, window=8, frames_per_clip=4, image_size=16).frame_count == 20
    assert probe_video(tmp_path / "late.mkv").late_start == 0.0  # the file starts with its one track


def test_a_video_track_that_starts_after_the_file_is_said(tmp_path):
    # an edit list or a recorder starting the audio first: the first frame is shown 2 s into the file, and every
    # subtitle cue mgrec wrote was 2 s early in a player, without a word
    import av

    from mgrec.extract.jobs import extract

    path = tmp_path / "late.mkv"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=10)
        video.width = video.height = 32
        video.pix_fmt = "yuv420p"
        sound = out.add_stream("flac", rate=48000)
        for start in range(0, 5 * 48000, 960):
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.int16), format="s16", layout="mono")
            samples.sample_rate, samples.pts = 48000, start
            for packet in sound.encode(samples):
                out.mux(packet)
        for index in range(30):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), format="rgb24")
            frame.pts = index + 20
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in [*video.encode(), *sound.encode()]:
            out.mux(packet)
    assert probe_video(path).late_start == pytest.approx(2.0, abs=0.05)
    (result,) = extract([path], tmp_path / "features", size=32, progress=False)
    assert result.warnings == (f"{path}: its first frame is shown 2.00 s into the file (the video track starts "
                               "late); mgrec's times count from that frame: a player shows them 2.00 s later",)


def test_a_video_failing_midway_names_the_frame(carphone_cut_midway):
    assert probe_video(carphone_cut_midway).declared_frames == 120
    decoded = 0
    with pytest.raises(InputError, match=r"carphone_cut.mp4: decoding (failed at|stopped at) frame (\d+)") as error:
        for _ in iter_frames(carphone_cut_midway, 32):
            decoded += 1
    assert 0 < decoded < 120
    assert f"frame {decoded}" in str(error.value)


def test_clip_frame_picks_spread_over_the_window():
    assert clip_frame_picks(16, 8).tolist() == [0, 2, 4, 6, 9, 11, 13, 15]
    assert clip_frame_picks(16, 16).tolist() == list(range(16))
    assert clip_frame_picks(5, 1).tolist() == [0]
    with pytest.raises(InputError, match="window 8: a clip takes 16 frames"):
        clip_frame_picks(8, 16)


@pytest.mark.parametrize("video,stride,ranges", [
    # bikes has keyframes at frames 0, 30, 76, 137, 187 and 242: all but the first range seek past frame 0.
    ("bikes", 4, [(0, 1), (20, 27), (45, 52), (58, 59)]),
    # carphone has one keyframe: every seek lands on frame 0.
    ("carphone", 1, [(0, 1), (50, 57), (104, 105)]),
])
def test_clips_are_the_windows_of_a_sequential_decode(video, stride, ranges, request):
    path = request.getfixturevalue(video)
    reference = reference_clips(path, stride, window=16, frames_per_clip=8)
    clips = VideoClips.open(path, stride=stride, window=16, frames_per_clip=8, image_size=SIZE)
    assert clips.length == len(clips) == len(reference)
    assert clips.shape == reference.shape == (clips.length, 8, SIZE, SIZE, 3)
    assert ranges[-1][1] == clips.length  # the last window is among those checked
    for start, stop in ranges:
        got = clips.clips(start, stop)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, reference[start:stop], err_msg=f"clips({start}, {stop})")


def test_iter_clips_is_every_clip_in_order(carphone):
    clips = VideoClips.open(carphone, stride=4, window=16, frames_per_clip=8, image_size=SIZE)
    batches = list(clips.iter_clips(batch=10))
    assert [len(b) for b in batches] == [10, 10, 7]
    np.testing.assert_array_equal(np.concatenate(batches), clips.clips(0, clips.length))


@pytest.mark.parametrize("frames,window,stride", [(120, 16, 4), (120, 16, 1), (120, 120, 7), (119, 120, 1),
                                                  (48, 8, 5)])
def test_length_is_the_number_of_complete_windows(frames, window, stride):
    clips = VideoClips("v.mp4", fps=25.0, frame_count=frames, stride=stride, window=window, frames_per_clip=1,
                       image_size=SIZE)
    assert clips.length == len(list(sliding_windows(range(frames), window, stride)))
    assert clips.length == FeatureGrid(25.0, stride, window).num_windows(frames)


def test_slicing_clamps_like_numpy(bikes_clip):
    clips = VideoClips.open(bikes_clip, stride=4, window=8, frames_per_clip=4, image_size=SIZE)
    reference = reference_clips(bikes_clip, 4, window=8, frames_per_clip=4)
    assert clips.length == len(reference) == 11
    np.testing.assert_array_equal(clips[9:20], reference[9:])
    np.testing.assert_array_equal(clips[-2:], reference[-2:])
    np.testing.assert_array_equal(clips[:1], reference[:1])
    assert clips[5:5].shape == clips[30:40].shape == (0, 4, SIZE, SIZE, 3)
    for key in (slice(0, 4, 2), 3, (slice(0, 2),)):
        with pytest.raises(TypeError, match="slice with step 1"):
            clips[key]
    for start, stop in ((-1, 2), (3, 3), (10, 12)):
        with pytest.raises(InputError, match=rf"bikes48.mp4: clips \[{start}, {stop}\) outside the video's 11 windows"):
            clips.clips(start, stop)


def test_a_video_at_another_frame_rate_than_its_annotations_is_refused(carphone):
    assert VideoClips.open(carphone, stride=4, window=16, frames_per_clip=8, image_size=SIZE,
                           expected_fps=29.97).fps == pytest.approx(30000 / 1001)
    with pytest.raises(InputError, match=r"carphone_pristine.mp4: the video runs at 29.970 fps but its annotations "
                                         r"at 30.000 fps"):
        VideoClips.open(carphone, stride=4, window=16, frames_per_clip=8, image_size=SIZE, expected_fps=30.0)


def test_open_checks_the_grid(carphone):
    with pytest.raises(InputError, match="stride must be a positive integer, got 0"):
        VideoClips.open(carphone, stride=0, window=16, frames_per_clip=8, image_size=SIZE)
    with pytest.raises(InputError, match="image_size must be a positive integer"):
        VideoClips.open(carphone, stride=4, window=16, frames_per_clip=8, image_size=-1)
    with pytest.raises(InputError, match="window 4: a clip takes 8 frames"):
        VideoClips.open(carphone, stride=4, window=4, frames_per_clip=8, image_size=SIZE)


def test_a_stream_without_index_or_timestamps(carphone, make_video, tmp_path):
    # A raw H.264 stream declares no frame count (counted from its packets), cannot seek and has no
    # timestamps: clips are found by decoding from the start and counting frames.
    frames = [frame for _, frame in zip(range(40), iter_frames(carphone, None))]
    raw = make_video(tmp_path / "raw.h264", frames, codec="libx264")
    assert probe_video(raw).declared_frames == 0
    clips = VideoClips.open(raw, stride=3, window=8, frames_per_clip=4, image_size=SIZE)
    assert clips.frame_count == 40
    reference = reference_clips(raw, 3, window=8, frames_per_clip=4)
    assert clips.length == len(reference) == 11
    np.testing.assert_array_equal(clips.clips(7, 11), reference[7:11])


def test_a_file_failing_midway_is_an_input_error_naming_it(carphone_cut_midway):
    clips = VideoClips.open(carphone_cut_midway, stride=4, window=16, frames_per_clip=8, image_size=SIZE)
    assert clips.length == 27  # from the 120 frames the container declares
    assert clips.clips(0, 1).shape == (1, 8, SIZE, SIZE, 3)
    with pytest.raises(InputError, match=r"carphone_cut.mp4: (decoding failed at frame|frame) \d+"):
        clips.clips(clips.length - 1, clips.length)
    with pytest.raises(InputError, match=r"carphone_cut.mp4: decoding (failed|stopped) at frame \d+"):
        list(clips.iter_clips(batch=8))


def test_find_video_finds_the_file_of_an_annotation_id(tmp_path):
    for name in ("Sample0001_color.mp4", "Sample0001_skeleton.csv", "Sample0002.MKV", "Sample00011.mp4"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "deeper").mkdir()
    (tmp_path / "deeper" / "Sample0003.mp4").write_bytes(b"")
    assert find_video(tmp_path, "Sample0001") == tmp_path / "Sample0001_color.mp4"
    assert find_video(tmp_path, "Sample0002") == tmp_path / "Sample0002.MKV"
    looked_for = r"no video for 'Sample0003'; looked for Sample0003 and Sample0003_color with any of \.mp4, .*\.webm"
    with pytest.raises(InputError, match=looked_for):
        find_video(tmp_path, "Sample0003")  # not recursive
    (tmp_path / "Sample0001.avi").write_bytes(b"")
    with pytest.raises(InputError, match="two videos for 'Sample0001': Sample0001.avi and Sample0001_color.mp4"):
        find_video(tmp_path, "Sample0001")
    with pytest.raises(InputError, match="missing: no such folder"):
        find_video(tmp_path / "missing", "Sample0001")


def test_a_video_stored_rotated_is_decoded_as_it_is_shown(make_video, tmp_path):
    # A phone's portrait video is stored landscape with a display rotation; frames were read sideways.
    import av

    picture = np.zeros((32, 64, 3), np.uint8)
    picture[:16, :16] = 255  # white top-left corner of the stored (landscape) picture
    plain = make_video(tmp_path / "plain.mp4", [picture] * 3)
    rotated = tmp_path / "rotated.mp4"
    with av.open(str(plain)) as source, av.open(str(rotated), "w") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        stream.set_display_rotation(90)  # counterclockwise: the top-left corner is shown bottom-left
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    shown = next(iter_frames(rotated, None))
    assert shown.shape == (64, 32, 3)
    assert shown[-8:, :8].mean() > 200 and shown[:8, :8].mean() < 50
    square = next(iter_frames(rotated, SIZE))
    np.testing.assert_array_equal(square, np.rot90(next(iter_frames(plain, SIZE))))
    # a turn of no quarter turns was rounded (45 degrees to none, 135 to 180) without a word
    slanted = tmp_path / "slanted.mp4"
    with av.open(str(plain)) as source, av.open(str(slanted), "w") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        stream.set_display_rotation(45)
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    with pytest.raises(InputError, match=r"slanted.mp4: a frame is to be shown turned by 45 degrees; mgrec turns "
                                         r"frames by quarter turns only"):
        next(iter_frames(slanted, SIZE))
    with pytest.raises(InputError, match=r"slanted.mp4: a frame is to be shown turned by 45 degrees"):  # end to end
        VideoClips.open(slanted, stride=1, window=2, frames_per_clip=2, image_size=SIZE).clips(0, 1)


def test_a_variable_frame_rate_is_refused_naming_the_first_frame_off_the_grid(tmp_path):
    # Frames were placed at index / average fps: 30 frames at 25 fps then 30 at 5 fps put the gestures
    # of the first part seconds late, without a word.
    from fractions import Fraction

    import av

    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        milliseconds = 0
        for index in range(60):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), index * 4, np.uint8), format="rgb24")
            frame.pts, frame.time_base = milliseconds, Fraction(1, 1000)
            milliseconds += 40 if index < 30 else 200
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(InputError, match=r"vfr.mp4: variable frame rate: frame \d+ is shown at [\d.]+ s, but at the "
                                         r"stream's average 8.523 fps mgrec would place it at [\d.]+ s; re-encode"):
        list(iter_frames(path, SIZE))
    # read as it arrives (a camera piped in, or a URL: the container opened by the caller), it cannot be re-encoded as
    # a file: ffmpeg is to keep the rate on its way in
    with pytest.raises(InputError, match=r"average 8.523 fps mgrec would place it at [\d.]+ s; a live source that "
                                         r"drops frames, or whose clock drifts: have ffmpeg keep its rate constant "
                                         r"\(ffmpeg -i SOURCE -fps_mode cfr -r 8.523 -f matroska - \| mgrec stream"):
        list(iter_frames("stream", SIZE, container=av.open(str(path))))


@pytest.mark.parametrize("first_frames", [50, 5])
def test_two_mpeg_ts_files_joined_byte_by_byte_are_named_where_their_timestamps_go_back(make_video, tmp_path,
                                                                                        first_frames):
    # `cat a.ts b.ts > c.ts`: the second part's timestamps start again, refused as "variable frame rate" with the
    # advice to re-encode at a constant rate (which drops the second part); a first part shorter than the drift
    # allowed (5 frames, 0.2 s) decoded on, its frames placed on one clock, and end to end, counted packets opened it
    import av

    rng = np.random.default_rng(0)
    parts = [make_video(tmp_path / f"{name}.ts", [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
                                                  for _ in range(count)]) for name, count in (("a", first_frames),
                                                                                              ("b", 50))]
    joined = tmp_path / "c.ts"
    joined.write_bytes(b"".join(part.read_bytes() for part in parts))
    with av.open(str(joined)) as container:
        assert container.format.name == "mpegts"  # PyAV writes MPEG-TS here
    back = rf"its timestamps go back at %s {first_frames}, from {(first_frames - 1) / 25:.2f} s to 0.00 s: it holds "
    cause = (r"two streams one after the other \(videos joined byte by byte, cat a.ts b.ts > c.ts, or a recorder "
             r"restarted\), which one clock cannot place; ")
    with pytest.raises(InputError, match=rf"^{joined}: {back % 'frame'}{cause}give each part on its own, or join the "
                                         r"parts with ffmpeg's concat demuxer"):
        list(iter_frames(joined, SIZE))
    with pytest.raises(InputError, match=rf"^stream: {back % 'frame'}.*; stream each part on its own, or join the "
                                         r"parts .* -f mpegts - \| mgrec stream RUN -"):
        list(iter_frames("stream", SIZE, container=av.open(str(joined))))
    with pytest.raises(InputError, match=rf"^{joined}: {back % 'packet'}"):
        VideoClips.open(joined, stride=4, window=8, frames_per_clip=4, image_size=SIZE)
    for part in parts:  # each part alone is whole
        assert len(list(iter_frames(part, SIZE))) == VideoClips.open(part, stride=1, window=1, frames_per_clip=1,
                                                                      image_size=SIZE).frame_count


def test_a_pipe_that_ends_before_its_first_byte_is_said_to_be_empty():
    """`mgrec stream RUN - < /dev/null` (or a sender that fails before writing): "Invalid data found when processing
    input ...; pipe Matroska or MPEG-TS ..., not MP4", as if an MP4 had been piped."""
    import io

    with pytest.raises(InputError, match=r"^standard input: nothing was piped \(it ended before its first byte"):
        open_piped_video(io.BytesIO(b""), "standard input")
    with pytest.raises(InputError, match=r"^standard input: cannot read a video container from it \(.*Invalid data"):
        open_piped_video(io.BytesIO(b"not a video " * 1000), "standard input")


def _without_its_first_keyframe(tmp_path, make_video, gop: int):
    """A 25-fps H.264 video of 60 frames, a keyframe every `gop`, remuxed into Matroska without its first packet (the
    keyframe): what `ffmpeg -ss ... -c copy` makes of a cut between keyframes. Its decoder gives nothing until the
    next keyframe, and no error."""
    import av

    rng = np.random.default_rng(0)
    whole = tmp_path / f"whole{gop}.mp4"
    with av.open(str(whole), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={
            "x264-params": f"bframes=0:keyint={gop}:min-keyint={gop}:scenecut=0"})
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for _ in range(60):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    cut = tmp_path / f"cut{gop}.mkv"
    with av.open(str(whole)) as source, av.open(str(cut), "w") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        packets = [packet for packet in source.demux(source.streams.video[0]) if packet.dts is not None]
        for packet in packets[1:]:
            packet.stream = stream
            out.mux(packet)
    return cut


def test_frames_lost_before_the_first_keyframe_are_refused_not_counted_from_the_next(tmp_path, make_video):
    # the first 24 frames were dropped by the decoder without a word: features counted from frame 25, shown at 1.00 s,
    # as frame 0, and every detection of the video was a second early, exit 0
    cut = _without_its_first_keyframe(tmp_path, make_video, gop=25)
    with pytest.raises(InputError) as error:
        list(iter_frames(cut, SIZE))
    assert str(error.value).startswith(
        f"{cut}: its first 24 frames (0.96 s) could not be decoded: the stream starts at 0.04 s but its first frame "
        "that decodes is shown at 1.00 s (it starts without a keyframe: cut with -c copy between keyframes, or damaged "
        "at its start); mgrec counts times from the first frame it decodes, which would put every time 0.96 s early.")
    # a few frames lost (an open GOP's leading frames; here 4, 0.16 s) are within the rule of a variable frame rate
    assert len(list(iter_frames(_without_its_first_keyframe(tmp_path, make_video, gop=5), SIZE))) == 55


def test_a_still_image_named_as_a_video_is_said_to_be_one(tmp_path, make_video):
    # a photo or a thumbnail saved as clip.mp4 opened as a one-frame video at a made-up 25 fps, and was refused as
    # "1 frames, shorter than one window of 16 frames", as if a video had been cut short
    import io

    from PIL import Image

    picture = Image.fromarray(np.zeros((32, 32, 3), np.uint8))
    for kind in ("PNG", "JPEG", "WEBP", "BMP"):
        path = tmp_path / f"{kind}.mp4"
        picture.save(path, format=kind)
        expected = f"{path}: a still image ({kind}), not a video, though named .mp4; give the video itself"
        with pytest.raises(InputError) as error:
            probe_video(path)
        assert str(error.value) == expected
        with pytest.raises(InputError) as error:
            VideoClips.open(path, stride=4, window=16, frames_per_clip=8, image_size=SIZE)
        assert str(error.value) == expected
        with pytest.raises(InputError) as error, path.open("rb") as pipe:
            open_piped_video(io.BytesIO(pipe.read()), "standard input")
        assert str(error.value).startswith(f"standard input: a still image ({kind}), not a video")
    # an animated GIF is a video of its frames
    frames = [Image.fromarray(np.full((32, 32, 3), 10 * i, np.uint8)) for i in range(20)]
    frames[0].save(tmp_path / "animated.mp4", format="GIF", save_all=True, append_images=frames[1:], duration=40)
    assert len(list(iter_frames(tmp_path / "animated.mp4", SIZE))) == 20 and probe_video(tmp_path / "animated.mp4")


def test_an_mp4_without_its_index_is_said_to_be_one(tmp_path, make_video):
    # a phone that lost power mid-recording, or a copy cut short, leaves an MP4 without its index (moov, written at
    # the end): refused as `cannot open the video (corrupt or truncated file?): [Errno 1094995529] Invalid data found
    # when processing input: '<file>'`, the file named twice, with FFmpeg's error number
    whole = make_video(tmp_path / "whole.mp4", [np.full((32, 32, 3), 8 * i, np.uint8) for i in range(20)])
    data = whole.read_bytes()
    assert data.index(b"mdat") < data.index(b"moov")  # the index at the end, as a recorder writes it
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: data.index(b"moov") - 4])  # the recording stopped before its index was written
    with pytest.raises(InputError) as error:
        probe_video(cut)
    assert str(error.value).startswith(f"{cut}: an MP4 whose index (its moov box) is missing or cut short: a recording "
                                       "that was not stopped cleanly")
    for end in (data.index(b"mdat") + 100, data.index(b"moov") + 40):  # a copy cut in the media, or in its index
        cut.write_bytes(data[:end])
        with pytest.raises(InputError, match="an MP4 whose index .* is missing or cut short"):
            probe_video(cut)
    # anything else FFmpeg cannot open: its reason, without the file named again or an error number
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 10)
    with pytest.raises(InputError) as error:
        probe_video(text)
    assert str(error.value) == (f"{text}: cannot open the video (corrupt or truncated file?): Invalid data found when "
                                "processing input")


def test_video_clips_count_a_one_frame_video_as_one_frame(tmp_path, make_video):
    video = make_video(tmp_path / "one.mp4", [np.zeros((32, 32, 3), np.uint8)])
    with pytest.raises(InputError) as error:
        VideoClips.open(video, stride=4, window=16, frames_per_clip=8, image_size=SIZE)
    assert str(error.value) == f"{video}: 1 frame, shorter than one window of 16 frames"


def _with_cover_art(path, video_frames: int):
    """An MP4 of silent audio, `video_frames` frames of video (none: an audio file) and a cover picture (an attached
    picture: FFmpeg lists it as a video stream of one frame)."""
    import av

    with av.open(str(path), "w") as out:
        sound = out.add_stream("aac", rate=44100)
        cover = out.add_stream("mjpeg", rate=1)
        cover.width = cover.height = 32
        cover.pix_fmt = "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        video = out.add_stream("mpeg4", rate=25) if video_frames else None
        if video is not None:
            video.width = video.height = 32
            video.pix_fmt = "yuv420p"
        for packet in cover.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")):
            out.mux(packet)
        for index in range(video_frames):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 8 * index, np.uint8), format="rgb24")
            for packet in video.encode(frame):
                out.mux(packet)
        for start in range(0, 44100, 1024):
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            samples.sample_rate, samples.pts = 44100, start
            for packet in sound.encode(samples):
                out.mux(packet)
        for packet in [*cover.encode(), *(video.encode() if video else ()), *sound.encode()]:
            out.mux(packet)
    return path


def test_cover_art_is_no_video_stream(tmp_path):
    # an audio file with its cover picture, named .mp4: `the video stream's frame rate is 90000 fps; mgrec places
    # frames by rates of 0.001 to 1000 fps`, the cover read as the video
    song = _with_cover_art(tmp_path / "song.mp4", video_frames=0)
    with pytest.raises(InputError) as error:
        probe_video(song)
    assert str(error.value) == (f"{song}: no video stream in this file, only a still picture (cover art beside its "
                                "audio); give the video itself")
    # a video with a cover picture: its video is read, whichever stream comes first
    clip = _with_cover_art(tmp_path / "clip.mp4", video_frames=20)
    assert (probe_video(clip).fps, probe_video(clip).declared_frames) == (25.0, 20)
    assert len(list(iter_frames(clip, SIZE))) == 20
    assert VideoClips.open(clip, stride=4, window=8, frames_per_clip=4, image_size=SIZE).frame_count == 20


def test_a_video_whose_header_gives_no_frame_size_is_not_blamed_on_a_small_size(tmp_path, make_video):
    """An MPEG-4 clip remuxed into MPEG-TS without its codec's setup (its frames undecodable) probes as 0x0:
    `mgrec stream` of the file, and an end-to-end run's video, refused it as 'its frames are 0x0 pixels, under the 16
    pixels a side ...; give the video at its recorded size', where extract and detect said it did not decode. The
    message now says what is wrong: no frame size could be read, so it cannot be decoded."""
    from mgrec.data.videos import VideoClips, check_frame_size, probe_video

    clip = make_video(tmp_path / "clip.mp4", [np.full((32, 32, 3), 9 * i, np.uint8) for i in range(20)])
    remuxed_ts = remuxed(clip, tmp_path / "remuxed.ts", "mpegts")
    probed = probe_video(remuxed_ts)
    assert (probed.width, probed.height) == (0, 0)
    unknown = (f"{remuxed_ts}: FFmpeg reads no frame size from its video stream (0x0: the parameters of its codec are "
               "missing or damaged; a corrupt or truncated file, or one remuxed without them?), so its frames cannot "
               "be decoded; give the file it was made from, or a copy a player shows")
    for read in (lambda: check_frame_size(remuxed_ts, probed.width, probed.height, 112),
                 lambda: VideoClips.open(remuxed_ts, stride=4, window=8, frames_per_clip=2, image_size=112)):
        with pytest.raises(InputError) as refused:
            read()
        assert str(refused.value) == unknown
    with pytest.raises(InputError, match=r"its frames are 1x20 pixels, under the 16"):  # a size read: small
        check_frame_size("thin.mp4", 1, 20, 112)


def test_a_video_of_a_few_pixels_is_refused_and_one_scaled_up_much_is_warned_of_once(tmp_path, make_video, capsys):
    """A 2x2 video was scaled up to the backbone's input and extracted (or trained on, or streamed) without a word.
    Every reader of frames for features now goes by one rule (`check_frame_size`): under MIN_FRAME_SIDE pixels a side
    refused, naming the file, its size and the floor; scaled up more than MAX_UPSCALE on a side, a warning returned to
    the caller's channel (it printed to stderr itself, once per process through a module-level set, so a Python caller
    of extraction never had it in `ExtractResult.warnings`): nothing printed here, nothing kept between calls."""
    import re
    import warnings

    from mgrec.data.videos import MAX_UPSCALE, MIN_FRAME_SIDE, VideoClips, check_frame_size, iter_frames

    assert (MIN_FRAME_SIDE, MAX_UPSCALE) == (16, 4.0)
    tiny = make_video(tmp_path / "tiny.mp4", [np.full((2, 2, 3), 9 * i, np.uint8) for i in range(20)])
    floor = f"{tiny}: its frames are 2x2 pixels, under the 16 pixels a side that mgrec reads gestures in"
    for read in (lambda: list(iter_frames(tiny, 224)), lambda: list(iter_frames(tiny, None)),  # pose: own size
                 lambda: VideoClips.open(tiny, stride=4, window=16, frames_per_clip=2, image_size=224)):
        with pytest.raises(InputError) as refused:
            read()
        assert str(refused.value).startswith(floor)
    with pytest.raises(InputError, match=r"its frames are 30x12 pixels, under the 16"):
        check_frame_size("wide.mp4", 30, 12, 224)  # a side under the floor is enough
    assert check_frame_size("floor.mp4", 16, 16, 64) is None  # at the floor, scaled up 4x: neither refused nor warned

    small = make_video(tmp_path / "small.mp4", [np.full((20, 20, 3), 9 * i, np.uint8) for i in range(20)])
    warned = (f"{small}: its frames are 20x20 pixels, scaled up 5.6x (more than 4x on a side) to the backbone's input "
              "of 112x112: its features see little of each gesture; a larger recording gives better ones")
    assert check_frame_size(small, 20, 20, 112) == check_frame_size(small, 20, 20, 112) == warned  # nothing kept
    said: list[str] = []
    assert len(list(iter_frames(small, 112, warn=said.append))) == 20 and said == [warned]  # once, at its first frame
    with pytest.warns(UserWarning, match=re.escape(warned)):  # no `warn`: Python's own channel, which a caller catches
        list(iter_frames(small, 112))
    clips = VideoClips.open(small, stride=4, window=16, frames_per_clip=2, image_size=112)
    assert clips.warnings == (warned,)  # said by `mgrec data check`, whose warnings training logs
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, by the probe: not again at each pass over its clips
        assert sum(map(len, clips.iter_clips(2))) == clips.length
    assert len(list(iter_frames(small, 64, warn=said.append))) == 20 and said == [warned]  # 3.2x: no word
    assert capsys.readouterr().err == ""  # nothing printed by the reader itself


def _raw_stream(path, muxer: str, codec: str, fps: int, frames: int = 40):
    """`frames` frames at `fps` written as a raw elementary stream (FFmpeg's `muxer`: no container, no timestamps)
    under the name `path`, as a camera's .h264 renamed .mp4."""
    import av

    with av.open(str(path), "w", format=muxer) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), index * 5, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_a_raw_stream_is_placed_by_its_codec_s_frame_rate_not_ffmpeg_s_default(tmp_path):
    # A raw elementary stream records no timestamps: FFmpeg's raw demuxers give it an average rate of 25 fps whatever
    # the video's. A 10-fps camera's H.264 stream named .mp4 was extracted at 25 fps without a word (every time 2.5
    # times early); a 10-fps MPEG-4 stream (.m4v) was refused as a variable frame rate, with advice to re-encode at 25.
    for muxer, codec in (("h264", "libx264"), ("m4v", "mpeg4")):
        raw = _raw_stream(tmp_path / f"{muxer}.mp4", muxer, codec, fps=10)
        assert probe_video(raw).fps == 10.0
        assert len(list(iter_frames(raw, SIZE))) == 40  # its frames on a 10-fps grid: no variable frame rate
    # a codec that says no rate (MJPEG) has none: refused, not read at the made-up 25 fps
    mjpeg = _raw_stream(tmp_path / "cam.avi", "mjpeg", "mjpeg", fps=10)
    with pytest.raises(InputError, match=r"cam.avi: a raw MJPEG video stream without a container, and its codec's "
                                         r"header gives no frame rate: .*ffmpeg -framerate FPS -i IN -c copy OUT.mkv"):
        probe_video(mjpeg)


def test_the_advice_for_a_raw_stream_under_another_name_gives_ffmpeg_its_rate(tmp_path):
    # A camera's cam.h264 was told `ffmpeg -i IN -c copy OUT.mkv`, which times a raw stream's frames at FFmpeg's 25 fps:
    # a 10-fps camera's video came out 2.5 times faster, every gesture early. Its rate goes before -i; a container's
    # advice stays as it was.
    from mgrec.data.features import feature_rows
    from mgrec.data.videos import VIDEO_SUFFIXES
    from mgrec.extract.video import collect_inputs

    folder = tmp_path / "camera"
    folder.mkdir()
    raw = _raw_stream(folder / "cam.h264", "h264", "libx264", fps=10)
    given_rate = ("ffmpeg -framerate FPS -i IN -c copy OUT.mkv puts it into a container without re-encoding, FPS the "
                  "rate it was recorded at: without -framerate FFmpeg times a raw stream's frames at 25 fps)")
    for read in (lambda: collect_inputs([raw], VIDEO_SUFFIXES, "video file"), lambda: feature_rows(raw)):
        with pytest.raises(InputError) as error:
            read()
        assert str(error.value).startswith(f"{raw}: a video (raw H.264 video) under a name mgrec does not read")
        assert str(error.value).endswith(given_rate)
    (folder / "clip.mp4").write_bytes(raw.read_bytes())  # the folder's own video, so that the folder is looked in
    with pytest.raises(InputError, match=r"camera: 1 video under a name mgrec does not read as one, .*\(ffmpeg -i IN "
                                         r"-c copy OUT.mkv rewrites a container without re-encoding; a raw stream "
                                         r"gets one by ffmpeg -framerate FPS -i IN -c copy OUT.mkv, FPS the rate it "
                                         r"was recorded at: without -framerate FFmpeg times a raw stream's frames at "
                                         r"25 fps\), or move it out of the folder"):
        collect_inputs([folder], VIDEO_SUFFIXES, "video file")
