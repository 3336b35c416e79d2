"""`bandfusion batch` on a cluster of separate hosts that share no disk with the client.

An S3-compatible server on loopback (moto) behind a proxy that can refuse writes; a `dask
scheduler` and two `dask worker` processes, each started in its own empty working directory
with its own TMPDIR and HOME, none of them told of a client's folder: the workers are given the
scheduler's address, never a path. Where the machine allows it (root, `ip netns`: CI's machine
does) each of the three is a host of its own, a network namespace on a bridge
(tests/batch/hosts.py): they reach the store's proxy and one another at the bridge's addresses,
and the client's loopback not at all. Elsewhere they are plain processes on loopback, and the
test asserts the same; `test_each_worker_is_a_host_of_its_own` records which mode ran (the
`hosts` property in a JUnit report, and its line under `-rA`). Namespaces separate the network
only: the file system is the machine's, and the workers are kept off the client's folders by
being told none. Scenes and the model are only in the bucket (the client's local copies are for
the comparison with `predict`); maps and the manifest go to it. Faults: one worker SIGKILLed
mid-scene, the client SIGKILLed mid-batch and rerun, a corrupt scene among the good ones, and
the store refusing a map's upload for a while (retried) and for good (a failed scene with its
one-line reason).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from bandfusion.batch.store import DIGEST_KEY
from distributed import Client

from tests.batch.faultproxy import FaultProxy, fault_proxy
from tests.batch.hosts import Hosts, separate_hosts
from tests.conftest import S3_BUCKET
from tests.helpers import BANDFUSION, kill_busy_worker, predict_sha256, stack_chip, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PREFIX = "multihost"
ROOT = f"s3://{S3_BUCKET}/{PREFIX}"
TILES = ((2, 2), (3, 1), (1, 3), (2, 1), (1, 2))
GOOD = [f"{chip}-{rows}x{cols}.tif" for chip in ("adwp", "akny") for rows, cols in TILES]
CORRUPT = "cut-in-pixels.tif"
DASK = Path(sys.executable).with_name("dask")


@dataclass
class Cluster:
    """The processes and the store of the test cluster, and a client of it for the test."""

    client: Client
    address: str
    """The scheduler's, as the client and the workers reach it."""
    proxy: FaultProxy
    s3: Any
    env: dict[str, str]
    workdirs: list[Path]
    hosts: Hosts
    store: str
    """The S3 server behind the proxy, on the client's loopback."""


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, s3_store: tuple[str, Any]
) -> Iterator[Cluster]:
    endpoint, s3 = s3_store
    folders = tmp_path_factory.mktemp("hosts")
    workers = ["worker1", "worker2"]
    with separate_hosts(["scheduler", *workers]) as hosts, \
            fault_proxy(endpoint, hosts.gateway) as proxy:  # fmt: skip
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": proxy.url, "AWS_MAX_ATTEMPTS": "3",
               "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}  # fmt: skip
        scheduler_file = folders / "scheduler" / "scheduler.json"
        processes = [_start(hosts, folders / "scheduler", env, [str(DASK), "scheduler",
                     "--host", hosts.addresses["scheduler"], "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(scheduler_file)])]  # fmt: skip
        try:
            wait_for(scheduler_file.exists, "scheduler file", timeout=60)
            address = json.loads(scheduler_file.read_text())["address"]
            workdirs = [folders / name for name in workers]
            processes += [_start(hosts, workdir, env, [str(DASK), "worker", address, "--host",
                          hosts.addresses[workdir.name], "--nthreads", "1", "--no-dashboard",
                          "--local-directory", str(workdir / "dask"), "--name", workdir.name])
                          for workdir in workdirs]  # fmt: skip
            with Client(address, set_as_default=False) as client:
                client.wait_for_workers(2, timeout=120)
                yield Cluster(client, address, proxy, s3, env, workdirs, hosts, endpoint)
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _start(
    hosts: Hosts, home: Path, env: dict[str, str], command: list[str]
) -> subprocess.Popen[bytes]:
    """A process of its own host (`home.name`): an empty working directory, TMPDIR and HOME of
    its own, and its network namespace where there are some."""
    (home / "tmp").mkdir(parents=True)
    host_env = {**env, "TMPDIR": str(home / "tmp"), "HOME": str(home)}
    with (home / "log").open("wb") as log:  # read when a test fails
        return subprocess.Popen(hosts.command(home.name, command), cwd=home, env=host_env,
                                stdout=log, stderr=log)  # fmt: skip


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The scenes as local files, the corrupt one included (the client's own copies)."""
    folder = tmp_path_factory.mktemp("client")
    scenes = {}
    for name in GOOD:
        chip, size = name.removesuffix(".tif").split("-")
        rows, cols = map(int, size.split("x"))
        scenes[name] = stack_chip(chip, folder / name, tiles=(rows, cols))
    whole = scenes[GOOD[0]].read_bytes()
    (folder / CORRUPT).write_bytes(whole[: len(whole) // 2])  # GDAL puts the header first
    scenes[CORRUPT] = folder / CORRUPT
    return scenes


@pytest.fixture(scope="module")
def uploaded(cluster: Cluster, local: dict[str, Path], model_dir: Path) -> list[str]:
    """The scenes' URLs, once they and the model are in the bucket."""
    for name, path in local.items():
        cluster.s3.upload_file(str(path), S3_BUCKET, f"{PREFIX}/in/{name}")
    for file in model_dir.iterdir():
        cluster.s3.upload_file(str(file), S3_BUCKET, f"{PREFIX}/model/{file.name}")
    return [f"{ROOT}/in/{name}" for name in [*GOOD[:5], CORRUPT, *GOOD[5:]]]


def batch(cluster: Cluster, inputs: list[str], out: str) -> list[str]:
    return [str(BANDFUSION), "batch", *inputs, "-m", f"{ROOT}/model", "--out-dir", out,
            "--scheduler", cluster.address, "-q"]  # fmt: skip


def manifest(s3: Any, key: str) -> dict[str, dict[str, Any]]:
    try:
        doc = json.loads(s3.get_object(Bucket=S3_BUCKET, Key=key)["Body"].read())
    except Exception:  # not there yet
        return {}
    return {scene["output"]: scene for scene in doc["scenes"]}


def done(scenes: dict[str, dict[str, Any]]) -> set[str]:
    return {name for name, scene in scenes.items() if scene["status"] == "done"}


@dataclass(frozen=True)
class Run:
    at_kill: dict[str, dict[str, Any]]
    killed_worker: str
    partial_objects: list[str]
    rerun: subprocess.CompletedProcess[str]
    final: dict[str, dict[str, Any]]


def whole_objects(s3: Any, prefix: str) -> list[str]:
    """Keys under `prefix` whose bytes are not the digest their upload recorded."""
    bad = []
    for item in s3.list_objects_v2(Bucket=S3_BUCKET, Prefix=prefix).get("Contents", []):
        answer = s3.get_object(Bucket=S3_BUCKET, Key=item["Key"])
        digest = hashlib.sha256(answer["Body"].read()).hexdigest()
        if answer["Metadata"].get(DIGEST_KEY) != digest:
            bad.append(item["Key"])
    return bad


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, cluster: Cluster, uploaded: list[str]) -> Run:
    """The batch, its worker SIGKILLed mid-scene and then itself SIGKILLed mid-batch, then the
    same command again to its end."""
    out, key = f"{ROOT}/maps", f"{PREFIX}/maps/manifest.json"
    command = batch(cluster, uploaded, out)
    client_home = tmp_path_factory.mktemp("client-home")
    log = (client_home / "log").open("wb")
    first = subprocess.Popen(command, cwd=client_home, env=cluster.env, stdout=log, stderr=log)
    try:
        wait_for(lambda: _any_busy(cluster) is not None, "a busy worker", timeout=120)
        killed = kill_busy_worker(cluster.client)
        wait_for(lambda: len(done(manifest(cluster.s3, key))) >= 3, "3 done scenes", timeout=120)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        log.close()
    at_kill = manifest(cluster.s3, key)
    partial = whole_objects(cluster.s3, f"{PREFIX}/maps/")
    rerun = subprocess.run(command, cwd=client_home, env=cluster.env, capture_output=True,
                           text=True, timeout=180)  # fmt: skip
    cluster.client.wait_for_workers(2, timeout=60)
    return Run(at_kill, killed, partial, rerun, manifest(cluster.s3, key))


def _any_busy(cluster: Cluster) -> str | None:
    busy = [worker for worker, keys in cluster.client.processing().items() if keys]
    return busy[0] if busy else None


def test_each_worker_is_a_host_of_its_own(
    cluster: Cluster, record_property: Callable[[str, object], None]
):
    """Each worker at its host's address; in namespaces, the store's proxy in reach at the
    bridge and the client's loopback (the store itself) out of it."""
    record_property("hosts", cluster.hosts.mode)
    print(f"hosts: {cluster.hosts.mode}")  # shown under -rA
    cluster.client.wait_for_workers(2, timeout=60)
    seen = {urlsplit(worker).hostname for worker in cluster.client.scheduler_info()["workers"]}
    assert seen == {cluster.hosts.addresses[name] for name in ("worker1", "worker2")}
    proxy, store = urlsplit(cluster.proxy.url), urlsplit(cluster.store)

    def reach(host: str, port: int) -> str:  # pickled by value: workers cannot import tests
        try:
            socket.create_connection((host, port), timeout=5).close()
        except OSError as exc:
            return type(exc).__name__
        return "reached"

    to_proxy = cluster.client.run(reach, proxy.hostname, proxy.port)
    to_store = cluster.client.run(reach, store.hostname, store.port)
    assert set(to_proxy.values()) == {"reached"}
    alone = "ConnectionRefusedError" if cluster.hosts.namespaces else "reached"
    assert set(to_store.values()) == {alone}, cluster.hosts.mode


def test_both_kills_hit_mid_batch_and_no_partial_object_is_visible(run: Run, cluster: Cluster):
    statuses = [scene["status"] for scene in run.at_kill.values()]
    assert statuses.count("done") >= 3 and statuses.count("pending") >= 1, statuses
    assert run.killed_worker not in cluster.client.nthreads()
    assert run.partial_objects == []
    assert whole_objects(cluster.s3, f"{PREFIX}/maps/") == []


def test_the_rerun_skips_what_was_done_and_the_maps_are_predicts(
    run: Run, cluster: Cluster, local: dict[str, Path], model_dir: Path, tmp_path: Path
):
    assert run.rerun.returncode == 2, run.rerun.stderr
    assert f"failed: {CORRUPT}: " in run.rerun.stderr
    skipped = {name for name, scene in run.final.items() if scene["status"] == "skipped"}
    assert skipped == done(run.at_kill)
    assert done(run.final) == set(GOOD) - skipped
    workers = {scene["worker"] for scene in run.final.values() if scene["worker"]}
    assert len(workers) >= 2
    for name in GOOD:
        expected = predict_sha256([local[name]], model_dir, tmp_path / name)
        body = cluster.s3.get_object(Bucket=S3_BUCKET, Key=f"{PREFIX}/maps/{name}")["Body"]
        assert hashlib.sha256(body.read()).hexdigest() == expected == run.final[name]["sha256"]
    assert run.final[CORRUPT]["status"] == "failed" and run.final[CORRUPT]["sha256"] is None


def test_the_workers_leave_nothing_in_their_temporary_space(run: Run, cluster: Cluster):
    """But the SIGKILLed worker's folder for the map it was writing, if it had begun one."""
    left = [p.name for workdir in cluster.workdirs for p in (workdir / "tmp").iterdir()]
    assert len(left) <= 1 and all(name.startswith("bandfusion-") for name in left), left


def test_the_model_is_read_from_the_bucket_by_the_client_alone(run: Run, cluster: Cluster):
    for name in ("model.json", "weights.safetensors"):  # once a client run: killed, rerun
        assert cluster.proxy.requests["GET", f"/{S3_BUCKET}/{PREFIX}/model/{name}"] == 2


def test_a_store_refusing_writes_is_retried_then_recorded(
    tmp_path: Path, cluster: Cluster, uploaded: list[str]
):
    out = f"{ROOT}/refused"
    flaky = f"/{S3_BUCKET}/{PREFIX}/refused/flaky.tif"
    refused = f"/{S3_BUCKET}/{PREFIX}/refused/never.tif"
    cluster.proxy.refuse = lambda method, path, n: path == refused or (path == flaky and n <= 2)
    scenes = tmp_path / "refused.json"
    scenes.write_text(json.dumps([{"inputs": uploaded[0], "output": "flaky.tif"},
                                  {"inputs": uploaded[1], "output": "never.tif"}]))  # fmt: skip
    try:
        result = subprocess.run(batch(cluster, [str(scenes)], out), env=cluster.env,
                                capture_output=True, text=True, timeout=120)  # fmt: skip
    finally:
        cluster.proxy.refuse = lambda method, path, attempt: False
    assert result.returncode == 2, result.stderr
    records = manifest(cluster.s3, f"{PREFIX}/refused/manifest.json")
    assert records["flaky.tif"]["status"] == "done"
    assert cluster.proxy.refused[flaky] == 2
    assert cluster.proxy.refused[refused] == 3  # AWS_MAX_ATTEMPTS
    error = records["never.tif"]["error"]
    assert error.startswith(f"{out}/never.tif: cannot upload (ClientError: ") and "\n" not in error
    assert "SlowDown" in error
    assert whole_objects(cluster.s3, f"{PREFIX}/refused/") == []
    listing = cluster.s3.list_objects_v2(Bucket=S3_BUCKET, Prefix=f"{PREFIX}/refused/")
    assert f"{PREFIX}/refused/never.tif" not in [o["Key"] for o in listing["Contents"]]
