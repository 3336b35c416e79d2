"""The rounding bound that certifies fp32 labels: it holds, and the labels it clears agree with
float64 and with every other fp32 evaluation (other tilings, other thread counts)."""

from __future__ import annotations

import pytest
import torch
from bandfusion.models.certify import FP32_UNIT_ROUNDOFF, doubtful, label_bound
from bandfusion.models.inference import TorchKernel
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.nets import exact_logits, make_net


def logits_and_error(kernel: TorchKernel, table: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The kernel's (M, K) logits and its bound on how far other evaluations' can be."""
    assert kernel.bound is not None
    logits, errors = [], []
    for start, stop, inputs, sub_batch in kernel._sub_batches(table):
        logits.append(sub_batch.T.clone())
        errors.append(kernel.bound.logit_error(inputs)[: stop - start].clone())
    return torch.cat(logits), torch.cat(errors)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    norm=st.sampled_from(["batch", "none"]),
    hidden=st.sampled_from([(), (8,), (64, 64), (32, 16, 8)]),
    scale=st.sampled_from([1.0, 100.0, 3000.0]),
)
def test_labels_cleared_by_the_bound_agree_with_float64_and_other_tilings(
    seed: int, norm: str, hidden: tuple[int, ...], scale: float
) -> None:
    net = make_net(seed=seed, norm=norm, hidden=hidden)
    table = torch.rand(3000, 6, generator=torch.Generator().manual_seed(seed)) * scale
    kernel = TorchKernel.from_net(net, sub_batch=512)
    assert kernel.bound is not None
    labels, doubt = kernel.classify_with_doubt(table)
    exact = exact_logits(net, table)
    logits, error = logits_and_error(kernel, table)
    assert ((logits.double() - exact).abs().amax(dim=1) <= error).all()
    other = TorchKernel.from_net(net, sub_batch=2048).classify(table)
    clear = ~doubt
    assert torch.equal(labels[clear], exact.argmax(dim=1)[clear])
    assert torch.equal(labels[clear], other[clear])
    assert torch.equal(labels, kernel.classify(table))


def test_exact_ties_are_always_in_doubt() -> None:
    net = make_net(n_classes=2, hidden=(16,), norm="none")
    last = net.convs[-1]
    with torch.no_grad():
        last.weight[1] = last.weight[0]
        last.bias[1] = last.bias[0] + 1e-3  # class 1 always leads, by a thousandth
    table = torch.rand(1000, 6) * 100
    labels, doubt = TorchKernel.from_net(net).classify_with_doubt(table)
    assert (labels == 1).all()
    assert not doubt.any()  # 1e-3 is far above the bound for inputs of this size
    with torch.no_grad():
        last.bias[1] = last.bias[0]
    labels, doubt = TorchKernel.from_net(net).classify_with_doubt(table)
    assert doubt.all()


def test_non_finite_logits_or_errors_are_always_in_doubt() -> None:
    inf, nan = float("inf"), float("nan")
    logits = torch.tensor([[nan, inf, 2.0, 2.0], [1.0, 0.0, 0.0, 0.0]])
    error = torch.tensor([0.0, 0.0, 0.0, inf])
    assert doubtful(logits, error).tolist() == [True, True, False, True]


def test_a_trained_model_leaves_few_labels_in_doubt(water_net, water_pixels) -> None:
    labels, doubt = TorchKernel.from_net(water_net).classify_with_doubt(water_pixels)
    assert torch.equal(labels, TorchKernel.from_net(water_net).classify(water_pixels))
    assert doubt.double().mean().item() < 0.001  # 23 of 262,144 pixels here


@pytest.mark.parametrize(
    ("arch", "precision"),
    [
        ({"norm": "layer"}, "fp32"),
        ({"activation": "gelu"}, "fp32"),
        ({}, "bf16"),
    ],
)
def test_kernels_the_bound_does_not_cover_refuse_to_certify(arch, precision) -> None:
    kernel = TorchKernel.from_net(make_net(**arch), precision=precision)
    assert kernel.bound is None
    with pytest.raises(ValueError, match="no label bound"):
        kernel.classify_with_doubt(torch.zeros(4, 6))


def test_the_bound_grows_with_the_unit_roundoff() -> None:
    weights = [torch.ones(4, 8), torch.ones(8, 2)]
    biases = [torch.ones(8), torch.zeros(2)]
    fp32 = label_bound(weights, biases, FP32_UNIT_ROUNDOFF)
    coarse = label_bound(weights, biases, 2.0**-11)
    assert fp32.gammas == pytest.approx([5 * 2.0**-24, 9 * 2.0**-24], rel=1e-6)
    inputs = [torch.ones(3, 4), torch.ones(3, 8)]
    assert (fp32.logit_error(inputs) > 0).all()
    assert (fp32.logit_error(inputs) < coarse.logit_error(inputs)).all()
    with pytest.raises(ValueError, match="unbounded"):
        label_bound(weights, biases, 0.5)
