"""The fused kernel: folding is exact up to rounding, results never depend on batching."""

from __future__ import annotations

import pytest
import torch
from bandfusion.models.inference import TorchKernel
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.nets import ARCHS, make_net


@pytest.mark.parametrize("arch", ARCHS, ids=str)
def test_folded_logits_equal_the_module_up_to_rounding(arch: dict[str, object]) -> None:
    net = make_net(**arch)
    table = torch.randn(5000, 6) * 10 + 50
    with torch.no_grad():
        expected = net(table)
    kernel = TorchKernel.from_net(net, sub_batch=1000)  # several sub-batches, one padded
    torch.testing.assert_close(kernel.logits(table), expected, rtol=1e-4, atol=1e-4)
    assert torch.equal(kernel.classify(table), kernel.logits(table).argmax(dim=1))


def test_folding_leaves_the_network_untouched() -> None:
    net = make_net(hidden=(8,), norm="layer", activation="gelu")
    before = {name: value.clone() for name, value in net.state_dict().items()}
    TorchKernel.from_net(net, precision="bf16")
    after = net.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert all(
        value.dtype == torch.float32 for value in after.values() if value.is_floating_point()
    )


def test_water_chip_labels_and_probabilities_match_the_module(water_net, water_pixels) -> None:
    with torch.inference_mode():
        logits = water_net(water_pixels.float())
    kernel = TorchKernel.from_net(water_net)
    same = (kernel.classify(water_pixels) == logits.argmax(dim=1)).double().mean().item()
    assert same >= 0.9999
    torch.testing.assert_close(
        kernel.proba(water_pixels), torch.softmax(logits, dim=1), rtol=0, atol=1e-5
    )


def test_bf16_gives_the_same_label_on_nearly_every_pixel(water_net, water_pixels) -> None:
    exact = TorchKernel.from_net(water_net).classify(water_pixels)
    fast = TorchKernel.from_net(water_net, precision="bf16").classify(water_pixels)
    assert (fast == exact).double().mean().item() >= 0.999


@settings(max_examples=25, deadline=None)
@given(
    threads=st.integers(min_value=1, max_value=4),
    start=st.integers(min_value=0, max_value=12_000),
    length=st.integers(min_value=1, max_value=12_000),
)
def test_logits_do_not_depend_on_which_pixels_come_along(threads, start, length) -> None:
    net = make_net(in_bands=12, n_classes=10, hidden=(64, 64))
    table = torch.randn(20_000, 12) * 10 + 50
    reference = TorchKernel.from_net(net).logits(table)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        logits = TorchKernel.from_net(net).logits(table[start : start + length])
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(logits, reference[start : start + length])


def test_bad_precision_and_table_are_refused() -> None:
    net = make_net()
    with pytest.raises(ValueError, match="precision"):
        TorchKernel.from_net(net, precision="fp8")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(pixels, 6\)"):
        TorchKernel.from_net(net).classify(torch.zeros(10, 5))


def test_empty_table_gives_empty_results() -> None:
    kernel = TorchKernel.from_net(make_net())
    assert kernel.classify(torch.zeros(0, 6)).shape == (0,)
    assert kernel.proba(torch.zeros(0, 6)).shape == (0, 4)


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_cuda_kernel_matches_the_cpu(water_net, water_pixels, precision) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    cpu = TorchKernel.from_net(water_net).classify(water_pixels)
    cuda = TorchKernel.from_net(water_net, precision=precision, device="cuda")
    labels = cuda.classify(water_pixels.float().cuda()).cpu()
    assert (labels == cpu).double().mean().item() >= (1.0 if precision == "fp32" else 0.999)


def test_a_moved_kernel_computes_the_same_logits() -> None:
    net = make_net()
    table = torch.randn(3000, 6) * 10 + 50
    kernel = TorchKernel.from_net(net, sub_batch=1024)
    moved = kernel.to("cpu")
    assert moved.sub_batch == 1024 and moved.precision == "fp32" and moved.bound is not None
    assert torch.equal(moved.logits(table), kernel.logits(table))
