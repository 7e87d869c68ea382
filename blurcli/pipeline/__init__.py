"""The photo and video pipelines, and how a folder's files are run (batch, resume, Ray)."""
from __future__ import annotations

from dataclasses import fields


def known_fields(cls, data: dict) -> dict:
    """The items of ``data`` that are fields of the dataclass ``cls`` (reports read back from JSON)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}
