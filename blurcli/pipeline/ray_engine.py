"""Run a folder's files as Ray actors on a cluster whose nodes see the same file system (``--ray``).

Each actor is a :class:`~blurcli.pipeline.batch.Worker` (models loaded once, in its constructor)
reserving :data:`~blurcli.pipeline.batch.CORES_PER_FILE` CPUs, and does one file at a time; the
driver (this process) hands out files, shows progress and keeps the reports. Ray's own actor
restarts are off on purpose: when an actor dies (its process killed, its node lost), the driver
removes the temp file it left, starts a fresh actor (Ray places it wherever CPUs are free) and
gives it the file again, so that it knows, and can say, which file was retried. Paths are made
absolute (a worker's current folder is not ours) and reported as the user gave them.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections import deque
from dataclasses import replace
from pathlib import Path

from ..audit import gallery_path
from ..errors import BlurcliError, UsageError
from ..media.atomic import remove_stale_parts
from .batch import CORES_PER_FILE, Events, Task, Worker, WorkerSpec, _died, _Throttled

log = logging.getLogger("blurcli.ray")


class FileWorker:
    """The actor: one Worker; a failure to build it (a corrupt gallery, a model missing on that
    node) is kept and raised by the first file, so that the driver stops with that message."""

    def __init__(self, spec: WorkerSpec, progress) -> None:
        self.progress = progress
        self.error: BlurcliError | None = None
        try:
            self.worker = Worker(spec)
        except BlurcliError as exc:
            self.error = exc

    def _send(self, item) -> None:
        try:
            self.progress.put_nowait(item)
        except Exception:  # progress is a nicety: never fail a file for it
            pass

    def run(self, task: Task):
        if self.error is not None:
            raise self.error
        self._send(("begin", task.index))
        return self.worker.run_safely(task, _Throttled(self._send, task.index))

    def pid(self) -> int:
        return os.getpid()


def _absolute(task: Task) -> Task:
    return replace(
        task,
        src=Path(os.path.abspath(task.src)),
        dst=Path(os.path.abspath(task.dst)),
        ledger=None,  # the driver keeps the reports
    )


def _resolve_gallery(settings):
    """The gallery as this machine's absolute path: a node's own default gallery is not the user's."""
    gallery = gallery_path(settings)
    if gallery is None:
        return settings
    return replace(settings, identity=replace(settings.identity, gallery=Path(os.path.abspath(gallery))))


def connect(address: str):
    """``ray`` connected to the cluster at ``address`` (``auto``: the environment's).

    Raises:
        UsageError: Ray is not installed, or no cluster answers at ``address``.
    """
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'blurcli[ray]' (on every node)") from None
    if not ray.is_initialized():
        _check_reachable(address)
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UsageError(f"cannot connect to the Ray cluster at {address}: {exc}".splitlines()[0]) from None
        finally:
            # Ray's core worker installs a SIGTERM handler that ends the process at once (exit 1,
            # actors left running); ours stops the actors and removes what they were writing.
            for sig, handler in handlers.items():
                if handler is not None:
                    with contextlib.suppress(ValueError):
                        signal.signal(sig, handler)
    return ray


def _check_reachable(address: str) -> None:
    """Fail in seconds on a HOST:PORT nobody listens at: ``ray.init`` retries such an address forever."""
    if address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise UsageError(f"--ray {address}: expected HOST:PORT (the head node's GCS port, 6379 by default) or auto")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise UsageError(
            f"cannot connect to the Ray cluster at {address}: {exc.strerror or exc}; is 'ray start --head' running there?"
        ) from None


def run_on_ray(tasks: list[Task], spec: WorkerSpec, *, address: str, actors: int, events: Events) -> list:
    """Do ``tasks`` on ``actors`` actors (0: as many as the cluster's CPUs hold); reports in input order."""
    ray = connect(address)
    from ray.exceptions import RayActorError, RayTaskError
    from ray.util.queue import Queue

    total = int(ray.cluster_resources().get("CPU", CORES_PER_FILE))
    if actors:  # --jobs N: N workers, sharing the cluster's CPUs (at most CORES_PER_FILE each)
        cpus = max(1, min(CORES_PER_FILE, total // actors))
        if actors * cpus > total:
            log.warning("--jobs %d asks for more workers than the cluster's %d CPUs hold; some will wait", actors, total)
    else:
        cpus = min(CORES_PER_FILE, max(1, total))
        actors = max(1, total // cpus)
    spec = replace(spec, threads=cpus, settings=_resolve_gallery(spec.settings))
    actors = min(actors, len(tasks))
    progress = Queue(actor_options={"num_cpus": 0})
    Actor = ray.remote(num_cpus=cpus, max_restarts=0, max_task_retries=0)(FileWorker)
    log.info("Ray: %d worker(s) of %d CPU(s) each", actors, cpus)

    originals = {task.index: task for task in tasks}
    by_index = {task.index: _absolute(task) for task in tasks}
    todo = deque(by_index[task.index] for task in tasks)
    idle = [Actor.remote(spec, progress) for _ in range(actors)]
    everyone = list(idle)
    running: dict = {}
    reports: dict[int, object] = {}
    attempts = {task.index: 0 for task in tasks}
    finished = False
    try:
        while todo or running:
            while todo and idle:
                actor, task = idle.pop(), todo.popleft()
                running[actor.run.remote(task)] = (actor, task)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.1)
            _drain(progress, originals, events)
            for ref in ready:
                actor, task = running.pop(ref)
                try:
                    report = ray.get(ref)
                except RayActorError:
                    ray.kill(actor, no_restart=True)
                    fresh = Actor.remote(spec, progress)
                    everyone.append(fresh)
                    idle.append(fresh)
                    _died(task, attempts, todo, reports, spec, events, shown=originals[task.index])
                    continue
                except RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, BlurcliError):
                        raise cause from None
                    raise
                report.input, report.output = str(originals[task.index].src), str(originals[task.index].dst)
                reports[task.index] = report
                events.on_file(report)
                idle.append(actor)
        _drain(progress, originals, events)
        finished = True
    finally:
        for actor in everyone:  # at once, also on Ctrl-C: what they were writing is removed next
            ray.kill(actor, no_restart=True)
        ray.kill(progress.actor, no_restart=True)
        if not finished:
            for _, task in running.values():
                remove_stale_parts(task.dst)
    return [reports[task.index] for task in tasks]


def _drain(progress, originals: dict, events: Events) -> None:
    while True:
        try:
            item = progress.get_nowait()
        except Exception:  # ray.util.queue.Empty, or the queue actor gone at shutdown
            return
        events.on_message(item, originals)
