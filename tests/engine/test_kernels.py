"""Which kernel a model would run on a device, and why, as `bandfusion info --device` shows it."""

from __future__ import annotations

import pytest
import torch
from bandfusion.engine.kernels import KernelPlan, kernel_plan
from bandfusion.models import triton_kernel
from bandfusion.models.checkpoint import TrainedModel
from bandfusion.models.metadata import ModelMetadata

from tests.nets import make_net


def model(**arch: object) -> TrainedModel:
    net = make_net(in_bands=6, n_classes=4, **arch)
    meta = ModelMetadata(
        bands=[f"b{i}" for i in range(6)],
        class_ids=list(range(4)),
        class_names=[str(i) for i in range(4)],
        class_colors=[(0, 0, 0)] * 4,
        architecture=net.config(),
    )
    return TrainedModel(net, meta)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_the_cpu_kernel_runs() -> None:
    assert kernel_plan(model(), "auto") == KernelPlan("cpu", "cpu", "no CUDA device")
    assert kernel_plan(model(), "cpu").reason == "device cpu asked for"


@pytest.fixture
def cuda_present(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine that reports CUDA: planning only names the device, it never starts it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


def test_cuda_runs_the_fused_kernel_where_triton_covers_the_network(cuda_present) -> None:
    if not triton_kernel.triton_available():
        pytest.skip("needs Triton")
    plan = kernel_plan(model(hidden=(16,)), "cuda")
    assert (plan.device, plan.kernel) == ("cuda", "fused") and "checked against" in plan.reason


def test_cuda_without_triton_runs_the_torch_kernel_and_says_why(cuda_present, monkeypatch):
    monkeypatch.setattr(triton_kernel, "triton_available", lambda: False)
    plan = kernel_plan(model(hidden=(16,)), "auto")
    assert plan == KernelPlan("cuda", "torch", "no fused kernel: Triton is not installed")


def test_networks_the_fused_kernel_does_not_cover_run_the_torch_kernel(cuda_present) -> None:
    if not triton_kernel.triton_available():
        pytest.skip("needs Triton")
    plan = kernel_plan(model(norm="layer"), "cuda:0")
    assert plan.kernel == "torch" and "layer norm" in plan.reason and plan.device == "cuda:0"
