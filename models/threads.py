"""Torch thread counts for small GEMMs: one thread, restored afterwards in the main thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_thread_on_cpu(device: torch.device) -> Iterator[None]:
    """One intra-op torch thread on a CPU, for small GEMMs that threads only slow down.

    BLAS splits a GEMM differently for different thread counts, which changes its rounding; the
    engine runs one kernel per core already (dask's threads), and training's small batches gain
    nothing from threads while their spinning collapses under load (a step then takes orders of
    magnitude longer than on one thread). Worker threads keep the setting: restoring it would
    race with other workers' GEMMs through MKL's process-wide thread count.
    """
    previous = torch.get_num_threads()
    if device.type != "cpu" or previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            torch.set_num_threads(previous)
