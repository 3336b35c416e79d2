"""Shared fixtures: paths to the bundled real data, a small dask.distributed cluster, one torch
thread for modules that train tiny networks, and bf16 prediction on any CPU.

Without a GPU, Triton kernels run under Triton's CPU interpreter, which must be chosen before
Triton is first imported."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from bandfusion.batch.cluster import local_client
from bandfusion.engine import predict as predict_module
from distributed import Client

from tests.helpers import REPO

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

DATA = REPO / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


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
