"""Torch thread counts for small GEMMs, and independent fits run side by side in threads.

Training's small batches gain nothing from torch's intra-op threads, but separate fits (a
search's fold fits, a blend's members) do gain from running on separate cores: each fit is one
thread of small GEMMs whose torch calls release the GIL, so two fits on two cores finish in
little more than the time of the slower one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar, cast

import torch

Result = TypeVar("Result")
Task = Callable[[threading.Event | None], Result]
"""An independent job for `side_by_side`: it is given the event that asks it to stop early
(None when it runs alone), which a fit checks between batches (`FitCancelled`)."""


class FitCancelled(Exception):
    """A fit stopped because a fit beside it failed or was interrupted."""


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


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def side_by_side(tasks: Sequence[Task[Result]], device: torch.device) -> list[Result]:
    """Each task's result, in the tasks' order: on a CPU, tasks run in up to one thread per
    usable core, the first in the calling thread (so its progress reports come from there and
    an interrupt reaches it at once); on a GPU, one after another. When one task fails or is
    interrupted the others are asked to stop, and the first failure is raised.

    Tasks must not share mutable state: fits seed their own generators (training.fit_pixels),
    so a task's result does not depend on what runs beside it.
    """
    workers = min(len(tasks), usable_cores()) if device.type == "cpu" else 1
    if workers <= 1:
        return [task(None) for task in tasks]
    results: list[Result | None] = [None] * len(tasks)
    waiting = iter(range(1, len(tasks)))
    lock, stop = threading.Lock(), threading.Event()

    def work(first: int | None = None) -> None:
        index = first
        while not stop.is_set():
            if index is None:
                with lock:
                    index = next(waiting, None)
                if index is None:
                    return
            results[index] = tasks[index](stop)
            index = None

    with one_thread_on_cpu(device), ThreadPoolExecutor(workers - 1) as pool:
        helpers = [pool.submit(work) for _ in range(workers - 1)]
        try:
            work(0)
            for helper in helpers:
                helper.result()
        except BaseException:
            stop.set()
            raise
    return cast(list[Result], results)  # every index ran: no task failed
