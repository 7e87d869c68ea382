"""One progress display for a whole run of files, however many workers do them at once."""
from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.progress import Progress


class FilesProgress:
    """A bar of files done (when there are several), and one bar per file being worked on.

    Workers report in any order (``--jobs``, ``--ray``); each file's bar shows its current stage
    (``analysing``, ``writing``) and goes when the file is done.
    """

    def __init__(self, progress: Progress, noun: str) -> None:
        self.progress = progress
        self.noun = noun
        self.files = None
        self.bars: dict[Path, tuple[int, str]] = {}

    def start(self, count: int) -> None:
        if count > 1:
            self.files = self.progress.add_task(self.noun, total=count)

    def begin(self, src: Path) -> None:
        self.frames(src, "starting", 0, None)

    def frames(self, src: Path, stage: str, done: int, total) -> None:
        bar = self.bars.get(src)
        if bar is None or bar[1] != stage:
            if bar is not None:
                self.progress.remove_task(bar[0])
            bar = (self.progress.add_task(f"{stage} {escape(Path(src).name)}", total=total), stage)
            self.bars[src] = bar
        self.progress.update(bar[0], completed=done, total=total)

    def file(self, report) -> None:
        bar = self.bars.pop(Path(report.input), None)
        if bar is not None:
            self.progress.remove_task(bar[0])
        if self.files is not None:
            self.progress.update(self.files, advance=1)
