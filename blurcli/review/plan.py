"""Plans: a report, edited or not, rendered exactly as it says, nothing decided again.

A plan is any report blurcli wrote (``--report``, ``blurcli review``'s ``report.json``, or the
file the review page saves): per face track (per face in a photo) its boxes and an action,
``"hidden"`` or ``"kept"``, and the regions a reviewer added. ``--plan`` renders those actions:
no face is detected or recognised again, a hidden track is covered over the same frames by the
same rule as the tool's own run (:func:`blurcli.pipeline.video.mask_plan`), a kept one is left
whole, and every added region is hidden over its time range.

A plan names its input by sha256 (its audit record): a plan made for another file is refused, so
that a plan's boxes are never drawn over a picture they were not made for.

The rendered report says for each track who decided: ``"tool"`` when the plan keeps the tool's
decision (a face the tool kept is one it recognised: its ``identity`` is set), ``"plan"`` when
the plan changed it, and every added region is ``"plan"``.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import audit
from ..errors import UsageError

ACTIONS = ("hidden", "kept")


@dataclass(frozen=True)
class Plan:
    """A loaded plan file.

    Attributes:
        path: the file, as the user named it.
        sha256: the plan file's own sha256 (recorded in every render's audit).
        entries: each report of the plan by its input's sha256.
    """

    path: str
    sha256: str
    entries: dict[str, dict]

    @classmethod
    def load(cls, path: Path | str) -> "Plan":
        """Read a plan: one report (a video's ``--report``) or a list of them (photos, folders, review).

        Raises:
            UsageError: the file is missing, not JSON, or holds no report with an input sha256.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"--plan {path}: cannot read it ({exc.strerror or exc})") from None
        try:
            reports = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"--plan {path}: not a JSON report ({exc})") from None
        if isinstance(reports, dict):
            reports = [reports]
        if not isinstance(reports, list):
            raise UsageError(f"--plan {path}: not a report (a JSON object or list of them)")
        entries = {}
        for report in reports:
            digest = (report.get("audit") or {}).get("input_sha256") if isinstance(report, dict) else None
            if isinstance(digest, str) and not report.get("error"):
                entries[digest] = report
        if not entries:
            raise UsageError(
                f"--plan {path}: holds no report with an input sha256; make one with 'blurcli review' or --report"
            )
        return cls(str(path), hashlib.sha256(data).hexdigest(), entries)

    def entry_for(self, src: Path, digest: str, kind: str) -> dict:
        """The report of the plan made for ``src`` (whose sha256 is ``digest``), checked.

        Args:
            kind: "video" or "photo": the entry must be that kind of report.

        Raises:
            UsageError: no report of the plan was made for this file, or it is malformed.
        """
        entry = self.entries.get(digest)
        if entry is None:
            raise UsageError(
                f"{src}: the plan {self.path} was made for another file (no report in it has this file's "
                f"sha256 {digest[:12]}...); review this file to make its plan"
            )
        is_video = "tracks" in entry
        if is_video != (kind == "video"):
            other = "video" if is_video else "photo"
            raise UsageError(f"{src}: the plan {self.path} holds a {other}'s report for this file, not a {kind}'s")
        _check_entry(entry, self.path, src)
        return entry

    def record(self) -> dict:
        """What a render's audit says about the plan it rendered."""
        return {"path": self.path, "sha256": self.sha256}


def _fail(plan: str, src: Path, what: str) -> None:
    raise UsageError(f"{src}: the plan {plan} is malformed: {what}")


def _is_box(values, n: int = 4) -> bool:
    return (
        isinstance(values, (list, tuple)) and len(values) >= n
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values[:n])
    )


def _check_entry(entry: dict, plan: str, src: Path) -> None:
    """Refuse a plan whose actions or boxes cannot be rendered as written (hand-edited JSON)."""
    frames = int(entry.get("frames") or 1)
    items = entry.get("tracks", entry.get("faces"))
    if not isinstance(items, list):
        _fail(plan, src, "no 'tracks' or 'faces' list")
    seen = set()
    for item in items:
        name = f"track {item.get('track_id')}" if "tracks" in entry else f"face {items.index(item)}"
        if item.get("action") not in ACTIONS:
            _fail(plan, src, f"{name} has action {item.get('action')!r}; use 'hidden' or 'kept'")
        if "tracks" in entry:
            if not isinstance(item.get("track_id"), int) or item["track_id"] in seen:
                _fail(plan, src, f"{name}: track ids must be distinct whole numbers")
            seen.add(item["track_id"])
            boxes = item.get("boxes")
            if not isinstance(boxes, list) or not boxes or not all(_is_box(row, 5) for row in boxes):
                _fail(plan, src, f"{name} needs its boxes as [frame, x0, y0, x1, y1, score] rows")
            if not all(0 <= row[0] < frames for row in boxes):
                _fail(plan, src, f"{name} has a box outside the file's {frames} frames")
        elif not _is_box(item.get("box")):
            _fail(plan, src, f"{name} needs a box [x0, y0, x1, y1]")
    for k, region in enumerate(entry.get("regions") or []):
        keyframes = region.get("keyframes") if isinstance(region, dict) else None
        if not isinstance(keyframes, list) or not keyframes or not all(_is_box(row, 5) for row in keyframes):
            _fail(plan, src, f"region {k + 1} needs keyframes as [frame, x0, y0, x1, y1] rows")
        first, last = region_range(region, frames)
        if first > last:
            _fail(plan, src, f"region {k + 1} ends (frame {last}) before it starts (frame {first})")


def tool_action(item: dict) -> str:
    """What the tool itself does with a track or face: keep it only when it recognised someone."""
    return "kept" if item.get("identity") else "hidden"


def decided_by(item: dict) -> str:
    """``"tool"`` when ``item``'s action is the tool's own decision, ``"plan"`` when a plan changed it."""
    return "tool" if item["action"] == tool_action(item) else "plan"


def region_range(region: dict, frames: int) -> tuple[int, int]:
    """First and last frame a region is hidden in: its ``first_frame``/``last_frame``, else its
    keyframes' span, clipped to the file."""
    keys = [int(row[0]) for row in region["keyframes"]]
    first = int(region.get("first_frame", min(keys)))
    last = int(region.get("last_frame", max(keys)))
    return max(0, first), min(frames - 1, last)


def region_boxes(region: dict, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """A region's box in every frame of its range: linear between its keyframes, held before the
    first and after the last one.

    Returns:
        frames (m,) consecutive int64, boxes (m, 4) float32 xyxy in upright pixels (m may be 0).
    """
    first, last = region_range(region, frames)
    keys = sorted((row for row in region["keyframes"]), key=lambda row: row[0])
    at = np.asarray([row[0] for row in keys], np.float64)
    coords = np.asarray([row[1:5] for row in keys], np.float64)
    out_frames = np.arange(first, last + 1, dtype=np.int64)
    boxes = np.stack([np.interp(out_frames, at, coords[:, k]) for k in range(4)], axis=1) if len(out_frames) else np.zeros((0, 4))
    boxes = np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], axis=1)
    return out_frames, boxes.astype(np.float32)


def _marked_regions(entry: dict, frames: int) -> list[dict]:
    regions = []
    for k, region in enumerate(entry.get("regions") or []):
        first, last = region_range(region, frames)
        regions.append(
            dict(region, id=region.get("id", f"r{k + 1}"), first_frame=first, last_frame=last,
                 action="hidden", decided_by="plan")
        )
    return regions


class _Renderer:
    """What both renderers share: the plan, and the input digests they looked up (hashed once)."""

    kind = ""

    def __init__(self, settings, plan: Plan) -> None:
        self.settings = settings
        self.plan = plan
        self.matcher = None  # nobody is recognised: the plan decides
        self._digests: dict[str, str] = {}

    def _digest(self, src: Path) -> str:
        key = str(Path(src).resolve())
        if key not in self._digests:
            self._digests[key] = audit.input_digest(Path(src))
        return self._digests[key]

    def entry(self, src: Path) -> dict:
        return self.plan.entry_for(src, self._digest(src), self.kind)

    def audit_record(self, src: Path) -> dict:
        """The render's audit: the models are those that made the plan's decisions, the settings
        name the plan (a changed plan is other work for a resumed folder)."""
        entry = self.entry(src)
        record = audit.expected(self.settings, src=src, identity=False, digest=self._digest(src))
        record["models"] = (entry.get("audit") or {}).get("models", {})
        record["settings"]["plan"] = self.plan.record()
        return record


class VideoPlanRenderer(_Renderer):
    """Renders a video's plan with pass 2 alone (:class:`~blurcli.pipeline.video.MaskWriter`)."""

    kind = "video"

    def __init__(self, settings, plan: Plan) -> None:
        from ..pipeline.video import MaskWriter

        super().__init__(settings, plan)
        self.writer = MaskWriter(settings)

    def redact_file(self, src: Path, dst: Path, progress=None):
        from ..pipeline.paths import ensure_parent

        src, dst = Path(src), Path(dst)
        self.writer.check_output(src, dst)
        started = time.perf_counter()
        masks, report = self.masks(self.entry(src))
        report.input, report.output = str(src), str(dst)
        ensure_parent(dst)
        self.writer.write(src, dst, masks, report.frames, progress)
        report.seconds = {"write": round(time.perf_counter() - started, 3)}
        return report

    def masks(self, entry: dict):
        """The mask plan of a video's plan entry, and the report of what it renders.

        Tracks are put back in scene coordinates with the report's camera offsets, so that they
        are interpolated and padded exactly as in the run that made the report."""
        from ..pipeline.video import Analysis, VideoReport, mask_plan
        from ..track.plan import TrackLog

        report = VideoReport.from_dict(entry)
        report.audit, report.skipped = None, False
        frames = int(report.frames)
        offsets = np.asarray(report.camera, np.float32).reshape(-1, 2) if len(report.camera) == frames else None
        shots = sorted(set(report.cuts) | {0})
        logs = {}
        for track in report.tracks:
            rows = sorted(track.boxes, key=lambda row: row[0])
            shot_start = max(s for s in shots if s <= int(rows[0][0]))
            log = TrackLog(track.track_id, shot_start)
            for row in rows:
                box = np.asarray(row[1:5], np.float32)
                if offsets is not None:  # back to scene coordinates, as the tool's run tracked them
                    box = box - np.tile(offsets[int(row[0])], 2)
                log.add(int(row[0]), box, float(row[5]) if len(row) > 5 else 1.0)
            logs[track.track_id] = log
        fps = float(report.fps) or 30.0
        analysis = Analysis(None, frames, fps, report.detected_frames, list(report.cuts), logs, None, offsets)
        pad_s = ((entry.get("audit") or {}).get("settings") or {}).get("pad_s", self.settings.pad_s)
        masks, hidden = mask_plan(analysis, {t.track_id: t.action for t in report.tracks}, pad_s=pad_s)
        for track in report.tracks:
            track.hidden_from, track.hidden_to = hidden[track.track_id] or (None, None)
            track.decided_by = decided_by({"action": track.action, "identity": track.identity})
        report.regions = _marked_regions(entry, frames)
        for region in report.regions:
            masks.add(*region_boxes(region, frames))
        return masks, report


class PhotoPlanRenderer(_Renderer):
    """Renders a photo's plan: its hidden faces and added regions hidden, its kept faces left whole."""

    kind = "photo"

    def redact_file(self, src: Path, dst: Path):
        from ..media.image_io import load_picture, output_format, write_picture
        from ..pipeline.paths import ensure_parent
        from ..pipeline.photo import FileReport
        from ..redact import redact

        src, dst = Path(src), Path(dst)
        output_format(dst)
        entry = self.entry(src)
        picture = load_picture(src, max_pixels=self.settings.max_pixels)
        report = FileReport.from_dict(entry)
        report.input, report.output, report.audit, report.skipped = str(src), str(dst), None, False
        for face in report.faces:
            face.decided_by = decided_by({"action": face.action, "identity": face.identity})
        report.regions = _marked_regions(entry, 1)
        hide = [face.box[:4] for face in report.faces if face.action == "hidden"]
        hide += [region_boxes(region, 1)[1][0].tolist() for region in report.regions]
        keep = [face.box[:4] for face in report.faces if face.action == "kept"]
        out = picture.bgr.copy()
        redact(out, np.asarray(hide, np.float32).reshape(-1, 4), self.settings.redact,
               keep=np.asarray(keep, np.float32).reshape(-1, 4))
        ensure_parent(dst)
        write_picture(dst, picture, out, keep_location=self.settings.keep_location)
        return report
