"""Review before publishing: ``blurcli review`` writes every decision to a page to check and edit,
and ``--plan`` renders the edited decisions (:mod:`.plan`), each file named by its sha256.

- :mod:`.collect`: the analysis of each file and the page's pictures (nothing redacted);
- :mod:`.page`: the self-contained HTML page;
- :mod:`.plan`: loading a plan and rendering it, nothing decided again.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import OutputError, PartialFailure
from ..media.atomic import atomic_output
from ..secrets import mask_secrets
from .collect import PRIVATE_FILE, Reviewed, review_files

__all__ = ["review", "Reviewed"]


def review(src: Path, out_dir: Path, photo_settings, video_settings, **events) -> list[Reviewed]:
    """Analyse ``src`` (a photo, a video or a folder) and write ``out_dir/report.json`` and
    ``out_dir/index.html``, both 0600 in a 0700 folder.

    ``report.json`` has the schema of ``--report``: one video's report, else a list of reports.
    ``events``: ``on_start``, ``on_file`` and ``progress``, see :func:`.collect.review_files`.

    Raises:
        BlurcliError: as ``blurcli photo``/``video``; PartialFailure when files of a folder failed
        (the page and report of the others are written).
    """
    from .page import render_page

    results, folder_mode = review_files(src, out_dir, photo_settings, video_settings, **events)
    dicts = [item.report.to_dict() for item in results]
    single_video = not folder_mode and "tracks" in dicts[0]
    report = dicts[0] if single_video else dicts
    text = mask_secrets(json.dumps(report, indent=2, default=str)) + "\n"
    page = render_page(report, [item.view for item in results], str(src))
    try:
        for name, content in (("report.json", text), ("index.html", page)):
            with atomic_output(Path(out_dir) / name, mode=PRIVATE_FILE) as tmp:
                tmp.write_text(content, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the review in {out_dir}: {exc.strerror or exc}") from None
    failed = [item.report for item in results if item.report.error]
    if failed:
        raise PartialFailure(
            f"{len(failed)} of {len(results)} files could not be reviewed; the page shows the others",
            [item.report for item in results],
        )
    return results
