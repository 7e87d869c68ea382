"""Video in/out: frame count, timestamps, rotation, audio identity, bad inputs, atomic output."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from contextlib import ExitStack as DoesNotRaise
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from blurcli.errors import InputError, OutputError, UsageError
from blurcli.media._audio import AudioInterleaver
from blurcli.media.video_io import VideoFrame, VideoReader, VideoWriter, probe_video
from tests.media_factory import corrupt, frame_value, make_clip, truncate

HAMILTON = "video/short_hamilton_clip.mp4"


# ---------------------------------------------------------------- helpers


def transcode(src: Path, dst: Path, *, audio: bool = True, **writer_options) -> list[VideoFrame]:
    """Decode src and write every frame unchanged to dst; return the frames read."""
    frames = []
    with VideoReader(src) as reader, VideoWriter(
        dst, reader.info, audio_from=src if audio else None, preset="ultrafast", **writer_options
    ) as writer:
        for frame in reader:
            frames.append(frame)
            writer.write(frame)
    return frames


def video_times(path: Path) -> list[Fraction]:
    """Every decoded frame's presentation time in seconds (exact), read with plain PyAV."""
    with av.open(str(path)) as container:
        return [frame.pts * frame.time_base for frame in container.decode(video=0)]


def audio_hashes(path: Path) -> list[list[str]]:
    """sha256 of every audio packet's bytes, per audio stream, in order."""
    with av.open(str(path)) as container:
        streams = list(container.streams.audio)
        hashes: dict[int, list[str]] = {s.index: [] for s in streams}
        if streams:
            for packet in container.demux(*streams):
                if packet.dts is not None:
                    hashes[packet.stream.index].append(hashlib.sha256(bytes(packet)).hexdigest())
        return [hashes[s.index] for s in streams]


def audio_times(path: Path) -> list[list[Fraction]]:
    """Every audio packet's presentation time in seconds (exact), per audio stream, in order."""
    with av.open(str(path)) as container:
        streams = list(container.streams.audio)
        times: dict[int, list[Fraction]] = {s.index: [] for s in streams}
        if streams:
            for packet in container.demux(*streams):
                if packet.dts is not None:
                    times[packet.stream.index].append(packet.pts * packet.time_base)
        return [times[s.index] for s in streams]


def marked(size: tuple[int, int]):
    """image_fn: grey picture with a red block in the UPRIGHT top-left corner."""

    def image(i: int) -> np.ndarray:
        width, height = size
        img = np.full((height, width, 3), 120, np.uint8)
        img[: height // 4, : width // 4] = (0, 0, 255)
        return img

    return image


def red_corner(image: np.ndarray) -> bool:
    h, w = image.shape[:2]
    corner = image[: h // 8, : w // 8].astype(int)
    return bool(corner[..., 2].mean() > 200 and corner[..., 0].mean() < 60)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".part" in p.name)


# ---------------------------------------------------------------- timing and frames


@pytest.mark.parametrize(
    "clip_options",
    [
        dict(frames=12, fps=25),
        dict(frames=12, fps=Fraction(30000, 1001)),
        dict(pts=[0, 33, 50, 200, 210, 211, 700, 733, 1500], time_base=Fraction(1, 1000)),  # VFR
        dict(pts=[0, 1001, 3003, 3500, 9000, 9001], time_base=Fraction(1, 30000)),
    ],
    ids=["cfr25", "ntsc", "vfr_ms", "vfr_30k"],
)
def test_round_trip_keeps_every_frame_and_timestamp(tmp_path, clip_options):
    src = make_clip(tmp_path / "in.mp4", audio=True, **clip_options)
    frames = transcode(src, tmp_path / "out.mp4")

    assert video_times(tmp_path / "out.mp4") == video_times(src)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert [f.time for f in frames] == [float(t) for t in video_times(src)]
    # frame order survives: frame i was painted (i * 40) % 256
    with VideoReader(tmp_path / "out.mp4") as reader:
        assert [frame_value(f.image) for f in reader] == [i % 32 for i in range(len(frames))]
    assert probe_video(tmp_path / "out.mp4").frame_count == len(frames)


def test_info_of_real_clip_and_round_trip(tmp_path, data_dir):
    src = data_dir / HAMILTON
    info = probe_video(src)
    assert (info.width, info.height, info.rotation, info.codec_name) == (640, 360, 0, "h264")
    assert info.time_base == Fraction(1, 11988) and info.audio_streams == 1 and info.frame_count == 275

    frames = transcode(src, tmp_path / "out.mp4")
    assert len(frames) == 275
    assert frames[0].image.shape == (360, 640, 3) and frames[0].image.dtype == np.uint8
    assert video_times(tmp_path / "out.mp4") == video_times(src)  # starts at 0.852 s, as the input
    assert audio_hashes(tmp_path / "out.mp4") == audio_hashes(src)
    assert audio_times(tmp_path / "out.mp4") == audio_times(src)  # and in sync: same times
    out = probe_video(tmp_path / "out.mp4")
    assert (out.time_base, out.duration_s, out.frame_count) == (info.time_base, info.duration_s, 275)
    with av.open(str(src)) as a, av.open(str(tmp_path / "out.mp4")) as b:
        assert abs(a.duration - b.duration) < 30_000  # µs; container durations agree


def test_decoded_pixels_match_pyav_reference(data_dir):
    """The cv2 I420 fast path gives the same picture as PyAV's own conversion."""
    with VideoReader(data_dir / HAMILTON) as reader:
        ours = next(iter(reader)).image
    with av.open(str(data_dir / HAMILTON)) as container:
        theirs = next(container.decode(video=0)).to_ndarray(format="bgr24")
    assert np.abs(ours.astype(int) - theirs).mean() < 2.5


def test_pixels_survive_encoding(tmp_path):
    rng = np.random.default_rng(1)
    pictures = [cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3), np.uint8), (9, 9), 3) for _ in range(3)]
    src = make_clip(tmp_path / "in.mp4", frames=3, size=(128, 96), image_fn=lambda i: pictures[i])
    transcode(src, tmp_path / "out.mp4", crf=10)
    with VideoReader(tmp_path / "out.mp4") as reader:
        for frame, picture in zip(reader, pictures, strict=True):
            assert np.abs(frame.image.astype(int) - picture).mean() < 4


def test_writer_takes_pts_from_frames_not_from_counting(tmp_path):
    """Frames carry their own pts; a dropped frame leaves a gap instead of shifting the rest."""
    src = make_clip(tmp_path / "in.mp4", frames=10, fps=25)
    with VideoReader(src) as reader, VideoWriter(tmp_path / "out.mp4", reader.info, audio_from=None) as writer:
        for frame in reader:
            if frame.index != 4:
                writer.write(frame)
    times = video_times(src)
    assert video_times(tmp_path / "out.mp4") == times[:4] + times[5:]


@pytest.mark.parametrize(
    "name, options",
    [
        ("hevc.mp4", dict(codec="libx265", rotation=90)),  # what phones record
        ("mpeg4.avi", dict(codec="mpeg4", audio=True, audio_codec="mp3")),
        ("mjpeg.mkv", dict(codec="mjpeg")),  # full-range yuvj420p: the PyAV conversion path
    ],
)
def test_other_input_codecs(tmp_path, name, options):
    src = make_clip(tmp_path / name, frames=8, size=(128, 96), **options)
    frames = transcode(src, tmp_path / "out.mp4")
    assert [frame_value(f.image) for f in frames] == list(range(8))
    assert all(f.image.shape == (96, 128, 3) for f in frames)
    with VideoReader(tmp_path / "out.mp4") as reader:
        assert [frame_value(f.image) for f in reader] == list(range(8))
    assert video_times(tmp_path / "out.mp4") == video_times(src)
    assert audio_hashes(tmp_path / "out.mp4") == audio_hashes(src)


def test_writer_repairs_missing_and_repeated_pts(tmp_path, caplog):
    src = make_clip(tmp_path / "in.mp4", frames=2, fps=25)
    info = probe_video(src)
    image = np.zeros((info.height, info.width, 3), np.uint8)
    with VideoWriter(tmp_path / "out.mp4", info, audio_from=None) as writer:
        for index, pts in enumerate([0, 512, 512, None, 2560]):
            writer.write(VideoFrame(image.copy(), pts, info.time_base, index))
    # a repeat moves one tick on, a missing pts one nominal frame (512 ticks of 1/12800 s at 25 fps)
    assert info.time_base == Fraction(1, 12800)
    assert video_times(tmp_path / "out.mp4") == [n * info.time_base for n in (0, 512, 513, 1025, 2560)]
    assert any("not after" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- rotation


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_is_applied_on_read_and_kept_on_write(tmp_path, rotation):
    size = (64, 48)
    src = make_clip(tmp_path / "in.mp4", frames=4, size=size, rotation=rotation, image_fn=marked(size))
    info = probe_video(src)
    assert info.rotation == rotation
    swapped = rotation in (90, 270)
    assert (info.width, info.height) == size
    assert (info.coded_width, info.coded_height) == ((48, 64) if swapped else (64, 48))

    frames = transcode(src, tmp_path / "out.mp4")
    assert frames[0].image.shape == (48, 64, 3)  # upright (h, w)
    assert all(red_corner(f.image) for f in frames)

    out = probe_video(tmp_path / "out.mp4")
    assert (out.rotation, out.width, out.height, out.coded_width, out.coded_height) == (
        info.rotation, info.width, info.height, info.coded_width, info.coded_height)
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert next(container.decode(video=0)).rotation % 360 == rotation
    with VideoReader(tmp_path / "out.mp4") as reader:
        assert all(red_corner(f.image) for f in reader)


@pytest.mark.parametrize(
    "rotation, depth", [(0, 8), (90, 8), (180, 8), (270, 8), (0, 10), (90, 10)]
)
def test_masks_drawn_in_the_stored_planes_land_on_the_upright_box(tmp_path, rotation, depth):
    """Pass 2 redacts the decoded YUV planes (stored orientation) from upright boxes: the mask must
    land where the upright box is, and every pixel outside its window must keep its value. A
    10-bit HLG clip is redacted in its own 16-bit planes and written 10-bit."""
    from blurcli.redact import redact_frame
    from blurcli.settings import RedactSettings

    size = (96, 64)
    rng = np.random.default_rng(3)
    texture = cv2.resize(rng.integers(0, 255, (4, 6, 3), np.uint8), size, interpolation=cv2.INTER_CUBIC)
    checks = (np.indices((16, 16)).sum(axis=0) // 2 % 2 * 255).astype(np.uint8)
    texture[12:28, 60:76] = checks[:, :, None]  # a sharp "face" inside the box, smooth elsewhere
    deep = dict(codec="libx265", pix_fmt="yuv420p10le", colour=(9, 18, 9, 1)) if depth == 10 else {}
    src = make_clip(tmp_path / "in.mp4", frames=3, size=size, rotation=rotation, image_fn=lambda i: texture, **deep)
    box = np.array([[56, 8, 80, 32]], np.float32)  # upright pixels, away from the centre
    out = tmp_path / "out.mp4"
    with VideoReader(src) as reader, VideoWriter(out, reader.info, audio_from=None) as writer:
        for frame in reader:
            assert frame.has_planes and frame.bits == depth  # the decoded planes, never converted to BGR
            redact_frame(frame, box, RedactSettings(feather=0.0, head_scale=1.0))
            writer.write(frame)
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == ("yuv420p10le" if depth == 10 else "yuv420p")
    with VideoReader(src) as before, VideoReader(out) as after:
        for a, b in zip(before, after):
            diff = np.abs(a.image.astype(int) - b.image.astype(int)).max(axis=2)
            assert diff[12:28, 60:76].mean() > 20, "the box was not hidden"
            outside = np.ones_like(diff, bool)
            outside[4:36, 52:84] = False  # the box's window, with a margin for 4:2:0 chroma
            assert np.percentile(diff[outside], 99) < 12, "pixels changed away from the box"


def test_rotation_agrees_with_ffmpeg_autorotate(tmp_path):
    """What a player shows (ffmpeg applies the display matrix) is what the reader yields."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    size = (64, 48)
    src = make_clip(tmp_path / "in.mp4", frames=2, size=size, rotation=90, image_fn=marked(size))
    transcode(src, tmp_path / "out.mp4")
    for path in (src, tmp_path / "out.mp4"):
        raw = subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-frames:v", "1",
             "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
            capture_output=True, check=True, timeout=60,
        ).stdout
        shown = np.frombuffer(raw, np.uint8).reshape(48, 64, 3)
        assert red_corner(shown)


# ---------------------------------------------------------------- odd sizes, containers


@pytest.mark.parametrize("size, stored", [((63, 47), (64, 48)), ((64, 46), (64, 46)), ((66, 50), (66, 50))])
def test_odd_sizes_are_padded_to_even(tmp_path, size, stored):
    rng = np.random.default_rng(2)
    pictures = [cv2.GaussianBlur(rng.integers(0, 256, (size[1], size[0], 3), np.uint8), (9, 9), 3) for _ in range(3)]
    src = make_clip(tmp_path / "in.mkv", frames=3, size=size, codec="mpeg4", image_fn=lambda i: pictures[i])
    info = probe_video(src)
    assert (info.width, info.height) == size
    frames = transcode(src, tmp_path / "out.mp4", crf=10)
    assert frames[0].image.shape == (size[1], size[0], 3)
    out = probe_video(tmp_path / "out.mp4")
    assert (out.width, out.height) == stored
    with VideoReader(tmp_path / "out.mp4") as reader:
        for frame, original in zip(reader, frames, strict=True):
            assert np.abs(frame.image[: size[1], : size[0]].astype(int) - original.image).mean() < 4


@pytest.mark.parametrize("suffix", [".mov", ".mkv", ".m4v"])
def test_other_output_containers(tmp_path, suffix):
    src = make_clip(tmp_path / "in.mp4", frames=8, fps=25, audio=True)
    transcode(src, tmp_path / f"out{suffix}")
    times, expected = video_times(tmp_path / f"out{suffix}"), video_times(src)
    if suffix == ".mkv":
        # Matroska stores milliseconds and no negative times: FFmpeg shifts every stream by the
        # AAC priming delay, so frames keep their spacing (and sync), not their absolute pts.
        assert len(times) == len(expected)
        assert all(abs((a - times[0]) - (b - expected[0])) <= Fraction(1, 1000) for a, b in zip(times, expected))
    else:
        assert times == expected
    assert audio_hashes(tmp_path / f"out{suffix}") == audio_hashes(src)


@pytest.mark.parametrize("name", ["out.avi", "out.webm", "out.gif", "out"])
def test_unknown_output_extension_is_a_usage_error(tmp_path, name):
    src = make_clip(tmp_path / "in.mp4", frames=2)
    with pytest.raises(UsageError):
        VideoWriter(tmp_path / name, probe_video(src), audio_from=src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.parametrize(
    "options, expectation",
    [
        (dict(crf=20, preset="veryfast"), DoesNotRaise()),
        (dict(crf=52), pytest.raises(UsageError)),
        (dict(crf=-1), pytest.raises(UsageError)),
        (dict(preset="turbo"), pytest.raises(UsageError)),
    ],
)
def test_encoder_options_are_checked(tmp_path, options, expectation):
    src = make_clip(tmp_path / "in.mp4", frames=2)
    with expectation, VideoWriter(tmp_path / "out.mp4", probe_video(src), audio_from=None, **options) as writer:
        with VideoReader(src) as reader:
            for frame in reader:
                writer.write(frame)


# ---------------------------------------------------------------- audio


def test_clip_without_audio(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=6, audio=False)
    assert probe_video(src).audio_streams == 0
    transcode(src, tmp_path / "out.mp4")
    assert audio_hashes(tmp_path / "out.mp4") == []
    assert video_times(tmp_path / "out.mp4") == video_times(src)


def test_every_audio_stream_is_copied_bit_exact(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=30, audio=2)
    assert probe_video(src).audio_streams == 2
    transcode(src, tmp_path / "out.mp4")
    expected = audio_hashes(src)
    assert len(expected) == 2 and all(len(h) > 10 for h in expected) and expected[0] != expected[1]
    assert audio_hashes(tmp_path / "out.mp4") == expected
    assert audio_times(tmp_path / "out.mp4") == audio_times(src)


@pytest.mark.parametrize("codec, rate", [("pcm_s16le", 44100), ("opus", 48000), ("mp3", 44100)])
def test_other_audio_codecs_are_copied_into_mp4(tmp_path, codec, rate):
    src = make_clip(tmp_path / "in.mkv", frames=10, audio=True, audio_codec=codec, audio_rate=rate)
    transcode(src, tmp_path / "out.mp4")
    assert audio_hashes(tmp_path / "out.mp4") == audio_hashes(src)


def test_audio_the_container_refuses_is_transcoded_to_aac(tmp_path, caplog):
    src = make_clip(tmp_path / "in.mkv", frames=25, audio=True, audio_codec="opus", audio_rate=48000)
    transcode(src, tmp_path / "out.mov")  # QuickTime .mov cannot hold Opus
    assert any("re-encoding it to AAC" in r.getMessage() for r in caplog.records)
    with av.open(str(tmp_path / "out.mov")) as container:
        (stream,) = container.streams.audio
        assert stream.codec_context.name == "aac"
        samples = sum(f.samples for f in container.decode(audio=0))
    assert abs(samples / 48000 - 1.0) < 0.1  # one second of sound, as the input
    assert video_times(tmp_path / "out.mov") == video_times(src)


def test_audio_is_fed_as_the_video_advances(tmp_path):
    """Audio goes to the muxer up to the video's time (+ slack), not all at the end."""

    class Recorder:
        """An output container that records what is muxed into it."""

        def __init__(self, real):
            self.real, self.times = real, []

        def __getattr__(self, name):
            return getattr(self.real, name)

        def mux(self, packet):
            self.times.append(float(packet.dts * packet.time_base))
            self.real.mux(packet)

    src = make_clip(tmp_path / "in.mkv", frames=50, audio=True)
    with av.open(str(tmp_path / "out.mkv"), "w") as real:
        out = Recorder(real)
        audio = AudioInterleaver(src, out, slack_s=0.05)
        audio.mux_until(0.5)
        assert out.times and max(out.times) <= 0.55 and max(out.times) > 0.4
        muxed = len(out.times)
        audio.mux_until(1.0)
        assert len(out.times) > muxed and max(out.times) <= 1.05
        audio.finish()
    assert len(out.times) == len(audio_hashes(src)[0])


# ---------------------------------------------------------------- bad inputs


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    good = make_clip(tmp_path / "good.mp4", frames=40, size=(96, 64), audio=True, faststart=True,
                     image_fn=lambda i: np.random.default_rng(i).integers(0, 256, (64, 96, 3), np.uint8))
    size = good.stat().st_size
    empty = tmp_path / "empty.mp4"
    empty.touch()
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    audio_only = tmp_path / "audio.m4a"
    with av.open(str(audio_only), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=44100, layout="mono")
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.int16), format="s16", layout="mono")
            frame.sample_rate, frame.pts = 44100, i * 1024
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    no_moov = make_clip(tmp_path / "no_moov.mp4", frames=40, size=(96, 64))
    truncate(no_moov, no_moov.stat().st_size // 2)
    cut_data = truncate(shutil.copy(good, tmp_path / "cut_data.mp4"), int(size * 0.6))
    cut_near_end = truncate(shutil.copy(good, tmp_path / "cut_near_end.mp4"), int(size * 0.9))
    mkv = make_clip(tmp_path / "full.mkv", frames=40, size=(96, 64),
                    image_fn=lambda i: np.random.default_rng(i).integers(0, 256, (64, 96, 3), np.uint8))
    cut_mkv = truncate(shutil.copy(mkv, tmp_path / "cut.mkv"), int(mkv.stat().st_size * 0.97))
    return {
        "missing": tmp_path / "missing.mp4",
        "directory": tmp_path,
        "empty": empty,
        "text": text,
        "audio_only": audio_only,
        "no_moov": no_moov,
        "cut_in_data": cut_data,
        "cut_near_end": cut_near_end,
        "cut_mkv": cut_mkv,
    }


BAD = ["missing", "directory", "empty", "text", "audio_only", "no_moov", "cut_in_data", "cut_near_end", "cut_mkv"]


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    return _bad_inputs(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_raises_input_error_and_leaves_no_output(tmp_path, bad_inputs, kind):
    src = bad_inputs[kind]
    dst = tmp_path / "out.mp4"
    with pytest.raises(InputError) as raised:
        with VideoReader(src) as reader, VideoWriter(dst, reader.info, audio_from=src) as writer:
            for frame in reader:
                writer.write(frame)
    message = str(raised.value)
    assert "\n" not in message and str(src) in message
    assert not dst.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "audio_only", "no_moov", "cut_in_data"])
def test_probe_rejects_bad_input(bad_inputs, kind):
    with pytest.raises(InputError):
        probe_video(bad_inputs[kind])


def test_mkv_of_full_length_is_accepted(bad_inputs):
    """The duration check that catches a cut .mkv does not reject the intact file."""
    with VideoReader(bad_inputs["cut_mkv"].with_name("full.mkv")) as reader:
        assert sum(1 for _ in reader) == 40


def test_damaged_frame_stops_decoding(tmp_path):
    """Garbage in the middle of the picture data: fail, never pass a broken frame on."""
    good = make_clip(tmp_path / "in.mp4", frames=40, size=(96, 64), faststart=True,
                     image_fn=lambda i: np.random.default_rng(i).integers(0, 256, (64, 96, 3), np.uint8))
    damaged = corrupt(shutil.copy(good, tmp_path / "damaged.mp4"), at=0.5, nbytes=3000)
    with pytest.raises(InputError, match="damaged"):
        with VideoReader(damaged) as reader:
            for _ in reader:
                pass


# ---------------------------------------------------------------- atomic output


def test_abort_leaves_no_file(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=5, audio=True)
    with VideoReader(src) as reader:
        writer = VideoWriter(tmp_path / "out.mp4", reader.info, audio_from=src)
        for frame in reader:
            writer.write(frame)
        assert len(leftovers(tmp_path)) == 1  # the hidden temp file beside dst, same extension
        assert leftovers(tmp_path)[0].startswith(".") and leftovers(tmp_path)[0].endswith(".mp4")
        writer.abort()
    assert not (tmp_path / "out.mp4").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_exception_in_block_keeps_existing_output(tmp_path, error):
    src = make_clip(tmp_path / "in.mp4", frames=5)
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"previous result")
    with pytest.raises(error):
        with VideoReader(src) as reader, VideoWriter(dst, reader.info, audio_from=src) as writer:
            for frame in reader:
                writer.write(frame)
                if frame.index == 2:
                    raise error()
    assert dst.read_bytes() == b"previous result" and leftovers(tmp_path) == []


def test_existing_output_is_replaced_on_success(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=5)
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"previous result")
    transcode(src, dst)
    assert len(video_times(dst)) == 5 and leftovers(tmp_path) == []
    assert oct(dst.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_writing_over_the_input_is_refused(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=3)
    before = src.read_bytes()
    with pytest.raises(UsageError):
        VideoWriter(src, probe_video(src), audio_from=src)
    assert src.read_bytes() == before and leftovers(tmp_path) == []


def test_missing_output_directory_is_an_output_error(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=3)
    with pytest.raises(OutputError):
        VideoWriter(tmp_path / "nowhere" / "out.mp4", probe_video(src), audio_from=src)


def test_closing_without_frames_is_an_output_error(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=3)
    with pytest.raises(OutputError):
        with VideoWriter(tmp_path / "out.mp4", probe_video(src), audio_from=src):
            pass
    assert not (tmp_path / "out.mp4").exists() and leftovers(tmp_path) == []


def test_wrong_frame_size_is_rejected(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=3)
    with pytest.raises(ValueError):
        with VideoWriter(tmp_path / "out.mp4", probe_video(src), audio_from=None) as writer:
            writer.write(VideoFrame(np.zeros((10, 10, 3), np.uint8), 0, Fraction(1, 25), 0))
    assert leftovers(tmp_path) == []


def test_subtitle_and_data_streams_are_left_out_on_purpose(tmp_path, caplog):
    """Subtitles can name people and data tracks can say where they were: only picture and sound go out."""
    import logging

    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    clip = make_clip(tmp_path / "in.mp4", frames=25, audio=2)
    srt = tmp_path / "names.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,900\nAnn Example, 12 Main Street\n")
    src = tmp_path / "with_subs.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(clip), "-i", str(srt), "-map", "0", "-map", "1",
         "-c", "copy", "-c:s", "mov_text", str(src)],
        check=True, timeout=60,
    )
    with av.open(str(src)) as container:
        assert sorted(s.type for s in container.streams) == ["audio", "audio", "subtitle", "video"]
    caplog.set_level(logging.WARNING, logger="blurcli")
    frames = transcode(src, tmp_path / "out.mp4")
    assert len(frames) == 25
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert sorted(s.type for s in container.streams) == ["audio", "audio", "video"]
    assert any("stream #3 (subtitle mov_text) is not copied" in r.getMessage() for r in caplog.records)
