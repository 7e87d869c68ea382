"""Crowds in video: pans over the shared WIDER photos, scored frame by frame with the reference scorer.

The clips are made here (benchmarks/crowdpan.py, DESIGN.md's recipe), shorter than the harness's
(two photos, 1.5 s each), so the bounds carry a margin below the harness's figures in the README.
The same builder pans over the dogs photo: there nothing may be masked at all.
"""
from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from benchmarks.crowdpan import make_crowd_pan, score_pan, wider_photos
from blurcli.detect import load_detector
from blurcli.detect.yunet import YuNet
from blurcli.faces import iou_matrix
from blurcli.pipeline.video import VideoRedactor, VideoSettings, auto_detect_side
from blurcli.settings import DetectSettings, IdentitySettings
from tests.helpers import scorer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redactor(tmp_path_factory):
    gallery = tmp_path_factory.mktemp("gallery") / "empty.json"
    return VideoRedactor(VideoSettings(identity=IdentitySettings(gallery=gallery)))


def _two_crowds(data_dir):
    """A parade and a marching band: hundreds of faces of 10-40 px once panned at 720p."""
    photos = {Path(p["file"]).name: p for p in wider_photos(data_dir)}
    assert len(photos) >= 10, "the shared set should hold many WIDER crowds"
    return [photos["0_Parade_Parade_0_288.jpg"], photos["0_Parade_marchingband_1_629.jpg"]]


def test_crowd_pan_720p_hides_small_faces_in_almost_every_frame(data_dir, tmp_path, redactor):
    pan = make_crowd_pan(data_dir, tmp_path / "crowd.mp4", photos=_two_crowds(data_dir), seconds_per_photo=1.5)
    assert len(pan.boxes) == 90 and pan.cuts == [0, 45]
    report = redactor.redact_file(pan.path, tmp_path / "out.mp4")
    score = score_pan(pan, tmp_path / "out.mp4", scorer(data_dir))
    pairs = sum(t for name, (_, t) in score.buckets.items() if not name.startswith("tiny"))
    assert score.frames == 90 and pairs > 1500 and report.frames == 90
    # Measured 99.0% (10-20 px: 99.2%); with 3 blur samples per face and no camera motion 94.4%
    # (94.0%); with the old 640 px detection copy 78.8% (70.0%).
    assert score.share() >= 0.97, score.buckets
    small_hidden, small_total = score.buckets["small 10-20px"]
    assert small_hidden >= 0.96 * small_total, score.buckets


def test_one_pass_writes_what_two_passes_write(data_dir, tmp_path, redactor, monkeypatch):
    """Nobody enrolled: one decode, each frame hidden 28 frames behind the detector, gives every
    frame of a crowd pan (and a cut) the boxes the whole file gives it in two passes."""
    from blurcli.pipeline import one_pass

    photos = {Path(p["file"]).name: p for p in wider_photos(data_dir)}
    crowds = [photos["0_Parade_marchingband_1_629.jpg"], photos["0_Parade_Parade_0_288.jpg"]]
    pan = make_crowd_pan(data_dir, tmp_path / "crowd.mp4", photos=crowds, seconds_per_photo=1.5)
    hidden = {}
    redact_frame = one_pass.redact_frame
    monkeypatch.setattr(one_pass, "redact_frame", lambda frame, xyxy, *a, **k: (
        hidden.__setitem__(frame.index, np.asarray(xyxy).copy()), redact_frame(frame, xyxy, *a, **k)))
    one = redactor.redact_file(pan.path, tmp_path / "one.mp4")
    monkeypatch.setattr(one_pass, "LOOK_AHEAD_BYTES", 0)  # no room for a look-ahead: two passes
    two = redactor.redact_file(pan.path, tmp_path / "two.mp4")
    assert set(one.seconds) == {"one_pass"} and set(two.seconds) == {"analyse", "write"}
    assert sorted(hidden) == list(range(90)) and sum(len(b) for b in hidden.values()) > 1500
    for i in range(90):  # what the stream hid is what the whole file plans
        assert np.array_equal(hidden[i], two.plan.boxes(i)), i
    assert [t.boxes for t in one.tracks] == [t.boxes for t in two.tracks]
    assert [(t.hidden_from, t.hidden_to) for t in one.tracks] == [(t.hidden_from, t.hidden_to) for t in two.tracks]
    with av.open(str(tmp_path / "one.mp4")) as a, av.open(str(tmp_path / "two.mp4")) as b:
        for x, y in zip(a.decode(video=0), b.decode(video=0), strict=True):
            assert np.array_equal(x.to_ndarray(format="yuv420p"), y.to_ndarray(format="yuv420p"))


def test_crowd_pan_1080p_small_faces_are_found_by_the_small_face_tiles(data_dir, tmp_path, redactor):
    """At 1080p the detector sees a 960 px copy, where a 10-20 px face is 5-10 px: the small-face
    tiles (every 0.5 s where small faces are) find them; the same copy without the tiles does not."""
    photos = {Path(p["file"]).name: p for p in wider_photos(data_dir)}
    pan = make_crowd_pan(data_dir, tmp_path / "band.mp4", photos=[photos["0_Parade_marchingband_1_465.jpg"]],
                         size=(1920, 1080), seconds_per_photo=1.5)
    report = redactor.redact_file(pan.path, tmp_path / "out.mp4")
    assert report.small_face_passes >= 3 and report.full_size_detections >= report.small_face_passes
    tiles = score_pan(pan, tmp_path / "out.mp4", scorer(data_dir)).buckets["small 10-20px"]
    plain = VideoRedactor(VideoSettings(identity=redactor.settings.identity, detect_max_side=960))
    assert plain.redact_file(pan.path, tmp_path / "plain.mp4").small_face_passes == 0
    without = score_pan(pan, tmp_path / "plain.mp4", scorer(data_dir)).buckets["small 10-20px"]
    assert tiles[1] > 500, tiles
    # Measured on this clip: 719 of 908 (79.2%) with the tiles, 311 (34.3%) without.
    assert tiles[0] >= 0.72 * tiles[1] and without[0] <= 0.5 * without[1], (tiles, without)


def test_pan_over_dogs_masks_nothing(data_dir, tmp_path, redactor):
    dogs = json.loads((data_dir / "detect" / "annotations.json").read_text())
    [entry] = [e for e in dogs if e["file"].startswith("negatives/")]
    pan = make_crowd_pan(data_dir, tmp_path / "dogs.mp4", photos=[{**entry, "boxes": []}], seconds_per_photo=1.0)
    report = redactor.redact_file(pan.path, tmp_path / "out.mp4")
    # No dog is taken for a face. At the edge of the threshold (0.2; a dog's face scores ~0.16)
    # a pan can raise one weak, single-frame box on a patch of fur; allow that one, nothing more.
    weak = [t for t in report.tracks if len(t.boxes) == 1 and t.boxes[0][-1] < 0.25]
    assert len(report.tracks) <= 1 and len(weak) == len(report.tracks), [t.boxes for t in report.tracks]


def test_video_detects_at_full_720p_resolution():
    """The detection copy of a 720p frame is the frame itself: small crowd faces need every pixel."""

    class Info:
        width, height = 1280, 720

    assert auto_detect_side(Info) == 1280


def test_yunet_finds_the_astronaut_and_adds_to_centerface_in_union(data_dir):
    from blurcli.detect.selfcheck import ASTRONAUT_FACE, _picture

    yunet = YuNet(0.6)
    faces = yunet.detect(_picture("astronaut.png"), max_side=512)
    assert len(faces) == 1 and iou_matrix(faces.xyxy, ASTRONAUT_FACE[None])[0, 0] > 0.5
    crowd = cv2.imread(str(data_dir / "detect" / wider_photos(data_dir)[1]["file"]))
    alone = load_detector(DetectSettings(upscale_small=False)).detect(crowd, max_side=640)
    both = load_detector(DetectSettings(upscale_small=False, yunet=True, yunet_threshold=0.5)).detect(crowd, max_side=640)
    assert len(both) > len(alone)
    # Every CenterFace face is still there after the union's NMS (the union only adds).
    assert np.all(iou_matrix(alone.xyxy, both.xyxy).max(axis=1) > 0.3)
    assert not DetectSettings().yunet, "YuNet stays off by default (it masks dogs at the scores where it helps)"
