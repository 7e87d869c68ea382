"""Shared fixtures: where the real test media lives, and a guard against logged errors."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tests.helpers import shared_data_dir as _data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real media. Missing data is a failure under CI, a skip elsewhere."""
    path = _data_dir()
    if not (path / "MANIFEST.md").is_file():
        message = f"test media not found at {path}; set BLURCLI_TEST_DATA to the shared data folder"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def _isolated_gallery(tmp_path, monkeypatch):
    """Never touch the user's real gallery (or resume state) from a test."""
    monkeypatch.setenv("BLURCLI_GALLERY", str(tmp_path / "gallery-default.json"))
    monkeypatch.setenv("BLURCLI_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture(autouse=True)
def _no_error_logs(caplog):
    """A test that makes blurcli log an ERROR fails unless it asserts on that log itself."""
    caplog.set_level(logging.WARNING, logger="blurcli")
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and r.name.startswith("blurcli")]
    if errors and not getattr(caplog, "errors_expected", False):
        pytest.fail("blurcli logged errors: " + "; ".join(r.getMessage() for r in errors))
