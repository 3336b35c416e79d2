"""Shared fixtures: paths to the bundled real data, a small dask.distributed cluster, one torch
thread for modules that train tiny networks, bf16 prediction on any CPU, the water chip as a
scene, the scratch directory and base GeoTIFFs of the fuzz tests, and the loopback HTTP and S3
servers of the remote-input tests.

Without a GPU, Triton kernels run under Triton's CPU interpreter, which must be chosen before
Triton is first imported."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from bandfusion.batch.cluster import local_client
from bandfusion.engine import predict as predict_module
from bandfusion.io.scene import open_scene
from distributed import Client

from tests.helpers import REPO
from tests.servers import RangeServer, range_server, s3_server
from tests.strategies import BASES, write_base

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

DATA = REPO / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="module")
def scene(data_dir: Path):
    """The Sen1Floods11 water chip (13 Sentinel-2 bands, 512 x 512), opened once per module."""
    return open_scene(data_dir / "sen1floods11_spain/Spain_7370579_S2Hand.tif")


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Two single-thread worker processes, as on a 2-core machine, configured as users get them."""
    with local_client(workers=2, threads_per_worker=1) as client:
        yield client


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny networks run fastest, and undisturbed by other jobs, on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def bf16_on_any_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let bf16 prediction run on a CPU that only emulates bf16: slowly, with the same labels, so
    its code path is tested on every machine (users of such a CPU are refused; tested too)."""
    monkeypatch.setattr(predict_module, "cpu_runs_bf16", lambda: True)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory per fuzz module; tests.fuzzing.case_dir makes one per example inside it."""
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def bases(scratch: Path) -> dict[str, bytes]:
    """The bytes of every `BASES` GeoTIFF, the files the mutation fuzzers start from."""
    return {name: write_base(scratch / f"{name}.tif", o).read_bytes() for name, o in BASES.items()}


S3_BUCKET = "scenes"


@pytest.fixture(scope="session")
def http_server() -> Iterator[RangeServer]:
    """A Range-capable HTTP server on loopback, for the whole session."""
    with range_server() as server:
        yield server


@pytest.fixture(scope="session")
def s3_store() -> Iterator[tuple[str, Any]]:
    """moto's S3-compatible server on loopback holding the bucket S3_BUCKET: (endpoint, boto3
    client)."""
    with s3_server(S3_BUCKET) as store:
        yield store


@pytest.fixture
def s3_env(s3_store: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The standard AWS environment pointing at the loopback store; its boto3 client."""
    endpoint, client = s3_store
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    return client
