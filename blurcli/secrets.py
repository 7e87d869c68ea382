"""Mask stream keys and credentials wherever a URL could reach a log line, an error or a report.

An RTMP ingest URL is ``rtmp://host[:port]/app/STREAM_KEY``; everything after the application
name is the key. Credentials in ``user:password@`` and ``key=``/``token=`` query values are masked too.
"""
from __future__ import annotations

import logging
import re

MASK = "****"

_URL = re.compile(r"\b(rtmps?|rtsp|rtsps|srt|https?|udp|tcp)://[^\s'\"<>]+", re.IGNORECASE)
_USERINFO = re.compile(r"^([a-z0-9+.-]+://)[^/@\s]+@", re.IGNORECASE)
_QUERY_SECRET = re.compile(r"([?&](?:key|token|secret|password|passwd|pwd|auth|streamkey|sig)=)[^&#\s]+", re.IGNORECASE)


def _mask_url(url: str) -> str:
    url = _USERINFO.sub(lambda m: m.group(1) + MASK + "@", url)
    url = _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, url)
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("rtmp", "rtmps"):
        head, _, rest = url.partition("://")
        host, slash, path = rest.partition("/")
        app, slash2, key = path.partition("/")
        if slash2 and key:
            return f"{head}://{host}/{app}/{MASK}"
    return url


def mask_secrets(text: str) -> str:
    """Return ``text`` with every stream key, password and token in URLs replaced by ``****``."""
    if not text or "://" not in text:
        return text
    return _URL.sub(lambda m: _mask_url(m.group(0)), text)


class SecretMaskingFilter(logging.Filter):
    """Logging filter that masks secrets in the formatted message, its args and its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = mask_secrets(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            exc.args = tuple(mask_secrets(a) if isinstance(a, str) else a for a in exc.args)
        return True
