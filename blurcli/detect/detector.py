"""Find faces at several scales: one pass for the picture, more passes for small and blurred faces.

CenterFace finds faces down to ~10 px at its input scale, but its recall drops steeply below ~20 px
(WIDER FACE crowds are mostly that small). The small-face pass runs the network on 2x-upscaled,
overlapping tiles of the picture and keeps only the small faces it finds; tiles keep the network
input (and memory) bounded whatever the picture's size. A half-size pass (a quarter of the base
cost) finds some large, blurred or occluded faces the base pass scores too low. All passes are
merged by non-maximum suppression.

Share of faces hidden on shared/data/detect (threshold 0.2, solid masks, so that only detection
counts), faces 10-20 px / >= 10 px / >= 40 px: base pass alone 77.0 / 87.8 / 97.8%; with the
small-face tiles 90.0 / 93.7 / 97.8%; with the half-size pass too 89.6 / 94.0 / 98.3%.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from ..faces import Faces
from ..media._pixels import coded_boxes, upright
from ..settings import DetectSettings
from . import centerface
from .backends import Backend

log = logging.getLogger("blurcli.detect")

#: Orientations a sideways search tries: the picture turned so that a face lying on its left or
#: right side stands upright (display-rotation degrees, as :func:`blurcli.media._pixels.upright`).
SIDEWAYS = (90, 270)
#: A turned orientation wins only on clear evidence: more faces scoring at least CONFIDENT there
#: than upright, and either two of them or one of at least CLEAR. Searching every photo turned as
#: well as upright found a dog's face on the shared dogs photo at 0.82 (turned 270 degrees), and
#: faces in upright crowds gain nothing from it; a sideways photo's faces score like upright ones.
CONFIDENT = 0.5
CLEAR = 0.9


@dataclass(frozen=True)
class MultiScalePlan:
    """The extra passes run when ``DetectSettings.upscale_small`` is on (sizes in base-scale pixels).

    Attributes:
        coarse_scales: extra whole-picture passes at these fractions of the base scale.
        upscale: factor applied to each tile before the network sees it.
        tile: largest tile side before upscaling; the network input is ``tile * upscale`` (rounded to 32).
        overlap: tiles overlap by this much, so every face narrower than ``overlap - 2 * edge_margin``
            lies whole inside some tile.
        edge_margin: boxes reaching this close to an edge shared with another tile are dropped there.
        max_face: faces of the small pass at least this tall are dropped (the base pass owns them).
        threshold: heat threshold of the small pass (``None``: the detector's threshold).
    """

    coarse_scales: tuple[float, ...] = (0.5,)
    upscale: float = 2.0
    tile: int = 448
    overlap: int = 64
    edge_margin: float = 4.0
    max_face: float = 40.0
    threshold: float | None = None


def _tile_starts(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) spans that cover ``length`` with tiles no longer than ``tile``, spread evenly."""
    if length <= tile:
        return [(0, length)]
    count = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (count - 1) * overlap) / count)
    step = (length - size) / (count - 1)
    return [(round(i * step), round(i * step) + size) for i in range(count)]


class FaceDetector:
    """CenterFace over one or more scales.

    Build it with :func:`blurcli.detect.load_detector`, which also self-checks the network.

    Args:
        backend: runs the network.
        settings: threshold, base size and whether to run the extra passes.
        plan: scales and tiling of the extra passes.
    """

    def __init__(
        self,
        backend: Backend,
        settings: DetectSettings = DetectSettings(),
        plan: MultiScalePlan = MultiScalePlan(),
        *,
        second=None,
    ):
        self.backend = backend
        self.settings = settings
        self.plan = plan
        self.second = second  # a YuNet (or None): its faces are merged with CenterFace's

    @property
    def name(self) -> str:
        """"centerface/<backend>/<device>" (+ "+yunet"), for logs and reports."""
        second = "+yunet" if self.second is not None else ""
        return f"centerface/{self.backend.backend_id}/{self.backend.device}{second}"

    def detect(
        self,
        image_bgr: np.ndarray,
        *,
        max_side: int | None = None,
        upscale_small: bool | None = None,
        second_side: int | None = None,
        sideways: bool = False,
    ) -> Faces:
        """Find every face in a picture.

        Args:
            image_bgr: (h, w, 3) uint8 BGR picture (grey (h, w) and BGRA are accepted too).
            max_side: longest side of the base pass, in pixels (default ``settings.max_side``). The
                picture is never upscaled for the base pass; a smaller value trades small faces for speed.
            upscale_small: run the small-face and half-size passes (default ``settings.upscale_small``);
                off, only the base pass runs (6-8x faster).
            second_side: longest side of the picture the second detector (YuNet) sees (default
                ``settings.yunet_max_side``); 0 skips it for this call.
            sideways: also look for faces lying sideways (a photo turned without EXIF, a group
                lying down), which CenterFace misses when turned more than ~45 degrees: one base
                pass at 90 and at 270 degrees, and when one of them clearly finds more faces than
                the upright picture (see :data:`CONFIDENT`), every pass in that orientation too.

        Returns:
            Faces with xyxy (n, 4) in ``image_bgr``'s pixels (not clipped: a box may reach past the
            picture's edge), score (n,) and landmarks (n, 5, 2), best score first.

        Raises:
            ValueError: the picture is not 8-bit.
        """
        image = _bgr(image_bgr)
        h, w = image.shape[:2]
        if h == 0 or w == 0:
            return Faces.empty()
        max_side = int(max_side or self.settings.max_side)
        upscale_small = self.settings.upscale_small if upscale_small is None else upscale_small
        second_side = self.settings.yunet_max_side if second_side is None else second_side
        parts = self._passes(image, max_side, upscale_small, second_side)
        rotation, turned_base = self._sideways(image, parts[0][1], max_side) if sideways else (0, None)
        if rotation:
            turned = upright(image, rotation)
            for xyxy, score, points in self._passes(turned, max_side, upscale_small, second_side, base_pass=turned_base):
                flat = coded_boxes(np.tile(points.reshape(-1, 2), 2), rotation, w, h)[:, :2]
                parts.append((coded_boxes(xyxy, rotation, w, h), score, flat.reshape(points.shape)))
        return _merged(parts)

    def add_small(self, image_bgr: np.ndarray, faces: Faces, *, max_side: int | None = None) -> Faces:
        """``faces`` and the small faces that the 2x-upscaled tiles find where ``faces`` holds small ones.

        Video runs this now and then on top of its one base pass (see
        :class:`blurcli.pipeline.video.Analyser`): crowds cluster, so a tile where the base pass found
        a face under ``plan.max_face`` holds most of the small faces it missed, and a tile without
        one (sky, a stage, a talking head) is skipped. On the 8-photo crowd pans
        (benchmarks/crowd.py) running only those tiles did 42% less tile work than every tile at
        the same recall (96.3% of faces >= 10 px at 720p, 95.1-95.3% at 1080p).

        Args:
            image_bgr: the picture ``faces`` were found in (as :meth:`detect` takes it).
            faces: the base pass's faces at ``max_side``.
            max_side: the base pass's longest side (default ``settings.max_side``).

        Returns:
            ``faces`` merged with what the tiles found (``faces`` itself when no face is small).

        Raises:
            ValueError: the picture is not 8-bit.
        """
        image = _bgr(image_bgr)
        h, w = image.shape[:2]
        base = min(1.0, int(max_side or self.settings.max_side) / max(h, w, 1))
        small = faces.height * base < self.plan.max_face
        if not small.any():
            return faces
        box = faces.xyxy[small]
        found = self._small_pass(image, base, near=(box[:, :2] + box[:, 2:]) / 2)
        return _merged([(faces.xyxy, faces.score, faces.landmarks), found])

    def _sideways(self, image: np.ndarray, upright_scores: np.ndarray, max_side: int) -> tuple[int, tuple | None]:
        """(rotation, its base pass) of the turned orientation whose base pass clearly finds more
        faces, else (0, None); the base pass is handed on so that it does not run twice."""
        h, w = image.shape[:2]
        base = min(1.0, max_side / max(h, w))
        best, best_pass = 0, None
        best_scores = upright_scores[upright_scores >= CONFIDENT]
        for rotation in SIDEWAYS:
            found = self._pass(upright(image, rotation), base, self.settings.threshold)
            scores = found[1][found[1] >= CONFIDENT]
            if len(scores) > len(best_scores) and (len(scores) >= 2 or scores.max() >= CLEAR):
                best, best_pass, best_scores = rotation, found, scores
        if best:
            log.debug("sideways picture: %d faces at %d degrees, %d upright", len(best_scores), best,
                      int((upright_scores >= CONFIDENT).sum()))
        return best, best_pass

    def _passes(
        self, image: np.ndarray, max_side: int, upscale_small: bool, second_side: int, base_pass: tuple | None = None
    ) -> list[tuple]:
        """Every pass over one orientation of the picture: [(xyxy, score, landmarks), ...] in its pixels.

        ``base_pass``: the base pass's result when it has already run on this picture.
        """
        h, w = image.shape[:2]
        base = min(1.0, max_side / max(h, w))
        threshold = self.settings.threshold
        parts = [base_pass if base_pass is not None else self._pass(image, base, threshold)]
        if upscale_small:
            parts += [self._pass(image, base * s, threshold) for s in self.plan.coarse_scales]
            parts.append(self._small_pass(image, base))
        if self.second is not None and second_side:
            extra = self.second.detect(image, max_side=second_side)
            parts.append((extra.xyxy, extra.score, extra.landmarks))
        return parts

    def _pass(self, image: np.ndarray, scale: float, threshold: float, origin=(0, 0)):
        """Run the network once on ``image`` resized by ``scale``; boxes in the parent picture's pixels.

        Returns:
            xyxy (n, 4), score (n,), landmarks (n, 5, 2), float32, already NMS-filtered.
        """
        h, w = image.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        blob = centerface.make_blob(image, size)
        xyxy, score, points = centerface.decode(*self.backend.forward(blob), threshold=threshold)
        keep = centerface.nms(xyxy, score)
        xyxy, score, points = xyxy[keep], score[keep], points[keep]
        factor = np.array([w / size[0], h / size[1]], np.float32)
        shift = np.array(origin, np.float32)
        xyxy = (xyxy.reshape(-1, 2, 2) * factor + shift).reshape(-1, 4)
        points = points * factor + shift
        return xyxy, score, points

    def _small_pass(self, image: np.ndarray, base: float, near: np.ndarray | None = None):
        """Upscaled tiles; keeps faces under ``plan.max_face`` base pixels that no tile edge cuts.

        A face cut by an edge between two tiles would add a partial box; it is dropped, since the
        overlap (larger than ``max_face`` plus the margin) puts the whole face inside the next tile.
        ``near``: (n, 2) points in ``image`` pixels; only the tiles holding one of them run.
        """
        plan = self.plan
        h, w = image.shape[:2]
        threshold = self.settings.threshold if plan.threshold is None else plan.threshold
        scale = base * plan.upscale
        margin = plan.edge_margin / base
        parts = []
        for y0, y1 in _tile_starts(h, round(plan.tile / base), round(plan.overlap / base)):
            for x0, x1 in _tile_starts(w, round(plan.tile / base), round(plan.overlap / base)):
                if near is not None and not _holds(near, x0, y0, x1, y1):
                    continue
                xyxy, score, points = self._pass(image[y0:y1, x0:x1], scale, threshold, origin=(x0, y0))
                keep = (xyxy[:, 3] - xyxy[:, 1]) * base < plan.max_face
                if x0 > 0:
                    keep &= xyxy[:, 0] > x0 + margin
                if y0 > 0:
                    keep &= xyxy[:, 1] > y0 + margin
                if x1 < w:
                    keep &= xyxy[:, 2] < x1 - margin
                if y1 < h:
                    keep &= xyxy[:, 3] < y1 - margin
                parts.append((xyxy[keep], score[keep], points[keep]))
        if not parts:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
        return tuple(np.concatenate(p) for p in zip(*parts))


def _bgr(image) -> np.ndarray:
    """The picture as a contiguous (h, w, 3) uint8 BGR array (grey and BGRA converted)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"face detection needs an 8-bit picture, got {image.dtype}")
    return np.ascontiguousarray(centerface.to_bgr(image))


def _holds(points: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> bool:
    """Whether any of the (n, 2) points lies in the tile [x0, x1) x [y0, y1)."""
    x, y = points[:, 0], points[:, 1]
    return bool(((x >= x0) & (x < x1) & (y >= y0) & (y < y1)).any())


def _merged(parts: list[tuple]) -> Faces:
    """One Faces from several passes' (xyxy, score, landmarks): overlapping boxes merged by NMS, and a
    box inside a better one dropped."""
    xyxy, score, points = (np.concatenate(p) for p in zip(*parts))
    keep = centerface.nms(xyxy, score)
    keep = keep[centerface.drop_contained(xyxy[keep], score[keep])]
    return Faces(xyxy[keep], score[keep], points[keep])
