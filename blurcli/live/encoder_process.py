"""Face encodings computed in a child process, so that dlib cannot stall the live stream.

dlib's Python binding holds the GIL for the whole of ``compute_face_descriptor``: measured here,
a thread encoding faces blocked every other thread for 75-200 ms per face. In a live stream that
stalls capture and the output clock (late ticks, repeated and dropped frames). So encoding runs in
a helper process that gets only a crop around each face; the frames themselves stay in this one.

The child is started with ``python -c`` (not multiprocessing, whose spawn would re-run
``python -m blurcli``) in its own session, so Ctrl-C reaches only the parent, which closes it.
"""
from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from ..errors import ModelError

#: A crop reaches this many box sizes beyond each side of the box: dlib fits landmarks on a
#: square around the box and cuts its 150 px chip with 25 % padding, all well inside this margin.
_MARGIN = 1.0
_HEADER = struct.Struct("!Q")
_ROOT = str(Path(__file__).resolve().parents[2])


def crop_around(image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(crop, box in the crop's pixels) for one (4,) xyxy box."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    size = max(x1 - x0, y1 - y0, 1.0)
    cx0 = int(max(0, np.floor(x0 - _MARGIN * size)))
    cy0 = int(max(0, np.floor(y0 - _MARGIN * size)))
    cx1 = int(min(w, np.ceil(x1 + _MARGIN * size)))
    cy1 = int(min(h, np.ceil(y1 + _MARGIN * size)))
    if cx1 <= cx0 or cy1 <= cy0:
        return image[:1, :1].copy(), np.array([x0, y0, x1, y1], np.float32)  # outside: encodes as NaN
    return np.ascontiguousarray(image[cy0:cy1, cx0:cx1]), np.array([x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0], np.float32)


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the encoder process closed its pipe")
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the encoder process closed its pipe")
    return pickle.loads(data)  # noqa: S301 - our own child process, over a private pipe


class EncoderProcess:
    """``FaceEncoder().encode`` served by a child process; same ``encode(image, xyxy)`` call.

    Raises (from :meth:`encode`):
        ModelError: the child could not load dlib or its models, or died.
    """

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([_ROOT, *filter(None, [env.get("PYTHONPATH")])])
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from blurcli.live.encoder_process import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )
        self._lock = threading.Lock()
        try:  # identity may lag; the stream itself must not
            os.setpriority(os.PRIO_PROCESS, self._proc.pid, 10)
        except (AttributeError, OSError):
            pass

    def encode(self, image: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        """(n, 128) float32 encodings of the faces at ``xyxy`` (n, 4) in ``image``; NaN rows where none."""
        boxes = np.asarray(xyxy, np.float32).reshape(-1, 4)
        jobs = [crop_around(image, box) for box in boxes]
        with self._lock:
            try:
                _send(self._proc.stdin, jobs)
                reply = _receive(self._proc.stdout)
            except (OSError, EOFError, pickle.UnpicklingError) as exc:
                raise ModelError(f"the face encoder process stopped ({exc}); check that dlib-bin is installed") from None
        if isinstance(reply, tuple) and reply and reply[0] == "error":
            raise ModelError(f"face encoder failed: {reply[1]}")
        return reply

    def close(self) -> None:
        """Stop the child (closing its input ends it)."""
        proc = self._proc
        if proc.poll() is None:
            try:
                proc.stdin.close()
                proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait(5)
        proc.stdout.close()


def serve() -> None:
    """The child's loop: read crops, answer encodings, until the parent closes the pipe."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but replies may reach the pipe
    encoder, failure = None, None
    try:  # load dlib now, while the stream starts, not on the first face
        from ..identity.encoder import FaceEncoder

        encoder = FaceEncoder()
        encoder.encode(np.zeros((64, 64, 3), np.uint8), np.array([[16, 16, 48, 48]], np.float32))
    except Exception as exc:  # reported on the first request
        failure = ("error", f"{type(exc).__name__}: {exc}")
    while True:
        try:
            jobs = _receive(stdin)
        except EOFError:
            return
        if failure is not None:
            _send(stdout, failure)
            continue
        try:
            rows = [encoder.encode(crop, box[None])[0] for crop, box in jobs]
            reply = np.stack(rows).astype(np.float32) if rows else np.zeros((0, 128), np.float32)
        except Exception as exc:  # sent back; the parent raises ModelError
            reply = ("error", f"{type(exc).__name__}: {exc}")
        _send(stdout, reply)
