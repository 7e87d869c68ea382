"""Identity quality on the shared photos: is the enrolled person kept and everyone else hidden?

Usage:
    python benchmarks/quality_identity.py [DATA_DIR] [--tolerance T] [--no-distances]

DATA_DIR defaults to ``$BLURCLI_TEST_DATA`` or ``../shared/data``. It runs every scenario of
``identity/labels.json`` whose test media are photos, and prints PASS/FAIL per scenario:

- Scenarios with labelled boxes (obama on mixed/two_people.jpg and mixed/obama_and_biden.jpg):
  enrol with ``blurcli.identity.enroll.enroll`` into a temporary gallery, redact each test photo
  with ``blurcli.pipeline.photo.redact_image`` and score every labelled box with the reference
  scorer (shared/tools/redaction.py): the enrolled person's box must be kept (correlation > 0.8),
  every other labelled box hidden (< 0.5), and no other detected face may be kept.
- The deepface scenario ("enrol any group; test all other groups + master.csv pairs"): every group
  is enrolled in turn from all its photos and every photo of every other group is tested; then each
  master.csv pair enrols file_x and tests file_y ("Yes": its main face must be kept, "No": nothing
  kept). deepface has no labelled boxes and has 1,100+ (gallery, photo) combinations, so these use
  the photo pipeline's own decision step (``identify_faces``: same detector, same minimum face size,
  same matcher) on detections and encodings computed once per photo, instead of redacting pixels.

It also prints the distance statistics the default tolerance is based on (``--no-distances`` skips them).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from blurcli.errors import EnrolmentError  # noqa: E402
from blurcli.faces import Faces, iou_matrix  # noqa: E402
from blurcli.identity import FaceEncoder, Gallery, Matcher  # noqa: E402
from blurcli.identity.enroll import choose_face, enroll  # noqa: E402
from blurcli.media.image_io import read_image  # noqa: E402
from blurcli.settings import DEFAULT_TOLERANCE, IdentitySettings  # noqa: E402

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
TOLERANCE_TABLE = (0.40, 0.42, 0.45, 0.48, 0.50, 0.55, 0.60)


@dataclass
class ScenarioResult:
    """One line of the report: PASS, FAIL, or INFO (measured, no pass criterion)."""

    name: str
    status: str
    summary: str
    details: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status != "FAIL"


def _scorer(data_dir: Path):
    tools = (data_dir / ".." / "tools").resolve()
    if str(tools) not in sys.path:
        sys.path.insert(0, str(tools))
    import redaction

    return redaction


# ---------------------------------------------------------------- per-photo cache


@dataclass
class PhotoFaces:
    """What the pipeline sees in one photo, computed once.

    Attributes:
        faces: every face of the full (multi-scale) detection, as ``blurcli photo`` finds them.
        big: (n,) bool, faces large enough to be recognised (the pipeline's min_face_px rule).
        encodings: (big.sum(), 128) encodings of those faces.
        enrol_encoding: the face ``blurcli enroll`` would take from this photo, or None if refused.
        enrol_box: its box.
        main: index in ``faces`` of the enrolled face (IoU match), or -1.
    """

    faces: Faces
    big: np.ndarray
    encodings: np.ndarray
    enrol_encoding: np.ndarray | None
    enrol_box: np.ndarray | None
    main: int


class _Replay:
    """An encoder that hands back encodings computed earlier (for ``identify_faces``), by box."""

    def __init__(self, xyxy: np.ndarray, encodings: np.ndarray):
        self.xyxy, self.encodings = xyxy, encodings

    def encode(self, image, xyxy):
        rows = [int(np.flatnonzero((self.xyxy == box).all(axis=1))[0]) for box in xyxy]
        return self.encodings[rows]


class Photos:
    """Lazily detect and encode each photo once."""

    def __init__(self, root: Path, detector, encoder: FaceEncoder, min_face_px: int):
        self.root, self.detector, self.encoder, self.min_face_px = root, detector, encoder, min_face_px
        self._cache: dict[str, PhotoFaces] = {}

    def __getitem__(self, rel: str) -> PhotoFaces:
        if rel not in self._cache:
            self._cache[rel] = self._compute(rel)
        return self._cache[rel]

    def _compute(self, rel: str) -> PhotoFaces:
        image = read_image(self.root / rel)
        faces = self.detector.detect(image)
        big = faces.height >= self.min_face_px  # every face the identity rule may sample
        encodings = self.encoder.encode(image, faces.xyxy[big])
        enrol_faces = self.detector.detect(image, upscale_small=False)  # as blurcli enroll does
        enrol_encoding, enrol_box, main = None, None, -1
        try:
            index, _ = choose_face(enrol_faces)
        except EnrolmentError:
            pass
        else:
            enrol_box = enrol_faces.xyxy[index]
            enrol_encoding = self.encoder.encode(image, enrol_box[None])[0]
            if len(faces):
                iou = iou_matrix(faces.xyxy, enrol_box[None])[:, 0]
                main = int(iou.argmax()) if iou.max() > 0.5 else -1
        return PhotoFaces(faces, big, encodings, enrol_encoding, enrol_box, main)

    def identities(self, rel: str, matcher: Matcher) -> np.ndarray:
        """(n,) object array: who the photo pipeline says each face is."""
        from blurcli.pipeline.photo import identify_faces

        entry = self[rel]
        faces = entry.faces[np.arange(len(entry.faces))]  # a copy: identify_faces fills it in place
        identity = IdentitySettings(tolerance=matcher.tolerance, min_face_px=self.min_face_px)
        replay = _Replay(entry.faces.xyxy[entry.big], entry.encodings)
        faces = identify_faces(None, faces, encoder=replay, matcher=matcher, identity=identity)
        return faces.identity


# ---------------------------------------------------------------- scenarios


def _labelled_scenario(scenario: dict, labels: dict, identity_dir: Path, tolerance: float, detector, encoder, redaction) -> ScenarioResult:
    """Enrol for real, redact each test photo with the photo pipeline, score the labelled boxes."""
    from blurcli.pipeline.photo import redact_image

    person = scenario["keep_unblurred"].split()[0]
    name = f"{person}: enrol {', '.join(Path(p).name for p in scenario['enrol'])}; test {', '.join(Path(p).name for p in scenario['test'])}"
    mixed = {m["file"]: m for m in labels["mixed"]}
    details, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        gallery_path = Path(tmp) / "gallery.json"
        try:
            enroll([identity_dir / p for p in scenario["enrol"]], name=person, gallery_path=gallery_path, detector=detector, encoder=encoder)
        except EnrolmentError as exc:
            return ScenarioResult(name, "FAIL", f"enrolment refused: {exc}")
        matcher = Gallery.open(gallery_path).matcher(tolerance)
    for rel in scenario["test"]:
        image = read_image(identity_dir / rel)
        out, faces, actions = redact_image(image, detector=detector, matcher=matcher, encoder=encoder)
        labelled = mixed.get(rel, {"faces": []})["faces"]
        boxes = [f["box"] for f in labelled]
        scores = redaction.score_image(image, out, boxes)
        parts = []
        for face, (_, corr) in zip(labelled, scores):
            should_keep = face["identity"] == person
            good = corr is not None and (corr > redaction.KEPT if should_keep else corr < redaction.HIDDEN)
            ok &= good
            parts.append(f"{face['identity']} {_verdict(corr, redaction)}{'' if corr is None else f' (corr {corr:.2f})'}{'' if good else ' WRONG'}")
        own = [xywh_to_xyxy(f["box"]) for f in labelled if f["identity"] == person]
        for i in np.flatnonzero(faces.enrolled):
            if not own or iou_matrix(faces.xyxy[i : i + 1], own).max() < 0.3:
                ok = False
                parts.append(f"an unlabelled face at {np.round(faces.xyxy[i]).astype(int).tolist()} was kept as {faces.identity[i]} WRONG")
        hidden = sum(a == "hidden" for a in actions)
        details.append(f"{Path(rel).name}: {', '.join(parts)}; {len(faces)} faces found, {hidden} hidden")
    return ScenarioResult(name, "PASS" if ok else "FAIL", "; ".join(details))


def _verdict(corr: float | None, redaction) -> str:
    if corr is None:
        return "unscorable"
    return "kept" if corr > redaction.KEPT else "hidden" if corr < redaction.HIDDEN else "unclear"


def xywh_to_xyxy(box) -> list[float]:
    x, y, w, h = box
    return [x, y, x + w, y + h]


def _deepface_groups(labels: dict) -> dict[str, list[str]]:
    return {
        person: [f for f in entry["images"] if f.startswith("deepface/")]
        for person, entry in labels["people"].items()
        if any(f.startswith("deepface/") for f in entry["images"])
    }


def _deepface_scenarios(identity_dir: Path, labels: dict, photos: Photos, tolerance: float) -> list[ScenarioResult]:
    groups = _deepface_groups(labels)
    owner = {f: g for g, fs in groups.items() for f in fs}
    results = []

    # 1. Enrol each group from all its photos; every photo of every other group must stay unknown.
    strangers_kept, tested, refused = [], 0, []
    for group, files in groups.items():
        samples = [photos[f].enrol_encoding for f in files if photos[f].enrol_encoding is not None]
        refused += [f for f in files if photos[f].enrol_encoding is None]
        matcher = Matcher([group], [np.stack(samples)], tolerance)
        for other in owner:
            if owner[other] == group:
                continue
            tested += 1
            kept = [n for n in photos.identities(other, matcher) if n is not None]
            if kept:
                strangers_kept.append(f"{other} ({owner[other]}) kept as {group}")
    results.append(ScenarioResult(
        f"deepface: enrol each of {len(groups)} groups, test all other groups' photos",
        "FAIL" if strangers_kept else "PASS",
        f"{len(strangers_kept)} of {tested} stranger photos had a face kept"
        + (f"; enrolment refused for {', '.join(refused)}" if refused else ""),
        strangers_kept,
    ))

    # 2. Leave one out: enrol the rest of the group, test the held-out photo's main face.
    kept, total, missed = 0, 0, []
    for group, files in groups.items():
        for held in files:
            rest = [photos[f].enrol_encoding for f in files if f != held and photos[f].enrol_encoding is not None]
            if not rest or photos[held].main < 0:
                continue
            total += 1
            names = photos.identities(held, Matcher([group], [np.stack(rest)], tolerance))
            if names[photos[held].main] == group:
                kept += 1
            else:
                d = _main_distance(photos[held], Matcher([group], [np.stack(rest)], tolerance))
                missed.append(f"{held} ({group}, distance {d:.3f})")
    results.append(ScenarioResult(
        "deepface: enrol the rest of a group, test the held-out photo (recall, no pass criterion)",
        "INFO", f"enrolled person kept in {kept} of {total} held-out photos", missed,
    ))

    # 3. master.csv: enrol file_x, test file_y.
    pairs = list(csv.DictReader(open(identity_dir / "deepface" / "master.csv", newline="")))
    yes_kept, yes_total, no_kept, no_total, wrong = 0, 0, 0, 0, []
    for row in pairs:
        x, y = f"deepface/{row['file_x']}", f"deepface/{row['file_y']}"
        if photos[x].enrol_encoding is None:
            wrong.append(f"{x}: enrolment refused")
            continue
        matcher = Matcher(["x"], [photos[x].enrol_encoding[None]], tolerance)
        names = photos.identities(y, matcher)
        distance = _main_distance(photos[y], matcher)
        if row["Decision"] == "Yes":
            yes_total += 1
            main = photos[y].main
            if main >= 0 and names[main] == "x" and sum(n is not None for n in names) == 1:
                yes_kept += 1
            else:
                wrong.append(f"Yes {row['file_x']} -> {row['file_y']}: not kept (distance {distance:.3f})")
        else:
            no_total += 1
            if any(n is not None for n in names):
                no_kept += 1
                wrong.append(f"No {row['file_x']} -> {row['file_y']}: stranger KEPT (distance {distance:.3f})")
    ok = no_kept == 0 and yes_kept == yes_total
    results.append(ScenarioResult(
        f"deepface master.csv: {len(pairs)} pairs, enrol file_x (one photo), test file_y",
        "PASS" if ok else "FAIL",
        f"'No' pairs: {no_kept} of {no_total} strangers kept; 'Yes' pairs: {yes_kept} of {yes_total} kept",
        wrong,
    ))
    return results


def _main_distance(entry: PhotoFaces, matcher: Matcher) -> float:
    """Distance of a photo's main face to the matcher's nearest person (NaN if it was not encoded)."""
    if entry.main < 0 or not entry.big[entry.main]:
        return float("nan")
    row = int(np.cumsum(entry.big)[entry.main] - 1)
    return float(matcher.distances(entry.encodings[row])[0].min())


# ---------------------------------------------------------------- distance statistics


def distance_report(identity_dir: Path, labels: dict, photos: Photos) -> list[str]:
    """Same/different-person distances between the enrolment faces of every labelled photo."""
    files = [f for entry in labels["people"].values() for f in entry["images"] if (identity_dir / f).suffix.lower() in PHOTO_SUFFIXES]
    owner = {f: p for p, entry in labels["people"].items() for f in entry["images"]}
    files = [f for f in files if photos[f].enrol_encoding is not None]
    enc = np.stack([photos[f].enrol_encoding for f in files]).astype(np.float64)
    d = np.sqrt(np.clip(((enc[:, None] - enc[None]) ** 2).sum(-1), 0, None))
    iu = np.triu_indices(len(files), 1)
    same_mask = np.array([owner[files[i]] == owner[files[j]] for i, j in zip(*iu)])
    dist = d[iu]
    same, diff = np.sort(dist[same_mask]), np.sort(dist[~same_mask])
    pairs = list(zip(*iu))
    worst_same = sorted(((dist[k], files[pairs[k][0]], files[pairs[k][1]]) for k in np.flatnonzero(same_mask)), reverse=True)[:3]
    worst_diff = sorted((dist[k], files[pairs[k][0]], files[pairs[k][1]]) for k in np.flatnonzero(~same_mask))[:3]
    lines = [
        f"distances: dlib encoder on CenterFace boxes, one face per photo, {len(files)} photos of "
        f"{len({owner[f] for f in files})} people",
        f"  same person      {len(same):5d} pairs: median {np.median(same):.3f}  p95 {np.percentile(same, 95):.3f}  "
        f"p99 {np.percentile(same, 99):.3f}  max {same.max():.3f}",
        f"  different people {len(diff):5d} pairs: min {diff.min():.3f}  p0.1 {np.percentile(diff, 0.1):.3f}  "
        f"p1 {np.percentile(diff, 1):.3f}  p5 {np.percentile(diff, 5):.3f}  median {np.median(diff):.3f}",
        "  closest strangers: " + "; ".join(f"{a} / {b} {v:.3f}" for v, a, b in worst_diff),
        "  furthest same-person: " + "; ".join(f"{a} / {b} {v:.3f}" for v, a, b in worst_same),
        "  tolerance | same-person pairs missed | stranger pairs accepted",
    ]
    for t in TOLERANCE_TABLE:
        lines.append(f"  {t:9.2f} | {100 * (same > t).mean():5.1f}% ({int((same > t).sum()):3d})           | {int((diff <= t).sum())}")
    return lines


# ---------------------------------------------------------------- entry points


def run(data_dir: Path | str, *, tolerance: float = DEFAULT_TOLERANCE, distances: bool = False, log=print) -> list[ScenarioResult]:
    """Run every photo scenario of identity/labels.json.

    Args:
        data_dir: the shared data folder (holding identity/ and, beside it, ../tools).
        tolerance: matching tolerance to evaluate.
        distances: also log the distance statistics.
        log: where progress and statistics lines go.

    Returns:
        One ScenarioResult per scenario part (video scenarios are listed as SKIP).
    """
    from blurcli.detect import load_detector

    data_dir = Path(data_dir)
    identity_dir = data_dir / "identity"
    labels = json.loads((identity_dir / "labels.json").read_text())
    redaction = _scorer(data_dir)
    detector, encoder = load_detector(), FaceEncoder()
    photos = Photos(identity_dir, detector, encoder, IdentitySettings().min_face_px)
    results = []
    for scenario in labels["scenarios"]:
        test = scenario["test"]
        if isinstance(test, str) and "deepface" in test:
            results += _deepface_scenarios(identity_dir, labels, photos, tolerance)
        elif all(Path(t).suffix.lower() in PHOTO_SUFFIXES for t in test):
            results.append(_labelled_scenario(scenario, labels, identity_dir, tolerance, detector, encoder, redaction))
        else:
            results.append(ScenarioResult(f"{scenario['keep_unblurred']} on {', '.join(test)}", "SKIP", "video scenario (not a photo)"))
    if distances:
        for line in distance_report(identity_dir, labels, photos):
            log(line)
    return results


def main(argv: list[str] | None = None) -> int:
    default_data = Path(os.environ.get("BLURCLI_TEST_DATA", ROOT.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=default_data)
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    parser.add_argument("--no-distances", action="store_true", help="skip the distance statistics")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every miss")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = run(args.data_dir, tolerance=args.tolerance, distances=not args.no_distances)
    print(f"identity scenarios at tolerance {args.tolerance}:")
    for r in results:
        print(f"{r.status:4s}  {r.name}: {r.summary}")
        for line in r.details if args.verbose or r.status == "FAIL" else []:
            print(f"        {line}")
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
