"""Tracking units: the tracker, the identity vote, the detection cadence, cut detection, box plans."""
from __future__ import annotations

import math

import numpy as np
import pytest

from blurcli.faces import Faces
from blurcli.identity.policy import IdentityVotes, worth_sampling
from blurcli.track import CutDetector, DetectionCadence, FaceTracker
from blurcli.track.plan import MaskPlan, TrackLog, track_boxes
from blurcli.track.tracker import face_distance


def make_faces(xyxy, score=None, landmarks=None) -> Faces:
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    score = np.full(len(xyxy), 0.9, np.float32) if score is None else score
    return Faces(xyxy, score, landmarks)


def box_at(x: float, y: float = 50.0, size: float = 40.0) -> list[float]:
    return [x, y, x + size, y + size]


# -- tracker -----------------------------------------------------------------------------------


def test_new_track_is_reported_from_its_first_frame():
    tracker = FaceTracker(fps=30)
    out = tracker.update(make_faces([box_at(10), box_at(200)]), 0)
    assert len(out) == 2
    assert (out.track_id > 0).all() and len(set(out.track_id.tolist())) == 2
    assert out.data["detected"].all()
    np.testing.assert_allclose(np.sort(out.xyxy[:, 0]), [10, 200])
    # a face that appears later is reported in the frame it appears, not frames later
    tracker.update(make_faces([box_at(10), box_at(200)]), 1)
    out = tracker.update(make_faces([box_at(10), box_at(200), box_at(400)]), 2)
    assert len(out) == 3
    new = out[out.xyxy[:, 0] == 400]
    assert new.data["detected"][0] and new.data["lost"][0] == 0


def test_boxes_are_carried_over_predict_only_frames():
    tracker = FaceTracker(fps=30)
    for frame in range(0, 12, 3):  # detector every 3rd frame, face moving right 6 px/frame
        out = tracker.update(make_faces([box_at(10 + 6 * frame)]), frame)
        track_id = out.track_id[0]
        for skipped in (frame + 1, frame + 2):
            predicted = tracker.update(None, skipped)
            assert predicted.track_id.tolist() == [track_id]
            assert not predicted.data["detected"][0]
            assert predicted.data["lost"][0] == skipped - frame
    # after a few detections the prediction follows the motion (here within a third of the face)
    assert abs(predicted.xyxy[0, 0] - (10 + 6 * 11)) < 40 / 3


def test_predicted_boxes_keep_corner_order():
    tracker = FaceTracker(fps=30)
    # a box shrinking fast: the prediction's right edge passes its left edge
    for frame, (x0, x1) in enumerate([(0, 60), (12, 48), (24, 36)]):
        tracker.update(make_faces([[x0, 0, x1, 40]]), frame)
    for frame in range(3, 8):
        out = tracker.update(None, frame)
        assert len(out) == 1
        assert (out.xyxy[:, 0] <= out.xyxy[:, 2]).all() and (out.xyxy[:, 1] <= out.xyxy[:, 3]).all()


def test_track_id_survives_a_short_occlusion():
    tracker = FaceTracker(fps=30, lost_s=0.5)
    ids = set()
    for frame in range(30):
        occluded = 10 <= frame < 18  # 8 frames (0.27 s) without the face
        out = tracker.update(Faces.empty() if occluded else make_faces([box_at(100 + frame)]), frame)
        if not occluded:
            ids.add(int(out.track_id[0]))
        else:
            assert len(out) == 1 and not out.data["detected"][0]  # still reported while lost
    assert len(ids) == 1


def test_lost_track_dies_after_lost_s():
    tracker = FaceTracker(fps=30, lost_s=0.5)
    for frame in range(10):
        tracker.update(make_faces([box_at(100)]), frame)
    alive = [len(tracker.update(Faces.empty(), frame)) for frame in range(10, 40)]
    assert alive[0] == 1 and alive[-1] == 0
    assert 13 <= sum(alive) <= 17  # ~0.5 s at 30 fps


def test_fast_face_with_sparse_detection_keeps_its_track():
    tracker = FaceTracker(fps=30)
    ids = set()
    for frame in range(0, 30, 3):  # jumps 45 px (more than its 40 px size) between detections
        out = tracker.update(make_faces([box_at(15 * frame)]), frame)
        ids.add(int(out.track_id[out.data["detected"]][0]))
        tracker.update(None, frame + 1)
        tracker.update(None, frame + 2)
    assert len(ids) == 1


def test_jump_to_a_far_face_starts_a_new_track():
    tracker = FaceTracker(fps=30)
    first = tracker.update(make_faces([box_at(0)]), 0).track_id[0]
    out = tracker.update(make_faces([box_at(200)]), 1)  # 5 face sizes away
    assert first not in out.track_id[out.data["detected"]].tolist()


def test_reset_forgets_tracks_and_never_reuses_ids():
    tracker = FaceTracker(fps=30)
    before = tracker.update(make_faces([box_at(10)]), 0).track_id[0]
    tracker.reset()
    out = tracker.update(make_faces([box_at(10)]), 1)
    assert len(out) == 1 and out.track_id[0] > before


def test_distance_prefers_overlap_and_tolerates_a_jump():
    candidates = np.array([box_at(0), box_at(44), box_at(200), [0, 50, 200, 250]], float)
    d = face_distance(candidates, np.array([box_at(0)], float))
    assert d[0, 0] == pytest.approx(0.0)
    assert 1.0 <= d[1, 0] < 1.25  # no overlap, centre 1.1 face sizes away: still a match
    assert d[2, 0] > 1.25  # 5 face sizes away: no match
    assert d[3, 0] == 10.0  # five times bigger: never the same face


# -- identity vote -------------------------------------------------------------------------------

TOL = 0.5


def votes(**kwargs) -> IdentityVotes:
    return IdentityVotes(fps=30, tolerance=TOL, **kwargs)


def test_unknown_until_proven():
    v = votes()
    assert v.decision(1) is None  # no sample yet
    v.add(1, "ann", 0.47, frame_index=0)
    assert v.decision(1) is None  # one ordinary match is not proof
    v.add(1, "ann", 0.45, frame_index=15)
    assert v.decision(1) == "ann"


def test_single_very_confident_sample_decides_a_short_track():
    v = votes()
    v.add(1, "ann", 0.35, frame_index=0)
    assert v.decision(1) == "ann"


@pytest.mark.parametrize(
    "late_sample, expected",
    [
        ((None, 0.75), None),  # matches nobody, far away: another face on this track
        (("bob", 0.40), None),  # someone else enrolled
        ((None, 0.55), "ann"),  # a turned face of ann: weak disagreement only
    ],
)
def test_decision_is_revoked_by_strong_disagreement(late_sample, expected):
    v = votes()
    for frame, distance in [(0, 0.45), (15, 0.44), (30, 0.46)]:
        v.add(1, "ann", distance, frame_index=frame)
    assert v.decision(1) == "ann"
    v.add(1, *late_sample, frame_index=60)
    assert v.decision(1) == expected
    assert v.revoked(1) is (expected is None)


def test_a_confident_lone_sample_is_revoked_too():
    v = votes()
    v.add(1, "ann", 0.30, frame_index=0)
    v.add(1, None, 0.8, frame_index=15)
    assert v.decision(1) is None


def test_mostly_weak_samples_are_not_enough():
    v = votes()
    v.add(1, "ann", 0.48, frame_index=0)
    v.add(1, "ann", 0.49, frame_index=15)
    for frame in range(30, 130, 15):
        v.add(1, None, 0.55, frame_index=frame)
    assert v.decision(1) is None  # 2 of 9 agree


def test_nan_distance_is_no_evidence():
    v = votes()
    v.add(1, None, math.nan, frame_index=0)
    assert v.samples(1) == [] and not v.revoked(1)


def around(centre: np.ndarray, distance: float, rng) -> np.ndarray:
    """An encoding at ``distance`` from ``centre`` in a random direction (frame-to-frame noise)."""
    direction = rng.normal(size=128)
    return (centre + distance * direction / np.linalg.norm(direction)).astype(np.float32)


ANN = np.zeros(128, np.float32)
BOB = around(ANN, 0.75, np.random.default_rng(99))  # a stranger, 0.75 from Ann


def matched_votes(*people):
    from blurcli.identity.matcher import Matcher

    names = ["ann", "bob"][: len(people)] if people else ["ann"]
    matcher = Matcher(names, [p[None] for p in (people or (ANN,))], tolerance=0.45)
    return IdentityVotes(fps=30, tolerance=0.45, matcher=matcher), matcher


def add_encoding(v, matcher, track_id, encoding, frame):
    [name], [distance] = matcher.match(encoding[None])
    v.add(track_id, name, float(distance), frame_index=frame, encoding=encoding)


def test_the_mean_of_noisy_samples_proves_an_enrolled_face():
    rng = np.random.default_rng(0)
    v, matcher = matched_votes()
    for k in range(6):  # every single sample is beyond the tolerance, as in low-light video
        add_encoding(v, matcher, 1, around(ANN, 0.5, rng), 15 * k)
    assert all(s.name is None for s in v.samples(1))
    assert v.decision(1) == "ann"


def test_the_mean_of_a_lookalikes_samples_stays_unknown():
    rng = np.random.default_rng(1)
    lookalike = around(ANN, 0.55, rng)  # beyond the tolerance, but not far enough to revoke
    v, matcher = matched_votes()
    for k in range(8):
        add_encoding(v, matcher, 1, around(lookalike, 0.2, rng), 15 * k)
    assert not v.revoked(1)
    assert v.decision(1) is None


def test_one_stranger_sample_revokes_a_track_kept_by_its_mean():
    rng = np.random.default_rng(2)
    v, matcher = matched_votes()
    for k in range(6):
        add_encoding(v, matcher, 1, around(ANN, 0.4, rng), 15 * k)
    assert v.decision(1) == "ann"
    add_encoding(v, matcher, 1, BOB, 120)  # the track jumped to Bob's face
    assert v.decision(1) is None and v.revoked(1)


def test_a_sample_of_another_enrolled_person_revokes_the_track():
    rng = np.random.default_rng(3)
    v, matcher = matched_votes(ANN, BOB)
    for k in range(4):
        add_encoding(v, matcher, 1, around(ANN, 0.3, rng), 15 * k)
    assert v.decision(1) == "ann"
    add_encoding(v, matcher, 1, around(BOB, 0.2, rng), 75)
    assert v.decision(1) is None


def test_a_lone_sample_needs_to_be_very_confident():
    rng = np.random.default_rng(4)
    v, matcher = matched_votes()
    add_encoding(v, matcher, 1, around(ANN, 0.30, rng), 0)
    add_encoding(v, matcher, 2, around(ANN, 0.42, rng), 0)
    assert v.decision(1) == "ann" and v.decision(2) is None


def test_samples_are_sparse():
    v = votes(interval_s=0.5, settled_interval_s=1.0, quick_samples=0)
    asked = [f for f in range(0, 90) if v.wants_sample(1, f) and (v.add(1, "ann", 0.45, frame_index=f) or True)]
    # first frame, then every 0.5 s until kept (2 samples), then every 1 s
    assert asked == [0, 15, 45, 75]


def test_an_undecided_track_is_sampled_quickly_at_first_then_sparsely():
    # A face near the tolerance (never decided by these samples): 8 samples 0.1 s apart, then every 0.5 s.
    v = votes(quick_interval_s=0.1, quick_samples=8, interval_s=0.5)
    asked = [f for f in range(0, 90) if v.wants_sample(1, f) and (v.add(1, None, 0.55, frame_index=f) or True)]
    assert asked == [0, 3, 6, 9, 12, 15, 18, 21, 36, 51, 66, 81]
    # A stranger beyond tolerance + margin is revoked by its first sample and never sampled again.
    assert v.wants_sample(2, 0)
    v.add(2, None, 0.7, frame_index=0)
    assert not any(v.wants_sample(2, f) for f in range(1, 90))


def test_revoked_track_is_never_sampled_again():
    v = votes()
    assert v.wants_sample(1, 0)
    v.add(1, None, 0.9, frame_index=0)
    assert not any(v.wants_sample(1, f) for f in range(1, 300))


def test_recheck_asks_for_a_sample_at_once():
    v = votes(quick_samples=0)
    v.add(1, "ann", 0.45, frame_index=0)
    assert not v.wants_sample(1, 3)
    v.recheck(1)
    assert v.wants_sample(1, 3)


def test_small_turned_or_weak_faces_are_not_sampled():
    eyes_nose = lambda nose_x: [[40, 60], [60, 60], [nose_x, 70], [42, 80], [58, 80]]
    faces = make_faces(
        [box_at(30), box_at(30, size=20), box_at(30), box_at(30), box_at(30)],
        score=np.array([0.9, 0.9, 0.3, 0.9, 0.9], np.float32),
        landmarks=np.array(
            [eyes_nose(50), eyes_nose(50), eyes_nose(50), eyes_nose(59), [[np.nan, np.nan]] * 5], np.float32
        ),
    )
    assert worth_sampling(faces, 40).tolist() == [True, False, False, False, True]


# -- cadence and cuts -----------------------------------------------------------------------------


def run_cadence(cadence: DetectionCadence, speed_px: float, frames: int = 60) -> list[int]:
    tracker = FaceTracker(fps=30)
    detected = []
    for frame in range(frames):
        if cadence.should_detect(frame):
            detected.append(frame)
            tracks = tracker.update(make_faces([box_at(speed_px * frame)]), frame)
            cadence.observe(tracks, frame)
        else:
            tracker.update(None, frame)
    return detected


def test_cadence_skips_frames_of_a_still_face_and_follows_a_fast_one():
    still = run_cadence(DetectionCadence(fps=30), 0.0)
    assert np.diff(still).max() == 4 and len(still) <= 16
    fast = run_cadence(DetectionCadence(fps=30), 15.0)  # 3/8 of its size per frame
    assert np.diff(fast)[0] == 2 and (np.diff(fast)[1:] == 1).all()


def test_min_interval_spaces_detections_of_a_fast_face_but_not_cuts():
    spaced = run_cadence(DetectionCadence(fps=30, min_interval=2), 15.0)
    assert (np.diff(spaced) == 2).all()
    cadence = DetectionCadence(fps=30, min_interval=2)
    cadence.observe(Faces.empty(), 10)
    assert not cadence.should_detect(11, change=50.0)  # fast picture change alone waits one frame
    assert cadence.should_detect(11, cut=True) and cadence.should_detect(12, change=50.0)


def test_fixed_cadence_and_cuts():
    cadence = DetectionCadence(fps=30, every=5)
    assert run_cadence(cadence, 20.0, 20) == [0, 5, 10, 15]
    cadence.reset()
    assert cadence.should_detect(21)
    cadence.observe(Faces.empty(), 21)
    assert not cadence.should_detect(22) and cadence.should_detect(23, cut=True)


def test_cut_detector_fires_on_a_new_shot_only():
    cuts = CutDetector()
    rng = np.random.default_rng(0)
    shot_a = rng.integers(0, 120, (360, 640, 3), np.uint8)
    shot_b = rng.integers(100, 255, (360, 640, 3), np.uint8)
    assert not cuts.update(shot_a)
    assert not cuts.update(np.roll(shot_a, 8, axis=1))  # camera moves a little
    assert cuts.update(shot_b)
    assert not cuts.update(shot_b)


# -- per-frame boxes ------------------------------------------------------------------------------


def test_track_boxes_interpolate_and_pad_within_the_shot():
    log = TrackLog(track_id=1, shot_start=5)
    for frame in (10, 14, 18):
        log.add(frame, box_at(2 * frame), 0.9)
    frames, boxes = track_boxes(log, pad=8, shot_end=22)
    assert frames[0] == 5 and frames[-1] == 21  # padding stops at the shot's edges
    assert np.array_equal(frames, np.arange(5, 22))
    at = dict(zip(frames.tolist(), boxes))
    np.testing.assert_allclose(at[14], box_at(28), atol=1e-4)  # a detection: its own box
    centre = (at[12][0] + at[12][2]) / 2
    assert centre == pytest.approx(24 + 20, abs=0.01)  # halfway between detections
    assert at[12][2] - at[12][0] > 40  # and grown a little: the guess is less sure
    assert (at[21][0] + at[21][2]) / 2 > (at[18][0] + at[18][2]) / 2  # extrapolated along its motion


def test_mask_plan_collects_boxes_per_frame():
    plan = MaskPlan()
    plan.add(np.array([3, 4]), np.array([box_at(0), box_at(5)], np.float32))
    plan.add(np.array([4]), np.array([box_at(100)], np.float32))
    assert plan.boxes(2).shape == (0, 4)
    np.testing.assert_array_equal(plan.boxes(3), [box_at(0)])
    np.testing.assert_array_equal(plan.boxes(4), [box_at(5), box_at(100)])
    with pytest.raises(ValueError):
        plan.add(np.array([7, 9]), np.zeros((2, 4)))


def test_camera_motion_measures_a_pan_and_ignores_cuts(data_dir):
    import cv2

    from blurcli.track.motion import CameraMotion

    photo = cv2.imread(str(data_dir / "identity" / "mixed" / "two_people.jpg"))
    motion = CameraMotion()
    offsets = [motion.update(photo[40:400, 7 * k : 7 * k + 640]) for k in range(6)]
    # The window moves 7 px right per frame, so the picture moves 7 px left.
    assert np.allclose(np.diff(np.array(offsets), axis=0), [-7, 0], atol=0.3), offsets
    cut = motion.update(photo[200:560, 300:940], cut=True)
    assert np.allclose(cut, offsets[-1]), "a cut must not move the scene coordinates"


def test_face_shifts_follow_a_real_face_and_refuse_what_they_cannot_match(data_dir):
    import cv2

    from blurcli.track.motion import face_shifts

    photo = cv2.imread(str(data_dir / "identity" / "mixed" / "two_people.jpg"))
    before, after = photo[0:600, 100:1000], photo[4:604, 94:994]  # the picture moves 6 px right, 4 up
    obama = [235 - 100, 29, 235 - 100 + 177, 29 + 177]  # labels.json's box, in the window
    small = [obama[0], obama[1], obama[0] + 10, obama[1] + 10]  # too small to match
    flat = np.full_like(before, 90)
    shifts = face_shifts(before, after, [obama, small])
    assert np.allclose(shifts[0], [6, -4], atol=0.5), shifts
    assert np.isnan(shifts[1]).all()
    assert np.isnan(face_shifts(flat, flat, [obama])).all()  # no texture: no speed
    assert np.isnan(face_shifts(before, np.roll(before, 400, axis=1), [obama])).all()  # gone: no match


def test_a_measured_new_face_needs_no_second_look_unless_it_is_fast():
    def first_look() -> DetectionCadence:
        cadence = DetectionCadence(fps=30)
        cadence.observe(FaceTracker(fps=30).update(make_faces([box_at(0)]), 0), 0)
        assert cadence.unmeasured == [1] and cadence.should_detect(2)  # unmeasured: the look 2 frames on
        return cadence

    still = first_look()
    still.measured({1: 0.0})  # a template match found it still
    assert still.unmeasured == [] and not still.should_detect(2) and still.should_detect(4)
    fast = first_look()
    fast.measured({1: 0.375})  # 3/8 of its size a frame: detect every frame
    assert fast.should_detect(1)
    unclear = first_look()
    unclear.measured({1: math.nan})  # no clear match: the look stays
    assert unclear.unmeasured == [1] and not unclear.should_detect(1) and unclear.should_detect(2)
