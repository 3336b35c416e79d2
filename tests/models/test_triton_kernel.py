"""The fused Triton kernel: its bound holds, the labels it certifies are the CPU kernel's, and the
cascade the GPU engine runs gives the CPU map. Where there is no GPU it runs under Triton's CPU
interpreter (numpy: fp16 products, fp32 sums), which checks its indexing and its arithmetic."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from bandfusion.engine.cuda import FUSED, DeviceKernels, _classify
from bandfusion.models import triton_kernel
from bandfusion.models.inference import TorchKernel
from bandfusion.models.triton_kernel import FusedTritonClassifier, unsupported
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.nets import exact_logits, make_net

pytest.importorskip("triton")


@pytest.fixture(autouse=True, scope="module")
def big_blocks_when_interpreted() -> Iterator[None]:
    """Under the interpreter (conftest chooses it without a GPU), big blocks: it pays per
    program, not per pixel."""
    if torch.cuda.is_available():
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(triton_kernel, "BLOCK_PIXELS", 1024)
        yield


DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def fused(kernel: TorchKernel, certify: bool = True) -> FusedTritonClassifier:
    return FusedTritonClassifier.from_kernel(kernel, dtype=torch.float16, certify=certify)


def carried(table: torch.Tensor) -> torch.Tensor:
    """A (M, C) uint16 table as the engine hands it to the GPU: (C, M) int16 bits."""
    return table.T.contiguous().view(torch.int16).to(DEVICE)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    norm=st.sampled_from(["batch", "none"]),
    hidden=st.sampled_from([(8,), (64, 64), (32, 16, 8)]),
    top=st.sampled_from([300, 4000, 65535]),
    clamped=st.booleans(),
)
def test_certified_labels_are_the_cpu_kernels_and_the_bound_holds(
    seed: int, norm: str, hidden: tuple[int, ...], top: int, clamped: bool
) -> None:
    net = make_net(seed=seed, norm=norm, hidden=hidden, clamped=clamped)
    generator = torch.Generator().manual_seed(seed)
    table = torch.randint(0, top + 1, (1000, 6), generator=generator).to(torch.uint16)
    kernel = TorchKernel.from_net(net, device=DEVICE)
    classifier = fused(kernel)
    labels, doubt = classifier.classify(carried(table), unsigned=True)
    logits, bound = classifier.logits_and_bound(carried(table), unsigned=True)
    exact = exact_logits(net, table.int())
    within = (logits.cpu().double() - exact).abs().amax(dim=1) <= bound.cpu()
    # fp16 overflowed (NaN or infinite logits or bound): no claim, so no label certified there
    overflowed = ~(torch.isfinite(logits.cpu()).all(dim=1) & torch.isfinite(bound.cpu()))
    assert (within | overflowed).all()
    clear = ~doubt.cpu()
    assert not (clear & overflowed).any()
    cpu = TorchKernel.from_net(net).classify(table).numpy()
    np.testing.assert_array_equal(labels.cpu().numpy()[clear], cpu[clear])
    np.testing.assert_array_equal(cpu[clear], exact.argmax(dim=1).numpy()[clear])


def test_a_trained_model_leaves_few_labels_in_doubt(water_net, water_pixels) -> None:
    table = water_pixels[:: len(water_pixels) // 16384][:16384]
    kernel = TorchKernel.from_net(water_net, device=DEVICE)
    labels, doubt = fused(kernel).classify(carried(table), unsigned=True)
    cpu = TorchKernel.from_net(water_net).classify(table).numpy()
    clear = ~doubt.cpu().numpy()
    assert doubt.float().mean() < 0.01
    np.testing.assert_array_equal(labels.cpu().numpy()[clear], cpu[clear])
    uncertified, _ = fused(kernel, certify=False).classify(carried(table), unsigned=True)
    assert (uncertified.cpu().numpy() == cpu).mean() >= 0.999


def test_the_gpu_cascade_gives_the_cpu_labels() -> None:
    """Fused fp16 labels, then the torch kernel's fp32 ones where those are in doubt, then the
    CPU reference's where even those are: exactly the CPU kernel's labels."""
    net = make_net(in_bands=6, n_classes=2, seed=3, hidden=(64, 64), norm="none")
    last = net.convs[-1]
    with torch.no_grad():  # two nearly tied classes: many labels hang on the last bits
        last.weight[1] = last.weight[0] + torch.randn_like(last.weight[0]) * 1e-2
        last.bias[1] = last.bias[0]
    table = torch.randint(0, 4000, (4096, 6), generator=torch.Generator().manual_seed(3))
    table = table.to(torch.uint16)
    on_device = TorchKernel.from_net(net, device=DEVICE)
    kernels = DeviceKernels(on_device, fused(on_device), on_device.with_sub_batch(1000))
    carrier = (torch.int16, torch.int32, 0xFFFF)
    labels, doubt = _classify(torch.uint8, True, FUSED, kernels, carried(table), carrier)
    reference = TorchKernel.from_net(net)
    labels = labels.astype(np.int64)
    labels[doubt] = reference.classify(table[torch.from_numpy(doubt)]).numpy()
    np.testing.assert_array_equal(labels, reference.classify(table).numpy())
    _, fused_doubt = kernels.fused.classify(carried(table), unsigned=True)
    assert 0 < doubt.sum() < fused_doubt.sum() < len(table)  # every stage had work


OVERFLOWS = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
"""Overflowing pixels make the interpreter's numpy warn; the kernel marks them doubtful."""


@OVERFLOWS
def test_unsigned_32_bit_pixels_are_widened_as_the_cpu_reads_them() -> None:
    """Values above 2**31, which their int32 carrier holds as negative numbers."""
    net = make_net(seed=5, hidden=(16,))
    net.set_standardisation(torch.full((6,), 2.0**31 + 2500), torch.full((6,), 1000.0))
    generator = torch.Generator().manual_seed(5)
    values = 2**31 + torch.randint(0, 5000, (1000, 6), generator=generator)
    kernel = TorchKernel.from_net(net, device=DEVICE)
    bits = values.to(torch.int32).T.contiguous().to(DEVICE)  # wraps, as the uint32 carrier does
    labels, doubt = fused(kernel).classify(bits, unsigned=True)
    cpu = TorchKernel.from_net(net).classify(values).numpy()
    clear = ~doubt.cpu().numpy()
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(labels.cpu().numpy()[clear], cpu[clear])


@OVERFLOWS
def test_pixels_that_overflow_or_are_not_numbers_are_doubtful() -> None:
    net = make_net(seed=7, hidden=(16, 16))
    table = torch.rand(1000, 6) * 100
    table[:5] = torch.tensor([np.nan, np.inf, -np.inf, 1e30, 3e38])[:, None]
    kernel = TorchKernel.from_net(net, device=DEVICE)
    _, doubt = fused(kernel).classify(table.T.contiguous().to(DEVICE))
    assert doubt[:5].all()
    assert not doubt[5:].all()


@pytest.mark.parametrize(
    ("arch", "reason"),
    [
        ({"hidden": ()}, "no hidden layer"),
        ({"norm": "layer"}, "layer norm"),
        ({"activation": "gelu"}, "ReLU"),
    ],
)
def test_networks_the_kernel_does_not_cover_say_why(arch: dict, reason: str) -> None:
    kernel = TorchKernel.from_net(make_net(**arch))
    assert reason in str(unsupported(kernel))
    with pytest.raises(ValueError, match="cannot be fused"):
        fused(kernel)


def test_certifying_needs_fp32_weights_and_fp16_layers() -> None:
    net = make_net(hidden=(16,))
    with pytest.raises(ValueError, match="fp32 kernel and fp16"):
        FusedTritonClassifier.from_kernel(
            TorchKernel.from_net(net), dtype=torch.bfloat16, certify=True
        )
    classifier = fused(TorchKernel.from_net(net))
    assert not classifier.reads(torch.float64)
    with pytest.raises(ValueError, match="float64"):
        classifier.classify(torch.zeros(6, 10, dtype=torch.float64))
