"""Live streams against a real RTMP server (nginx + libnginx-mod-rtmp), recorded back as a viewer gets them.

Skipped only when nginx is missing and CI is unset; under CI a missing server is a failure.
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
import time

import av
import cv2
import numpy as np
import pytest

from blurcli.detect import load_detector
from blurcli.faces import Faces, iou_matrix
from blurcli.live import LiveStream, SourceSpec, StreamSettings, build_privacy
from blurcli.live.settings import DEFAULT_DELAY_S
from blurcli.live.sink import Backoff
from blurcli.settings import IdentitySettings
from helpers import scorer
from rtmp_server import Recorder, RtmpServer, clients, missing
from test_stream import KEY, read_back

pytestmark = [pytest.mark.rtmp, pytest.mark.slow]

HAMILTON = "video/short_hamilton_clip.mp4"


@pytest.fixture
def server(tmp_path):
    reason = missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs an RTMP server: {reason}")
        pytest.skip(reason)
    srv = RtmpServer(workdir=tmp_path / "nginx")
    srv.start()
    yield srv
    srv.close()


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _overlaps(faces: Faces, boxes: np.ndarray) -> np.ndarray:
    """(n,) bool: each face overlaps one of ``boxes`` (IoU >= 0.3)."""
    if not len(faces) or not len(boxes):
        return np.zeros(len(faces), bool)
    return iou_matrix(faces.xyxy, boxes).max(axis=1) >= 0.3


def _covered(faces: Faces, boxes: np.ndarray) -> np.ndarray:
    """(n,) bool: each face overlaps one of ``boxes`` or lies (90% of its area) inside one.

    The live mask merges the boxes of one face (tracker, detections before and after, their
    interpolation) into their bounding box, whose IoU with a tight face box can be small.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not len(faces) or not len(boxes):
        return np.zeros(len(faces), bool)
    a = faces.xyxy
    lt = np.maximum(a[:, None, :2], boxes[None, :, :2])
    rb = np.minimum(a[:, None, 2:], boxes[None, :, 2:])
    inside = np.clip(rb - lt, 0, None).prod(axis=2) / np.maximum((a[:, 2:] - a[:, :2]).prod(axis=1), 1e-6)[:, None]
    return _overlaps(faces, boxes) | (inside.max(axis=1) >= 0.9)


def _run_in_thread(stream: LiveStream) -> tuple[threading.Thread, list]:
    errors: list[BaseException] = []

    def target():
        try:
            stream.run()
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, errors


def test_stream_to_server_is_cfr_keyframed_and_hides_every_face_but_the_enrolled_one(server, data_dir, tmp_path, caplog, capfd):
    """Hamilton clip (looped) for 10.5 s with Lin-Manuel Miranda enrolled, recorded back from nginx."""
    from blurcli.identity.encoder import FaceEncoder
    from blurcli.identity.enroll import enroll

    caplog.set_level(logging.DEBUG, logger="blurcli")
    # Enrolled from his photo and two stills of the clip (the start and the middle of his close-up):
    # with the photo alone his distances hover around the tolerance (0.31-0.57), and how soon the
    # votes decide would depend on the CPU load. Live decides by the mean of a track's samples (as
    # files do), so it may keep him from frames whose single encodings lie at 0.45-0.50 from one
    # still; enrolled as a user is advised to (several photos), those frames lie within tolerance.
    stills = [tmp_path / "lin_still_95.png", tmp_path / "lin_still_125.png"]
    with av.open(str(data_dir / HAMILTON)) as clip:
        images = {i: f.to_ndarray(format="bgr24") for i, f in enumerate(clip.decode(video=0)) if i in (95, 125)}
    cv2.imwrite(str(stills[0]), images[95])
    cv2.imwrite(str(stills[1]), images[125])
    gallery = tmp_path / "gallery.json"
    enroll([data_dir / "identity/lin_manuel_miranda/lin-manuel-miranda.png", *stills], name="lin", gallery_path=gallery)
    url = server.url("live", KEY)
    recording = tmp_path / "received.flv"
    recorder = Recorder(url, recording)
    recorder.start()
    settings = StreamSettings(
        SourceSpec(str(data_dir / HAMILTON), loop=True),
        rtmp_url=url,
        duration=10.5,
        delay=0.4,
        identity=IdentitySettings(gallery=gallery),
    )
    privacy = build_privacy(settings, 29.97)
    trace = []

    def on_tick(tick, release, repeated):
        last = release if release is not None else trace[-1][1]
        keep = len(trace) % 3 == 0 or len(last.keep)  # every 3rd source picture, and all with a kept face
        trace.append((tick, last, repeated, last.frame.image if keep else None))

    try:
        stats = LiveStream(settings, privacy=privacy, trace=on_tick).run()
    finally:
        privacy.close()
    recorder.join(20)
    assert recorder.error is None and not recorder.is_alive()

    # What the server delivered: H.264 + AAC 48 kHz stereo, 1/30 s apart, a keyframe every 60 frames.
    packets, frames, audio, _, codecs = read_back(recording)
    assert codecs == ("h264", "aac", 48000, 2)
    assert len(packets) == len(frames) == stats.sent == len(trace) == 315
    pts = np.array([p for p, _ in packets])
    assert np.abs(np.diff(pts) - 1 / 30).max() <= 0.001  # RTMP timestamps are whole milliseconds
    assert np.abs(pts - pts[0] - np.arange(len(pts)) / 30).max() <= 0.001
    assert [i for i, (_, key) in enumerate(packets) if key] == list(range(0, len(packets), 60))
    assert audio.shape[1] >= 10 * 48000

    # Truth: the faces the detector finds (at the stream's detection size and the default
    # threshold) in the very source picture of each sent frame. Each must be masked in what the
    # server sent and score as hidden, unless the pipeline kept it as enrolled -- and every face
    # kept must be Lin-Manuel Miranda.
    redaction = scorer(data_dir)
    encoder, matcher = FaceEncoder(), privacy.matcher
    truth_detector = load_detector()
    faces = hidden = kept_sharp = 0
    unmasked, seen_unmasked, low_score, kept_faces = [], [], [], []
    for j, (tick, release, _, source) in enumerate(trace):
        if source is None:
            continue
        truth = truth_detector.detect(source, max_side=settings.detect_size, upscale_small=False)
        truth = truth[truth.height >= 10]
        if not len(truth):
            continue
        kept = _overlaps(truth, release.keep)
        masked = np.full(len(truth), release.whole) | _covered(truth, release.hide)
        seen = _overlaps(truth, release.detected.xyxy if release.detected is not None else np.zeros((0, 4)))
        boxes = [[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in truth.xyxy.tolist()]
        scores = redaction.score_image(source, frames[j], boxes)
        for (height, corr), is_kept, is_masked, is_seen, box in zip(scores, kept, masked, seen, truth.xyxy):
            where = (tick, round(float(height)), None if corr is None else round(corr, 2))
            if is_kept and not is_masked:
                kept_sharp += corr is not None and corr > redaction.KEPT
                kept_faces.append((tick, source, box))
                continue
            faces += 1
            hidden += corr is not None and corr < redaction.HIDDEN
            if not is_masked:
                (seen_unmasked if is_seen else unmasked).append(where)
            elif corr is None or corr >= redaction.HIDDEN:
                low_score.append(where)
    # A face the stream's own detector found near this frame is always masked: the look-ahead,
    # tracker and redaction leave no gap. A face it never saw (its score flickers around the
    # threshold and the detector, busy on a shared CPU, looked at other frames) is rare.
    assert faces >= 100
    assert not seen_unmasked, f"detected faces left unmasked (tick, height px, correlation): {seen_unmasked}"
    assert len(unmasked) <= 0.02 * faces, f"faces never detected live: {unmasked}"
    # The reference scorer agrees they are hidden (a masked face can score just above 0.5 when it is
    # dark and low in contrast; those are listed).
    assert hidden >= 0.97 * faces, f"masked but scored visible: {low_score}; unmasked: {unmasked}"
    # The enrolled face was kept sharp, and every face kept was him (distance well under a stranger's 0.6).
    # Six kept faces spread over the run: his track is decided within a few frames of his close-up
    # (samples come quickly at first), whose first frames lie at 0.46-0.52 from his gallery.
    assert kept_sharp >= 10, "the enrolled face was never left sharp"
    spread = [kept_faces[i] for i in np.linspace(0, len(kept_faces) - 1, 6).round().astype(int)]
    kept_distances = []
    for tick, source, box in spread:
        names, distances = matcher.match(encoder.encode(source, box[None]))
        kept_distances.append((tick, names[0], float(distances[0])))
    assert len(kept_distances) >= 3 and max(d for *_, d in kept_distances) < 0.6, kept_distances
    assert np.median([d for *_, d in kept_distances]) <= settings.identity.tolerance, kept_distances

    # The stream key never reached a log line or the terminal.
    out, err = capfd.readouterr()
    assert all(KEY not in r.getMessage() for r in caplog.records)
    assert KEY not in out + err


def _video_payloads(path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(video=0) if p.dts is not None]


def test_server_down_at_start_and_dropped_mid_stream_the_stream_resumes_with_a_keyframe(server, tmp_path, caplog, capfd):
    """--record beside it: one encode, so each connection got a run of the recording's very packets,
    and the recording went on without a gap while the server was away."""
    caplog.set_level(logging.DEBUG, logger="blurcli")
    server.stop()  # down at start
    url = server.url("live", KEY)
    copy = tmp_path / "copy.mp4"
    settings = StreamSettings(SourceSpec("testsrc2=size=320x240:rate=30", "lavfi"), rtmp_url=url, record=copy, delay=0.1)
    privacy = build_privacy(settings, 30)
    # Attempts 1 s apart: right after one fails there is time to start the server and a player
    # before the next, so the player sees the resumed stream from its first packet.
    stream = LiveStream(settings, privacy=privacy, backoff=Backoff(first=1.0, limit=1.0))

    def restart_server_between_attempts(name: str) -> Recorder:
        failures = stream.stats.failures
        _wait(lambda: stream.stats.failures > failures, 15, "a failed connection attempt")
        server.start()
        recorder = Recorder(url, tmp_path / name)
        recorder.start()
        _wait(lambda: clients(server.port) >= 1, 0.8, "the player to connect")
        return recorder

    thread, errors = _run_in_thread(stream)
    try:
        first = restart_server_between_attempts("first.flv")
        _wait(lambda: stream.stats.state == "live", 15, "the first connection")
        _wait(lambda: sum(a[1] == "video" for a in first.arrivals) >= 30, 20, "frames at the server")
        server.stop()  # dropped mid-stream
        _wait(lambda: stream.stats.state.startswith("retrying"), 15, "the drop to be noticed")
        first.join(10)
        sent_before = stream.stats.sent
        second = restart_server_between_attempts("second.flv")
        _wait(lambda: stream.stats.reconnects >= 1 and stream.stats.state == "live", 15, "the reconnection")
        _wait(lambda: sum(a[1] == "video" for a in second.arrivals) >= 45, 20, "frames after resuming")
    finally:
        stream.stop()
        thread.join(20)
        privacy.close()
    assert not errors, errors
    assert stream.stats.sent > sent_before
    second.join(10)
    for recorder in (first, second):
        packets, frames, _, _, codecs = read_back(recorder.path)
        assert codecs == ("h264", "aac", 48000, 2)
        assert packets[0][1], "every connection must start with a keyframe"
        assert np.abs(np.diff([p for p, _ in packets]) - 1 / 30).max() <= 0.001
        assert len(frames) == len(packets) >= 30
    # The recording: every tick from the first to the last, 1/30 s apart, through both outages.
    packets, frames, audio, _, codecs = read_back(copy)
    assert codecs == ("h264", "aac", 48000, 2) and packets[0][1]
    assert len(frames) == len(packets) == stream.stats.recorded == stream.stats.ticks
    assert np.abs(np.diff([p for p, _ in packets]) - 1 / 30).max() <= 0.001
    assert abs(audio.shape[1] / 48000 - len(frames) / 30) < 0.1
    recorded = _video_payloads(copy)
    for recorder in (first, second):
        received = _video_payloads(recorder.path)
        start = recorded.index(received[0])
        assert recorded[start:start + len(received)] == received
    assert stream.stats.failures >= 2 and stream.stats.sent < stream.stats.recorded
    out, err = capfd.readouterr()
    messages = [r.getMessage() for r in caplog.records]
    assert any("retrying" in m for m in messages) and any("reconnected" in m for m in messages)
    assert all(KEY not in m for m in messages) and KEY not in out + err


def test_cli_streams_to_the_server_with_the_url_from_the_environment(server, data_dir, tmp_path):
    url = server.url("live", KEY)
    recorder = Recorder(url, tmp_path / "cli.flv")
    recorder.start()
    env = {**os.environ, "BLURCLI_RTMP_URL": url, "BLURCLI_GALLERY": str(tmp_path / "none.json")}
    proc = subprocess.run(
        [sys.executable, "-m", "blurcli", "--debug", "stream", str(data_dir / "video/retalking_face_1.mp4"), "--duration", "3", "--no-status"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert KEY not in proc.stdout + proc.stderr
    assert "rtmp://127.0.0.1" in proc.stderr and "live/****" in proc.stderr
    recorder.join(20)
    packets, frames, _, _, codecs = read_back(recorder.path)
    assert codecs[:2] == ("h264", "aac") and len(packets) == 90
    # What the start-up line announced is what the server got (700x700 unless this machine is loaded).
    chosen = re.search(r"sending (\d+)x(\d+) with x264 (\w+)", " ".join(proc.stderr.split()))
    assert chosen, proc.stderr
    assert frames[0].shape == (int(chosen[2]), int(chosen[1]), 3) and int(chosen[1]) <= 700


# -- a phone's push that drops ---------------------------------------------------------------

PHONE_SIZE = (640, 360)


def _phone_picture(data_dir):
    """two_people.jpg at 640x360: what the phone films (two strangers: both must be hidden)."""
    return cv2.resize(cv2.imread(str(data_dir / "identity" / "mixed" / "two_people.jpg")), PHONE_SIZE, interpolation=cv2.INTER_AREA)


def _kinds(frames, picture, data_dir) -> str:
    """One letter per received frame: P the picture (background readable, both faces hidden),
    S a slate (nothing of the picture readable), ? anything else."""
    redaction = scorer(data_dir)
    grey = cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY)
    sx, sy = PHONE_SIZE[0] / 1188, PHONE_SIZE[1] / 663  # two_people.jpg is 1188x663
    faces = [(x * sx, y * sy, w * sx, h * sy) for x, y, w, h in ((235, 29, 177, 177), (786, 65, 169, 169))]
    background = (300, 250, 200, 100)  # the lower middle: shirts and the wall, no face
    letters = []
    for frame in frames:
        out = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        whole = redaction.detail_correlation(out, grey)
        if whole < redaction.HIDDEN:
            letters.append("S")
            continue
        seen = [redaction.detail_correlation(redaction.region(out, box), redaction.region(grey, box)) for box in faces]
        back = redaction.detail_correlation(redaction.region(out, background), redaction.region(grey, background))
        letters.append("P" if back > redaction.KEPT and max(seen) < redaction.HIDDEN else "?")
    return "".join(letters)


def test_a_phone_that_drops_gets_the_slate_and_the_stream_never_stops(server, data_dir, tmp_path, caplog, capfd):
    """The phone pushes to a listening blurcli 3 s, drops for 4 s, pushes 3 s again, then leaves for
    good (the stream ends 6 s later, --source-timeout); the viewer's stream (recorded back from
    nginx) never stops: 1/30 s apart throughout, a keyframe every 2 s, the slate in the gaps, the
    picture again after, sound all along and in sync within a frame on both sides of the gap."""
    import re

    from rtmp_server import Publisher, free_port

    caplog.set_level(logging.DEBUG, logger="blurcli")
    picture = _phone_picture(data_dir)
    port = free_port()
    ingest = f"rtmp://127.0.0.1:{port}/live/{KEY}-phone"
    url = server.url("live", KEY)
    settings = StreamSettings(SourceSpec(ingest, options={"listen": "1"}), rtmp_url=url, source_timeout=6.0)
    privacy = build_privacy(settings, 30)
    recorder = Recorder(url, tmp_path / "viewer.flv")
    recorder.start()
    stream = LiveStream(settings, privacy=privacy)
    thread, errors = _run_in_thread(stream)
    phone = Publisher(ingest, picture, size=PHONE_SIZE, bursts=[3.0, 3.0], gaps=[4.0])
    phone.start()
    try:
        phone.join(40)
        thread.join(40)
    finally:
        stream.stop()
        thread.join(10)
        privacy.close()
    assert not errors and phone.error is None, (errors, phone.error)
    assert len(phone.bursts) == 2 and stream.stats.source == "gave up" and stream.stats.source_drops == 2
    recorder.join(15)
    packets, frames, audio, audio_start, codecs = read_back(recorder.path)
    assert codecs == ("h264", "aac", 48000, 2)

    # One continuous stream at 1/30 s, a keyframe every 2 s exactly.
    pts = np.array([p for p, _ in packets])
    assert np.abs(np.diff(pts) - 1 / 30).max() <= 0.001
    keys = pts[[k for _, k in packets]]
    assert keys[0] == pts[0] and np.abs(np.diff(keys) - 2.0).max() <= 0.001

    # The picture, the slate through the 4 s gap, the picture again, the slate until the timeout.
    kinds = _kinds(frames, picture, data_dir)
    # A few frames may be hidden whole too (W): the first pictures after the phone connects can
    # be due before a detection covers them, and a frame not covered in time is hidden whole, as
    # always live. They are counted as such; a slate lasts as long as the gap.
    kinds = re.sub(r"S+", lambda m: m.group() if len(m.group()) >= 15 else "W" * len(m.group()), kinds)
    assert kinds.count("W") <= stream.stats.whole_hidden, kinds
    runs = [(m.group()[0], len(m.group())) for m in re.finditer(r"P+|S+|\?+", kinds.replace("W", ""))]
    assert "?" not in kinds, kinds
    assert [k for k, _ in runs] == ["P", "S", "P", "S"], kinds
    # The push after the gap is back within a second (FFmpeg's probe no longer reads it ahead).
    assert runs[1][1] >= 3.5 * 30 and runs[2][1] >= 2.0 * 30 and runs[3][1] >= 5.5 * 30, runs

    # Sound throughout: the tone while the phone is there, silence in the gaps, no hole in between.
    duration = len(frames) / 30
    assert abs(audio_start - pts[0]) <= 1 / 30 and audio.shape[1] / 48000 >= duration - 0.1
    per_frame = 48000 // 30
    level = [float(np.abs(audio[:, i * per_frame:(i + 1) * per_frame]).mean()) for i in range(len(frames))]
    tone = [i for i, kind in enumerate(kinds) if kind == "P" and 10 < i]
    assert np.median([level[i] for i in tone]) > 0.03
    quiet = [i for i, kind in enumerate(kinds) if kind == "S"][15:-15]
    assert np.median([level[i] for i in quiet]) < 0.01

    # Sound in sync with the picture within a frame, before the gap and after it: each marked frame
    # (the white corner) against the onset of its beep.
    from rtmp_server import BEEP, MARK

    marked = [i for i, frame in enumerate(frames) if kinds[i] == "P" and frame[MARK[1] + 5:MARK[3] - 5, MARK[0] + 5:MARK[2] - 5].mean() > 200]
    loud = np.flatnonzero(np.abs(audio).max(axis=0) > BEEP * 0.6)
    onsets = loud[np.concatenate([[True], np.diff(loud) > 48000 // 4])] / 48000 + audio_start
    gap = kinds.index("S")  # the first slate (short runs hidden whole are W)
    assert len(marked) >= 4 and {i < gap for i in marked} == {True, False}, (marked, gap)
    offsets = [float(np.abs(onsets - pts[i]).min()) for i in marked]
    assert max(offsets) <= 1 / 30, (marked, offsets)

    out, err = capfd.readouterr()
    messages = [r.getMessage() for r in caplog.records]
    assert any("dropped" in m and "reconnecting" in m for m in messages)
    assert any("is back after" in m for m in messages) and any("--source-timeout" in m for m in messages)
    assert all(KEY not in m for m in messages) and KEY not in out + err


def test_what_piles_up_while_blurcli_gets_ready_is_dropped_in_picture_and_sound_alike(data_dir):
    """The phone connects; blurcli takes 1.5 s to get ready (the detector warms up, the encoder is
    timed) while the push piles up. Capture starts at the live edge: no burst of the past (frames
    1/30 s apart from the first), and every marked picture, the first one too, has its beep at its
    own capture time. Read as a burst, the first pictures shared one instant and a beep was lost."""
    from blurcli.live.audio import AudioTimeline
    from blurcli.live.capture import Capture, FrameQueue
    from rtmp_server import BEEP, MARK, Publisher, free_port

    ingest = f"rtmp://127.0.0.1:{free_port()}/live/phone"
    frames, timeline, stop = FrameQueue(maxlen=300), AudioTimeline(), threading.Event()
    capture = Capture(SourceSpec(ingest, options={"listen": "1"}), frames=frames, newest=None, audio=timeline, stop=stop, source_timeout=20)
    phone = Publisher(ingest, _phone_picture(data_dir), size=PHONE_SIZE, bursts=[6.0])
    phone.start()
    try:
        capture.open()
        time.sleep(1.5)
        capture.start()
        time.sleep(3.5)
    finally:
        stop.set()
        capture.join(10)
        phone.join(20)
    got = frames.drain()
    assert capture.error is None and capture.backlog.dropped >= 30, (capture.error, capture.backlog.dropped)
    # Capture time follows the phone's clock from the first picture (a burst put 1.5 s of pictures
    # within a few frames; measured 0.3 ms from the phone's clock).
    times = np.array([f.time for f in got])
    drift = times - np.arange(len(times)) / 30
    assert len(got) >= 90 and np.abs(drift - np.median(drift)).max() < 0.01, (drift - np.median(drift)).round(3)
    sound = timeline.read(times[0], int((times[-1] - times[0]) * 48000))
    loud = np.abs(sound).max(axis=0) > BEEP * 0.6
    marked = [f.time - times[0] for f in got if f.image[MARK[1] + 5:MARK[3] - 5, MARK[0] + 5:MARK[2] - 5].mean() > 200]
    assert len(marked) >= 3, marked
    for at in marked:  # the beep within a frame of its picture
        window = loud[max(0, int((at - 1 / 30) * 48000)):int((at + 2 / 30) * 48000)]
        assert window.any(), (at, marked)
    assert loud.sum() <= len(marked) * 1.2 * 48000 / 30  # and no beep elsewhere


def test_the_recording_survives_a_source_that_never_comes_back_and_shows_the_given_slate(data_dir, tmp_path):
    """--output with --slate: the phone pushes 2 s and is gone; after --source-timeout the stream
    ends by itself (exit 0), and the recording plays to its end, the slate picture after the drop."""
    from rtmp_server import Publisher, free_port

    from tests.hardening_support import run_blurcli

    picture = _phone_picture(data_dir)
    slate = np.zeros((360, 640, 3), np.uint8)
    cv2.putText(slate, "BACK SOON", (60, 200), cv2.FONT_HERSHEY_SIMPLEX, 3.0, (255, 255, 255), 8)
    cv2.imwrite(str(tmp_path / "slate.png"), slate)
    port = free_port()
    ingest = f"rtmp://127.0.0.1:{port}/live/phone"
    phone = Publisher(ingest, picture, size=PHONE_SIZE, bursts=[2.0])
    phone.start()
    outcome = run_blurcli(
        "stream", ingest, "-o", "listen=1", "--output", "rec.mp4", "--source-timeout", "2", "--slate", "slate.png",
        "--no-status", cwd=tmp_path, timeout=90,
    )
    phone.join(10)
    assert outcome.code == 0, outcome.stderr
    assert "stayed away for 2 s" in outcome.stderr and "slate frames" in outcome.stderr
    with av.open(str(tmp_path / "rec.mp4")) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
        stream = container.streams.video[0]
        assert abs(float(stream.duration * stream.time_base) - len(frames) / 30) < 0.1
    redaction = scorer(data_dir)
    grey_slate = cv2.cvtColor(slate, cv2.COLOR_BGR2GRAY)
    is_slate = [redaction.detail_correlation(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), grey_slate) > redaction.KEPT for f in frames]
    first = is_slate.index(True)
    # The given slate from the last picture (the look-ahead after the drop) until the timeout.
    assert all(is_slate[first:]) and len(frames) - first >= 0.9 * (2 - DEFAULT_DELAY_S) * 30
    assert first >= 5 and not any(is_slate[:first])  # the picture before it
