"""Resume a folder run: a file is done when its output exists and its kept report shows the same work.

Every file a folder run writes gets its report kept in blurcli's private state folder (never in
the output folder, which a user publishes: reports name the enrolled people found), one folder per
output folder, same relative names. Rerunning the folder skips a file when that report's audit
record (:mod:`blurcli.audit`) names the same input sha256, blurcli version, models and settings
(gallery content included) and the output still has the sha256 it was written with; anything else
is done again. An interrupted run of a big archive therefore picks up where it stopped, and
nothing half-done is ever taken for done (outputs are renamed into place only when complete).

The driver reads and writes the kept reports; the workers (which may be other machines) only
compare and hash, so that the hashing of a big archive is spread like the work.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path

from .. import audit
from ..media.atomic import atomic_output

log = logging.getLogger("blurcli.resume")

#: Overrides where the kept reports live (tests; a shared location for a cluster's driver).
STATE_ENV = "BLURCLI_STATE_DIR"


def state_dir() -> Path:
    """``$BLURCLI_STATE_DIR``, else blurcli's folder in the user's state directory."""
    env = os.environ.get(STATE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_state_dir("blurcli", appauthor=False))


def ledger_for(dst_root: Path, dst: Path) -> Path:
    """Where the report of the output ``dst`` (under the output folder ``dst_root``) is kept."""
    root = Path(os.path.abspath(dst_root))
    rel = Path(os.path.abspath(dst)).relative_to(root)
    folder = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return state_dir() / "runs" / folder / "reports" / rel.with_name(rel.name + ".json")


def previous(ledger: Path | None) -> dict | None:
    """The report kept at ``ledger`` by an earlier run, or None (missing, unreadable, a failure)."""
    if ledger is None:
        return None
    try:
        report = json.loads(Path(ledger).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or report.get("error") or not isinstance(report.get("audit"), dict):
        return None
    return report


def finished(report: dict | None, dst: Path, expected: dict) -> bool:
    """True when the kept ``report`` already holds the work ``expected`` describes and ``dst`` is
    still the file it wrote.

    Args:
        expected: the audit record this run would write, without the output's sha256
            (:func:`blurcli.audit.expected`).
    """
    if report is None or not Path(dst).is_file():
        return False
    old = report["audit"]
    if not audit.same_work(old, expected):
        return False
    with contextlib.suppress(OSError):
        if audit.sha256_file(dst) == old.get("output_sha256"):
            return True
    log.debug("%s changed since it was written; doing it again", dst)
    return False


def keep(ledger: Path, report: dict) -> None:
    """Keep a written file's report for the next run (atomically, private; a failure only costs a redo)."""
    ledger = Path(ledger)
    try:
        state = state_dir()
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        ledger.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with atomic_output(ledger, mode=0o600) as tmp:
            tmp.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    except OSError as exc:
        log.warning("cannot keep the report of %s for resuming (%s); a rerun will redo it", report.get("output"), exc)
