"""The dask.distributed cluster a batch runs on: a local one sized to the machine, or one
already running, reached by address or scheduler file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dask
from bandfusion.errors import BandfusionError, first_line
from distributed import Client, LocalCluster

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
    """
    with (
        dask.config.set(_LOCAL_WORKER_CONFIG),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


@contextmanager
def connect(scheduler: str) -> Iterator[Client]:
    """A client of a running cluster, by address (tcp://host:port) or scheduler file."""
    where = {"scheduler_file": scheduler} if Path(scheduler).is_file() else {"address": scheduler}
    try:
        client = Client(**where, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = first_line(exc, typed=True)
        raise BandfusionError(f"scheduler {scheduler}: cannot connect ({reason})") from exc
    with client:
        yield client


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
