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
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from itertools import islice
from typing import TypeVar

import torch
from bandfusion.models.threads import one_thread_on_cpu
from joblib.externals.loky import get_reusable_executor

Result = TypeVar("Result")

IDLE_WORKER_SECONDS = 60
"""How long an idle worker waits for the next fit before it exits."""
LEAK_REPORT_FILTER = "ignore:resource_tracker:UserWarning"
"""The `-W` option that silences loky's resource tracker's report of cleaned-up leaks."""


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def side_by_side(tasks: Sequence[Callable[[], Result]], device: torch.device) -> list[Result]:
    """Each task's result, in the tasks' order, on up to one core each: on a CPU with cores to
    spare, the first task in this process (its progress reports reach the caller) and the
    others in worker processes, as many at once as there are cores left; on a GPU, in a process
    that cannot start workers (a daemon), or with one core, one after another here.

    Tasks after the first must be picklable (closures are; a progress display is not) and
    every task independent: fits seed their own generators (training.fit_pixels), so a task's
    result is the same wherever it runs.
    """
    cores = usable_cores() if device.type == "cpu" else 1
    if len(tasks) < 2 or cores < 2 or multiprocessing.current_process().daemon:
        return [task() for task in tasks]
    _quiet_resource_tracker()
    pool = get_reusable_executor(  # always one per core: a resized pool restarts its workers
        max_workers=cores, timeout=IDLE_WORKER_SECONDS, initializer=_start_worker
    )
    submitted: list[Future[Result]] = []
    try:
        return _first_here_rest_in(pool, tasks, cores, device, submitted)
    except BaseException:
        _dispatched(submitted)
        pool.shutdown(wait=True, kill_workers=True)
        raise


def _first_here_rest_in(
    pool: Executor,
    tasks: Sequence[Callable[[], Result]],
    cores: int,
    device: torch.device,
    submitted: list[Future[Result]],
) -> list[Result]:
    """The first task here, the others through `pool`, one per core left free: never more
    submitted than can run at once, so that none waits in the pool's queue when its workers
    are killed (loky's manager thread fails on those); each submission goes to `submitted`."""
    later = iter(range(1, len(tasks)))
    running: dict[Future[Result], int] = {}

    def fill(room: int) -> None:
        for index in islice(later, max(room - len(running), 0)):
            future = pool.submit(tasks[index])
            submitted.append(future)
            running[future] = index

    fill(cores - 1)
    with one_thread_on_cpu(device):
        results = {0: tasks[0]()}
    fill(cores)
    while running:
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            results[running.pop(future)] = future.result()
        fill(cores)
    return [results[index] for index in range(len(tasks))]


def _dispatched(futures: list[Future[Result]], patience_s: float = 5.0) -> None:
    """Wait (briefly) until every submitted task has left the pool's queue for a worker, or
    ended: loky's manager thread raises KeyError when workers are killed while a task it has
    not yet dispatched is queued."""
    deadline = time.monotonic() + patience_s
    while any(not (f.running() or f.done()) for f in futures) and time.monotonic() < deadline:
        time.sleep(0.005)


def _quiet_resource_tracker() -> None:
    """Keep loky's resource tracker from printing, on the user's terminal, that workers killed
    by an interrupt left semaphores behind: it unlinks them itself, and a Ctrl-C must end in
    one line. The tracker is a separate interpreter started with this one's warning options."""
    if LEAK_REPORT_FILTER not in sys.warnoptions:
        sys.warnoptions.append(LEAK_REPORT_FILTER)


def _start_worker() -> None:
    """One torch thread per worker (the workers are the parallelism), and no SIGINT: a Ctrl-C
    reaches the whole terminal's process group, and it is the caller that stops the workers."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
