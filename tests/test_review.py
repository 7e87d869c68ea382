"""``blurcli review`` and ``--plan``: the page in a real browser, the plan rendered, the pixels scored.

The scene is two_people.jpg at half size (Obama left, Biden right, nobody enrolled: both hidden by
the tool). A reviewer keeps Biden sharp and adds a region the detector "missed"; the rendered
plan is checked with the reference scorer, frame by frame.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import time
from pathlib import Path

import av
import numpy as np
import pytest

from tests.hardening_support import assert_clean_failure, cli, leftovers, scene, scene_faces
from tests.helpers import region_correlation, scorer
from tests.media_factory import make_clip

FPS = 20
FRAMES = 40
#: A region on the background between the two faces ([frame, x0, y0, x1, y1], scene pixels),
#: moving right between two keyframes: nothing there is a face, so only the plan can hide it.
REGION_KEYS = [[0, 236.0, 160.0, 296.0, 220.0], [20, 276.0, 160.0, 336.0, 220.0]]


@pytest.fixture(scope="module")
def clip(data_dir, tmp_path_factory) -> Path:
    """A 2 s clip of the scene (562x330, 20 fps, with audio)."""
    picture = scene(data_dir)[:, :562]
    return make_clip(tmp_path_factory.mktemp("review") / "two.mp4", frames=FRAMES, size=(562, 330), fps=FPS,
                     image_fn=lambda i: picture, audio=True)


@pytest.fixture(scope="module")
def reviewed(clip, tmp_path_factory) -> Path:
    """``blurcli review`` of the clip: its folder."""
    out = tmp_path_factory.mktemp("reviewed") / "review"
    outcome = cli("review", clip, out)
    assert outcome.code == 0, outcome.stderr
    return out


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def _xywh(box) -> list[float]:
    x0, y0, x1, y1 = box
    return [x0, y0, x1 - x0, y1 - y0]


def _track_at(report: dict, x_centre_min: float) -> dict:
    """The track whose first box is centred right of ``x_centre_min`` (Biden) or left of it."""
    right = [t for t in report["tracks"] if (t["boxes"][0][1] + t["boxes"][0][3]) / 2 > x_centre_min]
    assert len(right) == 1, [t["boxes"][0] for t in report["tracks"]]
    return right[0]


# ------------------------------------------------------------------------------ review itself


def test_review_writes_the_report_blurcli_video_would_and_a_private_page(clip, reviewed, tmp_path):
    report = json.loads((reviewed / "report.json").read_text())
    # The same decisions as blurcli video: same tracks, boxes and actions.
    assert cli("video", clip, tmp_path / "out.mp4", "--report", tmp_path / "video.json").code == 0
    video = json.loads((tmp_path / "video.json").read_text())
    assert [(t["track_id"], t["action"], t["boxes"]) for t in report["tracks"]] == [
        (t["track_id"], t["action"], t["boxes"]) for t in video["tracks"]
    ]
    assert len(report["tracks"]) == 2 and {t["action"] for t in report["tracks"]} == {"hidden"}
    assert report["output"] is None and report["audit"]["output_sha256"] is None
    assert report["audit"]["input_sha256"] == video["audit"]["input_sha256"]
    assert len(report["camera"]) == FRAMES and report["fps"] == FPS

    # Private: the folder and everything in it (the thumbnails show faces unblurred).
    assert stat.S_IMODE(reviewed.stat().st_mode) == 0o700
    for path in reviewed.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    thumbs = list((reviewed / "media").glob("*.jpg"))
    assert len(thumbs) >= 2 + 3  # a thumbnail or more per track, a still every second
    # Self-contained: nothing is loaded from a network, the data is inline.
    page = (reviewed / "index.html").read_text()
    assert "http://" not in page and "https://" not in page
    assert "default-src 'none'" in page and 'id="review-data"' in page


def test_review_says_the_page_is_private_and_how_to_render(clip, tmp_path):
    outcome = cli("review", clip, tmp_path / "r")
    assert outcome.code == 0
    assert "unblurred" in outcome.stderr and "private (0700)" in outcome.stderr
    assert "--plan plan.json" in outcome.stderr


def test_review_of_a_folder_lists_photos_and_videos_and_reports_a_bad_file(data_dir, clip, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(clip, folder / "two.mp4")
    shutil.copy(data_dir / "identity" / "mixed" / "two_people.jpg", folder / "photo.jpg")
    (folder / "broken.jpg").write_bytes(b"not a picture")
    outcome = cli("review", folder, tmp_path / "r")
    assert outcome.code == 9, outcome.stderr
    assert "broken.jpg" in outcome.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [Path(r["input"]).name for r in report] == ["broken.jpg", "photo.jpg", "two.mp4"]
    assert report[0]["error"] and len(report[1]["faces"]) == 2 and len(report[2]["tracks"]) == 2
    assert (tmp_path / "r" / "index.html").is_file()


def test_review_refuses_a_file_as_its_folder(clip, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    outcome = cli("review", clip, taken)
    assert outcome.code == 2 and taken.read_text() == "mine"


# ------------------------------------------------------------------------------ plans


def test_an_unedited_plan_hides_what_the_tool_hid_within_half_a_pixel(data_dir, tmp_path):
    """The Hamilton clip pans and cuts: the plan's tracks are interpolated and padded in scene
    coordinates from the report's camera offsets, as the tool's run did."""
    from blurcli.pipeline.video import VideoRedactor, VideoSettings
    from blurcli.review.plan import Plan, VideoPlanRenderer

    src = data_dir / "video" / "short_hamilton_clip.mp4"
    assert cli("review", src, tmp_path / "r").code == 0
    redactor = VideoRedactor(VideoSettings())
    analysis = redactor.analyse(src)
    tool, _ = redactor.plan(analysis)
    plan = Plan.load(tmp_path / "r" / "report.json")
    masks, report = VideoPlanRenderer(VideoSettings(), plan).masks(next(iter(plan.entries.values())))
    assert any(np.abs(np.diff(np.asarray(report.camera), axis=0)).max(axis=1) > 1)  # the camera pans
    worst = 0.0
    for frame in range(analysis.frames):
        a, b = tool.boxes(frame), masks.boxes(frame)
        assert a.shape == b.shape, frame
        if len(a):
            worst = max(worst, float(np.abs(np.sort(a, axis=0) - np.sort(b, axis=0)).max()))
    assert worst < 0.5
    assert {t.decided_by for t in report.tracks} == {"tool"}


def test_a_plan_made_for_another_file_is_refused(data_dir, reviewed, tmp_path):
    other = data_dir / "video" / "retalking_face_1.mp4"
    outcome = cli("video", other, tmp_path / "out.mp4", "--plan", reviewed / "report.json")
    assert_clean_failure(outcome, 2, r"made for another file")
    assert not (tmp_path / "out.mp4").exists() and not leftovers(tmp_path)


def test_a_hand_edited_plan_with_an_unknown_action_is_refused(clip, reviewed, tmp_path):
    report = json.loads((reviewed / "report.json").read_text())
    report["tracks"][0]["action"] = "blurred"
    (tmp_path / "plan.json").write_text(json.dumps(report))
    outcome = cli("video", clip, tmp_path / "out.mp4", "--plan", tmp_path / "plan.json")
    assert_clean_failure(outcome, 2, r"track \d+ has action 'blurred'; use 'hidden' or 'kept'")
    assert not (tmp_path / "out.mp4").exists()


def test_a_plan_that_is_not_a_report_is_refused(clip, tmp_path):
    (tmp_path / "plan.json").write_text("[1, 2")
    outcome = cli("video", clip, tmp_path / "out.mp4", "--plan", tmp_path / "plan.json")
    assert_clean_failure(outcome, 2, r"--plan .*plan.json: not a JSON report")


def test_a_photo_plan_keeps_the_toggled_face_and_hides_the_added_region(data_dir, tmp_path):
    src = data_dir / "identity" / "mixed" / "two_people.jpg"
    assert cli("review", src, tmp_path / "r").code == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    (entry,) = report
    faces = sorted(entry["faces"], key=lambda f: f["box"][0])
    assert [f["action"] for f in faces] == ["hidden", "hidden"]
    faces[1]["action"] = "kept"  # Biden
    region = [480.0, 300.0, 600.0, 420.0]  # shirt and background between them
    entry["regions"] = [{"keyframes": [[0, *region]]}]
    (tmp_path / "plan.json").write_text(json.dumps(report))
    out = tmp_path / "out.png"
    outcome = cli("photo", src, out, "--plan", tmp_path / "plan.json", "--report", tmp_path / "done.json")
    assert outcome.code == 0, outcome.stderr

    import cv2

    before, after = cv2.imread(str(src)), cv2.imread(str(out))
    redaction = scorer(data_dir)
    obama, biden = (region_correlation(data_dir, before, after, _xywh(f["box"])) for f in faces)
    assert obama < redaction.HIDDEN and biden > redaction.KEPT
    assert region_correlation(data_dir, before, after, _xywh(region)) < redaction.HIDDEN
    done = json.loads((tmp_path / "done.json").read_text())[0]
    by_x = sorted(done["faces"], key=lambda f: f["box"][0])
    assert [f["decided_by"] for f in by_x] == ["tool", "plan"]
    assert done["regions"][0]["decided_by"] == "plan"
    assert done["audit"]["settings"]["plan"]["sha256"]
    assert done["audit"]["input_sha256"] == entry["audit"]["input_sha256"]
    assert done["audit"]["models"] == entry["audit"]["models"]


def test_a_plan_render_of_a_folder_is_resumed_and_redone_when_the_plan_changes(data_dir, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(data_dir / "identity" / "mixed" / "two_people.jpg", folder / "a.jpg")
    assert cli("review", folder, tmp_path / "r").code == 0
    plan = tmp_path / "r" / "report.json"
    assert cli("photo", folder, tmp_path / "out", "--plan", plan).code == 0
    again = cli("photo", folder, tmp_path / "out", "--plan", plan)
    assert again.code == 0 and "1 of 1 file(s) were already done" in again.stderr
    edited = json.loads(plan.read_text())
    edited[0]["faces"][0]["action"] = "kept"
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    redo = cli("photo", folder, tmp_path / "out", "--plan", tmp_path / "edited.json")
    assert redo.code == 0 and "already done" not in redo.stderr


# ------------------------------------------------------------------------------ in a real browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium driven by selenium (Debian's chromium + chromium-driver), downloading
    into a folder of its own. Missing under CI is a failure, elsewhere a skip."""
    driver_path = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        driver_path = None
    if driver_path is None:
        message = "selenium and chromedriver are needed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    # Both the browser and its driver named: selenium then never runs Selenium Manager (no download).
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""

    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


def _drag(browser, canvas, box, width):
    """Drag a box (source pixels) on the page's still."""
    from selenium.webdriver.common.action_chains import ActionChains

    k = canvas.size["width"] / width
    cx, cy = canvas.size["width"] / 2, canvas.size["height"] / 2
    x0, y0, x1, y1 = box
    ActionChains(browser).move_to_element_with_offset(canvas, round(x0 * k - cx), round(y0 * k - cy)) \
        .click_and_hold().move_by_offset(round((x1 - x0) * k), round((y1 - y0) * k)).release().perform()


def test_the_page_toggles_a_track_adds_a_moving_region_and_its_plan_renders(data_dir, clip, reviewed, browser, tmp_path):
    from selenium.webdriver.common.by import By

    report = json.loads((reviewed / "report.json").read_text())
    biden = _track_at(report, 281)
    obama = next(t for t in report["tracks"] if t is not biden)
    browser.get((reviewed / "index.html").as_uri())
    cards = browser.find_elements(By.CSS_SELECTOR, "[data-track-id]")
    assert sorted(c.get_attribute("data-track-id") for c in cards) == sorted(str(t["track_id"]) for t in report["tracks"])
    card = browser.find_element(By.CSS_SELECTOR, f'[data-track-id="{biden["track_id"]}"]')
    assert card.get_attribute("data-action") == "hidden"
    assert card.find_elements(By.CSS_SELECTOR, ".thumbs img")
    card.find_element(By.CSS_SELECTOR, "button.toggle").click()
    assert card.get_attribute("data-action") == "kept"

    # A box on the first still, the same box moved on the second: a region moving between keyframes.
    canvas = browser.find_element(By.CSS_SELECTOR, "canvas.overlay")
    _drag(browser, canvas, REGION_KEYS[0][1:], report["width"])
    slider = browser.find_element(By.CSS_SELECTOR, "input.still-slider")
    browser.execute_script("arguments[0].value = 1; arguments[0].dispatchEvent(new Event('input'))", slider)
    _drag(browser, canvas, REGION_KEYS[1][1:], report["width"])
    browser.find_element(By.CSS_SELECTOR, "button.add-region").click()
    assert len(browser.find_elements(By.CSS_SELECTOR, "[data-region-id]")) == 1
    browser.find_element(By.ID, "save-plan").click()
    saved = browser.downloads / "plan.json"
    deadline = time.monotonic() + 10
    while not saved.is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    plan = json.loads(saved.read_text())
    (region,) = plan["regions"]
    assert [row[0] for row in region["keyframes"]] == [0, 20] and (region["first_frame"], region["last_frame"]) == (0, 20)
    for got, want in zip(region["keyframes"], REGION_KEYS):
        assert np.allclose(got[1:], want[1:], atol=2.5), (got, want)  # one display pixel

    out = tmp_path / "out.mp4"
    outcome = cli("video", clip, out, "--plan", saved, "--report", tmp_path / "done.json")
    assert outcome.code == 0, outcome.stderr
    redaction = scorer(data_dir)
    before = scene(data_dir)[:, :562]
    frames = _frames(out)
    assert len(frames) == FRAMES
    from blurcli.review.plan import region_boxes

    _, moving = region_boxes(region, FRAMES)
    obama_box, biden_box = (_xywh([x, y, x + w, y + h]) for x, y, w, h in scene_faces())
    for index, after in enumerate(frames):
        assert region_correlation(data_dir, before, after, obama_box) < redaction.HIDDEN, index
        assert region_correlation(data_dir, before, after, biden_box) > redaction.KEPT, index
        if index <= 20:
            assert region_correlation(data_dir, before, after, _xywh(moving[index])) < redaction.HIDDEN, index
        elif index >= 27:  # past the region's range: the background is back
            assert region_correlation(data_dir, before, after, _xywh(REGION_KEYS[1][1:])) > redaction.KEPT, index
    done = json.loads((tmp_path / "done.json").read_text())
    decided = {t["track_id"]: (t["action"], t["decided_by"]) for t in done["tracks"]}
    assert decided == {biden["track_id"]: ("kept", "plan"), obama["track_id"]: ("hidden", "tool")}
    assert done["regions"][0]["decided_by"] == "plan" and done["audit"]["settings"]["plan"]["path"] == str(saved)


def test_a_plan_is_neither_a_preview_nor_its_own_report(clip, reviewed, tmp_path):
    plan = reviewed / "report.json"
    before = plan.read_bytes()
    preview = cli("video", clip, tmp_path / "p.mp4", "--plan", plan, "--preview", "1")
    assert_clean_failure(preview, 2, r"--plan .* --preview")
    same = cli("video", clip, tmp_path / "o.mp4", "--plan", plan, "--report", plan)
    assert_clean_failure(same, 2, r"--report .* is also the input or output")
    assert plan.read_bytes() == before and not list(tmp_path.iterdir())


def test_review_refuses_a_folder_that_holds_other_files(clip, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    home.chmod(0o755)
    outcome = cli("review", clip, home)
    assert_clean_failure(outcome, 2, r"already holds other files \(notes.txt\); give the review a folder of its own")
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt"] and stat.S_IMODE(home.stat().st_mode) == 0o755
    # An earlier review's folder is reviewed again in place.
    assert cli("review", clip, tmp_path / "r").code == 0
    assert cli("review", clip, tmp_path / "r").code == 0
