"""Networks for the kernel tests: architectures to cover, seeded networks with realistic
standardisation and batch-norm statistics, and a float64 reference for their logits."""

from __future__ import annotations

from typing import Any

import torch
from bandfusion.models.folding import folded_layers
from bandfusion.models.fusion import SpectralFusionNet

ARCHS = [
    {"hidden": (16, 16)},
    {"hidden": (128, 32, 128)},
    {"hidden": (24,), "norm": "layer", "activation": "gelu"},
    {"hidden": (8, 8), "norm": "none", "dropout": 0.3},
    {"hidden": ()},
    {"hidden": (16, 8), "members": 3},  # an ensemble: grouped layers, averaged logits
    {"hidden": (), "members": 2, "norm": "none"},
    {"hidden": (16, 8), "clamped": True},  # each band clamped to a range the tests go past
]


def make_net(
    in_bands: int = 6, n_classes: int = 4, seed: int = 0, **arch: Any
) -> SpectralFusionNet:
    """A net with random weights, standardisation and (for batch norm) running statistics."""
    torch.manual_seed(seed)
    net = SpectralFusionNet(in_bands, n_classes, **arch)
    net.set_standardisation(torch.rand(in_bands) * 100, torch.rand(in_bands) * 10 + 0.5)
    if net.clamped:
        net.set_clamp(-0.5 - 1.5 * torch.rand(in_bands), 0.5 + 1.5 * torch.rand(in_bands))
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(64, in_bands) * 10 + 50)
    return net.eval()


def exact_logits(net: SpectralFusionNet, table: torch.Tensor) -> torch.Tensor:
    """The folded network in float64: the reference both fp32 evaluations are bounded against."""
    layers, mean = folded_layers(net)
    x = table.double() - mean
    if net.clamped:
        std = net.band_std.double()
        x = torch.clamp(x, net.band_low.double() * std, net.band_high.double() * std)
    for weight, bias, _, activation in layers:
        x = x @ weight.T + bias
        if activation == "relu":
            x = torch.relu(x)
    return x
