"""Live streams without a server: the CFR clock, audio timeline, look-ahead privacy rules, key
masking, and a recording end to end (constant frame rate, 2 s keyframes, AAC 48 kHz, A/V in sync).

The tests against a real RTMP server are in test_stream_rtmp.py.
"""
from __future__ import annotations

import logging
import threading
from contextlib import ExitStack as DoesNotRaise
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from blurcli._cli import app
from blurcli.errors import InputError, StreamError, UsageError
from blurcli.faces import Faces
from blurcli.live import LiveStream, Privacy, SourceSpec, StreamSettings, default_bitrate
from blurcli.live.audio import AudioTimeline, samples_in_tick
from blurcli.live.capture import Capture, CapturedFrame, FrameQueue, Mailbox
from blurcli.live.clock import CfrClock
from blurcli.live.lookahead import LookAhead
from blurcli.live.sink import Backoff
from blurcli.live.source_clock import BUFFERED_S, INTERLEAVE_S, MAX_CATCH_UP_S, Backlog, SourceClock
from blurcli.live.workers import Detection
from blurcli.secrets import mask_secrets

KEY = "sk-live-7f3a9c21e5"


# -- builders ---------------------------------------------------------------------------------


class FakeTime:
    """A monotonic clock that only moves when slept on or told to."""

    def __init__(self, start: float = 100.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class FakeTracker:
    """Tracks are the detections themselves, with ids by position; predictions repeat the last boxes."""

    def __init__(self) -> None:
        self.last = Faces.empty()
        self.calls: list[tuple[int, bool]] = []
        self.resets = 0

    def update(self, faces, index):
        self.calls.append((index, faces is not None))
        if faces is not None:
            self.last = Faces(faces.xyxy, faces.score, track_id=np.arange(len(faces)) + 1 + 100 * self.resets)
        return self.last

    def reset(self):
        self.resets += 1
        self.last = Faces.empty()


class FakeVotes:
    """Tracks listed in ``names`` are decided as that person; every other track stays unknown."""

    def __init__(self, names: dict[int, str], min_face_px: int = 40) -> None:
        self.names = names
        self.min_face_px = min_face_px
        self.asked: list[tuple[int, int]] = []
        self.added: list[tuple[int, str | None, float]] = []

    def decision(self, track_id):
        return self.names.get(track_id)

    def wants_sample(self, track_id, frame_index, face_px=None):
        self.asked.append((track_id, frame_index))
        return True

    def add(self, track_id, name, distance, frame_index=None):
        self.added.append((track_id, name, distance))


class FakeCuts:
    def __init__(self, at: set[int]) -> None:
        self.at = at
        self.seen = 0

    def update(self, image):
        self.seen += 1
        return self.seen - 1 in self.at


def make_faces(*boxes) -> Faces:
    return Faces(np.array(boxes, np.float32).reshape(-1, 4), np.ones(len(boxes), np.float32))


def frame(index: int, fps: float = 30.0, t0: float = 10.0) -> CapturedFrame:
    return CapturedFrame(np.zeros((48, 64, 3), np.uint8), t0 + index / fps, index)


def detection(index: int, *boxes) -> Detection:
    return Detection(frame(index), make_faces(*boxes), latency=0.05, seconds=0.04)


def write_flash_beep_clip(
    path: Path, *, seconds: float = 3.0, fps: int = 30, flash_at: float = 1.5, size=(160, 120), pcm: bool = False
) -> Path:
    """A dark clip with one white frame at ``flash_at`` and a 1 kHz beep starting at the same time.

    The picture also has a bright square at (40..80, 30..70) (a stand-in "face" for the fake detector).
    Sound: AAC stereo at 44.1 kHz (a phone's), or with ``pcm`` 16-bit PCM mono at 48 kHz (a
    capture card's; ``path`` then needs a container that takes PCM, such as .mkv).
    """
    width, height = size
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = Fraction(1, fps)
        rate = 48000 if pcm else 44100
        audio = out.add_stream("pcm_s16le" if pcm else "aac", rate=rate, layout="mono" if pcm else "stereo")
        audio.time_base = Fraction(1, rate)
        rng = np.random.default_rng(0)
        texture = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
        flash_frame = int(round(flash_at * fps))
        for i in range(int(seconds * fps)):
            image = np.full((height, width, 3), 30, np.uint8)
            image[30:70, 40:80] = texture
            if i == flash_frame:
                image[:] = 255
            f = av.VideoFrame.from_ndarray(image, format="bgr24")
            f.pts = i
            out.mux(video.encode(f))
        out.mux(video.encode(None))
        n = int(seconds * rate)
        t = np.arange(n) / rate
        wave = np.where(t >= flash_at, 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0).astype(np.float32)
        stereo = np.stack([wave, wave])
        for start in range(0, n - 1024, 1024):
            if pcm:
                samples = (wave[None, start : start + 1024] * 32767).astype(np.int16)
                a = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            else:
                a = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo[:, start : start + 1024]), format="fltp", layout="stereo")
            a.sample_rate = rate
            a.pts = start
            out.mux(audio.encode(a))
        out.mux(audio.encode(None))
    return path


def read_back(path: Path):
    """(video packets [(pts s, key)], decoded BGR frames, audio (2, n) at its rate, audio rate, codecs)."""
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        codecs = (v.codec_context.name, a.codec_context.name, a.rate, a.channels)
        packets = [(float(p.pts * p.time_base), bool(p.is_keyframe)) for p in c.demux(v) if p.dts is not None]
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        chunks, first = [], None
        for f in c.decode(audio=0):
            if first is None:
                first = float(f.time)
            chunks.append(f.to_ndarray().reshape(2, -1) if f.format.is_planar else f.to_ndarray().reshape(-1, 2).T)
        audio = np.concatenate(chunks, axis=1)
    return packets, frames, audio, first, codecs


# -- the CFR clock ----------------------------------------------------------------------------


def test_clock_ticks_on_its_own_schedule():
    ft = FakeTime()
    clock = CfrClock(30, start=100.0, now=ft.now, sleep=ft.sleep)
    ticks = [clock.wait() for _ in range(90)]
    assert [t for t, _ in ticks] == list(range(90))
    assert np.allclose(np.diff([due for _, due in ticks]), 1 / 30)
    assert abs(ft.t - (100.0 + 89 / 30)) < 1e-6  # it slept until each tick was due, no longer


def test_clock_catches_up_without_skipping_ticks_then_resyncs_after_a_long_stall():
    ft = FakeTime()
    clock = CfrClock(30, start=100.0, max_lag=1.0, now=ft.now, sleep=ft.sleep)
    clock.wait()
    ft.t += 0.2  # the loop was busy for 6 frame times
    late = [clock.wait() for _ in range(6)]
    assert [t for t, _ in late] == [1, 2, 3, 4, 5, 6]  # served back to back, none skipped
    assert ft.t == pytest.approx(100.2)
    ft.t += 5.0  # suspended: the schedule moves forward instead of bursting 150 frames
    tick, due = clock.wait()
    assert tick == 7 and due == pytest.approx(ft.t) and clock.resyncs == 1
    tick, due = clock.wait()
    assert tick == 8 and due == pytest.approx(ft.t) and due - ft.t < 1 / 30 + 1e-9


# -- audio timeline ---------------------------------------------------------------------------


def test_samples_per_tick_add_up_exactly():
    assert sum(samples_in_tick(k, 30) for k in range(30)) == 48000
    assert sum(samples_in_tick(k, 24) for k in range(24 * 7)) == 48000 * 7
    assert {samples_in_tick(k, 30) for k in range(100)} == {1600}


def test_audio_timeline_reads_what_was_written_at_the_same_time():
    tl = AudioTimeline(seconds=2.0)
    ramp = np.arange(4800, dtype=np.float32)[None, :].repeat(2, 0)
    tl.write(10.0, ramp[:, :2400])
    tl.write(10.0 + 2400 / 48000, ramp[:, 2400:])  # joined seamlessly
    out = np.concatenate([tl.read(10.0 + k * 1600 / 48000, 1600) for k in range(3)], axis=1)
    np.testing.assert_array_equal(out, ramp)
    # Nothing written for the next tick: silence; late audio for an already-read time is dropped.
    assert not tl.read(10.1, 1600).any()
    tl.write(10.0, ramp[:, :100] + 1)
    assert tl.dropped == 100
    assert not tl.read(10.0 + 6400 / 48000, 1600).any()


def test_audio_timeline_jumps_forward_when_the_clock_resyncs():
    tl = AudioTimeline(seconds=2.0)
    tl.write(5.0, np.ones((2, 48000 * 3), np.float32))  # 3 s ahead of a 2 s ring: the tail is dropped
    assert tl.dropped == 48000
    tl.read(5.0, 1600)
    jumped = tl.read(6.0, 1600)  # the reader skipped ahead by ~1 s
    assert jumped.all()
    assert not tl.read(7.5, 1600).any()  # beyond what fitted in the ring


# -- settings and secrets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "fps", "expected"),
    [(1280, 720, 30, 4_500_000), (640, 360, 30, 4_500_000), (1920, 1080, 30, 6_000_000), (1920, 1080, 60, 9_000_000), (3840, 2160, 30, 30_000_000)],
)
def test_default_bitrate_follows_youtube_ranges(width, height, fps, expected):
    assert default_bitrate(width, height, fps) == expected


SRC = SourceSpec("clip.mp4")


@pytest.mark.parametrize(
    ("kwargs", "expectation"),
    [
        ({"rtmp_url": f"rtmp://a.example/live2/{KEY}"}, DoesNotRaise()),
        ({"output": Path("out.flv")}, DoesNotRaise()),
        ({"output": Path("out.mp4"), "delay": 0.0}, DoesNotRaise()),
        ({}, pytest.raises(UsageError, match="either")),
        ({"rtmp_url": f"rtmp://a.example/live2/{KEY}", "output": Path("o.flv")}, pytest.raises(UsageError, match="not both")),
        ({"rtmp_url": f"http://a.example/live2/{KEY}"}, pytest.raises(UsageError, match="rtmp://")),
        ({"rtmp_url": f"rtmp:///live2/{KEY}"}, pytest.raises(UsageError, match="no host")),
        ({"rtmp_url": "rtmp://a.example"}, pytest.raises(UsageError, match="no application")),
        ({"output": Path("out.avi")}, pytest.raises(UsageError, match=".flv or .mp4")),
        ({"output": Path("o.flv"), "fps": 0}, pytest.raises(UsageError, match="--fps")),
        ({"output": Path("o.flv"), "delay": 9.0}, pytest.raises(UsageError, match="--delay")),
        ({"output": Path("o.flv"), "max_retries": -1}, pytest.raises(UsageError, match="--max-retries")),
    ],
)
def test_settings_are_validated(kwargs, expectation):
    with expectation as info:
        StreamSettings(SRC, **kwargs)
    if info is not None and not isinstance(info, DoesNotRaise):
        assert KEY not in str(info.value)


def test_the_look_ahead_is_longer_when_someone_is_enrolled_unless_given():
    from blurcli.live.settings import DEFAULT_DELAY_S, ENROLLED_DELAY_S

    settings = StreamSettings(SourceSpec("0"), output=Path("o.mp4"))
    assert settings.look_ahead(enrolled=False) == DEFAULT_DELAY_S == 0.3
    assert settings.look_ahead(enrolled=True) == ENROLLED_DELAY_S > 1.0
    given = StreamSettings(SourceSpec("0"), output=Path("o.mp4"), delay=0.5)
    assert given.look_ahead(enrolled=True) == given.look_ahead(enrolled=False) == 0.5
    # Detection is planned for the detection look-ahead: waiting for identity never thins it out.
    assert settings.detection_look_ahead == DEFAULT_DELAY_S and given.detection_look_ahead == 0.5


def test_stream_key_is_masked_in_the_target_and_source_names():
    settings = StreamSettings(SourceSpec(f"rtmp://cam.local/live/{KEY}"), rtmp_url=f"rtmps://a.rtmp.youtube.com/live2/{KEY}")
    assert settings.target == "rtmps://a.rtmp.youtube.com/live2/****"
    assert KEY not in settings.source.describe()
    assert KEY not in mask_secrets(f"[Errno 32] Broken pipe: 'rtmp://host/app/{KEY}'")


# -- the look-ahead: what gets hidden ---------------------------------------------------------


def test_frame_not_yet_covered_by_a_detection_is_hidden_whole():
    la = LookAhead(FakeTracker())
    la.add_frames([frame(i) for i in range(6)])
    la.add_detection(detection(2, [10, 10, 20, 20]))
    first = la.take(frame(0).time)
    assert not first.whole and first.covered
    late = la.take(frame(4).time)  # detection reached frame 2 only: frame 4 is not covered
    assert late.whole and not late.covered and late.skipped == 3


def test_fail_open_sends_uncovered_frames_with_the_last_known_boxes():
    la = LookAhead(FakeTracker(), fail_open=True)
    la.add_frames([frame(i) for i in range(6)])
    la.add_detection(detection(2, [10, 10, 20, 20]))
    late = la.take(frame(5).time)
    assert not late.whole and not late.covered
    assert [10, 10, 20, 20] in late.hide.tolist()


def test_a_new_face_is_hidden_from_its_first_frame_by_looking_back():
    """A face appears at frame 3, between detections at 0 and 6: frames 1..5 already hide it."""
    tracker = FakeTracker()
    la = LookAhead(tracker)
    la.add_frames([frame(i) for i in range(8)])
    la.add_detection(detection(0, [0, 0, 5, 5]))
    la.add_detection(detection(6, [0, 0, 5, 5], [30, 30, 40, 40]))
    assert tracker.calls == [(0, True), (1, False), (2, False), (3, False), (4, False), (5, False), (6, True)]
    for i in range(7):
        release = la.take(frame(i).time)
        hidden = release.hide.tolist()
        assert [0, 0, 5, 5] in hidden
        if i >= 1:
            assert [30, 30, 40, 40] in hidden, f"frame {i}"


def test_moving_face_between_detections_is_covered_by_interpolation():
    la = LookAhead(FakeTracker())
    la.add_frames([frame(i) for i in range(5)])
    la.add_detection(detection(0, [0, 0, 10, 10]))
    la.add_detection(detection(4, [40, 0, 50, 10]))
    la.take(frame(0).time)
    la.take(frame(1).time)
    middle = la.take(frame(2).time)
    assert [20, 0, 30, 10] in middle.hide.tolist()


def test_only_tracks_proven_enrolled_are_kept():
    votes = FakeVotes({2: "ann"}, min_face_px=10)
    jobs = []
    la = LookAhead(FakeTracker(), votes=votes, sample=jobs.append)
    la.add_frames([frame(i) for i in range(3)])
    la.add_detection(detection(1, [0, 0, 20, 20], [30, 0, 50, 20], [60, 0, 64, 4]))
    release = la.take(frame(1).time)
    assert release.keep.tolist() == [[30, 0, 50, 20]] * len(release.keep) and len(release.keep) >= 1
    assert release.kept_names and set(release.kept_names) == {"ann"}
    assert [0, 0, 20, 20] in release.hide.tolist() and [60, 0, 64, 4] in release.hide.tolist()
    # Both big faces were offered for an identity sample, the 4 px one never.
    assert [j.track_ids.tolist() for j in jobs] == [[1, 2]]


def test_boxes_of_one_face_are_drawn_once():
    from blurcli.live.lookahead import merge_overlapping

    boxes = np.array([[10, 10, 50, 50], [12, 11, 52, 52], [14, 12, 54, 54], [100, 100, 120, 120]], np.float32)
    merged = merge_overlapping(boxes)
    assert merged.tolist() == [[10, 10, 54, 54], [100, 100, 120, 120]]


def test_tracker_is_reset_at_a_shot_cut():
    tracker = FakeTracker()
    la = LookAhead(tracker, cuts=FakeCuts({3}))
    la.add_frames([frame(i) for i in range(6)])
    la.add_detection(detection(1, [0, 0, 5, 5]))
    assert tracker.resets == 0
    la.add_detection(detection(4, [0, 0, 5, 5]))
    assert tracker.resets == 1 and la.resets == 1


def test_a_kept_decision_never_reaches_across_a_cut():
    """Ann is kept in shot 1; at the cut (frame 3) a stranger stands where she stood. The frames of
    shot 2 before its first detection must not borrow shot 1's detection (and its kept decision)."""
    votes = FakeVotes({1: "ann"})
    la = LookAhead(FakeTracker(), votes=votes, cuts=FakeCuts({3}))
    la.add_frames([frame(i) for i in range(8)])
    la.add_detection(detection(1, [30, 0, 50, 20]))  # ann, track 1 in shot 1
    la.add_detection(detection(5, [30, 0, 50, 20]))  # the stranger, a new track in shot 2
    released = {r.frame.index: r for r in (la.take(frame(i).time) for i in range(1, 6))}
    assert set(released[1].kept_names) == set(released[2].kept_names) == {"ann"}
    for i in (3, 4, 5):
        assert not len(released[i].keep), (i, released[i].keep)
        assert [30, 0, 50, 20] in released[i].hide.tolist(), i


def test_a_cut_in_frames_already_sent_whole_still_resets_the_tracker():
    tracker = FakeTracker()
    la = LookAhead(tracker)
    frames = [frame(i) for i in range(7)]
    frames[3].cut = True  # as capture marks it
    la.add_frames(frames)
    la.add_detection(detection(1, [0, 0, 5, 5]))
    assert la.take(frame(4).time).whole  # detection stalled: frames 2-4 leave unseen by the tracker
    la.add_detection(detection(6, [0, 0, 5, 5]))
    assert tracker.resets == 1


# -- capture ----------------------------------------------------------------------------------


def test_missing_camera_is_a_clear_input_error():
    with pytest.raises(InputError, match="camera /dev/video7 not found"):
        Capture(SourceSpec.camera(7), frames=FrameQueue(), newest=Mailbox(), audio=None, stop=threading.Event()).open()


def test_missing_file_and_unknown_format_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        Capture(SourceSpec(str(tmp_path / "nope.mp4")), frames=FrameQueue(), newest=Mailbox(), audio=None, stop=threading.Event()).open()
    with pytest.raises(InputError):
        Capture(SourceSpec("x", "no-such-format"), frames=FrameQueue(), newest=Mailbox(), audio=None, stop=threading.Event()).open()


def test_a_file_is_delivered_on_its_own_timeline_keeping_only_the_newest_frames(tmp_path):
    clip = write_flash_beep_clip(tmp_path / "clip.mp4", seconds=1.0)
    frames, newest, stop = FrameQueue(maxlen=5), Mailbox(), threading.Event()
    audio = AudioTimeline()
    capture = Capture(SourceSpec(str(clip)), frames=frames, newest=newest, audio=audio, stop=stop).open()
    capture.start()
    capture.join(10)
    assert capture.error is None and capture.ended.is_set()
    kept = frames.drain()
    assert [f.index for f in kept] == list(range(25, 30))  # the queue kept the newest 5 of 30
    assert frames.dropped == 25
    assert np.allclose(np.diff([f.time for f in kept]), 1 / 30, atol=1e-6)  # paced by pts
    assert newest.newer_than(28, timeout=0).index == 29
    assert audio.written > 40000  # ~1 s of 48 kHz audio


def test_a_live_backlog_ends_at_the_first_packet_that_waits_and_keeps_the_sound_just_before_it():
    ft = FakeTime()
    backlog = Backlog(ft.now)
    assert not backlog.stale(0.0)  # at the live edge until told otherwise
    backlog.begin()
    chunk = np.ones((2, 480), np.float32)
    for i in range(50):  # 1 s of packets read straight from a buffer
        assert backlog.stale(0.0001)
        backlog.hold(i * 0.02, chunk)
    assert not backlog.stale(BUFFERED_S) and not backlog.catching_up and backlog.dropped == 50
    held = [t for t, _ in backlog.sound()]
    assert held[0] >= 0.98 - INTERLEAVE_S - 1e-9 and held[-1] == pytest.approx(0.98) and backlog.sound() == []
    backlog.begin()  # a source decoded slower than it plays never waits: dropping still ends
    ft.t += MAX_CATCH_UP_S
    assert not backlog.stale(0.0) and not backlog.catching_up


def test_the_source_clock_keeps_one_stream_running_ahead_on_it_and_tells_a_jump_and_a_stall():
    ft = FakeTime()
    clock = SourceClock(paced=False, now=ft.now)
    clock.anchor(5.0)  # the live edge: source time 5 s is now
    assert clock.time(4.9) == pytest.approx(ft.t - 0.1)  # held sound from just before it
    assert clock.time(5.05) == pytest.approx(ft.t + 0.05)  # sound ahead of its picture: same clock
    ft.t += 0.04
    assert clock.time(5.04) == pytest.approx(ft.t)
    assert clock.time(6.0) == pytest.approx(ft.t)  # its clock jumped ahead: now
    assert clock.time(5.9) == pytest.approx(ft.t - 0.1)  # and the clock moved with it
    ft.t += 2.0
    assert clock.stalled(clock.time(6.0)) and not clock.stalled(clock.time(7.9))
    assert not SourceClock(paced=True, now=ft.now).stalled(0.0)  # a file waits for its timestamps


# -- the sink: errors never show the key -------------------------------------------------------


class NoFaces:
    def detect(self, image, **kwargs):
        return Faces.empty()


class SquareFinder:
    """A stand-in detector that "finds" the textured square of write_flash_beep_clip."""

    def detect(self, image, **kwargs):
        return make_faces([40, 30, 80, 70])


def _privacy(detector=None):
    return Privacy(detector or NoFaces(), FakeTracker())


def test_gives_up_after_max_retries_with_the_key_masked(tmp_path, caplog):
    from rtmp_server import free_port

    clip = write_flash_beep_clip(tmp_path / "clip.mp4", seconds=3.0)
    url = f"rtmp://127.0.0.1:{free_port()}/live/{KEY}"
    settings = StreamSettings(SourceSpec(str(clip)), rtmp_url=url, max_retries=2, delay=0.1)
    caplog.set_level(logging.DEBUG, logger="blurcli")
    stream = LiveStream(settings, privacy=_privacy(), backoff=Backoff(first=0.05, limit=0.1))
    with pytest.raises(StreamError) as info:
        stream.run()
    assert "after 3 attempt(s)" in str(info.value) and "refused" in str(info.value).lower()
    assert KEY not in str(info.value) and "live/****" in str(info.value)
    assert stream.stats.failures == 3
    assert caplog.records and all(KEY not in r.getMessage() for r in caplog.records)


def test_a_source_that_ends_before_any_connection_is_a_stream_error(tmp_path):
    from rtmp_server import free_port

    clip = write_flash_beep_clip(tmp_path / "clip.mp4", seconds=1.0)
    settings = StreamSettings(SourceSpec(str(clip)), rtmp_url=f"rtmp://127.0.0.1:{free_port()}/live/{KEY}", delay=0.1)
    with pytest.raises(StreamError, match="ended before a connection") as info:
        LiveStream(settings, privacy=_privacy(), backoff=Backoff(first=5.0)).run()
    assert KEY not in str(info.value)


# -- a recording end to end -------------------------------------------------------------------


@pytest.mark.parametrize("pcm", [False, True], ids=["aac-from-a-phone", "pcm-from-a-capture-card"])
def test_recording_is_cfr_with_2s_keyframes_aac_48k_and_audio_in_sync(tmp_path, pcm):
    clip = write_flash_beep_clip(tmp_path / ("clip.mkv" if pcm else "clip.mp4"), seconds=5.0, flash_at=2.5, pcm=pcm)
    with av.open(str(clip)) as source:
        assert source.streams.audio[0].codec_context.name == ("pcm_s16le" if pcm else "aac")
    out = tmp_path / "live.flv"
    settings = StreamSettings(SourceSpec(str(clip)), output=out, fps=30, delay=0.2)
    trace = []
    stats = LiveStream(settings, privacy=_privacy(SquareFinder()), trace=lambda *a: trace.append(a)).run()
    assert out.is_file() and not list(tmp_path.glob(".live.*"))  # renamed from its temp name
    packets, frames, audio, audio_start, codecs = read_back(out)
    assert codecs == ("h264", "aac", 48000, 2)
    pts = np.array([p for p, _ in packets])
    assert len(pts) == stats.sent >= 145
    assert np.abs(np.diff(pts) - 1 / 30).max() <= 0.001  # flv stores milliseconds
    assert np.abs(pts - pts[0] - np.arange(len(pts)) / 30).max() <= 0.001
    keys = [i for i, (_, key) in enumerate(packets) if key]
    assert keys == list(range(0, len(packets), 60))
    # The stand-in face is hidden in every frame, the rest of the picture is not.
    for image in frames[5:-5:10]:
        if image.mean() > 200:
            continue  # the flash
        assert np.abs(image[40:60, 50:70].astype(float) - 127).mean() < 40, "square not blurred"
        assert np.abs(image[95:115, 100:150].astype(float) - 30).mean() < 6, "background changed"
    # A/V sync: the flash frame and the beep onset land within one frame of each other.
    flash = pts[int(np.argmax([f.mean() for f in frames]))]
    envelope = np.abs(audio[0])
    onset = audio_start + int(np.argmax(envelope > 0.1)) / 48000
    assert abs(onset - flash) <= 1 / 30 + 0.005, (onset, flash)


def test_cli_records_with_url_from_environment_never_printing_the_key(tmp_path, monkeypatch):
    from rtmp_server import free_port

    clip = write_flash_beep_clip(tmp_path / "clip.mp4", seconds=2.0)
    monkeypatch.setenv("BLURCLI_RTMP_URL", f"rtmp://127.0.0.1:{free_port()}/live/{KEY}")
    result = CliRunner().invoke(app, ["stream", str(clip), "--max-retries", "0", "--no-status", "--delay", "0.1"])
    assert result.exit_code == 8, result.output
    assert "could not stream" in result.output and "live/****" in result.output
    assert KEY not in result.output

    monkeypatch.delenv("BLURCLI_RTMP_URL")
    out = tmp_path / "rec.mp4"
    result = CliRunner().invoke(app, ["stream", str(clip), "--output", str(out), "--no-status", "--fps", "25"])
    assert result.exit_code == 0, result.output
    packets, *_ = read_back(out)
    assert len(packets) >= 45 and np.abs(np.diff([p for p, _ in packets]) - 0.04).max() < 1e-3


def test_cli_refuses_source_and_device_together(tmp_path):
    result = CliRunner().invoke(app, ["stream", "clip.mp4", "--device", "0", "--output", str(tmp_path / "o.flv")])
    assert result.exit_code == 2 and "not both" in result.output


def test_ctrl_c_stops_cleanly_and_keeps_the_recording(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    clip = write_flash_beep_clip(tmp_path / "clip.mp4", seconds=3.0)
    out = tmp_path / "rec.flv"
    env = {**os.environ, "BLURCLI_GALLERY": str(tmp_path / "none.json")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "blurcli", "stream", str(clip), "--loop", "--output", str(out), "--no-status", "--delay", "0.1"],
        stderr=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).resolve().parents[1],
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".rec.*")) and time.monotonic() < deadline:  # recording has begun
        time.sleep(0.1)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped (Ctrl-C)" in err
    assert not list(tmp_path.glob(".rec.*")), "temp file left behind"
    packets, frames, *_ = read_back(out)
    assert len(frames) == len(packets) >= 10 and packets[0][1]


def test_sink_fills_lost_ticks_by_repeating_the_last_picture(tmp_path):
    from blurcli.live.sink import EncoderSettings, Sink
    from blurcli.live.stats import StreamStats

    out = tmp_path / "gap.flv"
    stats = StreamStats()
    sink = Sink(EncoderSettings(64, 48, 30, 500_000, 60, "ultrafast"), path=out, stats=stats)
    sink.start()
    silence = np.zeros((2, 1600), np.float32)
    for tick in (0, 1, 2, 5, 6):
        sink.submit(tick, np.full((48, 64, 3), tick * 40, np.uint8), silence)
    sink.finish()
    sink.join(10)
    assert sink.error is None
    packets, frames, *_ = read_back(out)
    assert [round((p - packets[0][0]) * 30) for p, _ in packets] == list(range(7))  # no gap in the timestamps
    assert [int(round(f.mean() / 40)) for f in frames] == [0, 1, 2, 2, 2, 5, 6]
    assert stats.repeated == 2 and stats.sent == 7


def test_a_frame_hidden_whole_keeps_no_detail(data_dir):
    from blurcli.redact import redact_whole
    from helpers import region_correlation

    with av.open(str(data_dir / "video/retalking_face_1.mp4")) as c:
        image = next(c.decode(video=0)).to_ndarray(format="bgr24")
    hidden = image.copy()
    redact_whole(hidden)
    h, w = image.shape[:2]
    for region in ([w // 4, h // 4, w // 2, h // 2], [w // 3, h // 3, 60, 60], [10, 10, 30, 30]):
        assert abs(region_correlation(data_dir, image, hidden, region)) < 0.2


def test_a_source_that_fails_mid_stream_keeps_the_recording_whole(tmp_path, monkeypatch, caplog):
    """The phone drops, the camera is unplugged: the run ends with the error, the recording stays."""
    from blurcli.errors import InputError
    from blurcli.live import capture as capture_module

    real = capture_module.Capture._video

    def fail_after_60(self, frame, last_end):
        if self.captured >= 60:
            raise InputError("the source went away")
        return real(self, frame, last_end)

    monkeypatch.setattr(capture_module.Capture, "_video", fail_after_60)
    clip = write_flash_beep_clip(tmp_path / "clip.mp4", seconds=5.0)
    out = tmp_path / "live.flv"
    settings = StreamSettings(SourceSpec(str(clip)), output=out, fps=30, delay=0.2)
    with pytest.raises(InputError, match="went away"):
        LiveStream(settings, privacy=_privacy(SquareFinder())).run()
    assert not list(tmp_path.glob(".live.*"))
    packets, frames, audio, _, codecs = read_back(out)  # plays to its end
    assert codecs == ("h264", "aac", 48000, 2)
    assert len(frames) == len(packets) >= 30 and packets[0][1]
    assert any("closed and kept" in r.getMessage() for r in caplog.records)
    for image in frames[5:-5:10]:
        if image.mean() <= 200:
            assert np.abs(image[40:60, 50:70].astype(float) - 127).mean() < 40, "square not blurred"


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_listening_source_waiting_for_its_publisher_stops_at_once_on_a_signal(tmp_path, signum):
    """FFmpeg's open blocks in C; blurcli waits for it in a helper thread, so the signal acts at once."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "BLURCLI_GALLERY": str(tmp_path / "none.json"), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "blurcli", "stream", f"rtmp://127.0.0.1:{port}/live/in", "-o", "listen=1",
         "--output", str(tmp_path / "rec.flv"), "--no-status"],
        stderr=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).resolve().parents[1],
    )
    import shutil

    from rtmp_server import listening

    if shutil.which("ss") is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs ss (iproute2)")
        pytest.skip("ss (iproute2) is needed to see the port listen without connecting")
    deadline = time.monotonic() + 60
    while not listening(port) and time.monotonic() < deadline:  # seen with ss: a connection would be a bad publisher
        time.sleep(0.1)
    assert listening(port), "blurcli never listened"
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(getattr(signal, signum))
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 5, err
    assert proc.returncode == 0 and "before the first frame: nothing was sent or recorded" in err, err
    assert "Traceback" not in err and not list(tmp_path.glob("*rec*"))


def test_record_keeps_what_was_streamed_when_the_server_refuses(tmp_path):
    """--record beside --rtmp: nobody listens at the ingest, blurcli gives up after --max-retries
    (exit 8, the key in no message), and the local copy is closed, kept and plays to its end."""
    from rtmp_server import free_port

    from tests.hardening_support import run_blurcli

    url = f"rtmp://127.0.0.1:{free_port()}/live/{KEY}"
    outcome = run_blurcli(
        "stream", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "--rtmp", url, "--record", "copy.flv",
        "--max-retries", "1", "--no-status", cwd=tmp_path, timeout=120,
    )
    assert outcome.code == 8, outcome.stderr
    assert "could not stream to rtmp://127.0.0.1" in outcome.stderr and "recording copy.flv was closed and kept" in outcome.stderr
    assert KEY not in outcome.stdout + outcome.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["copy.flv"]  # no temp file left beside it
    packets, frames, audio, _, codecs = read_back(tmp_path / "copy.flv")
    assert codecs == ("h264", "aac", 48000, 2) and packets[0][1]
    assert len(frames) == len(packets) >= 15
    assert np.abs(np.diff([p for p, _ in packets]) - 1 / 30).max() <= 0.001
    assert abs(audio.shape[1] / 48000 - len(frames) / 30) < 0.1


def test_record_needs_rtmp_and_a_known_container(tmp_path):
    from tests.hardening_support import run_blurcli

    alone = run_blurcli("stream", "testsrc2", "-f", "lavfi", "--output", "a.flv", "--record", "b.flv", cwd=tmp_path)
    assert alone.code == 2 and "use --output FILE" in alone.stderr
    mkv = run_blurcli("stream", "testsrc2", "-f", "lavfi", "--rtmp", f"rtmp://127.0.0.1/live/{KEY}", "--record", "b.mkv", cwd=tmp_path)
    assert mkv.code == 2 and "--record must end in .flv or .mp4" in mkv.stderr
    assert KEY not in mkv.stderr and not list(tmp_path.iterdir())


@pytest.mark.parametrize("flag", ["--output", "--record"])
def test_a_recording_never_overwrites_the_source(tmp_path, flag):
    from tests.hardening_support import run_blurcli

    clip = write_flash_beep_clip(tmp_path / "clip.mp4", seconds=1.0)
    before = clip.read_bytes()
    extra = ["--rtmp", f"rtmp://127.0.0.1/live/{KEY}"] if flag == "--record" else []
    outcome = run_blurcli("stream", "clip.mp4", *extra, flag, "./clip.mp4", "--no-status", cwd=tmp_path)
    assert outcome.code == 2 and "never overwrites an input" in outcome.stderr
    assert clip.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
