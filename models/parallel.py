"""Independent fits side by side, one per usable core: a search's fold fits, a blend's members.

A fit is one thread of small GEMMs with Python between its torch calls, so fits in threads of
one process contend for the GIL (two ran at about 1.4× the time of one); in separate processes
they do not. Workers come from loky, the process pool scikit-learn's joblib runs on: it starts
workers without re-running the caller's main module (no `if __name__ == "__main__"` needed in
a user's script), pickles closures, and keeps its workers for the next fits. The first task
runs in the calling process, so its progress reports reach the caller and an interrupt stops
it at once; on any failure or interrupt the workers are killed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from bandfusion.models.threads import one_thread_on_cpu
from joblib.externals.loky import get_reusable_executor

Result = TypeVar("Result")

IDLE_WORKER_SECONDS = 60
"""How long an idle worker waits for the next fit before it exits."""


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def side_by_side(tasks: Sequence[Callable[[], Result]], device: torch.device) -> list[Result]:
    """Each task's result, in the tasks' order: on a CPU with cores to spare, the first task in
    this process and the others in worker processes, one per further core; on a GPU, in a
    process that cannot start workers (a daemon), or with one core, one after another.

    Tasks must be picklable (closures are) and independent: fits seed their own generators
    (training.fit_pixels), so a task's result is the same wherever it runs.
    """
    cores = usable_cores() if device.type == "cpu" else 1
    if len(tasks) < 2 or cores < 2 or multiprocessing.current_process().daemon:
        return [task() for task in tasks]
    rest = len(tasks) - 1
    workers = min(rest, cores if rest >= cores else cores - 1)
    pool = get_reusable_executor(
        max_workers=workers, timeout=IDLE_WORKER_SECONDS, initializer=_start_worker
    )
    try:
        pending = [pool.submit(task) for task in tasks[1:]]
        with one_thread_on_cpu(device):
            first = tasks[0]()
        return [first, *(future.result() for future in pending)]
    except BaseException:
        pool.shutdown(wait=True, kill_workers=True)
        raise


def _start_worker() -> None:
    """One torch thread per worker (the workers are the parallelism), and no SIGINT: a Ctrl-C
    reaches the whole terminal's process group, and it is the caller that stops the workers."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
