"""Previews: the side-by-side picture and clip show the real decisions and the real redaction.

Photos use scikit-image's public-domain astronaut (NASA) and CC0 cameraman, shipped in the
scikit-image wheel, with the real detector and encoder. The video preview runs the real video
passes on a synthetic clip, with a fake detector and encoder that tell a blue square (Ann,
enrolled) from a green one (a stranger).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from blurcli._cli import app
from blurcli.errors import UsageError
from blurcli.faces import Faces
from blurcli.identity.matcher import Matcher
from blurcli.media.video_io import VideoReader, probe_video
from blurcli.preview import (
    HIDDEN_BGR,
    KEPT_BGR,
    render_photo_preview,
    photo_preview,
    side_by_side,
    video_preview,
)
from blurcli.settings import IdentitySettings, Style
from tests.media_factory import make_clip
from tests.helpers import detail_correlation




def has_colour(region: np.ndarray, bgr, tolerance: int = 40) -> bool:
    return bool((np.abs(region.astype(int) - np.array(bgr)).max(axis=-1) <= tolerance).any())


def crop(image: np.ndarray, box) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return image[y0:y1, x0:x1]


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    return cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def cameraman() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    return cv2.cvtColor(skimage_data.camera(), cv2.COLOR_GRAY2BGR)


# ---------------------------------------------------------------- the picture itself


def test_render_boxes_by_decision_and_redacts_only_hidden_faces():
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur((rng.random((120, 200, 3)) * 255).astype(np.uint8), (0, 0), 1.0)
    kept_box, hidden_box = [20, 30, 60, 80], [130, 30, 170, 80]
    faces = Faces(np.array([kept_box, hidden_box], np.float32), np.array([0.9, 0.8], np.float32))
    faces.identity[0], faces.distance[0] = "ann", 0.31

    preview = render_photo_preview(image, faces, ["kept", "hidden"], [Style.blur, Style.solid])

    bar = preview.shape[0] - image.shape[0]
    assert preview.shape[1] == 3 * 200 + 2 * 6 and bar > 0  # original | blur | solid
    original = preview[bar:, :200]
    blur, solid = preview[bar:, 206:406], preview[bar:, 412:612]
    # the boxed original: green edge around the kept face, red around the hidden one
    assert has_colour(original[28:34, 18:62], KEPT_BGR) and not has_colour(original[28:34, 18:62], HIDDEN_BGR)
    assert has_colour(original[28:34, 128:172], HIDDEN_BGR) and not has_colour(original[28:34, 128:172], KEPT_BGR)
    # each result panel: the kept face untouched, the hidden face destroyed
    for panel in (blur, solid):
        assert np.array_equal(crop(panel, kept_box), crop(image, kept_box))
        assert detail_correlation(crop(panel, hidden_box), crop(image, hidden_box)) < 0.5
    assert crop(solid, [140, 45, 160, 65]).max() < 40  # solid is a dark fill, blur is not
    assert crop(blur, [140, 45, 160, 65]).max() >= 40


def test_side_by_side_pads_shorter_panels():
    out = side_by_side([np.full((10, 4, 3), 200, np.uint8), np.full((6, 5, 3), 100, np.uint8)], gap=2)
    assert out.shape == (10, 11, 3)
    assert (out[:10, :4] == 200).all() and (out[:6, 6:] == 100).all() and (out[6:, 6:] == 32).all()


# ---------------------------------------------------------------- photos, real models


def test_photo_preview_hides_the_astronaut_with_nobody_enrolled(tmp_path, astronaut):
    src = tmp_path / "astronaut.png"
    cv2.imwrite(str(src), astronaut)
    dst = tmp_path / "preview.png"

    report = photo_preview(src, dst, styles=["blur", "pixelate"])

    [face] = report.faces
    assert face.action == "hidden" and face.identity is None
    preview = cv2.imread(str(dst))
    bar = preview.shape[0] - 512
    assert preview.shape[1] == 3 * 512 + 2 * 6
    original, blur, pixelate = (preview[bar:, x : x + 512] for x in (0, 518, 1036))
    x0, y0, x1, y1 = face.box
    inner = [x0 + 8, y0 + 8, x1 - 8, y1 - 8]
    assert detail_correlation(crop(original, inner), crop(astronaut, inner)) > 0.9
    assert has_colour(crop(original, [x0 - 3, y0 - 3, x1 + 3, y0 + 3]), HIDDEN_BGR)
    for panel in (blur, pixelate):
        assert detail_correlation(crop(panel, face.box), crop(astronaut, face.box)) < 0.5
        assert np.abs(panel[400:, :100].astype(int) - astronaut[400:, :100]).max() <= 6  # far from the face: PNG, same pixels
    assert set(tmp_path.iterdir()) == {src, dst}  # no temp file left


def test_photo_preview_keeps_the_enrolled_astronaut_and_hides_the_cameraman(tmp_path, astronaut, cameraman):
    from blurcli.identity.enroll import enroll

    enrol_photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(enrol_photo), astronaut)
    gallery = tmp_path / "gallery.json"
    enroll([enrol_photo], gallery_path=gallery)
    scene = tmp_path / "scene.png"
    cv2.imwrite(str(scene), np.hstack([cameraman, cv2.flip(astronaut, 1)]))  # a mirrored copy: same person
    dst = tmp_path / "scene-preview.jpg"
    from blurcli.pipeline.photo import PhotoSettings

    report = photo_preview(scene, dst, PhotoSettings(identity=IdentitySettings(gallery=gallery)))

    by_side = {("left" if f.box[0] < 512 else "right"): f for f in report.faces}
    assert by_side["right"].action == "kept" and by_side["right"].identity == "astronaut"
    assert by_side["left"].action == "hidden" and by_side["left"].identity is None
    preview = cv2.imread(str(dst))
    bar = preview.shape[0] - 512
    original, result = preview[bar:, :1024], preview[bar:, 1030:2054]
    source = cv2.imread(str(scene))
    kept, hidden = by_side["right"].box, by_side["left"].box
    assert detail_correlation(crop(result, kept), crop(source, kept)) > 0.8
    assert detail_correlation(crop(result, hidden), crop(source, hidden)) < 0.5
    k0, k1 = kept[1] - 2, kept[1] + 3
    assert has_colour(original[int(k0) : int(k1), int(kept[0]) : int(kept[2])], KEPT_BGR)


def test_cli_photo_preview_writes_the_side_by_side_instead(tmp_path, astronaut):
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), astronaut)
    runner = CliRunner()

    result = runner.invoke(app, ["photo", str(src), str(tmp_path / "out.png"), "--preview", "--style", "solid"])

    assert result.exit_code == 0, result.output
    preview = cv2.imread(str(tmp_path / "out.png"))
    assert preview.shape[1] == 2 * 512 + 6  # original | solid
    assert "1 face(s) hidden" in result.output
    same = runner.invoke(app, ["photo", str(src), str(src), "--preview"])
    assert same.exit_code == 2 and "never overwrites" in same.output


def test_cli_folder_preview_mirrors_names_and_skips_a_bad_file(tmp_path, astronaut, cameraman):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    cv2.imwrite(str(src / "a.png"), astronaut)
    cv2.imwrite(str(src / "sub" / "b.png"), cameraman)
    (src / "bad.png").write_bytes(b"not a png")

    result = CliRunner().invoke(app, ["photo", str(src), str(tmp_path / "out"), "--preview"])

    assert result.exit_code == 9, result.output  # one file failed, the others were written
    for name, source in (("a.png", astronaut), ("sub/b.png", cameraman)):
        preview = cv2.imread(str(tmp_path / "out" / name))
        assert preview.shape[1] == 2 * 512 + 6
        bar = preview.shape[0] - 512
        assert np.abs(preview[bar:, :100].astype(int) - source[:, :100]).max() <= 2  # left: the original
    assert not (tmp_path / "out" / "bad.png").exists()


def test_photo_preview_refuses_to_overwrite_its_input(tmp_path, astronaut):
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), astronaut)
    before = src.read_bytes()
    with pytest.raises(UsageError):
        photo_preview(src, src)
    assert src.read_bytes() == before


# ---------------------------------------------------------------- videos, fake models


SIZE, FACE = (160, 96), 32
ANN_AT, STRANGER_AT = (16, 32), (112, 32)
ANN = np.zeros(128, np.float32)


def _square(image, xy, light, dark):
    x, y = xy
    cells = (np.add.outer(np.arange(FACE) // 4, np.arange(FACE) // 4) % 2).astype(bool)
    image[y : y + FACE, x : x + FACE] = np.where(cells[:, :, None], np.array(light, np.uint8), np.array(dark, np.uint8))


def _frame(i: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    image = np.clip(40 + rng.integers(-12, 12, (SIZE[1], SIZE[0], 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)
    _square(image, ANN_AT, (235, 60, 60), (150, 30, 30))  # blue: Ann
    _square(image, STRANGER_AT, (60, 235, 60), (30, 150, 30))  # green: a stranger
    return image


class SquareDetector:
    """Finds the blue and green squares."""

    def detect(self, image, *, max_side=None, upscale_small=None):
        b, g, r = (image[:, :, k].astype(int) for k in range(3))
        mask = (((b > 110) & (g < 90) & (r < 90)) | ((g > 110) & (b < 90) & (r < 90))).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        boxes = [[x, y, x + w, y + h] for x, y, w, h, area in stats[1:count] if area > 100]
        if not boxes:
            return Faces.empty()
        xyxy = np.array(boxes, np.float32)
        w, h = xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]
        cx, top = (xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 1]
        marks = np.stack([np.stack([cx + dx * w, top + dy * h], 1) for dx, dy in
                          [(-0.2, 0.4), (0.2, 0.4), (0, 0.6), (-0.15, 0.8), (0.15, 0.8)]], 1)
        return Faces(xyxy, np.full(len(xyxy), 0.9, np.float32), marks)

    def add_small(self, image, faces, *, max_side=None):
        return faces  # it sees every square whatever its size


class ColourEncoder:
    """Blue squares encode 0.3 from Ann's sample, green ones 1.0."""

    def encode(self, image, xyxy):
        out = []
        for x0, y0, x1, y1 in np.asarray(xyxy).astype(int):
            b, g, _ = image[max(y0, 0) : y1, max(x0, 0) : x1].reshape(-1, 3).mean(axis=0)
            enc = ANN.copy()
            enc[0] = 0.3 if b > g else 1.0
            out.append(enc)
        return np.array(out, np.float32).reshape(-1, 128)


def test_video_preview_shows_first_seconds_boxed_and_redacted(tmp_path):
    from blurcli.pipeline.video import VideoRedactor, VideoSettings

    src = make_clip(tmp_path / "in.mp4", frames=50, size=SIZE, fps=25, image_fn=_frame, audio=True)
    redactor = VideoRedactor(
        VideoSettings(identity=IdentitySettings(min_face_px=20)),
        detector=SquareDetector(), matcher=Matcher(["ann"], [ANN[None]], 0.5), encoder=ColourEncoder(),
    )
    dst = tmp_path / "preview.mp4"
    stages = set()

    report = video_preview(src, dst, seconds=1.0, redactor=redactor, progress=lambda s, done, total: stages.add(s))

    assert report.frames == 25 and stages == {"analysing", "writing"}
    assert sorted(t.action for t in report.tracks) == ["hidden", "kept"]
    info = probe_video(dst)
    assert (info.width, info.height, info.frame_count, info.audio_streams) == (2 * SIZE[0] + 4, SIZE[1], 25, 0)
    source = _frame(0)
    with VideoReader(dst) as reader:
        frames = [f.image for f in reader]
    assert len(frames) == 25
    for image in frames[::6]:
        left, right = image[:, : SIZE[0]], image[:, SIZE[0] + 4 :]
        ann = [ANN_AT[0], ANN_AT[1], ANN_AT[0] + FACE, ANN_AT[1] + FACE]
        stranger = [STRANGER_AT[0], STRANGER_AT[1], STRANGER_AT[0] + FACE, STRANGER_AT[1] + FACE]
        assert detail_correlation(crop(right, ann), crop(source, ann)) > 0.8
        assert detail_correlation(crop(right, stranger), crop(source, stranger)) < 0.5
        assert has_colour(left[ANN_AT[1] - 2 : ANN_AT[1] + 3, ANN_AT[0] : ANN_AT[0] + FACE], KEPT_BGR, 60)
        assert has_colour(left[STRANGER_AT[1] - 2 : STRANGER_AT[1] + 3, STRANGER_AT[0] : STRANGER_AT[0] + FACE], HIDDEN_BGR, 60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "preview.mp4"]


def test_video_preview_refuses_bad_requests(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=5, size=(64, 48))
    with pytest.raises(UsageError):
        video_preview(src, src, redactor=object())
    with pytest.raises(UsageError):
        video_preview(src, tmp_path / "out.mp4", seconds=0, redactor=object())
    with pytest.raises(UsageError):
        video_preview(src, tmp_path / "out.gif", redactor=object())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_cli_video_preview_writes_a_short_side_by_side_clip(tmp_path, data_dir):
    src = data_dir / "video" / "retalking_face_1.mp4"
    dst = tmp_path / "preview.mp4"
    result = CliRunner().invoke(app, ["video", str(src), str(dst), "--preview", "1", "--gallery", str(tmp_path / "g.json")])
    assert result.exit_code == 0, result.output
    source, preview = probe_video(src), probe_video(dst)
    fps = float(source.average_rate)
    assert abs(preview.frame_count - round(fps)) <= 1 and preview.audio_streams == 0
    assert preview.width > 1.9 * min(source.width, 960) and preview.height <= source.height
    with VideoReader(dst) as reader:
        first = next(iter(reader)).image
    half = (preview.width - 4) // 2
    left, right = first[:, :half], first[:, -half:]
    # The right half differs from the left (the face is hidden there), and only in part of the picture.
    changed = np.abs(left.astype(int) - right.astype(int)).max(axis=2) > 40
    assert 0.005 < changed.mean() < 0.5
