"""Mask geometry: a feathered ellipse over the whole head, scaled from a face box.

Detectors box the face from brows to chin; hair, ears and the jaw line also identify a person,
so the ellipse is larger than the box and shifted up a little. The mask is fully opaque over
the ellipse and fades to zero just outside it, so no hard edge shows and no face pixel leaks.
"""
from __future__ import annotations

import numpy as np

#: Upward shift of the ellipse centre, as a fraction of the box height (foreheads and hair).
CENTRE_SHIFT_UP = 0.08


def head_ellipses(xyxy: np.ndarray, head_scale: float) -> np.ndarray:
    """(n, 4) float32 ellipses as centre x, centre y, semi-axis x, semi-axis y."""
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    w = np.maximum(xyxy[:, 2] - xyxy[:, 0], 1.0)
    h = np.maximum(xyxy[:, 3] - xyxy[:, 1], 1.0)
    cx = (xyxy[:, 0] + xyxy[:, 2]) / 2
    cy = (xyxy[:, 1] + xyxy[:, 3]) / 2 - CENTRE_SHIFT_UP * h
    # A face box is rarely wider than tall; keep the ellipse at least as wide as 0.8x its height
    # so profile faces (narrow boxes) still get their ear and cheek covered.
    w = np.maximum(w, 0.8 * h)
    return np.stack([cx, cy, w / 2 * head_scale, h / 2 * head_scale], axis=1).astype(np.float32)


def ellipse_alpha(shape: tuple[int, int], ellipse: np.ndarray, feather: float, origin=(0, 0)) -> np.ndarray:
    """Opacity of one ellipse over a (h, w) window whose top-left pixel is ``origin`` (x, y).

    Returns:
        (h, w) float32 in [0, 1]: 1 inside the ellipse, fading linearly to 0 at (1 + feather)x its size.
    """
    cx, cy, ax, ay = (float(v) for v in ellipse)
    h, w = shape
    ys = (np.arange(h, dtype=np.float32) + origin[1] + 0.5 - cy) / max(ay, 0.5)
    xs = (np.arange(w, dtype=np.float32) + origin[0] + 0.5 - cx) / max(ax, 0.5)
    dist = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    if feather <= 0:
        return (dist <= 1.0).astype(np.float32)
    return np.clip((1.0 + feather - dist) / feather, 0.0, 1.0).astype(np.float32)


def ellipse_window(ellipse: np.ndarray, feather: float, frame_shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Integer x0, y0, x1, y1 of the pixels an ellipse (with its feather) touches, clipped to the frame."""
    cx, cy, ax, ay = (float(v) for v in ellipse)
    reach = 1.0 + max(feather, 0.0)
    x0 = max(int(np.floor(cx - ax * reach)), 0)
    y0 = max(int(np.floor(cy - ay * reach)), 0)
    x1 = min(int(np.ceil(cx + ax * reach)) + 1, frame_shape[1])
    y1 = min(int(np.ceil(cy + ay * reach)) + 1, frame_shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1
