"""Spread a folder's files over workers: this process, a local process pool (``--jobs``) or Ray actors (``--ray``).

The one place for how files are run, whatever runs them:

- each worker builds its redactor once (the models load once per worker) and does whole files,
  each written atomically by the worker itself (the file systems are shared);
- a file whose output and kept report already show the same work is skipped (:mod:`.resume`);
- every report carries its audit record (:mod:`blurcli.audit`);
- a bad file is a failure report, never the end of the run; a worker that dies has its file
  retried on a fresh worker, at most :data:`MAX_ATTEMPTS` times, and the temp file it left is removed;
- reports come back in input order whatever order the files finished in;
- Ctrl-C (or SIGTERM) stops every worker, removes what they were writing and re-raises.

Outputs do not depend on the engine: a worker decides exactly as ``--jobs 1`` does, and its
thread budget (cores / jobs) goes to the detector only. x264/x265 keep their own automatic thread
count, which follows the machine (their bitstream depends on it), so that ``--jobs 2`` writes the
same bytes as ``--jobs 1`` on one machine; Ray nodes with different core counts write different
bitstreams of the same decisions.
"""
from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import signal
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from .. import audit
from ..errors import EXIT_INTERRUPTED, BlurcliError, UsageError
from ..media.atomic import remove_stale_parts
from ..secrets import mask_secrets
from . import resume

log = logging.getLogger("blurcli.batch")

#: Times a file is tried on a fresh worker after its worker died (killed, out of memory, node lost).
MAX_ATTEMPTS = 3

#: Cores one file keeps busy in one process (decode, detect and encode overlap in threads): measured
#: on 2 cores with benchmarks/scale.py; ``--jobs`` defaults to cores / this.
CORES_PER_FILE = 2

#: Frame progress is sent from a worker at most this often (seconds).
PROGRESS_EVERY_S = 0.25

#: Environment variable a worker's thread budget is handed down by (read by the detector backends).
THREADS_ENV = "BLURCLI_THREADS"


def default_jobs(cores: int | None = None) -> int:
    """Files at once on this machine: as many as its cores keep busy at :data:`CORES_PER_FILE` each."""
    from ..detect.backends.base import cpu_count

    return max(1, (cores or cpu_count()) // CORES_PER_FILE)


@dataclass(frozen=True)
class Task:
    """One file to do.

    Attributes:
        ledger: where the driver keeps its report for resuming (folder mode), or None.
        previous: the report an earlier run kept there (the worker decides whether it still holds).
    """

    index: int
    src: Path
    dst: Path
    ledger: Path | None = None
    previous: dict | None = None


def tasks_for(pairs: list[tuple[Path, Path]], dst_root: Path, *, folder_mode: bool, force: bool = False) -> list[Task]:
    """One task per (input, output); in folder mode each keeps its report for resuming, and
    (unless ``force``) carries the one an earlier run kept."""
    tasks = []
    for i, (src, out) in enumerate(pairs):
        ledger = resume.ledger_for(dst_root, out) if folder_mode else None
        tasks.append(Task(i, src, out, ledger, None if force else resume.previous(ledger)))
    return tasks


@dataclass(frozen=True)
class WorkerSpec:
    """How a worker builds its redactor; picklable, so that a pool process or a Ray actor builds its own.

    Attributes:
        factory: ``factory(settings)`` returns an object with ``redact_file(src, dst[, progress])``
            and ``matcher`` (PhotoRedactor, VideoRedactor).
        settings: the command's settings.
        report_type: the report class (``from_dict``, and ``report_type(src, dst, error=...)``).
        frames: ``redact_file`` takes a frame-progress callback (videos).
        threads: cores one worker may use (0: all of this machine).
        audit: write audit records and resume ledgers (not for previews).
    """

    factory: Callable
    settings: object
    report_type: type
    frames: bool = False
    threads: int = 0
    audit: bool = True


class Worker:
    """Builds the redactor once and does whole files with it (in this process, a pool process or an actor)."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        if spec.threads:  # the detector's share of the cores; the encoder keeps its own count, see above
            os.environ[THREADS_ENV] = str(spec.threads)
        self.redactor = spec.factory(spec.settings)

    def _expected(self, src: Path) -> dict:
        """The audit record of this worker's work on ``src``: dlib's models count when someone is
        enrolled, YuNet's when it runs; a redactor that decides otherwise (a plan) makes its own."""
        own = getattr(self.redactor, "audit_record", None)
        if own is not None:
            return own(src)
        return audit.expected_of(self.redactor, self.spec.settings, src)

    def run(self, task: Task, progress: Callable | None = None):
        """Do one file (or find it done); errors are raised."""
        spec = self.spec
        expected = None
        if spec.audit and task.previous is not None:
            expected = self._expected(task.src)
            if resume.finished(task.previous, task.dst, expected):
                report = spec.report_type.from_dict(task.previous)
                report.input, report.output, report.skipped = str(task.src), str(task.dst), True
                return report
        remove_stale_parts(task.dst)
        if spec.frames:
            report = self.redactor.redact_file(task.src, task.dst, progress)
        else:
            report = self.redactor.redact_file(task.src, task.dst)
        report.__dict__.pop("plan", None)  # harness-only attribute, large: not sent between processes
        if spec.audit:
            report.audit = audit.with_output(expected or self._expected(task.src), task.dst)
        return report

    def run_safely(self, task: Task, progress: Callable | None = None):
        """:meth:`run`, a BlurcliError turned into the file's failure report (folder mode)."""
        try:
            return self.run(task, progress)
        except BlurcliError as exc:
            message = mask_secrets(str(exc))
            log.warning("skipped %s", message if str(task.src) in message else f"{task.src}: {message}")
            return self.spec.report_type(str(task.src), str(task.dst), error=message)


@dataclass
class Events:
    """What the caller is told, all in the calling thread.

    Attributes:
        begin: ``begin(src)`` when a worker starts a file.
        frames: ``frames(src, stage, done, total)`` as a worker goes through a file's frames.
        file: ``file(report)`` when a file is done (its ``error`` set when it failed).
    """

    begin: Callable[[Path], None] | None = None
    frames: Callable[[Path, str, int, "int | None"], None] | None = None
    file: Callable[[object], None] | None = None

    def on_begin(self, src: Path) -> None:
        if self.begin:
            self.begin(src)

    def on_frames(self, src: Path, stage: str, done: int, total) -> None:
        if self.frames:
            self.frames(src, stage, done, total)

    def on_file(self, report) -> None:
        if self.file:
            self.file(report)

    def on_message(self, item: tuple, tasks: dict) -> None:
        """A worker's ``("begin", index)`` or ``("frames", index, stage, done, total)`` (see
        :class:`_Throttled`), ``tasks`` mapping indexes to the tasks as the user named them."""
        if item[0] == "begin":
            self.on_begin(tasks[item[1]].src)
        elif item[0] == "frames":
            _, index, stage, done, total = item
            self.on_frames(tasks[index].src, stage, done, total)


def run_tasks(
    tasks: list[Task],
    spec: WorkerSpec,
    *,
    folder_mode: bool,
    jobs: int = 1,
    ray_address: str | None = None,
    events: Events | None = None,
) -> list:
    """Do every task; the reports in input order.

    Args:
        folder_mode: a failed file is a failure report (else its error is raised, file mode).
        jobs: files at once (processes, or Ray actors with ``ray_address``; 0 there = one per
            :data:`CORES_PER_FILE` of the cluster's CPUs).
        ray_address: a Ray cluster (``auto``: the one the environment points at), for folders;
            a single file is done in this process.

    Raises:
        BlurcliError: file mode errors; UsageError when Ray is asked for but not installed.
    """
    events = _keeping_reports(tasks, events or Events())
    if ray_address is not None and folder_mode:  # one file is done here: its errors keep their exit codes
        from .ray_engine import run_on_ray

        return run_on_ray(tasks, spec, address=ray_address, actors=jobs, events=events)
    if jobs <= 1 or len(tasks) <= 1:
        return _run_here(tasks, spec, folder_mode=folder_mode, events=events)
    if not spec.threads:
        from ..detect.backends.base import cpu_count

        spec = replace(spec, threads=max(1, cpu_count() // jobs))
    return _run_pool(tasks, spec, jobs=jobs, events=events)


def _keeping_reports(tasks: list[Task], events: Events) -> Events:
    """``events`` whose ``file`` first keeps each newly written file's report for resuming."""
    ledgers = {str(task.src): task.ledger for task in tasks if task.ledger is not None}
    if not ledgers:
        return events

    def file(report) -> None:
        ledger = ledgers.get(str(report.input))
        if ledger is not None and not report.error and not report.skipped and report.audit:
            resume.keep(ledger, report.to_dict())
        events.on_file(report)

    return replace(events, file=file)


def _run_here(tasks: list[Task], spec: WorkerSpec, *, folder_mode: bool, events: Events) -> list:
    worker = Worker(spec)
    reports = []
    for task in tasks:
        events.on_begin(task.src)
        progress = (lambda stage, done, total, src=task.src: events.on_frames(src, stage, done, total))
        report = (worker.run_safely if folder_mode else worker.run)(task, progress)
        reports.append(report)
        events.on_file(report)
    return reports


# -------------------------------------------------------------------------- local process pool

_worker: Worker | None = None
_queue = None
_start_error: BlurcliError | None = None


def _init_pool_worker(spec: WorkerSpec, queue) -> None:
    """Pool process start: SIGTERM cleans up like Ctrl-C, logs go to the parent, models load once."""
    global _worker, _queue, _start_error
    signal.signal(signal.SIGTERM, _raise_interrupt)
    _queue = queue
    root = logging.getLogger("blurcli")
    root.handlers[:] = [logging.handlers.QueueHandler(queue)]
    root.setLevel(logging.INFO)
    root.propagate = False
    try:
        _worker = Worker(spec)
    except BlurcliError as exc:  # a corrupt gallery, a missing model: the run stops with this message
        _start_error = exc


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


class _Throttled:
    """Frame progress of one file, sent at most every PROGRESS_EVERY_S (and always the last frame)."""

    def __init__(self, send: Callable, index: int) -> None:
        self.send, self.index, self.last = send, index, 0.0

    def __call__(self, stage: str, done: int, total) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_S or done == total:
            self.last = now
            self.send(("frames", self.index, stage, done, total))


def _pool_task(task: Task):
    if _start_error is not None:
        raise _start_error
    _queue.put(("begin", task.index))
    try:
        return _worker.run_safely(task, _Throttled(_queue.put, task.index))
    except KeyboardInterrupt:  # its output was removed on the way out; take no further file
        os._exit(EXIT_INTERRUPTED)


def _run_pool(tasks: list[Task], spec: WorkerSpec, *, jobs: int, events: Events) -> list:
    """``jobs`` spawned processes; a process that dies breaks the pool, so a fresh pool takes the rest."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")  # never fork a process that runs threads
    by_index = {task.index: task for task in tasks}
    reports: dict[int, object] = {}
    attempts = {task.index: 0 for task in tasks}
    todo = deque(tasks)
    fruitless = 0
    while todo:
        if fruitless >= MAX_ATTEMPTS:
            raise BlurcliError(f"the worker processes died before starting a file, {MAX_ATTEMPTS} times; try --jobs 1")
        queue = context.Queue()
        begun: set[int] = set()
        pool = ProcessPoolExecutor(
            min(jobs, len(todo)), mp_context=context, initializer=_init_pool_worker, initargs=(spec, queue)
        )
        futures = {pool.submit(_pool_task, task): task for task in todo}
        todo.clear()
        try:
            while futures:
                done, _ = wait(futures, timeout=0.1, return_when=FIRST_COMPLETED)
                _drain(queue, by_index, begun, events)
                for future in done:
                    task = futures.pop(future)
                    try:
                        report = future.result()
                    except BrokenProcessPool:
                        if task.index in begun:
                            _died(task, attempts, todo, reports, spec, events)
                        else:
                            todo.append(task)
                        continue
                    reports[task.index] = report
                    events.on_file(report)
            _drain(queue, by_index, begun, events)
        except BaseException:
            _stop_pool(pool)
            for task in futures.values():  # begun or not: only our own temp names are removed
                remove_stale_parts(task.dst)
            raise
        pool.shutdown(wait=True)
        fruitless = 0 if begun else fruitless + 1
        todo = deque(sorted(todo, key=lambda t: t.index))
    return [reports[task.index] for task in tasks]


def _died(
    task: Task, attempts: dict, todo: deque, reports: dict, spec: WorkerSpec, events: Events, *, shown: Task | None = None
) -> None:
    """A worker died on ``task``: remove its temp file, then try again or give up on the file.

    ``shown``: the task as the user named it (the Ray engine runs absolute paths)."""
    shown = shown or task
    remove_stale_parts(task.dst)
    attempts[task.index] += 1
    if attempts[task.index] < MAX_ATTEMPTS:
        log.warning("a worker died while on %s; trying it again on a fresh worker (attempt %d of %d)",
                    shown.src, attempts[task.index] + 1, MAX_ATTEMPTS)
        todo.append(task)
        return
    message = f"{shown.src}: the worker died on this file {MAX_ATTEMPTS} times (out of memory?); nothing was written"
    log.warning("skipped %s", message)
    report = spec.report_type(str(shown.src), str(shown.dst), error=message)
    reports[task.index] = report
    events.on_file(report)


def _drain(queue, by_index: dict, begun: set, events: Events) -> None:
    """Hand the workers' messages on: log records, file starts, frame progress."""
    import queue as queue_module

    while True:
        try:
            item = queue.get_nowait()
        except (queue_module.Empty, OSError, ValueError):
            return
        if isinstance(item, logging.LogRecord):
            logging.getLogger(item.name).handle(item)
            continue
        if item[0] == "begin":
            begun.add(item[1])
        events.on_message(item, by_index)


def _stop_pool(pool) -> None:
    """Stop the pool's processes now: SIGTERM (each removes its temp file), then SIGKILL after 10 s."""
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    deadline = time.monotonic() + 10
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()


def check_jobs(jobs: int | None, ray_address: str | None) -> int:
    """``--jobs`` as given (None: :func:`default_jobs` here, one per CORES_PER_FILE CPUs on Ray)."""
    if jobs is not None and jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if jobs is None:
        return 0 if ray_address is not None else default_jobs()
    return jobs
