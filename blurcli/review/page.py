"""The review page: one self-contained HTML file (its CSS, script and data inline; the thumbnails
beside it), that works from ``file://`` with no network. Its content security policy forbids
loading anything from elsewhere, so a page full of unblurred faces cannot call out."""
from __future__ import annotations

import json
from importlib import resources

_ASSETS = resources.files(__package__) / "assets"


def _asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


def _script_json(payload) -> str:
    """JSON safe inside a <script> element: no '<' can close it or open a comment."""
    return json.dumps(payload, default=str).replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render_page(report, views: list[dict], title: str) -> str:
    """The page's HTML.

    Args:
        report: what ``report.json`` holds (one video's report, or a list of reports).
        views: per report (in order) its thumbnails and stills (see :class:`~.collect.Reviewed`).
        title: shown in the title bar (the reviewed path).
    """
    from html import escape

    html = _asset("page.html")
    parts = {
        "__TITLE__": escape(title),
        "__CSS__": _asset("page.css"),
        "__JS__": _asset("page.js"),
        "__DATA__": _script_json({"report": report, "views": views}),
    }
    for key, value in parts.items():
        html = html.replace(key, value)
    return html
