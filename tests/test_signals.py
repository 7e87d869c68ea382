"""Ctrl-C and SIGTERM in the middle of work (issue 5, item 3).

Real processes get real signals. Where the moment matters (half-way through writing a file, while
the gallery's temporary file exists), the child process runs blurcli with one function slowed
down that touches a marker file when the dangerous moment is reached; the test waits for the marker
and then sends the signal. Afterwards: exit code 130, one short message and no traceback, every
previous output and the gallery byte-for-byte as before, and no temporary file anywhere.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from blurcli.identity.gallery import Gallery
from blurcli.media.video_io import VideoReader
from tests.hardening_support import leftovers, scene, scene_faces, snapshot, subprocess_env
from tests.helpers import region_correlation
from tests.media_factory import make_clip

SIGNALS = [signal.SIGINT, signal.SIGTERM]

#: Child process: apply one patch (by name), then run the blurcli command line given as arguments.
_CHILD = '''
import os, sys, time
from pathlib import Path

marker = Path(os.environ["HARDENING_MARKER"])
patch = os.environ.get("HARDENING_PATCH", "")

if patch == "photo-save":  # stop after the temp file of victim.jpg is written, before the rename
    from PIL import Image
    real_save = Image.Image.save
    def save(self, fp, *args, **kwargs):
        real_save(self, fp, *args, **kwargs)
        if "victim" in str(fp):
            assert Path(fp).exists() and Path(fp).name.startswith(".")
            marker.touch()
            time.sleep(120)
    Image.Image.save = save
elif patch == "video-write":  # slow pass 2 down once a few frames are in the temp file (of the victim)
    from blurcli.media import video_io
    real_write = video_io.VideoWriter.write
    victim = os.environ.get("HARDENING_VICTIM", "")
    def write(self, frame):
        real_write(self, frame)
        if self.frames_written >= 3 and victim in str(self.dst):
            marker.touch()
            time.sleep(0.2)
    video_io.VideoWriter.write = write
elif patch == "video-analyse":  # slow pass 1 down (the decode thread is running)
    from blurcli.pipeline import video
    real_step = video.Analyser.step
    def step(self, index, image):
        real_step(self, index, image)
        if index >= 2:
            marker.touch()
            time.sleep(0.2)
    video.Analyser.step = step
elif patch == "gallery-fsync":  # stop while the gallery's temp file is written, before the rename
    real_fsync = os.fsync
    def fsync(fd):
        real_fsync(fd)
        if ".tmp" in os.readlink(f"/proc/self/fd/{fd}"):
            marker.touch()
            time.sleep(120)
    os.fsync = fsync

from blurcli._cli import main
sys.argv = ["blurcli", *sys.argv[1:]]
main()
'''


def _start(args, cwd: Path, marker: Path, patch: str = "", victim: str = "") -> subprocess.Popen:
    env = subprocess_env(HARDENING_MARKER=str(marker), HARDENING_PATCH=patch, HARDENING_VICTIM=victim)
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, *[str(a) for a in args]],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the process ended (exit {proc.returncode}) before the moment to interrupt it:\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the moment to interrupt never came")
        time.sleep(0.01)


def _interrupt(proc: subprocess.Popen, signum: int, timeout: float = 60) -> tuple[int, str]:
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"the process did not stop within {timeout} s of {signal.Signals(signum).name}: it hangs")
    return proc.returncode, err


def _assert_interrupted(code: int, stderr: str) -> None:
    assert code == 130, f"exit {code}\n{stderr}"
    assert "Traceback" not in stderr, stderr
    assert "interrupted" in stderr, stderr


@pytest.fixture(scope="module")
def face_jpeg(data_dir, tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("scene") / "scene.jpg"
    cv2.imwrite(str(path), scene(data_dir), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path.read_bytes()


# ---------------------------------------------------------------- photo


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_photo_folder_interrupted_keeps_previous_outputs_and_leaves_no_temp(tmp_path, face_jpeg, data_dir, signum):
    """No patch: a real folder run, signalled as soon as its first output appears."""
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    for i in range(24):
        (src / ("sub" if i % 2 else "") / f"p{i:02d}.jpg").write_bytes(face_jpeg)
    (src / "zz_last.jpg").write_bytes(face_jpeg)
    out.mkdir()
    (out / "zz_last.jpg").write_bytes(b"the previous run's output")  # its job is the last one
    (out / "notes.txt").write_text("not ours")
    inputs = snapshot(src)
    proc = _start(["photo", src, out], tmp_path, tmp_path / "unused")
    _wait_for(lambda: any(p.name.startswith("p") for p in out.rglob("*.jpg")), proc)
    code, err = _interrupt(proc, signum)

    _assert_interrupted(code, err)
    assert snapshot(src) == inputs
    assert (out / "zz_last.jpg").read_bytes() == b"the previous run's output"
    assert (out / "notes.txt").read_text() == "not ours"
    assert leftovers(tmp_path) == []
    done = sorted(p for p in out.rglob("p*.jpg"))
    assert 1 <= len(done) < 24
    original = scene(data_dir)
    for path in done:  # whatever is there is whole, and its faces are hidden
        with Image.open(path) as img:
            img.load()
        written = cv2.imread(str(path))
        assert written.shape == original.shape
        for box in scene_faces():
            assert region_correlation(data_dir, original, written, box) < 0.5


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_photo_interrupted_between_writing_and_renaming(tmp_path, face_jpeg, signum):
    """The signal lands while the temporary file is complete but not yet renamed: it is deleted."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    (src / "victim.jpg").write_bytes(face_jpeg)
    (out / "victim.jpg").write_bytes(b"previous output")
    marker = tmp_path / "marker"
    proc = _start(["photo", src / "victim.jpg", out / "victim.jpg"], tmp_path, marker, "photo-save")
    _wait_for(marker.exists, proc)
    assert len(leftovers(out)) == 1  # the temporary file is there now
    code, err = _interrupt(proc, signum)

    _assert_interrupted(code, err)
    assert (out / "victim.jpg").read_bytes() == b"previous output"
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in out.iterdir()) == ["victim.jpg"]


def test_ctrl_c_while_starting_up_is_a_clean_exit(tmp_path, face_jpeg):
    """Ctrl-C during the first second (libraries and models still loading): exit 130, no traceback."""
    (tmp_path / "in.jpg").write_bytes(face_jpeg)
    proc = subprocess.Popen(
        [sys.executable, "-m", "blurcli", "photo", "in.jpg", "out.jpg"],
        cwd=tmp_path, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # Signal once blurcli's own imports are under way (OpenCV is mapped in), not during the
    # interpreter's start-up, where no Python code can handle it yet.
    maps = Path(f"/proc/{proc.pid}/maps")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None and "cv2" not in maps.read_text(errors="ignore"):
        time.sleep(0.01)
    code, err = _interrupt(proc, signal.SIGINT)
    assert code == 130, f"exit {code}\n{err}"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jpg"]


# ---------------------------------------------------------------- video


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory, data_dir) -> Path:
    picture = cv2.resize(cv2.imread(str(data_dir / "identity" / "mixed" / "two_people.jpg")), (384, 224))
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=60, size=(384, 224), audio=True,
                     image_fn=lambda i: np.roll(picture, i, axis=1))


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("stage", ["video-analyse", "video-write"], ids=["pass-1", "pass-2"])
def test_video_interrupted_keeps_previous_output_and_leaves_no_temp(tmp_path, face_clip, stage, signum):
    src, out = tmp_path / "in.mp4", tmp_path / "out"
    src.write_bytes(face_clip.read_bytes())
    out.mkdir()
    previous = make_clip(out / "o.mp4", frames=3)  # the previous run's output
    before = previous.read_bytes()
    marker = tmp_path / "marker"
    proc = _start(["video", src, out / "o.mp4"], tmp_path, marker, stage)
    _wait_for(marker.exists, proc)
    if stage == "video-write":
        assert len(leftovers(out)) == 1  # the encoder's temporary file exists now
    code, err = _interrupt(proc, signum)

    _assert_interrupted(code, err)
    assert (out / "o.mp4").read_bytes() == before
    assert src.read_bytes() == face_clip.read_bytes()
    assert leftovers(tmp_path) == [] and sorted(p.name for p in out.iterdir()) == ["o.mp4"]
    with VideoReader(out / "o.mp4") as reader:
        assert sum(1 for _ in reader) == 3


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_video_folder_interrupted_in_the_second_file(tmp_path, face_clip, signum):
    """The first video is finished and whole; the second, interrupted while being written, leaves nothing."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "a_first.mp4").write_bytes(face_clip.read_bytes())
    (src / "b_second.mp4").write_bytes(face_clip.read_bytes())
    (src / "c_third.mp4").write_bytes(face_clip.read_bytes())
    inputs = snapshot(src)
    marker = tmp_path / "marker"
    proc = _start(["video", src, out], tmp_path, marker, "video-write", victim="b_second")
    _wait_for(marker.exists, proc, timeout=240)
    code, err = _interrupt(proc, signum)

    _assert_interrupted(code, err)
    assert snapshot(src) == inputs
    assert leftovers(tmp_path) == [] and sorted(p.name for p in out.iterdir()) == ["a_first.mp4"]
    with VideoReader(out / "a_first.mp4") as reader:
        assert sum(1 for _ in reader) == 60


# ---------------------------------------------------------------- enroll


@pytest.fixture
def gallery(tmp_path) -> Path:
    path = tmp_path / "g" / "gallery.json"
    existing = Gallery.open(path)
    existing.add("someone", np.random.default_rng(0).normal(0, 0.1, (3, 128)).astype(np.float32))
    existing.save()
    return path


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_enroll_interrupted_while_saving_keeps_the_gallery(tmp_path, data_dir, gallery, signum):
    before = gallery.read_bytes()
    marker = tmp_path / "marker"
    photo = data_dir / "identity" / "obama" / "obama_small.jpg"
    proc = _start(["enroll", photo, "--name", "obama", "--gallery", gallery], tmp_path, marker, "gallery-fsync")
    _wait_for(marker.exists, proc)
    assert len(leftovers(gallery.parent)) == 1  # the new gallery is being written beside the old one
    code, err = _interrupt(proc, signum)

    _assert_interrupted(code, err)
    assert gallery.read_bytes() == before
    assert leftovers(gallery.parent) == []
    assert [p.name for p in Gallery.open(gallery).people()] == ["someone"]


def test_enroll_killed_while_saving_keeps_the_gallery_and_the_next_save_cleans_up(tmp_path, data_dir, gallery):
    """SIGKILL cannot be caught: the temp file stays, the gallery is untouched, the next save removes it."""
    before = gallery.read_bytes()
    marker = tmp_path / "marker"
    photo = data_dir / "identity" / "obama" / "obama_small.jpg"
    proc = _start(["enroll", photo, "--name", "obama", "--gallery", gallery], tmp_path, marker, "gallery-fsync")
    _wait_for(marker.exists, proc)
    proc.kill()
    proc.communicate(timeout=60)

    assert gallery.read_bytes() == before
    assert len(leftovers(gallery.parent)) == 1
    assert [p.name for p in Gallery.open(gallery).people()] == ["someone"]

    again = Gallery.open(gallery)
    again.add("other", np.random.default_rng(2).normal(0, 0.1, (1, 128)).astype(np.float32))
    again.save()
    assert leftovers(gallery.parent) == []
    assert [p.name for p in Gallery.open(gallery).people()] == ["someone", "other"]


def test_a_signal_while_a_temp_file_is_created_is_acted_on_once_it_is_owned(tmp_path, monkeypatch):
    """Ctrl-C right after the temp file exists but before its name is kept: still removed."""
    from blurcli.media import atomic

    real = atomic.temp_path_beside

    def create_then_signal(target):
        path = real(target)
        os.kill(os.getpid(), signal.SIGINT)
        return path

    monkeypatch.setattr(atomic, "temp_path_beside", create_then_signal)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell may have run us with SIGINT ignored
    try:
        with pytest.raises(KeyboardInterrupt):
            with atomic.atomic_output(tmp_path / "out.jpg"):
                pytest.fail("the body must not run once a signal came")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert list(tmp_path.iterdir()) == []
