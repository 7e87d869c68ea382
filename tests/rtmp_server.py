"""A real RTMP server for tests and benchmarks: Debian's nginx with libnginx-mod-rtmp.

nginx runs as a non-daemon child on 127.0.0.1 with a temporary config; its pid file, logs and
temp paths all live in a temporary folder. Readiness is probed with ``ss -ltn`` (connecting to
probe would count as a client). :class:`Recorder` plays a stream back from the server and keeps
what it received in a file, so tests can check what a viewer would get.

Example:
    >>> with RtmpServer() as server:                       # doctest: +SKIP
    ...     url = server.url("live", "KEY")
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import av

#: Where Debian's libnginx-mod-rtmp installs the module.
MODULE_PATHS = ("/usr/lib/nginx/modules/ngx_rtmp_module.so", "/usr/lib64/nginx/modules/ngx_rtmp_module.so")

_CONFIG = """\
daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
load_module {module};
events {{ worker_connections 128; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        application live {{
            live on;
            record off;
        }}
    }}
}}
"""


def nginx_binary() -> str | None:
    """Path of nginx, or None when it is not installed."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None)


def rtmp_module() -> str | None:
    """Path of the nginx RTMP module, or None when it is not installed."""
    return next((p for p in MODULE_PATHS if os.path.exists(p)), None)


def missing() -> str | None:
    """Why a server cannot be started here (None when it can)."""
    if nginx_binary() is None:
        return "nginx is not installed (apt-get install nginx libnginx-mod-rtmp)"
    if rtmp_module() is None:
        return "the nginx RTMP module is not installed (apt-get install libnginx-mod-rtmp)"
    if shutil.which("ss") is None:
        return "ss (iproute2) is not installed"
    return None


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port`` (from ``ss -ltn``, without connecting)."""
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=False).stdout
    return any(f"127.0.0.1:{port}" in line for line in out.splitlines())


def clients(port: int) -> int:
    """Established TCP connections to 127.0.0.1:``port`` (players and publishers), from ``ss -tn``."""
    out = subprocess.run(["ss", "-tnH", "state", "established", f"dport = :{port}"], capture_output=True, text=True, check=False).stdout
    return sum(1 for line in out.splitlines() if line.strip())


class RtmpServer:
    """nginx-rtmp on 127.0.0.1; ``start()``/``stop()`` may be called repeatedly on the same port.

    Args:
        port: TCP port (default: a free one).
        workdir: folder for config, pid and logs (default: a new temp folder, removed by ``close``).
    """

    def __init__(self, port: int | None = None, workdir: Path | None = None) -> None:
        reason = missing()
        if reason:
            raise RuntimeError(reason)
        self.port = port or free_port()
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="blurcli-rtmp-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = self.workdir / "nginx.conf"
        self.config.write_text(_CONFIG.format(tmp=self.workdir, module=rtmp_module(), port=self.port))
        self._proc: subprocess.Popen | None = None

    def url(self, app: str = "live", key: str = "stream") -> str:
        return f"rtmp://127.0.0.1:{self.port}/{app}/{key}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> "RtmpServer":
        """Start nginx and wait until it listens.

        Raises:
            RuntimeError: nginx exited or did not listen within ``timeout`` (its log is in the message).
        """
        if self.running:
            return self
        log = open(self.workdir / "stderr.log", "ab")
        self._proc = subprocess.Popen(
            [nginx_binary(), "-p", str(self.workdir), "-c", str(self.config), "-e", str(self.workdir / "error.log")],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not listening(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start on port {self.port}:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop nginx at once (SIGTERM: fast shutdown, clients are cut off)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        deadline = time.monotonic() + timeout
        while listening(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        text = ""
        for name in ("stderr.log", "error.log"):
            path = self.workdir / name
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "RtmpServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


class Recorder(threading.Thread):
    """Plays ``url`` from the server and remuxes every packet into ``path`` (packet for packet).

    Start it before the publisher: nginx then holds the player until the stream is published and
    delivers it from its first frame. The thread ends when the publisher leaves or the server stops.

    Attributes:
        arrivals: (monotonic time, stream type, pts in seconds, keyframe) of every packet received.
        error: the exception that ended playback abnormally, if any.
    """

    def __init__(self, url: str, path: Path, *, open_timeout: float = 30.0) -> None:
        super().__init__(name="rtmp-recorder", daemon=True)
        self.url = url
        self.path = Path(path)
        self.open_timeout = open_timeout
        self.arrivals: list[tuple[float, str, float, bool]] = []
        self.error: BaseException | None = None
        self.opened = threading.Event()

    def run(self) -> None:
        try:
            src = av.open(self.url, options={"rtmp_live": "live"}, timeout=(self.open_timeout, 10.0))
        except BaseException as exc:  # reported to the test through .error
            self.error = exc
            return
        self.opened.set()
        try:
            with av.open(str(self.path), "w", format="flv") as out:
                mapping = {s.index: out.add_stream_from_template(s) for s in src.streams if s.type in ("video", "audio")}
                try:
                    for packet in src.demux():
                        if packet.dts is None or packet.stream.index not in mapping:
                            continue
                        t = float(packet.pts * packet.time_base) if packet.pts is not None else float("nan")
                        self.arrivals.append((time.monotonic(), packet.stream.type, t, bool(packet.is_keyframe)))
                        packet.stream = mapping[packet.stream.index]
                        out.mux(packet)
                except (av.EOFError, OSError, av.FFmpegError):
                    pass  # the publisher left or the server went away: the recording ends here
        except BaseException as exc:
            self.error = exc
        finally:
            src.close()


#: The publisher's sync mark: the square [x0, y0, x1, y1] painted white, and the beep's amplitude.
MARK = (0, 0, 40, 40)
BEEP = 0.6


class Publisher:
    """Stands in for a phone: pushes H.264 + AAC to ``url`` in real time in bursts, with gaps between.

    It runs in a process of its own, as a phone is a device of its own: in one process, PyAV's
    muxer holds the GIL while it waits for the RTMP handshake, and a listening blurcli in the
    same process then cannot answer it (both hang).

    Each burst is a new connection (as a phone's app makes after a drop): it retries connecting
    until the receiver accepts it (a listening blurcli, or nginx), pushes ``seconds`` of
    ``picture`` (BGR, ``size``) and a quiet 440 Hz tone, and disconnects. In the middle of every
    second one frame carries a mark: a white square in the top-left corner (:data:`MARK`) and, at
    the same moment, a loud 1 kHz beep as long as the frame, so a test can measure sync.

    Attributes:
        bursts: (connected at, disconnected at) monotonic times of each burst, after :meth:`join`.
        error: what ended the pushes abnormally, if anything (a string), after :meth:`join`.
    """

    def __init__(self, url: str, picture, *, size: tuple[int, int], fps: int = 30,
                 bursts: list[float] = (3.0,), gaps: list[float] = (), connect_timeout: float = 30.0) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._results = context.Queue()
        self._process = context.Process(
            target=_publish, args=(url, picture, size, fps, list(bursts), list(gaps), connect_timeout, self._results),
            daemon=True,
        )
        self.bursts: list[tuple[float, float]] = []
        self.error: str | None = None

    def start(self) -> None:
        self._process.start()

    def join(self, timeout: float | None = None) -> None:
        import queue as queue_module

        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self.error = self.error or "the publisher did not finish in time"
        while True:
            try:
                kind, *value = self._results.get(timeout=0.5)
            except queue_module.Empty:
                return
            if kind == "burst":
                self.bursts.append(tuple(value))
            else:
                self.error = value[0]


def _publish(url, picture, size, fps, bursts, gaps, connect_timeout, results) -> None:
    """The publisher process: each burst a connection, retried while the receiver refuses it."""
    import numpy as np

    def push(seconds: float, sent: list) -> None:
        out = av.open(url, "w", format="flv", timeout=(5.0, 5.0))
        start = time.monotonic()
        try:
            video = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "tune": "zerolatency", "g": str(fps)})
            video.width, video.height = size
            video.pix_fmt = "yuv420p"
            audio = out.add_stream("aac", rate=48000, layout="stereo")
            per_frame = 48000 // fps
            for i in range(int(round(seconds * fps))):
                wait = start + i / fps - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                marked = i % fps == fps // 2
                image = picture
                if marked:
                    image = picture.copy()
                    image[MARK[1]:MARK[3], MARK[0]:MARK[2]] = 255
                frame = av.VideoFrame.from_ndarray(image, format="bgr24")
                frame.pts = i
                for packet in video.encode(frame):
                    out.mux(packet)
                    sent.append(i)
                t = (np.arange(per_frame) + i * per_frame) / 48000
                tone = (BEEP * np.sin(2 * np.pi * 1000 * t) if marked else 0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
                samples = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                samples.sample_rate, samples.pts = 48000, i * per_frame
                for packet in audio.encode(samples):
                    out.mux(packet)
            for stream in (video, audio):
                for packet in stream.encode(None):
                    out.mux(packet)
        finally:
            try:
                out.close()
            finally:
                if sent:
                    results.put(("burst", start, time.monotonic()))

    try:
        for k, seconds in enumerate(bursts):
            deadline = time.monotonic() + connect_timeout
            while True:
                sent: list = []
                try:
                    push(seconds, sent)
                    break
                except (av.FFmpegError, OSError):
                    if sent or time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            if k < len(gaps):
                time.sleep(gaps[k])
    except BaseException as exc:  # reported to the test through Publisher.error
        results.put(("error", f"{type(exc).__name__}: {exc}"))
