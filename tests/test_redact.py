"""Redaction: pixels change inside each face's head ellipse, nowhere else, irreversibly, in every style."""
from contextlib import ExitStack as DoesNotRaise

import numpy as np
import pytest

from blurcli.redact import head_ellipses, redact, redact_whole
from blurcli.redact.masks import ellipse_window
from blurcli.settings import RedactSettings, Style
from tests.helpers import make_frame, region_correlation as _corr


def changed(a, b):
    return np.any(a != b, axis=2)


@pytest.mark.parametrize("style", list(Style))
def test_box_is_hidden_and_outside_untouched(style, data_dir):
    frame = make_frame(300, 400)
    out = frame.copy()
    box = np.array([[150, 100, 230, 190]], np.float32)
    settings = RedactSettings(style=style)
    redact(out, box, settings)
    corr = _corr(data_dir, frame, out, [150, 100, 80, 90])
    assert corr < 0.5, f"{style}: face detail survived (correlation {corr:.2f})"
    window = ellipse_window(head_ellipses(box, settings.head_scale)[0], settings.feather, frame.shape[:2])
    x0, y0, x1, y1 = window
    outside = changed(frame, out)
    outside[y0:y1, x0:x1] = False
    assert not outside.any(), "pixels changed outside the mask's window"
    # Corners of the box's window lie outside the ellipse: they are untouched (an ellipse, not a rectangle).
    assert (out[y0, x0] == frame[y0, x0]).all()


def test_whole_head_is_covered_not_just_the_box():
    frame = make_frame(300, 400)
    out = frame.copy()
    redact(out, np.array([[150, 100, 230, 190]]), RedactSettings())
    diff = changed(frame, out)
    # Forehead/hair above the box and the cheeks beside it change too.
    assert diff[85, 190] and diff[145, 135] and diff[145, 245]


@pytest.mark.parametrize(
    "box, expectation",
    [
        ([[-30, -30, 20, 25]], DoesNotRaise()),  # partly outside the frame
        ([[390, 290, 460, 380]], DoesNotRaise()),  # mostly outside
        ([[1000, 1000, 1100, 1100]], DoesNotRaise()),  # wholly outside: nothing to do
        ([[50, 50, 51, 51]], DoesNotRaise()),  # 1 px face
        ([[60, 60, 40, 40]], DoesNotRaise()),  # swapped corners
        (np.zeros((0, 4)), DoesNotRaise()),
    ],
)
def test_edge_boxes(box, expectation):
    frame = make_frame(300, 400)
    out = frame.copy()
    with expectation:
        redact(out, np.asarray(box, np.float32), RedactSettings())
    assert out.shape == frame.shape and out.dtype == np.uint8


def test_tiny_faces_lose_their_detail(data_dir):
    frame = make_frame(200, 200, seed=3)
    for side in (6, 10, 16):
        out = frame.copy()
        redact(out, np.array([[80, 80, 80 + side, 80 + side]], np.float32), RedactSettings())
        assert _corr(data_dir, frame, out, [80, 80, side, side]) < 0.5, side


def test_solid_is_black_inside_and_whole_frame_fallback():
    frame = make_frame(100, 100)
    out = frame.copy()
    redact(out, np.array([[30, 30, 70, 70]]), RedactSettings(style=Style.solid))
    assert (out[50, 50] == 0).all()
    whole = frame.copy()
    redact_whole(whole)
    assert changed(frame, whole).mean() > 0.95


def test_stack_blur_is_the_same_on_any_number_of_threads():
    """cv2.stackBlur (OpenCV 5.0) differs at its thread stripes; ours must not, and must stay a stack blur."""
    import cv2

    from blurcli.redact.styles import stack_blur

    image = cv2.resize(make_frame(120, 160, seed=3), (351, 347), interpolation=cv2.INTER_LINEAR)
    threads = cv2.getNumThreads()
    try:
        results = []
        for n in (1, 2, 4):
            cv2.setNumThreads(n)
            results.append(stack_blur(image, 51))
        cv2.setNumThreads(1)
        reference = cv2.stackBlur(image, (51, 51)).astype(int)
    finally:
        cv2.setNumThreads(threads)
    assert all(np.array_equal(results[0], r) for r in results[1:])
    inner = np.abs(results[0].astype(int) - reference)[30:-30, 30:-30]
    assert inner.max() <= 1
    assert np.array_equal(stack_blur(image, 1), image)
