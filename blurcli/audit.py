"""The audit record every report carries: what went in, what came out, with which code, models and settings.

A user can show later exactly what was published and why: the input's and the output's sha256
identify the files, the version and the model files' sha256 the code that decided, the settings
(gallery content included) what it was asked to do. The same record lets a rerun of a folder skip
the files already done (:mod:`blurcli.pipeline.resume`).
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
from pathlib import Path

from . import __version__

#: Settings fields that change how fast a file is done, never what is written: not compared.
EXECUTION_ONLY = frozenset({"threads"})

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@functools.cache
def _model_digest(path: str) -> str:
    return sha256_file(Path(path))


def model_digests(*, identity: bool, yunet: bool = False) -> dict[str, str]:
    """sha256 of each model file that took part: CenterFace always, dlib's when someone is enrolled,
    YuNet when it ran. Hashed once per process."""
    from .models import centerface_onnx, dlib_face_encoder, dlib_landmarks_5

    files = {"centerface": centerface_onnx()}
    if identity:
        files["dlib_face_encoder"] = dlib_face_encoder()
        files["dlib_landmarks_5"] = dlib_landmarks_5()
    if yunet:
        from .detect.yunet import yunet_weights

        files["yunet"] = yunet_weights()
    return {name: _model_digest(str(path)) for name, path in files.items()}


def _plain(value):
    """A settings value as JSON: enums by value, paths as strings, dataclasses as dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name not in EXECUTION_ONLY
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def settings_record(settings) -> dict:
    """The settings dataclass as the JSON a report holds, with the gallery's sha256 beside its path
    (enrolling someone changes what is kept, so it changes the work)."""
    record = _plain(settings)
    gallery = gallery_path(settings)
    if gallery is not None:
        record["identity"]["gallery"] = str(gallery)
        record["identity"]["gallery_sha256"] = sha256_file(gallery) if gallery.is_file() else None
    return record


def gallery_path(settings) -> Path | None:
    """The gallery file ``settings`` use (its default resolved), or None for settings without identity."""
    identity = getattr(settings, "identity", None)
    if identity is None:
        return None
    from .identity.gallery import default_path

    return Path(identity.gallery).expanduser() if identity.gallery is not None else default_path()


def input_digest(src: Path) -> str:
    """sha256 of an input file; an unreadable one is an InputError naming it."""
    try:
        return sha256_file(src)
    except OSError as exc:
        from .errors import InputError

        raise InputError(f"{src}: cannot read it ({exc.strerror or exc})") from None


def expected(settings, *, src: Path, identity: bool, yunet: bool = False, digest: str | None = None) -> dict:
    """The audit record of the work ``settings`` would do on ``src``, before any output exists.

    Args:
        identity: someone is enrolled (dlib's models take part).
        yunet: the second detector runs.
        digest: ``src``'s sha256 when the caller has it already.
    """
    digest = digest or input_digest(src)
    return {
        "blurcli_version": __version__,
        "input_sha256": digest,
        "output_sha256": None,
        "models": model_digests(identity=identity, yunet=yunet),
        "settings": settings_record(settings),
    }


def expected_of(redactor, settings, src: Path) -> dict:
    """:func:`expected` for the work a redactor (photo or video) does: dlib's models count when its
    matcher holds someone, YuNet's when the settings run it."""
    matcher = getattr(redactor, "matcher", None)
    detect = getattr(settings, "detect", None)
    return expected(
        settings, src=src, identity=matcher is not None and not matcher.empty, yunet=bool(getattr(detect, "yunet", False))
    )


def with_output(expected_record: dict, dst: Path) -> dict:
    """The audit record of a written output: ``expected_record`` (:func:`expected`) and the output's sha256."""
    return expected_record | {"output_sha256": sha256_file(dst)}


def same_work(old: dict | None, new: dict) -> bool:
    """True when ``old`` (a report's audit) was made from the same input with the same code, models
    and settings as ``new`` (the same keys, output hash aside)."""
    if not old:
        return False
    keys = ("blurcli_version", "input_sha256", "models", "settings")
    return all(old.get(key) == new.get(key) for key in keys)
