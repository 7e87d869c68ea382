"""The gallery: who is enrolled, as face encodings in one private JSON file.

Only names, dates and 128-number encodings are stored: never a photo, a crop or a file path.
The file is written atomically (temp file beside it, fsync, rename) with mode 0600, and every
write re-reads the file under a lock and replays this process's changes onto it, so two
``blurcli enroll`` runs at once both land. A missing file is an empty gallery; a file that cannot
be parsed is an error, never silently replaced.
"""
from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import re
import stat
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import GalleryError
from ..settings import DEFAULT_TOLERANCE
from .encoder import DIMENSIONS
from .matcher import Matcher

log = logging.getLogger("blurcli.gallery")

#: Environment variable naming the gallery file (``--gallery`` wins over it).
ENV_VAR = "BLURCLI_GALLERY"
FORMAT = "blurcli-gallery"
VERSION = 1
#: Which encoder the numbers come from; encodings of another model are not comparable.
ENCODER_ID = "dlib_face_recognition_resnet_model_v1+shape_predictor_5_face_landmarks"
#: How long a writer waits for another one to finish before giving up.
LOCK_TIMEOUT_S = 30.0
MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class Person:
    """One enrolled person, as listed by ``blurcli faces``.

    Attributes:
        name: the name given at enrolment.
        samples: number of stored encodings (one per enrolled photo).
        created: when the person was first enrolled (UTC).
        updated: when samples were last added (UTC).
    """

    name: str
    samples: int
    created: datetime
    updated: datetime


@dataclass
class _Entry:
    encodings: np.ndarray  # (k, 128) float32
    created: datetime
    updated: datetime


def default_path() -> Path:
    """``$BLURCLI_GALLERY`` if set, else ``gallery.json`` in the user's data folder."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("blurcli", appauthor=False)) / "gallery.json"


def lock_path(path: Path) -> Path:
    """The lock file beside a gallery (hidden; empty; left in place, as lock files are)."""
    return path.with_name(f".{path.name}.lock")


def check_name(name: str) -> str:
    """The name, stripped; raises GalleryError when it is empty, too long or has control characters."""
    cleaned = unicodedata.normalize("NFC", str(name)).strip()
    if not cleaned:
        raise GalleryError("a person's name cannot be empty; give one with --name")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise GalleryError(f"a person's name must be at most {MAX_NAME_LENGTH} characters, got {len(cleaned)}")
    if any(unicodedata.category(ch).startswith("C") for ch in cleaned):
        raise GalleryError(f"a person's name cannot contain control characters: {cleaned!r}")
    return cleaned


class Gallery:
    """Enrolled people and their encodings, backed by one JSON file.

    Changes (:meth:`add`, :meth:`forget`) stay in memory until :meth:`save`, which merges them
    into whatever the file holds by then.

    Example:
        >>> gallery = Gallery.open(None)                   # doctest: +SKIP
        >>> gallery.add("me", encodings); gallery.save()   # doctest: +SKIP
        >>> names, distances = gallery.matcher(0.45).match(face_encodings)  # doctest: +SKIP
    """

    def __init__(self, path: Path, entries: dict[str, _Entry] | None = None):
        self.path = Path(path)
        self._entries: dict[str, _Entry] = dict(entries or {})
        self._pending: list[tuple] = []

    @classmethod
    def open(cls, path: Path | str | None = None) -> "Gallery":
        """Read a gallery; a missing file is an empty gallery (nothing is created until save).

        Args:
            path: the gallery file; None: :func:`default_path`.

        Raises:
            GalleryError: the file exists but cannot be read or parsed.
        """
        path = Path(path).expanduser() if path is not None else default_path()
        gallery = cls(path, _read(path))
        log.debug("gallery %s: %d people", path, len(gallery._entries))
        return gallery

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: str) -> bool:
        try:
            self._entry(name)
        except GalleryError:
            return False
        return True

    def people(self) -> list[Person]:
        """Everyone enrolled, in enrolment order."""
        return [Person(name, len(e.encodings), e.created, e.updated) for name, e in self._entries.items()]

    def encodings(self, name: str) -> np.ndarray:
        """(k, 128) float32 encodings of one person (a copy)."""
        return self._entry(name).encodings.copy()

    def add(self, name: str, encodings: np.ndarray) -> Person:
        """Add samples to a person, creating them if new. Saved by :meth:`save`.

        Args:
            name: who these faces are.
            encodings: (k, 128) or (128,) finite encodings from :class:`FaceEncoder`.

        Returns:
            The person as they are now in memory.

        Raises:
            GalleryError: bad name; ValueError: encodings of the wrong shape or not finite.
        """
        name = check_name(name)
        enc = _check_encodings(encodings)
        now = _now()
        self._apply_add(self._entries, name, enc, now)
        self._pending.append(("add", name, enc, now))
        entry = self._entries[name]
        return Person(name, len(entry.encodings), entry.created, entry.updated)

    def forget(self, name: str) -> Person:
        """Remove a person and every encoding of theirs. Saved by :meth:`save`.

        Returns:
            The person as they were before removal.

        Raises:
            GalleryError: nobody of that name is enrolled (the message lists who is).
        """
        entry = self._entry(name)
        name = next(n for n, e in self._entries.items() if e is entry)
        del self._entries[name]
        self._pending.append(("forget", name))
        return Person(name, len(entry.encodings), entry.created, entry.updated)

    def matcher(self, tolerance: float = DEFAULT_TOLERANCE) -> Matcher:
        """A :class:`Matcher` over everyone enrolled now (empty when nobody is)."""
        names = list(self._entries)
        return Matcher(names, [self._entries[n].encodings for n in names], tolerance)

    def save(self) -> None:
        """Merge this gallery's changes into the file, atomically and under a lock.

        The file is re-read under the lock and the changes replayed onto it, so a person
        enrolled meanwhile by another process is kept. The directory is created (0700) if
        missing; the file is always written with mode 0600.

        Raises:
            GalleryError: the file became unreadable, the lock was held too long, or the
                folder is not writable. The previous file is then untouched.
        """
        if not self._pending:
            return
        import filelock

        _make_private_dir(self.path.parent)
        lock = filelock.FileLock(lock_path(self.path), timeout=LOCK_TIMEOUT_S, mode=0o600)
        try:
            with lock:
                _remove_stale_temps(self.path)
                entries = _read(self.path)
                for op in self._pending:
                    if op[0] == "add":
                        self._apply_add(entries, *op[1:])
                    else:
                        entries.pop(op[1], None)  # already gone is fine: the goal is reached
                _write(self.path, entries)
        except filelock.Timeout:
            raise GalleryError(
                f"the gallery {self.path} is locked by another blurcli process for over {LOCK_TIMEOUT_S:.0f} s; "
                "try again when it has finished"
            ) from None
        except OSError as exc:  # the lock file cannot be created (read-only folder)
            raise GalleryError(f"cannot lock the gallery {self.path}: {exc.strerror or exc}; it was left unchanged") from None
        self._entries = entries
        self._pending.clear()

    def _entry(self, name: str) -> _Entry:
        entry = self._entries.get(name)
        if entry is None:
            name = check_name(name)
            entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(repr(n) for n in self._entries) or "nobody"
            raise GalleryError(f"{name!r} is not enrolled in {self.path}; enrolled: {known}")
        return entry

    @staticmethod
    def _apply_add(entries: dict[str, _Entry], name: str, enc: np.ndarray, when: datetime) -> None:
        entry = entries.get(name)
        if entry is None:
            entries[name] = _Entry(enc.copy(), when, when)
        else:
            entry.encodings = np.concatenate([entry.encodings, enc])
            entry.updated = max(entry.updated, when)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _utc(moment: datetime) -> datetime:
    """Dates without a zone (a hand-edited file) are taken as UTC, so they compare with ours."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _check_encodings(encodings) -> np.ndarray:
    enc = np.asarray(encodings, dtype=np.float32)
    if enc.ndim == 1:
        enc = enc[None]
    if enc.ndim != 2 or enc.shape[1] != DIMENSIONS or len(enc) == 0:
        raise ValueError(f"encodings must have shape (k, {DIMENSIONS}) with k >= 1, got {enc.shape}")
    if not np.isfinite(enc).all():
        raise ValueError("encodings must be finite (a NaN row means no face was encoded)")
    return enc


def _corrupt(path: Path, why: str) -> GalleryError:
    return GalleryError(
        f"the gallery {path} is damaged ({why}); blurcli will not overwrite it. Move it away "
        "(and re-enroll) or restore a backup, or pass another file with --gallery"
    )


def _read(path: Path) -> dict[str, _Entry]:
    """Parse the gallery file; {} when it does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise GalleryError(f"the gallery path {path} is a folder; give a file path with --gallery") from None
    except PermissionError:
        raise GalleryError(f"cannot read the gallery {path}: permission denied") from None
    except OSError as exc:
        raise GalleryError(f"cannot read the gallery {path}: {exc.strerror}") from None
    _warn_if_shared(path)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _corrupt(path, f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _corrupt(path, "not a blurcli gallery file")
    version = doc.get("version")
    if not isinstance(version, int) or version < 1:
        raise _corrupt(path, f"bad version field {version!r}")
    if version > VERSION:
        raise GalleryError(f"the gallery {path} was written by a newer blurcli (format {version}); upgrade blurcli")
    if doc.get("encoder") != ENCODER_ID:
        raise GalleryError(
            f"the gallery {path} holds encodings of another face model ({doc.get('encoder')!r}); "
            "they cannot be compared with this blurcli's. Re-enroll into a new gallery file"
        )
    people = doc.get("people")
    if not isinstance(people, list):
        raise _corrupt(path, "'people' is not a list")
    entries: dict[str, _Entry] = {}
    for i, item in enumerate(people):
        try:
            name = check_name(item["name"])
            enc = _check_encodings(item["encodings"])
            created = _utc(datetime.fromisoformat(item["created"]))
            updated = _utc(datetime.fromisoformat(item["updated"]))
        except (KeyError, TypeError, ValueError, GalleryError) as exc:
            raise _corrupt(path, f"entry {i}: {exc}") from None
        if name in entries:
            raise _corrupt(path, f"{name!r} appears twice")
        entries[name] = _Entry(enc, created, updated)
    return entries


def _warn_if_shared(path: Path) -> None:
    with contextlib.suppress(OSError):
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            log.warning("the gallery %s can be read by other users; it will be saved as 0600 on the next change", path)


def _document(entries: dict[str, _Entry]) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "encoder": ENCODER_ID,
        "people": [
            {
                "name": name,
                "created": e.created.isoformat(),
                "updated": e.updated.isoformat(),
                # 6 decimals: float32 precision is ~7 digits, distances are read to 0.001.
                "encodings": np.round(e.encodings.astype(np.float64), 6).tolist(),
            }
            for name, e in entries.items()
        ],
    }


def _make_private_dir(folder: Path) -> None:
    """Create the gallery's folder 0700 if missing; an existing folder is left as it is."""
    if folder.is_dir():
        return
    try:
        folder.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask
    except OSError as exc:
        raise GalleryError(f"cannot create the gallery folder {folder}: {exc.strerror}") from None


# A list of numbers as json.dumps(indent=1) writes it: "[" and "]" on their own lines. Strings
# never hold a raw newline in JSON, so a name that looks like a list is never touched.
_NUMBER_LIST = re.compile(r"\[\n\s*((?:-?[0-9.eE+-]+,\n\s*)*-?[0-9.eE+-]+)\n\s*\]")


def _write(path: Path, entries: dict[str, _Entry]) -> None:
    """Write atomically: a 0600 temp file beside ``path``, fsync, rename; never a partial file."""
    document = _document(entries)
    # One line per encoding rather than one per number; plain JSON if that ever changed the data.
    text = _NUMBER_LIST.sub(lambda m: "[" + ", ".join(m.group(1).replace(",", " ").split()) + "]", json.dumps(document, indent=1))
    if json.loads(text) != document:
        text = json.dumps(document)
    data = (text + "\n").encode("utf-8")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise GalleryError(f"cannot write the gallery in {path.parent}: {exc.strerror}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):  # mkstemp already makes it 0600; be explicit where we can
                os.fchmod(fh.fileno(), 0o600)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise GalleryError(f"cannot write the gallery {path}: {exc.strerror or exc}; it was left unchanged") from None
        raise
    _fsync_dir(path.parent)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def _remove_stale_temps(path: Path) -> None:
    """Delete temp files a killed writer left behind; safe because temps are only made under the lock."""
    for stale in path.parent.glob(f"{glob.escape(_temp_prefix(path))}*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()
            log.debug("removed %s, left by an interrupted save", stale)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (best effort: not every platform can open a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
