"""Read pictures upright and write them back without location data.

Pillow decodes (it knows EXIF orientation, CMYK, 16-bit, palettes and bombs); the rest of
blurcli sees only 8-bit BGR numpy arrays, upright. Alpha is carried beside the picture and
written back untouched, so a transparent PNG stays transparent.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError, OutputError, UsageError
from .atomic import atomic_output

log = logging.getLogger("blurcli.image_io")

#: Default pixel limit: refuses decompression bombs (a 1 KB file that inflates to 10 GB).
DEFAULT_MAX_PIXELS = 100_000_000

#: Output format by suffix. Pillow can read more than this; we only write what we can write well.
WRITE_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP",
    ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
}
IMAGE_SUFFIXES = frozenset(WRITE_FORMATS)

#: Formats we decode, whatever the file's name says (JPEG includes multi-picture MPO files; only
#: their first picture is read). Pillow knows many more (EPS runs Ghostscript); we need none.
READ_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "DIB", "TIFF")

_GPS_IFD = 0x8825
_EXIF_IFD = 0x8769
_ORIENTATION = 0x0112
#: Descriptive IFD0 tags copied to outputs. Everything else in IFD0 is left out: TIFF structure
#: (strips, tiles, sub-images), XMP (0x02BC: may name the people and their face regions),
#: IPTC, Photoshop layer data (0x935C: the unredacted picture) and the IFD1 thumbnail.
_KEPT_IFD0 = frozenset({0x010E, 0x010F, 0x0110, 0x011A, 0x011B, 0x0128, 0x0131, 0x0132, 0x013B, 0x8298})
#: Exif sub-IFD tags never copied: the maker note (camera makers store preview JPEGs of the
#: whole picture in it), the interoperability pointer and padding.
_DROPPED_EXIF = frozenset({0x927C, 0xA005, 0xEA1C, 0xEA1D})  # + Microsoft padding


@dataclass
class Picture:
    """A decoded picture.

    Attributes:
        bgr: (h, w, 3) uint8, upright.
        alpha: (h, w) uint8 alpha channel, or None.
        grey: True when the source had no colour (written back as greyscale).
        exif: descriptive EXIF of the source (camera, date, exposure; GPS as a nested dict), detached
            from the file; no orientation (already applied to the pixels), no thumbnail, no maker note.
        icc_profile: the source's colour profile bytes, or None.
        source_format: Pillow's name of the source format (JPEG, PNG...).
    """

    bgr: np.ndarray
    alpha: np.ndarray | None = None
    grey: bool = False
    exif: Image.Exif = field(default_factory=Image.Exif)
    icc_profile: bytes | None = None
    source_format: str | None = None


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an image file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(1)
    except PermissionError:
        raise InputError(f"{path}: permission denied; check the file's permissions") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not head:
        raise InputError(f"{path} is empty (0 bytes)")


def _detached_exif(source: Image.Exif) -> Image.Exif:
    """The EXIF worth keeping, as plain values that no longer need the source file.

    Pillow reads the Exif and GPS sub-IFDs lazily from the open file; an ``Image.Exif`` copied
    from it cannot be written once the file is closed. Damaged sub-IFDs are dropped (metadata
    is optional; dropping it never exposes anyone).
    """
    kept = Image.Exif()
    for tag in _KEPT_IFD0 & set(source):
        kept[tag] = source[tag]
    for tag in (_EXIF_IFD, _GPS_IFD):
        try:
            ifd = dict(source.get_ifd(tag))
        except Exception as exc:  # corrupt offsets or types inside the EXIF block
            log.debug("dropping damaged EXIF IFD %#x: %s", tag, exc)
            continue
        if tag == _EXIF_IFD:
            ifd = {k: v for k, v in ifd.items() if k not in _DROPPED_EXIF}
        if ifd:
            kept[tag] = ifd
    return kept


def _to_8bit(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Convert any Pillow mode to (BGR uint8, alpha or None, was_grey)."""
    mode = img.mode
    alpha = None
    grey = mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
    if mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img)
        if arr.dtype != np.uint8:
            top = 65535.0 if arr.dtype.kind in "ui" and arr.max(initial=0) > 255 else 255.0
            arr = np.clip(arr.astype(np.float32) * (255.0 / top), 0, 255).astype(np.uint8)
        return cv2.cvtColor(arr, cv2.COLOR_GRAY2BGR), None, True
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"))
        alpha = np.ascontiguousarray(rgba[:, :, 3])
        return cv2.cvtColor(rgba[:, :, :3], cv2.COLOR_RGB2BGR), alpha, grey
    rgb = np.asarray(img.convert("RGB"))  # CMYK, YCbCr, P, 1, L, RGB, RGB;16 ...
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), None, grey


def load_picture(path: Path | str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode an image file, apply its EXIF orientation and convert it to 8-bit BGR.

    Args:
        path: the image file.
        max_pixels: refuse images with more pixels than this (decompression bombs).

    Raises:
        InputError: missing, a folder, unreadable, empty, not an image, corrupt, or over ``max_pixels``.
    """
    path = Path(path)
    _check_readable(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            previous = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None  # we enforce our own limit below, before decoding
            try:
                img = Image.open(path, formats=READ_FORMATS)
            finally:
                Image.MAX_IMAGE_PIXELS = previous
        with img:
            if img.width * img.height > max_pixels:
                raise InputError(
                    f"{path} is {img.width}x{img.height} = {img.width * img.height:,} pixels, over the limit of "
                    f"{max_pixels:,} (a decompression bomb?); raise it with --max-pixels if the file is trusted"
                )
            raw_exif = _raw_exif(img)
            exif = _detached_exif(raw_exif)
            # A CMYK profile describes the source's inks, not the RGB pixels we write.
            icc = img.info.get("icc_profile") if img.mode != "CMYK" else None
            fmt = img.format
            img.load()
            upright = _upright(img, raw_exif.get(_ORIENTATION))
            bgr, alpha, grey = _to_8bit(upright)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(
            f"{path} is not an image blurcli can read (JPEG, PNG, WebP, BMP or TIFF); check the file and its extension"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path} is corrupt or truncated ({exc}); re-export or copy it again") from None
    except Exception as exc:  # a decoder tripping over hostile data: still a bad input, never a crash
        raise InputError(
            f"{path} cannot be decoded ({type(exc).__name__}: {exc}); the file is damaged or unusual"
        ) from exc
    return Picture(np.ascontiguousarray(bgr), alpha, grey, exif, icc, fmt)


#: EXIF orientation -> the transpose that makes the picture upright (as ImageOps.exif_transpose).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _raw_exif(img: Image.Image) -> Image.Exif:
    """The file's EXIF (orientation from XMP included, as Pillow reads it); empty when it is unreadable."""
    try:
        return img.getexif()
    except Exception as exc:
        log.debug("ignoring unreadable EXIF: %s", exc)
        return Image.Exif()


def _upright(img: Image.Image, orientation) -> Image.Image:
    """Apply an EXIF orientation. ImageOps.exif_transpose is not used: it re-encodes the EXIF
    block, and fails (TypeError) on damaged EXIF that the picture itself survives."""
    method = _TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
    return img.transpose(method) if method is not None else img


def read_image(path: Path | str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(h, w, 3) uint8 BGR, upright. See :func:`load_picture`."""
    return load_picture(path, max_pixels=max_pixels).bgr


def output_format(path: Path | str) -> str:
    """Pillow format name for an output path, or UsageError for an unknown suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in WRITE_FORMATS:
        known = ", ".join(sorted(WRITE_FORMATS))
        raise UsageError(f"cannot write images with extension {suffix or '(none)'!r} ({path}); use one of {known}")
    return WRITE_FORMATS[suffix]


def strip_location(exif: Image.Exif) -> Image.Exif:
    """Remove the GPS block (latitude, longitude, altitude, time, area...) from EXIF."""
    if _GPS_IFD in exif:
        del exif[_GPS_IFD]
    return exif


def write_picture(path: Path | str, picture: Picture, bgr: np.ndarray, *, keep_location: bool = False) -> None:
    """Write ``bgr`` (with the source's alpha, EXIF and colour profile) atomically to ``path``.

    Location tags are removed unless ``keep_location``; XMP is never copied (it may hold location too).

    Raises:
        UsageError: unknown output extension.
        OutputError: the folder is missing or not writable, or the disk is full.
    """
    path = Path(path)
    fmt = output_format(path)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if picture.grey and picture.alpha is None:
        img = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), "L")
    elif picture.alpha is not None and fmt in ("PNG", "WEBP", "TIFF"):
        img = Image.fromarray(np.dstack([rgb, picture.alpha]), "RGBA")
    else:
        img = Image.fromarray(rgb, "RGB")
    exif = Image.Exif()
    exif.update(picture.exif)
    exif.pop(_ORIENTATION, None)  # the pixels are upright
    if not keep_location:
        strip_location(exif)
    options: dict = {}
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF") and len(exif):
        try:
            options["exif"] = exif.tobytes()
        except Exception as exc:  # a value Pillow cannot encode: the picture matters, not its metadata
            log.warning("%s: EXIF left out (%s)", path, exc)
    if picture.icc_profile and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["icc_profile"] = picture.icc_profile
    if fmt == "JPEG":
        options.update(quality=95, subsampling=0 if picture.source_format == "PNG" else -1)
    if fmt == "WEBP":
        options.update(quality=95)
    try:
        with atomic_output(path) as tmp:
            img.save(tmp, format=fmt, **options)
    except OSError as exc:
        if isinstance(exc, (PermissionError, FileNotFoundError)) or exc.errno is not None:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise

