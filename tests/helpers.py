"""Small builders and checks shared by tests."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np


def shared_data_dir() -> Path:
    """The shared real media: ``$BLURCLI_TEST_DATA``, default ``../shared/data`` beside the checkout."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return Path(os.environ.get("BLURCLI_TEST_DATA", default)).resolve()


def scorer(data_dir: Path | None = None):
    """The reference redaction scorer (shared/tools/redaction.py), imported from beside the data."""
    tools = (Path(data_dir or shared_data_dir()) / ".." / "tools").resolve()
    if str(tools) not in sys.path:
        sys.path.insert(0, str(tools))
    import redaction

    return redaction


def region_correlation(data_dir: Path, before: np.ndarray, after: np.ndarray, xywh) -> float:
    """Band-pass detail correlation of one face region, exactly as the reference scorer computes it."""
    redaction = scorer(data_dir)
    [(_, corr)] = redaction.score_image(before, after, [list(xywh)])
    return corr


def detail_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """The reference scorer's band-pass detail correlation of two same-sized regions (BGR or grey):
    hidden below 0.5, kept above 0.8."""
    grey = [cv2.cvtColor(x, cv2.COLOR_BGR2GRAY) if x.ndim == 3 else x for x in (a, b)]
    return scorer().detail_correlation(*grey)


def make_frame(h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    """A textured BGR frame (random detail, so any change of pixels is visible)."""
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur((rng.random((h, w, 3)) * 255).astype(np.uint8), (0, 0), 1.0)


def xyxy_to_xywh(box) -> list[float]:
    x0, y0, x1, y1 = box
    return [x0, y0, x1 - x0, y1 - y0]
