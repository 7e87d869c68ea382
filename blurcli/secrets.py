"""Mask stream keys and credentials wherever a URL could reach a log line, an error or a report.

An RTMP ingest URL is ``rtmp://host[:port]/app/STREAM_KEY``; everything after the application
name is the key (for every RTMP flavour FFmpeg knows: rtmp, rtmps, rtmpt, rtmpe, rtmpte, rtmpts,
also when the URL is mistyped as ``rtmp:/host/...``). In any URL, credentials in
``user:password@`` and the values of query parameters whose name says key, token, secret,
password, signature or stream id are masked too.

The CLI also hands every URL it was given to :func:`learn_secrets`: from then on the bare key
is masked as well, e.g. in an error message that quotes only part of the URL.
"""
from __future__ import annotations

import logging
import re
import threading

MASK = "****"

#: Learned secrets shorter than this are masked inside URLs only: masking a 2-letter password
#: everywhere would garble ordinary words.
MIN_REMEMBERED = 4

_RTMP_SCHEMES = ("rtmp", "rtmps", "rtmpt", "rtmpe", "rtmpte", "rtmpts")
# A URL: a scheme with "://" (any scheme), or an RTMP scheme with fewer slashes (a typo still
# carries the key). Trailing punctuation belongs to the sentence, not to the URL.
_URL = re.compile(
    r"(?<![\w+.-])(?:[a-z][a-z0-9+.-]{1,15}://|(?:rtmpte|rtmpts|rtmps|rtmpt|rtmpe|rtmp):/?)"
    r"[^\s'\"<>`]*[^\s'\"<>`.,;:!?)\]}]",
    re.IGNORECASE,
)
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):(/*)", re.IGNORECASE)
_QUERY_SECRET = re.compile(
    r"([?&#;][\w.-]*(?:key|token|secret|pass|pwd|auth|sig|streamid|session)[\w.-]*=)([^&#;\s]+)", re.IGNORECASE
)

_remembered: set[str] = set()
_lock = threading.Lock()


def _remember(secret: str, learn: bool) -> None:
    if learn and len(secret) >= MIN_REMEMBERED and secret != MASK:
        with _lock:
            _remembered.add(secret)


def _mask_url(url: str, learn: bool = False) -> str:
    scheme_match = _SCHEME.match(url)
    if not scheme_match:
        return url
    head, rest = url[: scheme_match.end()], url[scheme_match.end() :]
    if len(scheme_match.group(2)) >= 3:  # "rtmp:///app/KEY": no host, the path starts at once
        head, rest = head[:-1], "/" + rest
    authority, slash, path = rest.partition("/")
    if "@" in authority:  # user:password@host (the last @ before the path separates them)
        userinfo, _, host = authority.rpartition("@")
        user, colon, password = userinfo.partition(":")
        _remember(password if colon else user, learn)  # a lone userinfo is usually a token
        authority = f"{MASK}@{host}"
    rest = authority + slash + path

    def query(match: re.Match) -> str:
        _remember(match.group(2), learn)
        return match.group(1) + MASK

    rest = _QUERY_SECRET.sub(query, rest)
    if scheme_match.group(1).lower() in _RTMP_SCHEMES:
        authority, slash, path = rest.partition("/")
        app, slash2, key = path.partition("/")
        if slash2 and key:
            _remember(key, learn)
            _remember(key.split("?", 1)[0], learn)
            return f"{head}{authority}/{app}/{MASK}"
    return head + rest


def learn_secrets(text: str) -> None:
    """Remember the secrets inside every URL of ``text`` (e.g. a command-line argument)."""
    if text and ":" in text:
        for match in _URL.finditer(text):
            _mask_url(match.group(0), learn=True)


def register_secret(secret: str) -> None:
    """Mask ``secret`` wherever it appears from now on (a stream key given on its own)."""
    _remember(str(secret), True)


def forget_secrets() -> None:
    """Drop every learned secret (a new command starts with only its own)."""
    with _lock:
        _remembered.clear()


def mask_secrets(text: str) -> str:
    """Return ``text`` with every stream key, password and token replaced by ``****``.

    Masks keys and credentials inside URLs, and every learned secret anywhere in the text.
    """
    if not text:
        return text
    if ":" in text:
        text = _URL.sub(lambda m: _mask_url(m.group(0)), text)
    if _remembered:
        with _lock:
            known = sorted(_remembered, key=len, reverse=True)
        for secret in known:
            if secret in text:
                text = text.replace(secret, MASK)
    return text


def mask_exception(exc: BaseException | None) -> None:
    """Mask secrets in an exception, its cause and context chain, in place (args, file names, notes).

    ``str(OSError)`` is built from ``filename``, not from ``args``; FFmpeg errors carry the URL there.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        try:
            exc.args = tuple(mask_secrets(a) if isinstance(a, str) else a for a in exc.args)
        except (TypeError, AttributeError):
            pass
        for name in ("filename", "filename2", "url", "msg", "strerror"):
            value = getattr(exc, name, None)
            if isinstance(value, str):
                try:
                    setattr(exc, name, mask_secrets(value))
                except (AttributeError, TypeError):
                    pass
        notes = getattr(exc, "__notes__", None)
        if isinstance(notes, list):
            notes[:] = [mask_secrets(n) if isinstance(n, str) else n for n in notes]
        exc = exc.__cause__ or exc.__context__


class SecretMaskingFilter(logging.Filter):
    """Logging filter that masks secrets in the formatted message, its args and its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = mask_secrets(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            mask_exception(record.exc_info[1])
        if record.exc_text:  # formatted earlier by another handler, before masking
            record.exc_text = mask_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info)
        return True
