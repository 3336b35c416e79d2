"""The batch figure from object storage beside the local one (`python -m bench --store-only`).

The same scenes (copies of the bundled On Cloud N chips, 4 band files each, as in
`bench.batch_scaling`) are mapped by `run_batch` on one single-thread worker, from and to local
files, and from and to a moto S3 server on loopback, in alternating rounds after a warm-up
round; the ratio is the median of the rounds' paired ratios (object store / local). The store
is reached through the counting proxy of `tests/batch/faultproxy.py`, so each store round also
gives the bytes read and the requests per scene (the model's reads and the manifest's saves
included, shared out over the scenes).

The servers are the test suite's own (`tests/servers.py`, `tests/batch/faultproxy.py`): the
bench runs from the repository root, where `tests` is importable, and needs the dev extra's
moto and boto3 as the tests do.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bandfusion.batch.cluster import local_client
from bandfusion.batch.manifest import SceneSpec
from distributed import Client

from tests.batch.faultproxy import FaultProxy, fault_proxy
from tests.servers import s3_server

from .batch_scaling import Timing, chip_scenes, run_forced, water_model

BUCKET = "bench"
METHODS = ("GET", "HEAD", "PUT", "POST")


@dataclass(frozen=True)
class StoreFigures:
    """Paired rounds of the local and the object-store batch, and what the store served."""

    scenes: int
    load: float
    """The 1-minute load average when the measurement began."""
    local: list[Timing]
    store: list[Timing]
    input_bytes: int
    """Bytes of the scenes' band files, all scenes together."""
    read_bytes: int
    """Body bytes the store answered to GETs in one store round."""
    requests: Counter[str]
    """Requests the store answered in one store round, by method."""

    @property
    def ratio(self) -> float:
        """Median over the rounds of store wall time / local wall time."""
        pairs = zip(self.store, self.local, strict=True)
        return statistics.median(store.wall / local.wall for store, local in pairs)

    def table(self) -> str:
        """The Markdown table `python -m bench` prints and records."""
        local = statistics.median(t.wall for t in self.local)
        store = statistics.median(t.wall for t in self.store)
        per_scene = " / ".join(f"{self.requests[m] / self.scenes:.1f}" for m in METHODS)
        return "\n".join(
            [
                f"Batch from object storage: {self.scenes} chip scenes (512² px, 4 band files), "
                "one single-thread worker, moto on loopback; medians of "
                f"{len(self.local)} paired rounds; load (1 min) {self.load:.2f} at start",
                "",
                "| figure | value |",
                "| --- | ---: |",
                f"| local: scenes/s | {self.scenes / local:.2f} |",
                f"| object store: scenes/s | {self.scenes / store:.2f} |",
                f"| object store / local (wall) | {self.ratio:.2f}× |",
                f"| bytes read per scene | {self.read_bytes / self.scenes:,.0f} |",
                f"| band files' bytes per scene | {self.input_bytes / self.scenes:,.0f} |",
                f"| requests per scene, {' / '.join(METHODS)} | {per_scene} |",
            ]
        )


@contextmanager
def aws_environment(endpoint: str) -> Iterator[None]:
    """The standard AWS environment pointing at `endpoint`, for this process and the worker
    processes started inside; the previous values are restored on exit."""
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def upload(s3: Any, scenes: list[SceneSpec], prefix: str) -> list[SceneSpec]:
    """Put the scenes' band files into the bucket under `prefix`; the scenes as URLs."""
    remote = []
    for scene in scenes:
        urls = []
        for band in map(Path, scene.inputs):
            key = f"{prefix}/{band.parent.name}/{band.name}"
            s3.upload_file(str(band), BUCKET, key)
            urls.append(f"s3://{BUCKET}/{key}")
        remote.append(SceneSpec.of(urls, scene.output))
    return remote


def store_round(
    client: Client, proxy: FaultProxy, s3: Any, scenes: list[SceneSpec], round_: int
) -> Timing:
    """One forced batch from and to the bucket, the proxy's counts reset before it.

    The round's scenes are uploaded afresh under a prefix of its own, so no cache in the
    worker (GDAL keeps the bytes of files it has read) holds any of them, as in a run over
    many tiles; the upload is not timed.
    """
    remote = upload(s3, scenes, f"in/{round_}")
    with proxy.lock:
        proxy.requests.clear()
        proxy.bytes_sent = 0
    return run_forced(client, remote, f"s3://{BUCKET}/model", f"s3://{BUCKET}/maps")


def measure(work: Path, count: int, repeats: int, model: Path | None = None) -> StoreFigures:
    """Map `count` chip scenes locally and through the store, `repeats` paired rounds after a
    warm-up round; `model` defaults to the batch figure's water model, trained in `work`."""
    load = os.getloadavg()[0]
    model = model or water_model(work)
    scenes = chip_scenes(work, count)
    input_bytes = sum(Path(band).stat().st_size for scene in scenes for band in scene.inputs)
    local: list[Timing] = []
    store: list[Timing] = []
    with s3_server(BUCKET) as (endpoint, s3), fault_proxy(endpoint) as proxy:
        for file in model.iterdir():
            s3.upload_file(str(file), BUCKET, f"model/{file.name}")
        with aws_environment(proxy.url), local_client(1, 1) as client:
            for round_ in range(repeats + 1):
                local.append(run_forced(client, scenes, model, work / "maps"))
                store.append(store_round(client, proxy, s3, scenes, round_))
                print(f"  local {local[-1].wall:6.2f} s, object store {store[-1].wall:6.2f} s")
        requests = Counter({m: sum(n for (method, _), n in proxy.requests.items() if method == m)
                            for m in METHODS})  # fmt: skip
        read = proxy.bytes_sent
    return StoreFigures(count, load, local[1:], store[1:], input_bytes, read, requests)


def run_store(count: int, repeats: int) -> str:
    """The object-store table of `python -m bench`, measured in a temporary folder."""
    print(f"batch from object storage: {count} chip scenes, local and through moto on loopback")
    with tempfile.TemporaryDirectory() as tmp:
        return measure(Path(tmp), count, repeats).table()
