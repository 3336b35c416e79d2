"""Which kernel a model runs on a device, and why: the engine's plan, as data, before it runs.

On a CPU the CPU kernel runs (the reference). On a CUDA device the fused Triton kernel runs where
Triton is installed and covers the network, else the torch kernel; either way behind the guard
(`bandfusion.engine.guard`), which may still drop it for the next one when it fails its check.
"""

from __future__ import annotations

from dataclasses import dataclass

from bandfusion.engine.cuda import FUSED, TORCH
from bandfusion.engine.guard import CPU
from bandfusion.models.checkpoint import TrainedModel
from bandfusion.models.devices import resolve_device
from bandfusion.models.inference import TorchKernel
from bandfusion.models.triton_kernel import unsupported


@dataclass(frozen=True)
class KernelPlan:
    """The kernel (`FUSED`, `TORCH` or `CPU`) a model would run on `device`, and why."""

    device: str
    kernel: str
    reason: str


def kernel_plan(model: TrainedModel, device: str = "auto") -> KernelPlan:
    """The kernel `model` would run on `device` ("auto", "cpu", "cuda[:N]") on this machine."""
    resolved = resolve_device(device)
    if resolved.type != "cuda":
        reason = "no CUDA device" if device == "auto" else f"device {device} asked for"
        return KernelPlan(str(resolved), CPU, reason)
    why_not = unsupported(TorchKernel.from_net(model.net.eval()))
    if why_not is not None:
        return KernelPlan(str(resolved), TORCH, f"no fused kernel: {why_not}")
    reason = "Triton covers this network; checked against the CPU kernel on the first chunk"
    return KernelPlan(str(resolved), FUSED, reason)
