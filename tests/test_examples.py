"""The README and examples/ work as written: each example and the quick start run here, for real.

Media: scikit-image's public-domain astronaut (NASA) and CC0 cameraman (shipped in the wheel),
and small clips made from them with PyAV. Each example runs in a subprocess, as a user runs it, and
its outputs are checked (which faces changed, which stayed sharp), not only its exit status.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.media_factory import make_clip
from tests.helpers import detail_correlation

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
README = ROOT / "README.md"

#: The astronaut's face box in the 512x512 original (found by the detector: x0, y0, x1, y1), with margin
#: trimmed so the box holds face only.
ASTRO_FACE = (190, 66, 262, 170)
#: The cameraman's face in the 512x512 original.
CAMERA_FACE = (205, 122, 252, 190)


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False




def crop(image: np.ndarray, box, dx: int = 0) -> np.ndarray:
    x0, y0, x1, y1 = box
    return image[y0:y1, x0 + dx : x1 + dx]


def run(args: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def example(name: str, *args, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return run([sys.executable, str(EXAMPLES / name), *map(str, args)], cwd, timeout)


def blurcli_script() -> str:
    beside = Path(sys.executable).with_name("blurcli")
    found = str(beside) if beside.exists() else shutil.which("blurcli")
    if found is None:
        pytest.skip("the blurcli console script is not installed (python3 -m pip install -e .)")
    return found


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def cameraman() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)


@pytest.fixture
def scene(astronaut, cameraman) -> np.ndarray:
    """The cameraman (left) beside the mirrored astronaut (right): two people, 1024x512."""
    return np.hstack([cameraman, cv2.flip(astronaut, 1)])


MIRRORED_ASTRO = (1024 - ASTRO_FACE[2], ASTRO_FACE[1], 1024 - ASTRO_FACE[0], ASTRO_FACE[3])


def astronaut_clip(path: Path, astronaut: np.ndarray, *, frames: int, fps: int, audio: bool = True) -> Path:
    """A 256x256 clip of the astronaut drifting right by 2 px a frame."""
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    return make_clip(path, frames=frames, size=(256, 256), fps=fps, image_fn=lambda i: np.roll(small, 2 * i, axis=1), audio=audio)


SMALL_FACE = tuple(v // 2 for v in ASTRO_FACE)  # the face in the 256x256 clip, frame 0


# ---------------------------------------------------------------- examples/


def test_blur_folder_pixelates_every_face_and_skips_a_bad_file(tmp_path, astronaut, cameraman):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    cv2.imwrite(str(src / "astronaut.png"), astronaut)
    cv2.imwrite(str(src / "sub" / "cameraman.png"), cameraman)
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (src / "notes.txt").write_text("not an image")

    result = example("blur_folder.py", src, tmp_path / "out", cwd=tmp_path)

    assert result.returncode == 9, result.stderr  # some files failed; the others were written
    assert "skipped" in result.stdout and "broken.jpg" in result.stdout
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["astronaut.png", "sub/cameraman.png"]
    for name, before, face in (("astronaut.png", astronaut, ASTRO_FACE), ("sub/cameraman.png", cameraman, CAMERA_FACE)):
        after = cv2.imread(str(out / name))
        assert detail_correlation(crop(after, face), crop(before, face)) < 0.5
        region = crop(after, face).astype(int)
        # pixelate: big flat blocks, so most neighbouring pixels are equal (a blur would be smooth, not flat)
        assert (region[:, 1:] == region[:, :-1]).all(axis=-1).mean() > 0.7
        assert np.array_equal(after[440:, :120], before[440:, :120])  # far from the face: untouched (PNG)


def test_enroll_and_redact_keeps_the_enrolled_person(tmp_path, astronaut, scene):
    cv2.imwrite(str(tmp_path / "astronaut.png"), astronaut)
    cv2.imwrite(str(tmp_path / "scene.png"), scene)
    gallery = tmp_path / "team.json"

    result = example("enroll_and_redact.py", "astronaut.png", "scene.png", "out.png", "--gallery", gallery, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "enrolled 'astronaut'" in result.stdout
    assert re.search(r"astronaut \(distance 0\.\d+\) -> kept", result.stdout)
    assert "unknown -> hidden" in result.stdout
    after = cv2.imread(str(tmp_path / "out.png"))
    assert detail_correlation(crop(after, MIRRORED_ASTRO), crop(scene, MIRRORED_ASTRO)) > 0.95
    assert detail_correlation(crop(after, CAMERA_FACE), crop(scene, CAMERA_FACE)) < 0.5
    assert gallery.stat().st_mode & 0o777 == 0o600
    stored = gallery.read_text()
    assert "astronaut" in stored and "png" not in stored  # encodings and a name, no file names


def test_preview_styles_shows_every_style(tmp_path, astronaut):
    cv2.imwrite(str(tmp_path / "astronaut.png"), astronaut)

    result = example("preview_styles.py", "astronaut.png", "preview.png", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "1 face(s), 0 kept, 1 hidden" in result.stdout
    preview = cv2.imread(str(tmp_path / "preview.png"))
    bar = preview.shape[0] - 512
    panels = [preview[bar:, k * 518 : k * 518 + 512] for k in range(4)]  # original, blur, pixelate, solid
    assert preview.shape[1] == 4 * 512 + 3 * 6
    assert detail_correlation(crop(panels[0], ASTRO_FACE), crop(astronaut, ASTRO_FACE)) > 0.9
    for panel in panels[1:]:
        assert detail_correlation(crop(panel, ASTRO_FACE), crop(astronaut, ASTRO_FACE)) < 0.5
    assert crop(panels[3], ASTRO_FACE).mean() < 30  # solid: a dark fill


@pytest.mark.skipif(not has_module("blurcli.pipeline.video"), reason="blurcli.pipeline.video is not there yet")
def test_video_progress_reports_both_passes_and_hides_the_face(tmp_path, astronaut):
    src = astronaut_clip(tmp_path / "in.mp4", astronaut, frames=12, fps=12)

    result = example("video_progress.py", "in.mp4", "out.mp4", "--style", "solid", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    for stage in ("analysing", "writing"):
        lines = [line for line in result.stdout.splitlines() if line.startswith(f"{stage}:")]
        assert lines and "100% (12/12 frames" in lines[-1], result.stdout
    assert "out.mp4: 12 frames, 1 face track(s) hidden, 0 kept" in result.stdout
    with av.open(str(src)) as a, av.open(str(tmp_path / "out.mp4")) as b:
        assert len(b.streams.audio) == 1
        before = [f.to_ndarray(format="bgr24") for f in a.decode(video=0)]
        after = [f.to_ndarray(format="bgr24") for f in b.decode(video=0)]
    assert len(after) == 12
    for i, (x, y) in enumerate(zip(before, after)):
        assert detail_correlation(crop(y, SMALL_FACE, 2 * i), crop(x, SMALL_FACE, 2 * i)) < 0.5, i


@pytest.mark.skipif(not has_module("blurcli.live"), reason="blurcli.live is not there yet")
def test_stream_to_file_records_a_constant_rate_stream_with_faces_hidden(tmp_path, astronaut):
    still = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    make_clip(tmp_path / "face.mp4", frames=40, size=(256, 256), fps=10, image_fn=lambda i: still)

    result = example("stream_to_file.py", "live.flv", "--source", "face.mp4", "--seconds", "2", "--fps", "10", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert re.search(r"recorded \d+ frames to live.flv", result.stdout)
    with av.open(str(tmp_path / "live.flv")) as c:
        video, audio = c.streams.video[0], c.streams.audio[0]
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        assert audio.codec_context.sample_rate == 48000 and audio.codec_context.channels == 2
        frames = list(c.decode(video=0))
    times = [f.pts * f.time_base for f in frames]
    assert 17 <= len(frames) <= 21
    assert {b - a for a, b in zip(times, times[1:])} == {Fraction(1, 10)}  # constant 10 fps
    for f in frames:
        image = f.to_ndarray(format="bgr24")
        assert detail_correlation(crop(image, SMALL_FACE), crop(still, SMALL_FACE)) < 0.5


@pytest.mark.skipif(not has_module("blurcli.live"), reason="blurcli.live is not there yet")
def test_stream_to_file_default_test_pattern(tmp_path):
    result = example("stream_to_file.py", "pattern.mp4", "--seconds", "1", "--fps", "15", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    with av.open(str(tmp_path / "pattern.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "h264" and len(c.streams.audio) == 1
        frames = list(c.decode(video=0))
    assert 13 <= len(frames) <= 16 and frames[0].width == 640 and frames[0].height == 360


# ---------------------------------------------------------------- README


def quick_start_commands() -> list[list[str]]:
    """The commands of the README's first bash block under "## Quick start", comments stripped."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Quick start") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = []
    for line in block.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line:
            commands.append(shlex.split(line))
    return commands


def test_readme_starts_with_the_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    commands = [re.sub(r"\s+#.*$", "", line).strip() for line in first_block.splitlines() if line.strip()]
    install = 'python3 -m pip install -e ".[dev,ray]" -c constraints.txt'
    assert commands == [install, "python3 -m pytest"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert install in ci and "python3 -m pytest" in ci
    # The install is reproducible: every package a fresh install resolves is pinned to what was tested.
    pins = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", line) for line in pins), pins
    names = {line.split("==")[0].lower().replace("_", "-") for line in pins}
    assert {"rich", "typer", "av", "opencv-python", "numpy", "pytest", "ray"} <= names


def test_readme_option_reference_matches_the_cli():
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "docs" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = README.read_text(encoding="utf-8")
    assert module.splice(readme, module.reference()) == readme, (
        "README.md's option reference is out of date: run python3 docs/cli_reference.py --write"
    )


def test_readme_lists_every_exit_code():
    from blurcli import errors

    text = README.read_text(encoding="utf-8")
    table = text[text.index("## Exit codes") : text.index("## Quality")]
    codes = {int(c) for c in re.findall(r"^\| (\d+) \|", table, re.M)}
    expected = {0, 1, errors.EXIT_INTERRUPTED} | {
        cls.exit_code for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.BlurcliError)
    }
    assert codes == expected


def test_readme_images_exist_and_are_small():
    text = README.read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images
    for name in images:
        path = ROOT / name
        assert path.is_file(), name
        assert path.stat().st_size < 200_000, name


@pytest.mark.skipif(not (has_module("blurcli.pipeline.video") and has_module("blurcli.live")), reason="video/stream not there yet")
def test_readme_quick_start_works_as_written(tmp_path, astronaut, scene):
    cv2.imwrite(str(tmp_path / "me.jpg"), astronaut)
    cv2.imwrite(str(tmp_path / "party.jpg"), scene)
    (tmp_path / "holiday" / "day2").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "holiday" / "beach.jpg"), astronaut)
    cv2.imwrite(str(tmp_path / "holiday" / "day2" / "street.png"), scene[:, :512])
    astronaut_clip(tmp_path / "clip.mp4", astronaut, frames=15, fps=10)
    script = blurcli_script()

    commands = quick_start_commands()
    assert [c[:2] for c in commands] == [
        ["blurcli", "enroll"], ["blurcli", "photo"], ["blurcli", "photo"], ["blurcli", "photo"],
        ["blurcli", "review"], ["blurcli", "video"], ["blurcli", "stream"],
    ]
    for command in commands:
        result = run([script, *command[1:]], tmp_path)
        assert result.returncode == 0, f"{shlex.join(command)}: {result.stderr}"

    gallery = json.loads(Path(os.environ["BLURCLI_GALLERY"]).read_text())
    assert "me" in json.dumps(gallery)
    party = cv2.imread(str(tmp_path / "party-blurred.jpg"))
    assert detail_correlation(crop(party, MIRRORED_ASTRO), crop(scene, MIRRORED_ASTRO)) > 0.8  # "me": kept
    assert detail_correlation(crop(party, CAMERA_FACE), crop(scene, CAMERA_FACE)) < 0.5  # a stranger: hidden
    assert (tmp_path / "holiday-blurred" / "beach.jpg").is_file() and (tmp_path / "holiday-blurred" / "day2" / "street.png").is_file()
    street = cv2.imread(str(tmp_path / "holiday-blurred" / "day2" / "street.png"))
    assert detail_correlation(crop(street, CAMERA_FACE), crop(scene, CAMERA_FACE)) < 0.5
    assert cv2.imread(str(tmp_path / "party-preview.png")).shape[1] == 2 * 1024 + 6
    reviewed = json.loads((tmp_path / "review" / "report.json").read_text())
    assert [t["identity"] for t in reviewed["tracks"]] == ["me"] and (tmp_path / "review" / "index.html").is_file()
    with av.open(str(tmp_path / "clip-blurred.mp4")) as c:
        assert c.streams.video[0].frames == 15 and len(c.streams.audio) == 1
    with av.open(str(tmp_path / "live.flv")) as c:
        assert c.streams.video[0].codec_context.name == "h264" and len(c.streams.audio) == 1


# ---------------------------------------------------------------- CLI polish


def test_help_fits_one_screen_and_points_to_the_readme(tmp_path):
    env80 = {**os.environ, "COLUMNS": "80", "LINES": "24", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "blurcli", "--help"], env=env80, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    lines = result.stdout.rstrip("\n").splitlines()
    assert len(lines) <= 23 and max(len(line) for line in lines) <= 80  # 24 rows with the next prompt
    assert "README.md" in result.stdout
    for command in ("enroll", "faces", "forget", "photo", "video", "review", "stream", "--install-completion", "--version"):
        assert command in result.stdout


def test_version(tmp_path):
    from importlib.metadata import version

    result = run([sys.executable, "-m", "blurcli", "--version"], tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"blurcli {version('blurcli')}"


def test_shell_completion(tmp_path):
    script = blurcli_script()
    shown = run([script, "--show-completion", "bash"], tmp_path)
    assert shown.returncode == 0 and "_BLURCLI_COMPLETE" in shown.stdout
    env = {**os.environ, "_BLURCLI_COMPLETE": "complete_bash", "COMP_WORDS": "blurcli photo a.jpg b.jpg --style ", "COMP_CWORD": "5"}
    styles = subprocess.run([script], env=env, capture_output=True, text=True, timeout=60)
    assert styles.stdout.split() == ["blur", "pixelate", "solid"]
    env.update(COMP_WORDS="blurcli ph", COMP_CWORD="1")
    assert subprocess.run([script], env=env, capture_output=True, text=True, timeout=60).stdout.split() == ["photo"]
