"""The dask.distributed cluster a batch runs on: a local one sized to the machine, or one
already running, reached by address or scheduler file."""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dask
from bandfusion.errors import BandfusionError, first_line
from bandfusion.io.inputs import refuse_special
from distributed import Client, LocalCluster
from distributed.comm.addressing import resolve_address

CONNECT_TIMEOUT_S = 5
"""How long connecting to a running scheduler may take before the batch gives up."""
_SCHEDULER_FILE_BYTES = 1 << 20
"""More than any scheduler file holds: a larger file is not one (and is not read whole)."""

_LOCAL_WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
}


@contextmanager
def local_client(
    workers: int | None = None, threads_per_worker: int | None = None
) -> Iterator[Client]:
    """A client of a new LocalCluster of worker processes on loopback, sized to the machine
    unless `workers` / `threads_per_worker` say otherwise; both close with the context.

    Two of distributed's defaults cost the engine CPU for nothing it needs. Its 64 KiB
    MALLOC_TRIM_THRESHOLD_ hands the megabytes each chunk allocates back to the system, to be
    faulted in again for the next chunk (chunks bound memory anyway); its profiler samples every
    worker thread's stack. Both cost CPU a scene (bench/RESULTS.md, Batch).

    Ctrl-C is the batch process's alone: workers ignore SIGINT (`dask_setup`), and distributed
    logs below ERROR stay quiet, as closing a cluster with scenes still running warns of each
    cancelled task and of each worker it has to kill (bandfusion reports every scene itself).
    """
    with (
        dask.config.set(_LOCAL_WORKER_CONFIG),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
            preload=[__name__],  # each worker process runs dask_setup, below
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


def dask_setup(worker: object) -> None:
    """Worker preload of the local cluster: its worker processes ignore SIGINT.

    A terminal's Ctrl-C reaches every process of its foreground group, local workers included;
    the batch's own process handles it (records what finished, closes the cluster), so a worker
    interrupted by it would only print a traceback and lose the scene it was writing.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def connect(scheduler: str) -> Iterator[Client]:
    """A client of a running cluster, by address (tcp://host:port) or scheduler file.

    The address is checked before any connection is tried, and connecting gives up after
    CONNECT_TIMEOUT_S: a wrong `scheduler` is a BandfusionError naming it, never a wait.
    (distributed's Client, given an address it cannot parse, fails in its constructor and then
    waits a minute in its finaliser; given one nobody answers, it waits 30 s.)
    """
    address = scheduler_address(scheduler)
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = first_line(exc, typed=True)
        raise BandfusionError(
            f"{scheduler}: cannot connect to a scheduler ({reason})", setting="scheduler"
        ) from exc
    with client:
        yield client


def scheduler_address(scheduler: str) -> str:
    """The address `scheduler` names: itself, or the `address` of the scheduler file (JSON)
    at that path; a BandfusionError unless it is an address distributed can connect to."""
    address = _address_in_file(scheduler) if os.path.lexists(scheduler) else scheduler
    try:
        resolve_address(address)  # the scheme, host and port, and the host name resolves
    except (OSError, ValueError) as exc:
        raise BandfusionError(
            f"{scheduler}: not a scheduler address or scheduler file ({first_line(exc)})",
            setting="scheduler",
        ) from exc
    return address


def _address_in_file(path: str) -> str:
    """The `address` a dask scheduler file holds; a BandfusionError if it is not one."""
    refuse_special(path, BandfusionError)
    try:
        with Path(path).open("rb") as file:
            document = json.loads(file.read(_SCHEDULER_FILE_BYTES + 1)[:_SCHEDULER_FILE_BYTES])
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not JSON"
        raise BandfusionError(
            f"{path}: not a scheduler file ({reason})", setting="scheduler"
        ) from exc
    address = document.get("address") if isinstance(document, dict) else None
    if not isinstance(address, str):
        raise BandfusionError(
            f"{path}: not a scheduler file (no 'address' in it)", setting="scheduler"
        )
    return address


def dashboard_link(client: Client) -> str | None:
    """The cluster's dashboard address, when its scheduler serves one."""
    services = client.scheduler_info(n_workers=0).get("services", {})
    return str(client.dashboard_link) if "dashboard" in services else None


def describe_cluster(client: Client) -> str:
    """Its size and, when served, its dashboard, in one line for the log."""
    workers = client.nthreads()
    link = dashboard_link(client)
    return f"cluster: {len(workers)} workers, {sum(workers.values())} threads" + (
        f"; dashboard: {link}" if link else ""
    )
