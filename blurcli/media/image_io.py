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
from PIL import Image, ImageOps, UnidentifiedImageError

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

_GPS_IFD = 0x8825
_ORIENTATION = 0x0112


@dataclass
class Picture:
    """A decoded picture.

    Attributes:
        bgr: (h, w, 3) uint8, upright.
        alpha: (h, w) uint8 alpha channel, or None.
        grey: True when the source had no colour (written back as greyscale).
        exif: the source's EXIF (Pillow ``Image.Exif``), orientation already applied to the pixels.
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
        raise InputError(f"{path} is a folder; give an image file (folders work as IN OUTDIR)")
    try:
        with open(path, "rb") as fh:
            head = fh.read(1)
    except PermissionError:
        raise InputError(f"{path}: permission denied; check the file's permissions") from None
    if not head:
        raise InputError(f"{path} is empty (0 bytes)")


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
                img = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = previous
        if img.width * img.height > max_pixels:
            raise InputError(
                f"{path} is {img.width}x{img.height} = {img.width * img.height:,} pixels, over the limit of "
                f"{max_pixels:,} (a decompression bomb?); raise it with --max-pixels if the file is trusted"
            )
        with img:
            exif = img.getexif()
            icc = img.info.get("icc_profile")
            fmt = img.format
            img.load()
            upright = ImageOps.exif_transpose(img) or img
            bgr, alpha, grey = _to_8bit(upright)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{path} is not an image Pillow can read (wrong extension or unsupported format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path} is corrupt or truncated: {exc}") from None
    if _ORIENTATION in exif:
        del exif[_ORIENTATION]  # the pixels are upright now
    return Picture(np.ascontiguousarray(bgr), alpha, grey, exif, icc, fmt)


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
    if not keep_location:
        strip_location(exif)
    else:
        gps = picture.exif.get_ifd(_GPS_IFD)
        if gps:
            exif[_GPS_IFD] = gps
    options: dict = {}
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF") and len(exif):
        options["exif"] = exif.tobytes()
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

