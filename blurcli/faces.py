"""The one per-frame type passed between stages: parallel arrays of faces.

Boxes are float32 xyxy in source pixels of the *upright* picture (after EXIF orientation or
video rotation has been applied). Every stage adds columns rather than inventing its own type.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Faces:
    """Faces found in one picture.

    Attributes:
        xyxy: (n, 4) float32, x0, y0, x1, y1 in pixels, x0 <= x1 and y0 <= y1.
        score: (n,) float32 detector confidence in [0, 1].
        landmarks: (n, 5, 2) float32 points (left eye, right eye, nose, left mouth corner,
            right mouth corner) in pixels; NaN where the detector gave none.
        track_id: (n,) int64, -1 when the face belongs to no track.
        identity: (n,) object array of the enrolled name, or None for unknown.
        distance: (n,) float32 distance to the matched (or nearest) enrolled encoding; NaN if none.
    """

    xyxy: np.ndarray
    score: np.ndarray
    landmarks: np.ndarray = None  # type: ignore[assignment]
    track_id: np.ndarray = None  # type: ignore[assignment]
    identity: np.ndarray = None  # type: ignore[assignment]
    distance: np.ndarray = None  # type: ignore[assignment]
    data: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(self.xyxy)
        # Re-sort corners: a tracker's prediction may swap them, and a swapped box masks nothing.
        if n:
            x = np.sort(self.xyxy[:, 0::2], axis=1)
            y = np.sort(self.xyxy[:, 1::2], axis=1)
            self.xyxy = np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], axis=1).astype(np.float32)
        self.score = np.asarray(self.score, dtype=np.float32).reshape(n)
        if self.landmarks is None:
            self.landmarks = np.full((n, 5, 2), np.nan, dtype=np.float32)
        self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(n, 5, 2)
        if self.track_id is None:
            self.track_id = np.full(n, -1, dtype=np.int64)
        self.track_id = np.asarray(self.track_id, dtype=np.int64).reshape(n)
        if self.identity is None:
            self.identity = np.full(n, None, dtype=object)
        self.identity = np.asarray(self.identity, dtype=object).reshape(n)
        if self.distance is None:
            self.distance = np.full(n, np.nan, dtype=np.float32)
        self.distance = np.asarray(self.distance, dtype=np.float32).reshape(n)
        for key, value in self.data.items():
            if len(value) != n:
                raise ValueError(f"data[{key!r}] has {len(value)} rows, expected {n}")

    @classmethod
    def empty(cls) -> "Faces":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> "Faces":
        """Select rows with a boolean mask, an index array or a slice."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Faces(
            self.xyxy[index],
            self.score[index],
            self.landmarks[index],
            self.track_id[index],
            self.identity[index],
            self.distance[index],
            {k: np.asarray(v)[index] for k, v in self.data.items()},
        )

    @classmethod
    def merge(cls, parts: list["Faces"]) -> "Faces":
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        keys = set.intersection(*(set(p.data) for p in parts))
        return cls(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.score for p in parts]),
            np.concatenate([p.landmarks for p in parts]),
            np.concatenate([p.track_id for p in parts]),
            np.concatenate([p.identity for p in parts]),
            np.concatenate([p.distance for p in parts]),
            {k: np.concatenate([np.asarray(p.data[k]) for p in parts]) for k in keys},
        )

    @property
    def width(self) -> np.ndarray:
        return self.xyxy[:, 2] - self.xyxy[:, 0]

    @property
    def height(self) -> np.ndarray:
        return self.xyxy[:, 3] - self.xyxy[:, 1]

    @property
    def enrolled(self) -> np.ndarray:
        """(n,) bool: True where a face was proven to be an enrolled person."""
        return np.array([i is not None for i in self.identity], dtype=bool)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of two xyxy box arrays."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)
