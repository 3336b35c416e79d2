"""A trained SpectralFusionNet as the affine maps it computes in eval mode, in float64.

Standardisation and eval-mode batch norm are affine maps next to a linear layer, and an
ensemble's grouped layers are block-diagonal dense ones whose logits' mean is one more linear
map, so every network is a chain of dense layers (weight, bias, layer norm, activation). The
kernels run that chain; blends (bandfusion.models.blend) join chains side by side.
"""

from __future__ import annotations

from typing import cast

import torch
from bandfusion.models.fusion import SpectralFusionNet
from torch import nn

FoldedChain = list[tuple[torch.Tensor, torch.Tensor, nn.LayerNorm | None, str | None]]


def folded_layers(
    net: SpectralFusionNet,
) -> tuple[FoldedChain, torch.Tensor]:
    """Float64 (weight (c_out, c_in), bias, layer norm, activation) per layer, and band means.

    The kernel subtracts the means from its input itself, in fp32, before the first layer.
    """
    modules = [cast(nn.Conv2d, conv) for conv in net.convs]
    convs = [_dense_weight(conv) for conv in modules]
    biases = [_bias(conv) for conv in modules]
    convs[-1], biases[-1] = _member_mean(convs[-1], biases[-1], net.members)
    std = net.band_std.detach().double()
    mean = net.band_mean.detach().double()
    convs[0] = convs[0] / std  # W ((x - mean) / std) = (W / std) (x - mean)
    layers: FoldedChain = []
    for weight, bias, norm in zip(convs[:-1], biases[:-1], net.norms, strict=True):
        layer_norm = norm if isinstance(norm, nn.LayerNorm) else None
        if isinstance(norm, nn.BatchNorm1d):
            weight, bias = _fold_batch_norm(norm, weight, bias)
        layers.append((weight, bias, layer_norm, net.activation))
    layers.append((convs[-1], biases[-1], None, None))
    return layers, mean


def _dense_weight(conv: nn.Conv2d) -> torch.Tensor:
    """A 1x1 convolution's float64 weight as a dense (c_out, c_in) matrix: a grouped one
    (an ensemble's members side by side) becomes block-diagonal, one GEMM for all members."""
    weight = conv.weight.detach().double().flatten(1)
    if conv.groups == 1:
        return weight
    return torch.block_diag(*weight.reshape(conv.groups, -1, weight.shape[1]))


def _member_mean(
    weight: torch.Tensor, bias: torch.Tensor, members: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits layer of `members` stacked members (members·K rows) as the one affine map
    that gives their mean: averaging is linear, so it folds into the weights."""
    if members == 1:
        return weight, bias
    return weight.reshape(members, -1, weight.shape[1]).mean(0), bias.reshape(members, -1).mean(0)


def _bias(conv: nn.Conv2d) -> torch.Tensor:
    if conv.bias is None:
        return torch.zeros(conv.out_channels, dtype=torch.float64)
    return conv.bias.detach().double()


def _fold_batch_norm(
    norm: nn.BatchNorm1d, weight: torch.Tensor, bias: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode batch norm after `W x + b` as one affine map: scale rows, shift the bias."""
    assert norm.running_mean is not None and norm.running_var is not None
    scale = torch.rsqrt(norm.running_var.detach().double() + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight.detach().double()
    shift = -norm.running_mean.detach().double() * scale
    if norm.bias is not None:
        shift = shift + norm.bias.detach().double()
    return weight * scale[:, None], bias * scale + shift
